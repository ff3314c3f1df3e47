/* Floats from binary rows written as the server writes them: a binary
 * float4 or float8's text (pqs_row_text, and so every sink) is byte for
 * byte float4out's and float8out's, at every extra_float_digits, on
 * millions of random bit patterns and on the edges (subnormals, -0, NaN,
 * the infinities, the powers of ten and two and their neighbours). And
 * the session's settings are followed as they change: SET, RESET, SET
 * LOCAL to the end of its transaction, DISCARD. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pqs_test.h"

/* Each row: the value in binary, its text from the server. */
typedef struct {
  pt_done_t done;
  uint64_t rows;
  int bad;
  char first[256];
} compared_t;

static int compare_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  compared_t *c = data;
  c->rows++;
  const char *ours, *server;
  int rc = pqs_row_get_text(row, 0, &ours, NULL);
  ck_assert_int_eq(pqs_row_get_text(row, 1, &server, NULL), 0);
  if (rc != 0 || strcmp(ours, server) != 0) {
    if (c->bad++ == 0)
      snprintf(c->first, sizeof(c->first), "server '%s', ours '%s' (rc %d)",
               server, rc ? "" : ours, rc);
  }
  return 0;
}

/* Streams `sql` (a value and its text) in binary on a context opened
 * with extra_float_digits `efd`; every row must agree. */
static uint64_t compare_at(int efd, const char *sql) {
  char conninfo[1024];
  snprintf(conninfo, sizeof(conninfo),
           "%s options='-c extra_float_digits=%d'", pt_conninfo(), efd);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, conninfo);
  pqs_query_opts_t qo = {.result_format = PQS_RESULT_BINARY};
  pqs_stream_t *s = pt_query(ctx, sql, &qo);
  compared_t c = {0};
  pqs_stream_cbs_t cbs = {.on_row = compare_row, .on_done = pt_on_done};
  pt_stream_wait(loop, s, &cbs, &c, &c.done);
  ck_assert_msg(c.done.status == 0, "%s", c.done.message);
  ck_assert_msg(c.bad == 0,
                "extra_float_digits=%d: %d of %llu values differ, first: %s",
                efd, c.bad, (unsigned long long)c.rows, c.first);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  return c.rows;
}

/* Random bit patterns made by the server: a random sign, 52 random bits
 * of significand (random() has 52) and a random exponent, multiplied
 * exactly; below the normal range the product rounds to a subnormal.
 * float4 the same, then rounded to float4 by the cast. */
static const char random_sql[] =
    "SELECT v::%s, v::%s::text FROM ("
    " SELECT (CASE WHEN random() < 0.5 THEN -1 ELSE 1 END)"
    "  * (1 + floor(random() * 4503599627370496) / 4503599627370496)"
    "  * power(2::float8, floor(random() * %d) - %d) AS v"
    " FROM generate_series(1, %d)) r";

static void random_values(int efd, int n) {
  char sql[1024];
  snprintf(sql, sizeof(sql), random_sql, "float8", "float8", 2098, 1074, n);
  ck_assert_int_eq(compare_at(efd, sql), (uint64_t)n);
  snprintf(sql, sizeof(sql), random_sql, "float4", "float4", 276, 149, n / 2);
  ck_assert_int_eq(compare_at(efd, sql), (uint64_t)n / 2);
}

/* The edges: every power of ten the type holds, every power of two and
 * its neighbours (1 - 2^-53 and 1 + 2^-52 are exact factors; 1 - 2^-24
 * and 1 + 2^-23 give float4's), the first thousand subnormals, the largest values,
 * zero and -0, NaN, the infinities; then all of them as float4. */
static const char edges_sql[] =
    "WITH e AS ("
    " SELECT ('1e' || p)::float8 AS v FROM generate_series(-323, 308) p"
    " UNION ALL SELECT power(2::float8, p) * f"
    "  FROM generate_series(-1074, 1023) p,"
    "  unnest(array[1, 1 - 2^(-53), 1 + 2^(-52), 1 - 2^(-24),"
    "  1 + 2^(-23)]::float8[]) f"
    " UNION ALL SELECT k * '4.9406564584124654e-324'::float8"
    "  FROM generate_series(1, 1000) k"
    " UNION ALL SELECT unnest(array['1.7976931348623157e308',"
    "  '2.2250738585072014e-308', '2.225073858507201e-308', '0', '-0',"
    "  'NaN', 'Infinity', '-Infinity', '1e23', '9007199254740993',"
    "  '18014398509481992', '5e-324', '0.1', '0.3', '123456789012345680',"
    "  '3.4028234663852886e38', '1.1754943508222875e-38',"
    "  '1.401298464324817e-45']::float8[])),"
    " n AS (SELECT v FROM e UNION ALL SELECT -v FROM e"
    "  WHERE v IS DISTINCT FROM 'NaN')"
    "SELECT v::%s, v::%s::text FROM n%s";

