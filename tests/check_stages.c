/* Stages: each alone and chained, over rows in memory (no socket) and over
 * real queries, checked against the same computation done by the server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "memsource.h"
#include "pqs_test.h"

/* ---- a table in memory: id int8 (1..N), name text, grp int4 ---- */

#define N 1000
static const char *names[] = {"id", "name", "grp"};
static const uint32_t types[] = {20, 25, 23};
static char texts[N][3][24];
static const char *values[N * 3];
static pt_table_t table = {3, names, types, N, values};

static void make_table(void) {
  for (int i = 0; i < N; i++) {
    snprintf(texts[i][0], 24, "%d", i + 1);
    snprintf(texts[i][1], 24, "name %d", i + 1);
    snprintf(texts[i][2], 24, "%d", (i + 1) % 7);
    values[i * 3] = texts[i][0];
    values[i * 3 + 1] = (i + 1) % 10 == 0 ? NULL : texts[i][1];
    values[i * 3 + 2] = texts[i][2];
  }
}

/* ---- a consumer that records ---- */

typedef struct {
  pt_done_t done;
  int64_t sum, first, last;
  uint64_t rows;
  int columns_calls, columns_ncols;
  char col0[32], col1[32];
  int nulls1;
  int batches, batch_max, batch_last;
} sink_t;

static void record_row(sink_t *k, const pqs_row_t *row) {
  int64_t v = 0;
  ck_assert_int_eq(pqs_row_int64(row, 0, &v), 0);
  if (k->rows++ == 0)
    k->first = v;
  k->last = v;
  k->sum += v;
  k->nulls1 += pqs_row_ncols(row) > 1 && pqs_row_is_null(row, 1) == 1;
}

static int on_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  sink_t *k = data;
  record_row(k, row);
  (void)s;
  return PQS_CONTINUE;
}

static int on_columns(pqs_stream_t *s, const pqs_row_t *cols, void *data) {
  (void)s;
  sink_t *k = data;
  k->columns_calls++;
  k->columns_ncols = pqs_row_ncols(cols);
  snprintf(k->col0, sizeof(k->col0), "%s", pqs_row_name(cols, 0));
  if (k->columns_ncols > 1)
    snprintf(k->col1, sizeof(k->col1), "%s", pqs_row_name(cols, 1));
  return PQS_CONTINUE;
}

static int on_batch(pqs_stream_t *s, const pqs_row_t *const *rows, size_t n,
                    void *data) {
  (void)s;
  sink_t *k = data;
  ck_assert_int_eq(k->done.calls, 0);
  k->batches++;
  if ((int)n > k->batch_max)
    k->batch_max = (int)n;
  k->batch_last = (int)n;
  for (size_t i = 0; i < n; i++)
    record_row(k, rows[i]);
  return PQS_CONTINUE;
}

static void on_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)s;
  sink_t *k = data;
  pt_record(&k->done, done);
}

static const pqs_stream_cbs_t cbs = {.on_columns = on_columns,
                                     .on_row = on_row,
                                     .on_done = on_done,
                                     .on_batch = on_batch};

static void run_stream(uv_loop_t *loop, pqs_stream_t *s, sink_t *k) {
  pt_stream_wait(loop, s, &cbs, k, &k->done);
}

/* ---- stage functions ---- */

static int64_t id_of(const pqs_row_t *row) {
  int64_t v = 0;
  ck_assert_int_eq(pqs_row_int64(row, 0, &v), 0);
  return v;
}

static int keep_mod(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  return id_of(row) % *(int *)data == 0;
}

static int fail_at(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  return id_of(row) == *(int64_t *)data ? -77 : 1;
}

static int count_tap(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  (void)row;
  ++*(int *)data;
  return PQS_CONTINUE;
}

/* map: (id * factor AS twice, name passed through AS label, NULL AS nothing),
 * dropping ids that are multiples of 100. */
static const pqs_column_t map_cols[] = {
    {"twice", 20}, {"label", 25}, {"nothing", 25}};

