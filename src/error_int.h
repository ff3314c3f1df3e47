/* Errors as pqstream keeps them: a pqs_error_t whose strings live in one
 * allocation (`*store`, which the caller frees with pqs__free). Each maker
 * below always leaves *dst usable: when memory runs out it holds a static
 * "out of memory" message, *store is NULL, and the call returns
 * PQS_ENOMEM, so that no failure is ever reported without a reason. */
#ifndef PQS_ERROR_INT_H
#define PQS_ERROR_INT_H

#include <libpq-fe.h>

#include "pqstream.h"

/* The fields of a result's error, borrowed from `res`. message NULL if the
 * result carries no server message (an error libpq made itself). */
void pqs__error_view(const PGresult *res, pqs_error_t *view);

/* A deep copy of `src`, with `prefix` (may be NULL) before its message. */
int pqs__error_copy(pqs_error_t *dst, char **store, const pqs_error_t *src,
                    const char *prefix);

/* libpq's message for `conn` (may be NULL), trimmed, password removed. */
int pqs__error_from_conn(PGconn *conn, pqs_error_t *dst, char **store);

/* The server's error in `res`; libpq's message for `conn` if the result
 * has none of the server's. */
int pqs__error_from_result(const PGresult *res, PGconn *conn,
                           pqs_error_t *dst, char **store);

#endif
