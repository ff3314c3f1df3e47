/* Merge and gather: streams of separate contexts, at once, as one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pqs_test.h"

#define MAXIN 16

static void on_gathered(pqs_gather_t *g, pqs_rowset_t **sets, int n,
                        const pqs_done_t *done, void *data);

/* N contexts on one loop. */
static void open_n(uv_loop_t *loop, pqs_ctx_t **ctx, int n) {
  for (int i = 0; i < n; i++)
    ctx[i] = pt_open(loop, pt_conninfo());
}

static void close_n(uv_loop_t *loop, pqs_ctx_t **ctx, int n) {
  for (int i = 0; i < n; i++)
    pt_close(loop, ctx[i]);
}

static pqs_stream_t *q(pqs_ctx_t *ctx, const char *sql) {
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s, sql, 0, NULL, NULL), 0);
  return s;
}

/* What the merged stream delivered. */
typedef struct {
  pt_done_t done;
  uint64_t rows, per_input[MAXIN];
  int64_t sum;
  int64_t *keys; /* column 0 of every row, in order, if keep */
  size_t nkeys, cap;
  int keep;
  int last_input, switches; /* concat: how often the input changed */
  uint64_t pause_at;        /* pause once, after this many rows */
  uint64_t rows_while_paused;
  int paused;
  uv_timer_t *resume;
  pqs_stream_t *s;
  int64_t *first_col_text_null; /* unused */
} got_t;

static void on_resume(uv_timer_t *t) {
  got_t *g = t->data;
  g->paused = 0;
  ck_assert_int_eq(pqs_stream_resume(g->s), 0);
  uv_close((uv_handle_t *)t, NULL);
}

static int on_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  got_t *g = data;
  if (g->paused)
    g->rows_while_paused++;
  int in = pqs_row_input(row);
  ck_assert(in >= 0 && in < MAXIN);
  if (g->rows > 0 && in != g->last_input)
    g->switches++;
  g->last_input = in;
  g->per_input[in]++;
  g->rows++;
  int64_t v = 0;
  if (pqs_row_is_null(row, 0) == 0)
    ck_assert_int_eq(pqs_row_int64(row, 0, &v), 0);
  g->sum += v;
  if (g->keep) {
    if (g->nkeys == g->cap)
      g->keys = realloc(g->keys, (g->cap = g->cap ? 2 * g->cap : 1024) *
                                     sizeof(*g->keys));
    g->keys[g->nkeys++] = v;
  }
  if (g->pause_at && g->rows == g->pause_at) {
    g->s = s;
    g->paused = 1;
    uv_timer_start(g->resume, on_resume, 200, 0);
    return PQS_PAUSE;
  }
  return PQS_CONTINUE;
}

static void on_done(pqs_stream_t *s, const pqs_done_t *d, void *data) {
  (void)s;
  pt_record(&((got_t *)data)->done, d);
}

static void run_merged(uv_loop_t *loop, pqs_stream_t *m, got_t *g) {
  pqs_stream_cbs_t cbs = {.on_row = on_row, .on_done = on_done};
  pt_stream_wait(loop, m, &cbs, g, &g->done);
}

static void assert_idle_and_reusable(uv_loop_t *loop, pqs_ctx_t **ctx, int n) {
  for (int i = 0; i < n; i++) {
    pt_assert_idle(pqs_ctx_backend_pid(ctx[i]));
    ck_assert_int_eq(pt_exec_wait(loop, ctx[i], "SELECT 1"), 0);
  }
}

/* ---- refusals ---- */

