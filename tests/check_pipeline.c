#define _DEFAULT_SOURCE /* usleep */
/* Pipelined reads (pqs_pipeline): N queries in one round trip, their rows
 * as N streams in order, each with its own completion; a failing query
 * ends only its own stream unless all or nothing; a stream that stops
 * early is drained while later ones want rows, cancelled when none does;
 * a cancel, a timeout and a reset in the middle end the rest with one
 * completion each; the busy rule holds for the whole pipeline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "faultproxy.h"
#include "pqs_test.h"

/* What one stream of a pipeline saw, and when its end came. */
typedef struct {
  pt_done_t done;
  int order;       /* 1 + the place of its on_done among the pipeline's */
  int rows;
  char first[64];  /* its first row's first value */
  int ctx_busy;    /* pqs_ctx_is_busy during its on_done */
  int stop_after;  /* > 0: close the stream from this row on */
  int pause_at;    /* > 0: pause at this row */
  pqs_ctx_t *ctx;
} seen_t;

static int ends; /* on_done calls so far in the test */

static int on_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  seen_t *v = data;
  if (v->rows++ == 0) {
    const char *t = pqs_row_text(row, 0, NULL);
    snprintf(v->first, sizeof(v->first), "%s", t ? t : "NULL");
  }
  if (v->stop_after > 0 && v->rows >= v->stop_after)
    return PQS_STOP;
  (void)s;
  return v->pause_at > 0 && v->rows == v->pause_at ? PQS_PAUSE
                                                   : PQS_CONTINUE;
}

static void on_done(pqs_stream_t *s, const pqs_done_t *d, void *data) {
  seen_t *v = data;
  v->order = ++ends;
  v->ctx_busy = v->ctx ? pqs_ctx_is_busy(v->ctx) : -1;
  pt_on_done(s, d, &v->done);
}

static const pqs_stream_cbs_t cbs = {.on_row = on_row, .on_done = on_done};

static pqs_stream_t *add(pqs_pipeline_t *pl, seen_t *v, pqs_ctx_t *ctx,
                         const char *sql, int n, const char *const *params) {
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_pipeline_query(pl, &s, sql, n, params), 0);
  v->ctx = ctx;
  ck_assert_int_eq(pqs_stream_start(s, &cbs, v), 0);
  return s;
}

static void wait_all(uv_loop_t *loop, seen_t *v, int n) {
  double until = pt_now() + 60;
  for (int i = 0; i < n; i++)
    while (v[i].done.calls == 0) {
      ck_assert_msg(pt_now() < until, "stream %d never ended", i);
      uv_run(loop, UV_RUN_ONCE);
    }
  for (int i = 0; i < n; i++)
    ck_assert_int_eq(v[i].done.calls, 1);
}

static pqs_pipeline_t *new_pipeline(pqs_ctx_t *ctx,
                                    const pqs_pipeline_opts_t *o) {
  pqs_pipeline_t *pl = NULL;
  ck_assert_int_eq(pqs_pipeline(ctx, o, &pl), 0);
  ends = 0;
  return pl;
}

/* The context serves a plain query again. */
static void assert_reusable(uv_loop_t *loop, pqs_ctx_t *ctx) {
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 0);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
}

