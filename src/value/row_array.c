/* One-dimensional arrays, text ('{1,NULL,"a b"}', '[0:2]={...}') and
 * binary (array_send: ndim, flags, element type, then per dimension its
 * length and lower bound, then each element as a length, -1 for NULL, and
 * its bytes). Each element is handed out as a row of one column, so that
 * every getter reads elements as it reads columns. */
#include <ctype.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "binary.h"
#include "row_int.h"

typedef struct array_s {
  const pqs_row_t *row;
  const char *p, *end; /* what is left of the value */
  int binary;
  int index; /* elements handed out */
  uint32_t type;
  const char *name;
  pqs__schema_t schema;
  pqs__cell_t cell;
  pqs_row_t elem;
} array_t;

_Static_assert(sizeof(array_t) <= sizeof(((pqs_array_t *)0)->private_),
               "pqs_array_t's private part is too small");

static const uint32_t arrays[][2] = {
    {PQS_OID_BOOL_ARRAY, PQS_OID_BOOL},
    {PQS_OID_BYTEA_ARRAY, PQS_OID_BYTEA},
    {PQS_OID_INT2_ARRAY, PQS_OID_INT2},
    {PQS_OID_INT4_ARRAY, PQS_OID_INT4},
    {PQS_OID_TEXT_ARRAY, PQS_OID_TEXT},
    {PQS_OID_BPCHAR_ARRAY, PQS_OID_BPCHAR},
    {PQS_OID_VARCHAR_ARRAY, PQS_OID_VARCHAR},
    {PQS_OID_INT8_ARRAY, PQS_OID_INT8},
    {PQS_OID_FLOAT4_ARRAY, PQS_OID_FLOAT4},
    {PQS_OID_FLOAT8_ARRAY, PQS_OID_FLOAT8},
    {PQS_OID_OID_ARRAY, PQS_OID_OID},
    {PQS_OID_TIMESTAMP_ARRAY, PQS_OID_TIMESTAMP},
    {PQS_OID_DATE_ARRAY, PQS_OID_DATE},
    {PQS_OID_TIME_ARRAY, PQS_OID_TIME},
    {PQS_OID_TIMESTAMPTZ_ARRAY, PQS_OID_TIMESTAMPTZ},
    {PQS_OID_INTERVAL_ARRAY, PQS_OID_INTERVAL},
    {PQS_OID_NUMERIC_ARRAY, PQS_OID_NUMERIC},
    {PQS_OID_UUID_ARRAY, PQS_OID_UUID},
    {PQS_OID_JSON_ARRAY, PQS_OID_JSON},
    {PQS_OID_JSONB_ARRAY, PQS_OID_JSONB},
};

static uint32_t elem_type(uint32_t array_type) {
  for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++)
    if (arrays[i][0] == array_type)
      return arrays[i][1];
  return 0;
}

/* Binary: the header. Leaves a->p at the first element. */
static int binary_open(array_t *a, pqs_array_t *out) {
  const char *p = a->p;
  size_t n = (size_t)(a->end - p);
  if (n < 12)
    return PQS_EFORMAT;
  int32_t ndim = (int32_t)pqs__be32(p);
  uint32_t type = pqs__be32(p + 8);
  if (ndim == 0) { /* '{}' */
    out->lower = 1;
    out->len = 0;
    a->p = a->end;
    return 0;
  }
  if (ndim != 1 || n < 20 || type != a->type)
    return PQS_EFORMAT;
  int32_t len = (int32_t)pqs__be32(p + 12);
  if (len < 0)
    return PQS_EFORMAT;
  out->len = len;
  out->lower = (int32_t)pqs__be32(p + 16);
  a->p = p + 20;
  return 0;
}

/* Text: the bounds decoration, if any, then the brace; counts the
 * elements. */
static int text_open(array_t *a, pqs_array_t *out) {
  const char *p = a->p, *end = a->end;
  out->lower = 1;
  if (p < end && *p == '[') {
    int64_t lo = 0, sign = 1;
    p++;
    if (p < end && *p == '-')
      sign = -1, p++;
    if (p >= end || !isdigit((unsigned char)*p))
      return PQS_EFORMAT;
    /* Any int32 the server allows, INT_MIN included. */
    while (p < end && isdigit((unsigned char)*p)) {
      lo = lo * 10 + (*p++ - '0');
      if (lo > (int64_t)INT32_MAX + (sign < 0))
        return PQS_EFORMAT;
    }
    out->lower = (int)(sign * lo);
    while (p < end && *p != '=')
      p++;
    if (p >= end || memchr(a->p, ']', (size_t)(p - a->p)) == NULL)
      return PQS_EFORMAT;
    p++;
  }
  if (p >= end || *p != '{' || end[-1] != '}')
    return PQS_EFORMAT;
  p++;
  a->p = p;
  a->end = end - 1; /* without the closing brace */
  int count = 0, quoted = 0;
  for (const char *s = p; s < a->end; s++) {
    if (quoted && *s == '\\') {
      s++;
    } else if (*s == '"') {
      quoted = !quoted;
    } else if (!quoted && (*s == '{' || *s == '}')) {
      return PQS_EFORMAT; /* more than one dimension */
    } else if (!quoted && *s == ',') {
      count++;
    }
  }
  out->len = a->p < a->end ? count + 1 : 0;
  return quoted ? PQS_EFORMAT : 0;
}

