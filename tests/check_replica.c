#define _DEFAULT_SOURCE /* usleep */
/* Replicas, against a real hot standby the test command makes of the test
 * server (tests/pg.sh standby): a factory given both servers and
 * target_session_attrs hands out contexts on the right one; a standby that
 * dies while its connections sit idle costs no error, the primary serves;
 * a stream cancelled by a recovery conflict ends with its SQLSTATE. The
 * standby is stopped by the last test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pqs_test.h"

static const char *standby_env(const char *name) {
  const char *v = getenv(name);
  ck_assert_msg(v != NULL && *v,
                "%s is not set: the test command starts a hot standby "
                "(scripts/dev.sh test)",
                name);
  return v;
}

/* Both servers in one conninfo, with `attrs`. */
static const char *both(const char *attrs, char *buf, size_t cap) {
  snprintf(buf, cap,
           "host=127.0.0.1,127.0.0.1 port=%s,%s dbname=pqstest user=postgres "
           "target_session_attrs=%s connect_timeout=5",
           getenv("PQS_TEST_PORT") ? getenv("PQS_TEST_PORT") : "",
           standby_env("PQS_TEST_STANDBY_PORT"), attrs);
  return buf;
}

typedef struct {
  pt_done_t done;
  char value[64];
  uint64_t rows;
  PGconn *admin;
  int dropped;
} got_t;

static int keep_value(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  got_t *g = data;
  snprintf(g->value, sizeof(g->value), "%s", pqs_row_text(row, 0, NULL));
  return PQS_CONTINUE;
}

static void got_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  pt_on_done(s, done, &((got_t *)data)->done);
}

static pqs_ctx_t *acquire(uv_loop_t *loop, pqs_factory_t *f, pt_opened_t *o) {
  memset(o, 0, sizeof(*o));
  ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, pt_on_open, o), 0);
  while (o->calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  return o->ctx;
}

/* "t" on the standby, "f" on the primary. */
static const char *in_recovery(uv_loop_t *loop, pqs_ctx_t *ctx, got_t *g) {
  memset(g, 0, sizeof(*g));
  pqs_stream_t *s = pt_query(ctx, "SELECT pg_is_in_recovery()", NULL);
  pqs_stream_cbs_t cbs = {.on_row = keep_value, .on_done = got_done};
  pt_stream_wait(loop, s, &cbs, g, &g->done);
  ck_assert_msg(g->done.status == 0, "%s", g->done.message);
  return g->value;
}

static pqs_factory_t *factory(const char *conninfo) {
  pqs_factory_opts_t fo = {.conninfo = conninfo, .max_size = 2};
  pqs_factory_t *f;
  ck_assert_int_eq(pqs_factory_new(&f, &fo), 0);
  return f;
}

START_TEST(contexts_on_the_right_server) {
  uv_loop_t *loop = pt_loop_new();
  static const struct {
    const char *attrs, *recovery;
  } cases[] = {{"read-only", "t"},
               {"prefer-standby", "t"},
               {"standby", "t"},
               {"primary", "f"},
               {"read-write", "f"}};
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char buf[512];
    pqs_factory_t *f = factory(both(cases[i].attrs, buf, sizeof(buf)));
    pt_opened_t o;
    pqs_ctx_t *ctx = acquire(loop, f, &o);
    ck_assert_msg(o.status == 0, "%s: %s", cases[i].attrs, o.msg);
    got_t g;
    ck_assert_msg(strcmp(in_recovery(loop, ctx, &g), cases[i].recovery) == 0,
                  "target_session_attrs=%s reached the wrong server",
                  cases[i].attrs);
    pt_close(loop, ctx);
    ck_assert_int_eq(pqs_factory_free(f), 0);
  }
  pt_loop_free(loop);
}
END_TEST

/* A stream on the standby, and a DROP TABLE on the primary: replay waits
 * 100 ms (max_standby_streaming_delay), then cancels the stream. */
static int slow_rows(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  (void)row;
  got_t *g = data;
  if (++g->rows == 20 && !g->dropped) {
    g->dropped = 1;
    pt_sql(g->admin, "DROP TABLE conflict_t");
  }
  return PQS_CONTINUE;
}

