/* Streams and commands against the real server: volume, the busy rule,
 * backpressure, early stop, errors mid-stream, lost connections. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "pqs_test.h"

/* A consumer that sums column 0 and can be told to act at a row. */
typedef struct {
  pt_done_t done;
  pqs_ctx_t *ctx;
  uint64_t rows;
  int64_t sum;
  uint64_t act_at; /* row number (1-based) at which to return act_rc */
  int act_rc;
  int columns_calls;
  int columns_ncols;
  PGconn *admin; /* for killing the backend from inside the stream */
  int kill_pid;
} consumer_t;

static int sum_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  consumer_t *c = data;
  int64_t v = 0;
  /* The suite runs over the format it was asked for (PQS_TEST_FORMAT). */
  ck_assert_int_eq(pqs_row_is_binary(row), pt_binary());
  ck_assert_int_eq(pqs_row_int64(row, 0, &v), 0);
  c->sum += v;
  c->rows++;
  if (c->kill_pid && c->rows == c->act_at) {
    char sql[64];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", c->kill_pid);
    pt_sql(c->admin, sql);
  }
  return c->rows == c->act_at ? c->act_rc : PQS_CONTINUE;
}

static int count_columns(pqs_stream_t *s, const pqs_row_t *cols, void *data) {
  (void)s;
  consumer_t *c = data;
  c->columns_calls++;
  c->columns_ncols = pqs_row_ncols(cols);
  return PQS_CONTINUE;
}

static void consumer_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)s;
  pt_record(&((consumer_t *)data)->done, done);
}

static const pqs_stream_cbs_t summing = {
    .on_columns = count_columns, .on_row = sum_row, .on_done = consumer_done};

/* Starts `sql` and runs the loop until the stream's completion. */
static void run(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                const pqs_query_opts_t *opts, consumer_t *c) {
  pt_stream_wait(loop, pt_query(ctx, sql, opts), &summing, c, &c->done);
}

/* The context answers a new query correctly. */
static void assert_reusable(uv_loop_t *loop, pqs_ctx_t *ctx) {
  consumer_t c = {0};
  run(loop, ctx, "SELECT 42::int8", NULL, &c);
  ck_assert_msg(c.done.status == 0, "%s: %s", pqs_err_name(c.done.status),
                c.done.message);
  ck_assert_int_eq(c.rows, 1);
  ck_assert_int_eq(c.sum, 42);
}

START_TEST(million_rows) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  const char *q = "SELECT (g * 7 % 1000003)::int8 AS v, md5(g::text) AS s "
                  "FROM generate_series(1, 1000000) g";
  consumer_t c = {0};
  run(loop, ctx, q, NULL, &c);
  ck_assert_int_eq(c.done.status, 0);
  PGconn *admin = pt_admin();
  long long count = pt_scalar_ll(admin, "SELECT count(*) FROM (SELECT (g * 7 "
                                        "% 1000003)::int8 AS v FROM "
                                        "generate_series(1, 1000000) g) x");
  long long sum = pt_scalar_ll(admin, "SELECT sum(g * 7 % 1000003) FROM "
                                      "generate_series(1, 1000000) g");
  PQfinish(admin);
  ck_assert_int_eq(c.rows, (uint64_t)count);
  ck_assert_int_eq(c.done.rows, (uint64_t)count);
  ck_assert_int_eq(c.sum, sum);
  ck_assert_str_eq(c.done.tag, pt_copy() ? "COPY 1000000" : "SELECT 1000000");
  ck_assert_int_eq(c.columns_calls, 1);
  ck_assert_int_eq(c.columns_ncols, 2);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* ---- the busy rule ---- */

typedef struct {
  consumer_t c;
  int attempts, ebusy;
} busy_t;

static void try_second(busy_t *b, pqs_ctx_t *ctx) {
  pqs_stream_t *other = NULL;
  b->attempts += 2;
  b->ebusy += pqs_query(ctx, &other, "SELECT 1", 0, NULL, NULL) == PQS_EBUSY;
  b->ebusy +=
      pqs_exec(ctx, "SELECT 1", 0, NULL, NULL, pt_on_exec, NULL) == PQS_EBUSY;
  ck_assert_ptr_null(other);
}

static int busy_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  busy_t *b = data;
  if (b->c.rows < 250) /* 500 more attempts from inside the stream */
    try_second(b, pqs_stream_ctx(s));
  return sum_row(s, row, &b->c);
}

