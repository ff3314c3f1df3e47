#define _DEFAULT_SOURCE /* strndup, strtok_r */
#include "pqs_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *pt_conninfo(void) {
  const char *c = getenv("PQS_TEST_CONNINFO");
  ck_assert_msg(c != NULL && *c,
                "PQS_TEST_CONNINFO is not set: run the suites through "
                "'bash scripts/dev.sh test', which starts a throwaway server");
  return c;
}

uv_loop_t *pt_loop_new(void) {
  uv_loop_t *loop = malloc(sizeof(*loop));
  ck_assert_ptr_nonnull(loop);
  ck_assert_int_eq(uv_loop_init(loop), 0);
  return loop;
}

static void walk_cb(uv_handle_t *h, void *arg) {
  (void)arg;
  fprintf(stderr, "handle left open: type %s\n", uv_handle_type_name(h->type));
}

void pt_loop_free(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(loop);
  if (rc != 0)
    uv_walk(loop, walk_cb, NULL);
  ck_assert_msg(rc == 0, "loop did not close cleanly: %s", uv_err_name(rc));
  free(loop);
}

void pt_on_open(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                void *data) {
  pt_opened_t *r = data;
  r->calls++;
  r->status = status;
  r->ctx = ctx;
  if (err)
    snprintf(r->msg, sizeof(r->msg), "%s", err->message);
}

pqs_source_t pt_source(void) {
  const char *s = getenv("PQS_TEST_SOURCE");
  if (s == NULL || *s == '\0' || strcmp(s, "single-row") == 0 ||
      strcmp(s, "pipeline") == 0)
    return PQS_SOURCE_SINGLE_ROW;
  ck_assert_msg(strcmp(s, "copy") == 0,
                "PQS_TEST_SOURCE is '%s': say single-row, copy or pipeline",
                s);
  return PQS_SOURCE_COPY;
}

int pt_copy(void) { return pt_source() == PQS_SOURCE_COPY; }

int pt_pipelined(void) {
  const char *s = getenv("PQS_TEST_SOURCE");
  return s != NULL && strcmp(s, "pipeline") == 0;
}

static void filler_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)s;
  (void)data;
  ck_assert_msg(done->status == 0, "the pipeline's first query: %s",
                pqs_strerror(done->status));
}

int pt_stream(pqs_ctx_t *ctx, pqs_stream_t **out, const char *sql,
              int nparams, const char *const *params,
              const pqs_query_opts_t *opts) {
  if (!pt_pipelined())
    return pqs_query(ctx, out, sql, nparams, params, opts);
  pqs_pipeline_opts_t po = {.result_format = pt_format()};
  if (opts != NULL && opts->timeout_ms)
    po.timeout_ms = opts->timeout_ms;
  if (opts != NULL && opts->result_format)
    po.result_format = opts->result_format;
  pqs_pipeline_t *pl;
  int rc = pqs_pipeline(ctx, &po, &pl);
  if (rc != 0)
    return rc;
  pqs_stream_t *first;
  static const pqs_stream_cbs_t cbs = {.on_done = filler_done};
  ck_assert_int_eq(
      pqs_pipeline_query(pl, &first, "SELECT 1 AS first", 0, NULL), 0);
  ck_assert_int_eq(pqs_stream_start(first, &cbs, NULL), 0);
  rc = pqs_pipeline_query(pl, out, sql, nparams, params);
  if (rc != 0) {
    pqs_pipeline_close(pl);
    return rc;
  }
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  return 0;
}

pqs_result_format_t pt_format(void) {
  const char *s = getenv("PQS_TEST_FORMAT");
  if (s == NULL || *s == '\0' || strcmp(s, "text") == 0)
    return PQS_RESULT_TEXT;
  ck_assert_msg(strcmp(s, "binary") == 0,
                "PQS_TEST_FORMAT is '%s': say text or binary", s);
  return PQS_RESULT_BINARY;
}

int pt_binary(void) { return pt_format() == PQS_RESULT_BINARY; }

pqs_ctx_t *pt_open(uv_loop_t *loop, const char *conninfo) {
  pt_opened_t r = {0};
  pqs_ctx_t *ctx = NULL;
  pqs_ctx_opts_t opts = {PT_SUITE_OPTS};
  ck_assert_int_eq(pqs_ctx_open(&ctx, loop, conninfo, &opts, pt_on_open, &r),
                   0);
  while (r.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(r.status == 0, "connect failed: %s: %s", pqs_err_name(r.status),
                r.msg);
  return ctx;
}

static void on_closed(pqs_ctx_t *ctx, void *data) {
  (void)ctx;
  ++*(int *)data;
}

void pt_close(uv_loop_t *loop, pqs_ctx_t *ctx) {
  int closed = 0;
  pqs_ctx_set_data(ctx, &closed);
  ck_assert_int_eq(pqs_ctx_close(ctx, on_closed), 0);
  while (closed == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(closed, 1);
}

void pt_record(pt_done_t *d, const pqs_done_t *done) {
  d->calls++;
  d->status = done->status;
  d->rows = done->rows;
  d->affected = done->affected;
  snprintf(d->tag, sizeof(d->tag), "%s",
           done->command_tag ? done->command_tag : "");
  d->sqlstate[0] = d->message[0] = '\0';
  if (done->error) {
    if (done->error->sqlstate)
      snprintf(d->sqlstate, sizeof(d->sqlstate), "%s", done->error->sqlstate);
    snprintf(d->message, sizeof(d->message), "%s", done->error->message);
  }
}

void pt_on_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)s;
  pt_record(data, done);
}

