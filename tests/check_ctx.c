/* Contexts: connecting, failing to connect, closing, the thread rule. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "pqs_test.h"

typedef struct {
  int calls;
  int status;
  int closed;
  int order; /* open callback ran before the close callback */
  char msg[1024];
} opened_t;

static void on_open(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                    void *data) {
  (void)ctx;
  opened_t *o = data;
  o->calls++;
  o->status = status;
  o->order = o->closed == 0;
  if (err)
    snprintf(o->msg, sizeof(o->msg), "%s", err->message);
}

static void on_closed(pqs_ctx_t *ctx, void *data) {
  (void)ctx;
  ((opened_t *)data)->closed++;
}

/* Opens, runs the loop until the open callback, returns the context. */
static pqs_ctx_t *open_wait(uv_loop_t *loop, const char *conninfo,
                            const pqs_ctx_opts_t *opts, opened_t *o) {
  pqs_ctx_t *ctx = NULL;
  ck_assert_int_eq(pqs_ctx_open(&ctx, loop, conninfo, opts, on_open, o), 0);
  ck_assert_ptr_nonnull(ctx);
  while (o->calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  return ctx;
}

static void close_wait(uv_loop_t *loop, pqs_ctx_t *ctx, opened_t *o) {
  pqs_ctx_set_data(ctx, o);
  ck_assert_int_eq(pqs_ctx_close(ctx, on_closed), 0);
  pt_loop_free(loop); /* runs the loop to the end; asserts a clean close */
  ck_assert_int_eq(o->closed, 1);
  ck_assert_int_eq(o->calls, 1);
}

/* A port on 127.0.0.1 with nothing listening (bound, then released). */
static int unused_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  close(fd);
  return ntohs(a.sin_port);
}

START_TEST(connect_ok) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  pqs_ctx_t *ctx = open_wait(loop, pt_conninfo(), NULL, &o);
  ck_assert_int_eq(o.status, 0);
  ck_assert_int_gt(pqs_ctx_backend_pid(ctx), 0);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 0);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 0);
  ck_assert_ptr_eq(pqs_ctx_loop(ctx), loop);
  close_wait(loop, ctx, &o);
}
END_TEST

START_TEST(connect_unix_socket) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  const char *sock = getenv("PQS_TEST_SOCKET_CONNINFO");
  ck_assert_msg(sock != NULL, "PQS_TEST_SOCKET_CONNINFO not set by harness");
  pqs_ctx_t *ctx = open_wait(loop, sock, NULL, &o);
  ck_assert_msg(o.status == 0, "%s", o.msg);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
  close_wait(loop, ctx, &o);
}
END_TEST

START_TEST(connect_refused) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  char conninfo[128];
  snprintf(conninfo, sizeof(conninfo), "host=127.0.0.1 port=%d dbname=x user=x",
           unused_port());
  pqs_ctx_t *ctx = open_wait(loop, conninfo, NULL, &o);
  ck_assert_int_eq(o.status, PQS_ECONNECT);
  ck_assert_msg(strstr(o.msg, "refused") != NULL, "message: %s", o.msg);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT 1", 0, NULL, NULL), PQS_EBROKEN);
  ck_assert_ptr_null(s);
  close_wait(loop, ctx, &o);
}
END_TEST

START_TEST(wrong_host) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  pqs_ctx_t *ctx =
      open_wait(loop, "host=no-such-host.invalid dbname=x user=x", NULL, &o);
  ck_assert_int_eq(o.status, PQS_ECONNECT);
  ck_assert_msg(strstr(o.msg, "no-such-host.invalid") != NULL, "message: %s",
                o.msg);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  close_wait(loop, ctx, &o);
}
END_TEST

START_TEST(wrong_password) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  const char *pw = "Wr0ng-Pass-5521";
  char conninfo[256];
  snprintf(conninfo, sizeof(conninfo),
           "host=127.0.0.1 port=%s dbname=pqstest user=%s password=%s",
           getenv("PQS_TEST_PORT"), getenv("PQS_TEST_SCRAM_USER"), pw);
  pqs_ctx_t *ctx = open_wait(loop, conninfo, NULL, &o);
  ck_assert_int_eq(o.status, PQS_ECONNECT);
  ck_assert_msg(strstr(o.msg, "password authentication failed") != NULL,
                "message: %s", o.msg);
  ck_assert_msg(strstr(o.msg, pw) == NULL, "password echoed: %s", o.msg);
  close_wait(loop, ctx, &o);
}
END_TEST

