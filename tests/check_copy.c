/* The COPY-backed row source against single-row mode on the same server:
 * the same rows, values and errors; parameters bound safely; statements
 * COPY cannot run falling back; sinks passing COPY's bytes through. (The
 * other suites also run whole over the COPY source: CMake's *_copy
 * tests.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <fcntl.h>

#include "copy_text.h"
#include "pqs_test.h"

/* ---- every row of a query, as text, by either source ---- */

typedef struct {
  char *text; /* "v|v|\N\n" per row: NULL as \N, values as they are */
  size_t len, cap;
  int ncols;
  uint32_t types[32];
  char names[32][64];
  pt_done_t done;
  char tag[64];
  int position;
  char errtext[1024];
} got_t;

static void put(got_t *g, const char *p, size_t n) {
  if (g->len + n + 1 > g->cap) {
    g->cap = (g->len + n + 1) * 2;
    g->text = realloc(g->text, g->cap);
  }
  memcpy(g->text + g->len, p, n);
  g->len += n;
  g->text[g->len] = '\0';
}

static int on_columns(pqs_stream_t *s, const pqs_row_t *cols, void *data) {
  (void)s;
  got_t *g = data;
  g->ncols = pqs_row_ncols(cols);
  for (int i = 0; i < g->ncols && i < 32; i++) {
    g->types[i] = pqs_row_type(cols, i);
    snprintf(g->names[i], sizeof(g->names[i]), "%s", pqs_row_name(cols, i));
  }
  return PQS_CONTINUE;
}

static int on_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  got_t *g = data;
  for (int i = 0; i < pqs_row_ncols(row); i++) {
    size_t n;
    const char *v = pqs_row_text(row, i, &n);
    ck_assert_int_eq(pqs_row_is_null(row, i), v == NULL);
    if (i)
      put(g, "|", 1);
    if (v == NULL)
      put(g, "\\N", 2);
    else
      put(g, v, n);
  }
  put(g, "\n", 1);
  return PQS_CONTINUE;
}

static void on_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  got_t *g = data;
  pt_on_done(s, done, &g->done);
  snprintf(g->tag, sizeof(g->tag), "%s",
           done->command_tag ? done->command_tag : "");
  if (done->error) {
    g->position = done->error->position;
    snprintf(g->errtext, sizeof(g->errtext), "%s",
             done->error->text ? done->error->text : "");
  }
}

static void fetch(uv_loop_t *loop, pqs_ctx_t *ctx, pqs_source_t source,
                  const char *sql, int nparams, const char *const *params,
                  got_t *g) {
  memset(g, 0, sizeof(*g));
  put(g, "", 0);
  pqs_query_opts_t o = {.source = source};
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_query(ctx, &s, sql, nparams, params, &o), 0);
  pqs_stream_cbs_t cbs = {
      .on_columns = on_columns, .on_row = on_row, .on_done = on_done};
  pt_stream_wait(loop, s, &cbs, g, &g->done);
}

/* Both sources on `sql`: the same columns, rows and status. */
static void same_both(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                      int nparams, const char *const *params, got_t *copy) {
  got_t rows;
  fetch(loop, ctx, PQS_SOURCE_SINGLE_ROW, sql, nparams, params, &rows);
  fetch(loop, ctx, PQS_SOURCE_COPY, sql, nparams, params, copy);
  ck_assert_msg(copy->done.status == rows.done.status,
                "%s: copy %s (%s), single-row %s (%s)", sql,
                pqs_err_name(copy->done.status), copy->done.message,
                pqs_err_name(rows.done.status), rows.done.message);
  ck_assert_str_eq(copy->done.sqlstate, rows.done.sqlstate);
  ck_assert_int_eq(copy->ncols, rows.ncols);
  for (int i = 0; i < rows.ncols && i < 32; i++) {
    ck_assert_str_eq(copy->names[i], rows.names[i]);
    ck_assert_uint_eq(copy->types[i], rows.types[i]);
  }
  pt_assert_same_bytes(sql, rows.text, rows.len, copy->text, copy->len);
  ck_assert_uint_eq(copy->done.rows, rows.done.rows);
  free(rows.text);
}