START_TEST(busy_rule) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  busy_t b = {0};
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s,
                             "SELECT g::int8 FROM generate_series(1, 200000) g",
                             0, NULL, NULL),
                   0);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 1);
  for (int i = 0; i < 125; i++) /* busy before the stream starts */
    try_second(&b, ctx);
  pqs_stream_cbs_t cbs = {.on_row = busy_row, .on_done = consumer_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &b), 0);
  for (int i = 0; i < 125; i++) /* started, nothing answered yet */
    try_second(&b, ctx);
  while (b.c.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(b.attempts, 1000);
  ck_assert_int_eq(b.ebusy, 1000);
  ck_assert_int_eq(b.c.done.status, 0);
  ck_assert_int_eq(b.c.rows, 200000);
  ck_assert_int_eq(b.c.sum, 200000LL * 200001 / 2);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 0);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* ---- backpressure ---- */

typedef struct {
  consumer_t c;
  pqs_stream_t *s;
  uv_timer_t resume;
  int paused;
  int pauses;
  int rows_while_paused;
  long rss_base, rss_max;
  double long_pause_cpu, long_pause_wall;
} slow_t;

static double cpu_seconds(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void on_resume(uv_timer_t *t) {
  slow_t *w = t->data;
  if (w->pauses == 50) { /* the long pause: measure it */
    w->long_pause_cpu = cpu_seconds() - w->long_pause_cpu;
    w->long_pause_wall = pt_now() - w->long_pause_wall;
  }
  w->paused = 0;
  ck_assert_int_eq(pqs_stream_resume(w->s), 0);
}

static int slow_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  slow_t *w = data;
  w->s = s;
  if (w->paused)
    w->rows_while_paused++;
  sum_row(s, row, &w->c);
  if (w->c.rows % 5000 != 0)
    return PQS_CONTINUE;
  long rss = pt_rss_kb();
  if (rss > w->rss_max)
    w->rss_max = rss;
  w->paused = 1;
  w->pauses++;
  unsigned ms = 1;
  if (w->pauses == 50) {
    ms = 400;
    w->long_pause_cpu = cpu_seconds();
    w->long_pause_wall = pt_now();
  }
  uv_timer_start(&w->resume, on_resume, ms, 0);
  return PQS_PAUSE;
}

