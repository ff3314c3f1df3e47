/* Exact for every type and setting: the corpus (tests/corpus.sql, every
 * built-in type with its edge values, nested and arrayed) written by the
 * sinks is compared byte for byte with what the server writes itself:
 * JSON Lines with row_to_json(), TSV and CSV with COPY. And every getter
 * reads a binary value as it reads the same value's text. Each under
 * session settings a user may have (DateStyle, IntervalStyle, TimeZone,
 * extra_float_digits, bytea_output, set through the connection's
 * options as PGOPTIONS sets them), over both sources, in text and
 * binary. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pqs_test.h"

static const char *const tables[] = {"numbers", "strings", "times", "shapes",
                                     "nested"};
#define NTABLES (int)(sizeof(tables) / sizeof(tables[0]))

/* The defaults, then settings that change every text they can. */
static const char *const settings[] = {
    "",
    "-c DateStyle=SQL,DMY -c IntervalStyle=iso_8601 "
    "-c TimeZone=America/New_York -c extra_float_digits=0 "
    "-c bytea_output=escape",
    "-c DateStyle=Postgres,MDY -c IntervalStyle=sql_standard "
    "-c TimeZone=Asia/Kolkata -c extra_float_digits=3",
    "-c DateStyle=German -c IntervalStyle=postgres_verbose "
    "-c TimeZone=Pacific/Chatham -c extra_float_digits=-15",
    "-c DateStyle=ISO,YMD -c TimeZone=America/New_York "
    "-c extra_float_digits=-4 -c bytea_output=escape",
};
#define NSETTINGS (int)(sizeof(settings) / sizeof(settings[0]))

static char *conninfo_with(int setting) {
  static char buf[1024];
  snprintf(buf, sizeof(buf), "%s options='%s'", pt_conninfo(),
           settings[setting]);
  return buf;
}

static void load_corpus(void) {
  PGconn *admin = pt_admin();
  pt_load_corpus(admin, PQS_TEST_CORPUS);
  PQfinish(admin);
}

static PGconn *admin_with(int setting) {
  PGconn *c = PQconnectdb(conninfo_with(setting));
  ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
  return c;
}

static void select_sql(int table, char *out, size_t cap) {
  snprintf(out, cap, "SELECT * FROM corpus.%s ORDER BY id", tables[table]);
}

/* What row_to_json writes for each row, one per line. */
static char *server_json(PGconn *admin, const char *sql, size_t *len) {
  char q[512];
  snprintf(q, sizeof(q), "SELECT row_to_json(q) FROM (%s) q", sql);
  PGresult *res = PQexec(admin, q);
  ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s",
                PQerrorMessage(admin));
  size_t n = 0;
  for (int i = 0; i < PQntuples(res); i++)
    n += (size_t)PQgetlength(res, i, 0) + 1;
  char *out = malloc(n + 1);
  n = 0;
  for (int i = 0; i < PQntuples(res); i++) {
    memcpy(out + n, PQgetvalue(res, i, 0), (size_t)PQgetlength(res, i, 0));
    n += (size_t)PQgetlength(res, i, 0);
    out[n++] = '\n';
  }
  PQclear(res);
  *len = n;
  return out;
}

typedef struct {
  int calls;
  pt_done_t done;
} sunk_t;

static void on_sunk(pqs_sink_t *sink, const pqs_done_t *done, uint64_t bytes,
                    void *data) {
  (void)sink;
  (void)bytes;
  sunk_t *k = data;
  k->calls++;
  pt_record(&k->done, done);
}

