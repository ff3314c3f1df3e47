/* Host names never resolve on the loop: a context hands them to libuv's
 * thread pool and gives libpq the addresses. This program defines
 * getaddrinfo itself, which the dynamic linker prefers to libc's for
 * libuv and libpq alike: "slow.pqs.test" takes a second and is 127.0.0.1,
 * "nosuch.pqs.test" does not exist, and a call on the loop's thread is
 * counted as the failure it is. */
#define _GNU_SOURCE /* RTLD_NEXT */
#include <dlfcn.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctx_int.h" /* the connection, to ask libpq for its host */
#include "pqs_test.h"

static pthread_t loop_thread;
static int on_loop_thread; /* getaddrinfo calls for names on the loop */

int getaddrinfo(const char *node, const char *service,
                const struct addrinfo *hints, struct addrinfo **res) {
  static int (*real)(const char *, const char *, const struct addrinfo *,
                     struct addrinfo **);
  if (real == NULL)
    real = (int (*)(const char *, const char *, const struct addrinfo *,
                    struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
  int numeric = hints && (hints->ai_flags & AI_NUMERICHOST);
  if (node && !numeric && pthread_equal(pthread_self(), loop_thread) &&
      strstr(node, ".pqs.test"))
    __atomic_add_fetch(&on_loop_thread, 1, __ATOMIC_SEQ_CST);
  if (node && strcmp(node, "slow.pqs.test") == 0) {
    usleep(1000 * 1000);
    node = "127.0.0.1";
  } else if (node && strcmp(node, "nosuch.pqs.test") == 0) {
    return EAI_NONAME;
  }
  return real(node, service, hints, res);
}

/* The test server's conninfo with its host replaced by `host`. */
static const char *with_host(const char *host, char *buf, size_t cap) {
  snprintf(buf, cap, "%s host=%s", pt_conninfo(), host);
  return buf;
}

typedef struct {
  int ticks;
} ticker_t;

static void on_tick(uv_timer_t *t) { ((ticker_t *)t->data)->ticks++; }

static pt_opened_t open_and_wait(uv_loop_t *loop, const char *conninfo,
                                 unsigned timeout_ms, pqs_ctx_t **ctx,
                                 int *ticks) {
  pt_opened_t o = {0};
  ticker_t tk = {0};
  uv_timer_t timer;
  uv_timer_init(loop, &timer);
  timer.data = &tk;
  uv_timer_start(&timer, on_tick, 20, 20);
  pqs_ctx_opts_t opts = {.connect_timeout_ms = timeout_ms};
  ck_assert_int_eq(pqs_ctx_open(ctx, loop, conninfo, &opts, pt_on_open, &o), 0);
  while (o.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  *ticks = tk.ticks;
  return o;
}

START_TEST(slow_name_keeps_the_loop_running) {
  loop_thread = pthread_self();
  uv_loop_t *loop = pt_loop_new();
  char buf[512];
  pqs_ctx_t *ctx;
  int ticks;
  double t0 = pt_now();
  pt_opened_t o = open_and_wait(loop, with_host("slow.pqs.test", buf, 512), 0,
                                &ctx, &ticks);
  ck_assert_msg(o.status == 0, "%s", o.msg);
  ck_assert_msg(pt_now() - t0 >= 0.9, "the slow name was not asked");
  /* the loop ran its timer while the name resolved: a second is 50 ticks */
  ck_assert_msg(ticks >= 25, "only %d ticks in %.2f s", ticks, pt_now() - t0);
  ck_assert_int_eq(on_loop_thread, 0);
  /* libpq keeps the name (TLS verification, .pgpass) and used the address */
  ck_assert_str_eq(PQhost(ctx->conn), "slow.pqs.test");
  ck_assert_str_eq(PQhostaddr(ctx->conn), "127.0.0.1");
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
  pt_close(loop, ctx);
  /* a list: the name that does not resolve is passed over */
  o = open_and_wait(loop, with_host("nosuch.pqs.test,slow.pqs.test", buf, 512),
                    0, &ctx, &ticks);
  ck_assert_msg(o.status == 0, "%s", o.msg);
  ck_assert_str_eq(PQhost(ctx->conn), "slow.pqs.test");
  ck_assert_int_eq(on_loop_thread, 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(unknown_name_and_timeout) {
  loop_thread = pthread_self();
  uv_loop_t *loop = pt_loop_new();
  char buf[512];
  pqs_ctx_t *ctx;
  int ticks;
  pt_opened_t o = open_and_wait(loop, with_host("nosuch.pqs.test", buf, 512), 0,
                                &ctx, &ticks);
  ck_assert_int_eq(o.status, PQS_ECONNECT);
  ck_assert_msg(strstr(o.msg, "nosuch.pqs.test") != NULL &&
                    strstr(o.msg, "translate") != NULL,
                "%s", o.msg);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  pt_close(loop, ctx);
  /* the connect timeout covers the wait for the name */
  double t0 = pt_now();
  o = open_and_wait(loop, with_host("slow.pqs.test", buf, 512), 200, &ctx,
                    &ticks);
  ck_assert_int_eq(o.status, PQS_ETIMEDOUT);
  ck_assert_msg(pt_now() - t0 < 0.8, "took %.2f s", pt_now() - t0);
  ck_assert_msg(strstr(o.msg, "resolving") != NULL, "%s", o.msg);
  pt_close(loop, ctx);
  /* closed while resolving: ECANCELED, and the late answer is harmless */
  pt_opened_t c = {0};
  ck_assert_int_eq(pqs_ctx_open(&ctx, loop,
                                with_host("slow.pqs.test", buf, 512), NULL,
                                pt_on_open, &c),
                   0);
  uv_run(loop, UV_RUN_NOWAIT);
  pt_close(loop, ctx);
  ck_assert_int_eq(c.calls, 1);
  ck_assert_int_eq(c.status, PQS_ECANCELED);
  ck_assert_int_eq(on_loop_thread, 0);
  pt_loop_free(loop); /* runs until the pool's answers are in */
}
END_TEST

int main(void) {
  Suite *s = suite_create("dns");
  TCase *tc = tcase_create("dns");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, slow_name_keeps_the_loop_running);
  tcase_add_test(tc, unknown_name_and_timeout);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
