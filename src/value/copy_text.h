/* COPY's text and csv lines as cells (copy_text.c, copy_csv.c), apart
 * from the op so that tests can feed them any bytes. */
#ifndef PQS_COPY_TEXT_H
#define PQS_COPY_TEXT_H

#include <stddef.h>

#include "row_int.h"

/* A text-format line of `n` bytes ending in '\n' split into `ncols`
 * cells, in place (each field NUL-terminated where it lies, escapes
 * undone, \N as NULL): 0, or PQS_EINVAL if it does not hold exactly
 * ncols fields. Hot path. */
int pqs__copy_split(char *text, size_t n, pqs__cell_t *cells, int ncols);

/* The same for a csv-format line (quotes undone, an unquoted empty field
 * as NULL). Hot path. */
int pqs__copy_split_csv(char *text, size_t n, pqs__cell_t *cells, int ncols);

#endif
