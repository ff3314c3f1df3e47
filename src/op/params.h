/* Typed parameters as libpq takes them (params.c). */
#ifndef PQS_PARAMS_H
#define PQS_PARAMS_H

#include "pqstream.h"

/* The arrays PQsendQueryParams takes, and the values they point at, in
 * one allocation (freed with pqs__free). */
typedef struct pqs__params_s {
  int n;
  const char **values; /* NULL: SQL NULL */
  uint32_t *types;     /* 0: the server infers it */
  int *lengths;
  int *formats; /* 1: binary */
} pqs__params_t;

/* Encodes `n` typed parameters. 0, PQS_EINVAL (a kind unknown, a value
 * too large, a NULL pointer with a length), PQS_ENOMEM. */
int pqs__params_typed(int n, const pqs_param_t *params, pqs__params_t **out);

/* `head` zeroed bytes (a struct: its size keeps pointers aligned), then
 * copies of `sql` and the `n` text parameters (NULL: SQL NULL), in one
 * allocation freed with pqs__free; where the copies are in *sql_copy and
 * *params_copy. NULL if out of memory. */
void *pqs__with_texts(size_t head, const char *sql, int n,
                      const char *const *params, const char **sql_copy,
                      const char *const **params_copy);

#endif
