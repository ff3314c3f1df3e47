/* Binary results against text results on the same server: every getter
 * gives the same value (or the same error) for every supported type, over
 * both sources; pqs_row_text on a binary row gives the server's text byte
 * for byte where it promises to, and PQS_ETYPE where it does not; the
 * binary COPY parser refuses bad input clearly and survives 10,000
 * mutated streams. (The other suites also run whole over binary results:
 * CMake's *_binary tests.) */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "copy_binary.h"
#include "pqs_test.h"

/* ---- what every getter says of a value, as one line ---- */

typedef struct {
  char *p;
  size_t len, cap;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    size_t room = b->cap - b->len;
    int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if ((size_t)n < room) {
      b->len += (size_t)n;
      return;
    }
    b->cap = (b->cap + (size_t)n + 1) * 2;
    b->p = realloc(b->p, b->cap);
    ck_assert_ptr_nonnull(b->p);
  }
}

/* The types whose text a binary row promises (pqs_row_text). */
static int exact_text(uint32_t t) {
  switch (t) {
  case PQS_OID_BOOL:
  case PQS_OID_BYTEA:
  case PQS_OID_INT2:
  case PQS_OID_INT4:
  case PQS_OID_INT8:
  case PQS_OID_OID:
  case PQS_OID_FLOAT4:
  case PQS_OID_FLOAT8:
  case PQS_OID_NUMERIC:
  case PQS_OID_UUID:
  case PQS_OID_TEXT:
  case PQS_OID_VARCHAR:
  case PQS_OID_BPCHAR:
  case PQS_OID_NAME:
  case PQS_OID_JSON:
  case PQS_OID_JSONB:
    return 1;
  default:
    return 0;
  }
}

static void observe(sbuf_t *b, const pqs_row_t *r, int c, int depth);

static void observe_array(sbuf_t *b, const pqs_row_t *r, int c, int depth) {
  pqs_array_t a;
  int rc = pqs_row_array(r, c, &a);
  sb_printf(b, " array=%d", rc);
  if (rc != 0)
    return;
  sb_printf(b, "[%u lo=%d n=%d:", a.elem_type, a.lower, a.len);
  const pqs_row_t *e;
  int got = 0;
  while ((rc = pqs_array_next(&a, &e)) == 1) {
    ck_assert_int_eq(pqs_row_type(e, 0), a.elem_type);
    observe(b, e, 0, depth + 1);
    sb_printf(b, ";");
    got++;
  }
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(got, a.len);
  sb_printf(b, "]");
}