START_TEST(same_context_refused) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[2];
  open_n(loop, ctx, 2);
  PGconn *admin = pt_admin();
  for (int i = 0; i < 100; i++) {
    pqs_stream_t *a = q(ctx[0], "SELECT 1 /* never-sent-4711 */");
    pqs_stream_t *b = q(ctx[1], "SELECT 2");
    pqs_stream_t *in[3] = {a, b, a}, *m = (pqs_stream_t *)&m;
    ck_assert_int_eq(pqs_merge(in, 3, NULL, &m), PQS_ESAMECTX);
    ck_assert_int_eq(pqs_gather(in, 3, NULL, on_gathered, NULL), PQS_ESAMECTX);
    ck_assert_ptr_eq(m, (pqs_stream_t *)&m);
    ck_assert_int_eq(pqs_stream_close(a), 0);
    ck_assert_int_eq(pqs_stream_close(b), 0);
  }
  ck_assert_int_eq(
      pt_scalar_ll(admin, "SELECT count(*) FROM pg_stat_activity WHERE query "
                          "LIKE '%never-sent-4711%' AND pid <> "
                          "pg_backend_pid() AND query NOT LIKE "
                          "'%pg_stat_activity%'"), /* a twin suite's look */
      0);
  ck_assert_ptr_nonnull(strstr(pqs_strerror(PQS_ESAMECTX), "own context"));
  /* an input already started, and no inputs */
  pqs_stream_t *a = q(ctx[0], "SELECT 1"), *b = q(ctx[1], "SELECT 2"), *m;
  got_t g = {0};
  pqs_stream_cbs_t cbs = {.on_done = on_done};
  ck_assert_int_eq(pqs_stream_start(a, &cbs, &g), 0);
  pqs_stream_t *in[2] = {a, b};
  ck_assert_int_eq(pqs_merge(in, 2, NULL, &m), PQS_ESTATE);
  ck_assert_int_eq(pqs_merge(in, 0, NULL, &m), PQS_EINVAL);
  pqs_merge_opts_t bad = {.mode = PQS_MERGE_ORDERED}; /* no keys */
  ck_assert_int_eq(pqs_merge(&b, 1, &bad, &m), PQS_EINVAL);
  ck_assert_int_eq(pqs_stream_close(b), 0);
  while (g.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  PQfinish(admin);
  close_n(loop, ctx, 2);
  pt_loop_free(loop);
}
END_TEST

START_TEST(different_columns_refused) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[2];
  open_n(loop, ctx, 2);
  pqs_stream_t *in[2] = {
      q(ctx[0], "SELECT generate_series(1, 100000000)::int8, 'x'::text"),
      q(ctx[1], "SELECT generate_series(1, 10)::int8, 1::int4")};
  pqs_stream_t *m;
  ck_assert_int_eq(pqs_merge(in, 2, NULL, &m), 0);
  got_t g = {0};
  run_merged(loop, m, &g);
  ck_assert_int_eq(g.done.status, PQS_ESCHEMA);
  ck_assert_msg(strstr(g.done.message, "differ") != NULL, "message: %s",
                g.done.message);
  assert_idle_and_reusable(loop, ctx, 2);
  close_n(loop, ctx, 2);
  pt_loop_free(loop);
}
END_TEST

/* ---- the dashboard: three slow queries at once ---- */

START_TEST(dashboard_in_parallel) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[3];
  open_n(loop, ctx, 3);
  pqs_stream_t *in[3];
  for (int i = 0; i < 3; i++)
    in[i] = q(ctx[i], "SELECT g::int8 FROM pg_sleep(0.2), "
                      "generate_series(1, 100) g");
  pqs_stream_t *m;
  ck_assert_int_eq(pqs_merge(in, 3, NULL, &m), 0);
  got_t g = {0};
  double t0 = pt_now();
  run_merged(loop, m, &g);
  double took = pt_now() - t0;
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_int_eq(g.rows, 300);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(g.per_input[i], 100);
  ck_assert_int_eq(g.sum, 3 * 5050);
  ck_assert_msg(took < 0.45, "3 x 200 ms took %.0f ms merged", took * 1000);
  close_n(loop, ctx, 3);
  pt_loop_free(loop);
}
END_TEST

/* ---- interleave: a slow input is not starved by a fast one ---- */

typedef struct {
  got_t g;
  uint64_t fast_at_slow[64]; /* fast rows seen when each slow row came */
  int slow_rows;
} fair_t;