START_TEST(right_password) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  char conninfo[256];
  snprintf(conninfo, sizeof(conninfo),
           "host=127.0.0.1 port=%s dbname=pqstest user=%s "
           "password=pqs-Secret-8734",
           getenv("PQS_TEST_PORT"), getenv("PQS_TEST_SCRAM_USER"));
  pqs_ctx_t *ctx = open_wait(loop, conninfo, NULL, &o);
  ck_assert_msg(o.status == 0, "scram login failed: %s", o.msg);
  close_wait(loop, ctx, &o);
}
END_TEST

START_TEST(wrong_database) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  char conninfo[256];
  snprintf(conninfo, sizeof(conninfo),
           "host=127.0.0.1 port=%s dbname=no_such_db user=postgres",
           getenv("PQS_TEST_PORT"));
  pqs_ctx_t *ctx = open_wait(loop, conninfo, NULL, &o);
  ck_assert_int_eq(o.status, PQS_ECONNECT);
  ck_assert_msg(strstr(o.msg, "no_such_db") != NULL, "message: %s", o.msg);
  close_wait(loop, ctx, &o);
}
END_TEST

/* A listener that never answers: TCP connects (the kernel accepts into the
 * backlog) but the startup reply never comes. */
START_TEST(connect_timeout) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof(a);
  ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
  ck_assert_int_eq(listen(fd, 8), 0);
  ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
  char conninfo[128];
  snprintf(conninfo, sizeof(conninfo),
           "host=127.0.0.1 port=%d dbname=x user=x sslmode=disable",
           ntohs(a.sin_port));

  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  pqs_ctx_opts_t opts = {.connect_timeout_ms = 300};
  double t0 = pt_now();
  pqs_ctx_t *ctx = open_wait(loop, conninfo, &opts, &o);
  double took = pt_now() - t0;
  ck_assert_int_eq(o.status, PQS_ETIMEDOUT);
  ck_assert_msg(took >= 0.25 && took < 5, "timed out after %.2fs", took);
  ck_assert_msg(strstr(o.msg, "timeout") != NULL, "message: %s", o.msg);
  close_wait(loop, ctx, &o);
  close(fd);
}
END_TEST

START_TEST(bad_conninfo) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  pqs_ctx_t *ctx =
      open_wait(loop, "host=127.0.0.1 password=Hidden-77 nonsense=1", NULL, &o);
  ck_assert_int_eq(o.status, PQS_ECONNECT);
  ck_assert_msg(strstr(o.msg, "nonsense") != NULL, "message: %s", o.msg);
  ck_assert_msg(strstr(o.msg, "Hidden-77") == NULL, "password: %s", o.msg);
  close_wait(loop, ctx, &o);
}
END_TEST

START_TEST(bad_arguments) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  pqs_ctx_t *ctx = (pqs_ctx_t *)&o; /* must stay untouched */
  ck_assert_int_eq(pqs_ctx_open(NULL, loop, "x", NULL, on_open, &o),
                   PQS_EINVAL);
  ck_assert_int_eq(pqs_ctx_open(&ctx, NULL, "x", NULL, on_open, &o),
                   PQS_EINVAL);
  ck_assert_int_eq(pqs_ctx_open(&ctx, loop, NULL, NULL, on_open, &o),
                   PQS_EINVAL);
  ck_assert_int_eq(pqs_ctx_open(&ctx, loop, "x", NULL, NULL, &o), PQS_EINVAL);
  ck_assert_ptr_eq(ctx, (pqs_ctx_t *)&o);
  /* Destructors accept NULL, as free() does. */
  ck_assert_int_eq(pqs_ctx_close(NULL, NULL), 0);
  ck_assert_int_eq(pqs_stream_close(NULL), 0);
  pt_loop_free(loop);
  ck_assert_int_eq(o.calls, 0);
}
END_TEST

/* Closing while connecting: the open callback says ECANCELED, before the
 * close callback, each exactly once. */
START_TEST(close_while_connecting) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  pqs_ctx_t *ctx = NULL;
  ck_assert_int_eq(pqs_ctx_open(&ctx, loop, pt_conninfo(), NULL, on_open, &o),
                   0);
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT 1", 0, NULL, NULL), PQS_EBUSY);
  close_wait(loop, ctx, &o);
  ck_assert_int_eq(o.status, PQS_ECANCELED);
  ck_assert_int_eq(o.order, 1);
}
END_TEST

