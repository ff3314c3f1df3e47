/* Automatic prepared statements (pqs_ctx_opts_t.prepare_threshold): a
 * statement with parameters is prepared from its threshold-th run on and
 * run by name after; the least recently used is closed on the server to
 * make room (pg_prepared_statements says what the session holds); a
 * schema change that makes a plan stale prepares it again; a pooled
 * connection's reset empties the cache; off, nothing is prepared; by
 * default from the fifth run. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pqs_test.h"

static pqs_ctx_t *open_to(uv_loop_t *loop, const char *conninfo,
                          unsigned threshold, unsigned size) {
  pt_opened_t r = {0};
  pqs_ctx_t *ctx = NULL;
  pqs_ctx_opts_t o = {PT_SUITE_OPTS, .prepare_threshold = threshold,
                      .statement_cache_size = size};
  o.source = PQS_SOURCE_SINGLE_ROW; /* the COPY source prepares its own */
  ck_assert_int_eq(pqs_ctx_open(&ctx, loop, conninfo, &o, pt_on_open, &r), 0);
  while (r.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(r.status == 0, "%s", r.msg);
  return ctx;
}

static pqs_ctx_t *open_with(uv_loop_t *loop, unsigned threshold,
                            unsigned size) {
  return open_to(loop, pt_conninfo(), threshold, size);
}

/* The first value of a query's rows, and their count. */
typedef struct {
  pt_done_t done;
  char first[256];
  int rows, ncols;
} got_t;

static int keep_first(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  got_t *g = data;
  if (g->rows++ == 0) {
    size_t n;
    const char *t = pqs_row_text(row, 0, &n);
    snprintf(g->first, sizeof(g->first), "%s", t ? t : "NULL");
    g->ncols = pqs_row_ncols(row);
  }
  return PQS_CONTINUE;
}

static void on_done_got(pqs_stream_t *s, const pqs_done_t *d, void *data) {
  pt_on_done(s, d, &((got_t *)data)->done);
}

static got_t query(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql, int n,
                   const char *const *params) {
  got_t g = {0};
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_query(ctx, &s, sql, n, params, NULL), 0);
  pqs_stream_cbs_t cbs = {.on_row = keep_first, .on_done = on_done_got};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &g), 0);
  while (g.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  return g;
}

/* The session's prepared statements, as "text;text" of their SQL. */
static char *held(uv_loop_t *loop, pqs_ctx_t *ctx) {
  got_t g = query(loop, ctx,
                  "SELECT coalesce(string_agg(statement, ';' ORDER BY "
                  "statement), '') FROM pg_prepared_statements",
                  0, NULL);
  ck_assert_int_eq(g.done.status, 0);
  return strdup(g.first);
}

static void echo(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                 const char *v) {
  const char *params[] = {v};
  got_t g = query(loop, ctx, sql, 1, params);
  ck_assert_msg(g.done.status == 0, "%s: %s", sql, g.done.message);
  ck_assert_str_eq(g.first, v);
}

#define A "SELECT $1::int AS a"
#define B "SELECT $1::text AS b"
#define C "SELECT $1::int8 AS c"

