/* Memory that never moves, for the texts a binary row makes on demand
 * (pqs_row_text hands out pointers that must stay valid as long as the
 * row). Blocks are added, never grown; a reset keeps the first block for
 * the next row, so a steady stream stops allocating. */
#ifndef PQS_ARENA_H
#define PQS_ARENA_H

#include <stddef.h>

typedef struct pqs__arena_block_s pqs__arena_block_t;

typedef struct pqs__arena_s {
  pqs__arena_block_t *blocks; /* newest first */
  size_t used;                /* of the newest block */
} pqs__arena_t;

/* `n` bytes, aligned for any value; NULL if out of memory. */
void *pqs__arena_alloc(pqs__arena_t *a, size_t n);

/* Everything handed out is given up; the oldest block is kept. */
void pqs__arena_reset_slow(pqs__arena_t *a);
static inline void pqs__arena_reset(pqs__arena_t *a) {
  if (a->used != 0) /* hot path: rows that made no text cost nothing */
    pqs__arena_reset_slow(a);
}

void pqs__arena_free(pqs__arena_t *a);

#endif