typedef struct {
  pqs_ctx_t *ctx;
  pqs_stream_t *stream;
  int query_rc, exec_rc, close_rc, start_rc, pause_rc, stream_close_rc;
} thread_arg_t;

static void other_thread(void *arg) {
  thread_arg_t *t = arg;
  pqs_stream_t *s = NULL;
  t->query_rc = pqs_query(t->ctx, &s, "SELECT 1", 0, NULL, NULL);
  t->exec_rc = pqs_exec(t->ctx, "SELECT 1", 0, NULL, NULL, pt_on_exec, NULL);
  t->close_rc = pqs_ctx_close(t->ctx, NULL);
  pqs_stream_cbs_t cbs = {.on_done = pt_on_done};
  t->start_rc = pqs_stream_start(t->stream, &cbs, NULL);
  t->pause_rc = pqs_stream_pause(t->stream);
  t->stream_close_rc = pqs_stream_close(t->stream);
}

START_TEST(thread_rule) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  thread_arg_t t = {.ctx = ctx};
  /* A stream of this context, not started: the other thread may not
   * touch it either. */
  ck_assert_int_eq(pqs_query(ctx, &t.stream, "SELECT 1", 0, NULL, NULL), 0);
  uv_thread_t th;
  ck_assert_int_eq(uv_thread_create(&th, other_thread, &t), 0);
  ck_assert_int_eq(uv_thread_join(&th), 0);
  ck_assert_int_eq(t.query_rc, PQS_ETHREAD);
  ck_assert_int_eq(t.exec_rc, PQS_ETHREAD);
  ck_assert_int_eq(t.close_rc, PQS_ETHREAD);
  ck_assert_int_eq(t.start_rc, PQS_ETHREAD);
  ck_assert_int_eq(t.pause_rc, PQS_ETHREAD);
  ck_assert_int_eq(t.stream_close_rc, PQS_ETHREAD);
  /* The owner thread still can. */
  ck_assert_int_eq(pqs_stream_close(t.stream), 0);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(error_table) {
  ck_assert_str_eq(pqs_err_name(PQS_EBUSY), "EBUSY");
  ck_assert_str_eq(pqs_err_name(PQS_ETHREAD), "ETHREAD");
  ck_assert_str_eq(pqs_err_name(0), "OK");
  ck_assert_str_eq(pqs_err_name(12345), "UNKNOWN");
  ck_assert_str_eq(pqs_err_name(UV_EPIPE), "EPIPE");
  ck_assert_ptr_nonnull(strstr(pqs_strerror(PQS_EBUSY), "second operation"));
  ck_assert_str_eq(pqs_strerror(12345), "unknown error");
  ck_assert_str_eq(pqs_strerror(UV_EPIPE), uv_strerror(UV_EPIPE));
  ck_assert_int_lt(PQS_EBUSY, -30000);
  /* A user's own code (allowed from on_row), in libuv's range but not
   * libuv's: named as the header says, and without allocating (libuv's
   * text for it would leak; LeakSanitizer watches this loop). */
  for (int i = 0; i < 1000; i++) {
    ck_assert_str_eq(pqs_err_name(-1000 - i), "UNKNOWN");
    ck_assert_str_eq(pqs_strerror(-1000 - i), "unknown error");
  }
}
END_TEST

/* No password reaches an error, in any spelling, even when the conninfo
 * does not parse (libpq's PQpass knows nothing then). */
START_TEST(password_never_echoed) {
  static const struct {
    const char *conninfo;
    const char *secrets[3]; /* none of these may appear */
  } cases[] = {
      {"postgresql://app:S3cret%ZZ@127.0.0.1/db", {"S3cret", "%ZZ@"}},
      {"postgresql://app:pw@[127.0.0.1:5432/db", {"pw", ":pw@"}},
      {"postgresql://app:Tw%6Fword@[::1/db", {"Tw%6Fword", "Twoword"}},
      {"postgresql://127.0.0.1/db?password=Qu%ZZery", {"Qu%ZZery", "Qu"}},
      {"host=127.0.0.1 password='Sp ace\\'s' nonsense=1", {"Sp ace", "ace"}},
      {"postgresql://app:Pl41n-pass@127.0.0.1:1/db?bogus=1", {"Pl41n-pass"}},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    uv_loop_t *loop = pt_loop_new();
    opened_t o = {0};
    pqs_ctx_t *ctx = open_wait(loop, cases[i].conninfo, NULL, &o);
    ck_assert_int_ne(o.status, 0);
    ck_assert_str_ne(o.msg, "");
    for (int j = 0; j < 3 && cases[i].secrets[j]; j++)
      ck_assert_msg(strstr(o.msg, cases[i].secrets[j]) == NULL,
                    "%s: the password shows as '%s' in: %s",
                    cases[i].conninfo, cases[i].secrets[j], o.msg);
    close_wait(loop, ctx, &o);
  }
}
END_TEST

