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

static const char *const probes[] = {"a",
                                     "A",
                                     "\"a\"",
                                     "mixedcase",
                                     "MixedCase",
                                     "\"MixedCase\"",
                                     "\"with\"\"quote\"",
                                     "nope",
                                     "\"unclosed",
                                     "\"MixedCase\"x",
                                     ""};
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

/* ---- the newer getters against the server's own conversions ---- */

typedef void (*row_check_fn)(const pqs_row_t *row, void *arg);

typedef struct {
  row_check_fn fn;
  void *arg;
  int rows;
  pt_done_t done;
} checked_t;

static int check_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  checked_t *c = data;
  c->fn(row, c->arg);
  c->rows++;
  return PQS_CONTINUE;
}

static void check_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  pt_on_done(s, done, &((checked_t *)data)->done);
}

/* Runs `sql` on ctx and `fn` on each row; the number of rows. */
static int each_row(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                    row_check_fn fn, void *arg) {
  checked_t c = {.fn = fn, .arg = arg};
  pqs_stream_t *s = pt_query(ctx, sql, NULL);
  pqs_stream_cbs_t cbs = {.on_row = check_row, .on_done = check_done};
  pt_stream_wait(loop, s, &cbs, &c, &c.done);
  ck_assert_msg(c.done.status == 0, "%s: %s", sql, c.done.message);
  return c.rows;
}

/* Column 0 a date/time value, column 1 the server's microseconds since
 * the epoch (NULL for the infinities), column 2 its text. */
static void check_time(const pqs_row_t *row, void *arg) {
  (void)arg;
  int64_t got, want;
  const char *text = pqs_row_text(row, 2, NULL);
  ck_assert_msg(pqs_row_timestamp_us(row, 0, &got) == 0, "%s", text);
  if (pqs_row_is_null(row, 1)) {
    want = text[0] == '-' ? INT64_MIN : INT64_MAX;
  } else {
    ck_assert_int_eq(pqs_row_int64(row, 1, &want), 0);
  }
  ck_assert_msg(got == want, "%s: got %lld, the server says %lld", text,
                (long long)got, (long long)want);
}

static void expect_erange(const pqs_row_t *row, void *arg) {
  (void)arg;
  int64_t us;
  ck_assert_int_eq(pqs_row_timestamp_us(row, 0, &us), PQS_ERANGE);
}

START_TEST(times_as_the_server_counts) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  static const char *const timestamps[] = {
      "1970-01-01",
      "2026-11-24 04:05:06.789",
      "1969-12-31 23:59:59.999999",
      "0001-01-01 BC",
      "4713-01-01 00:00:00 BC",
      "2000-02-29 12:00",
      "1900-03-01",
      "294000-12-31 23:59:59.999999",
      "2016-12-31 23:59:60", /* a leap second: the server makes it 00:00 */
      "infinity",
      "-infinity"};
  char sql[4096];
  int n = 0;
  for (int type = 0; type < 3; type++) {
    const char *cast = type == 0   ? "timestamp"
                       : type == 1 ? "timestamptz"
                                   : "date";
    int len = snprintf(sql, sizeof(sql),
                       "SELECT v, CASE WHEN isfinite(v) THEN (extract(epoch "
                       "FROM v%s) * 1000000)::int8 END, v::text FROM (VALUES ",
                       type == 2 ? "::timestamp" : "");
    for (size_t i = 0; i < sizeof(timestamps) / sizeof(*timestamps); i++) {
      if (type == 2 && strstr(timestamps[i], "294000")) /* as a date: fine, */
        continue; /* but the test's ::int8 of it would overflow */
      len += snprintf(sql + len, sizeof(sql) - len, "%s('%s'::%s)",
                      i ? ", " : "", timestamps[i], cast);
    }
    snprintf(sql + len, sizeof(sql) - len, ") t(v)");
    n += each_row(loop, ctx, sql, check_time, NULL);
  }
  /* offsets of every shape the server writes: +05:30, -03, and seconds
   * (local mean time before time zones) */
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SET TimeZone = 'Asia/Kolkata'"), 0);
  n += each_row(loop, ctx,
                "SELECT v, (extract(epoch FROM v) * 1000000)::int8, v::text "
                "FROM (VALUES ('2026-11-24 04:05:06.123456+05:30'::"
                "timestamptz), ('1850-01-01 00:00'::timestamptz)) t(v)",
                check_time, NULL);
  ck_assert_int_eq(
      pt_exec_wait(loop, ctx, "SET TimeZone = 'America/Sao_Paulo'"), 0);
  n += each_row(loop, ctx,
                "SELECT v, (extract(epoch FROM v) * 1000000)::int8, v::text "
                "FROM (VALUES ('2026-06-01 12:00'::timestamptz), "
                "('1900-01-01 00:00'::timestamptz), ('0044-03-15 BC'::"
                "timestamptz)) t(v)",
                check_time, NULL);
  ck_assert_int_ge(n, 35);
  /* the server's last timestamp is 294276 AD counted from 2000: from 1970
   * it is past int64 microseconds, and the getter says so */
  ck_assert_int_eq(each_row(loop, ctx,
                            "SELECT '294276-12-31 23:59:59.999999'::timestamp",
                            expect_erange, NULL),
                   1);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Text rows in other styles are refused; binary rows know no styles and
 * read the right value whatever the session says. */