START_TEST(pause_resume_bounded) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  slow_t w = {0};
  uv_timer_init(loop, &w.resume);
  w.resume.data = &w;
  w.rss_base = pt_rss_kb();
  /* About 260 MB of result, read by a consumer that pauses every 5,000
   * rows. */
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s,
                             "SELECT g::int8, repeat('x', 250) FROM "
                             "generate_series(1, 1000000) g",
                             0, NULL, NULL),
                   0);
  pqs_stream_cbs_t cbs = {.on_row = slow_row, .on_done = consumer_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &w), 0);
  while (w.c.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(w.c.done.status, 0);
  ck_assert_int_eq(w.c.rows, 1000000);
  ck_assert_int_eq(w.c.sum, 1000000LL * 1000001 / 2);
  ck_assert_int_eq(w.pauses, 200);
  ck_assert_int_eq(w.rows_while_paused, 0);
  long grew_kb = w.rss_max - w.rss_base;
  ck_assert_msg(grew_kb < 64 * 1024, "RSS grew by %ld kB over a 260 MB result",
                grew_kb);
  /* A paused stream must not watch the socket: polling is
   * level-triggered and would spin a core for the whole pause. */
  ck_assert_msg(w.long_pause_wall >= 0.35, "pause lasted %.3fs",
                w.long_pause_wall);
  ck_assert_msg(w.long_pause_cpu < w.long_pause_wall / 2,
                "%.3fs of CPU during a %.3fs pause: the loop spins",
                w.long_pause_cpu, w.long_pause_wall);
  uv_close((uv_handle_t *)&w.resume, NULL);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* ---- stopping early ---- */

START_TEST(early_stop) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  int pid = pqs_ctx_backend_pid(ctx);
  consumer_t c = {.act_at = 10, .act_rc = PQS_STOP};
  double t0 = pt_now();
  run(loop, ctx, "SELECT generate_series(1, 100000000)::int8", NULL, &c);
  double took = pt_now() - t0;
  ck_assert_int_eq(c.done.status, PQS_ECANCELED);
  ck_assert_int_eq(c.rows, 10);
  ck_assert_int_eq(c.done.rows, 10);
  ck_assert_msg(took < 10, "stop took %.1fs", took);
  pt_assert_idle(pid);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

typedef struct {
  consumer_t c;
  pqs_stream_t *s;
  uv_timer_t later;
} closer_t;

static void close_later(uv_timer_t *t) {
  closer_t *k = t->data;
  ck_assert_int_eq(pqs_stream_close(k->s), 0);
  ck_assert_int_eq(pqs_stream_close(k->s), 0); /* ending already: nothing */
  uv_close((uv_handle_t *)t, NULL);
}

static int pause_at_5(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  closer_t *k = data;
  k->s = s;
  sum_row(s, row, &k->c);
  if (k->c.rows != 5)
    return PQS_CONTINUE;
  /* Closed a while after it paused, whatever the machine's speed. */
  uv_timer_start(&k->later, close_later, 200, 0);
  return PQS_PAUSE;
}

/* A paused stream closed from outside its callbacks. */
START_TEST(close_paused_stream) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  int pid = pqs_ctx_backend_pid(ctx);
  closer_t k = {0};
  uv_timer_init(loop, &k.later);
  k.later.data = &k;
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s,
                             "SELECT generate_series(1, 100000000)::int8", 0,
                             NULL, NULL),
                   0);
  pqs_stream_cbs_t cbs = {.on_row = pause_at_5, .on_done = consumer_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &k), 0);
  while (k.c.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(k.c.done.status, PQS_ECANCELED);
  ck_assert_int_eq(k.c.rows, 5);
  pt_assert_idle(pid);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Closed in the same tick that started it: the first cancel very likely
 * reaches the backend before it has begun the query, and is ignored; the
 * stream must still end in seconds, not after 200,000,000 rows. */
START_TEST(stop_before_the_server_starts) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  int pid = pqs_ctx_backend_pid(ctx);
  for (int i = 0; i < 3; i++) {
    consumer_t c = {0};
    pqs_stream_t *s = NULL;
    ck_assert_int_eq(pqs_query(ctx, &s,
                               "SELECT generate_series(1, 200000000)::int8", 0,
                               NULL, NULL),
                     0);
    ck_assert_int_eq(pqs_stream_start(s, &summing, &c), 0);
    ck_assert_int_eq(pqs_stream_close(s), 0);
    double t0 = pt_now();
    while (c.done.calls == 0)
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_msg(pt_now() - t0 < 5, "stop took %.1fs", pt_now() - t0);
    ck_assert_int_eq(c.done.status, PQS_ECANCELED);
    ck_assert_int_eq(c.rows, 0);
  }
  pt_assert_idle(pid);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(user_error_from_row) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  consumer_t c = {.act_at = 3, .act_rc = UV_EPROTO};
  run(loop, ctx, "SELECT generate_series(1, 100000000)::int8", NULL, &c);
  ck_assert_int_eq(c.done.status, UV_EPROTO);
  ck_assert_int_eq(c.rows, 3);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(query_timeout) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  int pid = pqs_ctx_backend_pid(ctx);
  consumer_t c = {0};
  pqs_query_opts_t opts = {.timeout_ms = 300};
  double t0 = pt_now();
  run(loop, ctx, "SELECT 1::int8 FROM pg_sleep(30)", &opts, &c);
  double took = pt_now() - t0;
  ck_assert_int_eq(c.done.status, PQS_ETIMEDOUT);
  ck_assert_msg(took >= 0.25 && took < 10, "timeout after %.2fs", took);
  pt_assert_idle(pid);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* ---- errors mid-stream ---- */

START_TEST(sql_error_mid_stream) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  consumer_t c = {0};
  run(loop, ctx,
      "SELECT (1 / (500000 - g))::int8 FROM generate_series(1, 1000000) g",
      NULL, &c);
  ck_assert_int_eq(c.done.status, PQS_ESQL);
  ck_assert_int_eq(c.rows, 499999);
  ck_assert_int_eq(c.done.rows, 499999);
  ck_assert_str_eq(c.done.sqlstate, "22012");
  ck_assert_str_eq(c.done.message, "division by zero");
  ck_assert_str_eq(c.done.tag, "");
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(sql_error_at_once) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  consumer_t c = {0};
  run(loop, ctx, "SELECT nope FROM no_such_table", NULL, &c);
  ck_assert_int_eq(c.done.status, PQS_ESQL);
  ck_assert_str_eq(c.done.sqlstate, "42P01");
  ck_assert_int_eq(c.rows, 0);
  ck_assert_int_eq(c.columns_calls, 0);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(backend_killed) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  consumer_t c = {.act_at = 1000, .act_rc = PQS_CONTINUE};
  c.admin = pt_admin();
  c.kill_pid = pqs_ctx_backend_pid(ctx);
  double t0 = pt_now();
  run(loop, ctx, "SELECT generate_series(1, 100000000)::int8", NULL, &c);
  ck_assert_msg(pt_now() - t0 < 30, "loss noticed after %.1fs", pt_now() - t0);
  ck_assert_int_eq(c.done.status, PQS_ECONNLOST);
  ck_assert_uint_ge(c.rows, 1000);
  ck_assert_int_eq(c.done.rows, c.rows);
  ck_assert_msg(c.done.message[0] != '\0', "no message for a lost connection");
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  ck_assert_int_eq(pqs_ctx_backend_pid(ctx), 0);
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT 1", 0, NULL, NULL), PQS_EBROKEN);
  ck_assert_int_eq(pqs_exec(ctx, "SELECT 1", 0, NULL, NULL, pt_on_exec, NULL),
                   PQS_EBROKEN);
  PQfinish(c.admin);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* ---- lifecycle ---- */

START_TEST(unstarted_stream_close) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT 1", 0, NULL, NULL), 0);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 1);
  ck_assert_int_eq(pqs_stream_pause(s), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_close(s), 0);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 0);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(start_twice_and_bad_args) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s, NULL, 0, NULL, NULL), PQS_EINVAL);
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT $1", 1, NULL, NULL), PQS_EINVAL);
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT 1", -1, NULL, NULL), PQS_EINVAL);
  ck_assert_int_eq(pqs_query(ctx, NULL, "SELECT 1", 0, NULL, NULL), PQS_EINVAL);
  ck_assert_ptr_null(s);
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT 1::int8", 0, NULL, NULL), 0);
  ck_assert_ptr_null(pqs_stream_get_data(s));
  pqs_stream_set_data(s, &s);
  ck_assert_ptr_eq(pqs_stream_get_data(s), &s);
  pqs_stream_cbs_t no_done = {.on_row = sum_row};
  ck_assert_int_eq(pqs_stream_start(s, &no_done, NULL), PQS_EINVAL);
  consumer_t c = {0};
  ck_assert_int_eq(pqs_stream_start(s, &summing, &c), 0);
  ck_assert_int_eq(pqs_stream_start(s, &summing, &c), PQS_ESTATE);
  ck_assert_int_eq(c.done.calls, 0); /* never from inside the call */
  while (c.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(c.done.status, 0);
  ck_assert_int_eq(c.sum, 1);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

typedef struct {
  consumer_t first, second;
} chain_t;

static void chain_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  chain_t *ch = data;
  pt_record(&ch->first.done, done);
  pqs_stream_t *next = NULL;
  /* The context is free inside on_done already. */
  ck_assert_int_eq(
      pqs_query(pqs_stream_ctx(s), &next, "SELECT 5::int8", 0, NULL, NULL), 0);
  ck_assert_int_eq(pqs_stream_start(next, &summing, &ch->second), 0);
}

