/* The factory: a bounded pool shared by threads, each on its own loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pqs_test.h"

/* A conninfo whose connections we can count in pg_stat_activity: the
 * application name carries this process's id, as the suite runs in
 * several modes side by side. */
static char *app_conninfo(const char *app) {
  char *c = malloc(512);
  snprintf(c, 512, "%s application_name=%s_%d", pt_conninfo(), app,
           (int)getpid());
  return c;
}

static long long count_app(PGconn *admin, const char *app) {
  char sql[256];
  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
           "'%s_%d'",
           app, (int)getpid());
  return pt_scalar_ll(admin, sql);
}

/* ---- getting one context and waiting for it ---- */

typedef struct {
  int calls, status;
  pqs_ctx_t *ctx;
  int order;
  int *counter;
  char msg[256];
} got_t;

static void on_got(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                   void *data) {
  got_t *g = data;
  g->calls++;
  g->status = status;
  g->ctx = ctx;
  if (g->counter)
    g->order = ++*g->counter;
  if (err)
    snprintf(g->msg, sizeof(g->msg), "%s", err->message);
}

static pqs_ctx_t *get(uv_loop_t *loop, pqs_factory_t *f) {
  got_t g = {0};
  ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, on_got, &g), 0);
  ck_assert_int_eq(g.calls, 0); /* never from inside the call */
  while (g.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(g.status == 0, "%s: %s", pqs_err_name(g.status), g.msg);
  ck_assert_ptr_nonnull(g.ctx);
  return g.ctx;
}

static void give_back(uv_loop_t *loop, pqs_ctx_t *ctx) { pt_close(loop, ctx); }

static pqs_factory_t *factory(const char *conninfo, unsigned max) {
  pqs_factory_opts_t o = {.conninfo = conninfo, .max_size = max, PT_SUITE_OPTS};
  pqs_factory_t *f = NULL;
  ck_assert_int_eq(pqs_factory_new(&f, &o), 0);
  return f;
}

/* One value of the first row of `sql` run on `ctx`. */
typedef struct {
  pt_done_t done;
  char value[128];
} one_t;

static int one_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  const char *v = pqs_row_text(row, 0, NULL);
  snprintf(((one_t *)data)->value, 128, "%s", v ? v : "NULL");
  return PQS_CONTINUE;
}

static void one_done(pqs_stream_t *s, const pqs_done_t *d, void *data) {
  (void)s;
  pt_record(&((one_t *)data)->done, d);
}

static void scalar(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                   char *out) {
  one_t o = {0};
  pqs_stream_cbs_t cbs = {.on_row = one_row, .on_done = one_done};
  pt_stream_wait(loop, pt_query(ctx, sql, NULL), &cbs, &o, &o.done);
  ck_assert_msg(o.done.status == 0, "%s: %s", sql, o.done.message);
  strcpy(out, o.value);
}

/* ---- 4 threads, 2,000 contexts, never more than 5 connections ---- */

#define THREADS 4
#define PER_THREAD 500
#define IN_FLIGHT 3

typedef struct {
  pqs_factory_t *f;
  uv_loop_t loop;
  int started, opened, failed, done;
  int loop_rc; /* uv_loop_init, then uv_loop_close */
} worker_t;

static void start_one(worker_t *w);

static void on_returned(pqs_ctx_t *ctx, void *data) {
  (void)ctx;
  worker_t *w = data;
  w->done++;
  start_one(w);
}

static void on_worked(pqs_ctx_t *ctx, const pqs_done_t *d, void *data) {
  worker_t *w = data;
  if (d->status != 0)
    w->failed++;
  pqs_ctx_set_data(ctx, w);
  pqs_ctx_close(ctx, on_returned);
}

static void on_worker_ctx(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                          void *data) {
  (void)err;
  worker_t *w = data;
  if (status != 0) {
    w->failed++;
    w->done++;
    start_one(w);
    return;
  }
  w->opened++;
  if (pqs_exec(ctx, "SELECT 1", 0, NULL, NULL, on_worked, w) != 0) {
    w->failed++;
    pqs_ctx_close(ctx, NULL);
  }
}

static void start_one(worker_t *w) {
  if (w->started == PER_THREAD)
    return;
  w->started++;
  if (pqs_factory_open_ctx(w->f, &w->loop, NULL, on_worker_ctx, w) != 0)
    w->failed++;
}

