/* A stream written into a table (pqs_stream_into): byte for byte for
 * every type of the corpus, on the same server or another, over both
 * sources; either side failing ends both with one completion that names
 * the side; a slow target slows the source without memory growing. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultproxy.h"
#include "pqs_test.h"

static const char *const tables[] = {"numbers", "strings", "times", "shapes",
                                     "nested"};
#define NTABLES (int)(sizeof(tables) / sizeof(tables[0]))

static const char *second_server(void) {
  const char *second = getenv("PQS_TEST_CONNINFO2");
  ck_assert_msg(second != NULL,
                "PQS_TEST_CONNINFO2 is not set: the test command starts a "
                "second server for this test (scripts/dev.sh)");
  return second;
}

static PGconn *connect_to(const char *conninfo) {
  PGconn *c = PQconnectdb(conninfo);
  ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
  return c;
}

static void load_corpus(PGconn *c) {
  pt_load_corpus(c, PQS_TEST_CORPUS);
  pt_sql(c, "DROP SCHEMA IF EXISTS corpus_in CASCADE; CREATE SCHEMA corpus_in");
}

typedef struct {
  int calls;
  pt_done_t done;
  pqs_side_t side;
} piped_t;

static void on_piped(pqs_into_t *in, const pqs_done_t *done, pqs_side_t side,
                     void *data) {
  (void)in;
  piped_t *p = data;
  p->calls++;
  p->side = side;
  pt_record(&p->done, done);
}

/* Pipes `sql` on `from` into `table` on `to`; runs until the callback. */
static void pipe_rows(uv_loop_t *loop, pqs_ctx_t *from, const char *sql,
                      const pqs_query_opts_t *qo, pqs_ctx_t *to,
                      const char *table, piped_t *p, pqs_into_t **in) {
  pqs_stream_t *s = pt_query(from, sql, qo);
  ck_assert_int_eq(pqs_stream_into(s, to, table, NULL, on_piped, p, in), 0);
  double t0 = pt_now();
  while (p->calls == 0 && pt_now() - t0 < 120)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(p->calls, 1);
}

static void assert_usable(uv_loop_t *loop, pqs_ctx_t *ctx) {
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
}

/* Every corpus table, into a copy of itself on `to_conninfo`, compared as
 * COPY writes both. */
static void corpus_into(const char *to_conninfo) {
  PGconn *a = pt_admin(), *b = connect_to(to_conninfo);
  load_corpus(a);
  if (strcmp(to_conninfo, pt_conninfo()) != 0)
    load_corpus(b);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *from = pt_open(loop, pt_conninfo());
  pqs_ctx_t *to = pt_open(loop, to_conninfo);
  static const pqs_source_t sources[] = {PQS_SOURCE_SINGLE_ROW,
                                         PQS_SOURCE_COPY};
  for (int t = 0; t < NTABLES; t++) {
    char sql[256], table[64], make[256];
    snprintf(sql, sizeof(sql), "SELECT * FROM corpus.%s ORDER BY id",
             tables[t]);
    snprintf(table, sizeof(table), "corpus_in.%s", tables[t]);
    size_t want_len, got_len;
    char *want = pt_server_copy(a, sql, "", &want_len);
    for (int si = 0; si < 2; si++) {
      snprintf(make, sizeof(make),
               "DROP TABLE IF EXISTS %s; CREATE TABLE %s (LIKE corpus.%s)",
               table, table, tables[t]);
      pt_sql(b, make);
      pqs_query_opts_t qo = {.source = sources[si]};
      piped_t p = {0};
      pipe_rows(loop, from, sql, &qo, to, table, &p, NULL);
      ck_assert_msg(p.done.status == 0, "corpus.%s: %s", tables[t],
                    p.done.message);
      char back[256];
      snprintf(back, sizeof(back), "SELECT * FROM %s ORDER BY id", table);
      char *got = pt_server_copy(b, back, "", &got_len);
      char what[128];
      snprintf(what, sizeof(what), "corpus.%s piped (%s)", tables[t],
               si ? "COPY source" : "single-row source");
      pt_assert_same_bytes(what, want, want_len, got, got_len);
      free(got);
    }
    free(want);
  }
  pt_close(loop, from);
  pt_close(loop, to);
  pt_loop_free(loop);
  PQfinish(a);
  PQfinish(b);
}

