/* Batches: rows copied into memory reused batch after batch, so that the
 * consumer can hold up to n rows at once after libpq has freed them. */
#include <stdlib.h>

#include "../src/core.h"
#include "stream_int.h"

struct pqs__batch_s {
  size_t cap, count;
  int ncols; /* of the cells arrays, sized at the first row */
  pqs_row_t *rows;
  const pqs_row_t **ptrs;
  pqs__cell_t *cells;
  long *off; /* offsets into buf until the batch is handed out */
  pqs__buf_t buf;
  pqs__arena_t arena; /* texts made from the batch's binary rows */
};

pqs__batch_t *pqs__batch_new(size_t n) {
  pqs__batch_t *b = pqs__calloc(1, sizeof(*b));
  if (b == NULL)
    return NULL;
  b->cap = n;
  b->rows = pqs__calloc(n, sizeof(*b->rows));
  b->ptrs = pqs__calloc(n, sizeof(*b->ptrs));
  if (b->rows == NULL || b->ptrs == NULL) {
    pqs__batch_free(b);
    return NULL;
  }
  return b;
}

void pqs__batch_free(pqs__batch_t *b) {
  if (b == NULL)
    return;
  pqs__free(b->rows);
  pqs__free(b->ptrs);
  pqs__free(b->cells);
  pqs__free(b->off);
  pqs__buf_free(&b->buf);
  pqs__arena_free(&b->arena);
  pqs__free(b);
}

static int size_cells(pqs__batch_t *b, int ncols) {
  if (b->cells != NULL && b->ncols == ncols)
    return 0;
  pqs__free(b->cells);
  pqs__free(b->off);
  size_t n = b->cap * (size_t)(ncols ? ncols : 1);
  b->cells = pqs__malloc(n * sizeof(*b->cells));
  b->off = pqs__malloc(n * sizeof(*b->off));
  b->ncols = ncols;
  return b->cells && b->off ? 0 : PQS_ENOMEM;
}

/* Hot path: copies one row's values (its schema is the stream's and
 * outlives the batch). */
int pqs__batch_add(pqs__batch_t *b, const pqs_row_t *row) {
  int ncols = row->schema->ncols;
  if (b->count == 0)
    pqs__arena_reset(&b->arena); /* the last batch's texts */
  if (b->count == 0 && size_cells(b, ncols) != 0)
    return PQS_ENOMEM;
  pqs__cell_t *cells = b->cells + b->count * ncols;
  long *off = b->off + b->count * ncols;
  for (int i = 0; i < ncols; i++) {
    size_t len;
    const char *p;
    pqs__row_raw(row, i, &p, &len); /* binary stays binary */
    off[i] = -1;
    cells[i] = (pqs__cell_t){NULL, -1};
    if (p == NULL)
      continue;
    if ((off[i] = pqs__buf_put_value(&b->buf, p, len)) < 0)
      return PQS_ENOMEM;
    cells[i].len = (int)len;
  }
  b->rows[b->count] = (pqs_row_t){.schema = row->schema, .cells = cells,
                                  .input = row->input, .arena = &b->arena};
  b->ptrs[b->count] = &b->rows[b->count];
  return ++b->count == b->cap;
}

const pqs_row_t *const *pqs__batch_take(pqs__batch_t *b, size_t *n) {
  pqs__buf_fix_cells(&b->buf, b->cells, b->off, b->count * (size_t)b->ncols);
  *n = b->count;
  b->count = 0;
  b->buf.len = 0;
  return b->ptrs;
}
