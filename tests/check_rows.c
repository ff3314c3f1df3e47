/* Rows: every kind of value through the text and typed getters, over
 * rows borrowed from libpq and over owned copies from pqs_row_dup. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pqs_test.h"

#define TEN_MB (10 * 1024 * 1024)

static const char *values_sql =
    "SELECT NULL::text AS n, ''::text AS empty, "
    "'héllo wörld ✓ 日本語'::text AS utf8, repeat('a', 10485760) AS big, "
    "'\\x00ff0041'::bytea AS bin, "
    "(-9223372036854775807 - 1)::int8 AS i8min, "
    "9223372036854775807::int8 AS i8max, "
    "'NaN'::float8 AS nan, 'Infinity'::float8 AS inf, "
    "'-Infinity'::float8 AS ninf, (-32768)::int2 AS i2, "
    "2147483647::int4 AS i4, true AS yes, 1.5::float4 AS f4, "
    "0.1::float8 AS f8, 40000::int8 AS mid, 9007199254740993::int8 AS big53";

enum {
  C_NULL,
  C_EMPTY,
  C_UTF8,
  C_BIG,
  C_BIN,
  C_I8MIN,
  C_I8MAX,
  C_NAN,
  C_INF,
  C_NINF,
  C_I2,
  C_I4,
  C_BOOL,
  C_F4,
  C_F8,
  C_MID,
  C_BIG53,
  NCOLS
};

/* Every assertion on one row, whichever kind of row it is. */
static void check_values(const pqs_row_t *row) {
  ck_assert_int_eq(pqs_row_ncols(row), NCOLS);
  ck_assert_str_eq(pqs_row_name(row, C_UTF8), "utf8");
  ck_assert_ptr_null(pqs_row_name(row, NCOLS));
  ck_assert_ptr_null(pqs_row_name(row, -1));
  ck_assert_uint_eq(pqs_row_type(row, C_I8MAX), 20);
  ck_assert_uint_eq(pqs_row_type(row, NCOLS), 0);

  size_t len = 99;
  ck_assert_int_eq(pqs_row_is_null(row, C_NULL), 1);
  ck_assert_ptr_null(pqs_row_text(row, C_NULL, &len));
  ck_assert_uint_eq(len, 0);
  ck_assert_int_eq(pqs_row_is_null(row, C_EMPTY), 0);
  ck_assert_str_eq(pqs_row_text(row, C_EMPTY, &len), "");
  ck_assert_uint_eq(len, 0);
  ck_assert_str_eq(pqs_row_text(row, C_UTF8, &len), "héllo wörld ✓ 日本語");
  ck_assert_uint_eq(len, strlen("héllo wörld ✓ 日本語"));
  const char *big = pqs_row_text(row, C_BIG, &len);
  ck_assert_uint_eq(len, TEN_MB);
  ck_assert_int_eq(big[0], 'a');
  ck_assert_int_eq(big[TEN_MB - 1], 'a');
  ck_assert_int_eq(big[TEN_MB], '\0');
  ck_assert_int_eq(pqs_row_is_null(row, NCOLS), PQS_EINVAL);
  ck_assert_ptr_null(pqs_row_text(row, NCOLS, NULL));

  unsigned char bin[8];
  ck_assert_int_eq(pqs_row_bytea(row, C_BIN, NULL, 0, &len), PQS_ERANGE);
  ck_assert_uint_eq(len, 4);
  ck_assert_int_eq(pqs_row_bytea(row, C_BIN, bin, 3, &len), PQS_ERANGE);
  ck_assert_int_eq(pqs_row_bytea(row, C_BIN, bin, sizeof(bin), &len), 0);
  ck_assert_uint_eq(len, 4);
  ck_assert_mem_eq(bin, "\x00\xff\x00\x41", 4);
  ck_assert_int_eq(pqs_row_bytea(row, C_UTF8, bin, sizeof(bin), &len),
                   PQS_ETYPE);

  int64_t i64;
  ck_assert_int_eq(pqs_row_int64(row, C_I8MIN, &i64), 0);
  ck_assert(i64 == INT64_MIN);
  ck_assert_int_eq(pqs_row_int64(row, C_I8MAX, &i64), 0);
  ck_assert(i64 == INT64_MAX);
  ck_assert_int_eq(pqs_row_int64(row, C_I2, &i64), 0);
  ck_assert_int_eq(i64, -32768);
  ck_assert_int_eq(pqs_row_int64(row, C_UTF8, &i64), PQS_ETYPE);
  ck_assert_int_eq(pqs_row_int64(row, C_NULL, &i64), PQS_ETYPE);
  ck_assert_int_eq(pqs_row_int64(row, NCOLS, &i64), PQS_EINVAL);
  ck_assert_int_eq(pqs_row_int64(row, C_I2, NULL), PQS_EINVAL);

  int32_t i32 = 7;
  ck_assert_int_eq(pqs_row_int32(row, C_I4, &i32), 0);
  ck_assert_int_eq(i32, INT32_MAX);
  ck_assert_int_eq(pqs_row_int32(row, C_MID, &i32), 0);
  ck_assert_int_eq(i32, 40000);
  i32 = 7;
  ck_assert_int_eq(pqs_row_int32(row, C_I8MAX, &i32), PQS_ERANGE);
  ck_assert_int_eq(i32, 7); /* untouched */
  ck_assert_int_eq(pqs_row_int32(row, C_F8, &i32), PQS_ETYPE);

  int16_t i16;
  ck_assert_int_eq(pqs_row_int16(row, C_I2, &i16), 0);
  ck_assert_int_eq(i16, INT16_MIN);
  ck_assert_int_eq(pqs_row_int16(row, C_MID, &i16), PQS_ERANGE);
  ck_assert_int_eq(pqs_row_int16(row, C_I4, &i16), PQS_ERANGE);

  double d;
  ck_assert_int_eq(pqs_row_double(row, C_NAN, &d), 0);
  ck_assert(isnan(d));
  ck_assert_int_eq(pqs_row_double(row, C_INF, &d), 0);
  ck_assert(isinf(d) && d > 0);
  ck_assert_int_eq(pqs_row_double(row, C_NINF, &d), 0);
  ck_assert(isinf(d) && d < 0);
  ck_assert_int_eq(pqs_row_double(row, C_F4, &d), 0);
  ck_assert(d == 1.5);
  ck_assert_int_eq(pqs_row_double(row, C_F8, &d), 0);
  ck_assert(d == 0.1);
  ck_assert_int_eq(pqs_row_double(row, C_MID, &d), 0);
  ck_assert(d == 40000.0);
  ck_assert_int_eq(pqs_row_double(row, C_BIG53, &d), PQS_ERANGE);
  ck_assert_int_eq(pqs_row_double(row, C_BOOL, &d), PQS_ETYPE);

  int b = -1;
  ck_assert_int_eq(pqs_row_bool(row, C_BOOL, &b), 0);
  ck_assert_int_eq(b, 1);
  ck_assert_int_eq(pqs_row_bool(row, C_I4, &b), PQS_ETYPE);
}