static void expect_eformat(const pqs_row_t *row, void *arg) {
  (void)arg;
  int64_t us;
  pqs_interval_t iv;
  if (pqs_row_is_binary(row)) {
    if (pqs_row_type(row, 0) == PQS_OID_INTERVAL) {
      ck_assert_int_eq(pqs_row_interval(row, 0, &iv), 0);
      ck_assert_int_eq(iv.months, 12);
      ck_assert_int_eq(iv.days, 2);
      return;
    }
    ck_assert_int_eq(pqs_row_timestamp_us(row, 0, &us), 0);
    ck_assert(us == INT64_C(1795493106000000) || us == INT64_C(1795478400000000));
    return;
  }
  if (pqs_row_type(row, 0) == PQS_OID_INTERVAL)
    ck_assert_int_eq(pqs_row_interval(row, 0, &iv), PQS_EFORMAT);
  else
    ck_assert_int_eq(pqs_row_timestamp_us(row, 0, &us), PQS_EFORMAT);
}

START_TEST(other_styles_refused) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  const char *styles[] = {"SQL, DMY", "SQL, MDY", "German", "Postgres"};
  for (int i = 0; i < 4; i++) {
    char set[64];
    snprintf(set, sizeof(set), "SET DateStyle = '%s'", styles[i]);
    ck_assert_int_eq(pt_exec_wait(loop, ctx, set), 0);
    ck_assert_int_eq(each_row(loop, ctx,
                              "SELECT '2026-11-24 04:05:06'::timestamp "
                              "UNION ALL SELECT '2026-11-24'::date",
                              expect_eformat, NULL),
                     2);
  }
  /* ISO in either day order reads the same */
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SET DateStyle = 'ISO, DMY'"), 0);
  ck_assert_int_eq(each_row(loop, ctx,
                            "SELECT v, (extract(epoch FROM v) * 1000000)::"
                            "int8, v::text FROM (VALUES ('2026-11-24 04:05'"
                            "::timestamp)) t(v)",
                            check_time, NULL),
                   1);
  ck_assert_int_eq(
      pt_exec_wait(loop, ctx, "SET IntervalStyle = 'sql_standard'"), 0);
  ck_assert_int_eq(each_row(loop, ctx, "SELECT '1 year 2 days'::interval",
                            expect_eformat, NULL),
                   1);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Column 0 an interval; 1, 2, 3 the server's months, days, usec. */
