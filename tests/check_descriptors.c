/* After every context of a loop has closed and the loop with it, the
 * process holds the descriptors it held before: closed mid-stream, while
 * paused, while a cancel is on its way, after a stop, and while a cancel
 * is stuck on a peer that accepts and never answers. A cancel request
 * with a deadline (cancel_send.c: how every cancel goes on this libpq)
 * is waited for by the context's close, so the count is exact at once;
 * only the threads' own exit, after they have said they are done, is
 * waited for (within seconds). On failure the listing of /proc/self/fd
 * says what is left. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "ctx_int.h"
#include "faultproxy.h"
#include "pqs_test.h"

/* Open descriptors of this process, the directory's own left out. */
static int fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  ck_assert_ptr_nonnull(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n - 1;
}

static void assert_fds_are(int before, const char *when) {
  int now = fd_count();
  if (now != before) {
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "ls -l /proc/%d/fd >&2", (int)getpid());
    (void)!system(cmd);
  }
  ck_assert_msg(now == before, "%s: %d descriptors open, %d before", when, now,
                before);
}

typedef struct {
  pqs_ctx_t *ctx;
  int rows;
  int pause_at; /* 0: never */
  int close_at; /* 0: never; close the context from on_row */
  int stop_at;  /* 0: never; stop the stream from on_row */
  pt_done_t done;
} run_t;

static int on_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)row;
  run_t *r = data;
  r->rows++;
  if (r->rows == r->close_at)
    ck_assert_int_eq(pqs_ctx_close(r->ctx, NULL), 0);
  if (r->rows == r->stop_at)
    return PQS_STOP;
  (void)s;
  return r->rows == r->pause_at ? PQS_PAUSE : PQS_CONTINUE;
}

static void on_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  pt_on_done(s, done, &((run_t *)data)->done);
}

#define BIG "SELECT g, repeat('x', 100) FROM generate_series(1, 50000000) g"

/* Opens a context on a loop of its own, streams BIG with `r`'s plan,
 * lets `between` act, runs the loop to its end, and checks the count. */
static void run_case(run_t *r, void (*between)(uv_loop_t *, run_t *),
                     const char *when) {
  /* What the process makes once, and keeps, for every loop (libuv's
   * signal lock pipe) is there before counting. */
  pt_loop_free(pt_loop_new());
  int before = fd_count();
  uv_loop_t *loop = pt_loop_new();
  r->ctx = pt_open(loop, pt_conninfo());
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(r->ctx, &s, BIG, 0, NULL, NULL), 0);
  pqs_stream_cbs_t cbs = {.on_row = on_row, .on_done = on_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, r), 0);
  if (between != NULL)
    between(loop, r);
  pt_loop_free(loop); /* to the end, and closed cleanly */
  ck_assert_int_eq(r->done.calls, 1);
  assert_fds_are(before, when);
}

START_TEST(closed_mid_stream) {
  run_t r = {.close_at = 1000};
  run_case(&r, NULL, "closed mid-stream");
  ck_assert_int_eq(r.done.status, PQS_ECANCELED);
}
END_TEST

static void close_when_paused(uv_loop_t *loop, run_t *r) {
  while (r->rows < r->pause_at)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(pqs_ctx_close(r->ctx, NULL), 0);
}

START_TEST(closed_while_paused) {
  run_t r = {.pause_at = 1000};
  run_case(&r, close_when_paused, "closed while paused");
  ck_assert_int_eq(r.done.status, PQS_ECANCELED);
}
END_TEST

/* The stop sends a cancel; the close comes on the next turn, before the
 * cancel is back. */
static void close_after_stop(uv_loop_t *loop, run_t *r) {
  while (r->rows < r->stop_at)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(pqs_ctx_close(r->ctx, NULL), 0);
}

START_TEST(closed_during_a_cancel) {
  run_t r = {.stop_at = 1000};
  run_case(&r, close_after_stop, "closed during a cancel");
  ck_assert_int_eq(r.done.status, PQS_ECANCELED);
}
END_TEST