typedef struct {
  pt_done_t done;
  pqs_row_t *copy;
  int rows;
} keep_t;

static int keep_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  keep_t *k = data;
  k->rows++;
  check_values(row); /* the borrowed view over libpq's result */
  k->copy = pqs_row_dup(row);
  ck_assert_ptr_nonnull(k->copy);
  return PQS_CONTINUE;
}

static void keep_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)s;
  pt_record(&((keep_t *)data)->done, done);
}

static keep_t run_values(uv_loop_t *loop, pqs_ctx_t *ctx) {
  keep_t k = {0};
  pqs_stream_cbs_t cbs = {.on_row = keep_row, .on_done = keep_done};
  pt_stream_wait(loop, pt_query(ctx, values_sql, NULL), &cbs, &k, &k.done);
  ck_assert_msg(k.done.status == 0, "%s", k.done.message);
  ck_assert_int_eq(k.rows, 1);
  return k;
}

START_TEST(values_and_getters) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  keep_t k = run_values(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  /* The owned copy outlives the stream, the context and the loop. */
  check_values(k.copy);
  pqs_row_t *again = pqs_row_dup(k.copy);
  pqs_row_free(k.copy);
  check_values(again);
  pqs_row_free(again);
  pqs_row_free(NULL);
}
END_TEST