START_TEST(hits_misses_and_eviction) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_with(loop, 2, 2);
  echo(loop, ctx, A, "1"); /* one use: unnamed */
  char *h = held(loop, ctx);
  ck_assert_str_eq(h, "");
  free(h);
  echo(loop, ctx, A, "2"); /* the threshold: prepared, then run */
  echo(loop, ctx, A, "3"); /* by name */
  h = held(loop, ctx);
  ck_assert_str_eq(h, A);
  free(h);
  echo(loop, ctx, B, "x");
  echo(loop, ctx, B, "y");
  h = held(loop, ctx);
  ck_assert_str_eq(h, A ";" B);
  free(h);
  /* a third statement's place is A's, the least recently used: closed */
  echo(loop, ctx, C, "7");
  echo(loop, ctx, C, "8");
  h = held(loop, ctx);
  ck_assert_str_eq(h, C ";" B); /* in the order of their text */
  free(h);
  /* A is planned anew, and B (least recent) closed for it */
  echo(loop, ctx, A, "4");
  echo(loop, ctx, A, "5");
  h = held(loop, ctx);
  ck_assert_str_eq(h, A ";" C);
  free(h);
  /* a statement the server refuses: its error, as unnamed */
  const char *one[] = {"1"};
  got_t g = query(loop, ctx, "SELECT $1::int FROM no_such_table", 1, one);
  g = query(loop, ctx, "SELECT $1::int FROM no_such_table", 1, one);
  ck_assert_int_eq(g.done.status, PQS_ESQL);
  ck_assert_str_eq(g.done.sqlstate, "42P01");
  echo(loop, ctx, C, "9"); /* and the context goes on */
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Commands and typed parameters, and binary results, by name too. */
START_TEST(exec_typed_and_binary) {
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TABLE IF EXISTS prep_t; CREATE TABLE prep_t (a int)");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_with(loop, 1, 0);
  for (int i = 0; i < 3; i++) {
    char v[8];
    snprintf(v, sizeof(v), "%d", i);
    const char *params[] = {v};
    pt_done_t d = {0};
    ck_assert_int_eq(pqs_exec(ctx, "INSERT INTO prep_t VALUES ($1)", 1, params,
                              NULL, pt_on_exec, &d),
                     0);
    while (d.calls == 0)
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_msg(d.status == 0, "%s", d.message);
    ck_assert_str_eq(d.tag, "INSERT 0 1");
    pqs_param_t p[] = {pqs_p_int64(10 + i)};
    d = (pt_done_t){0};
    ck_assert_int_eq(pqs_exec_typed(ctx, "INSERT INTO prep_t VALUES ($1)", 1,
                                    p, NULL, pt_on_exec, &d),
                     0);
    while (d.calls == 0)
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_msg(d.status == 0, "%s", d.message);
  }
  char *h = held(loop, ctx);
  /* the same text with inferred and with int8 parameters: two statements */
  ck_assert_str_eq(h, "INSERT INTO prep_t VALUES ($1);INSERT INTO prep_t "
                      "VALUES ($1)");
  free(h);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT sum(a) FROM prep_t"), 36);
  /* binary results through a prepared statement */
  pqs_query_opts_t qo = {.result_format = PQS_RESULT_BINARY};
  for (int i = 0; i < 2; i++) {
    const char *params[] = {"41"};
    pqs_stream_t *s;
    got_t g = {0};
    ck_assert_int_eq(pqs_query(ctx, &s, "SELECT $1::int8 + 1", 1, params, &qo),
                     0);
    pqs_stream_cbs_t cbs = {.on_row = keep_first, .on_done = on_done_got};
    ck_assert_int_eq(pqs_stream_start(s, &cbs, &g), 0);
    while (g.done.calls == 0)
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_msg(g.done.status == 0, "%s", g.done.message);
    ck_assert_str_eq(g.first, "42");
  }
  pt_close(loop, ctx);
  pt_loop_free(loop);
  pt_sql(admin, "DROP TABLE prep_t");
  PQfinish(admin);
}
END_TEST

/* ALTER TABLE between two runs: the plan's result type changed; the
 * statement is prepared again and the run gives the new columns. */
