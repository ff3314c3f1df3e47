/* How an op went, as it learns it: the first reason to end early, the
 * server's error or libpq's, a statement's tag (and what the tag says of
 * the session's settings). Nothing here acts on the op; the engine and
 * the kinds decide. */
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error_int.h"
#include "kind.h"
#include "stmt_cache.h"

/* The first reason to end other than the server's own answer wins. */
void pqs__op_note(pqs__op_t *op, int status) {
  if (op->status == 0)
    op->status = status;
}

/* The first error explains the failure; running out of memory while
 * keeping it is a failure of its own, never a success. */
void pqs__op_keep(pqs__op_t *op, int rc) {
  if (rc != 0)
    pqs__op_note(op, rc);
}

void pqs__op_conn_error(pqs__op_t *op) {
  if (op->err.message == NULL)
    pqs__op_keep(
        op, pqs__error_from_conn(op->ctx->conn, &op->err, &op->err_strings));
}

static void record_result_error(pqs__op_t *op, const PGresult *res) {
  if (op->err.message == NULL)
    pqs__op_keep(op, pqs__error_from_result(res, op->ctx->conn, &op->err,
                                            &op->err_strings));
}

void pqs__ctx_tag_seen(pqs_ctx_t *ctx, const char *tag) {
  if (tag == NULL)
    return;
  /* the session's prepared statements are gone: the cache's too */
  if (strcmp(tag, "DISCARD ALL") == 0 || strcmp(tag, "DEALLOCATE ALL") == 0)
    pqs__stmts_forget(ctx->stmts);
  if (strcmp(tag, "SET") == 0 || strcmp(tag, "RESET") == 0 ||
      strncmp(tag, "DISCARD", 7) == 0)
    ctx->text_known = PQS__TEXT_UNKNOWN;
  else if (ctx->text_known == PQS__TEXT_KNOWN_IN_TX &&
           (strcmp(tag, "COMMIT") == 0 || strcmp(tag, "ROLLBACK") == 0))
    ctx->text_known = PQS__TEXT_UNKNOWN;
}

void pqs__op_record_command(pqs__op_t *op, PGresult *res) {
  const char *tag = PQcmdStatus(res);
  pqs__free(op->tag);
  op->tag = NULL;
  if (tag != NULL && (op->tag = pqs__strdup(tag)) == NULL)
    pqs__op_note(op, PQS_ENOMEM);
  op->affected = strtoull(PQcmdTuples(res), NULL, 10);
  if (op->on_statement != NULL && op->tag != NULL)
    op->on_statement(op->ctx, op->tag, op->affected, op->statement_data);
}

/* libpq ran out of memory for a row: it drops that row and every one
 * after it, then hands over either its own error ("out of memory ...", no
 * server fields) or, if the server raised one later, the server's, with
 * its own complaint left only in the connection's message. Either way rows
 * were lost: the op ends with PQS_ENOMEM and libpq's words, never with
 * the server's error or success. libpq 15 says so only in words; a
 * server's own "out of memory" (SQLSTATE 53200) is in the result's text. */
static void note_local_failure(pqs__op_t *op, const PGresult *res) {
  const char *own = PQresultErrorMessage(res);
  const char *conn_said = PQerrorMessage(op->ctx->conn);
  int said_by_result = own != NULL && strstr(own, "out of memory") != NULL;
  int by_libpq =
      said_by_result
          ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) == NULL
          : conn_said != NULL && strstr(conn_said, "out of memory") != NULL;
  if (!by_libpq)
    return;
  if (op->err_strings != NULL || op->err.message != NULL) {
    pqs__free(op->err_strings);
    op->err_strings = NULL;
    op->err = (pqs_error_t){0};
  }
  pqs__op_conn_error(op);
  pqs__op_note(op, PQS_ENOMEM);
}

int pqs__stale_plan(const PGresult *res) {
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  const char *fn = PQresultErrorField(res, PG_DIAG_SOURCE_FUNCTION);
  return PQresultStatus(res) == PGRES_FATAL_ERROR && state && fn &&
         strcmp(state, "0A000") == 0 &&
         strcmp(fn, "RevalidateCachedQuery") == 0;
}

int pqs__no_such_stmt(const PGresult *res) {
  const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
  return state != NULL && strcmp(state, "26000") == 0;
}

void pqs__op_result_failed(pqs__op_t *op, const PGresult *res) {
  record_result_error(op, res);
  note_local_failure(op, res);
}

int pqs__op_copy_data_end(pqs__op_t *op, int n) {
  if (n == -1)
    return PQS__CONTINUE;
  pqs__op_conn_error(op);
  if (pqs__op_broken(op))
    op->status = PQS_ECONNLOST; /* as for rows: a loss is the story */
  else
    pqs__op_note(op, PQS_ENOMEM);
  if (op->err.message == NULL)
    op->err.message = pqs_strerror(op->status);
  pqs__op_give_up(op); /* the op is gone */
  return PQS__WAIT;
}