static void observe(sbuf_t *b, const pqs_row_t *r, int c, int depth) {
  uint32_t t = pqs_row_type(r, c);
  int16_t i16 = 0;
  int32_t i32 = 0;
  int64_t i64 = 0;
  double d = 0;
  int flag = 0, rc;
  sb_printf(b, "null=%d", pqs_row_is_null(r, c));
  rc = pqs_row_int16(r, c, &i16);
  sb_printf(b, " i16=%d:%d", rc, rc ? 0 : i16);
  rc = pqs_row_int32(r, c, &i32);
  sb_printf(b, " i32=%d:%d", rc, rc ? 0 : i32);
  rc = pqs_row_int64(r, c, &i64);
  sb_printf(b, " i64=%d:%lld", rc, rc ? 0LL : (long long)i64);
  rc = pqs_row_double(r, c, &d);
  sb_printf(b, " dbl=%d:%a", rc, rc ? 0.0 : d);
  rc = pqs_row_bool(r, c, &flag);
  sb_printf(b, " bool=%d:%d", rc, rc ? 0 : flag);
  size_t n = 0;
  rc = pqs_row_bytea(r, c, NULL, 0, &n);
  sb_printf(b, " bytea=%d:%zu", rc, rc == PQS_ERANGE || rc == 0 ? n : 0);
  if (rc == PQS_ERANGE || (rc == 0 && n == 0)) {
    unsigned char *bytes = malloc(n + 1);
    ck_assert_int_eq(pqs_row_bytea(r, c, bytes, n, &n), 0);
    for (size_t i = 0; i < n; i++)
      sb_printf(b, "%02x", bytes[i]);
    free(bytes);
  }
  const char *text;
  rc = pqs_row_decimal(r, c, &text, &n);
  sb_printf(b, " dec=%d:%s", rc, rc ? "" : text);
  rc = pqs_row_numeric_double(r, c, &d);
  sb_printf(b, " ndbl=%d:%a", rc, rc ? 0.0 : d);
  rc = pqs_row_numeric_int64(r, c, &i64);
  sb_printf(b, " nint=%d:%lld", rc, rc ? 0LL : (long long)i64);
  rc = pqs_row_timestamp_us(r, c, &i64);
  sb_printf(b, " ts=%d:%lld", rc, rc ? 0LL : (long long)i64);
  rc = pqs_row_time_us(r, c, &i64);
  sb_printf(b, " time=%d:%lld", rc, rc ? 0LL : (long long)i64);
  uint8_t u[16];
  rc = pqs_row_uuid(r, c, u);
  sb_printf(b, " uuid=%d:", rc);
  for (int i = 0; rc == 0 && i < 16; i++)
    sb_printf(b, "%02x", u[i]);
  pqs_interval_t iv;
  rc = pqs_row_interval(r, c, &iv);
  sb_printf(b, " iv=%d:%d/%d/%lld", rc, rc ? 0 : iv.months, rc ? 0 : iv.days,
            rc ? 0LL : (long long)iv.usec);
  if (depth == 0)
    observe_array(b, r, c, depth);
  /* The text, where a binary row promises it; else it must refuse. */
  rc = pqs_row_get_text(r, c, &text, &n);
  if (exact_text(t) || !pqs_row_is_binary(r)) {
    if (exact_text(t))
      sb_printf(b, " text=%d:%s", rc, rc ? "" : text);
  } else {
    ck_assert_int_eq(rc, pqs_row_is_null(r, c) ? PQS_ENULL : PQS_ETYPE);
    ck_assert_ptr_null(pqs_row_text(r, c, NULL));
  }
}

/* ---- a query's observations, by source and format ---- */

typedef struct {
  pt_done_t done; /* first: pt_on_done records here */
  sbuf_t out;
  int binary_rows; /* rows that said they were binary */
  uint64_t rows;
} obs_t;

static int obs_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  obs_t *o = data;
  o->binary_rows += pqs_row_is_binary(row);
  o->rows++;
  for (int c = 0; c < pqs_row_ncols(row); c++) {
    observe(&o->out, row, c, 0);
    sb_printf(&o->out, "|");
  }
  sb_printf(&o->out, "\n");
  return PQS_CONTINUE;
}

static void run_observed(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                         pqs_source_t source, pqs_result_format_t format,
                         obs_t *o) {
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT setseed(0.4242)"), 0);
  pqs_query_opts_t qo = {.source = source, .result_format = format};
  pqs_stream_t *s = pt_query(ctx, sql, &qo);
  pqs_stream_cbs_t cbs = {.on_row = obs_row, .on_done = pt_on_done};
  pt_stream_wait(loop, s, &cbs, o, &o->done);
  ck_assert_msg(o->done.status == 0, "%s: %s: %s", sql,
                pqs_err_name(o->done.status), o->done.message);
  ck_assert_uint_eq(o->done.rows, o->rows);
}

/* The first line where two observations differ, for the message. */
static void assert_same(const char *what, const obs_t *want, const obs_t *got) {
  if (want->out.len == got->out.len &&
      memcmp(want->out.p, got->out.p, want->out.len) == 0)
    return;
  const char *a = want->out.p, *b = got->out.p;
  int line = 1;
  while (*a && *a == *b) {
    line += *a == '\n';
    a++, b++;
  }
  for (int back = 0; back < 200 && a > want->out.p && a[-1] != '\n'; back++)
    a--, b--;
  ck_abort_msg("%s: row %d differs:\n text:   %.400s\n binary: %.400s", what,
               line, a, b);
}

/* 100k values a type, from the server's random() with a fixed seed, then
 * the edge values, in a fixed order. */