static int double_id(pqs_stream_t *s, const pqs_row_t *in, pqs_out_t *out,
                     void *data) {
  (void)s;
  int64_t id = id_of(in);
  if (id % 100 == 0)
    return PQS_SKIP;
  ck_assert_int_eq(pqs_out_set_int64(out, 0, id * *(int *)data), 0);
  ck_assert_int_eq(pqs_out_pass(out, 1, in, 1), 0);
  ck_assert_int_eq(pqs_out_set_null(out, 2), 0);
  ck_assert_int_eq(pqs_out_set(out, 5, "x", 1), PQS_EINVAL);
  return PQS_CONTINUE;
}

static const pqs_column_t plus_cols[] = {{"plus", 20}};

static int plus_one(pqs_stream_t *s, const pqs_row_t *in, pqs_out_t *out,
                    void *data) {
  (void)s;
  (void)data;
  char text[32];
  int n = snprintf(text, sizeof(text), "%lld", (long long)id_of(in) + 1);
  return pqs_out_set(out, 0, text, (size_t)n);
}

static int freed;
static void count_free(void *data) {
  (void)data;
  freed++;
}

/* ---- over rows in memory ---- */

START_TEST(mem_filter) {
  uv_loop_t *loop = pt_loop_new();
  int mod = 2;
  pqs_stream_t *s = pt_mem_stream(loop, &table);
  ck_assert_int_eq(pqs_stream_filter(s, keep_mod, &mod, NULL), 0);
  sink_t k = {0};
  run_stream(loop, s, &k);
  ck_assert_int_eq(k.done.status, 0);
  ck_assert_int_eq(k.rows, 500);
  ck_assert_int_eq(k.done.rows, 500);
  ck_assert_int_eq(k.sum, 2 * 500 * 501 / 2);
  pt_loop_free(loop);
}
END_TEST

START_TEST(mem_map) {
  uv_loop_t *loop = pt_loop_new();
  int factor = 2;
  pqs_stream_t *s = pt_mem_stream(loop, &table);
  ck_assert_int_eq(
      pqs_stream_map(s, map_cols, 3, double_id, &factor, count_free), 0);
  freed = 0;
  sink_t k = {0};
  run_stream(loop, s, &k);
  ck_assert_int_eq(freed, 1);
  ck_assert_int_eq(k.done.status, 0);
  ck_assert_int_eq(k.rows, 990);
  ck_assert_int_eq(k.sum, 2 * (N * (N + 1) / 2 - 100 * 10 * 11 / 2));
  ck_assert_int_eq(k.columns_calls, 1);
  ck_assert_int_eq(k.columns_ncols, 3);
  ck_assert_str_eq(k.col0, "twice");
  ck_assert_str_eq(k.col1, "label");
  ck_assert_int_eq(k.nulls1, 90); /* every 10th name is NULL, less the 10 */
  pt_loop_free(loop);
}
END_TEST

START_TEST(mem_take_skip_tap) {
  uv_loop_t *loop = pt_loop_new();
  int seen = 0;
  int stops = pt_mem_stops();
  pqs_stream_t *s = pt_mem_stream(loop, &table);
  ck_assert_int_eq(pqs_stream_tap(s, count_tap, &seen, NULL), 0);
  ck_assert_int_eq(pqs_stream_skip(s, 500), 0);
  ck_assert_int_eq(pqs_stream_take(s, 10), 0);
  sink_t k = {0};
  run_stream(loop, s, &k);
  ck_assert_int_eq(k.done.status, 0);
  ck_assert_int_eq(k.rows, 10);
  ck_assert_int_eq(k.first, 501);
  ck_assert_int_eq(k.last, 510);
  ck_assert_int_eq(seen, 510); /* the source stopped right after the 10th */
  ck_assert_int_eq(pt_mem_stops(), stops + 1);
  pt_loop_free(loop);
}
END_TEST

START_TEST(mem_map_map_filter_take) {
  uv_loop_t *loop = pt_loop_new();
  int factor = 3, mod = 4;
  pqs_stream_t *s = pt_mem_stream(loop, &table);
  ck_assert_int_eq(pqs_stream_map(s, map_cols, 3, double_id, &factor, NULL), 0);
  ck_assert_int_eq(pqs_stream_map(s, plus_cols, 1, plus_one, NULL, NULL), 0);
  ck_assert_int_eq(pqs_stream_filter(s, keep_mod, &mod, NULL), 0);
  ck_assert_int_eq(pqs_stream_take(s, 5), 0);
  sink_t k = {0};
  run_stream(loop, s, &k);
  /* 3*id + 1 divisible by 4: id = 1, 5, 9, 13, 17 -> 4, 16, 28, 40, 52 */
  ck_assert_int_eq(k.done.status, 0);
  ck_assert_int_eq(k.rows, 5);
  ck_assert_int_eq(k.first, 4);
  ck_assert_int_eq(k.last, 52);
  ck_assert_int_eq(k.sum, 4 + 16 + 28 + 40 + 52);
  ck_assert_str_eq(k.col0, "plus");
  pt_loop_free(loop);
}
END_TEST

