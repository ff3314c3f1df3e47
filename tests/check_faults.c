/* Faults of the network, through a loopback fault proxy: stalls with and
 * without a timeout, a full partition then close, resets, a trickle, a
 * server that accepts and never answers. Each ends with exactly one
 * completion of the documented status, within a generous bound, with the
 * context in the documented state, the loop closing clean and no file
 * descriptor left behind. */
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ctx_int.h"
#include "faultproxy.h"
#include "pqs_test.h"

#define GRACE_MS 1500

static int open_fds(void) {
  /* libuv opens a pipe of its own with the process's first loop: count
   * from after it. */
  uv_loop_t warm;
  ck_assert_int_eq(uv_loop_init(&warm), 0);
  ck_assert_int_eq(uv_loop_close(&warm), 0);
  DIR *d = opendir("/proc/self/fd");
  ck_assert_ptr_nonnull(d);
  int n = 0;
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n;
}

/* Waits up to 10 s for the descriptors to come back to `base`: a cancel
 * thread let go of may still be closing its socket. */
static void assert_no_fd_leak(int base) {
  double until = pt_now() + 10;
  int n;
  while ((n = open_fds()) > base && pt_now() < until)
    uv_sleep(20);
  ck_assert_msg(n <= base, "%d descriptors more than before", n - base);
}

static pt_proxy_t *proxy(void) {
  return pt_proxy_start(atoi(getenv("PQS_TEST_PORT")));
}

static pqs_ctx_t *open_via(uv_loop_t *loop, pt_proxy_t *p, pt_opened_t *o) {
  pqs_ctx_opts_t opts = {.source = pt_source(),
                         .result_format = pt_format(),
                         .cancel_grace_ms = GRACE_MS,
                         .connect_timeout_ms = 1500};
  pqs_ctx_t *ctx = NULL;
  ck_assert_int_eq(
      pqs_ctx_open(&ctx, loop, pt_proxy_conninfo(p), &opts, pt_on_open, o), 0);
  while (o->calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(o->calls, 1);
  return ctx;
}

/* A proxy, a loop and a context through the proxy; taken down with a
 * check that nothing was left open. */
typedef struct {
  int fds;
  pt_proxy_t *p;
  uv_loop_t *loop;
  pqs_ctx_t *ctx;
  pt_opened_t o;
} rig_t;

static void rig_up(rig_t *r, pt_fault_t fault) {
  memset(r, 0, sizeof(*r));
  r->fds = open_fds();
  r->p = proxy();
  pt_proxy_set(r->p, fault);
  r->loop = pt_loop_new();
  r->ctx = open_via(r->loop, r->p, &r->o);
}

static void rig_down(rig_t *r) {
  ck_assert_int_eq(pqs_ctx_close(r->ctx, NULL), 0);
  pt_loop_free(r->loop);
  pt_proxy_set(r->p, PT_FORWARD); /* lets a cancel still waiting finish */
  pt_proxy_stop(r->p);
  assert_no_fd_leak(r->fds);
}

/* A consumer that misbehaves the network at row `at`. */
typedef struct {
  pt_done_t done;
  pt_proxy_t *p;
  uint64_t rows, at;
  int64_t sum;
  pt_fault_t fault;
  int reset, close_at;
  double t_done;
} watch_t;

static int watch_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  watch_t *w = data;
  int64_t v = 0;
  pqs_row_int64(row, 0, &v);
  w->sum += v;
  if (++w->rows == w->at) {
    if (w->reset)
      pt_proxy_reset(w->p);
    else
      pt_proxy_set(w->p, w->fault);
  }
  if (w->close_at && w->rows == w->at)
    ck_assert_int_eq(pqs_stream_close(s), 0);
  return PQS_CONTINUE;
}

static void watch_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  watch_t *w = data;
  w->t_done = pt_now();
  pt_on_done(s, done, &w->done);
}

static void run_watched(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                        unsigned timeout_ms, watch_t *w) {
  pqs_query_opts_t qo = {.timeout_ms = timeout_ms};
  pqs_stream_cbs_t cbs = {.on_row = watch_row, .on_done = watch_done};
  pt_stream_wait(loop, pt_query(ctx, sql, &qo), &cbs, w, &w->done);
}

/* A set-returning function in the select list streams (one in FROM would
 * be materialised first). */
static const char *many_rows =
    "SELECT g, repeat('x', 500) FROM "
    "(SELECT generate_series(1, 100000000)::int8 AS g) s";

