/* Typed getters beyond the numbers: decimals, times, uuids, intervals,
 * read from the server's text output, exactly or not at all. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "binary.h"
#include "row_int.h"

#define USEC_PER_SEC INT64_C(1000000)
#define USEC_PER_DAY (86400 * USEC_PER_SEC)

/* ---- numeric ---- */

static const uint32_t decimals[] = {PQS_OID_NUMERIC, PQS_OID_INT2, PQS_OID_INT4,
                                    PQS_OID_INT8};

int pqs_row_decimal(const pqs_row_t *row, int col, const char **text,
                    size_t *len) {
  const char *t;
  int rc = pqs__row_typed(row, col, text, decimals, 4, &t, NULL);
  return rc ? rc : pqs_row_get_text(row, col, text, len);
}

int pqs_row_numeric_double(const pqs_row_t *row, int col, double *out) {
  static const uint32_t ok[] = {PQS_OID_NUMERIC, PQS_OID_FLOAT4, PQS_OID_FLOAT8,
                                PQS_OID_INT2,    PQS_OID_INT4,   PQS_OID_INT8};
  const char *t;
  size_t n;
  uint32_t type = pqs_row_type(row, col);
  int rc = pqs__row_typed(row, col, out, ok, 6, &t, &n);
  if (rc != 0)
    return rc;
  if (pqs__row_binary(row) && type != PQS_OID_NUMERIC) {
    int64_t v;
    double d;
    if (type == PQS_OID_FLOAT4 || type == PQS_OID_FLOAT8)
      rc = pqs__binary_double(type, t, n, &d);
    else if ((rc = pqs__binary_int(type, t, n, &v)) == 0)
      d = (double)v; /* rounded to nearest, as strtod rounds its text */
    if (rc == 0)
      *out = d;
    return rc;
  }
  /* A binary numeric reads as the server's cast does: through its text. */
  if (pqs__row_binary(row) && (rc = pqs_row_get_text(row, col, &t, NULL)) != 0)
    return rc;
  char *end;
  errno = 0;
  /* A float4's text is the shortest that reads back as that float: read
   * as a float, or the double would differ from the value in binary. */
  double v = type == PQS_OID_FLOAT4 ? strtof(t, &end) : strtod(t, &end);
  if (end == t || *end != '\0')
    return PQS_EFORMAT;
  /* As the server's cast: a finite number beyond a double, or one so
   * small that it becomes 0, is out of range; a subnormal is kept. */
  if ((isinf(v) && strstr(t, "Infinity") == NULL) ||
      (errno == ERANGE && v == 0))
    return PQS_ERANGE;
  *out = v;
  return 0;
}

int pqs_row_numeric_int64(const pqs_row_t *row, int col, int64_t *out) {
  const char *t;
  int rc = pqs_row_decimal(row, col, &t, NULL);
  if (rc != 0)
    return rc;
  if (out == NULL)
    return PQS_EINVAL;
  const char *p = t + (*t == '-');
  if (*p < '0' || *p > '9')
    return PQS_ERANGE; /* NaN, Infinity */
  /* Accumulated negative: INT64_MIN has no positive twin. */
  int64_t v = 0;
  for (; *p >= '0' && *p <= '9'; p++)
    if (__builtin_mul_overflow(v, 10, &v) ||
        __builtin_sub_overflow(v, *p - '0', &v))
      return PQS_ERANGE;
  if (*p == '.')
    for (p++; *p == '0'; p++)
      ;
  if (*p != '\0')
    return *p >= '0' && *p <= '9' ? PQS_ERANGE : PQS_EFORMAT; /* a fraction */
  if (*t != '-' && v == INT64_MIN)
    return PQS_ERANGE;
  *out = *t == '-' ? v : -v;
  return 0;
}

/* ---- dates and times ---- */

/* Reads exactly `n` digits (n > 0) or, when n is 0, one or more. */
static int digits(const char **p, int n, int64_t *v) {
  const char *s = *p;
  int64_t x = 0;
  int count = 0;
  while (isdigit((unsigned char)*s) && (n == 0 || count < n)) {
    if (x > INT64_MAX / 10 - 10)
      return -1;
    x = x * 10 + (*s++ - '0');
    count++;
  }
  if (count == 0 || (n > 0 && count != n))
    return -1;
  *p = s;
  *v = x;
  return 0;
}