START_TEST(streams_in_order) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_pipeline_t *pl = new_pipeline(ctx, NULL);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 1);
  pqs_stream_t *busy;
  ck_assert_int_eq(pqs_query(ctx, &busy, "SELECT 1", 0, NULL, NULL),
                   PQS_EBUSY);
  seen_t v[4] = {0};
  const char *p[] = {"41"};
  add(pl, &v[0], ctx, "SELECT $1::int + 1 AS a", 1, p);
  add(pl, &v[1], ctx, "SELECT g FROM generate_series(1, 5000) g", 0, NULL);
  pqs_param_t typed[] = {{.kind = PQS_PARAM_INT64, .u.i64 = 7}};
  pqs_stream_t *s;
  ck_assert_int_eq(
      pqs_pipeline_query_typed(pl, &s, "SELECT $1 * 6 AS t", 1, typed), 0);
  v[2].ctx = ctx;
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &v[2]), 0);
  add(pl, &v[3], ctx, "SELECT g FROM generate_series(1, 0) g", 0, NULL);
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  ck_assert_int_eq(pqs_pipeline_send(pl), PQS_ESTATE);
  ck_assert_int_eq(pqs_pipeline_query(pl, &s, "SELECT 1", 0, NULL),
                   PQS_ESTATE);
  ck_assert_int_eq(v[0].done.calls, 0); /* nothing from inside the call */
  wait_all(loop, v, 4);
  for (int i = 0; i < 4; i++) {
    ck_assert_msg(v[i].done.status == 0, "%d: %s", i, v[i].done.message);
    ck_assert_int_eq(v[i].order, i + 1);
  }
  ck_assert_str_eq(v[0].first, "42");
  ck_assert_int_eq(v[1].rows, 5000);
  ck_assert_int_eq(v[1].done.rows, 5000);
  ck_assert_str_eq(v[1].done.tag, "SELECT 5000");
  ck_assert_str_eq(v[2].first, "42");
  ck_assert_int_eq(v[3].rows, 0);
  ck_assert_str_eq(v[3].done.tag, "SELECT 0");
  /* busy through every on_done but the last */
  ck_assert_int_eq(v[0].ctx_busy, 1);
  ck_assert_int_eq(v[2].ctx_busy, 1);
  ck_assert_int_eq(v[3].ctx_busy, 0);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(failing_query_in_the_middle) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TABLE IF EXISTS pl_t; CREATE TABLE pl_t (v int)");
  /* each its own transaction: only the failing one fails */
  pqs_pipeline_t *pl = new_pipeline(ctx, NULL);
  seen_t v[3] = {0};
  add(pl, &v[0], ctx, "INSERT INTO pl_t VALUES (1) RETURNING v", 0, NULL);
  add(pl, &v[1], ctx, "SELECT 1 / (v - 1) FROM pl_t", 0, NULL);
  add(pl, &v[2], ctx, "INSERT INTO pl_t VALUES (3) RETURNING v", 0, NULL);
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  wait_all(loop, v, 3);
  ck_assert_int_eq(v[0].done.status, 0);
  ck_assert_str_eq(v[0].done.tag, "INSERT 0 1");
  ck_assert_int_eq(v[1].done.status, PQS_ESQL);
  ck_assert_str_eq(v[1].done.sqlstate, "22012");
  ck_assert_int_eq(v[2].done.status, 0);
  ck_assert_str_eq(v[2].first, "3");
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM pl_t"), 2);
  /* all or nothing: the failure undoes the others */
  pt_sql(admin, "TRUNCATE pl_t");
  pqs_pipeline_opts_t o = {.all_or_nothing = 1};
  pl = new_pipeline(ctx, &o);
  memset(v, 0, sizeof(v));
  add(pl, &v[0], ctx, "INSERT INTO pl_t VALUES (1) RETURNING v", 0, NULL);
  add(pl, &v[1], ctx, "SELECT 1 / (v - 1) FROM pl_t", 0, NULL);
  add(pl, &v[2], ctx, "INSERT INTO pl_t VALUES (3) RETURNING v", 0, NULL);
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  wait_all(loop, v, 3);
  ck_assert_int_eq(v[0].rows, 1); /* delivered, then undone */
  ck_assert_int_eq(v[0].done.status, PQS_EABORTED);
  ck_assert_str_eq(v[0].done.sqlstate, "22012"); /* why: the failure */
  ck_assert_int_eq(v[1].done.status, PQS_ESQL);
  ck_assert_str_eq(v[1].done.sqlstate, "22012");
  ck_assert_int_eq(v[2].done.status, PQS_EABORTED);
  ck_assert_int_eq(v[2].rows, 0);
  for (int i = 0; i < 3; i++) {
    ck_assert_int_eq(v[i].order, i + 1);
    ck_assert_int_eq(v[i].ctx_busy, 0); /* all after the pipeline's end */
  }
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM pl_t"), 0);
  /* and without a failure, everything commits */
  pl = new_pipeline(ctx, &o);
  memset(v, 0, sizeof(v));
  add(pl, &v[0], ctx, "INSERT INTO pl_t VALUES (5)", 0, NULL);
  add(pl, &v[1], ctx, "SELECT count(*) FROM pl_t", 0, NULL);
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  wait_all(loop, v, 2);
  ck_assert_int_eq(v[0].done.status, 0);
  ck_assert_int_eq(v[0].done.affected, 1);
  ck_assert_str_eq(v[1].first, "1"); /* one transaction: it sees it */
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM pl_t"), 1);
  assert_reusable(loop, ctx);
  pt_sql(admin, "DROP TABLE pl_t");
  PQfinish(admin);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* The admin cancels the pipeline's backend once it sleeps. */
