/* Comparing rows by sort keys, as PostgreSQL's ORDER BY would for the
 * common types (text as COLLATE "C"). */
#include <stdlib.h>
#include <string.h>

#include "stream_int.h"

static int sign_of(long double d) { return d < 0 ? -1 : d > 0; }

/* Where a numeric text stands among the server's special values:
 * -Infinity, then every number, then Infinity, then NaN. */
static int numeric_rank(const char *t) {
  return strcmp(t, "-Infinity") == 0 ? 0
         : strcmp(t, "Infinity") == 0 ? 2
         : strcmp(t, "NaN") == 0      ? 3
                                      : 1;
}

/* Decimal texts as the server writes numeric: [-]digits[.digits], or one
 * of its special values, ordered as its ORDER BY orders them. */
static int cmp_numeric(const char *a, const char *b) {
  int ra = numeric_rank(a), rb = numeric_rank(b);
  if (ra != 1 || rb != 1)
    return (ra > rb) - (ra < rb);
  int neg_a = *a == '-', neg_b = *b == '-';
  if (neg_a != neg_b)
    return neg_a ? -1 : 1;
  a += neg_a;
  b += neg_b;
  size_t ia = strcspn(a, "."), ib = strcspn(b, ".");
  int r = ia != ib ? (ia < ib ? -1 : 1) : memcmp(a, b, ia);
  if (r == 0) { /* same integer part: the fractions, digit by digit */
    const char *fa = a[ia] ? a + ia + 1 : "", *fb = b[ib] ? b + ib + 1 : "";
    for (; r == 0 && (*fa || *fb); fa += !!*fa, fb += !!*fb)
      r = (*fa ? *fa : '0') - (*fb ? *fb : '0');
    r = sign_of(r);
  }
  return neg_a ? -r : r;
}

static int cmp_value(uint32_t type, const char *a, size_t la, const char *b,
                     size_t lb) {
  switch (type) {
  case PQS_OID_INT2:
  case PQS_OID_INT4:
  case PQS_OID_INT8: {
    long long x = strtoll(a, NULL, 10), y = strtoll(b, NULL, 10);
    return (x > y) - (x < y);
  }
  case PQS_OID_FLOAT4:
  case PQS_OID_FLOAT8: { /* NaN after everything, as the server */
    double x = strtod(a, NULL), y = strtod(b, NULL);
    int nx = x != x, ny = y != y;
    if (nx || ny)
      return nx - ny;
    return (x > y) - (x < y);
  }
  case PQS_OID_NUMERIC:
    return cmp_numeric(a, b);
  default: {
    int r = memcmp(a, b, la < lb ? la : lb);
    return r ? (r < 0 ? -1 : 1) : (la > lb) - (la < lb);
  }
  }
}

/* Two binary values of column `col` (neither NULL), decoded: numbers and
 * times by value, numeric by its text, the rest by their bytes (which
 * order text as COLLATE "C", and uuid and bytea as the server does). */
static int cmp_binary(const pqs_row_t *a, const pqs_row_t *b, int col) {
  int64_t x, y;
  double dx, dy;
  const char *ta, *tb;
  size_t la, lb;
  switch (pqs_row_type(a, col)) {
  case PQS_OID_INT2:
  case PQS_OID_INT4:
  case PQS_OID_INT8:
  case PQS_OID_OID:
    pqs_row_int64(a, col, &x);
    pqs_row_int64(b, col, &y);
    return (x > y) - (x < y);
  case PQS_OID_DATE:
  case PQS_OID_TIMESTAMP:
  case PQS_OID_TIMESTAMPTZ:
    x = y = 0;
    pqs_row_timestamp_us(a, col, &x);
    pqs_row_timestamp_us(b, col, &y);
    return (x > y) - (x < y);
  case PQS_OID_FLOAT4:
  case PQS_OID_FLOAT8: {
    dx = dy = 0;
    pqs_row_double(a, col, &dx);
    pqs_row_double(b, col, &dy);
    int nx = dx != dx, ny = dy != dy;
    return nx || ny ? nx - ny : (dx > dy) - (dx < dy);
  }
  case PQS_OID_NUMERIC:
    ta = pqs_row_text(a, col, NULL);
    tb = pqs_row_text(b, col, NULL);
    return cmp_numeric(ta ? ta : "NaN", tb ? tb : "NaN");
  default:
    pqs__row_raw(a, col, &ta, &la);
    pqs__row_raw(b, col, &tb, &lb);
    return cmp_value(0, ta, la, tb, lb);
  }
}

int pqs__compare_keys(const pqs_row_t *a, const pqs_row_t *b,
                      const pqs_sort_key_t *keys, int nkeys) {
  for (int k = 0; k < nkeys; k++) {
    size_t la, lb;
    int bin = pqs__row_binary(a) && pqs__row_binary(b);
    const char *va, *vb;
    if (bin) {
      pqs__row_raw(a, keys[k].col, &va, &la);
      pqs__row_raw(b, keys[k].col, &vb, &lb);
    } else {
      va = pqs_row_text(a, keys[k].col, &la);
      vb = pqs_row_text(b, keys[k].col, &lb);
    }
    int r;
    if (va == NULL || vb == NULL) /* NULL is the greatest value */
      r = (va == NULL) - (vb == NULL);
    else if (bin)
      r = cmp_binary(a, b, keys[k].col);
    else
      r = cmp_value(pqs_row_type(a, keys[k].col), va, la, vb, lb);
    if (r != 0)
      return keys[k].desc ? -r : r;
  }
  return 0;
}

int pqs_row_compare(const pqs_row_t *a, const pqs_row_t *b,
                    const pqs_sort_key_t *keys, int nkeys) {
  return pqs__compare_keys(a, b, keys, nkeys);
}
