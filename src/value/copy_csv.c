/* COPY's csv format, a line split into its fields in place: quotes
 * undone, an unquoted empty field read as NULL (COPY's default NULL in
 * csv), nothing allocated. The server writes one row per CopyData
 * message, so a quoted field's newlines never split a row. */
#include <string.h>

#include "copy_text.h"

/* A quoted field from f (at its opening quote) to its closing quote, the
 * doubled quotes undone in place: where it ends (past the quote), or NULL
 * if it does not close before `end`. *len is its length. */
static char *unquote(char *f, char *end, size_t *len) {
  char *w = f, *r = f + 1;
  for (;;) {
    char *q = memchr(r, '"', (size_t)(end - r));
    if (q == NULL)
      return NULL;
    memmove(w, r, (size_t)(q - r));
    w += q - r;
    if (q + 1 < end && q[1] == '"') { /* "" is one quote */
      *w++ = '"';
      r = q + 2;
      continue;
    }
    *len = (size_t)(w - f);
    return q + 1;
  }
}

int pqs__copy_split_csv(char *text, size_t n, pqs__cell_t *cells, int ncols) {
  if (n == 0 || text[n - 1] != '\n')
    return PQS_EINVAL;
  char *end = text + n - 1, *f = text;
  for (int i = 0;; i++) {
    if (i == ncols)
      return PQS_EINVAL;
    char *next; /* the delimiter after the field, or end */
    size_t len;
    if (f < end && *f == '"') {
      if ((next = unquote(f, end, &len)) == NULL ||
          (next < end && *next != ','))
        return PQS_EINVAL;
      cells[i].ptr = f;
      cells[i].len = (int)len;
    } else {
      next = memchr(f, ',', (size_t)(end - f));
      if (next == NULL)
        next = end;
      len = (size_t)(next - f);
      cells[i].ptr = len ? f : NULL;
      cells[i].len = len ? (int)len : -1;
    }
    f[len] = '\0'; /* over the delimiter, the quote or the newline */
    if (next == end)
      return i + 1 == ncols ? 0 : PQS_EINVAL;
    f = next + 1;
  }
}
