/* float4 and float8 as the server's float4out and float8out print them
 * (PostgreSQL 12+), at any extra_float_digits:
 *
 *   above 0: the shortest decimal that reads back (float_shortest.c),
 *            fixed notation for decimal exponents from -4 to below 15
 *            (float4: 6), else d.ddde+XX;
 *   0 and below: printf's %.Pg, P = 15 (float4: 6) + extra_float_digits,
 *            at least 1.
 *
 * %.Pg is the value rounded to P digits. For a normal value that is the
 * shortest decimal rounded to P digits: the shortest is within half a
 * unit of the last place, which is several times finer than a P-digit
 * step, so a P-digit rounding boundary between the two would be a
 * shorter or nearer decimal in the interval than the shortest, unless
 * the shortest is that boundary itself (P + 1 digits ending in 5): then
 * the side of it the value lies on decides. Subnormals, coarser than
 * their digits, ask printf. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "binary.h"
#include "float_shortest.h"

static const char pairs[] = "00010203040506070809101112131415161718192021222324"
                            "25262728293031323334353637383940414243444546474849"
                            "50515253545556575859606162636465666768697071727374"
                            "75767778798081828384858687888990919293949596979899";

/* The digits of d, most significant first; their count. */
static int digits_of(uint64_t d, char *out) {
  int n = 1;
  for (uint64_t p = 10; n < 20 && d >= p; p *= 10)
    n++;
  char *w = out + n;
  while (d >= 100) {
    w -= 2;
    memcpy(w, pairs + 2 * (d % 100), 2);
    d /= 100;
  }
  if (d >= 10) {
    w -= 2;
    memcpy(w, pairs + 2 * d, 2);
  } else {
    *--w = (char)('0' + d);
  }
  return n;
}

/* Digits d[0..n) (no trailing zeros) with the decimal exponent x of the
 * first, as %g lays them out: fixed for -4 <= x < limit, else
 * d.ddde[+-]XX. */
static char *lay_out(char *w, const char *d, int n, int x, int limit) {
  if (x < -4 || x >= limit) {
    *w++ = d[0];
    if (n > 1) {
      *w++ = '.';
      memcpy(w, d + 1, (size_t)n - 1);
      w += n - 1;
    }
    *w++ = 'e';
    *w++ = x < 0 ? '-' : '+';
    int a = x < 0 ? -x : x;
    if (a >= 100)
      *w++ = (char)('0' + a / 100);
    *w++ = (char)('0' + a / 10 % 10);
    *w++ = (char)('0' + a % 10);
  } else if (x < 0) {
    *w++ = '0';
    *w++ = '.';
    for (int i = 0; i < -x - 1; i++)
      *w++ = '0';
    memcpy(w, d, (size_t)n);
    w += n;
  } else {
    for (int i = 0; i <= x; i++)
      *w++ = i < n ? d[i] : '0';
    if (n > x + 1) {
      *w++ = '.';
      memcpy(w, d + x + 1, (size_t)(n - x - 1));
      w += n - x - 1;
    }
  }
  return w;
}

/* Rounds d[0..*n) to p digits as printf rounds the value, which lies on
 * `side` of them: a digit cut off that is exactly 5 is the value's half
 * only where it lies on the decimal; there ties go to even. Drops the
 * trailing zeros. */
static void round_to(char *d, int *n, int p, int *x, int side) {
  if (*n <= p)
    return;
  int up = d[p] > '5' || (d[p] == '5' && *n > p + 1);
  if (d[p] == '5' && *n == p + 1)
    up = side > 0 || (side == 0 && (d[p - 1] - '0') % 2 == 1);
  *n = p;
  for (int i = p - 1; up && i >= 0; i--) {
    if (d[i] < '9') {
      d[i]++;
      up = 0;
    } else {
      d[i] = '0';
    }
  }
  if (up) { /* 9.99 became 10.0 */
    d[0] = '1';
    *n = 1;
    (*x)++;
  }
  while (*n > 1 && d[*n - 1] == '0')
    (*n)--;
}

static size_t format(double v, int is_float, int efd, char *out) {
  if (isnan(v))
    return (size_t)sprintf(out, "NaN");
  if (isinf(v))
    return (size_t)sprintf(out, v < 0 ? "-Infinity" : "Infinity");
  int dig = is_float ? 6 : 15;
  int p = efd > 0 ? 0 : dig + efd < 1 ? 1 : dig + efd;
  char *w = out;
  if (signbit(v))
    *w++ = '-';
  if (v == 0) {
    *w++ = '0';
    *w = '\0';
    return (size_t)(w - out);
  }
  double a = fabs(v);
  if (p != 0 && a < (is_float ? 0x1p-126 : 0x1p-1022))
    return (size_t)sprintf(out, "%.*g", p, v); /* subnormal */
  pqs__decimal_t s = is_float ? pqs__shortest_float((float)a)
                              : pqs__shortest_double(a);
  char d[24];
  int n = digits_of(s.digits, d);
  int x = s.exp + n - 1;
  if (p != 0)
    round_to(d, &n, p, &x, s.side);
  w = lay_out(w, d, n, x, p != 0 ? p : dig);
  *w = '\0';
  return (size_t)(w - out);
}

size_t pqs__float8_text(double v, int efd, char *out) {
  return format(v, 0, efd, out);
}
size_t pqs__float4_text(float v, int efd, char *out) {
  return format(v, 1, efd, out);
}