static void edges(int efd) {
  char sql[2048];
  snprintf(sql, sizeof(sql), edges_sql, "float8", "float8", "");
  ck_assert_uint_gt(compare_at(efd, sql), 20000);
  /* float4's own range: what overflows or underflows float4 is left
   * out (the cast refuses it) */
  snprintf(sql, sizeof(sql), edges_sql, "float4", "float4",
           " WHERE abs(v) BETWEEN 1.401298464324817e-45"
           " AND 3.4028234663852886e38"
           " OR v = 0 OR v = 'NaN' OR abs(v) = 'Infinity'");
  ck_assert_uint_gt(compare_at(efd, sql), 2500);
}

/* Every setting the server accepts, and the default (1). */
static const int every_efd[] = {-15, -14, -12, -10, -9, -8, -6, -5,
                                -4,  -3,  -2,  -1,  0,  1,  2,  3};
#define NEFD (int)(sizeof(every_efd) / sizeof(every_efd[0]))

START_TEST(edges_at_every_setting) { edges(every_efd[_i]); }
END_TEST

/* Millions at the default and at the setting where the most digits are
 * rounded by printf's rules; fewer at the others. A tenth under the
 * sanitizers (tests/CMakeLists.txt says why). */
#ifdef PQS_SANITIZED
#define SCALE 10
#else
#define SCALE 1
#endif
START_TEST(random_at_every_setting) {
  int efd = every_efd[_i];
  random_values(efd, (efd == 1 || efd == 0 ? 2000000 : 100000) / SCALE);
}
END_TEST

/* One binary row's text of column 0. */
typedef struct {
  pt_done_t done;
  char text[256];
} one_t;

static int keep_text(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  one_t *one = data;
  const char *t;
  ck_assert_int_eq(pqs_row_get_text(row, 0, &t, NULL), 0);
  snprintf(one->text, sizeof(one->text), "%s", t);
  return 0;
}

static void expect(uv_loop_t *loop, pqs_ctx_t *ctx, const char *want,
                   const char *after) {
  one_t f = {0}, b = {0};
  pqs_query_opts_t qo = {.result_format = PQS_RESULT_BINARY};
  pqs_stream_cbs_t cbs = {.on_row = keep_text, .on_done = pt_on_done};
  pt_stream_wait(loop, pt_query(ctx, "SELECT 1/3::float8", &qo), &cbs, &f,
                 &f.done);
  pt_stream_wait(loop, pt_query(ctx, "SELECT '\\x5c00'::bytea", &qo), &cbs,
                 &b, &b.done);
  ck_assert_msg(f.done.status == 0 && b.done.status == 0, "%s%s",
                f.done.message, b.done.message);
  char got[600];
  snprintf(got, sizeof(got), "%s %s", f.text, b.text);
  ck_assert_msg(strcmp(got, want) == 0, "after %s: '%s', want '%s'", after,
                got, want);
}

#define DEFAULTS "0.3333333333333333 \\x5c00"
#define ROUNDED "0.333333 \\x5c00"
#define ESCAPED "0.3333333333333333 \\\\\\000"

/* The settings are learned by the first binary result and again after
 * whatever may have changed them, by any way a statement runs. */
START_TEST(settings_followed_as_they_change) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  expect(loop, ctx, DEFAULTS, "opening");
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SET extra_float_digits = -9"), 0);
  expect(loop, ctx, ROUNDED, "SET");
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "RESET extra_float_digits"), 0);
  expect(loop, ctx, DEFAULTS, "RESET");
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "BEGIN; SET LOCAL bytea_output = "
                                           "escape"), 0);
  expect(loop, ctx, ESCAPED, "SET LOCAL");
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "COMMIT"), 0);
  expect(loop, ctx, DEFAULTS, "COMMIT");
  /* Learned inside a block, then a SET in it rolled back. */
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "BEGIN"), 0);
  expect(loop, ctx, DEFAULTS, "BEGIN");
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SET extra_float_digits = -9"), 0);
  expect(loop, ctx, ROUNDED, "SET in a block");
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "ROLLBACK"), 0);
  expect(loop, ctx, DEFAULTS, "ROLLBACK");
  /* Among other statements, then undone by DISCARD ALL. */
  ck_assert_int_eq(
      pt_exec_wait(loop, ctx, "SET bytea_output = escape; SELECT 1"), 0);
  expect(loop, ctx, ESCAPED, "SET among statements");
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "DISCARD ALL"), 0);
  expect(loop, ctx, DEFAULTS, "DISCARD ALL");
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

static Suite *floats_suite(void) {
  Suite *s = suite_create("floats");
  TCase *tc = tcase_create("floats");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, edges_at_every_setting, 0, NEFD);
  tcase_add_loop_test(tc, random_at_every_setting, 0, NEFD);
  tcase_add_test(tc, settings_followed_as_they_change);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return pt_run(floats_suite()); }