START_TEST(next_query_from_on_done) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  chain_t ch = {0};
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT 1::int8", 0, NULL, NULL), 0);
  pqs_stream_cbs_t cbs = {.on_row = sum_row, .on_done = chain_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &ch), 0);
  while (ch.second.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(ch.first.done.calls, 1);
  ck_assert_int_eq(ch.first.sum, 1);
  ck_assert_int_eq(ch.second.done.status, 0);
  ck_assert_int_eq(ch.second.sum, 5);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

typedef struct {
  consumer_t c;
  int closed;
  int done_before_close;
} ctx_closer_t;

static int close_ctx_at_100(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  ctx_closer_t *k = data;
  sum_row(s, row, &k->c);
  if (k->c.rows == 100) {
    pqs_ctx_t *ctx = pqs_stream_ctx(s);
    pqs_ctx_set_data(ctx, k);
    ck_assert_int_eq(pqs_ctx_close(ctx, NULL), 0);
    ck_assert_int_eq(pqs_ctx_close(ctx, NULL), PQS_ESTATE);
  }
  return PQS_CONTINUE;
}

START_TEST(ctx_close_mid_stream) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  int pid = pqs_ctx_backend_pid(ctx);
  ctx_closer_t k = {0};
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s,
                             "SELECT generate_series(1, 100000000)::int8", 0,
                             NULL, NULL),
                   0);
  pqs_stream_cbs_t cbs = {.on_row = close_ctx_at_100, .on_done = consumer_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &k), 0);
  pt_loop_free(loop); /* runs until everything is closed */
  ck_assert_int_eq(k.c.done.calls, 1);
  ck_assert_int_eq(k.c.done.status, PQS_ECANCELED);
  ck_assert_int_eq(k.c.rows, 100);
  PGconn *admin = pt_admin();
  double until = pt_now() + 5;
  char *st = NULL;
  do {
    free(st);
    st = pt_backend_state(admin, pid);
  } while (strcmp(st, "gone") != 0 && pt_now() < until);
  ck_assert_msg(strcmp(st, "gone") == 0, "backend still %s", st);
  free(st);
  PQfinish(admin);
}
END_TEST