START_TEST(mem_batch) {
  uv_loop_t *loop = pt_loop_new();
  pqs_stream_t *s = pt_mem_stream(loop, &table);
  ck_assert_int_eq(pqs_stream_batch(s, 64), 0);
  ck_assert_int_eq(pqs_stream_take(s, 1), PQS_EINVAL); /* batch is last */
  sink_t k = {0};
  run_stream(loop, s, &k);
  ck_assert_int_eq(k.done.status, 0);
  ck_assert_int_eq(k.rows, N);
  ck_assert_int_eq(k.sum, N * (N + 1) / 2);
  ck_assert_int_eq(k.batches, (N + 63) / 64);
  ck_assert_int_eq(k.batch_max, 64);
  ck_assert_int_eq(k.batch_last, N % 64);
  ck_assert_int_eq(k.nulls1, N / 10);
  pt_loop_free(loop);
}
END_TEST

START_TEST(mem_user_error) {
  uv_loop_t *loop = pt_loop_new();
  int64_t bad = 300;
  pqs_stream_t *s = pt_mem_stream(loop, &table);
  ck_assert_int_eq(pqs_stream_filter(s, fail_at, &bad, NULL), 0);
  sink_t k = {0};
  run_stream(loop, s, &k);
  ck_assert_int_eq(k.done.status, -77);
  ck_assert_int_eq(k.rows, 299);
  pt_loop_free(loop);
}
END_TEST

START_TEST(mem_stage_rules) {
  uv_loop_t *loop = pt_loop_new();
  freed = 0;
  pqs_stream_t *s = pt_mem_stream(loop, &table);
  ck_assert_int_eq(pqs_stream_filter(s, NULL, NULL, count_free), PQS_EINVAL);
  ck_assert_int_eq(freed, 1); /* freed at once when adding fails */
  ck_assert_int_eq(pqs_stream_map(s, map_cols, 0, double_id, NULL, count_free),
                   PQS_EINVAL);
  ck_assert_int_eq(freed, 2);
  ck_assert_int_eq(pqs_stream_tap(s, count_tap, NULL, count_free), 0);
  ck_assert_int_eq(pqs_stream_batch(s, 0), PQS_EINVAL);
  int seen = 0;
  pqs_stream_t *s2 = pt_mem_stream(loop, &table);
  ck_assert_int_eq(pqs_stream_tap(s2, count_tap, &seen, count_free), 0);
  sink_t k = {0};
  ck_assert_int_eq(pqs_stream_start(s2, &cbs, &k), 0);
  ck_assert_int_eq(pqs_stream_take(s2, 1), PQS_ESTATE); /* started */
  ck_assert_int_eq(freed, 2);
  while (k.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(freed, 3);               /* s2's tap, when s2 was freed */
  ck_assert_int_eq(pqs_stream_close(s), 0); /* never started */
  ck_assert_int_eq(freed, 4);
  pt_loop_free(loop);
}
END_TEST

/* A tap pauses at row 100; a filter then drops that very row: the stream
 * pauses, the row is not delivered, and resuming goes on from 101. */
typedef struct {
  sink_t k;
  uv_timer_t timer;
  pqs_stream_t *s;
  int paused_at_rows;
} pauser_t;

static int pause_at_100(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  pauser_t *p = data;
  p->s = s;
  return id_of(row) == 100 ? PQS_PAUSE : PQS_CONTINUE;
}

static int drop_100(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  (void)data;
  return id_of(row) != 100;
}

static void resume_cb(uv_timer_t *t) {
  pauser_t *p = t->data;
  p->paused_at_rows = (int)p->k.rows;
  ck_assert_int_eq(pqs_stream_resume(p->s), 0);
  uv_close((uv_handle_t *)t, NULL);
}

START_TEST(mem_pause_through_stages) {
  uv_loop_t *loop = pt_loop_new();
  pauser_t p = {0};
  uv_timer_init(loop, &p.timer);
  p.timer.data = &p;
  uv_timer_start(&p.timer, resume_cb, 50, 0);
  pqs_stream_t *s = pt_mem_stream(loop, &table);
  ck_assert_int_eq(pqs_stream_tap(s, pause_at_100, &p, NULL), 0);
  ck_assert_int_eq(pqs_stream_filter(s, drop_100, NULL, NULL), 0);
  run_stream(loop, s, &p.k);
  ck_assert_int_eq(p.paused_at_rows, 99);
  ck_assert_int_eq(p.k.rows, N - 1);
  ck_assert_int_eq(p.k.done.status, 0);
  pt_loop_free(loop);
}
END_TEST

/* ---- over the real server ---- */

static pqs_stream_t *query(pqs_ctx_t *ctx, const char *sql) {
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pt_stream(ctx, &s, sql, 0, NULL, NULL), 0);
  return s;
}