static void cancel_when_sleeping(PGconn *admin, int pid) {
  char sql[256];
  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND "
           "state = 'active' AND wait_event = 'PgSleep'",
           pid);
  double until = pt_now() + 20;
  while (pt_scalar_ll(admin, sql) == 0) {
    ck_assert_msg(pt_now() < until, "the pipeline never slept");
    usleep(20000);
  }
  snprintf(sql, sizeof(sql), "SELECT pg_cancel_backend(%d)", pid);
  pt_sql(admin, sql);
}

/* `first`, a query that sleeps a minute, then "SELECT 3", on a new
 * pipeline (not sent): the middle one is where the tests cut in. */
static pqs_pipeline_t *around_a_sleep(pqs_ctx_t *ctx,
                                      const pqs_pipeline_opts_t *o,
                                      const char *first, seen_t v[3]) {
  pqs_pipeline_t *pl = new_pipeline(ctx, o);
  memset(v, 0, 3 * sizeof(*v));
  add(pl, &v[0], ctx, first, 0, NULL);
  add(pl, &v[1], ctx, "SELECT pg_sleep(60)", 0, NULL);
  add(pl, &v[2], ctx, "SELECT 3", 0, NULL);
  return pl;
}

/* All three ended, the first well, the other two with `status`, soon
 * after t0. */
static void assert_cut(uv_loop_t *loop, seen_t v[3], int status, double t0) {
  wait_all(loop, v, 3);
  ck_assert_msg(pt_now() - t0 < 30, "took %.1f s", pt_now() - t0);
  ck_assert_int_eq(v[0].done.status, 0);
  ck_assert_int_eq(v[1].done.status, status);
  ck_assert_int_eq(v[2].done.status, status);
  ck_assert_int_eq(v[2].rows, 0);
}

START_TEST(cancel_in_the_middle) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  PGconn *admin = pt_admin();
  int pid = pqs_ctx_backend_pid(ctx);
  /* the server cancels the sleeping query: only it fails */
  seen_t v[3];
  pqs_pipeline_t *pl = around_a_sleep(ctx, NULL, "SELECT 1", v);
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  while (v[0].done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  double t0 = pt_now();
  cancel_when_sleeping(admin, pid);
  wait_all(loop, v, 3);
  ck_assert_msg(pt_now() - t0 < 30, "the cancel took %.1f s", pt_now() - t0);
  ck_assert_int_eq(v[0].done.status, 0);
  ck_assert_int_eq(v[1].done.status, PQS_ESQL);
  ck_assert_str_eq(v[1].done.sqlstate, "57014");
  ck_assert_int_eq(v[2].done.status, 0);
  ck_assert_str_eq(v[2].first, "3");
  assert_reusable(loop, ctx);
  /* the caller closes the pipeline while its second query sleeps */
  pl = around_a_sleep(ctx, NULL, "SELECT 1", v);
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  while (v[0].done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  char sql[160];
  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM pg_stat_activity WHERE pid = %d AND "
           "wait_event = 'PgSleep'", pid);
  while (pt_scalar_ll(admin, sql) == 0)
    uv_run(loop, UV_RUN_NOWAIT);
  t0 = pt_now();
  ck_assert_int_eq(pqs_pipeline_close(pl), 0);
  assert_cut(loop, v, PQS_ECANCELED, t0);
  pt_assert_idle(pid);
  assert_reusable(loop, ctx);
  PQfinish(admin);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(timeout_in_the_middle) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  int pid = pqs_ctx_backend_pid(ctx);
  pqs_pipeline_opts_t o = {.timeout_ms = 500};
  seen_t v[3];
  pqs_pipeline_t *pl = around_a_sleep(ctx, &o, "SELECT 1", v);
  double t0 = pt_now();
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  assert_cut(loop, v, PQS_ETIMEDOUT, t0);
  pt_assert_idle(pid);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

static void on_reset(uv_timer_t *t) { pt_proxy_reset(t->data); }

START_TEST(reset_in_the_middle) {
  PGconn *admin = pt_admin();
  char *port = pt_scalar(admin, "SHOW port");
  pt_proxy_t *proxy = pt_proxy_start(atoi(port));
  free(port);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_proxy_conninfo(proxy));
  seen_t v[3];
  pqs_pipeline_t *pl =
      around_a_sleep(ctx, NULL, "SELECT g FROM generate_series(1, 10) g", v);
  uv_timer_t reset;
  uv_timer_init(loop, &reset);
  reset.data = proxy;
  uv_timer_start(&reset, on_reset, 500, 0);
  double t0 = pt_now();
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  assert_cut(loop, v, PQS_ECONNLOST, t0);
  ck_assert_int_eq(v[0].rows, 10);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  uv_close((uv_handle_t *)&reset, NULL);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  pt_proxy_stop(proxy);
  PQfinish(admin);
}
END_TEST