#define N "100000"
static const struct {
  const char *name, *sql;
} types[] = {
    {"int2", "SELECT v FROM (SELECT i, (random()*65535-32768)::int2 AS v FROM "
             "generate_series(1," N ") i UNION ALL SELECT 0, x FROM unnest("
             "array[-32768,32767,0,NULL]::int2[]) x) t ORDER BY i"},
    {"int4", "SELECT v FROM (SELECT i, (random()*4294967295-2147483648)::int4 "
             "AS v FROM generate_series(1," N ") i UNION ALL SELECT 0, x FROM "
             "unnest(array[-2147483648,2147483647,0,NULL]::int4[]) x) t ORDER "
             "BY i"},
    {"int8", "SELECT v FROM (SELECT i, ((random()-0.5)*1.8e19)::int8 AS v FROM "
             "generate_series(1," N ") i UNION ALL SELECT 0, x FROM unnest("
             "array[-9223372036854775808,9223372036854775807,0,9007199254740993,"
             "NULL]::int8[]) x) t ORDER BY i"},
    {"oid", "SELECT v FROM (SELECT i, (random()*4294967295)::int8::oid AS v "
            "FROM generate_series(1," N ") i UNION ALL SELECT 0, x FROM unnest("
            "array[0,4294967295]::oid[]) x) t ORDER BY i"},
    {"float8",
     "SELECT v FROM (SELECT i, ((random()-0.5)*10^(random()*600-300))::float8 "
     "AS v FROM generate_series(1," N ") i UNION ALL SELECT 1, power(2::float8,"
     " k) FROM generate_series(-1074, 1023) k UNION ALL SELECT 2, "
     "(random()*1e6)::int8::float8 / 1000 FROM generate_series(1, 10000) "
     "UNION ALL SELECT 0, x FROM unnest(array['NaN','Infinity','-Infinity',"
     "'-0','0','5e-324','2.2250738585072014e-308','2.225073858507201e-308',"
     "'1.7976931348623157e308','1e15','999999999999999','1e-4','9.99e-5',"
     "'123456789012345.6','0.1','1e22','1e23',NULL]::float8[]) x) t "
     "ORDER BY i"},
    {"float4",
     "SELECT v FROM (SELECT i, ((random()-0.5)*10^(random()*76-38))::float4 "
     "AS v FROM generate_series(1," N ") i UNION ALL SELECT 1, "
     "power(2::float8, k)::float4 FROM generate_series(-149, 127) k UNION ALL "
     "SELECT 0, x FROM unnest(array['NaN','Infinity','-Infinity','-0','1e-45',"
     "'1.1754944e-38','3.4028235e38','100000','1e6','1234567','0.0001',"
     "'1.5e-5',NULL]::float4[]) x) t ORDER BY i"},
    {"bool", "SELECT v FROM (SELECT i, random() < 0.5 AS v FROM "
             "generate_series(1," N ") i UNION ALL SELECT 0, NULL) t ORDER BY i"},
    {"numeric",
     "SELECT v FROM (SELECT i, round(((random()-0.5)*10^(random()*40))::"
     "numeric, (random()*20)::int) AS v FROM generate_series(1," N ") i "
     "UNION ALL SELECT 0, x FROM unnest(array['NaN','Infinity','-Infinity',"
     "'0','0.0001','-0.00000001','10000','100000000','12345678901234567890',"
     "'-9223372036854775808','9223372036854775808','42.000','1e-300',"
     "'1e300',NULL]::numeric[]) x UNION ALL SELECT 0, repeat('9', 1000)::"
     "numeric UNION ALL SELECT 0, ('0.' || repeat('0', 998) || '1')::numeric "
     "UNION ALL SELECT 0, round(1.5, 16383) UNION ALL SELECT 0, "
     "round(-123.456::numeric, 0)) t ORDER BY i"},
    {"date", "SELECT v FROM (SELECT i, '2000-01-01'::date + (random()*2000000"
             "-1000000)::int AS v FROM generate_series(1," N ") i UNION ALL "
             "SELECT 0, x FROM unnest(array['4713-01-01 BC','0001-01-01 BC',"
             "'5874897-12-31','infinity','-infinity',NULL]::date[]) x) t "
             "ORDER BY i"},
    {"time", "SELECT v FROM (SELECT i, '00:00'::time + random()*'24 hours'::"
             "interval AS v FROM generate_series(1," N ") i UNION ALL SELECT "
             "0, x FROM unnest(array['00:00','23:59:59.999999','24:00:00',"
             "NULL]::time[]) x) t ORDER BY i"},
    {"timestamp",
     "SELECT v FROM (SELECT i, '2000-01-01'::timestamp + (random()-0.5)*"
     "'4000 years'::interval AS v FROM generate_series(1," N ") i UNION ALL "
     "SELECT 0, x FROM unnest(array['4713-01-01 00:00 BC','0044-03-15 "
     "12:00:00.5 BC','294276-12-31 23:59:59.999999','infinity','-infinity',"
     "NULL]::timestamp[]) x) t ORDER BY i"},
    {"timestamptz",
     "SELECT v FROM (SELECT i, '2000-01-01'::timestamptz + (random()-0.5)*"
     "'400 years'::interval AS v FROM generate_series(1," N ") i UNION ALL "
     "SELECT 0, x FROM unnest(array['1900-01-01 00:00 Europe/Amsterdam',"
     "'1000-01-01 00:00 BC','infinity','-infinity',NULL]::timestamptz[]) x) "
     "t ORDER BY i"},
    {"interval",
     "SELECT v FROM (SELECT i, make_interval(months => (random()*2000-1000)"
     "::int, days => (random()*2000-1000)::int, secs => (random()-0.5)*1e7) "
     "AS v FROM generate_series(1," N ") i UNION ALL SELECT 0, x FROM "
     "unnest(array['0','-1 mon 2 days -00:00:00.000001','178000000 years',"
     "NULL]::interval[]) x) t ORDER BY i"},
    {"uuid", "SELECT v FROM (SELECT i, md5(random()::text)::uuid AS v FROM "
             "generate_series(1," N ") i UNION ALL SELECT 0, NULL) t ORDER BY i"},
    {"bytea", "SELECT v FROM (SELECT i, decode(md5(random()::text), 'hex') || "
              "'\\x00ff'::bytea AS v FROM generate_series(1," N ") i UNION ALL "
              "SELECT 0, x FROM unnest(array['\\x'::bytea, NULL]) x) t ORDER "
              "BY i"},
    {"text", "SELECT v FROM (SELECT i, md5(random()::text) || E'\\t\\\\ \"\\n"
             "é' AS v FROM generate_series(1," N ") i UNION ALL SELECT 0, x "
             "FROM unnest(array['', NULL]) x) t ORDER BY i"},
    {"varchar/bpchar/name",
     "SELECT a::varchar(40), a::char(40), a::name FROM (SELECT i, "
     "md5(random()::text) AS a FROM generate_series(1," N ") i UNION ALL "
     "SELECT 0, '') t ORDER BY i"},
    {"json/jsonb",
     "SELECT j::json, j::jsonb FROM (SELECT i, json_build_object('a', i, "
     "'b', md5(random()::text), 'c', array[random(), NULL])::text AS j FROM "
     "generate_series(1," N ") i UNION ALL SELECT 0, '[]' UNION ALL SELECT "
     "0, '{\"é\": \"\\u00e9x\"}' UNION ALL SELECT 0, NULL) t ORDER BY i"},
    {"arrays",
     "SELECT ARRAY[(random()*100)::int4, NULL, i] AS a4, ARRAY[i::int8, "
     "-i]::int8[] AS a8, ARRAY[md5(i::text), 'q\"u\\o,te {x}', NULL, "
     "'NULL', ''] AS at, ARRAY[random(), 'NaN', '-0']::float8[] AS af, "
     "ARRAY[i::numeric / 7]::numeric[] AS an, ARRAY['2000-01-01'::"
     "timestamptz + i * '1 hour'::interval] AS ats, ARRAY[decode(md5("
     "i::text), 'hex')] AS ab, ARRAY[md5(i::text)::uuid] AS au, "
     "ARRAY[true, NULL] AS abool, ARRAY['2000-01-01'::date + i] AS ad "
     "FROM generate_series(1, 20000) i UNION ALL SELECT '{}', '{}', '{}', "
     "'{}', '{}', '{}', '{}', '{}', '{}', '{}' UNION ALL SELECT "
     "'[0:2]={1,2,3}', '[-5:-5]={7}', '[3:4]={a,b}', NULL, NULL, NULL, "
     "NULL, NULL, NULL, NULL"},
};