static int fair_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  fair_t *f = data;
  if (pqs_row_input(row) == 1 && f->slow_rows < 64)
    f->fast_at_slow[f->slow_rows++] = f->g.per_input[0];
  return on_row(s, row, &f->g);
}

START_TEST(interleave_is_fair) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[2];
  open_n(loop, ctx, 2);
  /* The slow rows are larger than the server's 8 kB send buffer, so each
   * leaves the server as soon as it is made, one every 50 ms. */
  pqs_stream_t *in[2] = {
      q(ctx[0], "SELECT generate_series(1, 2000000)::int8, ''::text"),
      q(ctx[1], "SELECT g::int8, repeat('x', 9000) FROM generate_series(1, "
                "10) g, LATERAL pg_sleep(0.05)")};
  pqs_stream_t *m;
  ck_assert_int_eq(pqs_merge(in, 2, NULL, &m), 0);
  fair_t f = {0};
  pqs_stream_cbs_t cbs = {.on_row = fair_row, .on_done = on_done};
  ck_assert_int_eq(pqs_stream_start(m, &cbs, &f), 0);
  while (f.g.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(f.g.done.status, 0);
  ck_assert_int_eq(f.g.per_input[0], 2000000);
  ck_assert_int_eq(f.slow_rows, 10);
  int during = 0;
  for (int i = 0; i < f.slow_rows; i++)
    during += f.fast_at_slow[i] > 0 && f.fast_at_slow[i] < 2000000;
  ck_assert_msg(during >= 3,
                "only %d of the slow rows came while the fast input ran "
                "(first at fast row %llu)",
                during, (unsigned long long)f.fast_at_slow[0]);
  close_n(loop, ctx, 2);
  pt_loop_free(loop);
}
END_TEST

/* ---- concat ---- */

START_TEST(concat_in_input_order) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[3];
  open_n(loop, ctx, 3);
  /* The first input is the slowest: the others finish first, buffered
   * up to 10 rows each and paused beyond. */
  pqs_stream_t *in[3] = {
      q(ctx[0], "SELECT g::int8 FROM pg_sleep(0.3), generate_series(1, "
                "1000) g"),
      q(ctx[1], "SELECT generate_series(1001, 5000)::int8"),
      q(ctx[2], "SELECT generate_series(5001, 9000)::int8")};
  pqs_merge_opts_t o = {.mode = PQS_MERGE_CONCAT, .buffer_rows = 10};
  pqs_stream_t *m;
  ck_assert_int_eq(pqs_merge(in, 3, &o, &m), 0);
  got_t g = {.keep = 1};
  run_merged(loop, m, &g);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_int_eq(g.rows, 9000);
  ck_assert_int_eq(g.switches, 2);
  for (size_t i = 0; i < g.nkeys; i++)
    ck_assert_int_eq(g.keys[i], (int64_t)i + 1);
  free(g.keys);
  close_n(loop, ctx, 3);
  pt_loop_free(loop);
}
END_TEST

/* ---- ordered ---- */

static void compare_with_server(const got_t *g, const char *sql) {
  PGconn *admin = pt_admin();
  PGresult *r = PQexec(admin, sql);
  ck_assert_int_eq(PQresultStatus(r), PGRES_TUPLES_OK);
  ck_assert_int_eq((size_t)PQntuples(r), g->nkeys);
  for (int i = 0; i < PQntuples(r); i++) {
    int64_t want =
        PQgetisnull(r, i, 0) ? 0 : strtoll(PQgetvalue(r, i, 0), NULL, 10);
    ck_assert_msg(want == g->keys[i], "row %d: server %lld, merge %lld", i,
                  (long long)want, (long long)g->keys[i]);
  }
  PQclear(r);
  PQfinish(admin);
}

