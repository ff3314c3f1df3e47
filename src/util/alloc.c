/* The one allocator: the C library's, behind a counter a test can arm. */
#include "alloc.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_uint_fast64_t calls, fail_at, failed;
static atomic_int sticky_mode;

/* 1 if this allocation is to fail. One relaxed load when the hook is
 * off, which it always is outside tests. */
static int should_fail(void) {
  uint64_t k = atomic_load_explicit(&fail_at, memory_order_relaxed);
  if (k == 0)
    return 0;
  uint64_t n = atomic_fetch_add(&calls, 1) + 1;
  if (n == k || (n > k && atomic_load(&sticky_mode))) {
    atomic_fetch_add(&failed, 1);
    return 1;
  }
  return 0;
}

void *pqs__malloc(size_t size) { return should_fail() ? NULL : malloc(size); }

void *pqs__calloc(size_t n, size_t size) {
  return should_fail() ? NULL : calloc(n, size);
}

void *pqs__realloc(void *p, size_t size) {
  return should_fail() ? NULL : realloc(p, size);
}

char *pqs__strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *copy = pqs__malloc(n);
  return copy ? memcpy(copy, s, n) : NULL;
}

void pqs__free(void *p) { free(p); }

void pqs__alloc_fail_at(uint64_t k, int sticky) {
  atomic_store(&fail_at, 0);
  atomic_store(&calls, 0);
  atomic_store(&failed, 0);
  atomic_store(&sticky_mode, sticky);
  atomic_store(&fail_at, k);
}

uint64_t pqs__alloc_count(void) { return atomic_load(&calls); }
uint64_t pqs__alloc_failed(void) { return atomic_load(&failed); }
