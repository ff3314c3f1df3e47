/* The binary COPY parser (copy_binary.c), apart from the op so that tests
 * can feed it any bytes. */
#ifndef PQS_COPY_BINARY_H
#define PQS_COPY_BINARY_H

#include <stddef.h>

#include "row_int.h"

/* Where a binary COPY stream is, message by message:
 *   HEADER --the first message: header, then a tuple or the trailer-->
 *   TUPLES --a message holding the trailer--> ENDED
 * A message after the trailer is an error. */
typedef enum {
  PQS__BIN_HEADER = 0, /* nothing read yet */
  PQS__BIN_TUPLES,
  PQS__BIN_ENDED
} pqs__bin_state_t;

/* One CopyData message `msg` of `n` bytes (msg[n] must be writable: libpq
 * puts a NUL there) into `cells` (ncols of them), in place, moving *state
 * on. Returns 1 (a row is in cells), 0 (the trailer: no more rows), or
 * PQS_EINVAL with *why saying what is wrong. Never reads outside
 * [msg, msg + n]. */
int pqs__copy_binary_row(pqs__bin_state_t *state, char *msg, size_t n,
                         pqs__cell_t *cells, int ncols, const char **why);

#endif
