/* The binary COPY parser (copy_binary.c), apart from the op so that tests
 * can feed it any bytes. */
#ifndef PQS_COPY_BINARY_H
#define PQS_COPY_BINARY_H

#include <stddef.h>

#include "row_int.h"

/* One CopyData message `msg` of `n` bytes (msg[n] must be writable: libpq
 * puts a NUL there) into `cells` (ncols of them), in place. *seen_header
 * is 0 before the first message and set once its header is read.
 * Returns 1 (a row is in cells), 0 (the trailer: no more rows), or
 * PQS_EINVAL with *why saying what is wrong. Never reads outside
 * [msg, msg + n]. */
int pqs__copy_binary_row(int *seen_header, char *msg, size_t n,
                         pqs__cell_t *cells, int ncols, const char **why);

#endif
