/* Partitioned parallel reads: every row exactly once, NULL keys included,
 * as multisets against the unpartitioned query and, ordered, byte for
 * byte against its ORDER BY. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pqs_test.h"

typedef struct {
  char **lines;
  size_t n, cap;
  pt_done_t done;
  int calls, status;
  char message[256];
  pqs_stream_t *merged;
  pqs_factory_t *f; /* the factory the callback was given */
} got_t;

static int keep_line(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  got_t *g = data;
  char line[512];
  size_t len = 0;
  for (int i = 0; i < pqs_row_ncols(row); i++) {
    const char *v = pqs_row_text(row, i, NULL);
    len += (size_t)snprintf(line + len, sizeof(line) - len, "%s%s",
                            i ? "|" : "", v ? v : "\\N");
  }
  if (g->n == g->cap) {
    g->cap = g->cap ? g->cap * 2 : 1024;
    g->lines = realloc(g->lines, g->cap * sizeof(char *));
  }
  g->lines[g->n++] = strdup(line);
  return PQS_CONTINUE;
}

static void on_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  pt_on_done(s, done, &((got_t *)data)->done);
}

static void on_parts(pqs_factory_t *f, int status, const pqs_error_t *err,
                     pqs_stream_t *merged, void *data) {
  got_t *g = data;
  g->f = f;
  g->calls++;
  g->status = status;
  g->merged = merged;
  if (err)
    snprintf(g->message, sizeof(g->message), "%s", err->message);
  if (merged != NULL) {
    pqs_stream_cbs_t cbs = {.on_row = keep_line, .on_done = on_done};
    ck_assert_int_eq(pqs_stream_start(merged, &cbs, g), 0);
  }
}

static void read_parts(uv_loop_t *loop, pqs_factory_t *f, const char *sql,
                       const pqs_partition_opts_t *o, got_t *g) {
  memset(g, 0, sizeof(*g));
  ck_assert_int_eq(pqs_partitioned(f, loop, sql, o, on_parts, g), 0);
  ck_assert_int_eq(g->calls, 0);
  while (g->calls == 0 || (g->merged && g->done.calls == 0))
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(g->calls, 1);
  ck_assert_ptr_eq(g->f, f); /* the callback's object comes first */
}

static void read_plain(uv_loop_t *loop, pqs_factory_t *f, const char *sql,
                       int nparams, const char *const *params, got_t *g) {
  memset(g, 0, sizeof(*g));
  pt_opened_t o = {0};
  ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, pt_on_open, &o), 0);
  while (o.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(o.status, 0);
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_query(o.ctx, &s, sql, nparams, params, NULL), 0);
  pqs_stream_cbs_t cbs = {.on_row = keep_line, .on_done = on_done};
  pt_stream_wait(loop, s, &cbs, g, &g->done);
  ck_assert_msg(g->done.status == 0, "%s: %s", sql, g->done.message);
  pt_close(loop, o.ctx);
}

