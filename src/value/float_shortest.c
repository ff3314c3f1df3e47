/* The shortest decimal in a binary float's rounding interval, after
 * Giulietti's Schubfach ("The Schubfach way to render doubles", 2020),
 * written here from the paper's argument.
 *
 * v = c 2^q. Every decimal in the interval of reals that round to v
 * reads back as v: half a unit of the last place either side (a quarter
 * below, for a power of two whose neighbour below is closer). Its ends
 * are never taken: round half to even would read an end back as v when
 * c is even, but the server's search (Ryu, as PostgreSQL ships it) does
 * not take them (1e23's double prints as 9.999999999999999e+22), and
 * its bytes are what we match.
 * With k = floor(log10 2^q) the interval is at least 10^k wide and less
 * than 10^(k+1): it holds one or two multiples of 10^k and at most one
 * of 10^(k+1). If it holds exactly one multiple of 10^(k+1), that is the
 * shortest; else the shortest are multiples of 10^k, and of those, the
 * one nearest v.
 *
 * Everything is compared at four times the scale (2^q/4 units, so that
 * the ends are integers): vb ~ 4 v 10^-k, vbl and vbr the ends, each the
 * integer part of the product with a power of ten and its lowest bit set
 * when anything was cut off (so that "<=" against an integer is decided
 * right). The power of ten is a 126-bit over-estimate; the paper proves
 * that 126 bits (for float: 63) are enough for every double (float). */
#include <string.h>

#include "float_shortest.h"

typedef unsigned __int128 u128;

#define MASK63 ((UINT64_C(1) << 63) - 1)
#define MASK32 ((UINT64_C(1) << 32) - 1)

/* floor(q log10 2), floor(log10(3/4 2^q)), floor(e log2 10): exact for
 * |q|, |e| far beyond what a double needs (scripts/gen_pow10.py checks
 * them). An arithmetic shift right floors negative numbers too. */
static inline int floor_log10_pow2(int q) {
  return (int)(((int64_t)q * INT64_C(661971961083)) >> 41);
}
static inline int floor_log10_three_quarters_pow2(int q) {
  return (int)(((int64_t)q * INT64_C(661971961083) - INT64_C(274743187321)) >>
               41);
}
static inline int floor_log2_pow10(int e) {
  return (int)(((int64_t)e * INT64_C(913124641741)) >> 38);
}

/* floor(g cp / 2^127), lowest bit set if the rest is not zero; g is
 * g1 2^63 + g0. */
static inline uint64_t scale_double(uint64_t g1, uint64_t g0, uint64_t cp) {
  uint64_t x1 = (uint64_t)(((u128)g0 * cp) >> 64);
  u128 y = (u128)g1 * cp;
  uint64_t y0 = (uint64_t)y, y1 = (uint64_t)(y >> 64);
  uint64_t z = (y0 >> 1) + x1;
  uint64_t vbp = y1 + (z >> 63);
  return vbp | (((z & MASK63) + MASK63) >> 63);
}

/* floor(g cp / 2^95), lowest bit set if the rest is not zero. */
static inline uint64_t scale_float(uint64_t g, uint64_t cp) {
  uint64_t x1 = (uint64_t)(((u128)g * cp) >> 64);
  uint64_t vbp = x1 >> 31;
  return vbp | (((x1 & MASK32) + MASK32) >> 32);
}

/* digits 10^exp, with the side v lies on of it. */
static pqs__decimal_t trimmed(uint64_t digits, int exp, int side) {
  while (digits % 10 == 0) {
    digits /= 10;
    exp++;
  }
  return (pqs__decimal_t){digits, exp, side};
}

/* d (at scale 10^k) against vb: the side of d that v lies on. vb is
 * exact when its lowest bit is clear, so a multiple of 4 equal to it is
 * v itself; anything above is v above, by at most the bits cut off. */
static pqs__decimal_t chosen(uint64_t d, uint64_t vb, int k) {
  uint64_t d4 = d << 2;
  return trimmed(d, k, vb > d4 ? 1 : vb < d4 ? -1 : 0);
}

/* Picks the shortest from the scaled value and ends (see the top). */
static pqs__decimal_t pick(uint64_t vb, uint64_t vbl, uint64_t vbr,
                           int k) {
  const int out = 1; /* the ends are never taken (see the top) */
  uint64_t s = vb >> 2;
  uint64_t sp10 = s / 10 * 10, tp10 = sp10 + 10;
  int upin = vbl + out <= sp10 << 2;
  int wpin = (tp10 << 2) + out <= vbr;
  if (upin != wpin)
    return chosen(upin ? sp10 : tp10, vb, k);
  uint64_t t = s + 1;
  int uin = vbl + out <= s << 2;
  int win = (t << 2) + out <= vbr;
  if (uin != win)
    return chosen(uin ? s : t, vb, k);
  /* Both: the nearer, an even one on a tie. */
  int64_t cmp = (int64_t)(vb - ((s + t) << 1));
  return chosen(cmp < 0 || (cmp == 0 && (s & 1) == 0) ? s : t, vb, k);
}

/* The lower end of v's interval (times 4) and k for it. */
static int lower_end(uint64_t c, int q, uint64_t c_min, int q_min,
                     uint64_t *cbl) {
  if (c != c_min || q == q_min) {
    *cbl = (c << 2) - 2;
    return floor_log10_pow2(q);
  }
  *cbl = (c << 2) - 1; /* the gap below a power of two is half */
  return floor_log10_three_quarters_pow2(q);
}

pqs__decimal_t pqs__shortest_double(double v) {
  uint64_t bits;
  memcpy(&bits, &v, sizeof(bits));
  int be = (int)(bits >> 52) & 0x7ff;
  uint64_t c = bits & ((UINT64_C(1) << 52) - 1);
  int q = -1074;
  if (be != 0) {
    c |= UINT64_C(1) << 52;
    q = be - 1075;
    /* An integer below 2^53 is its own shortest decimal. */
    if (q < 0 && q > -53 && (c & ((UINT64_C(1) << -q) - 1)) == 0)
      return trimmed(c >> -q, 0, 0);
  }
  uint64_t cbl;
  int k = lower_end(c, q, UINT64_C(1) << 52, -1074, &cbl);
  int h = q + floor_log2_pow10(-k) + 2;
  const uint64_t *g = pqs__pow10[-k - PQS__POW10_MIN];
  uint64_t cb = c << 2;
  return pick(scale_double(g[0], g[1], cb << h),
              scale_double(g[0], g[1], cbl << h),
              scale_double(g[0], g[1], (cb + 2) << h), k);
}

pqs__decimal_t pqs__shortest_float(float v) {
  uint32_t bits;
  memcpy(&bits, &v, sizeof(bits));
  int be = (int)(bits >> 23) & 0xff;
  uint64_t c = bits & ((UINT32_C(1) << 23) - 1);
  int q = -149;
  if (be != 0) {
    c |= UINT32_C(1) << 23;
    q = be - 150;
    if (q < 0 && q > -24 && (c & ((UINT64_C(1) << -q) - 1)) == 0)
      return trimmed(c >> -q, 0, 0);
  }
  uint64_t cbl;
  int k = lower_end(c, q, UINT64_C(1) << 23, -149, &cbl);
  int h = q + floor_log2_pow10(-k) + 33;
  uint64_t g = pqs__pow10[-k - PQS__POW10_MIN][0] + 1;
  uint64_t cb = c << 2;
  return pick(scale_float(g, cb << h), scale_float(g, cbl << h),
              scale_float(g, (cb + 2) << h), k);
}
