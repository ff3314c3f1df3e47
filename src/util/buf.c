#include "alloc.h"
#include "buf.h"

#include <stdlib.h>

#include "row_int.h"

int pqs__buf_grow(pqs__buf_t *b, size_t extra) {
  size_t need = b->len + extra;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  char *p = pqs__realloc(b->data, cap);
  if (p == NULL)
    return PQS_ENOMEM;
  b->data = p;
  b->cap = cap;
  return 0;
}

int pqs__buf_append(pqs__buf_t *b, const void *p, size_t n) {
  if (n == 0)
    return 0; /* nothing to copy, and perhaps no buffer yet to copy into */
  int rc = pqs__buf_reserve(b, n);
  if (rc == 0)
    pqs__buf_put(b, p, n);
  return rc;
}

long pqs__buf_put_value(pqs__buf_t *b, const char *v, size_t len) {
  if (pqs__buf_reserve(b, len + 1) != 0)
    return -1;
  long at = (long)b->len;
  pqs__buf_put(b, v, len);
  pqs__buf_putc(b, '\0');
  return at;
}

void pqs__buf_fix_cells(const pqs__buf_t *b, pqs__cell_t *cells,
                        const long *off, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (off[i] >= 0)
      cells[i].ptr = b->data + off[i];
}

void pqs__buf_free(pqs__buf_t *b) {
  pqs__free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