/* Every field of a server error, as the server sent it. */
typedef struct {
  int calls, status, position;
  char context[256], schema[64], table[64], column[64], constraint[64];
  char text[1024];
} fields_t;

static void copy_field(char *dst, size_t cap, const char *src) {
  snprintf(dst, cap, "%s", src ? src : "(null)");
}

static void fields_done(pqs_ctx_t *ctx, const pqs_done_t *done, void *data) {
  (void)ctx;
  fields_t *f = data;
  f->calls++;
  f->status = done->status;
  const pqs_error_t *e = done->error;
  ck_assert_ptr_nonnull(e);
  f->position = e->position;
  copy_field(f->context, sizeof(f->context), e->context);
  copy_field(f->schema, sizeof(f->schema), e->schema);
  copy_field(f->table, sizeof(f->table), e->table);
  copy_field(f->column, sizeof(f->column), e->column);
  copy_field(f->constraint, sizeof(f->constraint), e->constraint);
  copy_field(f->text, sizeof(f->text), e->text);
}

static fields_t exec_fields(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql) {
  fields_t f = {0};
  ck_assert_int_eq(pqs_exec(ctx, sql, 0, NULL, NULL, fields_done, &f), 0);
  while (f.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(f.status, PQS_ESQL);
  return f;
}

START_TEST(error_fields) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  ck_assert_int_eq(
      pt_exec_wait(loop, ctx,
                   "CREATE TEMP TABLE ef (id int CONSTRAINT ef_pk PRIMARY KEY, "
                   "v text NOT NULL)"),
      0);
  fields_t f = exec_fields(loop, ctx, "SELECT 1,\n  2,\n  3 +* 4");
  ck_assert_int_eq(f.position, 20);
  ck_assert_msg(strstr(f.text, "LINE 3:   3 +* 4\n            ^\n") != NULL,
                "text: %s", f.text);
  f = exec_fields(loop, ctx, "DO $$ BEGIN RAISE EXCEPTION 'boom'; END $$");
  ck_assert_ptr_nonnull(strstr(f.context, "PL/pgSQL function"));
  ck_assert_int_eq(f.position, 0);
  f = exec_fields(loop, ctx, "INSERT INTO ef VALUES (1, NULL)");
  ck_assert_str_eq(f.table, "ef");
  ck_assert_str_eq(f.column, "v");
  ck_assert_str_eq(f.constraint, "(null)");
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "INSERT INTO ef VALUES (1, 'a')"),
                   0);
  f = exec_fields(loop, ctx, "INSERT INTO ef VALUES (1, 'b')");
  ck_assert_str_eq(f.constraint, "ef_pk");
  ck_assert_str_ne(f.schema, "(null)");
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Several statements in one pqs_exec: in order, each one's tag heard, the
 * first error ends them and the implicit transaction takes the rest. */
typedef struct {
  char tags[512];
  uint64_t affected;
} tags_t;

static void on_statement(pqs_ctx_t *ctx, const char *tag, uint64_t affected,
                         void *data) {
  (void)ctx;
  tags_t *t = data;
  size_t n = strlen(t->tags);
  snprintf(t->tags + n, sizeof(t->tags) - n, "%s|", tag);
  t->affected += affected;
}

