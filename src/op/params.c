/* Typed parameters encoded as libpq sends them: types, values, lengths
 * and formats, binary where the type allows, in one allocation. */
#include <string.h>

#include "alloc.h"
#include "params.h"

#define PQS__MAX_VALUE (1u << 30) /* the server's limit for one value */

enum {
  OID_BOOL = 16,
  OID_BYTEA = 17,
  OID_INT8 = 20,
  OID_TEXT = 25,
  OID_FLOAT8 = 701,
  OID_TEXT_ARRAY = 1009,
  OID_INT8_ARRAY = 1016
};

/* Bytes of the binary value of `p`, or -1 if it cannot be sent. */
static long long value_size(const pqs_param_t *p) {
  size_t n = 0;
  switch (p->kind) {
  case PQS_PARAM_NULL:
    return 0;
  case PQS_PARAM_TEXT:
    return p->u.text ? (long long)strlen(p->u.text) + 1 : -1;
  case PQS_PARAM_INT64:
  case PQS_PARAM_DOUBLE:
    return 8;
  case PQS_PARAM_BOOL:
    return 1;
  case PQS_PARAM_BYTEA:
    n = p->u.bytes.len;
    if (n > 0 && p->u.bytes.data == NULL)
      return -1;
    break;
  case PQS_PARAM_INT64_ARRAY:
    if (p->u.i64s.n > 0 && p->u.i64s.v == NULL)
      return -1;
    n = 20 + p->u.i64s.n * 12; /* header, then length + 8 bytes each */
    break;
  case PQS_PARAM_TEXT_ARRAY:
    if (p->u.texts.n > 0 && p->u.texts.v == NULL)
      return -1;
    n = 20;
    for (size_t i = 0; i < p->u.texts.n && n <= PQS__MAX_VALUE; i++)
      n += 4 + (p->u.texts.v[i] ? strlen(p->u.texts.v[i]) : 0);
    break;
  default:
    return -1;
  }
  return n > PQS__MAX_VALUE ? -1 : (long long)n;
}

static unsigned char *put32(unsigned char *w, uint32_t v) {
  w[0] = (unsigned char)(v >> 24);
  w[1] = (unsigned char)(v >> 16);
  w[2] = (unsigned char)(v >> 8);
  w[3] = (unsigned char)v;
  return w + 4;
}

static unsigned char *put64(unsigned char *w, uint64_t v) {
  return put32(put32(w, (uint32_t)(v >> 32)), (uint32_t)v);
}

/* PostgreSQL's binary array: dimensions, a NULL flag, the element type,
 * length and lower bound of the one dimension, then each element. */
static unsigned char *array_header(unsigned char *w, size_t n, int nulls,
                                   uint32_t elem) {
  w = put32(w, 1);
  w = put32(w, (uint32_t)nulls);
  w = put32(w, elem);
  w = put32(w, (uint32_t)n);
  return put32(w, 1);
}

/* Writes the value at w; its type, length and format. */
static void encode(const pqs_param_t *p, unsigned char *w, uint32_t *type,
                   int *len, int *format) {
  uint64_t bits;
  unsigned char *start = w;
  *format = 1;
  switch (p->kind) {
  case PQS_PARAM_NULL:
    *type = 0;
    *format = 0;
    *len = 0;
    return;
  case PQS_PARAM_TEXT:
    *type = 0; /* the server infers it, as for a text parameter */
    *format = 0;
    *len = (int)strlen(p->u.text);
    memcpy(w, p->u.text, (size_t)*len + 1);
    return;
  case PQS_PARAM_INT64:
    *type = OID_INT8;
    w = put64(w, (uint64_t)p->u.i64);
    break;
  case PQS_PARAM_DOUBLE:
    *type = OID_FLOAT8;
    memcpy(&bits, &p->u.f64, 8);
    w = put64(w, bits);
    break;
  case PQS_PARAM_BOOL:
    *type = OID_BOOL;
    *w++ = p->u.b != 0;
    break;
  case PQS_PARAM_BYTEA:
    *type = OID_BYTEA;
    if (p->u.bytes.len > 0)
      memcpy(w, p->u.bytes.data, p->u.bytes.len);
    w += p->u.bytes.len;
    break;
  case PQS_PARAM_INT64_ARRAY:
    *type = OID_INT8_ARRAY;
    w = array_header(w, p->u.i64s.n, 0, OID_INT8);
    for (size_t i = 0; i < p->u.i64s.n; i++)
      w = put64(put32(w, 8), (uint64_t)p->u.i64s.v[i]);
    break;
  default: { /* PQS_PARAM_TEXT_ARRAY */
    int nulls = 0;
    for (size_t i = 0; i < p->u.texts.n; i++)
      nulls |= p->u.texts.v[i] == NULL;
    *type = OID_TEXT_ARRAY;
    w = array_header(w, p->u.texts.n, nulls, OID_TEXT);
    for (size_t i = 0; i < p->u.texts.n; i++) {
      const char *v = p->u.texts.v[i];
      size_t n = v ? strlen(v) : 0;
      w = put32(w, v ? (uint32_t)n : 0xffffffffu);
      if (n > 0)
        memcpy(w, v, n);
      w += n;
    }
    break;
  }
  }
  *len = (int)(w - start);
}

int pqs__params_typed(int n, const pqs_param_t *params, pqs__params_t **out) {
  if (n < 0 || n > 65535 || (n > 0 && params == NULL))
    return PQS_EINVAL;
  size_t size =
      sizeof(pqs__params_t) +
      (size_t)n * (sizeof(uint32_t) + sizeof(char *) + 2 * sizeof(int));
  for (int i = 0; i < n; i++) {
    long long v = value_size(&params[i]);
    if (v < 0)
      return PQS_EINVAL;
    size += (size_t)v;
  }
  pqs__params_t *ps = pqs__malloc(size);
  if (ps == NULL)
    return PQS_ENOMEM;
  ps->n = n;
  ps->values = (const char **)(ps + 1);
  ps->types = (uint32_t *)(ps->values + n);
  ps->lengths = (int *)(ps->types + n);
  ps->formats = ps->lengths + n;
  unsigned char *w = (unsigned char *)(ps->formats + n);
  for (int i = 0; i < n; i++) {
    encode(&params[i], w, &ps->types[i], &ps->lengths[i], &ps->formats[i]);
    ps->values[i] = params[i].kind == PQS_PARAM_NULL ? NULL : (const char *)w;
    w += params[i].kind == PQS_PARAM_TEXT ? (size_t)ps->lengths[i] + 1
                                          : (size_t)ps->lengths[i];
  }
  *out = ps;
  return 0;
}

void *pqs__with_texts(size_t head, const char *sql, int n,
                      const char *const *params, const char **sql_copy,
                      const char *const **params_copy) {
  size_t sql_len = strlen(sql) + 1;
  size_t size = head + (size_t)n * sizeof(char *) + sql_len;
  for (int i = 0; i < n; i++)
    size += params[i] ? strlen(params[i]) + 1 : 0;
  char *block = pqs__calloc(1, size);
  if (block == NULL)
    return NULL;
  const char **copies = (const char **)(block + head);
  char *p = (char *)(copies + n);
  for (int i = 0; i < n; i++) {
    copies[i] = NULL;
    if (params[i] != NULL) {
      size_t len = strlen(params[i]) + 1;
      copies[i] = memcpy(p, params[i], len);
      p += len;
    }
  }
  *sql_copy = memcpy(p, sql, sql_len);
  *params_copy = copies;
  return block;
}