void pt_on_exec(pqs_ctx_t *ctx, const pqs_done_t *done, void *data) {
  (void)ctx;
  pt_record(data, done);
}

pqs_stream_t *pt_query(pqs_ctx_t *ctx, const char *sql,
                       const pqs_query_opts_t *opts) {
  pqs_stream_t *s = NULL;
  int rc = pt_stream(ctx, &s, sql, 0, NULL, opts);
  ck_assert_msg(rc == 0, "pqs_query(%s): %s", sql, pqs_err_name(rc));
  return s;
}

void pt_stream_wait(uv_loop_t *loop, pqs_stream_t *s,
                    const pqs_stream_cbs_t *cbs, void *data,
                    const pt_done_t *done) {
  ck_assert_int_eq(pqs_stream_start(s, cbs, data), 0);
  while (done->calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(done->calls, 1);
}

int pt_exec_wait(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql) {
  pt_done_t d = {0};
  ck_assert_int_eq(pqs_exec(ctx, sql, 0, NULL, NULL, pt_on_exec, &d), 0);
  while (d.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(d.calls, 1);
  return d.status;
}

PGconn *pt_admin(void) {
  PGconn *c = PQconnectdb(pt_conninfo());
  ck_assert_msg(PQstatus(c) == CONNECTION_OK, "admin connect: %s",
                PQerrorMessage(c));
  return c;
}

void pt_sql(PGconn *conn, const char *sql) {
  PGresult *r = PQexec(conn, sql);
  ExecStatusType st = PQresultStatus(r);
  ck_assert_msg(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK, "%s: %s", sql,
                PQerrorMessage(conn));
  PQclear(r);
}

char *pt_scalar(PGconn *conn, const char *sql) {
  PGresult *r = PQexec(conn, sql);
  ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) >= 1,
                "%s: %s", sql, PQerrorMessage(conn));
  char *v = strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

long long pt_scalar_ll(PGconn *conn, const char *sql) {
  char *v = pt_scalar(conn, sql);
  long long x = strtoll(v, NULL, 10);
  free(v);
  return x;
}

char *pt_backend_state(PGconn *admin, int pid) {
  char sql[128];
  snprintf(sql, sizeof(sql),
           "SELECT coalesce(state, 'gone') FROM (SELECT 1) x LEFT JOIN "
           "pg_stat_activity ON pid = %d",
           pid);
  return pt_scalar(admin, sql);
}

int pt_wait_idle(PGconn *admin, int pid, double seconds) {
  double until = pt_now() + seconds;
  do {
    char *st = pt_backend_state(admin, pid);
    int idle = strcmp(st, "idle") == 0;
    free(st);
    if (idle)
      return 1;
    uv_sleep(20);
  } while (pt_now() < until);
  return 0;
}

void pt_assert_idle(int pid) {
  PGconn *admin = pt_admin();
  int idle = pt_wait_idle(admin, pid, 5);
  PQfinish(admin);
  ck_assert_msg(idle, "backend %d still busy after 5 s", pid);
}

double pt_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

long pt_rss_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;
  while (f && fgets(line, sizeof(line), f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  if (f)
    fclose(f);
  return kb;
}

int pt_run(Suite *s) {
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? 0 : 1;
}

/* Every awkward value we could think of, and an awkward column name. */
const char *pt_awkward_sql =
    "DROP TABLE IF EXISTS awkward;"
    "CREATE TABLE awkward (id int PRIMARY KEY, t text, n numeric, "
    "ts timestamp, tz timestamptz, d date, b bytea, arr int[], "
    "tarr text[], narr numeric[], j jsonb, f float8, flag bool, "
    "\"we,ird \"\"name\" text);"
    "INSERT INTO awkward VALUES "
    "(1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    " NULL, NULL),"
    "(2, '', 0, '2026-01-01 10:00:00', '2026-01-01 10:00:00+00', "
    " '2026-01-01', '', '{}', '{}', '{}', '{}', 0, false, ''),"
    "(3, 'say \"hi\"', 1.50, '2026-11-24 04:05:06.789', "
    " '2026-11-24 04:05:06.123456+05:30', '1999-12-31', '\\x00ff0041', "
    " '{1,2,NULL}', '{\"a b\",\"c\\\"d\",NULL,\"NULL\",\"\"}', "
    " '{1.5,NaN}', '{\"k\": [1, \"x\", null]}', 'NaN', true, 'x'),"
    "(4, 'a,b;c', -12345678901234567890.000001, 'infinity', '-infinity', "
    " 'infinity', '\\x5c2c22', '{{1,2},{3,4}}', '{\"{braces}\",\"co,mma\"}', "
    " NULL, '[1, 2.50, \"s\"]', 'Infinity', false, '\"'),"
    "(5, E'line1\\nline2\\r\\nend\\r', 1e-20, NULL, NULL, NULL, NULL, NULL, "
    " NULL, NULL, '\"str\"', '-Infinity', NULL, E'\\n'),"
    "(6, E'back\\\\slash \\\\N', NULL, NULL, NULL, NULL, NULL, NULL, "
    " '{\"back\\\\\\\\slash\"}', NULL, 'null', 1e100, NULL, ','),"
    "(7, E'tab\\there\\b\\f\\v', NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    " NULL, NULL, -0.0, NULL, NULL),"
    "(8, '\\.', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    " 0.1, NULL, '\\.'),"
    "(9, 'héllo wörld ✓ 日本語', NULL, NULL, NULL, NULL, NULL, NULL, "
    " '{\"日本\",\"ü\"}', NULL, '{\"ключ\": \"значение\"}', 1.5e-300, "
    " NULL, NULL),"
    "(10, E'ctrl\\x01\\x1fchars', NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    " NULL, NULL, NULL, NULL, NULL),"
    "(11, '\"', 42, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, "
    " NULL, NULL),"
    "(12, ' leading and trailing ', NULL, NULL, NULL, NULL, NULL, NULL, "
    " NULL, NULL, NULL, NULL, NULL, NULL)";