/* 1: the server blocks writing to us and cannot act on the cancel; the
 * timeout is a deadline all the same. */
START_TEST(stall_with_timeout) {
  rig_t r;
  rig_up(&r, PT_FORWARD);
  pt_proxy_t *p = r.p;
  uv_loop_t *loop = r.loop;
  pqs_ctx_t *ctx = r.ctx;
  ck_assert_int_eq(r.o.status, 0);
  watch_t w = {.p = p, .at = 1000, .fault = PT_STALL_DOWN};
  double t0 = pt_now();
  run_watched(loop, ctx, many_rows, 2000, &w);
  double took = w.t_done - t0;
  ck_assert_int_eq(w.done.status, PQS_ETIMEDOUT);
  ck_assert_uint_ge(w.rows, 1000);
  ck_assert_uint_eq(w.done.rows, w.rows);
  ck_assert_msg(took < 2.0 + GRACE_MS / 1000.0 + 5, "ended after %.1f s", took);
  ck_assert_msg(took > 1.9, "ended after %.1f s, before its timeout", took);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  rig_down(&r);
}
END_TEST

/* 1b: a consumer that stops a stalled stream gets its on_done within the
 * grace period, and the context says it is broken. */
START_TEST(stall_then_stop) {
  rig_t r;
  rig_up(&r, PT_FORWARD);
  pt_proxy_t *p = r.p;
  uv_loop_t *loop = r.loop;
  pqs_ctx_t *ctx = r.ctx;
  watch_t w = {.p = p, .at = 500, .fault = PT_STALL_BOTH, .close_at = 1};
  double t0 = pt_now();
  run_watched(loop, ctx, many_rows, 0, &w);
  ck_assert_int_eq(w.done.status, PQS_ECANCELED);
  ck_assert_uint_eq(w.rows, 500);
  ck_assert_msg(w.t_done - t0 < GRACE_MS / 1000.0 + 5, "took %.1f s",
                w.t_done - t0);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  rig_down(&r);
}
END_TEST

/* 2: a full partition, then close: every close completes, at once, and the
 * application's thread pool is not held by cancels that cannot get
 * through (four of them would have taken all of libuv's threads). */
typedef struct {
  int closed;
} closed_t;

static void on_ctx_closed(pqs_ctx_t *ctx, void *data) {
  (void)ctx;
  ((closed_t *)data)->closed++;
}

static void work_noop(uv_work_t *req) { (void)req; }
static void work_done(uv_work_t *req, int status) {
  (void)status;
  *(int *)req->data = 1;
}

START_TEST(partition_then_close) {
  int fds = open_fds();
  pt_proxy_t *p = proxy();
  uv_loop_t *loop = pt_loop_new();
  enum { N = 5 };
  pqs_ctx_t *ctx[N];
  pt_done_t done[N];
  memset(done, 0, sizeof(done));
  for (int i = 0; i < N; i++) {
    pt_opened_t o = {0};
    ctx[i] = open_via(loop, p, &o);
    ck_assert_int_eq(o.status, 0);
    pqs_stream_cbs_t cbs = {.on_done = pt_on_done};
    ck_assert_int_eq(pqs_stream_start(pt_query(ctx[i],
                                               "SELECT pg_sleep(30) /* "
                                               "pqs-partition */",
                                               NULL),
                                      &cbs, &done[i]),
                     0);
  }
  for (int i = 0; i < 20; i++) /* the queries are on their way */
    uv_run(loop, UV_RUN_NOWAIT);
  pt_proxy_set(p, PT_STALL_BOTH);
  closed_t c = {0};
  double t0 = pt_now();
  for (int i = 0; i < N; i++) {
    pqs_ctx_set_data(ctx[i], &c);
    ck_assert_int_eq(pqs_ctx_close(ctx[i], on_ctx_closed), 0);
  }
  while (c.closed < N && pt_now() - t0 < 10)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(c.closed, N);
  ck_assert_msg(pt_now() - t0 < 5, "closing took %.1f s", pt_now() - t0);
  for (int i = 0; i < N; i++) {
    ck_assert_int_eq(done[i].calls, 1);
    ck_assert_int_eq(done[i].status, PQS_ECANCELED);
  }
  /* libuv's pool still serves the application. */
  int worked = 0;
  uv_work_t req = {.data = &worked};
  ck_assert_int_eq(uv_queue_work(loop, &req, work_noop, work_done), 0);
  t0 = pt_now();
  while (!worked && pt_now() - t0 < 5)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(worked, "libuv's thread pool is held");
  pt_loop_free(loop);
  pt_proxy_stop(p); /* its sockets close: the cancel threads end */
  PGconn *admin = pt_admin();
  /* Not another suite's admin session, whose last query names the marker
   * too (the suites run side by side). */
  pt_sql(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE '%pqs-partition%' AND pid <> "
                "pg_backend_pid() AND query NOT LIKE '%pg_stat_activity%'");
  PQfinish(admin);
  assert_no_fd_leak(fds);
}
END_TEST

