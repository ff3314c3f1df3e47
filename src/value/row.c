/* Reading rows: names, types, text and typed values, owned copies. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "binary.h"
#include "json_types.h"
#include "row_int.h"

/* One allocation: the schema, its name pointers, types, json_elem,
 * json_at if `json`, json_how, then the names. */
static pqs__schema_t *schema_build(int n,
                                   const char *(*name)(const void *, int),
                                   uint32_t (*type)(const void *, int),
                                   const void *from, int json) {
  size_t size = sizeof(pqs__schema_t) +
                n * (sizeof(char *) + 2 * sizeof(uint32_t) + 1 +
                     (json ? sizeof(int) : 0));
  for (int i = 0; i < n; i++)
    size += strlen(name(from, i)) + 1;
  pqs__schema_t *schema = pqs__malloc(size);
  if (schema == NULL)
    return NULL;
  const char **names = (const char **)(schema + 1);
  uint32_t *types = (uint32_t *)(names + n);
  uint32_t *json_elem = types + n;
  int *json_at = (int *)(json_elem + n);
  unsigned char *json_how = (unsigned char *)(json_at + (json ? n : 0));
  char *p = (char *)(json_how + n);
  for (int i = 0; i < n; i++) {
    size_t len = strlen(name(from, i)) + 1;
    names[i] = memcpy(p, name(from, i), len);
    p += len;
    types[i] = type(from, i);
    json_how[i] = (unsigned char)pqs__json_how(
        types[i], PQS__JSON_ISO_DATES, &json_elem[i]);
  }
  schema->ncols = n;
  schema->names = names;
  schema->types = types;
  schema->binary = 0;
  schema->text = PQS__TEXT_SETTINGS_DEFAULT;
  schema->json_at = json ? json_at : NULL;
  schema->nfields = n;
  schema->json_how = json_how;
  schema->json_elem = json_elem;
  schema->raw_copy = 0;
  return schema;
}

static const char *res_name(const void *res, int i) { return PQfname(res, i); }
static uint32_t res_type(const void *res, int i) { return PQftype(res, i); }
static const char *schema_name(const void *s, int i) {
  return ((const pqs__schema_t *)s)->names[i];
}
static uint32_t schema_type(const void *s, int i) {
  return ((const pqs__schema_t *)s)->types[i];
}

pqs__schema_t *pqs__schema_from_result(const PGresult *res) {
  pqs__schema_t *s = schema_build(PQnfields(res), res_name, res_type, res, 0);
  if (s != NULL) /* one format for all columns: pqstream asks for that */
    s->binary = s->ncols > 0 && PQfformat(res, 0) == 1;
  return s;
}

pqs__schema_t *pqs__schema_copy(const pqs__schema_t *schema) {
  int json = schema->json_at != NULL;
  pqs__schema_t *s =
      schema_build(schema->ncols, schema_name, schema_type, schema, json);
  if (s == NULL)
    return NULL;
  s->binary = schema->binary;
  s->text = schema->text;
  s->raw_copy = schema->raw_copy;
  if (json) {
    memcpy((int *)s->json_at, schema->json_at, (size_t)s->ncols * sizeof(int));
    s->nfields = schema->nfields;
  }
  return s;
}

pqs__schema_t *pqs__schema_with_json(const pqs__schema_t *schema,
                                     const unsigned char *server) {
  pqs__schema_t *s =
      schema_build(schema->ncols, schema_name, schema_type, schema, 1);
  if (s == NULL)
    return NULL;
  s->binary = schema->binary;
  s->text = schema->text;
  int *json_at = (int *)s->json_at;
  for (int i = 0; i < s->ncols; i++)
    json_at[i] = server[i] ? s->nfields++ : -1;
  return s;
}

/* The one place a value is looked up, whichever kind of row holds it.
 * Returns 0 with *ptr NULL for SQL NULL, PQS_EINVAL if col is out of
 * range. Hot path: a SQL NULL always has length 0, so PQgetisnull is asked
 * only about empty values. */
static inline int field_at(const pqs_row_t *row, int col, const char **ptr,
                           size_t *len) {
  if (row->res != NULL) {
    int n = PQgetlength(row->res, 0, col);
    *len = (size_t)n;
    *ptr = n == 0 && PQgetisnull(row->res, 0, col)
               ? NULL
               : PQgetvalue(row->res, 0, col);
    return 0;
  }
  const pqs__cell_t *cells = row->cells;
  if (cells == NULL && row->lazy != NULL)
    cells = row->lazy(row);
  if (cells != NULL && cells[col].len >= 0) {
    *ptr = cells[col].ptr;
    *len = (size_t)cells[col].len;
  } else {
    *ptr = NULL;
    *len = 0;
  }
  return 0;
}

