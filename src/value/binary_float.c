/* float4 and float8 as the server prints them (PostgreSQL 12+, with
 * extra_float_digits >= 1, the default): the fewest significant digits
 * that read back to the same value, fixed notation for decimal exponents
 * from -4 to below 15 (float4: 6), else d.ddde+XX.
 *
 * The digits are found with printf and strtod, both exact in glibc: the
 * correctly rounded p-digit decimal, for p = DIG, DIG + 1, ... until one
 * reads back (see shortest() for why DIG). Where a value's rounding interval is lopsided (a power of two:
 * the gap below is half the gap above) a p-digit neighbour may read back
 * when the nearest does not; those are tried too, as the shortest-digit
 * algorithms the server uses would find them. */
#include <fenv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binary.h"

/* 1 if the decimal `buf` is exactly `mid`. Reading it rounded down and
 * rounded up gives the same number only when it is exact. */
static int exactly(const char *buf, long double mid, int is_float) {
  int mode = fegetround();
  fesetround(FE_UPWARD);
  long double up = is_float ? strtod(buf, NULL) : strtold(buf, NULL);
  fesetround(FE_DOWNWARD);
  long double down = is_float ? strtod(buf, NULL) : strtold(buf, NULL);
  fesetround(mode);
  return up == mid && down == mid;
}

/* Reads back `digits` (p of them, no point) times 10^exp, from strictly
 * inside want's rounding interval: the server's shortest-digit search
 * does not take a decimal that lies exactly halfway to a neighbour (1e23
 * prints as 9.999999999999999e+22), even where strtod would round it to
 * want. A halfway point needs one bit more than the type: it is exact in
 * a long double (for float8) or a double (for float4). */
static int reads_back(const char *digits, int p, int exp, int is_float,
                      double want) {
  char buf[48];
  snprintf(buf, sizeof(buf), "%.*se%d", p, digits, exp - (p - 1));
  long double x, lo, hi;
  if (is_float) {
    float f = (float)want;
    if (strtof(buf, NULL) != f)
      return 0;
    x = strtod(buf, NULL);
    lo = ((double)f + nextafterf(f, 0.0f)) / 2;
    hi = ((double)f + nextafterf(f, INFINITY)) / 2;
  } else {
    if (strtod(buf, NULL) != want)
      return 0;
    x = strtold(buf, NULL);
    lo = ((long double)want + nextafter(want, 0.0)) / 2;
    hi = ((long double)want + nextafter(want, INFINITY)) / 2;
  }
  if (x != lo && x != hi) /* the usual case: clearly inside */
    return 1;
  return !exactly(buf, x, is_float);
}

/* Adds `step` (+1 or -1) to the p-digit integer `d`: 0, or -1 if the
 * number of digits would change (which a shorter p already covered). */
static int step_digits(char *d, int p, int step) {
  for (int i = p - 1; i >= 0; i--) {
    if (step > 0 && d[i] < '9') {
      d[i]++;
      return 0;
    }
    if (step < 0 && d[i] > '0') {
      d[i]--;
      return i == 0 && d[0] == '0' && p > 1 ? -1 : 0;
    }
    d[i] = step > 0 ? '0' : '9';
  }
  return -1;
}

/* The shortest digits of finite, positive v: into d (no point, no
 * trailing zeros beyond the first), their count, and *exp, the decimal
 * exponent of the first digit.
 *
 * For a normal value the search starts at the type's DIG (15, float4 6):
 * the DIG-digit grid is more than four times coarser than the value's ulp,
 * so a shorter decimal that reads back, being within half an ulp, is the
 * nearest DIG-digit decimal padded with zeros, and is found there (the
 * zeros are dropped by the caller). Subnormals have fewer bits and start
 * at one digit. */
static int shortest(double v, int is_float, char *d, int *exp) {
  int max = is_float ? 9 : 17;
  int normal = is_float ? v >= 0x1p-126 : v >= 0x1p-1022;
  for (int p = normal ? (is_float ? 6 : 15) : 1; p <= max; p++) {
    char buf[48];
    snprintf(buf, sizeof(buf), "%.*e", p - 1, v);
    /* buf: "d[.ddd]e[+-]XX" */
    int n = 0;
    for (const char *s = buf; *s != 'e'; s++)
      if (*s != '.')
        d[n++] = *s;
    d[n] = '\0';
    int e = atoi(strchr(buf, 'e') + 1);
    if (reads_back(d, p, e, is_float, v)) {
      *exp = e;
      return p;
    }
    for (int step = -1; step <= 1; step += 2) {
      char alt[24];
      memcpy(alt, d, (size_t)p + 1);
      if (step_digits(alt, p, step) == 0 && reads_back(alt, p, e, is_float, v)) {
        memcpy(d, alt, (size_t)p + 1);
        *exp = e;
        return p;
      }
    }
  }
  *exp = 0;
  return 0; /* not reached: 17 digits always read back */
}

static size_t format(double v, int is_float, char *out) {
  if (isnan(v))
    return (size_t)sprintf(out, "NaN");
  if (isinf(v))
    return (size_t)sprintf(out, v < 0 ? "-Infinity" : "Infinity");
  char *w = out;
  if (signbit(v))
    *w++ = '-';
  if (v == 0) {
    *w++ = '0';
    *w = '\0';
    return (size_t)(w - out);
  }
  char d[24];
  int exp, p = shortest(fabs(v), is_float, d, &exp);
  while (p > 1 && d[p - 1] == '0') /* 100 comes back as "1" with exp 2 */
    p--;
  if (exp < -4 || exp >= (is_float ? 6 : 15)) {
    *w++ = d[0];
    if (p > 1) {
      *w++ = '.';
      memcpy(w, d + 1, (size_t)p - 1);
      w += p - 1;
    }
    w += sprintf(w, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
  } else if (exp < 0) {
    *w++ = '0';
    *w++ = '.';
    for (int i = 0; i < -exp - 1; i++)
      *w++ = '0';
    memcpy(w, d, (size_t)p);
    w += p;
  } else {
    for (int i = 0; i <= exp; i++)
      *w++ = i < p ? d[i] : '0';
    if (p > exp + 1) {
      *w++ = '.';
      memcpy(w, d + exp + 1, (size_t)(p - exp - 1));
      w += p - exp - 1;
    }
  }
  *w = '\0';
  return (size_t)(w - out);
}

size_t pqs__float8_text(double v, char *out) { return format(v, 0, out); }
size_t pqs__float4_text(float v, char *out) { return format(v, 1, out); }
