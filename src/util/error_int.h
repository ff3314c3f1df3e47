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

/* secrets.c */
typedef struct pqs__buf_list_s {
  char *data;
  size_t len;
} pqs__buf_list_t;
/* The passwords `conninfo` spells out, in each spelling a message could
 * echo, as NUL-terminated strings ended by an empty one, in *out (freed
 * with pqs__free). 0 or PQS_ENOMEM. */
int pqs__secrets_of(const char *conninfo, char **out);
/* Masks `secret` in msg with '*'; pqs__scrub_all each of a list. */
void pqs__scrub(char *msg, const char *secret);
void pqs__scrub_all(char *msg, const char *secrets);

#endif
