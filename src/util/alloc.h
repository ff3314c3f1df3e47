/* The one allocator of pqstream's own code.
 *
 * Every allocation the library makes goes through these, so that a test
 * can make the k-th one fail (SQLite's discipline) and prove that each
 * path survives it: one completion, PQS_ENOMEM or success, never a
 * success that hides an error, nothing leaked. Memory libpq and libuv
 * allocate for themselves is theirs, not counted here. */
#ifndef PQS_ALLOC_H
#define PQS_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *pqs__malloc(size_t size);
void *pqs__calloc(size_t n, size_t size);
void *pqs__realloc(void *p, size_t size);
char *pqs__strdup(const char *s);
void pqs__free(void *p);

/* Test hook. From now on the k-th allocation (counting from this call,
 * k >= 1) fails, and with `sticky` every one after it too; k = 0 turns
 * failures off; k = UINT64_MAX only counts. Not for production use: it is the one piece of global
 * state outside the factory's lock, and it is atomic. */
void pqs__alloc_fail_at(uint64_t k, int sticky);
/* Allocations made since the last pqs__alloc_fail_at, and how many of
 * them were made to fail. */
uint64_t pqs__alloc_count(void);
uint64_t pqs__alloc_failed(void);

#endif