START_TEST(getters_agree_on_every_type) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  const char *name = types[_i].name, *sql = types[_i].sql;
  obs_t text = {0};
  run_observed(loop, ctx, sql, PQS_SOURCE_SINGLE_ROW, PQS_RESULT_TEXT, &text);
  ck_assert_int_eq(text.binary_rows, 0);
  ck_assert_uint_gt(text.rows, 0);
  const pqs_source_t sources[] = {PQS_SOURCE_SINGLE_ROW, PQS_SOURCE_COPY};
  for (int k = 0; k < 2; k++) {
    obs_t bin = {0};
    run_observed(loop, ctx, sql, sources[k], PQS_RESULT_BINARY, &bin);
    ck_assert_uint_eq(bin.rows, text.rows);
    ck_assert_uint_eq((uint64_t)bin.binary_rows, bin.rows);
    char what[96];
    snprintf(what, sizeof(what), "%s, %s source", name,
             k ? "COPY" : "single-row");
    assert_same(what, &text, &bin);
    free(bin.out.p);
  }
  free(text.out.p);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* ---- the text of binary rows, against the server's own ---- */

/* Sinks refuse a binary column without exact text before the first row,
 * naming it; and write the server's bytes for the ones with. */
static void on_sink(pqs_sink_t *k, const pqs_done_t *done, uint64_t bytes,
                    void *data) {
  (void)k;
  (void)bytes;
  pt_record(data, done);
}