static int by_text(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void same_multiset(got_t *a, got_t *b) {
  ck_assert_uint_eq(a->n, b->n);
  if (a->n == 0)
    return; /* no lines: nothing to sort (qsort takes no NULL) */
  qsort(a->lines, a->n, sizeof(char *), by_text);
  qsort(b->lines, b->n, sizeof(char *), by_text);
  for (size_t i = 0; i < a->n; i++)
    ck_assert_str_eq(a->lines[i], b->lines[i]);
}

static void same_order(got_t *a, got_t *b) {
  ck_assert_uint_eq(a->n, b->n);
  for (size_t i = 0; i < a->n; i++)
    ck_assert_msg(strcmp(a->lines[i], b->lines[i]) == 0,
                  "row %zu: '%s' against '%s'", i, a->lines[i], b->lines[i]);
}

static void got_free(got_t *g) {
  for (size_t i = 0; i < g->n; i++)
    free(g->lines[i]);
  free(g->lines);
}

/* Contexts still out once their resets are done (bounded wait). */
static unsigned all_back(uv_loop_t *loop, pqs_factory_t *f) {
  pqs_factory_stats_t st;
  double t0 = pt_now();
  do {
    uv_run(loop, UV_RUN_NOWAIT);
    pqs_factory_stats(f, &st);
  } while (st.in_use > 0 && pt_now() - t0 < 5);
  return st.in_use;
}

static pqs_factory_t *factory(void) {
  pqs_factory_opts_t fo = {
      .conninfo = pt_conninfo(), .max_size = 8, PT_SUITE_OPTS};
  pqs_factory_t *f;
  ck_assert_int_eq(pqs_factory_new(&f, &fo), 0);
  return f;
}

static void tables(void) {
  PGconn *admin = pt_admin();
  pt_sql(admin,
         "DROP TABLE IF EXISTS parts; CREATE TABLE parts AS SELECT CASE WHEN "
         "g % 500 = 0 THEN NULL ELSE (g * 7919) % 3001 - 1000 END::int8 AS k, "
         "md5(g::text) AS v, now()::date - (g % 900) AS d, "
         "'2026-01-01'::timestamptz + g * interval '37 minutes' AS ts "
         "FROM generate_series(1, 10000) g;"
         "DROP TABLE IF EXISTS uparts; CREATE TABLE uparts AS SELECT CASE "
         "WHEN g = 777 THEN NULL ELSE g * 3 END::numeric AS k, md5(g::text) "
         "AS v FROM generate_series(1, 5000) g");
  PQfinish(admin);
}

START_TEST(every_row_once) {
  tables();
  uv_loop_t *loop = pt_loop_new();
  pqs_factory_t *f = factory();
  got_t plain, parts;
  read_plain(loop, f, "SELECT k, v FROM parts", 0, NULL, &plain);
  for (int k = 1; k <= 7; k += 3) {
    pqs_partition_opts_t o = {.column = "k", .partitions = k};
    read_parts(loop, f, "SELECT k, v FROM parts;", &o, &parts);
    ck_assert_msg(parts.status == 0 && parts.done.status == 0, "%s %s",
                  parts.message, parts.done.message);
    same_multiset(&parts, &plain);
    got_free(&parts);
  }
  got_free(&plain);
  /* a date key, and a timestamptz key with a range given that is narrower
   * than the data: the rows outside it still come, once */
  read_plain(loop, f, "SELECT d, ts, v FROM parts", 0, NULL, &plain);
  pqs_partition_opts_t od = {.column = "d", .partitions = 4};
  read_parts(loop, f, "SELECT d, ts, v FROM parts", &od, &parts);
  ck_assert_msg(parts.done.status == 0, "%s", parts.message);
  same_multiset(&parts, &plain);
  got_free(&parts);
  pqs_partition_opts_t ot = {.column = "ts",
                             .partitions = 5,
                             .lo = "2026-02-01 00:00+00",
                             .hi = "2026-03-01 00:00+00"};
  read_parts(loop, f, "SELECT d, ts, v FROM parts", &ot, &parts);
  ck_assert_msg(parts.done.status == 0, "%s", parts.message);
  same_multiset(&parts, &plain);
  got_free(&parts);
  got_free(&plain);
  /* the query's own parameters keep their numbers */
  const char *p[] = {"0"};
  read_plain(loop, f, "SELECT k, v FROM parts WHERE k > $1::int8", 1, p,
             &plain);
  pqs_partition_opts_t op = {
      .column = "k", .partitions = 3, .nparams = 1, .params = p};
  read_parts(loop, f, "SELECT k, v FROM parts WHERE k > $1::int8", &op, &parts);
  ck_assert_msg(parts.done.status == 0, "%s", parts.done.message);
  same_multiset(&parts, &plain);
  got_free(&parts);
  got_free(&plain);
  ck_assert_uint_eq(all_back(loop, f), 0); /* every context went back */
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}
END_TEST

START_TEST(ordered_like_order_by) {
  tables();
  uv_loop_t *loop = pt_loop_new();
  pqs_factory_t *f = factory();
  got_t plain, parts;
  read_plain(loop, f, "SELECT k, v FROM uparts ORDER BY k", 0, NULL, &plain);
  pqs_partition_opts_t o = {.column = "k", .partitions = 6, .ordered = 1};
  read_parts(loop, f, "SELECT k, v FROM uparts", &o, &parts);
  ck_assert_msg(parts.done.status == 0, "%s", parts.done.message);
  same_order(&parts, &plain);
  ck_assert_str_eq(parts.lines[parts.n - 1] + 0, plain.lines[plain.n - 1]);
  ck_assert(strncmp(parts.lines[parts.n - 1], "\\N|", 3) == 0); /* last */
  got_free(&parts);
  got_free(&plain);
  /* no rows at all: one range and the NULLs, both empty */
  read_parts(loop, f, "SELECT k, v FROM uparts WHERE false", &o, &parts);
  ck_assert_int_eq(parts.done.status, 0);
  ck_assert_uint_eq(parts.n, 0);
  got_free(&parts);
  /* a key the query does not have: the server's error, contexts back */
  pqs_partition_opts_t bad = {.column = "nope", .partitions = 3};
  read_parts(loop, f, "SELECT k, v FROM uparts", &bad, &parts);
  ck_assert_int_eq(parts.status, PQS_ESQL);
  ck_assert_msg(strstr(parts.message, "nope") != NULL, "%s", parts.message);
  ck_assert_ptr_null(parts.merged);
  pqs_partition_opts_t none = {.column = "k", .partitions = 0};
  ck_assert_int_eq(
      pqs_partitioned(f, loop, "SELECT 1", &none, on_parts, &parts),
      PQS_EINVAL);
  pqs_partition_opts_t half = {.column = "k", .partitions = 2, .lo = "1"};
  ck_assert_int_eq(
      pqs_partitioned(f, loop, "SELECT 1", &half, on_parts, &parts),
      PQS_EINVAL);
  ck_assert_uint_eq(all_back(loop, f), 0);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}
END_TEST

/* Keys at their types' ends (issue 30): the bounds never overflow, an
 * infinity or NaN falls in an open end range, and a table with no rows,
 * one distinct key or only NULL keys still reads every row once; under
 * the default DateStyle and under SQL, DMY (the bounds go back to the
 * server as text in the session's own style). */
static const char *const edge_keys[] = {
    "(-2147483648), (-1), (0), (2147483647), (NULL)) v(k)",
    "('-9223372036854775808'::int8), (0), (9223372036854775807), (NULL)) v(k)",
    "('-32768'::int2), (0::int2), (32767::int2)) v(k)",
    "('-1e300'::numeric), ('1e300'), ('1e-300'), ('NaN'), ('Infinity'), "
    "('-Infinity'), (NULL)) v(k)",
    "('-Infinity'::float8), ('-1.7976931348623157e308'), ('0'), ('5e-324'), "
    "('1.7976931348623157e308'), ('Infinity'), ('NaN')) v(k)",
    "('-Infinity'::float4), ('-3.4028235e38'), ('1e-45'), ('3.4028235e38'), "
    "('Infinity'), ('NaN')) v(k)",
    "('-infinity'::date), ('4713-01-01 BC'), ('2000-01-01'), "
    "('5874897-12-31'), ('infinity'), (NULL)) v(k)",
    "('-infinity'::timestamp), ('4713-01-01 00:00 BC'), ('2000-01-01'), "
    "('294276-12-31 23:59:59.999999'), ('infinity')) v(k)",
    "('-infinity'::timestamptz), ('4713-01-01 00:00+00 BC'), "
    "('2000-01-01 12:00+05:30'), ('294276-12-31 23:59:59+00'), "
    "('infinity')) v(k)",
    "(1::int4)) v(k) WHERE false",
    "(5::int8), (5), (5), (NULL)) v(k)",
    "(NULL::int4), (NULL)) v(k)",
    "('infinity'::date), ('-infinity'), ('infinity')) v(k)",
    "('NaN'::float8), ('NaN')) v(k)",
};

static void edges_under(const char *settings) {
  uv_loop_t *loop = pt_loop_new();
  char conninfo[512];
  snprintf(conninfo, sizeof(conninfo), "%s options='%s'", pt_conninfo(),
           settings);
  pqs_factory_opts_t fo = {.conninfo = conninfo, .max_size = 8, PT_SUITE_OPTS};
  pqs_factory_t *f;
  ck_assert_int_eq(pqs_factory_new(&f, &fo), 0);
  for (size_t c = 0; c < sizeof(edge_keys) / sizeof(*edge_keys); c++) {
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT k, 'x' AS v FROM (VALUES %s",
             edge_keys[c]);
    got_t plain, parts;
    read_plain(loop, f, sql, 0, NULL, &plain);
    for (int k = 2; k <= 5; k += 3) {
      pqs_partition_opts_t o = {.column = "k", .partitions = k};
      read_parts(loop, f, sql, &o, &parts);
      ck_assert_msg(parts.status == 0 && parts.done.status == 0,
                    "%s, %d parts (%s): %s %s", sql, k, settings,
                    parts.message, parts.done.message);
      same_multiset(&parts, &plain);
      got_free(&parts);
    }
    got_free(&plain);
  }
  ck_assert_uint_eq(all_back(loop, f), 0);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}

START_TEST(keys_at_their_ends) {
  edges_under("-c DateStyle=ISO,MDY");
  edges_under("-c DateStyle=SQL,DMY -c TimeZone=America/New_York");
}
END_TEST

int main(void) {
  Suite *s = suite_create("partition");
  TCase *tc = tcase_create("partition");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, every_row_once);
  tcase_add_test(tc, ordered_like_order_by);
  tcase_add_test(tc, keys_at_their_ends);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