/* What a sink writes for `sql` on `ctx`, from `source` in `format`. */
static char *sink_output(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                         pqs_source_t source, pqs_result_format_t format,
                         pqs_format_t out_format, size_t *len) {
  char path[] = "/tmp/pqs-exact-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  pqs_query_opts_t qo = {.source = source, .result_format = format};
  pqs_stream_t *s = pt_query(ctx, sql, &qo);
  pqs_sink_opts_t so = {.format = out_format};
  sunk_t k = {0};
  ck_assert_int_eq(pqs_sink_fd(s, loop, fd, &so, on_sunk, &k), 0);
  while (k.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(k.done.status == 0, "%s: %s", sql, k.done.message);
  off_t size = lseek(fd, 0, SEEK_END);
  char *out = malloc((size_t)size + 1);
  ck_assert_int_eq(pread(fd, out, (size_t)size, 0), size);
  close(fd);
  *len = (size_t)size;
  return out;
}

static const char *run_name(pqs_source_t source, pqs_result_format_t format) {
  if (source == PQS_SOURCE_COPY)
    return format == PQS_RESULT_BINARY ? "copy, binary" : "copy, text";
  return format == PQS_RESULT_BINARY ? "single-row, binary"
                                     : "single-row, text";
}

static void check_same(const char *what, int setting, int table,
                       const char *run, const char *want, size_t want_len,
                       const char *got, size_t got_len) {
  char label[512];
  snprintf(label, sizeof(label), "%s of corpus.%s (%s) under '%s'", what,
           tables[table], run, settings[setting]);
  pt_assert_same_bytes(label, want, want_len, got, got_len);
}

/* Every table under one setting: JSON Lines as row_to_json over both
 * sources in text and binary, TSV and CSV as COPY over both sources in
 * text. */
static void sinks_exact(int setting) {
  PGconn *admin = admin_with(setting);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, conninfo_with(setting));
  static const pqs_source_t sources[] = {PQS_SOURCE_SINGLE_ROW,
                                         PQS_SOURCE_COPY};
  static const pqs_result_format_t formats[] = {PQS_RESULT_TEXT,
                                                PQS_RESULT_BINARY};
  for (int t = 0; t < NTABLES; t++) {
    char sql[256];
    select_sql(t, sql, sizeof(sql));
    size_t jlen, tlen, clen, n;
    char *json = server_json(admin, sql, &jlen);
    char *tsv = pt_server_copy(admin, sql, "", &tlen);
    char *csv = pt_server_copy(admin, sql, "(FORMAT csv)", &clen);
    for (int si = 0; si < 2; si++) {
      for (int fi = 0; fi < 2; fi++) {
        const char *run = run_name(sources[si], formats[fi]);
        char *got = sink_output(loop, ctx, sql, sources[si], formats[fi],
                                PQS_FORMAT_JSONL, &n);
        check_same("JSON Lines", setting, t, run, json, jlen, got, n);
        free(got);
      }
      const char *run = run_name(sources[si], PQS_RESULT_TEXT);
      char *got = sink_output(loop, ctx, sql, sources[si], PQS_RESULT_TEXT,
                              PQS_FORMAT_TSV, &n);
      check_same("TSV", setting, t, run, tsv, tlen, got, n);
      free(got);
      got = sink_output(loop, ctx, sql, sources[si], PQS_RESULT_TEXT,
                        PQS_FORMAT_CSV, &n);
      check_same("CSV", setting, t, run, csv, clen, got, n);
      free(got);
    }
    free(json);
    free(tsv);
    free(csv);
  }
  pt_close(loop, ctx);
  pt_loop_free(loop);
  PQfinish(admin);
}

/* Through a merge (what the tool's -j, --shard and --partition-on
 * read): each input asks its own server for the JSON only it can write,
 * and the merge's queues keep it with the rows. */
static void merged_json_exact(int setting) {
  PGconn *admin = admin_with(setting);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[2] = {pt_open(loop, conninfo_with(setting)),
                       pt_open(loop, conninfo_with(setting))};
  for (int t = 0; t < NTABLES; t++) {
    char sql[256], half[2][256];
    select_sql(t, sql, sizeof(sql));
    size_t jlen;
    char *json = server_json(admin, sql, &jlen);
    pqs_stream_t *in[2], *merged;
    for (int i = 0; i < 2; i++) {
      snprintf(half[i], sizeof(half[i]),
               "SELECT * FROM corpus.%s WHERE id %% 2 = %d ORDER BY id",
               tables[t], i);
      pqs_query_opts_t qo = {.source = i ? PQS_SOURCE_COPY
                                         : PQS_SOURCE_SINGLE_ROW};
      in[i] = pt_query(ctx[i], half[i], &qo);
    }
    static const pqs_sort_key_t by_id = {0, 0};
    pqs_merge_opts_t mo = {.mode = PQS_MERGE_ORDERED, .keys = &by_id,
                           .nkeys = 1};
    ck_assert_int_eq(pqs_merge(in, 2, &mo, &merged), 0);
    char path[] = "/tmp/pqs-exact-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    pqs_sink_opts_t so = {.format = PQS_FORMAT_JSONL};
    sunk_t k = {0};
    ck_assert_int_eq(pqs_sink_fd(merged, loop, fd, &so, on_sunk, &k), 0);
    while (k.calls == 0)
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_msg(k.done.status == 0, "merge of %s: %s", tables[t],
                  k.done.message);
    off_t size = lseek(fd, 0, SEEK_END);
    char *got = malloc((size_t)size + 1);
    ck_assert_int_eq(pread(fd, got, (size_t)size, 0), size);
    close(fd);
    check_same("JSON Lines", setting, t, "merged, both sources", json, jlen,
               got, (size_t)size);
    free(got);
    free(json);
  }
  pt_close(loop, ctx[0]);
  pt_close(loop, ctx[1]);
  pt_loop_free(loop);
  PQfinish(admin);
}