START_TEST(sinks_refuse_inexact_columns) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_query_opts_t qo = {.result_format = PQS_RESULT_BINARY};
  pqs_stream_t *s =
      pt_query(ctx, "SELECT 1 AS n, now() AS stamp FROM generate_series(1,5)",
               &qo);
  FILE *f = tmpfile();
  pt_done_t done = {0};
  pqs_sink_opts_t so = {.format = PQS_FORMAT_CSV};
  ck_assert_int_eq(pqs_sink_fd(s, loop, fileno(f), &so, on_sink, &done), 0);
  while (done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(done.status, PQS_ETYPE);
  ck_assert_msg(strstr(done.message, "\"stamp\"") != NULL, "%s", done.message);
  ck_assert_int_eq(ftell(f), 0); /* not one row */
  fclose(f);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(sinks_write_server_text) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  PGconn *admin = pt_admin();
  const char *sql =
      "SELECT i, i::int2 AS s, -i::int8 * 1000003 AS b, i / 7.0 AS n, "
      "(i * 1.1)::float8 / 3 AS f, (i / 3.0)::float4 AS r, i % 2 = 0 AS t, "
      "md5(i::text) AS x, md5(i::text)::uuid AS u, decode(md5(i::text), "
      "'hex') AS y, json_build_object('i', i)::jsonb AS j FROM "
      "generate_series(1, 3000) i";
  size_t want_len;
  char *want = pt_server_copy(admin, sql, "", &want_len);
  const pqs_source_t sources[] = {PQS_SOURCE_SINGLE_ROW, PQS_SOURCE_COPY};
  for (int k = 0; k < 2; k++) {
    pqs_query_opts_t qo = {.source = sources[k],
                           .result_format = PQS_RESULT_BINARY};
    pqs_stream_t *s = pt_query(ctx, sql, &qo);
    FILE *tmp = tmpfile();
    pt_done_t done = {0};
    pqs_sink_opts_t so = {.format = PQS_FORMAT_TSV};
    ck_assert_int_eq(pqs_sink_fd(s, loop, fileno(tmp), &so, on_sink, &done),
                     0);
    while (done.calls == 0)
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_msg(done.status == 0, "%s", done.message);
    long n = ftell(tmp);
    char *got = malloc((size_t)n + 1);
    rewind(tmp);
    ck_assert_int_eq(fread(got, 1, (size_t)n, tmp), (size_t)n);
    pt_assert_same_bytes("binary rows through a tsv sink", want, want_len,
                         got, (size_t)n);
    free(got);
    fclose(tmp);
  }
  free(want);
  PQfinish(admin);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* ---- the binary COPY parser, fed bytes directly ---- */

typedef struct {
  char **msg;
  size_t *len;
  int n;
} stream_t;

/* A real binary COPY stream, message by message. */
static stream_t server_stream(const char *sql) {
  PGconn *admin = pt_admin();
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "COPY (%s) TO STDOUT (FORMAT binary)", sql);
  PGresult *r = PQexec(admin, cmd);
  ck_assert_int_eq(PQresultStatus(r), PGRES_COPY_OUT);
  PQclear(r);
  stream_t st = {0};
  char *buf;
  int n;
  while ((n = PQgetCopyData(admin, &buf, 0)) > 0) {
    st.msg = realloc(st.msg, (size_t)(st.n + 1) * sizeof(*st.msg));
    st.len = realloc(st.len, (size_t)(st.n + 1) * sizeof(*st.len));
    st.msg[st.n] = malloc((size_t)n + 1);
    memcpy(st.msg[st.n], buf, (size_t)n + 1);
    st.len[st.n++] = (size_t)n;
    PQfreemem(buf);
  }
  ck_assert_int_eq(n, -1);
  r = PQgetResult(admin);
  ck_assert_int_eq(PQresultStatus(r), PGRES_COMMAND_OK);
  PQclear(r);
  PQfinish(admin);
  return st;
}

