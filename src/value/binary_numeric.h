/* numeric's binary form as text (binary_numeric.c). */
#ifndef PQS_BINARY_NUMERIC_H
#define PQS_BINARY_NUMERIC_H

#include <stddef.h>

#include "arena.h"

/* A binary numeric as the server's numeric_out writes it, made in `a`
 * (NUL-terminated): 0, PQS_EFORMAT (malformed), PQS_ENOMEM. */
int pqs__numeric_text(pqs__arena_t *a, const char *p, size_t n,
                      const char **text, size_t *len);

#endif