/* A stop that ends well, then a close of an idle context. */
static void close_after_done(uv_loop_t *loop, run_t *r) {
  while (r->done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(pqs_ctx_close(r->ctx, NULL), 0);
}

START_TEST(stopped_then_closed) {
  run_t r = {.stop_at = 1000};
  run_case(&r, close_after_done, "stopped, then closed");
  ck_assert_int_eq(r.done.status, PQS_ECANCELED);
}
END_TEST

/* Threads of this process. */
static int thread_count(void) {
  DIR *d = opendir("/proc/self/task");
  ck_assert_ptr_nonnull(d);
  int n = 0;
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

/* The header's cap on cancel threads in flight (cancel.c). */
#define CANCEL_THREADS_MAX 8

static void on_stopped(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  pt_on_done(s, done, data);
}

/* Threads of this process, once those that said they were done have
 * exited (within seconds: they only return). On failure their names say
 * what is left. */
static int threads_settled_to(int base) {
  double until = pt_now() + 10;
  int n = thread_count();
  while (n > base && pt_now() < until) {
    nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
    n = thread_count();
  }
  if (n != base) {
    char cmd[160];
    snprintf(cmd, sizeof(cmd), "grep . /proc/%d/task/*/wchan /proc/%d/task/*/syscall >&2", (int)getpid(), (int)getpid());
    (void)!system(cmd);
  }
  return n;
}

static void nothing(void *arg) { (void)arg; }

/* Threads of this process before a test: what starts once per process
 * with the first thread (a sanitizer's own) is there before counting. */
static int thread_base(void) {
  uv_thread_t t;
  ck_assert_int_eq(uv_thread_create(&t, nothing, NULL), 0);
  ck_assert_int_eq(uv_thread_join(&t), 0);
  pt_loop_free(pt_loop_new());
  return thread_count();
}

/* Opens a context through the proxy and starts a query that sleeps. */
static pqs_stream_t *sleep_through(uv_loop_t *loop, pt_proxy_t *p,
                                   unsigned grace_ms, pqs_ctx_t **ctx,
                                   pt_done_t *done) {
  pt_proxy_set(p, PT_FORWARD);
  pqs_ctx_opts_t opts = {.cancel_grace_ms = grace_ms,
                         .connect_timeout_ms = 5000};
  pt_opened_t o = {0};
  ck_assert_int_eq(
      pqs_ctx_open(ctx, loop, pt_proxy_conninfo(p), &opts, pt_on_open, &o), 0);
  while (o.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(o.status == 0, "open: %s", o.msg);
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(*ctx, &s, "SELECT pg_sleep(3)", 0, NULL, NULL), 0);
  pqs_stream_cbs_t cbs = {.on_done = on_stopped};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, done), 0);
  return s;
}

/* A hundred stops in a row, each of a query on a connection whose server
 * then accepts new connections (the cancel's) and never answers them:
 * each cancel is stuck until its deadline (the grace period), and the cap
 * keeps the threads in flight few; each stop still ends within its grace
 * period, and once the contexts have closed nothing of their cancels is
 * left. The query sleeps 3 s, so that the backends of given-up
 * connections (the sleep is not interrupted by the client leaving) never
 * crowd the server's other clients out. */
START_TEST(a_hundred_stops_against_a_silent_peer) {
  int base = thread_base(), most = 0, fds = fd_count();
  pt_proxy_t *p = pt_proxy_start(atoi(getenv("PQS_TEST_PORT")));
  ck_assert_ptr_nonnull(p);
  uv_loop_t *loop = pt_loop_new();
  for (int i = 0; i < 100; i++) {
    pqs_ctx_t *ctx = NULL;
    pt_done_t done = {0};
    pqs_stream_t *s = sleep_through(loop, p, 100, &ctx, &done);
    pt_proxy_set(p, PT_SILENT);
    ck_assert_int_eq(pqs_stream_close(s), 0);
    double until = pt_now() + 30; /* the grace is 100 ms: never near */
    while (done.calls == 0 && pt_now() < until)
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_msg(done.calls == 1, "stop %d did not end", i);
    ck_assert_int_eq(done.status, PQS_ECANCELED);
    ck_assert_int_eq(pqs_ctx_close(ctx, NULL), 0);
    uv_run(loop, UV_RUN_NOWAIT);
    int extra = thread_count() - base;
    most = extra > most ? extra : most;
  }
  pt_loop_free(loop);
  /* libuv's thread pool (4) may start for name resolution beside them. */
  ck_assert_msg(most <= CANCEL_THREADS_MAX + 4,
                "%d threads beyond the %d before", most, base);
  pt_proxy_stop(p); /* its own descriptors, before counting */
  assert_fds_are(fds, "a hundred stops against a silent peer");
  int left = threads_settled_to(base);
  ck_assert_msg(left == base, "%d threads left, %d before", left, base);
}
END_TEST

/* A context closed while its query's cancel cannot get through (the
 * network went silent): the close waits for the cancel no longer than the
 * grace period, and leaves nothing behind. */
START_TEST(closed_during_a_partition) {
  int base = thread_base(), fds = fd_count();
  pt_proxy_t *p = pt_proxy_start(atoi(getenv("PQS_TEST_PORT")));
  ck_assert_ptr_nonnull(p);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = NULL;
  pt_done_t done = {0};
  sleep_through(loop, p, 1000, &ctx, &done);
  pt_proxy_set(p, PT_SILENT);
  double t0 = pt_now();
  ck_assert_int_eq(pqs_ctx_close(ctx, NULL), 0);
  pt_loop_free(loop); /* runs to the close's end */
  double took = pt_now() - t0;
  ck_assert_int_eq(done.calls, 1);
  ck_assert_int_eq(done.status, PQS_ECANCELED);
  /* The grace is 1 s; 10 s proves only that the close did not hang. */
  ck_assert_msg(took < 10, "the close took %.1f s", took);
  pt_proxy_stop(p);
  assert_fds_are(fds, "closed during a partition");
  int left = threads_settled_to(base);
  ck_assert_msg(left == base, "%d threads left, %d before", left, base);
}
END_TEST