static void check_interval(const pqs_row_t *row, void *arg) {
  (void)arg;
  pqs_interval_t iv;
  const char *text = pqs_row_text(row, 0, NULL);
  ck_assert_msg(pqs_row_interval(row, 0, &iv) == 0, "'%s'", text);
  int32_t months, days;
  int64_t usec;
  ck_assert_int_eq(pqs_row_int32(row, 1, &months), 0);
  ck_assert_int_eq(pqs_row_int32(row, 2, &days), 0);
  ck_assert_int_eq(pqs_row_int64(row, 3, &usec), 0);
  ck_assert_msg(iv.months == months && iv.days == days && iv.usec == usec,
                "'%s': got %d %d %lld, the server says %d %d %lld", text,
                iv.months, iv.days, (long long)iv.usec, months, days,
                (long long)usec);
}

START_TEST(intervals_as_the_server_keeps_them) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  const char *sql =
      "SELECT v, (extract(year FROM v) * 12 + extract(month FROM v))::int, "
      "extract(day FROM v)::int, (extract(hour FROM v) * 3600000000 + "
      "extract(minute FROM v) * 60000000 + extract(microseconds FROM v))::"
      "int8 FROM (VALUES ('1 year 2 mons 3 days 04:05:06.789'::interval), "
      "('-1 years -2 mons +3 days -04:05:06'), ('1 mon -2 days 03:00'), "
      "('0'), ('178000000 years'), ('-00:00:00.000001'), ('100:00:00'), "
      "('-2147483648 days'), ('1 day 1.5 seconds'), ('-1 mons')) t(v)";
  ck_assert_int_eq(each_row(loop, ctx, sql, check_interval, NULL), 10);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SET IntervalStyle = 'iso_8601'"),
                   0);
  ck_assert_int_eq(each_row(loop, ctx, sql, check_interval, NULL), 10);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Column 0 a uuid, column 1 the server's bytes of it in hex. */
static void check_uuid(const pqs_row_t *row, void *arg) {
  (void)arg;
  uint8_t b[16];
  ck_assert_int_eq(pqs_row_uuid(row, 0, b), 0);
  char hex[33];
  for (int i = 0; i < 16; i++)
    snprintf(hex + 2 * i, 3, "%02x", b[i]);
  ck_assert_str_eq(hex, pqs_row_text(row, 1, NULL));
}

/* Column 0 a numeric; 1 its text; 2 the server's float8 of it (NULL where
 * the server's cast fails: the getter must say PQS_ERANGE). */
static void check_numeric(const pqs_row_t *row, void *arg) {
  (void)arg;
  const char *dec;
  size_t len;
  ck_assert_int_eq(pqs_row_decimal(row, 0, &dec, &len), 0);
  ck_assert_str_eq(dec, pqs_row_text(row, 1, NULL));
  ck_assert_uint_eq(len, strlen(dec));
  double got;
  int rc = pqs_row_numeric_double(row, 0, &got);
  if (pqs_row_is_null(row, 2)) {
    ck_assert_msg(rc == PQS_ERANGE, "%.40s...: %s", dec, pqs_err_name(rc));
    return;
  }
  ck_assert_int_eq(rc, 0);
  double want = strtod(pqs_row_text(row, 2, NULL), NULL);
  ck_assert_msg((isnan(got) && isnan(want)) || got == want,
                "%.40s: got %.17g, the server says %.17g", dec, got, want);
}