static inline int cell(const pqs_row_t *row, int col, const char **ptr,
                       size_t *len) {
  if (row == NULL || (unsigned)col >= (unsigned)row->schema->ncols) {
    *ptr = NULL;
    *len = 0;
    return PQS_EINVAL;
  }
  return field_at(row, col, ptr, len);
}

int pqs__row_field(const pqs_row_t *row, int field, const char **ptr,
                   size_t *len) {
  if (row == NULL || (unsigned)field >= (unsigned)row->schema->nfields) {
    *ptr = NULL;
    *len = 0;
    return PQS_EINVAL;
  }
  return field_at(row, field, ptr, len);
}

/* Hot path of a program reading numbers from binary COPY: the cell of a
 * binary row held in cells, with a value in `col`. NULL sends the getter
 * down its general path, which owns every error. */
static inline const pqs__cell_t *binary_value(const pqs_row_t *row, int col) {
  if (row == NULL || !row->schema->binary || row->cells == NULL ||
      (unsigned)col >= (unsigned)row->schema->ncols || row->cells[col].len < 0)
    return NULL;
  return &row->cells[col];
}

/* binary_value's counterpart for a single-row result, kept off the
 * cells' path (it calls into libpq, which would cost every COPY row's
 * getter a stack frame): 1 with *c set to the non-empty value of a binary
 * row in `col`; 0 sends the getter down its general path. */
static int result_value(const pqs_row_t *row, int col, pqs__cell_t *c) {
  if (row == NULL || row->res == NULL || !row->schema->binary ||
      (unsigned)col >= (unsigned)row->schema->ncols ||
      (c->len = PQgetlength(row->res, 0, col)) <= 0)
    return 0;
  c->ptr = PQgetvalue(row->res, 0, col);
  return 1;
}

int pqs__row_raw(const pqs_row_t *row, int col, const char **ptr,
                 size_t *len) {
  return cell(row, col, ptr, len);
}

int pqs_row_ncols(const pqs_row_t *row) { return row->schema->ncols; }

int pqs_row_is_binary(const pqs_row_t *row) {
  return row != NULL && row->schema->binary;
}

const char *pqs_row_name(const pqs_row_t *row, int col) {
  return col >= 0 && col < row->schema->ncols ? row->schema->names[col] : NULL;
}

/* `name` as PQfnumber reads it into `out` (cap bytes): unquoted, folded
 * to lower case; "quoted", as it is with "" for a quote. 0, or -1 if it
 * does not fit or a quote is not closed. */
static int column_name(const char *name, char *out, size_t cap) {
  size_t n = 0;
  int quoted = name[0] == '"';
  for (const char *p = name + quoted; *p; p++) {
    if (quoted && *p == '"') {
      if (p[1] != '"') {
        if (p[1] != '\0')
          return -1; /* text after the closing quote */
        quoted = 2;
        break;
      }
      p++;
    }
    if (n + 1 >= cap)
      return -1;
    out[n++] = quoted ? *p : (char)tolower((unsigned char)*p);
  }
  if (quoted == 1)
    return -1;
  out[n] = '\0';
  return 0;
}

int pqs_row_col(const pqs_row_t *row, const char *name) {
  char want[256];
  if (row == NULL || name == NULL ||
      column_name(name, want, sizeof(want)) != 0)
    return -1;
  for (int i = 0; i < row->schema->ncols; i++)
    if (strcmp(row->schema->names[i], want) == 0)
      return i;
  return -1;
}

uint32_t pqs_row_type(const pqs_row_t *row, int col) {
  return col >= 0 && col < row->schema->ncols ? row->schema->types[col] : 0;
}

int pqs_row_is_null(const pqs_row_t *row, int col) {
  const char *p;
  size_t n;
  int rc = cell(row, col, &p, &n);
  return rc != 0 ? rc : p == NULL;
}

