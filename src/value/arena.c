#include "arena.h"

#include "alloc.h"

#define ARENA_MIN 4096
#define ALIGN 16

struct pqs__arena_block_s {
  pqs__arena_block_t *next;
  size_t cap;
  _Alignas(ALIGN) char data[];
};

void *pqs__arena_alloc(pqs__arena_t *a, size_t n) {
  n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
  pqs__arena_block_t *b = a->blocks;
  if (b == NULL || b->cap - a->used < n) {
    size_t cap = n > ARENA_MIN ? n : ARENA_MIN;
    if (cap > (size_t)-1 - sizeof(*b))
      return NULL;
    pqs__arena_block_t *nb = pqs__malloc(sizeof(*nb) + cap);
    if (nb == NULL)
      return NULL;
    nb->next = b;
    nb->cap = cap;
    a->blocks = b = nb;
    a->used = 0;
  }
  void *p = b->data + a->used;
  a->used += n;
  if (a->used == 0) /* n == 0: still "used", so that reset runs */
    a->used = ALIGN;
  return p;
}

void pqs__arena_reset_slow(pqs__arena_t *a) {
  pqs__arena_block_t *b = a->blocks;
  while (b != NULL && b->next != NULL) {
    pqs__arena_block_t *next = b->next;
    pqs__free(b);
    b = next;
  }
  a->blocks = b;
  a->used = 0;
}

void pqs__arena_free(pqs__arena_t *a) {
  pqs__arena_reset_slow(a);
  pqs__free(a->blocks);
  a->blocks = NULL;
  a->used = 0;
}
