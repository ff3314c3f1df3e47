/* Errors: the table of codes, names and messages from one map, and the
 * one deep copy of a pqs_error_t. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error_int.h"

/* 1 if libuv has a name for `err`: uv_strerror and uv_err_name allocate
 * (and leak) a text for any other code, such as a user's own from on_row. */
static int libuv_knows(int err) {
  switch (err) {
#define PQS__UV_KNOWN(code, _) case UV_##code:
    UV_ERRNO_MAP(PQS__UV_KNOWN)
#undef PQS__UV_KNOWN
    return 1;
  default:
    return 0;
  }
}

const char *pqs_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define PQS__ERR_MSG(name, val, msg)                                           \
  case PQS_##name:                                                             \
    return msg;
    PQS_ERRNO_MAP(PQS__ERR_MSG)
#undef PQS__ERR_MSG
  default:
    /* libuv's own codes pass through pqstream unchanged. */
    return libuv_knows(err) ? uv_strerror(err) : "unknown error";
  }
}

const char *pqs_err_name(int err) {
  switch (err) {
  case 0:
    return "OK";
#define PQS__ERR_NAME(name, val, msg)                                          \
  case PQS_##name:                                                             \
    return #name;
    PQS_ERRNO_MAP(PQS__ERR_NAME)
#undef PQS__ERR_NAME
  default:
    return libuv_knows(err) ? uv_err_name(err) : "UNKNOWN";
  }
}

/* ---- keeping an error ---- */

static int out_of_memory(pqs_error_t *dst, char **store) {
  *dst = (pqs_error_t){.message = "out of memory"};
  *store = NULL;
  return PQS_ENOMEM;
}

#define PQS__NFIELDS 10 /* the optional strings of a pqs_error_t */

int pqs__error_copy(pqs_error_t *dst, char **store, const pqs_error_t *src,
                    const char *prefix) {
  const char *msg = src->message ? src->message : "unknown error";
  const char *from[PQS__NFIELDS] = {
      src->severity, src->sqlstate, src->detail, src->hint,
      src->context,  src->schema,   src->table,  src->column,
      src->constraint, src->text};
  const char **to[PQS__NFIELDS] = {
      &dst->severity, &dst->sqlstate, &dst->detail, &dst->hint,
      &dst->context,  &dst->schema,   &dst->table,  &dst->column,
      &dst->constraint, &dst->text};
  size_t size = strlen(msg) + (prefix ? strlen(prefix) : 0) + 1;
  for (int i = 0; i < PQS__NFIELDS; i++)
    size += from[i] ? strlen(from[i]) + 1 : 0;
  char *p = pqs__malloc(size);
  if (p == NULL)
    return out_of_memory(dst, store);
  *store = p;
  dst->position = src->position;
  dst->message = p;
  p += sprintf(p, "%s%s", prefix ? prefix : "", msg) + 1;
  for (int i = 0; i < PQS__NFIELDS; i++) {
    *to[i] = NULL;
    if (from[i] != NULL) {
      size_t n = strlen(from[i]) + 1;
      *to[i] = memcpy(p, from[i], n);
      p += n;
    }
  }
  return 0;
}

void pqs__error_view(const PGresult *res, pqs_error_t *view) {
  const char *pos = PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION);
  const char *text = PQresultErrorMessage(res);
  *view = (pqs_error_t){
      .severity = PQresultErrorField(res, PG_DIAG_SEVERITY),
      .sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE),
      .message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
      .detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL),
      .hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT),
      .position = pos ? atoi(pos) : 0,
      .context = PQresultErrorField(res, PG_DIAG_CONTEXT),
      .schema = PQresultErrorField(res, PG_DIAG_SCHEMA_NAME),
      .table = PQresultErrorField(res, PG_DIAG_TABLE_NAME),
      .column = PQresultErrorField(res, PG_DIAG_COLUMN_NAME),
      .constraint = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME),
      .text = text && *text ? text : NULL};
}

/* ---- libpq's messages, with the password removed ---- */

/* libpq's text of a failure, trimmed and with the password removed. */
static int from_text(const char *msg, PGconn *conn, pqs_error_t *dst,
                     char **store) {
  if (msg == NULL || *msg == '\0')
    msg = "unknown libpq error";
  pqs_error_t src = {.message = msg};
  if (pqs__error_copy(dst, store, &src, NULL) != 0)
    return PQS_ENOMEM;
  char *copy = *store;
  size_t n = strlen(copy);
  while (n > 0 && (copy[n - 1] == '\n' || copy[n - 1] == ' '))
    copy[--n] = '\0';
  if (conn)
    pqs__scrub(copy, PQpass(conn));
  return 0;
}

int pqs__error_from_conn(PGconn *conn, pqs_error_t *dst, char **store) {
  return from_text(conn ? PQerrorMessage(conn) : NULL, conn, dst, store);
}

int pqs__error_from_result(const PGresult *res, PGconn *conn,
                           pqs_error_t *dst, char **store) {
  pqs_error_t view;
  pqs__error_view(res, &view);
  if (view.message != NULL)
    return pqs__error_copy(dst, store, &view, NULL);
  /* An error libpq made itself: its own words for it, else the
   * connection's. */
  const char *msg = PQresultErrorMessage(res);
  return from_text(msg && *msg ? msg : PQerrorMessage(conn), conn, dst, store);
}
