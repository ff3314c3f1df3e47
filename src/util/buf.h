/* A growable byte buffer, reused: it grows to the largest size needed and
 * then stops allocating. Used by map outputs, batches, sinks and the SQL
 * text scanner. */
#ifndef PQS_BUF_H
#define PQS_BUF_H

#include <stddef.h>
#include <string.h>

struct pqs__cell_s; /* row_int.h */

typedef struct pqs__buf_s {
  char *data;
  size_t len;
  size_t cap;
} pqs__buf_t;

/* Room for `extra` more bytes. 0 or PQS_ENOMEM (buffer unchanged). */
int pqs__buf_grow(pqs__buf_t *b, size_t extra);

static inline int pqs__buf_reserve(pqs__buf_t *b, size_t extra) {
  return b->cap - b->len >= extra ? 0 : pqs__buf_grow(b, extra);
}

/* Appends n bytes (the caller reserved room). */
static inline void pqs__buf_put(pqs__buf_t *b, const void *p, size_t n) {
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static inline void pqs__buf_putc(pqs__buf_t *b, char c) {
  b->data[b->len++] = c;
}

/* Appends a value's `len` bytes and a NUL (the text getters promise one),
 * growing as needed. Its offset in the buffer, or -1 if out of memory.
 * An offset, not a pointer: the buffer may move while a row fills it. */
long pqs__buf_put_value(pqs__buf_t *b, const char *v, size_t len);

/* Turns the cells whose offset is >= 0 into pointers into `b`, once the
 * buffer has stopped moving: the second half of pqs__buf_put_value. */
void pqs__buf_fix_cells(const pqs__buf_t *b, struct pqs__cell_s *cells,
                        const long *off, size_t n);

/* Appends n bytes, growing as needed. 0 or PQS_ENOMEM. */
int pqs__buf_append(pqs__buf_t *b, const void *p, size_t n);

void pqs__buf_free(pqs__buf_t *b);

#endif