/* Check's asserts belong to the test's own thread: a worker records how
 * its loop ended, and the test asserts it. */
static void worker_main(void *arg) {
  worker_t *w = arg;
  w->loop_rc = uv_loop_init(&w->loop);
  if (w->loop_rc != 0)
    return;
  for (int i = 0; i < IN_FLIGHT; i++)
    start_one(w);
  uv_run(&w->loop, UV_RUN_DEFAULT);
  w->loop_rc = uv_loop_close(&w->loop); /* UV_EBUSY: a handle leaked */
}

typedef struct {
  pqs_factory_t *f;
  uv_mutex_t lock;
  int stop;
  long long max_seen;
  int samples;
} sampler_t;

static void sampler_main(void *arg) {
  sampler_t *s = arg;
  PGconn *admin = pt_admin();
  for (;;) {
    uv_mutex_lock(&s->lock);
    int stop = s->stop;
    uv_mutex_unlock(&s->lock);
    if (stop)
      break;
    long long n = count_app(admin, "pqs_stress");
    pqs_factory_stats_t fst;
    pqs_factory_stats(s->f, &fst); /* from another thread, too */
    uv_mutex_lock(&s->lock);
    if (n > s->max_seen)
      s->max_seen = n;
    s->samples++;
    uv_mutex_unlock(&s->lock);
    uv_sleep(2);
  }
  PQfinish(admin);
}

START_TEST(four_threads_bounded) {
  char *conninfo = app_conninfo("pqs_stress");
  pqs_factory_t *f = factory(conninfo, 5);
  sampler_t smp = {.f = f};
  uv_mutex_init(&smp.lock);
  uv_thread_t sampler, th[THREADS];
  worker_t w[THREADS];
  memset(w, 0, sizeof(w));
  ck_assert_int_eq(uv_thread_create(&sampler, sampler_main, &smp), 0);
  for (int i = 0; i < THREADS; i++) {
    w[i].f = f;
    ck_assert_int_eq(uv_thread_create(&th[i], worker_main, &w[i]), 0);
  }
  for (int i = 0; i < THREADS; i++)
    ck_assert_int_eq(uv_thread_join(&th[i]), 0);
  uv_mutex_lock(&smp.lock);
  smp.stop = 1;
  uv_mutex_unlock(&smp.lock);
  ck_assert_int_eq(uv_thread_join(&sampler), 0);
  int opened = 0, failed = 0;
  for (int i = 0; i < THREADS; i++) {
    opened += w[i].opened;
    failed += w[i].failed;
    ck_assert_int_eq(w[i].done, PER_THREAD);
    ck_assert_msg(w[i].loop_rc == 0, "worker %d's loop did not close: %s", i,
                  uv_err_name(w[i].loop_rc));
  }
  ck_assert_int_eq(failed, 0);
  ck_assert_int_eq(opened, THREADS * PER_THREAD);
  ck_assert_int_gt(smp.samples, 0);
  ck_assert_msg(smp.max_seen <= 5, "%lld connections seen", smp.max_seen);
  pqs_factory_stats_t st;
  pqs_factory_stats(f, &st);
  ck_assert_uint_le(st.open, 5);
  ck_assert_uint_eq(st.in_use, 0);
  ck_assert_uint_eq(st.waiting, 0);
  ck_assert_uint_le(st.total_opened, 5);
  ck_assert_uint_gt(st.total_waits, 0);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  uv_mutex_destroy(&smp.lock);
  free(conninfo);
}
END_TEST

/* ---- waiting in line ---- */

START_TEST(fifo_order) {
  uv_loop_t *loop = pt_loop_new();
  pqs_factory_t *f = factory(pt_conninfo(), 1);
  pqs_ctx_t *held = get(loop, f);
  int counter = 0;
  got_t g[3] = {
      {.counter = &counter}, {.counter = &counter}, {.counter = &counter}};
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, on_got, &g[i]), 0);
  for (int i = 0; i < 5; i++)
    uv_run(loop, UV_RUN_NOWAIT);
  pqs_factory_stats_t st;
  pqs_factory_stats(f, &st);
  ck_assert_uint_eq(st.waiting, 3);
  ck_assert_uint_eq(st.in_use, 1);
  give_back(loop, held);
  for (int i = 0; i < 3; i++) { /* each, as it gets it, gives it back */
    while (g[i].calls == 0)
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_int_eq(g[i].status, 0);
    ck_assert_int_eq(g[i].order, i + 1);
    give_back(loop, g[i].ctx);
  }
  pqs_factory_stats(f, &st);
  ck_assert_uint_eq(st.total_opened, 1);
  ck_assert_uint_eq(st.total_waits, 3);
  ck_assert(st.longest_wait_ms > 0);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}