static pqs_ctx_t *setup(uv_loop_t *loop) {
  PGconn *admin = pt_admin();
  pt_sql(admin, pt_awkward_sql);
  PQfinish(admin);
  return pt_open(loop, pt_conninfo());
}

START_TEST(awkward_values_as_single_row) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = setup(loop);
  got_t g;
  same_both(loop, ctx, "SELECT * FROM awkward ORDER BY id", 0, NULL, &g);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_uint_ge(g.done.rows, 10);
  char want[32];
  snprintf(want, sizeof(want), "COPY %llu", (unsigned long long)g.done.rows);
  ck_assert_str_eq(g.tag, want);
  free(g.text);
  /* escapes COPY writes for bytes of every value 1..255 */
  same_both(loop, ctx,
            "SELECT i, chr(i) || 'x' || chr(i), repeat(chr(i), 3) FROM "
            "generate_series(1, 255) i ORDER BY i",
            0, NULL, &g);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_uint_eq(g.done.rows, 255);
  free(g.text);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* $n only where it is code; values bound as libpq escapes them. */
START_TEST(hostile_parameters) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  static const char *const values[] = {"O'Reilly",
                                       "back\\slash",
                                       "\\'; SELECT 1; --",
                                       "$1",
                                       "$$ dollar $$",
                                       "-- not a comment",
                                       "/* nor this */",
                                       "E'\\x41'",
                                       "",
                                       "  spaces  ",
                                       "tab\there\nnewline",
                                       "日本語 ✓",
                                       NULL};
  const char *sql =
      "SELECT $1::text AS v, '$1' AS lit, $$ $1 $$ AS dq, $tag$$1$tag$ AS tq, "
      "\"a$1\".x AS ident, -- $1 in a comment\n"
      " /* and $1 /* nested */ here */ length($1) AS len, $2::int + 1 AS n "
      "FROM (VALUES (1)) AS \"a$1\"(x);";
  for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
    const char *params[] = {values[i], "41"};
    got_t g;
    same_both(loop, ctx, sql, 2, params, &g);
    ck_assert_msg(g.done.status == 0, "value %zu: %s", i, g.done.message);
    ck_assert_uint_eq(g.done.rows, 1);
    ck_assert_str_eq(g.tag, "COPY 1");
    free(g.text);
  }
  /* types the server inferred are kept: pg_typeof, arithmetic, arrays,
   * LIMIT and FETCH FIRST take a bound value as they take $n */
  const char *params[] = {"{1,2,3}", "2", "1.5", "t"};
  got_t g;
  same_both(loop, ctx,
            "SELECT pg_typeof($1::int[]) AS t1, x, pg_typeof($3::numeric), "
            "$4::bool AND true FROM unnest($1::int[]) x WHERE x = ANY($1) "
            "ORDER BY x LIMIT $2",
            4, params, &g);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_uint_eq(g.done.rows, 2);
  free(g.text);
  const char *two[] = {"2"};
  same_both(loop, ctx,
            "SELECT g FROM generate_series(1, 5) g ORDER BY g "
            "FETCH FIRST $1 ROWS ONLY",
            1, two, &g);
  ck_assert_uint_eq(g.done.rows, 2);
  free(g.text);
  /* bytes that are not UTF-8: the server refuses them either way */
  const char *bad[] = {"\xff\xfe", "41"};
  same_both(loop, ctx, "SELECT $1::text, $2::int", 2, bad, &g);
  ck_assert_int_eq(g.done.status, PQS_ESQL);
  ck_assert_str_eq(g.done.sqlstate, "22021");
  free(g.text);
  /* the context is fine afterwards */
  same_both(loop, ctx, "SELECT 1", 0, NULL, &g);
  ck_assert_int_eq(g.done.status, 0);
  free(g.text);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* What COPY cannot run still runs, in single-row mode. */