START_TEST(stale_plan_prepared_again) {
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TABLE IF EXISTS prep_s; CREATE TABLE prep_s (a int);"
                "INSERT INTO prep_s VALUES (1), (2), (3)");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_with(loop, 1, 0);
  const char *params[] = {"2"};
  got_t g = query(loop, ctx, "SELECT * FROM prep_s WHERE a >= $1", 1, params);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_int_eq(g.rows, 2);
  ck_assert_int_eq(g.ncols, 1);
  pt_sql(admin, "ALTER TABLE prep_s ADD COLUMN b text DEFAULT 'x'");
  g = query(loop, ctx, "SELECT * FROM prep_s WHERE a >= $1", 1, params);
  ck_assert_msg(g.done.status == 0, "%s: %s", pqs_err_name(g.done.status),
                g.done.message);
  ck_assert_int_eq(g.rows, 2);
  ck_assert_int_eq(g.ncols, 2);
  char *h = held(loop, ctx);
  ck_assert_str_eq(h, "SELECT * FROM prep_s WHERE a >= $1");
  free(h);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  pt_sql(admin, "DROP TABLE prep_s");
  PQfinish(admin);
}
END_TEST

/* A pooled connection's reset (DISCARD ALL) drops the session's
 * statements: the cache forgets them, and the next use prepares again. */
typedef struct {
  int calls, status;
  pqs_ctx_t *ctx;
} acq_t;

static void on_acq(pqs_ctx_t *ctx, int status, const pqs_error_t *e,
                   void *data) {
  (void)e;
  acq_t *a = data;
  a->calls++;
  a->status = status;
  a->ctx = ctx;
}

static pqs_ctx_t *acquire(uv_loop_t *loop, pqs_factory_t *f) {
  acq_t a = {0};
  ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, on_acq, &a), 0);
  while (a.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(a.status, 0);
  return a.ctx;
}

START_TEST(pool_reset_empties_the_cache) {
  pqs_factory_opts_t fo = {.conninfo = pt_conninfo(), .max_size = 1,
                           PT_SUITE_OPTS, .prepare_threshold = 1};
  fo.source = PQS_SOURCE_SINGLE_ROW;
  pqs_factory_t *f;
  ck_assert_int_eq(pqs_factory_new(&f, &fo), 0);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = acquire(loop, f);
  int pid = pqs_ctx_backend_pid(ctx);
  echo(loop, ctx, A, "1");
  char *h = held(loop, ctx);
  ck_assert_str_eq(h, A);
  free(h);
  pt_close(loop, ctx); /* back to the pool, reset */
  ctx = acquire(loop, f);
  ck_assert_int_eq(pqs_ctx_backend_pid(ctx), pid); /* the same session */
  h = held(loop, ctx);
  ck_assert_str_eq(h, ""); /* DISCARD ALL dropped it */
  free(h);
  echo(loop, ctx, A, "2"); /* prepared again, not run by a gone name */
  h = held(loop, ctx);
  ck_assert_str_eq(h, A);
  free(h);
  pt_close(loop, ctx);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}
END_TEST

/* Off: nothing is prepared, however often a statement runs; by default, a
 * statement's fifth run prepares it; a user's DEALLOCATE ALL with the
 * cache on forgets what it held. */
START_TEST(off_default_and_deallocate_all) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_with(loop, PQS_PREPARE_NEVER, 0);
  for (int i = 0; i < 6; i++)
    echo(loop, ctx, A, "1");
  char *h = held(loop, ctx);
  ck_assert_str_eq(h, "");
  free(h);
  pt_close(loop, ctx);
  ctx = open_with(loop, 0, 0);
  for (int i = 0; i < 4; i++)
    echo(loop, ctx, A, "1");
  h = held(loop, ctx);
  ck_assert_str_eq(h, "");
  free(h);
  echo(loop, ctx, A, "1");
  h = held(loop, ctx);
  ck_assert_str_eq(h, A);
  free(h);
  pt_close(loop, ctx);
  ctx = open_with(loop, 1, 0);
  echo(loop, ctx, A, "1");
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "DEALLOCATE ALL"), 0);
  echo(loop, ctx, A, "2");
  h = held(loop, ctx);
  ck_assert_str_eq(h, A);
  free(h);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* A DEALLOCATE that fails (inside a failed transaction block) leaves its
 * statement to be closed later, by the next plan: none stays behind. */