END_TEST

START_TEST(acquire_timeout) {
  uv_loop_t *loop = pt_loop_new();
  pqs_factory_opts_t o = {
      .conninfo = pt_conninfo(), .max_size = 1, .acquire_timeout_ms = 200};
  pqs_factory_t *f;
  ck_assert_int_eq(pqs_factory_new(&f, &o), 0);
  pqs_ctx_t *held = get(loop, f);
  got_t g = {0};
  double t0 = pt_now();
  ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, on_got, &g), 0);
  while (g.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  double took = pt_now() - t0;
  ck_assert_int_eq(g.status, PQS_ETIMEDOUT);
  ck_assert_ptr_null(g.ctx);
  ck_assert_msg(took >= 0.15 && took < 5, "timed out after %.2fs", took);
  pqs_factory_stats_t st;
  pqs_factory_stats(f, &st);
  ck_assert_uint_eq(st.waiting, 0);
  give_back(loop, held);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}
END_TEST

START_TEST(cancelled_wait) {
  uv_loop_t *loop = pt_loop_new();
  pqs_factory_t *f = factory(pt_conninfo(), 1);
  pqs_ctx_t *held = get(loop, f);
  got_t g = {0}, next = {0};
  pqs_acquire_t *req = NULL;
  ck_assert_int_eq(pqs_factory_open_ctx(f, loop, &req, on_got, &g), 0);
  ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, on_got, &next), 0);
  ck_assert_int_eq(pqs_acquire_cancel(req), 0);
  ck_assert_int_eq(pqs_acquire_cancel(req), PQS_ESTATE);
  ck_assert_int_eq(g.calls, 0); /* from the loop, not from inside */
  while (g.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(g.status, PQS_ECANCELED);
  ck_assert_ptr_null(g.ctx);
  give_back(loop, held); /* goes to the one still waiting */
  while (next.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(next.status, 0);
  ck_assert_int_eq(g.calls, 1);
  give_back(loop, next.ctx);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}
END_TEST

/* ---- what the next user finds ---- */

START_TEST(returned_mid_transaction) {
  uv_loop_t *loop = pt_loop_new();
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TABLE IF EXISTS pool_tx; CREATE TABLE pool_tx (a int)");
  pqs_factory_t *f = factory(pt_conninfo(), 1);
  pqs_ctx_t *ctx = get(loop, f);
  int pid = pqs_ctx_backend_pid(ctx);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "BEGIN"), 0);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "INSERT INTO pool_tx VALUES (1)"),
                   0);
  give_back(loop, ctx); /* still in the transaction */
  ctx = get(loop, f);
  ck_assert_int_eq(pqs_ctx_backend_pid(ctx), pid); /* the same connection */
  char v[128];
  scalar(loop, ctx, "SELECT pg_current_xact_id_if_assigned() IS NULL", v);
  ck_assert_str_eq(v, "t"); /* not inside the old transaction */
  scalar(loop, ctx, "SELECT count(*) FROM pool_tx", v);
  ck_assert_str_eq(v, "0"); /* it was rolled back */
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM pool_tx"), 0);
  give_back(loop, ctx);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  PQfinish(admin);
  pt_loop_free(loop);
}
END_TEST

START_TEST(session_state_reset) {
  uv_loop_t *loop = pt_loop_new();
  pqs_factory_t *f = factory(pt_conninfo(), 1);
  pqs_ctx_t *ctx = get(loop, f);
  int pid = pqs_ctx_backend_pid(ctx);
  char before[128], v[128];
  scalar(loop, ctx, "SHOW work_mem", before);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SET work_mem = '77MB'"), 0);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "PREPARE p AS SELECT 1"), 0);
  scalar(loop, ctx, "SHOW work_mem", v);
  ck_assert_str_eq(v, "77MB");
  give_back(loop, ctx);
  ctx = get(loop, f);
  ck_assert_int_eq(pqs_ctx_backend_pid(ctx), pid);
  scalar(loop, ctx, "SHOW work_mem", v);
  ck_assert_str_eq(v, before);
  scalar(loop, ctx, "SELECT count(*) FROM pg_prepared_statements", v);
  ck_assert_str_eq(v, "0");
  give_back(loop, ctx);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}