/* Days from 1970-01-01 to year-month-day of the proleptic Gregorian
 * calendar, for any astronomical year (1 BC is 0): whole 400-year eras
 * (146097 days each) from 0000-03-01, then the day within the era, with
 * the year taken to begin in March so that the leap day comes last. */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400; /* 0 .. 399 */
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy; /* 0 .. 146096 */
  return era * 146097 + doe - 719468; /* 719468: 0000-03-01 to 1970 */
}

/* "[+-]HH[:MM[:SS]]": the offset in seconds east of UTC. */
static int tz_offset(const char **p, int64_t *secs) {
  int sign = **p == '-' ? -1 : 1;
  int64_t h, m = 0, s = 0;
  (*p)++;
  if (digits(p, 2, &h) != 0)
    return -1;
  if (**p == ':' && (++*p, digits(p, 2, &m) != 0))
    return -1;
  if (**p == ':' && (++*p, digits(p, 2, &s) != 0))
    return -1;
  *secs = sign * (h * 3600 + m * 60 + s);
  return 0;
}

/* ISO "Y-MM-DD[ HH:MM:SS[.ffffff][offset]][ BC]" into microseconds. */
static int parse_iso(const char *t, uint32_t type, int64_t *out) {
  const char *p = t;
  int64_t y, mo, d, h = 0, mi = 0, s = 0, frac = 0, off = 0;
  if (digits(&p, 0, &y) != 0 || *p++ != '-' || digits(&p, 2, &mo) != 0 ||
      *p++ != '-' || digits(&p, 2, &d) != 0 || mo < 1 || mo > 12 || d < 1 ||
      d > 31)
    return PQS_EFORMAT;
  if (type != PQS_OID_DATE) {
    if (*p++ != ' ' || digits(&p, 2, &h) != 0 || *p++ != ':' ||
        digits(&p, 2, &mi) != 0 || *p++ != ':' || digits(&p, 2, &s) != 0)
      return PQS_EFORMAT;
    if (*p == '.') {
      p++;
      int n = 0;
      while (isdigit((unsigned char)*p) && n < 6)
        frac = frac * 10 + (*p++ - '0'), n++;
      if (n == 0 || isdigit((unsigned char)*p))
        return PQS_EFORMAT;
      while (n++ < 6)
        frac *= 10;
    }
    if (type == PQS_OID_TIMESTAMPTZ &&
        ((*p != '+' && *p != '-') || tz_offset(&p, &off) != 0))
      return PQS_EFORMAT;
  }
  if (strcmp(p, " BC") == 0) {
    y = 1 - y;
    p += 3;
  }
  if (*p != '\0')
    return PQS_EFORMAT;
  int64_t days = days_from_civil(y, (int)mo, (int)d), us;
  int64_t secs = h * 3600 + mi * 60 + s - off;
  if (__builtin_mul_overflow(days, USEC_PER_DAY, &us) ||
      __builtin_add_overflow(us, secs * USEC_PER_SEC + frac, &us))
    return PQS_ERANGE;
  *out = us;
  return 0;
}

/* Binary: a date is int32 days, a timestamp int64 microseconds, since
 * 2000-01-01; the extremes of each are the infinities. */
static int binary_timestamp(uint32_t type, const char *p, size_t n,
                            int64_t *out) {
  int64_t v;
  if (type == PQS_OID_DATE) {
    if (n != 4)
      return PQS_EFORMAT;
    int32_t d = (int32_t)pqs__be32(p);
    if (d == INT32_MAX || d == INT32_MIN) {
      *out = d == INT32_MAX ? INT64_MAX : INT64_MIN;
      return 0;
    }
    if (__builtin_mul_overflow((int64_t)d + PQS__EPOCH_2000_DAYS, USEC_PER_DAY,
                               &v))
      return PQS_ERANGE; /* as for its text: beyond int64 microseconds */
    *out = v;
    return 0;
  }
  if (n != 8)
    return PQS_EFORMAT;
  v = (int64_t)pqs__be64(p);
  if (v == INT64_MAX || v == INT64_MIN) {
    *out = v;
    return 0;
  }
  if (__builtin_add_overflow(v, PQS__EPOCH_2000_US, &v))
    return PQS_ERANGE;
  *out = v;
  return 0;
}