START_TEST(failed_close_is_closed_later) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_with(loop, 1, 1);
  echo(loop, ctx, A, "1"); /* prepared */
  char *h = held(loop, ctx);
  ck_assert_str_eq(h, A);
  free(h);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "BEGIN"), 0);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1 / 0"), PQS_ESQL);
  const char *one[] = {"1"};
  got_t g = query(loop, ctx, B, 1, one); /* evicts A: its close fails */
  ck_assert_int_eq(g.done.status, PQS_ESQL);
  ck_assert_str_eq(g.done.sqlstate, "25P02");
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "ROLLBACK"), 0);
  h = held(loop, ctx);
  ck_assert_str_eq(h, A); /* still on the server */
  free(h);
  echo(loop, ctx, B, "x"); /* prepares B, and closes A */
  h = held(loop, ctx);
  ck_assert_str_eq(h, B);
  free(h);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* A batch's statements use the cache too: prepared as they are sent,
 * run by name after (the same statement later in the batch included),
 * evicted ones closed; a Parse that never ran is prepared again next
 * time; a plan gone stale runs the batch again, once. */
typedef struct {
  int calls, status;
  long failed;
  unsigned attempts;
  char message[256];
} batched_t;

static void on_batched(pqs_ctx_t *ctx, const pqs_batch_done_t *d,
                       void *data) {
  (void)ctx;
  batched_t *b = data;
  b->calls++;
  b->status = d->status;
  b->failed = d->failed;
  b->attempts = d->attempts;
  snprintf(b->message, sizeof(b->message), "%s",
           d->error ? d->error->message : "");
}

