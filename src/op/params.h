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

#endif
