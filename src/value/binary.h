/* Values in PostgreSQL's binary format (each type's send function):
 * big-endian integers and IEEE floats, numeric as base-10000 digits,
 * times as microseconds since 2000-01-01. */
#ifndef PQS_BINARY_H
#define PQS_BINARY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arena.h"
#include "bigendian.h"
#include "binary_numeric.h"
#include "pqstream.h"

/* Microseconds and days from 1970-01-01 to 2000-01-01, the epoch of the
 * server's binary dates and times. */
#define PQS__EPOCH_2000_US INT64_C(946684800000000)
#define PQS__EPOCH_2000_DAYS 10957

/* An int2, int4, int8 or oid of `n` bytes: 0 or PQS_EFORMAT (a length the
 * type does not have). Hot path. */
static inline int pqs__binary_int(uint32_t type, const char *p, size_t n,
                                  int64_t *out) {
  switch (type) {
  case PQS_OID_INT2:
    if (n != 2)
      return PQS_EFORMAT;
    *out = (int16_t)pqs__be16(p);
    return 0;
  case PQS_OID_INT4:
    if (n != 4)
      return PQS_EFORMAT;
    *out = (int32_t)pqs__be32(p);
    return 0;
  case PQS_OID_OID:
    if (n != 4)
      return PQS_EFORMAT;
    *out = pqs__be32(p);
    return 0;
  case PQS_OID_INT8:
    if (n != 8)
      return PQS_EFORMAT;
    *out = (int64_t)pqs__be64(p);
    return 0;
  default:
    return PQS_ETYPE;
  }
}

/* A float4, float8, int2, int4 or int8 as a double: 0, PQS_ETYPE (any
 * other type, oid included), PQS_EFORMAT, or PQS_ERANGE (an int8 beyond
 * +-2^53, where a double is no longer exact). Hot path. */
static inline int pqs__binary_double(uint32_t type, const char *p, size_t n,
                                     double *out) {
  if (type == PQS_OID_FLOAT8) {
    if (n != 8)
      return PQS_EFORMAT;
    uint64_t bits = pqs__be64(p);
    memcpy(out, &bits, sizeof(*out));
    return 0;
  }
  if (type == PQS_OID_FLOAT4) {
    if (n != 4)
      return PQS_EFORMAT;
    uint32_t bits = pqs__be32(p);
    float f;
    memcpy(&f, &bits, sizeof(f));
    *out = f;
    return 0;
  }
  if (type == PQS_OID_OID)
    return PQS_ETYPE; /* an identifier, not a number pqs_row_double reads */
  int64_t v;
  int rc = pqs__binary_int(type, p, n, &v);
  if (rc != 0)
    return rc;
  if (v < -(INT64_C(1) << 53) || v > INT64_C(1) << 53)
    return PQS_ERANGE; /* as for text: beyond 2^53 a double is not exact */
  *out = (double)v;
  return 0;
}


/* The session's settings a value's text follows (float8out and float4out
 * follow extra_float_digits, byteaout bytea_output), as the context knew
 * them when the result began (op/settings.c). */
typedef struct {
  int efd;          /* extra_float_digits, -15 to 3 */
  int bytea_escape; /* bytea_output is escape, not hex */
} pqs__text_settings_t;

/* The server's defaults. */
#define PQS__TEXT_SETTINGS_DEFAULT ((pqs__text_settings_t){1, 0})

/* The server's text for a binary value of `type`, made in `a`: *p and *n
 * are the binary value in, the text out (NUL-terminated). 0, PQS_ETYPE (a
 * type whose text depends on settings other than `ts`'s, or unknown), PQS_EFORMAT
 * (malformed bytes), PQS_ENOMEM (also when `a` is NULL). */
int pqs__binary_text(pqs__arena_t *a, const pqs__text_settings_t *ts,
                     uint32_t type, const char **p,
                     size_t *n);

/* 1 for the text-like types, whose binary bytes are their text. */
static inline int pqs__binary_is_text(uint32_t type) {
  return type == PQS_OID_TEXT || type == PQS_OID_VARCHAR ||
         type == PQS_OID_BPCHAR || type == PQS_OID_NAME ||
         type == PQS_OID_JSON;
}

/* 1 if pqs__binary_text makes text for `type`. */
int pqs__binary_has_text(uint32_t type);

/* The text of a double or a float as the server's float8out and
 * float4out print it at extra_float_digits `efd`: into `out` (at least 32
 * bytes), NUL-terminated; its length. */
size_t pqs__float8_text(double v, int efd, char *out);
size_t pqs__float4_text(float v, int efd, char *out);


#endif