static void stream_free(stream_t *st) {
  for (int i = 0; i < st->n; i++)
    free(st->msg[i]);
  free(st->msg);
  free(st->len);
}

/* Parses each message from an exact-size copy (so that ASan sees any read
 * past it): the number of rows, or the first error with *why. */
static int parse_all(char **msg, const size_t *len, int n, int ncols,
                     const char **why) {
  pqs__cell_t cells[8];
  pqs__bin_state_t state = PQS__BIN_HEADER;
  int rows = 0;
  *why = NULL;
  for (int i = 0; i < n; i++) {
    char *copy = malloc(len[i] + 1);
    memcpy(copy, msg[i], len[i]);
    copy[len[i]] = '\0';
    int rc = pqs__copy_binary_row(&state, copy, len[i], cells, ncols, why);
    if (rc == 1) {
      for (int c = 0; c < ncols; c++) /* every cell within the message */
        ck_assert(cells[c].len < 0 ||
                  (cells[c].ptr >= copy &&
                   cells[c].ptr + cells[c].len <= copy + len[i]));
      rows++;
    }
    free(copy);
    if (rc < 0) {
      ck_assert_ptr_nonnull(*why); /* every refusal says why */
      return rc;
    }
  }
  return state == PQS__BIN_ENDED ? rows : PQS_EINVAL;
}

#define COPY_SQL                                                              \
  "SELECT i, md5(i::text) AS t, CASE WHEN i % 3 = 0 THEN NULL ELSE i * 1.5 "  \
  "END AS n FROM generate_series(1, 50) i"

START_TEST(copy_parser_refuses_bad_input) {
  stream_t st = server_stream(COPY_SQL);
  const char *why;
  ck_assert_int_eq(st.n, 51); /* 50 rows, the last message the trailer */
  ck_assert_int_eq(parse_all(st.msg, st.len, st.n, 3, &why), 50);
  /* Truncated header. */
  size_t keep = st.len[0];
  st.len[0] = 10;
  ck_assert_int_eq(parse_all(st.msg, st.len, st.n, 3, &why), PQS_EINVAL);
  ck_assert_ptr_nonnull(strstr(why, "header"));
  /* Truncated tuple. */
  st.len[0] = keep;
  keep = st.len[1];
  st.len[1] = keep - 3;
  ck_assert_int_eq(parse_all(st.msg, st.len, st.n, 3, &why), PQS_EINVAL);
  ck_assert_msg(strstr(why, "truncated") || strstr(why, "past"), "%s", why);
  st.len[1] = keep;
  /* A field length past the end: the first field of message 2. */
  char save[4];
  memcpy(save, st.msg[2] + 2, 4);
  memcpy(st.msg[2] + 2, "\x00\x00\x10\x00", 4);
  ck_assert_int_eq(parse_all(st.msg, st.len, st.n, 3, &why), PQS_EINVAL);
  ck_assert_ptr_nonnull(strstr(why, "past"));
  /* A negative length other than -1. */
  memcpy(st.msg[2] + 2, "\xff\xff\xff\xfe", 4);
  ck_assert_int_eq(parse_all(st.msg, st.len, st.n, 3, &why), PQS_EINVAL);
  ck_assert_ptr_nonnull(strstr(why, "negative"));
  memcpy(st.msg[2] + 2, save, 4);
  /* A field count that disagrees with the description. */
  ck_assert_int_eq(parse_all(st.msg, st.len, st.n, 4, &why), PQS_EINVAL);
  ck_assert_ptr_nonnull(strstr(why, "field count"));
  /* No trailer: the stream is not whole. */
  ck_assert_int_eq(parse_all(st.msg, st.len, st.n - 1, 3, &why), PQS_EINVAL);
  /* A message after the trailer; bytes after it. */
  char *more[53];
  size_t more_len[53];
  for (int i = 0; i < st.n; i++)
    more[i] = st.msg[i], more_len[i] = st.len[i];
  more[st.n] = st.msg[st.n - 1], more_len[st.n] = st.len[st.n - 1];
  ck_assert_int_eq(parse_all(more, more_len, st.n + 1, 3, &why), PQS_EINVAL);
  more_len[st.n - 1] += 1; /* the NUL after it, as a byte */
  ck_assert_int_eq(parse_all(more, more_len, st.n, 3, &why), PQS_EINVAL);
  ck_assert_ptr_nonnull(strstr(why, "trailer"));
  stream_free(&st);
}
END_TEST