START_TEST(fallback_to_single_row) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = setup(loop);
  got_t g;
  same_both(loop, ctx, "SHOW server_version_num", 0, NULL, &g);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_str_eq(g.tag, "SHOW");
  free(g.text);
  same_both(loop, ctx, "EXPLAIN SELECT 1", 0, NULL, &g);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_str_eq(g.tag, "EXPLAIN");
  free(g.text);
  /* no RETURNING: no columns, so not COPY */
  fetch(loop, ctx, PQS_SOURCE_COPY, "UPDATE awkward SET t = t WHERE id < 3", 0,
        NULL, &g);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_str_eq(g.tag, "UPDATE 2");
  free(g.text);
  /* with RETURNING: COPY, the rows returned */
  fetch(loop, ctx, PQS_SOURCE_COPY,
        "UPDATE awkward SET t = t WHERE id < 4 RETURNING id", 0, NULL, &g);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_str_eq(g.tag, "COPY 3");
  ck_assert_uint_eq(g.done.rows, 3);
  free(g.text);
  /* a final semicolon and comment, parenthesised, VALUES, TABLE, WITH */
  same_both(loop, ctx, "  (SELECT 1 AS a) ; -- done", 0, NULL, &g);
  ck_assert_str_eq(g.tag, "COPY 1");
  free(g.text);
  same_both(loop, ctx, "VALUES (1, 'a'), (2, NULL)", 0, NULL, &g);
  ck_assert_uint_eq(g.done.rows, 2);
  free(g.text);
  same_both(loop, ctx, "WITH w AS (SELECT 2 AS x) TABLE w", 0, NULL, &g);
  ck_assert_uint_eq(g.done.rows, 1);
  free(g.text);
  /* a statement the lexer lets through but that the server will not
   * prepare: its error, as in single-row mode */
  same_both(loop, ctx, "SELECT 1; SELECT 2", 0, NULL, &g);
  ck_assert_int_eq(g.done.status, PQS_ESQL);
  free(g.text);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Errors: the position is in the user's text, never in the COPY's. */
START_TEST(errors_as_single_row) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  got_t rows, copy;
  const char *sql = "SELECT 1,\n  nosuchcolumn FROM (SELECT 1) s";
  fetch(loop, ctx, PQS_SOURCE_SINGLE_ROW, sql, 0, NULL, &rows);
  same_both(loop, ctx, sql, 0, NULL, &copy);
  ck_assert_int_eq(copy.done.status, PQS_ESQL);
  ck_assert_str_eq(copy.done.sqlstate, "42703");
  ck_assert_int_gt(copy.position, 0);
  ck_assert_int_eq(copy.position, rows.position);
  ck_assert_str_eq(copy.errtext, rows.errtext);
  free(rows.text);
  free(copy.text);
  /* a bound value the server rejects: no position, no LINE of COPY text */
  const char *bad[] = {"abc"};
  same_both(loop, ctx, "SELECT $1::int AS n", 1, bad, &copy);
  ck_assert_str_eq(copy.done.sqlstate, "22P02");
  ck_assert_int_eq(copy.position, 0);
  ck_assert_msg(strstr(copy.errtext, "COPY") == NULL &&
                    strstr(copy.errtext, "LINE") == NULL,
                "error text: %s", copy.errtext);
  free(copy.text);
  /* an error after rows: the rows, then the error with its SQLSTATE */
  same_both(loop, ctx, "SELECT 10 / (5 - g) FROM generate_series(1, 10) g", 0,
            NULL, &copy);
  ck_assert_int_eq(copy.done.status, PQS_ESQL);
  ck_assert_str_eq(copy.done.sqlstate, "22012");
  ck_assert_uint_eq(copy.done.rows, 4);
  free(copy.text);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* ---- sinks: the server's bytes through, whatever stages count ---- */

typedef struct {
  pt_done_t done;
  uint64_t bytes;
  int calls;
} sunk_t;

static void on_sunk(pqs_sink_t *k, const pqs_done_t *done, uint64_t bytes,
                    void *data) {
  (void)k;
  sunk_t *s = data;
  pt_record(&s->done, done);
  s->bytes = bytes;
  s->calls++;
}

static int keep_odd(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  (void)data;
  int32_t id;
  ck_assert_int_eq(pqs_row_int32(row, 0, &id), 0);
  return id % 2 == 1;
}

static int look(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  ++*(int *)data;
  size_t n;
  pqs_row_text(row, 1, &n); /* a value read from a line passed on */
  return PQS_CONTINUE;
}

/* Writes `sql` through a sink in `format`, with the stages asked for, to a
 * file; its bytes. */
