/* COPY's text format exactly as COPY TO writes it: tab between fields, \N
 * for NULL, and backslash escapes for backslash, tab, newline, carriage
 * return, backspace, form feed and vertical tab. Other control bytes pass
 * through as they are, as COPY passes them. */
#include <string.h>

#include "../src/core.h"
#include "format.h"

static char escape_of(unsigned char c) {
  switch (c) {
  case '\\':
    return '\\';
  case '\t':
    return 't';
  case '\n':
    return 'n';
  case '\r':
    return 'r';
  case '\b':
    return 'b';
  case '\f':
    return 'f';
  case '\v':
    return 'v';
  default:
    return 0;
  }
}

static int field(pqs__buf_t *out, const char *v, size_t len) {
  if (pqs__buf_reserve(out, 2 * len) != 0)
    return PQS_ENOMEM;
  const char *run = v, *end = v + len;
  for (const char *p = v; p < end; p++) {
    char e = escape_of((unsigned char)*p);
    if (e == 0)
      continue;
    pqs__buf_put(out, run, (size_t)(p - run));
    pqs__buf_putc(out, '\\');
    pqs__buf_putc(out, e);
    run = p + 1;
  }
  pqs__buf_put(out, run, (size_t)(end - run));
  return 0;
}

static int line(pqs__buf_t *out, const pqs_row_t *row, int names) {
  int n = pqs_row_ncols(row);
  for (int i = 0; i < n; i++) {
    if (pqs__buf_reserve(out, 3) != 0)
      return PQS_ENOMEM;
    if (i > 0)
      pqs__buf_putc(out, '\t');
    size_t len;
    const char *v = names ? pqs_row_name(row, i) : NULL;
    int rc = names ? 0 : pqs__row_text_or_null(row, i, &v, &len);
    if (rc != 0)
      return rc;
    if (v == NULL) {
      pqs__buf_put(out, "\\N", 2);
      continue;
    }
    if (names)
      len = strlen(v);
    if (field(out, v, len) != 0)
      return PQS_ENOMEM;
  }
  return pqs__buf_append(out, "\n", 1);
}

int pqs__text_header(pqs__buf_t *out, const pqs_row_t *cols) {
  return line(out, cols, 1);
}

int pqs__text_row(pqs__buf_t *out, const pqs_row_t *row) {
  return line(out, row, 0);
}