/* 3: a connection reset mid-stream says so, after the rows it had. */
START_TEST(reset_mid_stream) {
  rig_t r;
  rig_up(&r, PT_FORWARD);
  pt_proxy_t *p = r.p;
  uv_loop_t *loop = r.loop;
  pqs_ctx_t *ctx = r.ctx;
  watch_t w = {.p = p, .at = 100, .reset = 1};
  run_watched(loop, ctx, many_rows, 0, &w);
  ck_assert_int_eq(w.done.status, PQS_ECONNLOST);
  ck_assert_uint_ge(w.rows, 100);
  ck_assert_uint_eq(w.done.rows, w.rows);
  ck_assert_msg(strstr(w.done.message, "unknown") == NULL &&
                    w.done.message[0] != '\0',
                "message: '%s'", w.done.message);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  rig_down(&r);
}
END_TEST

/* 4: a result that arrives one byte at a time is whole and right. */
START_TEST(trickle) {
  rig_t r;
  rig_up(&r, PT_FORWARD);
  pt_proxy_t *p = r.p;
  uv_loop_t *loop = r.loop;
  pqs_ctx_t *ctx = r.ctx;
  pt_proxy_set(p, PT_TRICKLE);
  watch_t w = {.p = p};
  run_watched(loop, ctx, "SELECT g::int8 FROM generate_series(1, 100) g", 0,
              &w);
  ck_assert_int_eq(w.done.status, 0);
  ck_assert_uint_eq(w.rows, 100);
  ck_assert_int_eq(w.sum, 5050);
  ck_assert_str_eq(w.done.tag, pt_copy() ? "COPY 100" : "SELECT 100");
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 0);
  rig_down(&r);
}
END_TEST

/* 5: a server that accepts and never answers: the connect timeout. */
START_TEST(silent_during_connect) {
  rig_t r;
  double t0 = pt_now();
  rig_up(&r, PT_SILENT);
  ck_assert_int_eq(r.o.status, PQS_ETIMEDOUT);
  ck_assert_msg(pt_now() - t0 < 6, "took %.1f s", pt_now() - t0);
  ck_assert_int_eq(pt_proxy_accepted(r.p), 1);
  rig_down(&r);
}
END_TEST

/* 5b: with no connect_timeout_ms the conninfo's connect_timeout (or
 * PGCONNECT_TIMEOUT) is the deadline, by libpq's rules (under 2 s is 2
 * s); the caller's option wins over both. Lower bounds: a deadline met
 * early would be the bug; the upper ones only prove no hang. */