START_TEST(early_stop_is_drained_or_cancelled) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  int pid = pqs_ctx_backend_pid(ctx);
  /* stream 0 stops at its 10th row and stream 1 takes 5: both drained,
   * since stream 2 wants its rows */
  pqs_pipeline_t *pl = new_pipeline(ctx, NULL);
  seen_t v[4] = {0};
  v[0].stop_after = 10;
  add(pl, &v[0], ctx, "SELECT g FROM generate_series(1, 100000) g", 0, NULL);
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_pipeline_query(
                       pl, &s, "SELECT g FROM generate_series(1, 100000) g",
                       0, NULL),
                   0);
  ck_assert_int_eq(pqs_stream_take(s, 5), 0);
  v[1].ctx = ctx;
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &v[1]), 0);
  add(pl, &v[2], ctx, "SELECT g FROM generate_series(1, 3000) g", 0, NULL);
  /* the last one stops early too: what is left is cancelled */
  v[3].stop_after = 3;
  add(pl, &v[3], ctx, "SELECT generate_series(1, 1000000000)", 0,
      NULL);
  double t0 = pt_now();
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  wait_all(loop, v, 4);
  ck_assert_msg(pt_now() - t0 < 30, "took %.1f s", pt_now() - t0);
  ck_assert_int_eq(v[0].done.status, PQS_ECANCELED);
  ck_assert_int_eq(v[0].rows, 10);
  ck_assert_int_eq(v[1].done.status, 0);
  ck_assert_int_eq(v[1].rows, 5);
  ck_assert_int_eq(v[2].done.status, 0);
  ck_assert_int_eq(v[2].rows, 3000);
  ck_assert_int_eq(v[3].done.status, PQS_ECANCELED);
  ck_assert_int_eq(v[3].rows, 3);
  for (int i = 0; i < 4; i++)
    ck_assert_int_eq(v[i].order, i + 1);
  pt_assert_idle(pid);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(pause_holds_the_later_streams) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_pipeline_t *pl = new_pipeline(ctx, NULL);
  seen_t v[2] = {0};
  v[0].pause_at = 100;
  pqs_stream_t *s0 =
      add(pl, &v[0], ctx, "SELECT g FROM generate_series(1, 1000) g", 0, NULL);
  add(pl, &v[1], ctx, "SELECT 2", 0, NULL);
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  while (v[0].rows < 100)
    uv_run(loop, UV_RUN_ONCE);
  /* paused: nothing more comes, nor the next stream's end */
  for (int i = 0; i < 20; i++)
    uv_run(loop, UV_RUN_NOWAIT);
  usleep(100000);
  for (int i = 0; i < 20; i++)
    uv_run(loop, UV_RUN_NOWAIT);
  ck_assert_int_eq(v[0].rows, 100);
  ck_assert_int_eq(v[1].done.calls, 0);
  ck_assert_int_eq(pqs_stream_resume(s0), 0);
  wait_all(loop, v, 2);
  ck_assert_int_eq(v[0].rows, 1000);
  ck_assert_int_eq(v[0].done.status, 0);
  ck_assert_int_eq(v[1].done.status, 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(binary_results) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_pipeline_opts_t o = {.result_format = PQS_RESULT_BINARY};
  pqs_pipeline_t *pl = new_pipeline(ctx, &o);
  seen_t v[2] = {0};
  pqs_stream_t *s0 =
      add(pl, &v[0], ctx, "SELECT 1.5::float8 AS f", 0, NULL);
  add(pl, &v[1], ctx, "SELECT 'x'::text AS t", 0, NULL);
  (void)s0;
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  wait_all(loop, v, 2);
  ck_assert_int_eq(v[0].done.status, 0);
  ck_assert_str_eq(v[0].first, "1.5");
  ck_assert_str_eq(v[1].first, "x");
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

static void sink_done(pqs_sink_t *k, const pqs_done_t *d, uint64_t bytes,
                      void *data) {
  (void)k;
  (void)bytes;
  pt_record(data, d);
}

#define JSON_SQL                                                            \
  "SELECT ROW(1, 'a')::pl_pair AS p, 'sad'::pl_mood AS m,"                  \
  " date '2020-01-02' AS d, ARRAY[ROW(2, 'b')::pl_pair] AS ps, 1.5 AS n"

/* JSON Lines of pipelined streams are row_to_json()'s bytes, whatever the
 * types and DateStyle: their statements are described first. */
START_TEST(json_lines_exact) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TYPE IF EXISTS pl_pair; DROP TYPE IF EXISTS pl_mood;"
                "CREATE TYPE pl_pair AS (a int, b text);"
                "CREATE TYPE pl_mood AS ENUM ('sad', 'ok')");
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SET DateStyle = 'SQL, DMY'"), 0);
  pt_sql(admin, "SET DateStyle = 'SQL, DMY'");
  char *want = pt_scalar(admin, "SELECT row_to_json(q)::text || chr(10) ||"
                                " row_to_json(q)::text FROM (" JSON_SQL ") q");
  char path[] = "/tmp/pqs_pipeline_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert_int_eq(fcntl(fd, F_SETFL, O_APPEND), 0); /* two sinks write */
  pqs_pipeline_t *pl = new_pipeline(ctx, NULL);
  seen_t v = {0};
  add(pl, &v, ctx, "SELECT 1", 0, NULL); /* not JSON: runs as it is */
  pt_done_t d[2] = {0};
  pqs_sink_opts_t so = {.format = PQS_FORMAT_JSONL};
  for (int i = 0; i < 2; i++) {
    pqs_stream_t *s;
    ck_assert_int_eq(pqs_pipeline_query(pl, &s, JSON_SQL, 0, NULL), 0);
    ck_assert_int_eq(pqs_sink_fd(s, loop, fd, &so, sink_done, &d[i]), 0);
  }
  /* a statement that fails to describe fails in its turn, as itself */
  pt_done_t bad = {0};
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_pipeline_query(pl, &s, "SELECT nope", 0, NULL), 0);
  ck_assert_int_eq(pqs_sink_fd(s, loop, fd, &so, sink_done, &bad), 0);
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  /* each sink calls back once its bytes are written */
  while (bad.calls == 0 || d[0].calls == 0 || d[1].calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(v.done.status, 0);
  ck_assert_msg(d[0].status == 0 && d[1].status == 0, "%s %s", d[0].message,
                d[1].message);
  ck_assert_int_eq(bad.status, PQS_ESQL);
  ck_assert_str_eq(bad.sqlstate, "42703");
  char got[4096] = {0};
  ck_assert_int_gt(pread(fd, got, sizeof(got) - 1, 0), 0);
  close(fd);
  unlink(path);
  char expect[4096];
  snprintf(expect, sizeof(expect), "%s\n", want);
  ck_assert_str_eq(got, expect);
  free(want);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_sql(admin, "DROP TYPE pl_pair; DROP TYPE pl_mood");
  PQfinish(admin);
  pt_loop_free(loop);
}
END_TEST