START_TEST(merged_json_exact_under_every_setting) {
  load_corpus();
  merged_json_exact(_i);
}
END_TEST

START_TEST(sinks_exact_under_every_setting) {
  load_corpus();
  sinks_exact(_i);
}
END_TEST

/* ---- getters: binary as text ---- */

/* Each getter's answer for one value, as a line of text: "rc value". */
typedef struct {
  char *lines[64][16]; /* [col][getter] */
} answers_t;

enum { G_TEXT, G_I16, G_I32, G_I64, G_DBL, G_BOOL, G_BYTEA, G_DEC, G_NDBL,
       G_NI64, G_TS, G_TIME, G_UUID, G_IV, G_ARR, G_N };
static const char *const getter_names[G_N] = {
    "get_text", "int16",    "int32", "int64",  "double",
    "bool",     "bytea",    "decimal", "numeric_double", "numeric_int64",
    "timestamp_us", "time_us", "uuid", "interval", "array"};

static char *answer(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *answer(int rc, const char *fmt, ...) {
  char buf[4096];
  int n = snprintf(buf, sizeof(buf), "%d ", rc);
  if (rc == 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
  }
  return strdup(buf);
}

static void every_getter(const pqs_row_t *row, int col, char **out) {
  const char *text;
  size_t len;
  int16_t i16;
  int32_t i32;
  int64_t i64;
  double d;
  int b, rc;
  rc = pqs_row_get_text(row, col, &text, &len);
  out[G_TEXT] = answer(rc, "%.*s", (int)len, text);
  rc = pqs_row_int16(row, col, &i16);
  out[G_I16] = answer(rc, "%d", i16);
  rc = pqs_row_int32(row, col, &i32);
  out[G_I32] = answer(rc, "%d", i32);
  rc = pqs_row_int64(row, col, &i64);
  out[G_I64] = answer(rc, "%lld", (long long)i64);
  rc = pqs_row_double(row, col, &d);
  out[G_DBL] = answer(rc, "%a", d);
  rc = pqs_row_bool(row, col, &b);
  out[G_BOOL] = answer(rc, "%d", b);
  unsigned char bytes[256];
  rc = pqs_row_bytea(row, col, bytes, sizeof(bytes), &len);
  char hex[520] = "";
  for (size_t i = 0; rc == 0 && i < len && i < 256; i++)
    sprintf(hex + 2 * i, "%02x", bytes[i]);
  out[G_BYTEA] = answer(rc, "%zu %s", len, hex);
  rc = pqs_row_decimal(row, col, &text, &len);
  out[G_DEC] = answer(rc, "%.*s", (int)len, text);
  rc = pqs_row_numeric_double(row, col, &d);
  out[G_NDBL] = answer(rc, "%a", d);
  rc = pqs_row_numeric_int64(row, col, &i64);
  out[G_NI64] = answer(rc, "%lld", (long long)i64);
  rc = pqs_row_timestamp_us(row, col, &i64);
  out[G_TS] = answer(rc, "%lld", (long long)i64);
  rc = pqs_row_time_us(row, col, &i64);
  out[G_TIME] = answer(rc, "%lld", (long long)i64);
  uint8_t u[16];
  rc = pqs_row_uuid(row, col, u);
  out[G_UUID] = answer(rc, "%02x%02x..%02x", u[0], u[1], u[15]);
  pqs_interval_t iv;
  rc = pqs_row_interval(row, col, &iv);
  out[G_IV] = answer(rc, "%d %d %lld", iv.months, iv.days,
                     (long long)iv.usec);
  pqs_array_t a;
  rc = pqs_row_array(row, col, &a);
  out[G_ARR] = answer(rc, "%u %d %d", a.elem_type, a.lower, a.len);
}

typedef struct {
  pt_done_t done; /* first: pt_on_done records here */
  answers_t rows[16];
  int nrows, ncols;
  char names[64][64];
  uint32_t types[64];
} collected_t;

static int collect_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  collected_t *c = data;
  ck_assert_int_lt(c->nrows, 16);
  c->ncols = pqs_row_ncols(row);
  ck_assert_int_le(c->ncols, 64);
  for (int i = 0; i < c->ncols; i++) {
    snprintf(c->names[i], sizeof(c->names[i]), "%s", pqs_row_name(row, i));
    c->types[i] = pqs_row_type(row, i);
    every_getter(row, i, c->rows[c->nrows].lines[i]);
  }
  c->nrows++;
  return 0;
}

