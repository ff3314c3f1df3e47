/* A binary numeric (numeric_send) as numeric_out's text: a header of
 * int16 ndigits, int16 weight, uint16 sign, uint16 dscale, then ndigits
 * base-10000 digits, the first worth 10000^weight. */
#include <string.h>

#include "bigendian.h"
#include "binary_numeric.h"
#include "pqstream.h"

#define NUMERIC_POS 0x0000
#define NUMERIC_NEG 0x4000
#define NUMERIC_NAN 0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000

static const char *special(unsigned sign) {
  switch (sign) {
  case NUMERIC_NAN:
    return "NaN";
  case NUMERIC_PINF:
    return "Infinity";
  case NUMERIC_NINF:
    return "-Infinity";
  default:
    return NULL;
  }
}

/* The four decimal digits of a base-10000 digit. */
static void put4(char *w, int d) {
  w[0] = (char)('0' + d / 1000);
  w[1] = (char)('0' + d / 100 % 10);
  w[2] = (char)('0' + d / 10 % 10);
  w[3] = (char)('0' + d % 10);
}

int pqs__numeric_text(pqs__arena_t *a, const char *p, size_t n,
                      const char **text, size_t *len) {
  if (n < 8)
    return PQS_EFORMAT;
  int ndigits = (int16_t)pqs__be16(p), weight = (int16_t)pqs__be16(p + 2);
  unsigned sign = pqs__be16(p + 4), dscale = pqs__be16(p + 6);
  if (special(sign) != NULL) {
    *text = special(sign);
    *len = strlen(*text);
    return 0;
  }
  if ((sign != NUMERIC_POS && sign != NUMERIC_NEG) || ndigits < 0 ||
      n != 8 + 2 * (size_t)ndigits || dscale > 0x3FFF)
    return PQS_EFORMAT;
  const char *digits = p + 8;
  for (int i = 0; i < ndigits; i++)
    if (pqs__be16(digits + 2 * i) > 9999)
      return PQS_EFORMAT;
  /* Integer part: weight + 1 groups (at least "0"); then dscale digits. */
  size_t groups = weight >= 0 ? (size_t)weight + 1 : 1;
  char *out = a ? pqs__arena_alloc(a, 2 + 4 * groups + 1 + dscale + 4) : NULL;
  if (out == NULL)
    return PQS_ENOMEM;
  char *w = out;
  if (sign == NUMERIC_NEG)
    *w++ = '-';
  if (weight < 0) {
    *w++ = '0';
  } else {
    for (int g = 0; g <= weight; g++) {
      int d = g < ndigits ? pqs__be16(digits + 2 * g) : 0;
      if (g == 0) { /* no leading zeros */
        char four[4];
        put4(four, d);
        int skip = 0;
        while (skip < 3 && four[skip] == '0')
          skip++;
        memcpy(w, four + skip, (size_t)(4 - skip));
        w += 4 - skip;
      } else {
        put4(w, d);
        w += 4;
      }
    }
  }
  if (dscale > 0) {
    *w++ = '.';
    /* Fraction digits: group weight+1 onwards, 4 digits each, cut at
     * dscale (the value is already rounded to it). */
    for (unsigned k = 0; k < dscale; k += 4) {
      int g = weight + 1 + (int)(k / 4);
      int d = g >= 0 && g < ndigits ? pqs__be16(digits + 2 * g) : 0;
      char four[4];
      put4(four, d);
      unsigned take = dscale - k < 4 ? dscale - k : 4;
      memcpy(w, four, take);
      w += take;
    }
  }
  *w = '\0';
  *text = out;
  *len = (size_t)(w - out);
  return 0;
}
