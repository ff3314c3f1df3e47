/* JSON Lines: one object per row, keys in column order, each value as the
 * server's row_to_json() renders it, so that parsing a line gives the same
 * value: numbers as numbers (NaN and infinities as strings), booleans, NULL
 * as null, json and jsonb embedded, dates and timestamps in the ISO 8601
 * form json uses, arrays of known types as JSON arrays, everything else as
 * a string. Assumes the server's DateStyle is ISO (the default). Composite
 * and domain types come out as strings (their text gives no types). */
#include <string.h>

#include "../src/core.h"
#include "format.h"

/* How json renders a type. */
typedef enum { K_STRING, K_NUMBER, K_BOOL, K_JSON, K_TIMESTAMP } kind_t;

static kind_t kind_of(uint32_t type) {
  switch (type) {
  case PQS_OID_INT2:
  case PQS_OID_INT4:
  case PQS_OID_INT8:
  case PQS_OID_FLOAT4:
  case PQS_OID_FLOAT8:
  case PQS_OID_NUMERIC:
    return K_NUMBER;
  case PQS_OID_BOOL:
    return K_BOOL;
  case PQS_OID_JSON:
  case PQS_OID_JSONB:
    return K_JSON;
  case PQS_OID_TIMESTAMP:
  case PQS_OID_TIMESTAMPTZ:
    return K_TIMESTAMP;
  default:
    return K_STRING; /* dates already print as json prints them */
  }
}

/* The element type of the array types whose elements json renders other
 * than as strings, or text for the common arrays of strings; 0 if `type`
 * is no array this file knows. */
static uint32_t element_of(uint32_t type) {
  switch (type) {
  case 1000:
    return PQS_OID_BOOL;
  case 1005:
    return PQS_OID_INT2;
  case 1007:
    return PQS_OID_INT4;
  case 1016:
    return PQS_OID_INT8;
  case 1021:
    return PQS_OID_FLOAT4;
  case 1022:
    return PQS_OID_FLOAT8;
  case 1231:
    return PQS_OID_NUMERIC;
  case 199:
    return PQS_OID_JSON;
  case 3807:
    return PQS_OID_JSONB;
  case 1115:
    return PQS_OID_TIMESTAMP;
  case 1185:
    return PQS_OID_TIMESTAMPTZ;
  case 1182:
    return PQS_OID_DATE;
  case 1009:
  case 1015:
  case 1014:
  case 1003:
  case 1001:
  case 1002:
  case 1028:
  case 1183:
  case 1187:
  case 1270:
  case 2951:
  case 1041:
  case 651:
  case 1040:
    return PQS_OID_TEXT; /* text varchar bpchar name bytea char oid time interval
                      timetz uuid inet cidr macaddr */
  default:
    return 0;
  }
}

static int string(pqs__buf_t *out, const char *v, size_t len) {
  if (pqs__buf_reserve(out, 6 * len + 2) != 0)
    return PQS_ENOMEM;
  static const char hex[] = "0123456789abcdef";
  pqs__buf_putc(out, '"');
  for (size_t i = 0; i < len; i++) {
    unsigned char c = (unsigned char)v[i];
    const char *e = NULL;
    switch (c) {
    case '"':
      e = "\\\"";
      break;
    case '\\':
      e = "\\\\";
      break;
    case '\b':
      e = "\\b";
      break;
    case '\f':
      e = "\\f";
      break;
    case '\n':
      e = "\\n";
      break;
    case '\r':
      e = "\\r";
      break;
    case '\t':
      e = "\\t";
      break;
    default:
      break;
    }
    if (e != NULL) {
      pqs__buf_put(out, e, 2);
    } else if (c < 0x20) {
      char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
      pqs__buf_put(out, u, 6);
    } else {
      pqs__buf_putc(out, (char)c);
    }
  }
  pqs__buf_putc(out, '"');
  return 0;
}

static int digits(const char *v, size_t len, size_t *i) {
  size_t start = *i;
  while (*i < len && v[*i] >= '0' && v[*i] <= '9')
    (*i)++;
  return *i > start;
}

/* JSON's number grammar: what json emits unquoted (NaN, Infinity and
 * anything else not matching it are quoted, as the server does). */
static int is_json_number(const char *v, size_t len) {
  size_t i = 0;
  if (i < len && v[i] == '-')
    i++;
  if (i < len && v[i] == '0')
    i++;
  else if (!digits(v, len, &i))
    return 0;
  if (i < len && v[i] == '.') {
    i++;
    if (!digits(v, len, &i))
      return 0;
  }
  if (i < len && (v[i] == 'e' || v[i] == 'E')) {
    i++;
    if (i < len && (v[i] == '+' || v[i] == '-'))
      i++;
    if (!digits(v, len, &i))
      return 0;
  }
  return i == len;
}

/* ISO text "2026-01-01 10:00:00+02" becomes json's
 * "2026-01-01T10:00:00+02:00": a T between date and time, and a zone of
 * hours only gets its minutes. Infinities (and years past 9999 or BC,
 * which this does not convert) keep their text. */