static uint64_t xorshift(uint64_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 7;
  *s ^= *s << 17;
  return *s;
}

START_TEST(copy_parser_survives_mutations) {
  stream_t st = server_stream(COPY_SQL);
  uint64_t seed = 0x9E3779B97F4A7C15u;
  int ok = 0, refused = 0;
  char **msg = calloc((size_t)st.n, sizeof(*msg));
  size_t *len = calloc((size_t)st.n, sizeof(*len));
  for (int round = 0; round < 10000; round++) {
    for (int i = 0; i < st.n; i++) {
      len[i] = st.len[i];
      msg[i] = calloc(1, len[i] + 64); /* room for added bytes */
      memcpy(msg[i], st.msg[i], len[i]);
    }
    int mutations = 1 + (int)(xorshift(&seed) % 4);
    for (int m = 0; m < mutations; m++) {
      int i = (int)(xorshift(&seed) % (uint64_t)st.n);
      uint64_t r = xorshift(&seed);
      size_t at = len[i] ? (size_t)(r >> 8) % len[i] : 0;
      switch (r % 4) {
      case 0: /* a byte flipped */
        if (len[i])
          msg[i][at] ^= (char)(1 + (r >> 40) % 255);
        break;
      case 1: /* cut short */
        len[i] = at;
        break;
      case 2: /* a length field made extreme */
        if (at + 4 <= len[i])
          memcpy(msg[i] + at, (r >> 40) & 1 ? "\x7f\xff\xff\xff" : "\xff\xff"
                                                                     "\xff\x80",
                 4);
        break;
      default: /* bytes added (zeros), within the room */
        if (len[i] + 8 <= st.len[i] + 64)
          len[i] += 1 + (r >> 40) % 7;
        break;
      }
    }
    const char *why;
    int rc = parse_all(msg, len, st.n, 3, &why);
    if (rc >= 0) {
      ok++;
    } else {
      ck_assert_int_eq(rc, PQS_EINVAL);
      ck_assert_ptr_nonnull(why);
      refused++;
    }
    for (int i = 0; i < st.n; i++)
      free(msg[i]);
  }
  ck_assert_int_gt(refused, 5000); /* most mutations are caught */
  ck_assert_int_gt(ok, 0);         /* and a flipped value byte is just data */
  free(msg);
  free(len);
  stream_free(&st);
}
END_TEST

int main(void) {
  Suite *s = suite_create("binary");
  TCase *tc = tcase_create("binary");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, getters_agree_on_every_type, 0,
                      (int)(sizeof(types) / sizeof(types[0])));
  tcase_add_test(tc, sinks_refuse_inexact_columns);
  tcase_add_test(tc, sinks_write_server_text);
  tcase_add_test(tc, copy_parser_refuses_bad_input);
  tcase_add_test(tc, copy_parser_survives_mutations);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
