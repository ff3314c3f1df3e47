/* What batches and transactions share: the BEGIN they send, which errors
 * are worth another try, and how long to wait before it (retry.c). */
#ifndef PQS_RETRY_H
#define PQS_RETRY_H

#include <stdint.h>

#include "pqstream.h"

/* "BEGIN ISOLATION LEVEL ... [READ ONLY]" into out (80 bytes); "" when
 * neither is asked for. */
void pqs__begin_sql(pqs_isolation_t isolation, int read_only, char *out);

/* 1 for a serialization failure (40001) or a deadlock (40P01). */
int pqs__is_conflict(const pqs_error_t *err);

/* The pause before retry number `retry` (1, 2 ...): `base_ms` (0: 10)
 * doubled each time, a random 50-150 % of it, at most 1000 ms. */
unsigned pqs__backoff_ms(unsigned base_ms, unsigned retry, uint64_t *rng);

/* A seed for the jitter, different per object and per run. */
uint64_t pqs__jitter_seed(const void *obj);

#endif