static int timestamp(pqs__buf_t *out, const char *v, size_t len) {
  char tmp[64];
  if (len < 19 || len + 3 > sizeof(tmp) || v[10] != ' ')
    return string(out, v, len);
  memcpy(tmp, v, len);
  tmp[10] = 'T';
  for (size_t i = 19; i < len; i++) {
    if (tmp[i] == '+' || tmp[i] == '-') {
      if (memchr(tmp + i, ':', len - i) == NULL) {
        memcpy(tmp + len, ":00", 3);
        len += 3;
      }
      break;
    }
  }
  return string(out, tmp, len);
}

static int value(pqs__buf_t *out, uint32_t type, const char *v, size_t len);

/* One element of an array's text, unquoted and unescaped into `el`. */
static int array_element(pqs__buf_t *out, uint32_t elem, const char **p,
                         const char *end, pqs__buf_t *el) {
  const char *s = *p;
  el->len = 0;
  if (s < end && *s == '"') {
    for (s++; s < end && *s != '"'; s++) {
      if (*s == '\\' && s + 1 < end)
        s++;
      if (pqs__buf_append(el, s, 1) != 0)
        return PQS_ENOMEM;
    }
    *p = s + 1;
    return value(out, elem, el->data ? el->data : "", el->len);
  }
  const char *start = s;
  while (s < end && *s != ',' && *s != '}')
    s++;
  *p = s;
  size_t n = (size_t)(s - start);
  if (n == 4 && strncmp(start, "NULL", 4) == 0)
    return pqs__buf_append(out, "null", 4);
  return value(out, elem, start, n);
}

/* "{...}" at *p, nested for more dimensions, as a JSON array. */
static int array_level(pqs__buf_t *out, uint32_t elem, const char **p,
                       const char *end, pqs__buf_t *el) {
  if (*p >= end || **p != '{')
    return -1;
  (*p)++;
  if (pqs__buf_append(out, "[", 1) != 0)
    return PQS_ENOMEM;
  int first = 1;
  while (*p < end && **p != '}') {
    if (!first && **p == ',')
      (*p)++;
    if (!first && pqs__buf_append(out, ",", 1) != 0)
      return PQS_ENOMEM;
    first = 0;
    int rc = **p == '{' ? array_level(out, elem, p, end, el)
                        : array_element(out, elem, p, end, el);
    if (rc != 0)
      return rc;
  }
  if (*p >= end)
    return -1;
  (*p)++;
  return pqs__buf_append(out, "]", 1);
}

static int array(pqs__buf_t *out, uint32_t elem, const char *v, size_t len) {
  const char *p = v, *end = v + len;
  if (p < end && *p == '[') { /* bounds other than 1: "[0:1]={...}" */
    const char *eq = memchr(p, '=', len);
    if (eq == NULL)
      return string(out, v, len);
    p = eq + 1;
  }
  pqs__buf_t el = {0};
  size_t mark = out->len;
  int rc = array_level(out, elem, &p, end, &el);
  pqs__buf_free(&el);
  if (rc < 0 && rc != PQS_ENOMEM) { /* not what was expected: a string */
    out->len = mark;
    return string(out, v, len);
  }
  return rc;
}

static int value(pqs__buf_t *out, uint32_t type, const char *v, size_t len) {
  uint32_t elem = element_of(type);
  if (elem != 0)
    return array(out, elem, v, len);
  switch (kind_of(type)) {
  case K_NUMBER:
    return is_json_number(v, len) ? pqs__buf_append(out, v, len)
                                  : string(out, v, len);
  case K_BOOL: /* anything but the server's t and f (a map's "yes") stays
                 a string: never silently turned into false */
    if (len == 1 && (v[0] == 't' || v[0] == 'f'))
      return v[0] == 't' ? pqs__buf_append(out, "true", 4)
                         : pqs__buf_append(out, "false", 5);
    return string(out, v, len);
  case K_JSON:
    return pqs__buf_append(out, v, len);
  case K_TIMESTAMP:
    return timestamp(out, v, len);
  default:
    return string(out, v, len);
  }
}

int pqs__jsonl_row(pqs__buf_t *out, const pqs_row_t *row) {
  int n = pqs_row_ncols(row);
  if (pqs__buf_append(out, "{", 1) != 0)
    return PQS_ENOMEM;
  for (int i = 0; i < n; i++) {
    const char *name = pqs_row_name(row, i);
    if ((i > 0 && pqs__buf_append(out, ",", 1) != 0) ||
        string(out, name, strlen(name)) != 0 ||
        pqs__buf_append(out, ":", 1) != 0)
      return PQS_ENOMEM;
    size_t len;
    const char *v;
    int rc = pqs__row_text_or_null(row, i, &v, &len);
    if (rc != 0)
      return rc;
    rc = v == NULL ? pqs__buf_append(out, "null", 4)
                   : value(out, pqs_row_type(row, i), v, len);
    if (rc != 0)
      return rc;
  }
  return pqs__buf_append(out, "}\n", 2);
}