static batched_t run_batch(uv_loop_t *loop, pqs_ctx_t *ctx,
                           const pqs_batch_t *b) {
  batched_t r = {0};
  ck_assert_int_eq(pqs_batch_run(ctx, b, NULL, on_batched, &r), 0);
  while (r.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(r.calls, 1);
  return r;
}

static pqs_batch_t *batch_of(const char *const *sql, int n) {
  pqs_batch_t *b;
  ck_assert_int_eq(pqs_batch_new(&b), 0);
  for (int i = 0; i < n; i++) {
    pqs_param_t p[] = {pqs_p_int64(i)};
    ck_assert_int_eq(pqs_batch_add(b, sql[i], strchr(sql[i], '$') ? 1 : 0, p),
                     0);
  }
  return b;
}

#define BI "INSERT INTO prep_b VALUES ($1)"
#define BS "SELECT * FROM prep_b WHERE a = $1"

START_TEST(batches_use_the_cache) {
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TABLE IF EXISTS prep_b; CREATE TABLE prep_b (a int)");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_with(loop, 2, 2);
  /* the second BI prepares it, the third runs it by that name */
  const char *const three[] = {BI, BI, BI, BS};
  pqs_batch_t *b = batch_of(three, 4);
  batched_t r = run_batch(loop, ctx, b);
  ck_assert_msg(r.status == 0, "%s", r.message);
  char *h = held(loop, ctx);
  ck_assert_str_eq(h, BI);
  free(h);
  r = run_batch(loop, ctx, b); /* BS's second use: prepared too */
  ck_assert_msg(r.status == 0, "%s", r.message);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM prep_b"), 6);
  h = held(loop, ctx);
  ck_assert_str_eq(h, BI ";" BS);
  free(h);
  pqs_batch_free(b);
  /* a third statement evicts the least recently used (BI): closed */
  const char *const other[] = {A, A};
  b = batch_of(other, 2);
  r = run_batch(loop, ctx, b);
  ck_assert_msg(r.status == 0, "%s", r.message);
  pqs_batch_free(b);
  h = held(loop, ctx);
  ck_assert_str_eq(h, A ";" BS); /* in the order of their text */
  free(h);
  /* the plan of BS goes stale: the batch runs again, once, and is fine */
  pt_sql(admin, "ALTER TABLE prep_b ADD COLUMN extra int");
  const char *const sel[] = {BS};
  b = batch_of(sel, 1);
  r = run_batch(loop, ctx, b);
  ck_assert_msg(r.status == 0, "%s", r.message);
  ck_assert_int_eq(r.attempts, 2);
  r = run_batch(loop, ctx, b);
  ck_assert_msg(r.status == 0, "%s", r.message);
  ck_assert_int_eq(r.attempts, 1);
  pqs_batch_free(b);
  /* a failure before a statement's Parse: it never ran, so the next run
   * prepares it (not runs a name the server never had) */
  pqs_ctx_t *fresh = open_with(loop, 1, 0);
  const char *const failing[] = {"SELECT 1 / 0", B};
  b = batch_of(failing, 2);
  r = run_batch(loop, fresh, b);
  ck_assert_int_eq(r.status, PQS_ESQL);
  ck_assert_int_eq(r.failed, 0);
  pqs_batch_free(b);
  echo(loop, fresh, B, "after");
  h = held(loop, fresh);
  ck_assert_str_eq(h, B);
  free(h);
  pt_close(loop, fresh);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  pt_sql(admin, "DROP TABLE prep_b");
  PQfinish(admin);
}
END_TEST

/* Behind PgBouncer in transaction mode a session's statements do not
 * follow its client from one transaction to the next: with the cache off,
 * a statement run again and again works while the server connection
 * under it changes (a second client holding one in a transaction sends
 * the context to the other). */
START_TEST(pgbouncer_transaction_mode_cache_off) {
  const char *bouncer = getenv("PQS_TEST_PGBOUNCER_CONNINFO");
  ck_assert_msg(bouncer != NULL && *bouncer != '\0',
                "PQS_TEST_PGBOUNCER_CONNINFO is not set: this test needs "
                "PgBouncer (apt-get install pgbouncer; scripts/dev.sh test "
                "starts it, tests/pg.sh pgbouncer DIR SERVER_DIR by hand)");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_to(loop, bouncer, PQS_PREPARE_NEVER, 0);
  PGconn *holder = PQconnectdb(bouncer);
  ck_assert_msg(PQstatus(holder) == CONNECTION_OK, "%s",
                PQerrorMessage(holder));
  char first_pid[256] = "";
  int moved = 0;
  for (int i = 0; i < 12; i++) {
    if (i % 2 == 1)
      pt_sql(holder, "BEGIN; SELECT 1");
    char v[8], want[16];
    snprintf(v, sizeof(v), "%d", i);
    const char *params[] = {v};
    got_t g = query(loop, ctx, "SELECT pg_backend_pid() || ':' || $1::int", 1,
                    params);
    ck_assert_msg(g.done.status == 0, "run %d: %s", i, g.done.message);
    snprintf(want, sizeof(want), ":%d", i);
    char *colon = strchr(g.first, ':');
    ck_assert_ptr_nonnull(colon);
    ck_assert_str_eq(colon, want);
    *colon = '\0';
    if (i == 0)
      snprintf(first_pid, sizeof(first_pid), "%s", g.first);
    moved |= strcmp(first_pid, g.first) != 0;
    if (i % 2 == 1)
      pt_sql(holder, "COMMIT");
  }
  ck_assert_msg(moved, "every run was on backend %s: PgBouncer did not "
                       "move the session, the test proves nothing",
                first_pid);
  PQfinish(holder);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

int main(void) {
  Suite *s = suite_create("prepared");
  TCase *tc = tcase_create("prepared");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, hits_misses_and_eviction);
  tcase_add_test(tc, exec_typed_and_binary);
  tcase_add_test(tc, stale_plan_prepared_again);
  tcase_add_test(tc, pool_reset_empties_the_cache);
  tcase_add_test(tc, off_default_and_deallocate_all);
  tcase_add_test(tc, failed_close_is_closed_later);
  tcase_add_test(tc, batches_use_the_cache);
  tcase_add_test(tc, pgbouncer_transaction_mode_cache_off);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