START_TEST(ordered_like_order_by) {
  uv_loop_t *loop = pt_loop_new();
  PGconn *admin = pt_admin();
  pt_sql(admin,
         "DROP TABLE IF EXISTS ord; CREATE TABLE ord AS SELECT g AS id, "
         "(g * 7919 % 100003)::int8 AS k, CASE WHEN g % 13 = 0 THEN NULL "
         "ELSE chr(97 + g % 5) END AS grp FROM generate_series(1, 60000) g");
  PQfinish(admin);
  pqs_ctx_t *ctx[3];
  open_n(loop, ctx, 3);
  /* by k, split three ways */
  pqs_stream_t *in[3];
  char sql[256];
  for (int i = 0; i < 3; i++) {
    snprintf(sql, sizeof(sql),
             "SELECT k, grp FROM ord WHERE id %% 3 = %d ORDER BY k", i);
    in[i] = q(ctx[i], sql);
  }
  pqs_sort_key_t by_k[] = {{0, 0}};
  pqs_merge_opts_t o = {
      .mode = PQS_MERGE_ORDERED, .keys = by_k, .nkeys = 1, .buffer_rows = 100};
  pqs_stream_t *m;
  ck_assert_int_eq(pqs_merge(in, 3, &o, &m), 0);
  got_t g = {.keep = 1};
  run_merged(loop, m, &g);
  ck_assert_int_eq(g.done.status, 0);
  compare_with_server(&g, "SELECT k FROM ord ORDER BY k");
  free(g.keys);
  /* by grp (text, NULLs first when descending), then k descending */
  for (int i = 0; i < 3; i++) {
    snprintf(sql, sizeof(sql),
             "SELECT k, grp FROM ord WHERE id %% 3 = %d ORDER BY grp DESC, "
             "k DESC",
             i);
    in[i] = q(ctx[i], sql);
  }
  pqs_sort_key_t by_grp_k[] = {{1, 1}, {0, 1}};
  o.keys = by_grp_k;
  o.nkeys = 2;
  ck_assert_int_eq(pqs_merge(in, 3, &o, &m), 0);
  got_t g2 = {.keep = 1};
  run_merged(loop, m, &g2);
  ck_assert_int_eq(g2.done.status, 0);
  compare_with_server(&g2, "SELECT k FROM ord ORDER BY grp DESC, k DESC");
  free(g2.keys);
  close_n(loop, ctx, 3);
  pt_loop_free(loop);
}
END_TEST

/* The consumer ends an ordered merge while it emits queued rows (take):
 * once crashed by freeing the queues under the emit loop. */
START_TEST(ordered_stopped_by_consumer) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[2];
  open_n(loop, ctx, 2);
  pqs_stream_t *in[2] = {
      q(ctx[0], "SELECT (2 * generate_series(1, 10000000))::int8"),
      q(ctx[1], "SELECT (2 * generate_series(1, 10000000) + 1)::int8")};
  pqs_sort_key_t key[] = {{0, 0}};
  pqs_merge_opts_t o = {.mode = PQS_MERGE_ORDERED, .keys = key, .nkeys = 1};
  pqs_stream_t *m;
  ck_assert_int_eq(pqs_merge(in, 2, &o, &m), 0);
  ck_assert_int_eq(pqs_stream_take(m, 1000), 0);
  got_t g = {.keep = 1};
  run_merged(loop, m, &g);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_int_eq(g.rows, 1000);
  for (size_t i = 0; i < g.nkeys; i++)
    ck_assert_int_eq(g.keys[i], (int64_t)i + 2);
  free(g.keys);
  assert_idle_and_reusable(loop, ctx, 2);
  close_n(loop, ctx, 2);
  pt_loop_free(loop);
}
END_TEST

/* Numeric keys at their ends: -Infinity, every number, Infinity, NaN, as
 * the server's ORDER BY puts them. An ordered merge of two sorted inputs
 * is not out of order (once a false PQS_EORDER: 123456789012 >
 * Infinity), and comes out in the server's order. */
typedef struct {
  char out[1024];
  size_t len;
  pt_done_t done;
} texts_t;