START_TEST(uuids_and_numerics) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  ck_assert_int_eq(
      each_row(loop, ctx,
               "SELECT v, encode(uuid_send(v), 'hex') FROM (VALUES "
               "('00000000-0000-0000-0000-000000000000'::uuid), "
               "('ffffffff-ffff-ffff-ffff-ffffffffffff'), "
               "('A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'), "
               "(gen_random_uuid())) t(v)",
               check_uuid, NULL),
      4);
  /* the server's float8 of each, NULL where its cast fails */
  PGconn *admin = pt_admin();
  pt_sql(admin,
         "CREATE OR REPLACE FUNCTION pg_temp_f8(n numeric) RETURNS text "
         "LANGUAGE plpgsql AS $$ BEGIN RETURN n::float8::text; EXCEPTION "
         "WHEN numeric_value_out_of_range THEN RETURN NULL; END $$");
  PQfinish(admin);
  ck_assert_int_eq(
      each_row(loop, ctx,
               "SELECT v, v::text, pg_temp_f8(v) FROM (VALUES (0::numeric), "
               "(-12345678901234567890.000001), ('NaN'), ('Infinity'), "
               "('-Infinity'), (1e-20), (0.1), (1.5e300), "
               "(repeat('9', 1000)::numeric), ('1e-400'::numeric), "
               "(2.2250738585072011e-308), (4.9e-324), "
               "(123456789012345678901234567890.123456789)) t(v)",
               check_numeric, NULL),
      13);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Column 0 an int4 array; 1 and 2 the server's lower bound and length
 * of it. Any bound the server allows, INT_MIN included, in text and
 * binary rows. */
static void check_bounds(const pqs_row_t *row, void *arg) {
  (void)arg;
  pqs_array_t a;
  int32_t lower, len;
  ck_assert_int_eq(pqs_row_int32(row, 1, &lower), 0);
  ck_assert_int_eq(pqs_row_int32(row, 2, &len), 0);
  ck_assert_msg(pqs_row_array(row, 0, &a) == 0, "%s",
                pqs_row_text(row, 0, NULL) ? pqs_row_text(row, 0, NULL)
                                           : "(binary)");
  ck_assert_int_eq(a.lower, lower);
  ck_assert_int_eq(a.len, len);
  const pqs_row_t *e;
  int n = 0, rc;
  while ((rc = pqs_array_next(&a, &e)) == 1)
    n++;
  ck_assert_int_eq(rc, 0);
  ck_assert_int_eq(n, len);
}

/* Column 0 a bytea; 1 its bytes in hex, as the server encodes them: the
 * getter reads hex and escape output alike. */
static void check_bytes(const pqs_row_t *row, void *arg) {
  (void)arg;
  unsigned char buf[64];
  size_t len;
  ck_assert_int_eq(pqs_row_bytea(row, 0, NULL, 0, &len), PQS_ERANGE);
  ck_assert_int_eq(pqs_row_bytea(row, 0, buf, sizeof(buf), &len), 0);
  char hex[129] = "";
  for (size_t i = 0; i < len; i++)
    snprintf(hex + 2 * i, 3, "%02x", buf[i]);
  ck_assert_str_eq(hex, pqs_row_text(row, 1, NULL));
}

START_TEST(arrays_and_bytes_at_their_ends) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  ck_assert_int_eq(
      each_row(loop, ctx,
               "SELECT v, array_lower(v, 1), array_length(v, 1) FROM (VALUES "
               "('[-2147483648:-2147483647]={1,2}'::int4[]), "
               "('[2147483640:2147483642]={1,NULL,3}'), ('[-5:-5]={7}'), "
               "('{4,5}')) t(v)",
               check_bounds, NULL),
      4);
  const char *bytes = "SELECT v, encode(v, 'hex') FROM (VALUES "
                      "('\\x00ff415c27'::bytea), (''), ('\\x5c5c'), "
                      "('\\x0a0d0920227e7f80')) t(v)";
  ck_assert_int_eq(each_row(loop, ctx, bytes, check_bytes, NULL), 4);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SET bytea_output = escape"), 0);
  ck_assert_int_eq(each_row(loop, ctx, bytes, check_bytes, NULL), 4);
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
  tcase_add_test(tc, times_as_the_server_counts);
  tcase_add_test(tc, other_styles_refused);
  tcase_add_test(tc, intervals_as_the_server_keeps_them);
  tcase_add_test(tc, uuids_and_numerics);
  tcase_add_test(tc, arrays_and_bytes_at_their_ends);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