static int exec_with_tags(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                          tags_t *t, pt_done_t *d) {
  pqs_query_opts_t qo = {.on_statement = on_statement, .statement_data = t};
  ck_assert_int_eq(pqs_exec(ctx, sql, 0, NULL, &qo, pt_on_exec, d), 0);
  while (d->calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  return d->status;
}

START_TEST(multi_statement_exec) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  tags_t t = {{0}, 0};
  pt_done_t d = {0};
  ck_assert_int_eq(exec_with_tags(loop, ctx,
                                  "CREATE TEMP TABLE ms (x int); INSERT INTO "
                                  "ms VALUES (1), (2); UPDATE ms SET x = x + 1",
                                  &t, &d),
                   0);
  ck_assert_str_eq(t.tags, "CREATE TABLE|INSERT 0 2|UPDATE 2|");
  ck_assert_str_eq(d.tag, "UPDATE 2");
  ck_assert_uint_eq(d.affected, 2);
  tags_t t2 = {{0}, 0};
  pt_done_t d2 = {0};
  ck_assert_int_eq(exec_with_tags(loop, ctx,
                                  "INSERT INTO ms VALUES (3); SELECT 1 / 0; "
                                  "INSERT INTO ms VALUES (4)",
                                  &t2, &d2),
                   PQS_ESQL);
  ck_assert_str_eq(d2.sqlstate, "22012");
  ck_assert_str_eq(t2.tags, "INSERT 0 1|"); /* the third never ran */
  consumer_t c = {0};
  run(loop, ctx, "SELECT count(*)::int8 FROM ms", NULL, &c);
  ck_assert_int_eq(c.sum, 2); /* the first was rolled back with the rest */
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Describing: the columns a statement would return, without running it. */
typedef struct {
  int calls, status, ncols;
  char names[256], sqlstate[6];
  uint32_t type0;
} described_t;

static void on_described(pqs_ctx_t *ctx, int status, const pqs_row_t *cols,
                         const pqs_error_t *err, void *data) {
  (void)ctx;
  described_t *d = data;
  d->calls++;
  d->status = status;
  if (cols != NULL) {
    d->ncols = pqs_row_ncols(cols);
    for (int i = 0; i < d->ncols; i++) {
      size_t n = strlen(d->names);
      snprintf(d->names + n, sizeof(d->names) - n, "%s%s", i ? "," : "",
               pqs_row_name(cols, i));
    }
    d->type0 = pqs_row_type(cols, 0);
  }
  if (err && err->sqlstate)
    snprintf(d->sqlstate, sizeof(d->sqlstate), "%s", err->sqlstate);
}

static described_t describe(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                            int nparams) {
  described_t d = {0};
  ck_assert_int_eq(pqs_describe(ctx, sql, nparams, on_described, &d), 0);
  ck_assert_int_eq(d.calls, 0); /* never from inside the call */
  ck_assert_int_eq(pqs_describe(ctx, sql, nparams, on_described, &d),
                   PQS_EBUSY);
  while (d.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(d.calls, 1);
  return d;
}

START_TEST(describe_statements) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  described_t d = describe(loop, ctx, "SELECT 1 AS a, 'x'::text AS b", 0);
  ck_assert_int_eq(d.status, 0);
  ck_assert_str_eq(d.names, "a,b");
  ck_assert_uint_eq(d.type0, 23);
  d = describe(loop, ctx, "SELECT $1::int8 + $2 AS total", 2);
  ck_assert_int_eq(d.status, 0);
  ck_assert_str_eq(d.names, "total");
  ck_assert_uint_eq(d.type0, 20);
  d = describe(loop, ctx, "CREATE TEMP TABLE never_made (x int)", 0);
  ck_assert_int_eq(d.status, 0);
  ck_assert_int_eq(d.ncols, 0);
  d = describe(loop, ctx, "SELEC 1", 0);
  ck_assert_int_eq(d.status, PQS_ESQL);
  ck_assert_str_eq(d.sqlstate, "42601");
  /* nothing ran: the table was only described */
  consumer_t c = {0};
  run(loop, ctx,
      "SELECT count(*)::int8 FROM pg_class WHERE relname = 'never_made'", NULL,
      &c);
  ck_assert_int_eq(c.done.status, 0);
  ck_assert_int_eq(c.sum, 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Closing the context from inside on_columns: not one row after it. */
static int close_ctx_on_columns(pqs_stream_t *s, const pqs_row_t *cols,
                                void *data) {
  (void)cols;
  consumer_t *c = data;
  c->columns_calls++;
  ck_assert_int_eq(pqs_ctx_close(pqs_stream_ctx(s), NULL), 0);
  return PQS_CONTINUE;
}

START_TEST(ctx_close_in_on_columns) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  consumer_t c = {0};
  pqs_stream_cbs_t cbs = {.on_columns = close_ctx_on_columns,
                          .on_row = sum_row,
                          .on_done = consumer_done};
  ck_assert_int_eq(
      pqs_stream_start(
          pt_query(ctx, "SELECT generate_series(1, 1000)::int8", NULL), &cbs,
          &c),
      0);
  pt_loop_free(loop);
  ck_assert_int_eq(c.columns_calls, 1);
  ck_assert_int_eq(c.done.calls, 1);
  ck_assert_int_eq(c.done.status, PQS_ECANCELED);
  ck_assert_uint_eq(c.rows, 0);
  ck_assert_uint_eq(c.done.rows, 0);
}
END_TEST

/* ---- notices ---- */

typedef struct {
  int calls;
  char severity[16], message[64];
} heard_t;

static void on_notice(pqs_ctx_t *ctx, const pqs_error_t *n, void *data) {
  (void)ctx;
  heard_t *h = data;
  h->calls++;
  snprintf(h->severity, sizeof(h->severity), "%s", n->severity);
  snprintf(h->message, sizeof(h->message), "%s", n->message);
}

START_TEST(notices_reach_the_callback) {
  uv_loop_t *loop = pt_loop_new();
  heard_t h = {0};
  pqs_ctx_opts_t opts = {
      .on_notice = on_notice, .notice_data = &h, PT_SUITE_OPTS};
  pt_opened_t o = {0};
  pqs_ctx_t *ctx;
  ck_assert_int_eq(
      pqs_ctx_open(&ctx, loop, pt_conninfo(), &opts, pt_on_open, &o), 0);
  while (o.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(o.status, 0);
  ck_assert_int_eq(
      pt_exec_wait(loop, ctx, "DO $$BEGIN RAISE NOTICE 'hello %', 42; END$$"),
      0);
  ck_assert_int_eq(h.calls, 1);
  ck_assert_str_eq(h.severity, "NOTICE");
  ck_assert_str_eq(h.message, "hello 42");
  pt_close(loop, ctx);

  /* through a factory, twice over one pooled connection */
  heard_t f_heard = {0};
  pqs_factory_opts_t fo = {.conninfo = pt_conninfo(),
                           .max_size = 1,
                           .on_notice = on_notice,
                           .notice_data = &f_heard};
  pqs_factory_t *f;
  ck_assert_int_eq(pqs_factory_new(&f, &fo), 0);
  for (int i = 0; i < 2; i++) {
    pt_opened_t g = {0};
    ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, pt_on_open, &g), 0);
    while (g.calls == 0)
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_int_eq(g.status, 0);
    ck_assert_int_eq(
        pt_exec_wait(loop, g.ctx, "DO $$BEGIN RAISE WARNING 'w'; END$$"), 0);
    ck_assert_int_eq(f_heard.calls, i + 1);
    ck_assert_str_eq(f_heard.severity, "WARNING");
    pt_close(loop, g.ctx);
  }
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}
END_TEST

/* ---- parameters, empty results, commands ---- */

typedef struct {
  pt_done_t done;
  char text[3][32];
  int nulls[3];
} params_t;

static int params_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  params_t *p = data;
  for (int i = 0; i < 3; i++) {
    const char *t = pqs_row_text(row, i, NULL);
    p->nulls[i] = pqs_row_is_null(row, i);
    snprintf(p->text[i], sizeof(p->text[i]), "%s", t ? t : "");
  }
  return PQS_CONTINUE;
}