static int keep_text(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  texts_t *t = data;
  const char *v = pqs_row_text(row, 0, NULL);
  t->len += (size_t)snprintf(t->out + t->len, sizeof(t->out) - t->len, "%s ",
                             v ? v : "NULL");
  return PQS_CONTINUE;
}

static void on_texts_done(pqs_stream_t *s, const pqs_done_t *done,
                          void *data) {
  pt_on_done(s, done, &((texts_t *)data)->done);
}

#define NUMERIC_ENDS(k)                                                        \
  "SELECT x FROM (VALUES ('-Infinity'::numeric), ('-123456789012.5'), "       \
  "('0.000001'), ('123456789012'), ('Infinity'), ('NaN'), (NULL)) v(x) "       \
  "WHERE " k " ORDER BY 1"

START_TEST(ordered_numeric_at_the_ends) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[2];
  open_n(loop, ctx, 2);
  pqs_stream_t *in[2] = {
      q(ctx[0], NUMERIC_ENDS("x IS NULL OR x < 1 OR x = 'Infinity'")),
      q(ctx[1], NUMERIC_ENDS("x >= 1 AND x <> 'Infinity' OR x = 'NaN'"))};
  pqs_sort_key_t key[] = {{0, 0}};
  pqs_merge_opts_t o = {.mode = PQS_MERGE_ORDERED, .keys = key, .nkeys = 1};
  pqs_stream_t *m;
  ck_assert_int_eq(pqs_merge(in, 2, &o, &m), 0);
  texts_t t = {0};
  pqs_stream_cbs_t cbs = {.on_row = keep_text, .on_done = on_texts_done};
  ck_assert_int_eq(pqs_stream_start(m, &cbs, &t), 0);
  while (t.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(t.done.status == 0, "%s", t.done.message);
  ck_assert_str_eq(t.out, "-Infinity -123456789012.5 0.000001 123456789012 "
                          "Infinity NaN NULL ");
  close_n(loop, ctx, 2);
  pt_loop_free(loop);
}
END_TEST

START_TEST(ordered_detects_disorder) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[2];
  open_n(loop, ctx, 2);
  pqs_stream_t *in[2] = {
      q(ctx[0], "SELECT generate_series(1, 100000)::int8"),
      q(ctx[1], "SELECT (1000 - g % 1000)::int8 FROM generate_series(1, "
                "100000) g")};
  pqs_sort_key_t key[] = {{0, 0}};
  pqs_merge_opts_t o = {.mode = PQS_MERGE_ORDERED, .keys = key, .nkeys = 1};
  pqs_stream_t *m;
  ck_assert_int_eq(pqs_merge(in, 2, &o, &m), 0);
  got_t g = {.keep = 1};
  run_merged(loop, m, &g);
  ck_assert_int_eq(g.done.status, PQS_EORDER);
  ck_assert_msg(strncmp(g.done.message, "input 1:", 8) == 0, "message: %s",
                g.done.message);
  for (size_t i = 1; i < g.nkeys; i++) /* what came out was in order */
    ck_assert(g.keys[i - 1] <= g.keys[i]);
  free(g.keys);
  assert_idle_and_reusable(loop, ctx, 2);
  close_n(loop, ctx, 2);
  pt_loop_free(loop);
}
END_TEST

/* ---- gather ---- */

typedef struct {
  int calls;
  pt_done_t done;
  size_t sizes[4];
  int statuses[4];
  int64_t sum;
} gathered_t;

static void on_gathered(pqs_gather_t *gather, pqs_rowset_t **sets, int n,
                        const pqs_done_t *done, void *data) {
  ck_assert_ptr_nonnull(gather);
  gathered_t *g = data;
  g->calls++;
  pt_record(&g->done, done);
  for (int i = 0; i < n; i++) {
    g->sizes[i] = sets[i]->nrows;
    g->statuses[i] = sets[i]->status;
    for (size_t r = 0; r < sets[i]->nrows; r++) {
      int64_t v;
      ck_assert_int_eq(pqs_row_input(sets[i]->rows[r]), i);
      ck_assert_int_eq(pqs_row_int64(sets[i]->rows[r], 0, &v), 0);
      g->sum += v;
    }
    pqs_rowset_free(sets[i]);
  }
}

