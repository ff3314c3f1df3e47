/* CSV exactly as PostgreSQL's COPY TO writes it (copyto.c's rules):
 * NULL is an empty unquoted field; a value is quoted when it is empty (so
 * it differs from NULL), holds a comma, a quote, CR or LF, or is "\." alone
 * on its line (the old end-of-data marker); quotes inside are doubled. */
#include <string.h>

#include "../src/core.h"
#include "format.h"

static int field(pqs__buf_t *out, const char *v, size_t len, int alone) {
  int quote = len == 0 || (alone && len == 2 && v[0] == '\\' && v[1] == '.');
  size_t quotes = 0;
  for (size_t i = 0; i < len; i++) {
    char c = v[i];
    if (c == '"')
      quotes++;
    if (c == ',' || c == '"' || c == '\n' || c == '\r')
      quote = 1;
  }
  if (pqs__buf_reserve(out, len + quotes + 3) != 0)
    return PQS_ENOMEM;
  if (!quote) {
    pqs__buf_put(out, v, len);
    return 0;
  }
  pqs__buf_putc(out, '"');
  if (quotes == 0) {
    pqs__buf_put(out, v, len);
  } else {
    for (size_t i = 0; i < len; i++) {
      if (v[i] == '"')
        pqs__buf_putc(out, '"');
      pqs__buf_putc(out, v[i]);
    }
  }
  pqs__buf_putc(out, '"');
  return 0;
}

static int line(pqs__buf_t *out, const pqs_row_t *row, int names) {
  int n = pqs_row_ncols(row);
  for (int i = 0; i < n; i++) {
    if (i > 0 && pqs__buf_append(out, ",", 1) != 0)
      return PQS_ENOMEM;
    size_t len;
    const char *v = names ? pqs_row_name(row, i) : NULL;
    int rc = names ? 0 : pqs__row_text_or_null(row, i, &v, &len);
    if (rc != 0)
      return rc;
    if (names)
      len = strlen(v);
    if (v != NULL && field(out, v, len, n == 1) != 0)
      return PQS_ENOMEM;
  }
  return pqs__buf_append(out, "\n", 1);
}

int pqs__csv_header(pqs__buf_t *out, const pqs_row_t *cols) {
  return line(out, cols, 1);
}

int pqs__csv_row(pqs__buf_t *out, const pqs_row_t *row) {
  return line(out, row, 0);
}
