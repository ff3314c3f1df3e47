/* A queue of copied rows in one reusable buffer, for merges that must hold
 * rows from one input while waiting for another. No allocation per row once
 * the buffer has grown to the queue's bound. */
#ifndef PQS_ROWQ_H
#define PQS_ROWQ_H

#include "../src/core.h"

typedef struct pqs__rowq_s {
  pqs__buf_t buf;
  size_t head;        /* offset of the first row */
  size_t count;       /* rows queued */
  size_t bytes;       /* bytes queued */
  pqs__cell_t *cells; /* the head row's view */
  pqs__arena_t arena; /* texts made from the head row (binary rows) */
  int ncols;
} pqs__rowq_t;

/* Copies `row` to the tail. 0 or PQS_ENOMEM. Hot path. */
int pqs__rowq_push(pqs__rowq_t *q, const pqs_row_t *row);

/* A view of the head row over `schema`: valid until the next push or pop.
 * The queue must not be empty. */
void pqs__rowq_peek(pqs__rowq_t *q, const pqs__schema_t *schema,
                    pqs_row_t *view);

void pqs__rowq_pop(pqs__rowq_t *q);
void pqs__rowq_free(pqs__rowq_t *q);

#endif