START_TEST(gather_and_its_cap) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[3];
  open_n(loop, ctx, 3);
  pqs_stream_t *in[3] = {q(ctx[0], "SELECT generate_series(1, 10)::int8"),
                         q(ctx[1], "SELECT generate_series(1, 20)::int8"),
                         q(ctx[2], "SELECT 7::int8 WHERE false")};
  gathered_t g = {0};
  ck_assert_int_eq(pqs_gather(in, 3, NULL, on_gathered, &g), 0);
  while (g.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_int_eq(g.sizes[0], 10);
  ck_assert_int_eq(g.sizes[1], 20);
  ck_assert_int_eq(g.sizes[2], 0);
  ck_assert_int_eq(g.sum, 55 + 210);

  for (int i = 0; i < 3; i++)
    in[i] = q(ctx[i], "SELECT generate_series(1, 100000000)::int8");
  pqs_gather_opts_t cap = {.max_rows = 5000};
  gathered_t c = {0};
  ck_assert_int_eq(pqs_gather(in, 3, &cap, on_gathered, &c), 0);
  while (c.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(c.calls, 1);
  ck_assert_int_eq(c.done.status, PQS_ELIMIT);
  ck_assert_uint_le(c.sizes[0] + c.sizes[1] + c.sizes[2], 5000);
  assert_idle_and_reusable(loop, ctx, 3);
  close_n(loop, ctx, 3);
  pt_loop_free(loop);
}
END_TEST

/* ---- failures ---- */

typedef struct {
  int calls[3];
  int status[3];
} each_t;

static void on_each(pqs_stream_t *merged, int input, const pqs_done_t *done,
                    void *data) {
  ck_assert_ptr_nonnull(merged);
  each_t *e = data;
  e->calls[input]++;
  e->status[input] = done->status;
}

START_TEST(first_failure_cancels_the_others) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[3];
  open_n(loop, ctx, 3);
  pqs_stream_t *in[3] = {
      q(ctx[0], "SELECT generate_series(1, 100000000)::int8"),
      q(ctx[1], "SELECT (1 / (1000 - g))::int8 FROM generate_series(1, "
                "100000) g"),
      q(ctx[2], "SELECT g::int8 FROM generate_series(1, 1000000) g, "
                "pg_sleep(0.001 * (g % 2))")};
  each_t e = {0};
  pqs_merge_opts_t o = {.on_input_done = on_each, .data = &e};
  pqs_stream_t *m;
  ck_assert_int_eq(pqs_merge(in, 3, &o, &m), 0);
  got_t g = {0};
  double t0 = pt_now();
  run_merged(loop, m, &g);
  ck_assert_msg(pt_now() - t0 < 10, "took %.1fs", pt_now() - t0);
  ck_assert_int_eq(g.done.status, PQS_ESQL);
  ck_assert_str_eq(g.done.sqlstate, "22012");
  ck_assert_str_eq(g.done.message, "input 1: division by zero");
  ck_assert_int_eq(g.per_input[1], 999);
  for (int i = 0; i < 3; i++)
    ck_assert_int_eq(e.calls[i], 1);
  ck_assert_int_eq(e.status[0], PQS_ECANCELED);
  ck_assert_int_eq(e.status[1], PQS_ESQL);
  assert_idle_and_reusable(loop, ctx, 3);

  /* keep_going: the others run to their end */
  in[0] = q(ctx[0], "SELECT generate_series(1, 5000)::int8");
  in[1] = q(ctx[1], "SELECT (1 / (10 - g))::int8 FROM generate_series(1, "
                    "100) g");
  in[2] = q(ctx[2], "SELECT generate_series(1, 7000)::int8");
  each_t e2 = {0};
  pqs_merge_opts_t keep = {
      .keep_going = 1, .on_input_done = on_each, .data = &e2};
  ck_assert_int_eq(pqs_merge(in, 3, &keep, &m), 0);
  got_t g2 = {0};
  run_merged(loop, m, &g2);
  ck_assert_int_eq(g2.done.status, PQS_ESQL);
  ck_assert_int_eq(g2.per_input[0], 5000);
  ck_assert_int_eq(g2.per_input[2], 7000);
  ck_assert_int_eq(e2.status[0], 0);
  ck_assert_int_eq(e2.status[1], PQS_ESQL);
  ck_assert_int_eq(e2.status[2], 0);
  close_n(loop, ctx, 3);
  pt_loop_free(loop);
}
END_TEST