static void params_done(pqs_stream_t *s, const pqs_done_t *d, void *data) {
  (void)s;
  pt_record(&((params_t *)data)->done, d);
}

START_TEST(parameters) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  const char *params[] = {"40", "it's \"quoted\"; DROP TABLE x", NULL};
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s,
                             "SELECT $1::int + 2, $2::text, $3::text IS NULL",
                             3, params, NULL),
                   0);
  params_t p = {0};
  pqs_stream_cbs_t cbs = {.on_row = params_row, .on_done = params_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &p), 0);
  while (p.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(p.done.status, 0);
  ck_assert_str_eq(p.text[0], "42");
  ck_assert_str_eq(p.text[1], "it's \"quoted\"; DROP TABLE x");
  ck_assert_str_eq(p.text[2], "t");
  ck_assert_int_eq(p.nulls[0] + p.nulls[1] + p.nulls[2], 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(empty_result) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  consumer_t c = {0};
  run(loop, ctx, "SELECT 1::int8 AS a, 'x' AS b WHERE false", NULL, &c);
  ck_assert_int_eq(c.done.status, 0);
  ck_assert_int_eq(c.rows, 0);
  ck_assert_int_eq(c.columns_calls, 1);
  ck_assert_int_eq(c.columns_ncols, 2);
  ck_assert_str_eq(c.done.tag, pt_copy() ? "COPY 0" : "SELECT 0");
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(commands) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "CREATE TEMP TABLE t (a int)"), 0);
  pt_done_t d = {0};
  const char *params[] = {"3"};
  ck_assert_int_eq(pqs_exec(ctx,
                            "INSERT INTO t SELECT generate_series(1, $1::int)",
                            1, params, NULL, pt_on_exec, &d),
                   0);
  ck_assert_int_eq(pqs_exec(ctx, "SELECT 1", 0, NULL, NULL, pt_on_exec, &d),
                   PQS_EBUSY);
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT 1", 0, NULL, NULL), PQS_EBUSY);
  while (d.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(d.calls, 1);
  ck_assert_int_eq(d.status, 0);
  ck_assert_int_eq(d.affected, 3);
  ck_assert_str_eq(d.tag, "INSERT 0 3");

  memset(&d, 0, sizeof(d));
  ck_assert_int_eq(pqs_exec(ctx, "UPDATE t SET a = a + 1 WHERE a > 1", 0, NULL,
                            NULL, pt_on_exec, &d),
                   0);
  while (d.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(d.affected, 2);

  memset(&d, 0, sizeof(d));
  ck_assert_int_eq(
      pqs_exec(ctx, "SELECT * FROM t", 0, NULL, NULL, pt_on_exec, &d), 0);
  while (d.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(d.rows, 3);

  memset(&d, 0, sizeof(d));
  ck_assert_int_eq(pqs_exec(ctx, "INSERT INTO t VALUES ('not a number')", 0,
                            NULL, NULL, pt_on_exec, &d),
                   0);
  while (d.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(d.status, PQS_ESQL);
  ck_assert_str_eq(d.sqlstate, "22P02");

  ck_assert_int_eq(pt_exec_wait(loop, ctx, "COPY t TO STDOUT"), PQS_EINVAL);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "COPY t FROM STDIN"), PQS_EINVAL);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "BEGIN"), 0);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "COMMIT"), 0);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