END_TEST

/* ---- health ---- */

START_TEST(killed_while_idle) {
  uv_loop_t *loop = pt_loop_new();
  PGconn *admin = pt_admin();
  pqs_factory_t *f = factory(pt_conninfo(), 1);
  pqs_ctx_t *ctx = get(loop, f);
  int pid = pqs_ctx_backend_pid(ctx);
  give_back(loop, ctx);
  char sql[128];
  snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", pid);
  pt_sql(admin, sql);
  double until = pt_now() + 5;
  char *st = pt_backend_state(admin, pid);
  while (strcmp(st, "gone") != 0 && pt_now() < until) {
    free(st);
    uv_sleep(10);
    st = pt_backend_state(admin, pid);
  }
  ck_assert_str_eq(st, "gone");
  free(st);
  ctx = get(loop, f);
  ck_assert_int_ne(pqs_ctx_backend_pid(ctx), pid);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
  pqs_factory_stats_t s;
  pqs_factory_stats(f, &s);
  ck_assert_uint_eq(s.total_discarded, 1);
  ck_assert_uint_eq(s.total_opened, 2);
  give_back(loop, ctx);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  PQfinish(admin);
  pt_loop_free(loop);
}
END_TEST

START_TEST(broken_context_discarded) {
  uv_loop_t *loop = pt_loop_new();
  PGconn *admin = pt_admin();
  pqs_factory_t *f = factory(pt_conninfo(), 1);
  pqs_ctx_t *ctx = get(loop, f);
  char sql[128];
  snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)",
           pqs_ctx_backend_pid(ctx));
  pt_sql(admin, sql);
  int rc;
  do /* the loss shows on the next use */
    rc = pt_exec_wait(loop, ctx, "SELECT 1");
  while (rc == 0);
  ck_assert_int_eq(rc, PQS_ECONNLOST);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  give_back(loop, ctx);
  pqs_factory_stats_t s;
  pqs_factory_stats(f, &s);
  ck_assert_uint_eq(s.open, 0); /* its place is free */
  ck_assert_uint_eq(s.total_discarded, 1);
  ctx = get(loop, f);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
  give_back(loop, ctx);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  PQfinish(admin);
  pt_loop_free(loop);
}
END_TEST

static void wait_stats(pqs_factory_t *f, unsigned idle, double seconds,
                       pqs_factory_stats_t *s) {
  double until = pt_now() + seconds;
  do {
    pqs_factory_stats(f, s);
    if (s->idle == idle)
      return;
    uv_sleep(10);
  } while (pt_now() < until);
}

START_TEST(idle_timeout_and_min_idle) {
  char *conninfo = app_conninfo("pqs_idle");
  PGconn *admin = pt_admin();
  pqs_factory_opts_t o = {.conninfo = conninfo, .max_size = 4, .min_idle = 2};
  pqs_factory_t *f;
  ck_assert_int_eq(pqs_factory_new(&f, &o), 0);
  pqs_factory_stats_t s;
  wait_stats(f, 2, 5, &s);
  ck_assert_uint_eq(s.idle, 2);
  ck_assert_int_eq(count_app(admin, "pqs_idle"), 2);
  ck_assert_int_eq(pqs_factory_free(f), 0);

  pqs_factory_opts_t o2 = {
      .conninfo = conninfo, .max_size = 4, .idle_timeout_ms = 200};
  ck_assert_int_eq(pqs_factory_new(&f, &o2), 0);
  uv_loop_t *loop = pt_loop_new();
  give_back(loop, get(loop, f));
  pqs_factory_stats(f, &s);
  ck_assert_uint_eq(s.idle, 1);
  wait_stats(f, 0, 5, &s);
  ck_assert_uint_eq(s.idle, 0);
  ck_assert_uint_eq(s.total_discarded, 1);
  double until = pt_now() + 5;
  while (count_app(admin, "pqs_idle") != 0 && pt_now() < until)
    uv_sleep(10);
  ck_assert_int_eq(count_app(admin, "pqs_idle"), 0);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
  PQfinish(admin);
  free(conninfo);
}
END_TEST