/* Hot path. */
const char *pqs_row_text(const pqs_row_t *row, int col, size_t *len) {
  const char *p = NULL;
  size_t n = 0;
  const pqs__cell_t *c = binary_value(row, col);
  pqs__cell_t rv;
  if (c == NULL && result_value(row, col, &rv))
    c = &rv;
  if (c != NULL && pqs__binary_is_text(row->schema->types[col])) {
    p = c->ptr;
    n = (size_t)c->len;
  } else if (row != NULL && row->schema->binary) {
    if (pqs_row_get_text(row, col, &p, &n) != 0)
      p = NULL, n = 0;
  } else {
    cell(row, col, &p, &n);
  }
  if (len != NULL)
    *len = n;
  return p;
}

int pqs_row_get_text(const pqs_row_t *row, int col, const char **text,
                     size_t *len) {
  const char *p;
  size_t n;
  int rc = text == NULL ? PQS_EINVAL : cell(row, col, &p, &n);
  if (rc != 0)
    return rc;
  if (p == NULL)
    return PQS_ENULL;
  if (row->schema->binary &&
      (rc = pqs__binary_text(row->arena, &row->schema->text,
                                   row->schema->types[col], &p, &n)) != 0)
    return rc;
  *text = p;
  if (len != NULL)
    *len = n;
  return 0;
}

/* The stored bytes of a non-NULL value of one of the `ok` types. Inline
 * for the getters of this file, whose type lists are constants: the hot
 * path of a program that reads numbers. */
static inline int typed(const pqs_row_t *row, int col, const void *out,
                        const uint32_t *ok, int nok, const char **text,
                        size_t *len) {
  size_t n;
  if (out == NULL)
    return PQS_EINVAL;
  int rc = cell(row, col, text, &n);
  if (len != NULL)
    *len = n;
  if (rc != 0)
    return rc;
  uint32_t type = row->schema->types[col];
  int match = 0;
  for (int i = 0; i < nok; i++)
    match |= ok[i] == type;
  if (!match)
    return PQS_ETYPE;
  return *text == NULL ? PQS_ENULL : 0;
}

int pqs__row_typed(const pqs_row_t *row, int col, const void *out,
                   const uint32_t *ok, int nok, const char **text,
                   size_t *len) {
  return typed(row, col, out, ok, nok, text, len);
}

static int parse_int(const char *text, long long lo, long long hi,
                     long long *v) {
  char *end;
  errno = 0;
  long long x = strtoll(text, &end, 10);
  if (end == text || *end != '\0')
    return PQS_ETYPE;
  if (errno == ERANGE || x < lo || x > hi)
    return PQS_ERANGE;
  *v = x;
  return 0;
}

/* Every integer getter reads every integer type; a value that does not fit
 * the getter's width is PQS_ERANGE, never a silent truncation. */
static const uint32_t ints[] = {PQS_OID_INT2, PQS_OID_INT4, PQS_OID_INT8,
                                PQS_OID_OID};

/* An integer column's value within [min, max]: the general path. */
static int read_int(const pqs_row_t *row, int col, void *out, long long min,
                    long long max, long long *v) {
  pqs__cell_t c;
  int64_t b;
  if (out != NULL && result_value(row, col, &c) &&
      pqs__binary_int(row->schema->types[col], c.ptr, (size_t)c.len, &b) ==
          0 &&
      b >= min && b <= max) {
    *v = b;
    return 0;
  }
  const char *t;
  size_t n;
  int rc = typed(row, col, out, ints, 4, &t, &n);
  if (rc != 0 || !row->schema->binary)
    return rc ? rc : parse_int(t, min, max, v);
  int64_t x;
  if ((rc = pqs__binary_int(row->schema->types[col], t, n, &x)) != 0)
    return rc;
  if (x < min || x > max)
    return PQS_ERANGE;
  *v = x;
  return 0;
}

/* The integer getters' fast path: 1 with *x set from a binary cell within
 * [min, max]; 0 sends the getter to read_int. */
static inline int fast_int(const pqs_row_t *row, int col, const void *out,
                           int64_t min, int64_t max, int64_t *x) {
  const pqs__cell_t *c = binary_value(row, col);
  return c != NULL && out != NULL &&
         pqs__binary_int(row->schema->types[col], c->ptr, (size_t)c->len,
                         x) == 0 &&
         *x >= min && *x <= max;
}

int pqs_row_int16(const pqs_row_t *row, int col, int16_t *out) {
  int64_t x;
  long long v;
  if (fast_int(row, col, out, INT16_MIN, INT16_MAX, &x)) {
    *out = (int16_t)x;
    return 0;
  }
  int rc = read_int(row, col, out, INT16_MIN, INT16_MAX, &v);
  if (rc == 0)
    *out = (int16_t)v;
  return rc;
}