int pqs_row_array(const pqs_row_t *row, int col, pqs_array_t *out) {
  const char *p;
  size_t n;
  if (out == NULL || row == NULL)
    return PQS_EINVAL;
  uint32_t type = elem_type(pqs_row_type(row, col));
  uint32_t ok[1] = {type ? pqs_row_type(row, col) : UINT32_MAX};
  int rc = pqs__row_typed(row, col, out, ok, 1, &p, &n);
  if (rc != 0)
    return rc;
  array_t *a = (array_t *)(void *)out->private_;
  *a = (array_t){.row = row, .p = p, .end = p + n, .binary = pqs__row_binary(row),
                 .type = type, .name = row->schema->names[col]};
  out->elem_type = type;
  rc = a->binary ? binary_open(a, out) : text_open(a, out);
  if (rc != 0)
    return rc;
  /* An element's text follows the settings its array's did. */
  a->schema = (pqs__schema_t){.ncols = 1, .names = &a->name,
                              .types = &a->type, .binary = a->binary,
                              .text = row->schema->text, .nfields = 1};
  return 0;
}

/* A copy of [p, p + n) with a NUL, in the row's arena. */
static const char *keep(const array_t *a, const char *p, size_t n) {
  char *c = a->row->arena ? pqs__arena_alloc(a->row->arena, n + 1) : NULL;
  if (c != NULL) {
    memcpy(c, p, n);
    c[n] = '\0';
  }
  return c;
}

static int binary_next(array_t *a) {
  if (a->end - a->p < 4)
    return PQS_EFORMAT;
  int32_t len = (int32_t)pqs__be32(a->p);
  a->p += 4;
  if (len == -1) {
    a->cell = (pqs__cell_t){NULL, -1};
    return 1;
  }
  if (len < 0 || len > a->end - a->p)
    return PQS_EFORMAT;
  /* Text-like elements are read as NUL-terminated text: copied. */
  const char *v = pqs__binary_has_text(a->type) && a->type != PQS_OID_BYTEA &&
                          a->type != PQS_OID_UUID
                      ? keep(a, a->p, (size_t)len)
                      : a->p;
  if (v == NULL)
    return PQS_ENOMEM;
  a->cell = (pqs__cell_t){v, len};
  a->p += len;
  return 1;
}

static int text_next(array_t *a) {
  const char *p = a->p, *end = a->end;
  if (*p == '"') { /* quoted: backslash escapes anything */
    size_t n = 0;
    const char *s = p + 1;
    for (; s < end && *s != '"'; s++, n++)
      if (*s == '\\')
        s++;
    if (s >= end)
      return PQS_EFORMAT;
    char *c = a->row->arena ? pqs__arena_alloc(a->row->arena, n + 1) : NULL;
    if (c == NULL)
      return PQS_ENOMEM;
    size_t w = 0;
    for (const char *r = p + 1; r < s; r++)
      c[w++] = *r == '\\' ? *++r : *r;
    c[w] = '\0';
    a->cell = (pqs__cell_t){c, (int)w};
    p = s + 1;
  } else {
    const char *s = memchr(p, ',', (size_t)(end - p));
    size_t n = (size_t)((s ? s : end) - p);
    if (n == 4 && strncasecmp(p, "NULL", 4) == 0) {
      a->cell = (pqs__cell_t){NULL, -1};
    } else {
      const char *c = keep(a, p, n);
      if (c == NULL)
        return PQS_ENOMEM;
      a->cell = (pqs__cell_t){c, (int)n};
    }
    p += n;
  }
  if (p < end && *p++ != ',')
    return PQS_EFORMAT;
  a->p = p;
  return 1;
}

int pqs_array_next(pqs_array_t *arr, const pqs_row_t **elem) {
  if (arr == NULL || elem == NULL)
    return PQS_EINVAL;
  array_t *a = (array_t *)(void *)arr->private_;
  if (a->index >= arr->len)
    return 0;
  int rc = a->binary ? binary_next(a) : text_next(a);
  if (rc != 1)
    return rc;
  a->index++;
  a->elem = (pqs_row_t){.schema = &a->schema, .cells = &a->cell,
                        .input = a->row->input, .arena = a->row->arena};
  *elem = &a->elem;
  return 1;
}