START_TEST(max_lifetime) {
  uv_loop_t *loop = pt_loop_new();
  pqs_factory_opts_t o = {
      .conninfo = pt_conninfo(), .max_size = 2, .max_lifetime_ms = 300};
  pqs_factory_t *f;
  ck_assert_int_eq(pqs_factory_new(&f, &o), 0);
  pqs_ctx_t *ctx = get(loop, f);
  uv_sleep(400);
  give_back(loop, ctx); /* too old to go back to the pool */
  pqs_factory_stats_t s;
  pqs_factory_stats(f, &s);
  ck_assert_uint_eq(s.idle, 0);
  ck_assert_uint_eq(s.total_discarded, 1);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}
END_TEST

/* ---- freeing with contexts out ---- */

static char logged[2048];
static void log_line(const char *line, void *data) {
  (void)data;
  strncat(logged, line, sizeof(logged) - strlen(logged) - 2);
  strcat(logged, "\n");
}

START_TEST(free_reports_contexts_out) {
  uv_loop_t *loop = pt_loop_new();
  pqs_factory_opts_t o = {
      .conninfo = pt_conninfo(), .max_size = 2, .log = log_line};
  pqs_factory_t *f;
  ck_assert_int_eq(pqs_factory_new(&f, &o), 0);
  pqs_ctx_t *ctx = get(loop, f);
  logged[0] = '\0';
  ck_assert_int_eq(pqs_factory_free(f), PQS_EBUSY);
  ck_assert_msg(strstr(logged, "still out") != NULL &&
                    strstr(logged, "check_factory.c:") != NULL,
                "report: %s", logged);
  ck_assert_int_eq(
      pqs_query(ctx, &(pqs_stream_t *){NULL}, "SELECT 1", 0, NULL, NULL) == 0,
      1);              /* the context still works */
  pt_close(loop, ctx); /* closes the unstarted stream's op with it */
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}
END_TEST

START_TEST(factory_arguments) {
  pqs_factory_t *f = (pqs_factory_t *)&f;
  pqs_factory_opts_t none = {0};
  ck_assert_int_eq(pqs_factory_new(&f, &none), PQS_EINVAL);
  ck_assert_int_eq(pqs_factory_new(&f, NULL), PQS_EINVAL);
  ck_assert_ptr_eq(f, (pqs_factory_t *)&f);
  ck_assert_int_eq(pqs_factory_free(NULL), 0);
  f = factory(pt_conninfo(), 1);
  ck_assert_ptr_null(pqs_factory_get_data(f));
  pqs_factory_set_data(f, &f);
  ck_assert_ptr_eq(pqs_factory_get_data(f), &f);
  ck_assert_int_eq(pqs_factory_open_ctx(f, NULL, NULL, on_got, NULL),
                   PQS_EINVAL);
  ck_assert_int_eq(pqs_acquire_cancel(NULL), PQS_EINVAL);
  ck_assert_int_eq(pqs_factory_free(f), 0);
}
END_TEST

/* A conninfo that does not parse: the request fails, without its
 * password, and its place in the pool is free again. */
START_TEST(bad_conninfo_no_password) {
  uv_loop_t *loop = pt_loop_new();
  pqs_factory_t *f = factory("postgresql://app:S3cret%ZZ@127.0.0.1/db", 1);
  got_t g = {0};
  ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, on_got, &g), 0);
  while (g.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(g.status, PQS_ECONNECT);
  ck_assert_ptr_null(g.ctx);
  ck_assert_str_ne(g.msg, "");
  ck_assert_msg(strstr(g.msg, "S3cret") == NULL, "password shown: %s", g.msg);
  pt_loop_free(loop);
  pqs_factory_stats_t s;
  pqs_factory_stats(f, &s);
  ck_assert_uint_eq(s.in_use, 0);
  ck_assert_uint_eq(s.open, 0);
  ck_assert_int_eq(pqs_factory_free(f), 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("factory");
  TCase *tc = tcase_create("factory");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, four_threads_bounded);
  tcase_add_test(tc, fifo_order);
  tcase_add_test(tc, acquire_timeout);
  tcase_add_test(tc, cancelled_wait);
  tcase_add_test(tc, returned_mid_transaction);
  tcase_add_test(tc, session_state_reset);
  tcase_add_test(tc, killed_while_idle);
  tcase_add_test(tc, broken_context_discarded);
  tcase_add_test(tc, idle_timeout_and_min_idle);
  tcase_add_test(tc, max_lifetime);
  tcase_add_test(tc, free_reports_contexts_out);
  tcase_add_test(tc, factory_arguments);
  tcase_add_test(tc, bad_conninfo_no_password);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