static void fresh_target(PGconn *admin, const char *check) {
  char sql[256];
  snprintf(sql, sizeof(sql),
           "DROP TABLE IF EXISTS piped; CREATE TABLE piped (id int "
           "PRIMARY KEY %s, s text)",
           check);
  pt_sql(admin, sql);
}

START_TEST(corpus_into_the_same_server) { corpus_into(pt_conninfo()); }
END_TEST

/* What the load took, given whole: one put, then end. */
typedef struct {
  int calls;
  pt_done_t done;
} loaded_t;

static void on_loaded(pqs_copy_in_t *ci, const pqs_done_t *done, void *data) {
  (void)ci;
  loaded_t *l = data;
  l->calls++;
  pt_record(&l->done, done);
}

/* Every corpus table as COPY writes it (text, and CSV with a header), as
 * a file would hold it, loaded into a copy of the table: COPY writes the
 * copy back byte for byte. */
START_TEST(corpus_from_file_bytes) {
  PGconn *a = pt_admin();
  load_corpus(a);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  for (int t = 0; t < NTABLES; t++) {
    for (int csv = 0; csv < 2; csv++) {
      char sql[256], table[64], make[256];
      snprintf(sql, sizeof(sql), "SELECT * FROM corpus.%s ORDER BY id",
               tables[t]);
      snprintf(table, sizeof(table), "corpus_in.%s", tables[t]);
      snprintf(make, sizeof(make),
               "DROP TABLE IF EXISTS %s; CREATE TABLE %s (LIKE corpus.%s)",
               table, table, tables[t]);
      pt_sql(a, make);
      const char *opts = csv ? "(FORMAT csv, HEADER true)" : "";
      size_t len, got_len;
      char *file = pt_server_copy(a, sql, opts, &len);
      pqs_copy_in_opts_t o = {.format = csv ? PQS_FORMAT_CSV : PQS_FORMAT_TSV,
                              .header = csv};
      pqs_copy_in_cbs_t cbs = {.on_done = on_loaded};
      loaded_t l = {0};
      pqs_copy_in_t *ci;
      ck_assert_int_eq(pqs_copy_in(ctx, &ci, table, &o, &cbs, &l), 0);
      ck_assert_int_ge(pqs_copy_in_put(ci, file, len), 0);
      ck_assert_int_eq(pqs_copy_in_end(ci), 0);
      while (l.calls == 0)
        uv_run(loop, UV_RUN_ONCE);
      ck_assert_msg(l.done.status == 0, "corpus.%s: %s", tables[t],
                    l.done.message);
      char back[256], what[128];
      snprintf(back, sizeof(back), "SELECT * FROM %s ORDER BY id", table);
      char *got = pt_server_copy(a, back, opts, &got_len);
      snprintf(what, sizeof(what), "corpus.%s loaded from %s", tables[t],
               csv ? "CSV" : "text");
      pt_assert_same_bytes(what, file, len, got, got_len);
      free(got);
      free(file);
    }
  }
  pt_close(loop, ctx);
  pt_loop_free(loop);
  PQfinish(a);
}
END_TEST

/* A target that stops taking bytes (its network stalled) past the
 * load's timeout: the load ends within the grace period, the context is
 * reported broken (the COPY could not be failed over a dead link),
 * nothing is committed, and the source's query is cancelled. */