/* Every cancel on this libpq goes with a deadline: the backend's key is
 * read from libpq's PGcancel (checked against the connection), over TCP
 * and a Unix socket, and a request sent with it cancels the query. Should
 * a libpq with another layout come, this fails rather than let cancels
 * fall back on PQcancel, which has no timeout, unnoticed. */
static void key_read_and_sent(const char *conninfo) {
  PGconn *conn = PQconnectdb(conninfo);
  ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
  PGcancel *handle = PQgetCancel(conn);
  ck_assert_ptr_nonnull(handle);
  pqs__cancel_key_t key;
  ck_assert_msg(pqs__cancel_key_read(conn, handle, &key) == 0,
                "libpq %d: the backend's key could not be read from PGcancel",
                PQlibVersion());
  ck_assert_int_eq(key.pid, PQbackendPID(conn));
  PQfreeCancel(handle);
  ck_assert_int_eq(PQsendQuery(conn, "SELECT pg_sleep(30)"), 1);
  /* The server ignores a cancel before the backend has begun the query:
   * try until it is seen, as the engine does. */
  double t0 = pt_now();
  PGresult *res = NULL;
  while (res == NULL && pt_now() - t0 < 20) {
    ck_assert_int_eq(pqs__cancel_send(&key, 5000), 0);
    for (double t1 = pt_now(); res == NULL && pt_now() - t1 < 0.5;) {
      ck_assert_int_eq(PQconsumeInput(conn), 1);
      if (!PQisBusy(conn))
        res = PQgetResult(conn);
      else
        nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    }
  }
  ck_assert_ptr_nonnull(res);
  ck_assert_str_eq(PQresultErrorField(res, PG_DIAG_SQLSTATE), "57014");
  PQclear(res);
  PQfinish(conn);
}

START_TEST(the_cancel_key_is_read_and_works) {
  key_read_and_sent(pt_conninfo());
  const char *sock = getenv("PQS_TEST_SOCKET_CONNINFO");
  ck_assert_msg(sock != NULL, "PQS_TEST_SOCKET_CONNINFO is not set (tests/pg.sh"
                              " sets it)");
  key_read_and_sent(sock);
}
END_TEST

/* Against a peer that accepts and never answers, a request gives up at
 * its deadline. */
START_TEST(a_cancel_to_a_silent_peer_ends_at_its_deadline) {
  pt_loop_free(pt_loop_new()); /* libuv's once-per-process pipe */
  int fds = fd_count();
  pt_proxy_t *p = pt_proxy_start(atoi(getenv("PQS_TEST_PORT")));
  ck_assert_ptr_nonnull(p);
  PGconn *conn = PQconnectdb(pt_proxy_conninfo(p));
  ck_assert_msg(PQstatus(conn) == CONNECTION_OK, "%s", PQerrorMessage(conn));
  PGcancel *handle = PQgetCancel(conn);
  pqs__cancel_key_t key;
  ck_assert_int_eq(pqs__cancel_key_read(conn, handle, &key), 0);
  PQfreeCancel(handle);
  pt_proxy_set(p, PT_SILENT);
  double t0 = pt_now();
  ck_assert_int_eq(pqs__cancel_send(&key, 300), -1);
  double took = pt_now() - t0;
  ck_assert_msg(took >= 0.25 && took < 10, "gave up after %.2f s", took);
  PQfinish(conn);
  pt_proxy_stop(p); /* and the end of the request it accepted */
  assert_fds_are(fds, "a cancel to a silent peer");
}
END_TEST

int main(void) {
  Suite *s = suite_create("descriptors");
  TCase *tc = tcase_create("descriptors");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, closed_mid_stream);
  tcase_add_test(tc, closed_while_paused);
  tcase_add_test(tc, closed_during_a_cancel);
  tcase_add_test(tc, stopped_then_closed);
  suite_add_tcase(s, tc);
  TCase *silent = tcase_create("silent");
  tcase_set_timeout(silent, 300);
  tcase_add_test(silent, a_hundred_stops_against_a_silent_peer);
  tcase_add_test(silent, closed_during_a_partition);
  tcase_add_test(silent, the_cancel_key_is_read_and_works);
  tcase_add_test(silent, a_cancel_to_a_silent_peer_ends_at_its_deadline);
  suite_add_tcase(s, silent);
  return pt_run(s);
}