int pqs_row_int32(const pqs_row_t *row, int col, int32_t *out) {
  int64_t x;
  long long v;
  if (fast_int(row, col, out, INT32_MIN, INT32_MAX, &x)) {
    *out = (int32_t)x;
    return 0;
  }
  int rc = read_int(row, col, out, INT32_MIN, INT32_MAX, &v);
  if (rc == 0)
    *out = (int32_t)v;
  return rc;
}

int pqs_row_int64(const pqs_row_t *row, int col, int64_t *out) {
  int64_t x;
  long long v;
  if (fast_int(row, col, out, INT64_MIN, INT64_MAX, &x)) {
    *out = x;
    return 0;
  }
  int rc = read_int(row, col, out, INT64_MIN, INT64_MAX, &v);
  if (rc == 0)
    *out = (int64_t)v;
  return rc;
}

int pqs_row_double(const pqs_row_t *row, int col, double *out) {
  static const uint32_t ok[] = {PQS_OID_FLOAT4, PQS_OID_FLOAT8, PQS_OID_INT2, PQS_OID_INT4,
                                PQS_OID_INT8};
  const pqs__cell_t *c = binary_value(row, col);
  pqs__cell_t rv;
  if (c == NULL && result_value(row, col, &rv))
    c = &rv;
  if (c != NULL && out != NULL &&
      pqs__binary_double(row->schema->types[col], c->ptr, (size_t)c->len,
                         out) == 0)
    return 0;
  const char *t;
  size_t n;
  int rc = typed(row, col, out, ok, 5, &t, &n);
  if (rc != 0)
    return rc;
  if (row->schema->binary) {
    double v;
    if ((rc = pqs__binary_double(row->schema->types[col], t, n, &v)) == 0)
      *out = v;
    return rc;
  }
  if (row->schema->types[col] == PQS_OID_INT8) {
    /* Beyond 2^53 a double no longer holds every integer exactly. */
    long long v;
    if ((rc = parse_int(t, -(1LL << 53), 1LL << 53, &v)) == 0)
      *out = (double)v;
    return rc;
  }
  /* The server writes "NaN", "Infinity" and "-Infinity"; strtod reads all
   * three. Values are printed exactly (extra_float_digits >= 1, the
   * default since PostgreSQL 12), so the parse is exact too. */
  char *end;
  errno = 0;
  /* A float4's text is the shortest that reads back as that float: read
   * as a float, so that text and binary rows give the same double. */
  double v = row->schema->types[col] == PQS_OID_FLOAT4 ? strtof(t, &end)
                                                      : strtod(t, &end);
  if (end == t || *end != '\0')
    return PQS_ETYPE;
  if (errno == ERANGE && v != 0 && !isinf(v)) /* subnormal: still exact */
    errno = 0;
  if (errno == ERANGE)
    return PQS_ERANGE;
  *out = v;
  return 0;
}