static double silent_open(pt_proxy_t *p, const char *extra, unsigned ms) {
  uv_loop_t *loop = pt_loop_new();
  char conninfo[512];
  snprintf(conninfo, sizeof(conninfo), "%s %s", pt_proxy_conninfo(p), extra);
  pqs_ctx_opts_t opts = {.connect_timeout_ms = ms};
  pt_opened_t o = {0};
  pqs_ctx_t *ctx = NULL;
  double t0 = pt_now();
  ck_assert_int_eq(pqs_ctx_open(&ctx, loop, conninfo, &opts, pt_on_open, &o),
                   0);
  while (o.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  double took = pt_now() - t0;
  ck_assert_int_eq(o.status, PQS_ETIMEDOUT);
  ck_assert_int_eq(pqs_ctx_close(ctx, NULL), 0);
  pt_loop_free(loop);
  return took;
}

START_TEST(connect_timeout_from_conninfo) {
  pt_proxy_t *p = proxy();
  pt_proxy_set(p, PT_SILENT);
  double t = silent_open(p, "connect_timeout=3", 0);
  ck_assert_msg(t >= 2.9 && t < 9, "connect_timeout=3 took %.1f s", t);
  t = silent_open(p, "connect_timeout=1", 0);
  ck_assert_msg(t >= 1.9 && t < 8, "connect_timeout=1 took %.1f s", t);
  setenv("PGCONNECT_TIMEOUT", "2", 1);
  t = silent_open(p, "", 0);
  ck_assert_msg(t >= 1.9 && t < 8, "PGCONNECT_TIMEOUT=2 took %.1f s", t);
  t = silent_open(p, "connect_timeout=3", 0); /* the conninfo wins */
  ck_assert_msg(t >= 2.9 && t < 9, "connect_timeout=3 took %.1f s", t);
  unsetenv("PGCONNECT_TIMEOUT");
  t = silent_open(p, "connect_timeout=2", 3000); /* the caller's wins */
  ck_assert_msg(t >= 2.9 && t < 9, "connect_timeout_ms=3000 took %.1f s", t);
  pt_proxy_set(p, PT_FORWARD);
  pt_proxy_stop(p);
}
END_TEST

/* 5c: a factory keeping min_idle connections opens them on its own
 * thread with libpq's blocking connect, given the same deadline: a server
 * that accepts and never answers holds neither that thread nor
 * pqs_factory_free (which joins it) past the connect timeout. */
START_TEST(factory_fill_has_a_deadline) {
  pt_proxy_t *p = proxy();
  pt_proxy_set(p, PT_SILENT);
  pqs_factory_opts_t fo = {.conninfo = pt_proxy_conninfo(p),
                           .max_size = 2,
                           .min_idle = 1,
                           .connect_timeout_ms = 2000};
  pqs_factory_t *f;
  ck_assert_int_eq(pqs_factory_new(&f, &fo), 0);
  double until = pt_now() + 10;
  while (pt_proxy_accepted(p) == 0) { /* the reaper is connecting */
    ck_assert_msg(pt_now() < until, "the factory never connected");
    uv_sleep(20);
  }
  double t0 = pt_now();
  ck_assert_int_eq(pqs_factory_free(f), 0);
  double took = pt_now() - t0;
  ck_assert_msg(took < 8, "pqs_factory_free took %.1f s", took);
  pt_proxy_set(p, PT_FORWARD);
  pt_proxy_stop(p);
}
END_TEST

/* 6: keepalives are on by default, and the conninfo can change them. */
static int sockopt(pqs_ctx_t *ctx, int level, int name) {
  int v = -1;
  socklen_t len = sizeof(v);
  ck_assert_int_eq(getsockopt(PQsocket(ctx->conn), level, name, &v, &len), 0);
  return v;
}

START_TEST(keepalives_by_default) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  ck_assert_int_eq(sockopt(ctx, SOL_SOCKET, SO_KEEPALIVE), 1);
  ck_assert_int_eq(sockopt(ctx, IPPROTO_TCP, TCP_KEEPIDLE), 15);
  ck_assert_int_eq(sockopt(ctx, IPPROTO_TCP, TCP_KEEPINTVL), 5);
  ck_assert_int_eq(sockopt(ctx, IPPROTO_TCP, TCP_KEEPCNT), 3);
  ck_assert_int_eq(sockopt(ctx, IPPROTO_TCP, TCP_USER_TIMEOUT), 30000);
  pt_close(loop, ctx);
  char conninfo[512];
  snprintf(conninfo, sizeof(conninfo),
           "%s keepalives_idle=7 tcp_user_timeout=1234", pt_conninfo());
  ctx = pt_open(loop, conninfo);
  ck_assert_int_eq(sockopt(ctx, IPPROTO_TCP, TCP_KEEPIDLE), 7);
  ck_assert_int_eq(sockopt(ctx, IPPROTO_TCP, TCP_USER_TIMEOUT), 1234);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* 7: a peer that vanished (a blackhole: nothing comes back, not even a
 * reset) is found by the keepalives, with no timeout set. A userland proxy
 * cannot emulate that on loopback (its kernel answers the probes), so the
 * client and the proxy sit in two network namespaces of the test's own,
 * joined by a veth pair whose link the test takes down. */
static char ns_client[64], ns_proxy[64];

static int sh(const char *fmt, const char *a, const char *b) {
  char cmd[512];
  snprintf(cmd, sizeof(cmd), fmt, a, b);
  return system(cmd);
}

static void make_namespaces(void) {
  snprintf(ns_client, sizeof(ns_client), "pqs-c-%d", (int)getpid());
  snprintf(ns_proxy, sizeof(ns_proxy), "pqs-p-%d", (int)getpid());
  sh("ip netns add %s && ip netns add %s", ns_client, ns_proxy);
  sh("ip link add pqsc netns %s type veth peer name pqsp netns %s", ns_client,
     ns_proxy);
  sh("ip -n %s addr add 10.213.7.1/30 dev pqsc && ip -n %s link set lo up",
     ns_client, ns_client);
  sh("ip -n %s link set pqsc up && ip -n %s addr add 10.213.7.2/30 dev pqsp",
     ns_client, ns_proxy);
  sh("ip -n %s link set pqsp up && ip -n %s link set lo up", ns_proxy,
     ns_proxy);
}

static void drop_namespaces(void) {
  sh("ip netns del %s 2>/dev/null; ip netns del %s 2>/dev/null", ns_client,
     ns_proxy);
}

START_TEST(vanished_peer_found) {
  char path[128];
  snprintf(path, sizeof(path), "/run/netns/%s", ns_proxy);
  ck_assert_msg(access(path, F_OK) == 0,
                "this test emulates a vanished peer with two network "
                "namespaces joined by a veth pair, and could not make them "
                "(it needs root and the ip command of iproute2)");
  int fds = open_fds();
  pt_proxy_t *p =
      pt_proxy_start_in(path, "10.213.7.2", atoi(getenv("PQS_TEST_PORT")));
  uv_loop_t *loop = pt_loop_new();
  char conninfo[600];
  snprintf(conninfo, sizeof(conninfo),
           "%s keepalives_idle=1 keepalives_interval=1 keepalives_count=2 "
           "tcp_user_timeout=3000",
           pt_proxy_conninfo(p));
  snprintf(path, sizeof(path), "/run/netns/%s", ns_client);
  int home = pt_netns_enter(path); /* the client's socket is made there */
  pt_opened_t o = {0};
  pqs_ctx_t *ctx = NULL;
  pqs_ctx_opts_t opts = {PT_SUITE_OPTS};
  ck_assert_int_eq(pqs_ctx_open(&ctx, loop, conninfo, &opts, pt_on_open, &o),
                   0);
  pt_netns_leave(home);
  while (o.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(o.status == 0, "open: %s", o.msg);
  /* The peer vanishes mid-stream: no more packets either way. */
  static char down[160];
  snprintf(down, sizeof(down), "ip -n %s link set pqsp down", ns_proxy);
  watch_t w = {.p = p, .at = 0};
  pqs_stream_cbs_t cbs = {.on_row = watch_row, .on_done = watch_done};
  pqs_stream_t *s = pt_query(ctx, many_rows, NULL);
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &w), 0);
  while (w.rows < 1000 && w.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(system(down), 0);
  double t0 = pt_now();
  while (w.done.calls == 0 && pt_now() - t0 < 60)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(w.done.calls == 1, "no completion 60 s after the peer left");
  ck_assert_int_eq(w.done.status, PQS_ECONNLOST);
  /* tcp_user_timeout bounds a keepalive failure too (Linux) */
  ck_assert_msg(w.t_done - t0 < 20, "found after %.1f s", w.t_done - t0);
  ck_assert_uint_ge(w.rows, 1000);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  rig_t r = {.fds = fds, .p = p, .loop = loop, .ctx = ctx};
  rig_down(&r);
}
END_TEST

/* 0: through the proxy, forwarding, everything is as without it. */
START_TEST(forwarding) {
  rig_t r;
  rig_up(&r, PT_FORWARD);
  ck_assert_int_eq(r.o.status, 0);
  watch_t w = {.p = r.p};
  run_watched(r.loop, r.ctx, "SELECT g::int8 FROM generate_series(1, 100000) g",
              0, &w);
  ck_assert_int_eq(w.done.status, 0);
  ck_assert_int_eq(w.sum, 100000LL * 100001 / 2);
  rig_down(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("faults");
  TCase *tc = tcase_create("faults");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, forwarding);
  tcase_add_test(tc, stall_with_timeout);
  tcase_add_test(tc, stall_then_stop);
  tcase_add_test(tc, connect_timeout_from_conninfo);
  tcase_add_test(tc, factory_fill_has_a_deadline);
  tcase_add_test(tc, partition_then_close);
  tcase_add_test(tc, reset_mid_stream);
  tcase_add_test(tc, trickle);
  tcase_add_test(tc, silent_during_connect);
  tcase_add_test(tc, keepalives_by_default);
  suite_add_tcase(s, tc);
  TCase *bh = tcase_create("blackhole");
  tcase_set_timeout(bh, 120);
  tcase_add_unchecked_fixture(bh, make_namespaces, drop_namespaces);
  tcase_add_test(bh, vanished_peer_found);
  suite_add_tcase(s, bh);
  return pt_run(s);
}