/* Closing or pausing the merged stream reaches every input; stages work
 * on it as on any stream. */
START_TEST(merged_stream_controls) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[3];
  open_n(loop, ctx, 3);
  pqs_stream_t *in[3];
  for (int i = 0; i < 3; i++)
    in[i] = q(ctx[i], "SELECT generate_series(1, 100000000)::int8");
  pqs_stream_t *m;
  ck_assert_int_eq(pqs_merge(in, 3, NULL, &m), 0);
  uv_timer_t resume;
  uv_timer_init(loop, &resume);
  got_t g = {.pause_at = 1000, .resume = &resume};
  resume.data = &g;
  ck_assert_int_eq(pqs_stream_take(m, 50000), 0);
  run_merged(loop, m, &g);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_int_eq(g.rows, 50000);
  ck_assert_int_eq(g.rows_while_paused, 0);
  assert_idle_and_reusable(loop, ctx, 3);
  close_n(loop, ctx, 3);
  pt_loop_free(loop);
}
END_TEST

/* ---- 16 inputs from a factory ---- */

typedef struct {
  pqs_ctx_t *ctx[16];
  int got;
} sixteen_t;

static void on_ctx16(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                     void *data) {
  (void)err;
  sixteen_t *x = data;
  ck_assert_int_eq(status, 0);
  x->ctx[x->got++] = ctx;
}

START_TEST(sixteen_from_a_factory) {
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TABLE IF EXISTS big16; CREATE TABLE big16 AS SELECT g "
                "AS id, (g * 31 % 1000)::int8 AS v FROM generate_series(1, "
                "1000000) g");
  uv_loop_t *loop = pt_loop_new();
  pqs_factory_opts_t fo = {
      .conninfo = pt_conninfo(), .max_size = 16, PT_SUITE_OPTS};
  pqs_factory_t *f;
  ck_assert_int_eq(pqs_factory_new(&f, &fo), 0);
  sixteen_t x = {0};
  for (int i = 0; i < 16; i++)
    ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, on_ctx16, &x), 0);
  while (x.got < 16)
    uv_run(loop, UV_RUN_ONCE);
  pqs_stream_t *in[16];
  char sql[128];
  for (int i = 0; i < 16; i++) {
    snprintf(sql, sizeof(sql), "SELECT v FROM big16 WHERE id %% 16 = %d", i);
    in[i] = q(x.ctx[i], sql);
  }
  pqs_stream_t *m;
  ck_assert_int_eq(pqs_merge(in, 16, NULL, &m), 0);
  got_t g = {0};
  run_merged(loop, m, &g);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_int_eq(g.rows, pt_scalar_ll(admin, "SELECT count(*) FROM big16"));
  ck_assert_int_eq(g.sum, pt_scalar_ll(admin, "SELECT sum(v) FROM big16"));
  for (int i = 0; i < 16; i++) {
    ck_assert_int_eq(g.per_input[i], 62500);
    pt_close(loop, x.ctx[i]);
  }
  ck_assert_int_eq(pqs_factory_free(f), 0);
  PQfinish(admin);
  pt_loop_free(loop);
}
END_TEST

/* ---- scatter-gather across two servers ---- */