/* psql's way of joining settings: the pairs, then a target whose keys
 * win; quoted so that libpq reads back each value as it was. */
static void assert_join(const char *target, const char *want) {
  const char *keys[] = {"host", "port", "user", "password", "sslmode"};
  const char *vals[] = {"h1", "5433", NULL, "it's a \\ pass", ""};
  char *out = NULL;
  ck_assert_int_eq(pqs_conninfo_join(&out, keys, vals, 5, target), 0);
  ck_assert_str_eq(out, want);
  pqs_free(out);
}

START_TEST(conninfo_join) {
  assert_join(NULL, "host='h1' port='5433' password='it\\'s a \\\\ pass'");
  assert_join("", "host='h1' port='5433' password='it\\'s a \\\\ pass'");
  assert_join("my db", "host='h1' port='5433' password='it\\'s a \\\\ "
                       "pass' dbname='my db'");
  /* The target's keys come after (in libpq's order of keys), so libpq
   * lets them win. */
  assert_join("host=h2 dbname=d", "host='h1' port='5433' password='it\\'s a "
                                  "\\\\ pass' dbname='d' host='h2'");
  assert_join("postgresql://u@h3:6000/d2?application_name=x",
              "host='h1' port='5433' password='it\\'s a \\\\ pass' "
              "user='u' dbname='d2' host='h3' port='6000' "
              "application_name='x'");
  char *out = (char *)"untouched";
  ck_assert_int_eq(pqs_conninfo_join(&out, NULL, NULL, 0, "host='unclosed"),
                   PQS_EINVAL);
  ck_assert_str_eq(out, "untouched");
  ck_assert_int_eq(pqs_conninfo_join(NULL, NULL, NULL, 0, "d"), PQS_EINVAL);
  ck_assert_int_eq(pqs_conninfo_join(&out, NULL, NULL, 1, "d"), PQS_EINVAL);
  ck_assert_int_eq(pqs_conninfo_join(&out, NULL, NULL, -1, "d"), PQS_EINVAL);
  ck_assert_int_eq(pqs_conninfo_join(&out, NULL, NULL, 0, NULL), 0);
  ck_assert_str_eq(out, "");
  pqs_free(out);
  ck_assert_int_eq(pqs_libpq_version(), PQlibVersion());
}
END_TEST

/* A joined conninfo connects, the target's keys over the pairs': a wrong
 * port in the pairs is overridden by the right one in the target, and a
 * password with quotes and backslashes reaches the server intact. */
START_TEST(conninfo_join_connects) {
  const char *keys[] = {"host", "port", "user", "password"};
  const char *vals[] = {"127.0.0.1", "1", getenv("PQS_TEST_SCRAM_USER"),
                        getenv("PQS_TEST_SCRAM_PASSWORD")};
  char target[128], *conninfo = NULL;
  snprintf(target, sizeof(target), "port=%s dbname=pqstest",
           getenv("PQS_TEST_PORT"));
  ck_assert_int_eq(pqs_conninfo_join(&conninfo, keys, vals, 4, target), 0);
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  pqs_ctx_t *ctx = open_wait(loop, conninfo, NULL, &o);
  ck_assert_msg(o.status == 0, "%s: %s", conninfo, o.msg);
  close_wait(loop, ctx, &o);
  pqs_free(conninfo);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ctx");
  TCase *tc = tcase_create("ctx");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, connect_ok);
  tcase_add_test(tc, connect_unix_socket);
  tcase_add_test(tc, connect_refused);
  tcase_add_test(tc, wrong_host);
  tcase_add_test(tc, wrong_password);
  tcase_add_test(tc, right_password);
  tcase_add_test(tc, wrong_database);
  tcase_add_test(tc, connect_timeout);
  tcase_add_test(tc, bad_conninfo);
  tcase_add_test(tc, bad_arguments);
  tcase_add_test(tc, close_while_connecting);
  tcase_add_test(tc, thread_rule);
  tcase_add_test(tc, error_table);
  tcase_add_test(tc, password_never_echoed);
  tcase_add_test(tc, conninfo_join);
  tcase_add_test(tc, conninfo_join_connects);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