static char *sink_to_file(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                          pqs_format_t format, int header, int filter, int tap,
                          size_t *len) {
  pqs_query_opts_t o = {.source = PQS_SOURCE_COPY};
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_query(ctx, &s, sql, 0, NULL, &o), 0);
  int looked = 0;
  if (filter)
    ck_assert_int_eq(pqs_stream_filter(s, keep_odd, NULL, NULL), 0);
  if (tap)
    ck_assert_int_eq(pqs_stream_tap(s, look, &looked, NULL), 0);
  char path[] = "/tmp/pqs-copy-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  sunk_t k = {0};
  pqs_sink_opts_t so = {.format = format, .header = header};
  ck_assert_int_eq(pqs_sink_fd(s, loop, fd, &so, on_sunk, &k), 0);
  while (k.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(k.done.status == 0, "%s", k.done.message);
  if (tap)
    ck_assert_int_gt(looked, 0);
  off_t size = lseek(fd, 0, SEEK_END);
  char *data = malloc((size_t)size + 1);
  ck_assert_int_eq(pread(fd, data, (size_t)size, 0), size);
  data[size] = '\0';
  close(fd);
  *len = (size_t)size;
  ck_assert_uint_eq(k.bytes, *len);
  return data;
}

START_TEST(sinks_pass_copy_bytes) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = setup(loop);
  PGconn *admin = pt_admin();
  const char *all = "SELECT * FROM awkward ORDER BY id";
  const char *odd = "SELECT * FROM awkward WHERE id % 2 = 1 ORDER BY id";
  struct {
    pqs_format_t format;
    int header, filter, tap;
    const char *want_sql, *options;
  } cases[] = {
      {PQS_FORMAT_TSV, 0, 0, 0, all, ""},
      {PQS_FORMAT_TSV, 1, 0, 1, all, "(HEADER)"},
      {PQS_FORMAT_TSV, 0, 1, 1, odd, ""},
      {PQS_FORMAT_CSV, 1, 0, 0, all, "(FORMAT csv, HEADER)"},
      {PQS_FORMAT_CSV, 0, 1, 0, odd, "(FORMAT csv)"},
      {PQS_FORMAT_CSV, 0, 0, 1, all, "(FORMAT csv)"},
      {PQS_FORMAT_CSV, 1, 1, 1, odd, "(FORMAT csv, HEADER)"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    size_t want_len, got_len;
    char *want =
        pt_server_copy(admin, cases[i].want_sql, cases[i].options, &want_len);
    char *got = sink_to_file(loop, ctx, all, cases[i].format, cases[i].header,
                             cases[i].filter, cases[i].tap, &got_len);
    char what[64];
    snprintf(what, sizeof(what), "case %zu", i);
    pt_assert_same_bytes(what, want, want_len, got, got_len);
    free(want);
    free(got);
  }
  PQfinish(admin);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* A COPY ... TO STDOUT of the caller's own: its data as sent, through
 * every sink format (with no header of theirs), whatever its options,
 * from either source; rows carry the bytes; a filter sees them; COPY
 * FROM STDIN is refused and the context stays usable. */
START_TEST(users_copy_to_streams_its_bytes) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = setup(loop);
  PGconn *admin = pt_admin();
  const char *q = "SELECT * FROM awkward ORDER BY id";
  const char *options[] = {"", "(FORMAT csv, HEADER, DELIMITER ';')",
                           "(FORMAT binary)", "(NULL 'nil', HEADER)"};
  pqs_format_t formats[] = {PQS_FORMAT_TSV, PQS_FORMAT_CSV, PQS_FORMAT_JSONL,
                            PQS_FORMAT_UNALIGNED, PQS_FORMAT_PSQL_CSV};
  for (size_t o = 0; o < 4; o++) {
    size_t want_len;
    char *want = pt_server_copy(admin, q, options[o], &want_len);
    char sql[256];
    snprintf(sql, sizeof(sql), "COPY (%s) TO STDOUT %s", q, options[o]);
    for (size_t f = 0; f < 5; f++) {
      size_t got_len;
      char *got = sink_to_file(loop, ctx, sql, formats[f], 1, 0, 0, &got_len);
      char what[96];
      snprintf(what, sizeof(what), "options %zu, format %zu", o, f);
      pt_assert_same_bytes(what, want, want_len, got, got_len);
      free(got);
    }
    free(want);
  }
  /* each row is one message: its value is the line */
  pqs_stream_t *s = pt_query(ctx, "COPY (SELECT 'a' UNION ALL SELECT 'b') "
                                  "TO STDOUT", NULL);
  got_t g = {0};
  pqs_stream_cbs_t cbs = {.on_columns = on_columns, .on_row = on_row,
                          .on_done = on_done};
  pt_stream_wait(loop, s, &cbs, &g, &g.done);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_str_eq(g.tag, "COPY 2");
  ck_assert_int_eq(g.done.rows, 2);
  ck_assert_int_eq(g.ncols, 1);
  ck_assert_str_eq(g.names[0], "copy_data");
  ck_assert_str_eq(g.text, "a\n\nb\n\n"); /* each value, newline kept */
  free(g.text);
  /* COPY FROM STDIN: refused, rolled back, the context usable */
  pqs_stream_t *in = pt_query(ctx, "COPY awkward FROM STDIN", NULL);
  got_t h = {0};
  pt_stream_wait(loop, in, &cbs, &h, &h.done);
  ck_assert_int_eq(h.done.status, PQS_EINVAL);
  ck_assert_ptr_nonnull(strstr(h.done.message, "pqs_copy_in"));
  free(h.text);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
  PQfinish(admin);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* A csv sink with stages that read values: the server is asked for csv
 * (its bytes pass through), and every value the stages read from those
 * lines is the value single-row mode gives. */
static int record_values(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  return on_row(s, row, data);
}

static void on_csv_sunk(pqs_sink_t *k, const pqs_done_t *done,
                        uint64_t bytes, void *data) {
  (void)k, (void)bytes;
  pt_record(&((got_t *)data)->done, done);
  ((got_t *)data)->done.calls = 1;
}

static got_t through_csv_sink(uv_loop_t *loop, pqs_ctx_t *ctx,
                              const char *sql, int fd) {
  got_t g;
  memset(&g, 0, sizeof(g));
  put(&g, "", 0);
  pqs_query_opts_t o = {.source = PQS_SOURCE_COPY};
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_query(ctx, &s, sql, 0, NULL, &o), 0);
  ck_assert_int_eq(pqs_stream_tap(s, record_values, &g, NULL), 0);
  pqs_sink_opts_t so = {.format = PQS_FORMAT_CSV};
  ck_assert_int_eq(pqs_sink_fd(s, loop, fd, &so, on_csv_sunk, &g), 0);
  while (g.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(g.done.status == 0, "%s", g.done.message);
  return g;
}

START_TEST(csv_lines_read_as_values) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = setup(loop);
  int null = open("/dev/null", O_WRONLY);
  const char *all = "SELECT * FROM awkward ORDER BY id";
  got_t rows, csv = through_csv_sink(loop, ctx, all, null);
  fetch(loop, ctx, PQS_SOURCE_SINGLE_ROW, all, 0, NULL, &rows);
  pt_assert_same_bytes("values from csv lines", rows.text, rows.len,
                       csv.text, csv.len);
  free(rows.text);
  free(csv.text);
  /* The statement the server ran asked for csv: its bytes pass through. */
  csv = through_csv_sink(loop, ctx, "SELECT current_query()", null);
  ck_assert_msg(strstr(csv.text, "TO STDOUT (FORMAT csv)") != NULL, "%s",
                csv.text);
  free(csv.text);
  close(null);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* The csv splitter on lines the server would send and lines it never
 * would: fields and NULLs where they are, malformed lines refused, and
 * no byte read outside the line whatever it holds (ASan). */
START_TEST(csv_split_edges) {
  struct {
    const char *line;
    int ncols;
    int rc;
    const char *want; /* fields joined by '|', NULL as \N */
  } cases[] = {
      {"a,b,c\n", 3, 0, "a|b|c"},
      {",,\n", 3, 0, "\\N|\\N|\\N"},
      {"\"\",\"\"\"\",\"a,b\"\n", 3, 0, "|\"|a,b"},
      {"\"line1\nline2\",x\n", 2, 0, "line1\nline2|x"},
      {"\"say \"\"hi\"\"\"\n", 1, 0, "say \"hi\""},
      {"\n", 1, 0, "\\N"},
      {"a,b\n", 3, PQS_EINVAL, NULL},
      {"a,b,c\n", 2, PQS_EINVAL, NULL},
      {"\"open,b\n", 2, PQS_EINVAL, NULL},
      {"\"a\"b,c\n", 2, PQS_EINVAL, NULL},
      {"a,b", 2, PQS_EINVAL, NULL},
  };
  for (size_t c = 0; c < sizeof(cases) / sizeof(*cases); c++) {
    size_t n = strlen(cases[c].line);
    char *line = malloc(n); /* exactly the line: ASan sees any overread */
    memcpy(line, cases[c].line, n);
    pqs__cell_t cells[4];
    int rc = pqs__copy_split_csv(line, n, cells, cases[c].ncols);
    ck_assert_msg(rc == cases[c].rc, "case %zu: %d", c, rc);
    if (rc == 0) {
      char got[256] = "";
      size_t len = 0;
      for (int i = 0; i < cases[c].ncols; i++)
        len += (size_t)snprintf(got + len, sizeof(got) - len, "%s%.*s",
                                i ? "|" : "", cells[i].ptr ? cells[i].len : 2,
                                cells[i].ptr ? cells[i].ptr : "\\N");
      ck_assert_str_eq(got, cases[c].want);
    }
    free(line);
  }
  /* Mutations of a real line: any result, never a fault. */
  const char *base = "\"a,\"\"b\",,c\"\"\n";
  uint32_t seed = 12345;
  for (int k = 0; k < 20000; k++) {
    size_t n = strlen(base);
    char *line = malloc(n);
    memcpy(line, base, n);
    for (int m = 0; m < 3; m++) {
      seed = seed * 1103515245u + 12345u;
      line[(seed >> 8) % n] = "\",\nx"[(seed >> 4) % 4];
    }
    pqs__cell_t cells[8];
    int rc = pqs__copy_split_csv(line, n, cells, 1 + (int)(seed % 5));
    ck_assert(rc == 0 || rc == PQS_EINVAL);
    free(line);
  }
}
END_TEST

/* A context default, and the busy rule over the extra round trips. */
START_TEST(context_default_and_busy) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_opts_t opts = {.source = PQS_SOURCE_COPY};
  pt_opened_t o = {0};
  pqs_ctx_t *ctx;
  ck_assert_int_eq(
      pqs_ctx_open(&ctx, loop, pt_conninfo(), &opts, pt_on_open, &o), 0);
  while (o.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(o.status, 0);
  got_t g;
  fetch(loop, ctx, PQS_SOURCE_DEFAULT, "SELECT 7 AS seven", 0, NULL, &g);
  ck_assert_str_eq(g.tag, "COPY 1");
  ck_assert_str_eq(g.text, "7\n");
  free(g.text);
  fetch(loop, ctx, PQS_SOURCE_SINGLE_ROW, "SELECT 7", 0, NULL, &g);
  ck_assert_str_eq(g.tag, "SELECT 1");
  free(g.text);
  pqs_stream_t *s, *other;
  pqs_query_opts_t bad = {.source = (pqs_source_t)9};
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT 1", 0, NULL, &bad), PQS_EINVAL);
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT pg_sleep(0.2)", 0, NULL, NULL),
                   0);
  pt_done_t d = {0};
  pqs_stream_cbs_t cbs = {.on_done = pt_on_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &d), 0);
  for (int i = 0; i < 5; i++) { /* through prepare, describe and COPY */
    ck_assert_int_eq(pqs_query(ctx, &other, "SELECT 1", 0, NULL, NULL),
                     PQS_EBUSY);
    uv_run(loop, UV_RUN_NOWAIT);
  }
  while (d.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(d.status, 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

int main(void) {
  Suite *s = suite_create("copy");
  TCase *tc = tcase_create("copy");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, awkward_values_as_single_row);
  tcase_add_test(tc, hostile_parameters);
  tcase_add_test(tc, fallback_to_single_row);
  tcase_add_test(tc, errors_as_single_row);
  tcase_add_test(tc, sinks_pass_copy_bytes);
  tcase_add_test(tc, users_copy_to_streams_its_bytes);
  tcase_add_test(tc, csv_lines_read_as_values);
  tcase_add_test(tc, csv_split_edges);
  tcase_add_test(tc, context_default_and_busy);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