START_TEST(pg_filter_map_take) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  int mod = 3, factor = 2;
  pqs_stream_t *s = query(
      ctx, "SELECT g::int8 AS id, CASE WHEN g % 10 = 0 THEN NULL ELSE 'n' || "
           "g END AS name FROM generate_series(1, 100000) g");
  ck_assert_int_eq(pqs_stream_filter(s, keep_mod, &mod, NULL), 0);
  ck_assert_int_eq(pqs_stream_map(s, map_cols, 3, double_id, &factor, NULL), 0);
  ck_assert_int_eq(pqs_stream_take(s, 1000), 0);
  sink_t k = {0};
  run_stream(loop, s, &k);
  ck_assert_int_eq(k.done.status, 0);
  ck_assert_int_eq(k.rows, 1000);
  PGconn *admin = pt_admin();
  long long sum = pt_scalar_ll(
      admin, "SELECT sum(g * 2) FROM (SELECT g FROM generate_series(1, "
             "100000) g WHERE g % 3 = 0 AND g % 100 <> 0 ORDER BY g LIMIT "
             "1000) x");
  long long nulls = pt_scalar_ll(
      admin, "SELECT count(*) FROM (SELECT g FROM generate_series(1, 100000) "
             "g WHERE g % 3 = 0 AND g % 100 <> 0 ORDER BY g LIMIT 1000) x "
             "WHERE g % 10 = 0");
  PQfinish(admin);
  ck_assert_int_eq(k.sum, sum);
  ck_assert_int_eq(k.nulls1, nulls);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Each stage alone over a real query, against the same SQL. */
static int stop_at_77(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  ++*(int *)data;
  return id_of(row) == 77 ? PQS_STOP : PQS_CONTINUE;
}