/* NULL in a typed getter is ENULL when the type matches. */
typedef struct {
  pt_done_t done;
  int rc64, rc_bool, rc_bytea, rc_double;
} nulls_t;

static int null_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  nulls_t *n = data;
  int64_t v = 5;
  int b;
  double d;
  size_t len;
  n->rc64 = pqs_row_int64(row, 0, &v);
  ck_assert_int_eq(v, 5);
  n->rc_bool = pqs_row_bool(row, 1, &b);
  n->rc_bytea = pqs_row_bytea(row, 2, NULL, 0, &len);
  n->rc_double = pqs_row_double(row, 3, &d);
  return PQS_CONTINUE;
}

static void null_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)s;
  pt_record(&((nulls_t *)data)->done, done);
}

/* Columns by name, with PQfnumber's own answers as the reference. */
typedef struct {
  pt_done_t done;
  int got[16];
} named_t;

static const char *const probes[] = {
    "a",           "A",          "\"a\"",         "mixedcase",
    "MixedCase",   "\"MixedCase\"", "\"with\"\"quote\"", "nope",
    "\"unclosed", "\"MixedCase\"x", ""};
#define NPROBES (int)(sizeof(probes) / sizeof(probes[0]))
static const char *named_sql =
    "SELECT 1 AS a, 2 AS \"MixedCase\", 3 AS \"with\"\"quote\"";

static int named_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  named_t *n = data;
  for (int i = 0; i < NPROBES; i++)
    n->got[i] = pqs_row_col(row, probes[i]);
  return PQS_CONTINUE;
}

static void named_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  pt_on_done(s, done, &((named_t *)data)->done);
}

START_TEST(columns_by_name) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  named_t n = {0};
  pqs_stream_cbs_t cbs = {.on_row = named_row, .on_done = named_done};
  pt_stream_wait(loop, pt_query(ctx, named_sql, NULL), &cbs, &n, &n.done);
  ck_assert_int_eq(n.done.status, 0);
  PGconn *admin = pt_admin();
  PGresult *res = PQexec(admin, named_sql);
  for (int i = 0; i < NPROBES; i++)
    ck_assert_msg(n.got[i] == PQfnumber(res, probes[i]),
                  "%s: pqs_row_col %d, PQfnumber %d", probes[i], n.got[i],
                  PQfnumber(res, probes[i]));
  ck_assert_int_eq(n.got[1], 0); /* folded */
  ck_assert_int_eq(n.got[5], 1); /* quoted */
  ck_assert_int_eq(n.got[6], 2);
  PQclear(res);
  PQfinish(admin);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  ck_assert_uint_eq(pqs_version(), (PQS_VERSION_MAJOR << 16) |
                                       (PQS_VERSION_MINOR << 8) |
                                       PQS_VERSION_PATCH);
  ck_assert_str_eq(pqs_version_string(), PQS_VERSION_STRING);
  ck_assert_int_eq(PQS_OID_INT4, 23);
}
END_TEST

START_TEST(typed_nulls) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  nulls_t n = {0};
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s,
                             "SELECT NULL::int8, NULL::bool, NULL::bytea, "
                             "NULL::float8",
                             0, NULL, NULL),
                   0);
  pqs_stream_cbs_t cbs = {.on_row = null_row, .on_done = null_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &n), 0);
  while (n.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(n.done.status, 0);
  ck_assert_int_eq(n.rc64, PQS_ENULL);
  ck_assert_int_eq(n.rc_bool, PQS_ENULL);
  ck_assert_int_eq(n.rc_bytea, PQS_ENULL);
  ck_assert_int_eq(n.rc_double, PQS_ENULL);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

int main(void) {
  Suite *s = suite_create("rows");
  TCase *tc = tcase_create("rows");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, values_and_getters);
  tcase_add_test(tc, typed_nulls);
  tcase_add_test(tc, columns_by_name);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
