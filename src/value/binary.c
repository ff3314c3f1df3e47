/* Binary values: the integers and floats the getters read, and the
 * server's text for the types where it is exact and follows no setting
 * but those the context knows (pqs_row_text on a binary row). */
#include <stdio.h>
#include <string.h>

#include "binary.h"
#include "pqstream.h"

int pqs__binary_has_text(uint32_t type) {
  switch (type) {
  case PQS_OID_BOOL:
  case PQS_OID_BYTEA:
  case PQS_OID_INT2:
  case PQS_OID_INT4:
  case PQS_OID_INT8:
  case PQS_OID_OID:
  case PQS_OID_FLOAT4:
  case PQS_OID_FLOAT8:
  case PQS_OID_NUMERIC:
  case PQS_OID_UUID:
  case PQS_OID_TEXT:
  case PQS_OID_VARCHAR:
  case PQS_OID_BPCHAR:
  case PQS_OID_NAME:
  case PQS_OID_JSON:
  case PQS_OID_JSONB:
    return 1;
  default:
    return 0;
  }
}

static const char hexdigits[] = "0123456789abcdef";

/* bytea_output escape: printable bytes as they are, a backslash doubled,
 * the others as \ and three octal digits. */
static char *bytea_escaped(pqs__arena_t *a, const char *p, size_t *n) {
  size_t len = 0;
  for (size_t i = 0; i < *n; i++) {
    unsigned char c = (unsigned char)p[i];
    len += c == '\\' ? 2 : c < 0x20 || c > 0x7e ? 4 : 1;
  }
  char *out = pqs__arena_alloc(a, len + 1), *w = out;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < *n; i++) {
    unsigned char c = (unsigned char)p[i];
    if (c == '\\') {
      *w++ = '\\';
      *w++ = '\\';
    } else if (c < 0x20 || c > 0x7e) {
      *w++ = '\\';
      *w++ = (char)('0' + (c >> 6));
      *w++ = (char)('0' + ((c >> 3) & 7));
      *w++ = (char)('0' + (c & 7));
    } else {
      *w++ = (char)c;
    }
  }
  *w = '\0';
  *n = len;
  return out;
}

/* bytea_output hex: "\x" and two digits a byte. */
static char *bytea_text(pqs__arena_t *a, const char *p, size_t n) {
  if (n > ((size_t)-1 - 3) / 2)
    return NULL;
  char *out = pqs__arena_alloc(a, 2 * n + 3), *w = out;
  if (out == NULL)
    return NULL;
  *w++ = '\\';
  *w++ = 'x';
  for (size_t i = 0; i < n; i++) {
    *w++ = hexdigits[(unsigned char)p[i] >> 4];
    *w++ = hexdigits[(unsigned char)p[i] & 15];
  }
  *w = '\0';
  return out;
}

static char *uuid_text(pqs__arena_t *a, const char *p) {
  char *out = pqs__arena_alloc(a, 37), *w = out;
  if (out == NULL)
    return NULL;
  for (int i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *w++ = '-';
    *w++ = hexdigits[(unsigned char)p[i] >> 4];
    *w++ = hexdigits[(unsigned char)p[i] & 15];
  }
  *w = '\0';
  return out;
}

/* A number's text: an integer or a float, at most 32 bytes. */
static int number_text(pqs__arena_t *a, int efd, uint32_t type,
                       const char *p, size_t n, const char **text,
                       size_t *len) {
  double d;
  int64_t v;
  int rc = type == PQS_OID_FLOAT4 || type == PQS_OID_FLOAT8
               ? pqs__binary_double(type, p, n, &d)
               : pqs__binary_int(type, p, n, &v);
  if (rc != 0)
    return rc;
  char *out = pqs__arena_alloc(a, 32);
  if (out == NULL)
    return PQS_ENOMEM;
  if (type == PQS_OID_FLOAT8)
    *len = pqs__float8_text(d, efd, out);
  else if (type == PQS_OID_FLOAT4)
    *len = pqs__float4_text((float)d, efd, out);
  else
    *len = (size_t)snprintf(out, 32, "%lld", (long long)v);
  *text = out;
  return 0;
}

int pqs__binary_text(pqs__arena_t *a, const pqs__text_settings_t *ts,
                     uint32_t type, const char **p, size_t *n) {
  const char *in = *p;
  char *out;
  if (pqs__binary_is_text(type))
    return 0; /* NUL-terminated by libpq, or by the COPY parser */
  switch (type) {
  case PQS_OID_JSONB:
    if (*n < 1 || in[0] != 1) /* the only version there is */
      return PQS_EFORMAT;
    (*p)++;
    (*n)--;
    return 0;
  case PQS_OID_BOOL:
    if (*n != 1)
      return PQS_EFORMAT;
    *p = in[0] ? "t" : "f";
    return 0;
  case PQS_OID_NUMERIC:
    return pqs__numeric_text(a, in, *n, p, n);
  case PQS_OID_UUID:
    if (*n != 16)
      return PQS_EFORMAT;
    if (a == NULL || (out = uuid_text(a, in)) == NULL)
      return PQS_ENOMEM;
    *p = out;
    *n = 36;
    return 0;
  case PQS_OID_BYTEA:
    if (a != NULL && ts->bytea_escape) {
      if ((out = bytea_escaped(a, in, n)) == NULL)
        return PQS_ENOMEM;
      *p = out;
      return 0;
    }
    if (a == NULL || (out = bytea_text(a, in, *n)) == NULL)
      return PQS_ENOMEM;
    *p = out;
    *n = 2 * *n + 2;
    return 0;
  case PQS_OID_INT2:
  case PQS_OID_INT4:
  case PQS_OID_INT8:
  case PQS_OID_OID:
  case PQS_OID_FLOAT4:
  case PQS_OID_FLOAT8:
    if (a == NULL)
      return PQS_ENOMEM;
    return number_text(a, ts->efd, type, in, *n, p, n);
  default:
    return PQS_ETYPE;
  }
}