START_TEST(misuse) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_pipeline_t *pl = NULL;
  ck_assert_int_eq(pqs_pipeline(NULL, NULL, &pl), PQS_EINVAL);
  ck_assert_int_eq(pqs_pipeline(ctx, NULL, NULL), PQS_EINVAL);
  pl = new_pipeline(ctx, NULL);
  pqs_pipeline_t *second;
  ck_assert_int_eq(pqs_pipeline(ctx, NULL, &second), PQS_EBUSY);
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_pipeline_query(pl, &s, "COPY pg_class TO STDOUT", 0,
                                      NULL),
                   PQS_EINVAL);
  ck_assert_int_eq(pqs_pipeline_query(pl, &s, NULL, 0, NULL), PQS_EINVAL);
  ck_assert_int_eq(pqs_pipeline_send(pl), PQS_EINVAL); /* nothing in it */
  /* closed before it was sent: a started stream hears, a new one not */
  seen_t v = {0};
  add(pl, &v, ctx, "SELECT 1", 0, NULL);
  pqs_stream_t *unstarted;
  ck_assert_int_eq(pqs_pipeline_query(pl, &unstarted, "SELECT 2", 0, NULL),
                   0);
  ck_assert_int_eq(pqs_pipeline_close(pl), 0);
  ck_assert_int_eq(v.done.calls, 0); /* never from inside the call */
  while (v.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(v.done.calls, 1);
  ck_assert_int_eq(v.done.status, PQS_ECANCELED);
  ck_assert_int_eq(v.ctx_busy, 0);
  /* with none started, the context is free at once */
  pl = new_pipeline(ctx, NULL);
  ck_assert_int_eq(pqs_pipeline_query(pl, &unstarted, "SELECT 2", 0, NULL),
                   0);
  ck_assert_int_eq(pqs_pipeline_close(pl), 0);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 0);
  /* sent once the last stream starts; a stream closed unstarted is left
   * out, and the last one closed takes the pipeline with it */
  pl = new_pipeline(ctx, NULL);
  seen_t w[2] = {0};
  pqs_stream_t *late, *dropped;
  ck_assert_int_eq(pqs_pipeline_query(pl, &late, "SELECT 'late'", 0, NULL), 0);
  ck_assert_int_eq(pqs_pipeline_query(pl, &dropped, "SELECT 1/0", 0, NULL),
                   0);
  add(pl, &w[1], ctx, "SELECT 'third'", 0, NULL);
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  for (int i = 0; i < 10; i++)
    uv_run(loop, UV_RUN_NOWAIT);
  ck_assert_int_eq(w[1].done.calls, 0); /* waits for `late` */
  ck_assert_int_eq(pqs_stream_close(dropped), 0);
  w[0].ctx = ctx;
  ck_assert_int_eq(pqs_stream_start(late, &cbs, &w[0]), 0);
  wait_all(loop, w, 2);
  ck_assert_str_eq(w[0].first, "late");
  ck_assert_int_eq(w[1].done.status, 0);
  /* the last stream left out: the one before it is the last, and the
   * context is free in its on_done */
  pl = new_pipeline(ctx, NULL);
  seen_t u = {0};
  add(pl, &u, ctx, "SELECT 'kept'", 0, NULL);
  ck_assert_int_eq(pqs_pipeline_query(pl, &dropped, "SELECT 1", 0, NULL), 0);
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  ck_assert_int_eq(pqs_stream_close(dropped), 0);
  wait_all(loop, &u, 1);
  ck_assert_str_eq(u.first, "kept");
  ck_assert_int_eq(u.ctx_busy, 0);
  pl = new_pipeline(ctx, NULL);
  ck_assert_int_eq(pqs_pipeline_query(pl, &late, "SELECT 1", 0, NULL), 0);
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 1);
  ck_assert_int_eq(pqs_stream_close(late), 0);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 0);
  assert_reusable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

int main(void) {
  Suite *s = suite_create("pipeline");
  TCase *tc = tcase_create("pipeline");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, streams_in_order);
  tcase_add_test(tc, failing_query_in_the_middle);
  tcase_add_test(tc, cancel_in_the_middle);
  tcase_add_test(tc, timeout_in_the_middle);
  tcase_add_test(tc, reset_in_the_middle);
  tcase_add_test(tc, early_stop_is_drained_or_cancelled);
  tcase_add_test(tc, pause_holds_the_later_streams);
  tcase_add_test(tc, binary_results);
  tcase_add_test(tc, json_lines_exact);
  tcase_add_test(tc, misuse);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
