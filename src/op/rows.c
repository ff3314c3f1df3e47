/* The rows kind: one statement whose rows stream one result each (single-
 * row mode), or a command whose rows, if any, are counted and dropped.
 * One step, the statement itself:
 *
 *   SEND --results end--> (done)
 *
 * A command without parameters goes by the simple protocol, which allows
 * several statements; anything with rows to stream, or with parameters,
 * by the extended one (one statement). */
#include "kind.h"

int pqs__rows_send(pqs__op_t *op, const char *sql) {
  PGconn *conn = op->ctx->conn;
  int sent;
  if (op->typed != NULL)
    sent = PQsendQueryParams(conn, sql, op->typed->n, op->typed->types,
                             op->typed->values, op->typed->lengths,
                             op->typed->formats, op->binary);
  else if (!op->single_row && op->nparams == 0)
    sent = PQsendQuery(conn, sql);
  else
    sent = PQsendQueryParams(conn, sql, op->nparams, NULL, op->params, NULL,
                             NULL, op->binary);
  if (sent && op->single_row && !PQsetSingleRowMode(conn)) {
    /* libpq refused; the query is sent and must still be read to its
     * end, and cancelled rather than buffered whole. */
    op->err.message = "libpq refused single-row mode";
    pqs__op_stop(op, PQS_ESTATE);
  }
  return sent;
}

/* Hot path: one call per row. */
static int deliver_row(pqs__op_t *op, const PGresult *res) {
  int first = PQS__CONTINUE;
  if (!op->columns_sent) {
    first = pqs__op_deliver_columns(op, res);
    if (first < 0 || first == PQS__STOP || first == PQS__DONE)
      return first;
    /* Closed from inside on_columns: not one row after that. */
    if (op->state == PQS__OP_ABANDONED || op->state == PQS__OP_STOPPING)
      return first;
  }
  pqs__arena_reset(&op->arena); /* the previous row's texts */
  pqs_row_t row = {.schema = op->schema, .res = res, .arena = &op->arena};
  op->rows++;
  int rc = op->consumer_vt->row(op->consumer, &row);
  return rc == PQS__CONTINUE ? first : rc;
}

static int rows_send(pqs__op_t *op) {
  if (pqs__settings_first(op))
    return op->kind->send(op);
  return pqs__rows_send(op, op->sql);
}

int pqs__rows_take(pqs__op_t *op, PGresult *res) {
  if (PQresultStatus(res) == PGRES_SINGLE_TUPLE)
    return op->state == PQS__OP_STOPPING ? PQS__CONTINUE : deliver_row(op, res);
  return pqs__op_take_common(op, res, 1);
}

/* A stream's rows for a consumer that writes JSON Lines are read by the
 * kind that has the server render what the client cannot. */
static void rows_lines(pqs__op_t *op, int format) {
  if (format == PQS_FORMAT_JSONL && op->single_row)
    pqs__op_become(op, &pqs__kind_rows_json, 0);
}

const pqs__kind_t pqs__kind_rows = {
    .name = "rows",
    .send = rows_send,
    .take = pqs__rows_take,
    .lines = rows_lines,
};