START_TEST(pg_each_stage_alone) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  PGconn *admin = pt_admin();
  const char *q = "SELECT g::int8, 'n' || g FROM generate_series(1, 5000) g";
  int mod = 7, factor = 3, taps = 0;
  for (int which = 0; which < 6; which++) {
    pqs_stream_t *s = query(ctx, q);
    const char *want = NULL;
    switch (which) {
    case 0:
      ck_assert_int_eq(pqs_stream_filter(s, keep_mod, &mod, NULL), 0);
      want = "SELECT count(*), sum(g) FROM generate_series(1, 5000) g "
             "WHERE g % 7 = 0";
      break;
    case 1:
      ck_assert_int_eq(pqs_stream_map(s, map_cols, 3, double_id, &factor, NULL),
                       0);
      want = "SELECT count(*), sum(g * 3) FROM generate_series(1, 5000) g "
             "WHERE g % 100 <> 0";
      break;
    case 2:
      ck_assert_int_eq(pqs_stream_take(s, 123), 0);
      want = "SELECT count(*), sum(g) FROM generate_series(1, 123) g";
      break;
    case 3:
      ck_assert_int_eq(pqs_stream_skip(s, 4000), 0);
      want = "SELECT count(*), sum(g) FROM generate_series(4001, 5000) g";
      break;
    case 4:
      ck_assert_int_eq(pqs_stream_tap(s, stop_at_77, &taps, NULL), 0);
      want = "SELECT 76, sum(g) FROM generate_series(1, 76) g";
      break;
    default:
      ck_assert_int_eq(pqs_stream_batch(s, 333), 0);
      want = "SELECT count(*), sum(g) FROM generate_series(1, 5000) g";
      break;
    }
    sink_t k = {0};
    run_stream(loop, s, &k);
    ck_assert_int_eq(k.done.status, which == 4 ? PQS_ECANCELED : 0);
    PGresult *r = PQexec(admin, want);
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
                  PQerrorMessage(admin));
    ck_assert_msg(k.rows == strtoull(PQgetvalue(r, 0, 0), NULL, 10) &&
                      k.sum == strtoll(PQgetvalue(r, 0, 1), NULL, 10),
                  "stage %d: %llu rows summing %lld, server says %s, %s", which,
                  (unsigned long long)k.rows, (long long)k.sum,
                  PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
    PQclear(r);
  }
  ck_assert_int_eq(taps, 77); /* the stopping row went no further */
  PQfinish(admin);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(pg_skip_take_batch) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_stream_t *s =
      query(ctx, "SELECT g::int8 FROM generate_series(1, 100000) g");
  ck_assert_int_eq(pqs_stream_skip(s, 5000), 0);
  ck_assert_int_eq(pqs_stream_take(s, 2500), 0);
  ck_assert_int_eq(pqs_stream_batch(s, 1000), 0);
  sink_t k = {0};
  run_stream(loop, s, &k);
  ck_assert_int_eq(k.done.status, 0);
  ck_assert_int_eq(k.rows, 2500);
  ck_assert_int_eq(k.first, 5001);
  ck_assert_int_eq(k.last, 7500);
  ck_assert_int_eq(k.batches, 3);
  ck_assert_int_eq(k.batch_last, 500);
  PGconn *admin = pt_admin();
  ck_assert_int_eq(k.sum, pt_scalar_ll(admin, "SELECT sum(g) FROM "
                                              "generate_series(5001, 7500) g"));
  PQfinish(admin);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(pg_take_ten_of_a_billion) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  int pid = pqs_ctx_backend_pid(ctx);
  pqs_stream_t *s = query(ctx, "SELECT generate_series(1, 1000000000)::int8");
  ck_assert_int_eq(pqs_stream_take(s, 10), 0);
  sink_t k = {0};
  double t0 = pt_now();
  run_stream(loop, s, &k);
  double took = pt_now() - t0;
  ck_assert_int_eq(k.done.status, 0);
  ck_assert_int_eq(k.rows, 10);
  ck_assert_int_eq(k.sum, 55);
  ck_assert_msg(took < 10, "take(10) took %.1fs", took);
  pt_assert_idle(pid);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(pg_stage_error_once) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  int pid = pqs_ctx_backend_pid(ctx);
  int64_t bad = 1234;
  pqs_stream_t *s = query(ctx, "SELECT generate_series(1, 100000000)::int8");
  ck_assert_int_eq(pqs_stream_filter(s, fail_at, &bad, NULL), 0);
  sink_t k = {0};
  run_stream(loop, s, &k);
  ck_assert_int_eq(k.done.status, -77);
  ck_assert_int_eq(k.rows, 1233);
  pt_assert_idle(pid);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

int main(void) {
  make_table();
  Suite *s = suite_create("stages");
  TCase *mem = tcase_create("memory");
  tcase_add_test(mem, mem_filter);
  tcase_add_test(mem, mem_map);
  tcase_add_test(mem, mem_take_skip_tap);
  tcase_add_test(mem, mem_map_map_filter_take);
  tcase_add_test(mem, mem_batch);
  tcase_add_test(mem, mem_user_error);
  tcase_add_test(mem, mem_stage_rules);
  tcase_add_test(mem, mem_pause_through_stages);
  suite_add_tcase(s, mem);
  TCase *pg = tcase_create("server");
  tcase_set_timeout(pg, 120);
  tcase_add_test(pg, pg_each_stage_alone);
  tcase_add_test(pg, pg_filter_map_take);
  tcase_add_test(pg, pg_skip_take_batch);
  tcase_add_test(pg, pg_take_ten_of_a_billion);
  tcase_add_test(pg, pg_stage_error_once);
  suite_add_tcase(s, pg);
  return pt_run(s);
}