int pqs_row_timestamp_us(const pqs_row_t *row, int col, int64_t *out) {
  static const uint32_t ok[] = {PQS_OID_DATE, PQS_OID_TIMESTAMP,
                                PQS_OID_TIMESTAMPTZ};
  const char *t;
  size_t n;
  int rc = pqs__row_typed(row, col, out, ok, 3, &t, &n);
  if (rc != 0)
    return rc;
  if (pqs__row_binary(row))
    return binary_timestamp(pqs_row_type(row, col), t, n, out);
  if (strcmp(t, "infinity") == 0) {
    *out = INT64_MAX;
    return 0;
  }
  if (strcmp(t, "-infinity") == 0) {
    *out = INT64_MIN;
    return 0;
  }
  int64_t v;
  if ((rc = parse_iso(t, pqs_row_type(row, col), &v)) == 0)
    *out = v;
  return rc;
}

int pqs_row_time_us(const pqs_row_t *row, int col, int64_t *out) {
  static const uint32_t ok[] = {PQS_OID_TIME};
  const char *t;
  size_t n;
  int rc = pqs__row_typed(row, col, out, ok, 1, &t, &n);
  if (rc != 0)
    return rc;
  if (pqs__row_binary(row)) {
    if (n != 8)
      return PQS_EFORMAT;
    *out = (int64_t)pqs__be64(t);
    return 0;
  }
  /* "HH:MM:SS[.ffffff]" */
  const char *p = t;
  int64_t h, m, sec, frac = 0;
  if (digits(&p, 2, &h) != 0 || *p++ != ':' || digits(&p, 2, &m) != 0 ||
      *p++ != ':' || digits(&p, 2, &sec) != 0)
    return PQS_EFORMAT;
  if (*p == '.') {
    p++;
    int k = 0;
    while (isdigit((unsigned char)*p) && k < 6)
      frac = frac * 10 + (*p++ - '0'), k++;
    if (k == 0)
      return PQS_EFORMAT;
    while (k++ < 6)
      frac *= 10;
  }
  if (*p != '\0')
    return PQS_EFORMAT;
  *out = (h * 3600 + m * 60 + sec) * USEC_PER_SEC + frac;
  return 0;
}

/* ---- uuid ---- */