/* What the server's COPY (sql) TO STDOUT (options) writes. */
char *pt_server_copy(PGconn *admin, const char *sql, const char *options,
                     size_t *len) {
  char q[2048];
  snprintf(q, sizeof(q), "COPY (%s) TO STDOUT %s", sql, options);
  PGresult *res = PQexec(admin, q);
  ck_assert_msg(PQresultStatus(res) == PGRES_COPY_OUT, "%s: %s", q,
                PQerrorMessage(admin));
  PQclear(res);
  size_t n = 0, cap = 1024;
  char *out = malloc(cap), *buf;
  int got;
  while ((got = PQgetCopyData(admin, &buf, 0)) > 0) {
    if (n + (size_t)got > cap)
      out = realloc(out, cap = (n + (size_t)got) * 2);
    memcpy(out + n, buf, (size_t)got);
    n += (size_t)got;
    PQfreemem(buf);
  }
  while ((res = PQgetResult(admin)) != NULL)
    PQclear(res);
  *len = n;
  return out;
}

void pt_assert_same_bytes(const char *what, const char *want, size_t want_len,
                          const char *got, size_t got_len) {
  size_t i = 0;
  while (i < want_len && i < got_len && want[i] == got[i])
    i++;
  ck_assert_msg(want_len == got_len && i == want_len,
                "%s differs at byte %zu (server %zu bytes, ours %zu):\n"
                "server: %.60s\nours:   %.60s",
                what, i, want_len, got_len, want + (i > 20 ? i - 20 : 0),
                got ? got + (i > 20 ? i - 20 : 0) : "");
}

int pt_assert_like_row_to_json(PGconn *admin, const char *data, size_t len) {
  int lines = 0;
  char *text = strndup(data, len), *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save), lines++) {
    const char *params[] = {line};
    PGresult *res = PQexecParams(
        admin,
        "SELECT $1::jsonb = row_to_json(a)::jsonb, row_to_json(a)::text "
        "FROM awkward a WHERE id = ($1::jsonb->>'id')::int",
        1, NULL, params, NULL, NULL, 0);
    ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1,
                  "not valid JSON, or no such id: %s\n%s", line,
                  PQerrorMessage(admin));
    ck_assert_msg(strcmp(PQgetvalue(res, 0, 0), "t") == 0,
                  "differs from row_to_json:\nours:   %s\nserver: %s", line,
                  PQgetvalue(res, 0, 1));
    PQclear(res);
  }
  free(text);
  return lines;
}

void pt_load_corpus(PGconn *conn, const char *path) {
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "the corpus %s cannot be read", path);
  static char sql[65536];
  size_t n = fread(sql, 1, sizeof(sql) - 1, f);
  fclose(f);
  ck_assert_msg(n > 0 && n < sizeof(sql) - 1, "corpus size %zu", n);
  sql[n] = '\0';
  pt_sql(conn, sql);
}