int main(void) {
  Suite *s = suite_create("stream");
  TCase *tc = tcase_create("stream");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, million_rows);
  tcase_add_test(tc, busy_rule);
  tcase_add_test(tc, pause_resume_bounded);
  tcase_add_test(tc, early_stop);
  tcase_add_test(tc, close_paused_stream);
  tcase_add_test(tc, stop_before_the_server_starts);
  tcase_add_test(tc, user_error_from_row);
  tcase_add_test(tc, query_timeout);
  tcase_add_test(tc, sql_error_mid_stream);
  tcase_add_test(tc, sql_error_at_once);
  tcase_add_test(tc, backend_killed);
  tcase_add_test(tc, unstarted_stream_close);
  tcase_add_test(tc, start_twice_and_bad_args);
  tcase_add_test(tc, next_query_from_on_done);
  tcase_add_test(tc, ctx_close_mid_stream);
  tcase_add_test(tc, ctx_close_in_on_columns);
  tcase_add_test(tc, error_fields);
  tcase_add_test(tc, multi_statement_exec);
  tcase_add_test(tc, describe_statements);
  tcase_add_test(tc, notices_reach_the_callback);
  tcase_add_test(tc, parameters);
  tcase_add_test(tc, empty_result);
  tcase_add_test(tc, commands);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
