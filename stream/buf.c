#include "../src/alloc.h"
#include "buf.h"

#include <stdlib.h>

#include "pqstream.h"

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
  int rc = pqs__buf_reserve(b, n);
  if (rc == 0)
    pqs__buf_put(b, p, n);
  return rc;
}

void pqs__buf_free(pqs__buf_t *b) {
  pqs__free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}