int pqs_row_bool(const pqs_row_t *row, int col, int *out) {
  static const uint32_t ok[] = {PQS_OID_BOOL};
  const char *t;
  size_t n;
  int rc = typed(row, col, out, ok, 1, &t, &n);
  if (rc == 0 && row->schema->binary && n != 1)
    return PQS_EFORMAT;
  if (rc == 0)
    *out = row->schema->binary ? t[0] != 0 : t[0] == 't';
  return rc;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* bytea_output = escape: bytes as they are, but a backslash doubled and
 * other bytes as \ooo. Counted first, then written if `cap` allows. */
static int bytea_unescape(const char *t, size_t n, void *buf, size_t cap,
                          size_t *len) {
  unsigned char *dst = buf;
  size_t bytes = 0;
  for (int pass = 0; pass < 2; pass++) {
    bytes = 0;
    for (size_t i = 0; i < n; bytes++) {
      unsigned char b = (unsigned char)t[i];
      if (b != '\\') {
        i++;
      } else if (i + 1 < n && t[i + 1] == '\\') {
        i += 2;
      } else if (i + 3 < n && t[i + 1] >= '0' && t[i + 1] <= '3' &&
                 t[i + 2] >= '0' && t[i + 2] <= '7' && t[i + 3] >= '0' &&
                 t[i + 3] <= '7') {
        b = (unsigned char)((t[i + 1] - '0') << 6 | (t[i + 2] - '0') << 3 |
                            (t[i + 3] - '0'));
        i += 4;
      } else {
        return PQS_ETYPE; /* neither format */
      }
      if (pass == 1)
        dst[bytes] = b;
    }
    *len = bytes;
    if (pass == 0 && (buf == NULL || cap < bytes))
      return PQS_ERANGE;
  }
  return 0;
}

int pqs_row_bytea(const pqs_row_t *row, int col, void *buf, size_t cap,
                  size_t *len) {
  static const uint32_t ok[] = {PQS_OID_BYTEA};
  const char *t;
  size_t n;
  int rc = typed(row, col, len, ok, 1, &t, &n);
  if (rc != 0)
    return rc;
  if (row->schema->binary) { /* the bytes themselves */
    *len = n;
    if (buf == NULL || cap < n)
      return PQS_ERANGE;
    if (n > 0)
      memcpy(buf, t, n);
    return 0;
  }
  if (n < 2 || t[0] != '\\' || t[1] != 'x')
    return bytea_unescape(t, n, buf, cap, len); /* bytea_output = escape */
  if (n % 2 != 0)
    return PQS_ETYPE;
  size_t bytes = (n - 2) / 2;
  *len = bytes;
  if (buf == NULL || cap < bytes)
    return PQS_ERANGE;
  unsigned char *dst = buf;
  for (size_t i = 0; i < bytes; i++) {
    int hi = hexval(t[2 + 2 * i]), lo = hexval(t[3 + 2 * i]);
    if (hi < 0 || lo < 0)
      return PQS_ETYPE;
    dst[i] = (unsigned char)(hi << 4 | lo);
  }
  return 0;
}

/* One allocation: row, arena, schema, names, cells, types, then the
 * values (in that order so that each part stays aligned). A binary row's
 * values are copied as bytes: the copy is a binary row too. */
pqs_row_t *pqs_row_dup(const pqs_row_t *row) {
  int n = row->schema->ncols;
  size_t size = sizeof(pqs_row_t) + sizeof(pqs__arena_t) +
                sizeof(pqs__schema_t) +
                n * (sizeof(char *) + sizeof(uint32_t) + sizeof(pqs__cell_t));
  for (int i = 0; i < n; i++) {
    size_t len;
    const char *p;
    cell(row, i, &p, &len);
    size += strlen(row->schema->names[i]) + 1 + (p ? len + 1 : 0);
  }
  pqs_row_t *copy = pqs__malloc(size);
  if (copy == NULL)
    return NULL;
  pqs__arena_t *arena = (pqs__arena_t *)(copy + 1);
  *arena = (pqs__arena_t){0};
  pqs__schema_t *schema = (pqs__schema_t *)(arena + 1);
  const char **names = (const char **)(schema + 1);
  pqs__cell_t *cells = (pqs__cell_t *)(names + n);
  uint32_t *types = (uint32_t *)(cells + n);
  char *p = (char *)(types + n);
  for (int i = 0; i < n; i++) {
    size_t len = strlen(row->schema->names[i]) + 1;
    names[i] = memcpy(p, row->schema->names[i], len);
    p += len;
    types[i] = row->schema->types[i];
    const char *v;
    cell(row, i, &v, &len);
    cells[i].len = v ? (int)len : -1;
    cells[i].ptr = NULL;
    if (v != NULL) {
      cells[i].ptr = memcpy(p, v, len);
      p[len] = '\0';
      p += len + 1;
    }
  }
  schema->ncols = n;
  schema->names = names;
  schema->types = types;
  schema->binary = row->schema->binary;
  schema->text = row->schema->text;
  schema->json_at = NULL; /* only the columns are copied */
  schema->nfields = n;
  schema->raw_copy = row->schema->raw_copy;
  schema->json_how = NULL;
  schema->json_elem = NULL;
  copy->schema = schema;
  copy->arena = arena;
  copy->res = NULL;
  copy->cells = cells;
  copy->input = row->input;
  copy->line = NULL;
  copy->line_len = 0;
  copy->line_format = 0;
  copy->lazy = NULL;
  copy->lazy_data = NULL;
  return copy;
}

void pqs_row_free(pqs_row_t *row) {
  if (row != NULL)
    pqs__arena_free(row->arena); /* its own, right after it */
  pqs__free(row);
}