START_TEST(recovery_conflict_ends_with_its_sqlstate) {
  uv_loop_t *loop = pt_loop_new();
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TABLE IF EXISTS conflict_t; CREATE TABLE conflict_t AS "
                "SELECT g FROM generate_series(1, 2000) g");
  /* the standby has it once it sees it (replay, then a new snapshot) */
  PGconn *sb = PQconnectdb(standby_env("PQS_TEST_STANDBY_CONNINFO"));
  ck_assert_int_eq(PQstatus(sb), CONNECTION_OK);
  double t0 = pt_now();
  long long rows = 0;
  while (rows != 2000 && pt_now() - t0 < 20) {
    char *there = pt_scalar(sb, "SELECT to_regclass('conflict_t') IS NOT "
                                "NULL");
    rows = strcmp(there, "t") == 0
               ? pt_scalar_ll(sb, "SELECT count(*) FROM conflict_t")
               : 0;
    free(there);
    if (rows != 2000)
      usleep(20000);
  }
  ck_assert_msg(rows == 2000, "the standby has %lld rows of 2000", rows);
  PQfinish(sb);
  pt_opened_t o = {0};
  pqs_ctx_t *ctx;
  ck_assert_int_eq(pqs_ctx_open(&ctx, loop,
                                standby_env("PQS_TEST_STANDBY_CONNINFO"), NULL,
                                pt_on_open, &o),
                   0);
  while (o.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(o.status, 0);
  got_t g = {.admin = admin};
  pqs_stream_t *s =
      pt_query(ctx, "SELECT g, pg_sleep(0.005) FROM conflict_t", NULL);
  pqs_stream_cbs_t cbs = {.on_row = slow_rows, .on_done = got_done};
  pt_stream_wait(loop, s, &cbs, &g, &g.done);
  ck_assert_int_eq(g.done.status, PQS_ESQL);
  ck_assert_msg(strncmp(g.done.sqlstate, "40", 2) == 0, "%s: %s",
                g.done.sqlstate, g.done.message);
  ck_assert_msg(strstr(g.done.message, "conflict with recovery") != NULL, "%s",
                g.done.message);
  ck_assert_uint_ge(g.rows, 20); /* the rows before it are kept */
  ck_assert_uint_eq(g.done.rows, g.rows);
  ck_assert_uint_lt(g.rows, 2000);
  pt_close(loop, ctx);
  PQfinish(admin);
  pt_loop_free(loop);
}
END_TEST

/* Last: the standby stops while its connection sits in the pool. */
START_TEST(standby_gone_primary_serves) {
  uv_loop_t *loop = pt_loop_new();
  char buf[512];
  pqs_factory_t *f = factory(both("prefer-standby", buf, sizeof(buf)));
  pt_opened_t o;
  pqs_ctx_t *ctx = acquire(loop, f, &o);
  ck_assert_int_eq(o.status, 0);
  got_t g;
  ck_assert_str_eq(in_recovery(loop, ctx, &g), "t");
  pt_close(loop, ctx); /* idle in the pool, on the standby */
  pqs_factory_stats_t st;
  pqs_factory_stats(f, &st);
  ck_assert_uint_eq(st.idle, 1);
  char cmd[512];
  snprintf(cmd, sizeof(cmd),
           "%s/usr/lib/postgresql/15/bin/pg_ctl -D %s/data -m fast -w stop "
           ">/dev/null",
           getuid() == 0 ? "runuser -u postgres -- " : "",
           standby_env("PQS_TEST_STANDBY_DIR"));
  ck_assert_int_eq(system(cmd), 0);
  /* no error for the dead idle connection: the next context is on the
   * primary, in recovery no more */
  for (int i = 0; i < 3; i++) {
    ctx = acquire(loop, f, &o);
    ck_assert_msg(o.status == 0, "%s", o.msg);
    ck_assert_str_eq(in_recovery(loop, ctx, &g), "f");
    pt_close(loop, ctx);
  }
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}
END_TEST

int main(void) {
  Suite *s = suite_create("replica");
  TCase *tc = tcase_create("replica");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, contexts_on_the_right_server);
  tcase_add_test(tc, recovery_conflict_ends_with_its_sqlstate);
  tcase_add_test(tc, standby_gone_primary_serves);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