static int hexdigit(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int pqs_row_uuid(const pqs_row_t *row, int col, uint8_t out[16]) {
  static const uint32_t ok[] = {PQS_OID_UUID};
  const char *t;
  size_t len;
  int rc = pqs__row_typed(row, col, out, ok, 1, &t, &len);
  if (rc != 0)
    return rc;
  if (pqs__row_binary(row)) {
    if (len != 16)
      return PQS_EFORMAT;
    memcpy(out, t, 16);
    return 0;
  }
  uint8_t b[16];
  int n = 0;
  for (const char *p = t; *p && n < 32; p++) {
    if (*p == '-' && (p - t == 8 || p - t == 13 || p - t == 18 || p - t == 23))
      continue;
    int v = hexdigit(*p);
    if (v < 0)
      return PQS_EFORMAT;
    b[n / 2] = (uint8_t)(n % 2 ? b[n / 2] | v : v << 4);
    n++;
  }
  if (n != 32 || strlen(t) != 36)
    return PQS_EFORMAT;
  memcpy(out, b, 16);
  return 0;
}

/* ---- interval ---- */

/* "[+-]H:MM:SS[.ffffff]" (hours may be many digits) into microseconds. */
static int clock_part(const char **p, int64_t *us) {
  int sign = 1;
  if (**p == '-' || **p == '+')
    sign = *(*p)++ == '-' ? -1 : 1;
  int64_t h, m, s, frac = 0;
  if (digits(p, 0, &h) != 0 || *(*p)++ != ':' || digits(p, 2, &m) != 0 ||
      *(*p)++ != ':' || digits(p, 2, &s) != 0)
    return -1;
  if (**p == '.') {
    (*p)++;
    int n = 0;
    while (isdigit((unsigned char)**p) && n < 6)
      frac = frac * 10 + (*(*p)++ - '0'), n++;
    if (n == 0)
      return -1;
    while (n++ < 6)
      frac *= 10;
  }
  if (h > INT64_MAX / (3600 * USEC_PER_SEC) - 1)
    return -1;
  *us = sign * ((h * 3600 + m * 60 + s) * USEC_PER_SEC + frac);
  return 0;
}

static int add32(int32_t *acc, int64_t v) {
  int64_t sum = (int64_t)*acc + v;
  if (sum < INT32_MIN || sum > INT32_MAX)
    return -1;
  *acc = (int32_t)sum;
  return 0;
}

/* IntervalStyle postgres: "1 year -2 mons +3 days -04:05:06.5". */
static int parse_postgres(const char *t, pqs_interval_t *iv) {
  const char *p = t;
  *iv = (pqs_interval_t){0};
  while (*p) {
    const char *num = p;
    int sign = 1;
    if (*p == '-' || *p == '+')
      sign = *p++ == '-' ? -1 : 1;
    int64_t n;
    const char *after = p;
    if (digits(&after, 0, &n) != 0)
      return -1;
    if (*after == ':') { /* the clock part, last */
      p = num;
      int64_t us;
      if (clock_part(&p, &us) != 0 || *p != '\0')
        return -1;
      iv->usec = us;
      return 0;
    }
    p = after;
    if (*p++ != ' ')
      return -1;
    size_t unit = strcspn(p, " ");
    int64_t v = sign * n;
    int bad;
    if (strncmp(p, "year", 4) == 0 && (unit == 4 || unit == 5))
      bad = n > INT32_MAX / 12 || add32(&iv->months, v * 12);
    else if (strncmp(p, "mon", 3) == 0 && (unit == 3 || unit == 4))
      bad = add32(&iv->months, v);
    else if (strncmp(p, "day", 3) == 0 && (unit == 3 || unit == 4))
      bad = add32(&iv->days, v);
    else
      return -1;
    if (bad)
      return -1;
    p += unit;
    if (*p == ' ')
      p++;
  }
  return p == t ? -1 : 0;
}

/* IntervalStyle iso_8601: "P1Y-2M3DT-4H5M6.5S", "PT0S". */
static int parse_iso8601(const char *t, pqs_interval_t *iv) {
  const char *p = t + 1;
  int in_time = 0;
  *iv = (pqs_interval_t){0};
  while (*p) {
    if (*p == 'T' && !in_time) {
      in_time = 1;
      p++;
      continue;
    }
    int sign = 1;
    if (*p == '-' || *p == '+')
      sign = *p++ == '-' ? -1 : 1;
    int64_t n, frac = 0;
    if (digits(&p, 0, &n) != 0)
      return -1;
    if (*p == '.') {
      int k = 0;
      for (p++; isdigit((unsigned char)*p) && k < 6; p++, k++)
        frac = frac * 10 + (*p - '0');
      while (k++ < 6)
        frac *= 10;
    }
    char unit = *p++;
    int64_t v = sign * n;
    int bad = 0;
    if (frac != 0 && !(in_time && unit == 'S'))
      bad = 1; /* a fraction only of seconds */
    else if (!in_time && unit == 'Y')
      bad = n > INT32_MAX / 12 || add32(&iv->months, v * 12);
    else if (!in_time && unit == 'M')
      bad = add32(&iv->months, v);
    else if (!in_time && unit == 'D')
      bad = add32(&iv->days, v);
    else if (in_time && unit == 'H')
      iv->usec += v * 3600 * USEC_PER_SEC;
    else if (in_time && unit == 'M')
      iv->usec += v * 60 * USEC_PER_SEC;
    else if (in_time && unit == 'S')
      iv->usec += sign * (n * USEC_PER_SEC + frac);
    else
      bad = 1;
    if (bad)
      return -1;
  }
  return 0;
}

int pqs_row_interval(const pqs_row_t *row, int col, pqs_interval_t *out) {
  static const uint32_t ok[] = {PQS_OID_INTERVAL};
  const char *t;
  size_t n;
  int rc = pqs__row_typed(row, col, out, ok, 1, &t, &n);
  if (rc != 0)
    return rc;
  if (pqs__row_binary(row)) { /* int64 usec, int32 days, int32 months */
    if (n != 16)
      return PQS_EFORMAT;
    out->usec = (int64_t)pqs__be64(t);
    out->days = (int32_t)pqs__be32(t + 8);
    out->months = (int32_t)pqs__be32(t + 12);
    return 0;
  }
  pqs_interval_t iv;
  if ((t[0] == 'P' ? parse_iso8601(t, &iv) : parse_postgres(t, &iv)) != 0)
    return PQS_EFORMAT;
  *out = iv;
  return 0;
}