START_TEST(stalled_target_times_out) {
  PGconn *admin = pt_admin();
  uv_loop_t *loop = pt_loop_new();
  pt_proxy_t *proxy = pt_proxy_start(atoi(PQport(admin)));
  pqs_ctx_t *from = pt_open(loop, pt_conninfo());
  /* a grace period of a second after the stop, not the default */
  pqs_ctx_opts_t opts = {.cancel_grace_ms = 1000};
  pt_opened_t opened = {0};
  pqs_ctx_t *to = NULL;
  ck_assert_int_eq(pqs_ctx_open(&to, loop, pt_proxy_conninfo(proxy), &opts,
                                pt_on_open, &opened), 0);
  while (opened.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(opened.status, 0);
  int to_pid = pqs_ctx_backend_pid(to);
  fresh_target(admin, "");
  pt_proxy_set(proxy, PT_STALL_BOTH);
  pqs_stream_t *s = pt_query(
      from, "SELECT g, repeat('x', 100) FROM generate_series(1, 1000000) g",
      NULL);
  pqs_copy_in_opts_t o = {.timeout_ms = 500};
  piped_t p = {0};
  ck_assert_int_eq(pqs_stream_into(s, to, "piped", &o, on_piped, &p, NULL), 0);
  double t0 = pt_now();
  while (p.calls == 0 && pt_now() - t0 < 30)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(p.calls, 1);
  ck_assert_msg(pt_now() - t0 < 10, "it took %.1f s to end", pt_now() - t0);
  ck_assert_int_eq(p.done.status, PQS_ETIMEDOUT);
  ck_assert_int_eq(p.side, PQS_SIDE_TARGET);
  pt_assert_idle(pqs_ctx_backend_pid(from));
  assert_usable(loop, from);
  pt_proxy_stop(proxy); /* the link goes: the target's backend ends */
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM piped"), 0);
  char sql[128];
  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", to_pid);
  double t1 = pt_now();
  while (pt_scalar_ll(admin, sql) != 0 && pt_now() - t1 < 10)
    uv_sleep(50);
  ck_assert_msg(pt_scalar_ll(admin, sql) == 0,
                "the target's backend is still there 10 s after its link went");
  pt_close(loop, from);
  pt_close(loop, to);
  pt_loop_free(loop);
  PQfinish(admin);
}
END_TEST

START_TEST(corpus_into_another_server) { corpus_into(second_server()); }
END_TEST


/* The source fails after some rows: the load is rolled back. The target
 * fails midway: the source's query is cancelled. One completion each,
 * naming the side; both contexts usable; nothing committed. */
START_TEST(either_side_failing_ends_both) {
  PGconn *admin = pt_admin();
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *from = pt_open(loop, pt_conninfo());
  pqs_ctx_t *to = pt_open(loop, pt_conninfo());
  static const pqs_source_t sources[] = {PQS_SOURCE_SINGLE_ROW,
                                         PQS_SOURCE_COPY};
  for (int si = 0; si < 2; si++) {
    pqs_query_opts_t qo = {.source = sources[si]};
    fresh_target(admin, "");
    piped_t p = {0};
    pipe_rows(loop, from,
              "SELECT g, 'x' || 1 / (g - 150000) FROM "
              "generate_series(1, 300000) g",
              &qo, to, "piped", &p, NULL);
    ck_assert_int_eq(p.done.status, PQS_ESQL);
    ck_assert_int_eq(p.side, PQS_SIDE_SOURCE);
    ck_assert_str_eq(p.done.sqlstate, "22012");
    ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM piped"), 0);
    assert_usable(loop, from);
    assert_usable(loop, to);

    fresh_target(admin, "CHECK (id <> 150000)");
    piped_t q = {0};
    pipe_rows(loop, from,
              "SELECT g, 'x' FROM generate_series(1, 3000000) g", &qo, to,
              "piped", &q, NULL);
    ck_assert_int_eq(q.done.status, PQS_ESQL);
    ck_assert_int_eq(q.side, PQS_SIDE_TARGET);
    ck_assert_str_eq(q.done.sqlstate, "23514");
    pt_assert_idle(pqs_ctx_backend_pid(from));
    ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM piped"), 0);
    assert_usable(loop, from);
    assert_usable(loop, to);
  }
  pt_close(loop, from);
  pt_close(loop, to);
  pt_loop_free(loop);
  PQfinish(admin);
}
END_TEST

/* Stopped by the caller, or its source's backend killed, midway through
 * a load the target takes slowly: one completion, nothing committed. */
typedef struct {
  uv_timer_t timer;
  pqs_into_t *in;
  int kill_pid; /* 0: stop the pipe instead */
  long peak_kb;
} midway_t;

static void on_midway(uv_timer_t *t) {
  midway_t *m = t->data;
  if (m->kill_pid == 0) {
    ck_assert_int_eq(pqs_into_stop(m->in), 0);
    return;
  }
  PGconn *admin = pt_admin();
  char sql[64];
  snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", m->kill_pid);
  pt_sql(admin, sql);
  PQfinish(admin);
}

START_TEST(stopped_or_killed_midway) {
  PGconn *admin = pt_admin();
  uv_loop_t *loop = pt_loop_new();
  pt_proxy_t *proxy = pt_proxy_start(atoi(PQport(admin)));
  pqs_ctx_t *from = pt_open(loop, pt_conninfo());
  pqs_ctx_t *to = pt_open(loop, pt_proxy_conninfo(proxy));
  pt_proxy_set(proxy, PT_SLOW_UP);
  for (int kill = 0; kill < 2; kill++) {
    fresh_target(admin, "");
    midway_t m = {.kill_pid = kill ? pqs_ctx_backend_pid(from) : 0};
    uv_timer_init(loop, &m.timer);
    m.timer.data = &m;
    piped_t p = {0};
    pqs_stream_t *s = pt_query(
        from, "SELECT g, repeat('x', 100) FROM generate_series(1, 1000000) g",
        NULL);
    ck_assert_int_eq(pqs_stream_into(s, to, "piped", NULL, on_piped, &p, &m.in),
                     0);
    uv_timer_start(&m.timer, on_midway, 500, 0);
    double t0 = pt_now();
    while (p.calls == 0 && pt_now() - t0 < 60)
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_int_eq(p.calls, 1);
    ck_assert_msg(pt_now() - t0 < 20, "it took %.1f s to end", pt_now() - t0);
    if (kill) {
      ck_assert_int_eq(p.done.status, PQS_ECONNLOST);
      ck_assert_int_eq(p.side, PQS_SIDE_SOURCE);
    } else {
      ck_assert_int_eq(p.done.status, PQS_ECANCELED);
      ck_assert_int_eq(p.side, PQS_SIDE_NONE);
      assert_usable(loop, from);
    }
    uv_close((uv_handle_t *)&m.timer, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM piped"), 0);
    assert_usable(loop, to);
  }
  pt_close(loop, from);
  pt_close(loop, to);
  pt_proxy_stop(proxy);
  pt_loop_free(loop);
  PQfinish(admin);
}
END_TEST

/* A fast source into a slow target (4 MB/s through the proxy): every row
 * arrives, and memory stays where it was. */
/* The heap the library and libpq use, sampled: this process's RSS would
 * also count the fault proxy's thread and its buffers. */
static long heap_kb(void) {
  struct mallinfo2 mi = mallinfo2();
  return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

static void on_sample(uv_timer_t *t) {
  midway_t *m = t->data;
  long kb = heap_kb();
  if (kb > m->peak_kb)
    m->peak_kb = kb;
}

START_TEST(slow_target_bounded_memory) {
  PGconn *admin = pt_admin();
  uv_loop_t *loop = pt_loop_new();
  pt_proxy_t *proxy = pt_proxy_start(atoi(PQport(admin)));
  pqs_ctx_t *from = pt_open(loop, pt_conninfo());
  pqs_ctx_t *to = pt_open(loop, pt_proxy_conninfo(proxy));
  pt_proxy_set(proxy, PT_SLOW_UP);
  fresh_target(admin, "");
  midway_t m = {0};
  uv_timer_init(loop, &m.timer);
  m.timer.data = &m;
  uv_timer_start(&m.timer, on_sample, 50, 50);
  long before = heap_kb();
  piped_t p = {0};
  pipe_rows(loop, from,
            "SELECT g, repeat('y', 200) FROM generate_series(1, 100000) g",
            NULL, to, "piped", &p, NULL);
  ck_assert_msg(p.done.status == 0, "%s", p.done.message);
  ck_assert_int_eq(p.done.rows, 100000);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM piped WHERE "
                                       "length(s) = 200"),
                   100000);
  ck_assert_msg(m.peak_kb - before < 16 * 1024,
                "the heap grew by %ld KB while 20 MB went through",
                m.peak_kb - before);
  uv_close((uv_handle_t *)&m.timer, NULL);
  pt_close(loop, from);
  pt_close(loop, to);
  pt_proxy_stop(proxy);
  pt_loop_free(loop);
  PQfinish(admin);
}
END_TEST

static Suite *into_suite(void) {
  Suite *s = suite_create("into");
  TCase *tc = tcase_create("into");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, corpus_into_the_same_server);
  tcase_add_test(tc, corpus_into_another_server);
  tcase_add_test(tc, corpus_from_file_bytes);
  tcase_add_test(tc, stalled_target_times_out);
  tcase_add_test(tc, either_side_failing_ends_both);
  tcase_add_test(tc, stopped_or_killed_midway);
  tcase_add_test(tc, slow_target_bounded_memory);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return pt_run(into_suite()); }