START_TEST(scatter_gather_two_servers) {
  const char *second = getenv("PQS_TEST_CONNINFO2");
  ck_assert_msg(second != NULL && *second,
                "PQS_TEST_CONNINFO2 is not set: the test command starts a "
                "second server for this test");
  PGconn *one = pt_admin(), *two = PQconnectdb(second);
  ck_assert_int_eq(PQstatus(two), CONNECTION_OK);
  const char *make =
      "DROP TABLE IF EXISTS shard; CREATE TABLE shard AS SELECT g AS k, "
      "md5(g::text) AS payload FROM generate_series(1, 200000) g WHERE g %% "
      "2 = %d";
  char sql[256];
  snprintf(sql, sizeof(sql), make, 1);
  pt_sql(one, sql);
  snprintf(sql, sizeof(sql), make, 0);
  pt_sql(two, sql);
  pt_sql(one, "DROP TABLE IF EXISTS whole; CREATE TABLE whole AS SELECT g "
              "AS k, md5(g::text) AS payload FROM generate_series(1, 200000) "
              "g");
  PQfinish(two);

  uv_loop_t *loop = pt_loop_new();
  pqs_factory_opts_t o1 = {
      .conninfo = pt_conninfo(), .max_size = 2, PT_SUITE_OPTS};
  pqs_factory_opts_t o2 = {.conninfo = second, .max_size = 2, PT_SUITE_OPTS};
  pqs_factory_t *f[2];
  ck_assert_int_eq(pqs_factory_new(&f[0], &o1), 0);
  ck_assert_int_eq(pqs_factory_new(&f[1], &o2), 0);
  sixteen_t x = {0};
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(pqs_factory_open_ctx(f[i], loop, NULL, on_ctx16, &x), 0);
  while (x.got < 2)
    uv_run(loop, UV_RUN_ONCE);
  pqs_stream_t *in[2] = {q(x.ctx[0], "SELECT k::int8 FROM shard ORDER BY k"),
                         q(x.ctx[1], "SELECT k::int8 FROM shard ORDER BY k")};
  pqs_sort_key_t key[] = {{0, 0}};
  pqs_merge_opts_t mo = {.mode = PQS_MERGE_ORDERED, .keys = key, .nkeys = 1};
  pqs_stream_t *m;
  ck_assert_int_eq(pqs_merge(in, 2, &mo, &m), 0);
  got_t g = {.keep = 1};
  run_merged(loop, m, &g);
  ck_assert_int_eq(g.done.status, 0);
  ck_assert_int_eq(g.per_input[0], 100000);
  ck_assert_int_eq(g.per_input[1], 100000);
  compare_with_server(&g, "SELECT k FROM whole ORDER BY k");
  free(g.keys);
  for (int i = 0; i < 2; i++)
    pt_close(loop, x.ctx[i]);
  for (int i = 0; i < 2; i++)
    ck_assert_int_eq(pqs_factory_free(f[i]), 0);
  PQfinish(one);
  pt_loop_free(loop);
}
END_TEST

int main(void) {
  Suite *s = suite_create("merge");
  TCase *tc = tcase_create("merge");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, same_context_refused);
  tcase_add_test(tc, different_columns_refused);
  tcase_add_test(tc, dashboard_in_parallel);
  tcase_add_test(tc, interleave_is_fair);
  tcase_add_test(tc, concat_in_input_order);
  tcase_add_test(tc, ordered_like_order_by);
  tcase_add_test(tc, ordered_stopped_by_consumer);
  tcase_add_test(tc, ordered_detects_disorder);
  tcase_add_test(tc, ordered_numeric_at_the_ends);
  tcase_add_test(tc, gather_and_its_cap);
  tcase_add_test(tc, first_failure_cancels_the_others);
  tcase_add_test(tc, merged_stream_controls);
  tcase_add_test(tc, sixteen_from_a_factory);
  tcase_add_test(tc, scatter_gather_two_servers);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