static void collected_free(collected_t *c) {
  for (int r = 0; r < c->nrows; r++)
    for (int i = 0; i < c->ncols; i++)
      for (int g = 0; g < G_N; g++)
        free(c->rows[r].lines[i][g]);
}

static collected_t *collect(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                            pqs_source_t source, pqs_result_format_t format) {
  collected_t *c = calloc(1, sizeof(*c));
  pqs_query_opts_t qo = {.source = source, .result_format = format};
  pqs_stream_t *s = pt_query(ctx, sql, &qo);
  pqs_stream_cbs_t cbs = {.on_row = collect_row, .on_done = pt_on_done};
  pt_stream_wait(loop, s, &cbs, c, &c->done);
  ck_assert_msg(c->done.status == 0, "%s: %s", sql, c->done.message);
  return c;
}

/* At extra_float_digits 0 and below the server's text of a float is
 * rounded (%.15g and fewer digits): a double read from it is not the
 * binary value, which is exact. Said here, not skipped silently. The
 * texts themselves agree: the library learns the session's setting. */
static int rounded_floats(int setting, uint32_t type) {
  const char *efd = strstr(settings[setting], "extra_float_digits=");
  return efd != NULL && atoi(efd + 19) <= 0 &&
         (type == PQS_OID_FLOAT4 || type == PQS_OID_FLOAT8);
}

/* A getter's answer in binary is the text's, but for texts a binary
 * value has none of (PQS_ETYPE, see pqs_row_text) and for values whose
 * text the getters do not read under the setting (PQS_EFORMAT: a
 * DateStyle or IntervalStyle they refuse to guess from). */
static void compare_getters(const collected_t *t, const collected_t *b,
                            int setting, int table, const char *source) {
  ck_assert_int_eq(t->nrows, b->nrows);
  for (int r = 0; r < t->nrows; r++) {
    for (int i = 0; i < t->ncols; i++) {
      for (int g = 0; g < G_N; g++) {
        const char *tl = t->rows[r].lines[i][g], *bl = b->rows[r].lines[i][g];
        if (g == G_TEXT && atoi(bl) == PQS_ETYPE)
          continue;
        if (rounded_floats(setting, t->types[i]) &&
            (g == G_DBL || g == G_NDBL))
          continue;
        if (atoi(tl) == PQS_EFORMAT)
          continue;
        ck_assert_msg(strcmp(tl, bl) == 0,
                      "corpus.%s row %d column %s, %s (%s) under '%s': "
                      "text gives '%s', binary '%s'",
                      tables[table], r + 1, t->names[i], getter_names[g],
                      source, settings[setting], tl, bl);
      }
    }
  }
}

START_TEST(binary_getters_as_text) {
  load_corpus();
  int setting = _i;
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, conninfo_with(setting));
  static const pqs_source_t sources[] = {PQS_SOURCE_SINGLE_ROW,
                                         PQS_SOURCE_COPY};
  for (int t = 0; t < NTABLES; t++) {
    char sql[256];
    select_sql(t, sql, sizeof(sql));
    for (int si = 0; si < 2; si++) {
      collected_t *text = collect(loop, ctx, sql, sources[si], PQS_RESULT_TEXT);
      collected_t *bin = collect(loop, ctx, sql, sources[si], PQS_RESULT_BINARY);
      compare_getters(text, bin, setting, t,
                      si ? "copy" : "single-row");
      collected_free(text);
      collected_free(bin);
      free(text);
      free(bin);
    }
  }
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

int main(void) {
  Suite *s = suite_create("exact");
  TCase *tc = tcase_create("exact");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, sinks_exact_under_every_setting, 0, NSETTINGS);
  tcase_add_loop_test(tc, binary_getters_as_text, 0, NSETTINGS);
  tcase_add_loop_test(tc, merged_json_exact_under_every_setting, 0,
                      NSETTINGS);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
