/* JSON text of values, byte for byte as the server's json writer
 * (row_to_json, to_json) renders them, from their text and how their
 * type renders (json_types.h): the sinks' JSON Lines and a change
 * stream's new and old rows both write values here. */
#include <string.h>

#include "buf.h"
#include "json_write.h"
#include "pqstream.h"

int pqs__json_string(pqs__buf_t *out, const char *v, size_t len) {
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

/* ISO text "2026-01-01 10:00:00+02 BC" becomes json's
 * "2026-01-01T10:00:00+02:00 BC": a T between date and time (the year
 * may have more than four digits), and a zone of hours only gets its
 * minutes (one with seconds keeps them). Infinities keep their text. */
static int timestamp(pqs__buf_t *out, const char *v, size_t len) {
  char tmp[64];
  const char *space = memchr(v, ' ', len);
  if (space == NULL || len + 3 > sizeof(tmp))
    return pqs__json_string(out, v, len); /* infinity, or not ISO */
  memcpy(tmp, v, len);
  size_t i = (size_t)(space - v);
  tmp[i] = 'T';
  for (i += 9; i < len && tmp[i] != '+' && tmp[i] != '-' && tmp[i] != ' ';)
    i++; /* past hh:mm:ss and any fraction */
  if (i < len && tmp[i] != ' ') {
    size_t end = i;
    while (end < len && tmp[end] != ' ')
      end++;
    if (memchr(tmp + i, ':', end - i) == NULL) { /* +hh: add :00 */
      memmove(tmp + end + 3, tmp + end, len - end);
      memcpy(tmp + end, ":00", 3);
      len += 3;
    }
  }
  return pqs__json_string(out, tmp, len);
}

static int scalar(pqs__buf_t *out, pqs__json_how_t how, const char *v,
                  size_t len);

/* One element of an array's text, unquoted and unescaped into `el`. */
static int array_element(pqs__buf_t *out, pqs__json_how_t how, const char **p,
                         const char *end, pqs__buf_t *el, char delim) {
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
    return scalar(out, how, el->data ? el->data : "", el->len);
  }
  const char *start = s;
  while (s < end && *s != delim && *s != '}')
    s++;
  *p = s;
  size_t n = (size_t)(s - start);
  if (n == 4 && strncmp(start, "NULL", 4) == 0)
    return pqs__buf_append(out, "null", 4);
  return scalar(out, how, start, n);
}

/* "{...}" at *p, nested for more dimensions, as a JSON array. */
static int array_level(pqs__buf_t *out, pqs__json_how_t how, const char **p,
                       const char *end, pqs__buf_t *el, char delim) {
  if (*p >= end || **p != '{')
    return -1;
  (*p)++;
  if (pqs__buf_append(out, "[", 1) != 0)
    return PQS_ENOMEM;
  int first = 1;
  while (*p < end && **p != '}') {
    if (!first && **p == delim)
      (*p)++;
    if (!first && pqs__buf_append(out, ",", 1) != 0)
      return PQS_ENOMEM;
    first = 0;
    int rc = **p == '{' ? array_level(out, how, p, end, el, delim)
                        : array_element(out, how, p, end, el, delim);
    if (rc != 0)
      return rc;
  }
  if (*p >= end)
    return -1;
  (*p)++;
  return pqs__buf_append(out, "]", 1);
}

/* An array whose elements render `how`. */
static int array(pqs__buf_t *out, pqs__json_how_t how, const char *v,
                 size_t len, char delim) {
  const char *p = v, *end = v + len;
  if (p < end && *p == '[') { /* bounds other than 1: "[0:1]={...}" */
    const char *eq = memchr(p, '=', len);
    if (eq == NULL)
      return pqs__json_string(out, v, len);
    p = eq + 1;
  }
  pqs__buf_t el = {0};
  size_t mark = out->len;
  int rc = array_level(out, how, &p, end, &el, delim);
  pqs__buf_free(&el);
  if (rc < 0 && rc != PQS_ENOMEM) { /* not what was expected: a string */
    out->len = mark;
    return pqs__json_string(out, v, len);
  }
  return rc;
}

static int scalar(pqs__buf_t *out, pqs__json_how_t how, const char *v,
                  size_t len) {
  switch (how) {
  case PQS__JSON_NUMBER:
    return is_json_number(v, len) ? pqs__buf_append(out, v, len)
                                  : pqs__json_string(out, v, len);
  case PQS__JSON_BOOL: /* anything but the server's t and f (a map's "yes") stays
                 a string: never silently turned into false */
    if (len == 1 && (v[0] == 't' || v[0] == 'f'))
      return v[0] == 't' ? pqs__buf_append(out, "true", 4)
                         : pqs__buf_append(out, "false", 5);
    return pqs__json_string(out, v, len);
  case PQS__JSON_JSON:
    return pqs__buf_append(out, v, len);
  case PQS__JSON_TIMESTAMP:
    return timestamp(out, v, len);
  default: /* a date's ISO text is json's; the server's types: a string */
    return pqs__json_string(out, v, len);
  }
}

int pqs__json_value(pqs__buf_t *out, pqs__json_how_t how, uint32_t elem,
                    const char *v, size_t len) {
  /* box is the one built-in type whose arrays separate elements with ';'
   * (its typdelim), as its text has commas */
  return elem != 0 ? array(out, how, v, len, elem == 603 ? ';' : ',')
                   : scalar(out, how, v, len);
}

int pqs__json_vector(pqs__buf_t *out, pqs__json_how_t how, const char *v,
                     size_t len) {
  int rc = pqs__buf_append(out, "[", 1);
  size_t i = 0;
  for (int first = 1; i < len && rc == 0; first = 0) {
    size_t start = i;
    while (i < len && v[i] != ' ')
      i++;
    rc = first ? 0 : pqs__buf_append(out, ",", 1);
    rc = rc ? rc : scalar(out, how, v + start, i - start);
    i++; /* past the space */
  }
  return rc ? rc : pqs__buf_append(out, "]", 1);
}
