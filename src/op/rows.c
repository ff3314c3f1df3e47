/* The rows kind: one statement whose rows stream one result each (single-
 * row mode), or a command whose rows, if any, are counted and dropped.
 *
 *   RUN --results end--> (done)
 *
 * With automatic prepared statements (the context's statement cache,
 * stmt_cache.h), a statement with parameters is planned before it runs:
 *
 *   CLOSE (DEALLOCATE a statement evicted or gone stale; if it fails, the
 *     cache closes it later) --> PREPARE, RUN_PREPARED or RUN, as planned
 *   PREPARE (Parse of the named statement) --ok--> RUN_PREPARED
 *   RUN_PREPARED --results end--> (done)
 *   RUN_PREPARED --0A000 from RevalidateCachedQuery (the statement's
 *     result type changed), no row delivered yet, the first time-->
 *     CLOSE, PREPARE and RUN_PREPARED again
 *
 * A command without parameters goes by the simple protocol, which allows
 * several statements; anything with rows to stream, or with parameters,
 * by the extended one (one statement). */
#include <stdio.h>
#include <string.h>

#include "kind.h"
#include "stmt_cache.h"

enum { RUN, CLOSE, PREPARE, RUN_PREPARED };

/* A statement just sent reads its rows one result each when asked. */
static int single_row(pqs__op_t *op, int sent) {
  if (sent && op->single_row && !PQsetSingleRowMode(op->ctx->conn)) {
    /* libpq refused; the query is sent and must still be read to its
     * end, and cancelled rather than buffered whole. */
    op->err.message = "libpq refused single-row mode";
    pqs__op_stop(op, PQS_ESTATE);
  }
  return sent;
}

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
  return single_row(op, sent);
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

/* ---- automatic prepared statements ---- */

static int cached(const pqs__op_t *op) {
  return op->ctx->stmts != NULL && (op->typed != NULL || op->nparams > 0);
}

static int nparams(const pqs__op_t *op) {
  return op->typed ? op->typed->n : op->nparams;
}

/* RUN, for a statement the cache knows: the step its plan starts with. */
static void plan(pqs__op_t *op) {
  pqs__stmt_plan_t *p = &op->k.rows.plan;
  pqs__stmts_plan(op->ctx->stmts, op->sql, nparams(op),
                  op->typed ? op->typed->types : NULL, p);
  op->step = p->victim[0]                       ? CLOSE
             : p->action == PQS__STMT_PREPARE   ? PREPARE
             : p->action == PQS__STMT_PREPARED ? RUN_PREPARED
                                                : RUN;
}

static int send_prepared(pqs__op_t *op, const char *name) {
  PGconn *conn = op->ctx->conn;
  int sent =
      op->typed != NULL
          ? PQsendQueryPrepared(conn, name, op->typed->n, op->typed->values,
                                op->typed->lengths, op->typed->formats,
                                op->binary)
          : PQsendQueryPrepared(conn, name, op->nparams, op->params, NULL,
                                NULL, op->binary);
  return single_row(op, sent);
}

static int rows_send(pqs__op_t *op) {
  if (pqs__settings_first(op))
    return op->kind->send(op);
  pqs__stmt_plan_t *p = &op->k.rows.plan;
  if (op->step == RUN && !op->k.rows.planned && cached(op)) {
    op->k.rows.planned = 1;
    plan(op);
  }
  char sql[64];
  switch (op->step) {
  case CLOSE:
    snprintf(sql, sizeof(sql), "DEALLOCATE %s", p->victim);
    return PQsendQuery(op->ctx->conn, sql);
  case PREPARE:
    return PQsendPrepare(op->ctx->conn, p->name, op->sql, nparams(op),
                         op->typed ? op->typed->types : NULL);
  case RUN_PREPARED:
    return send_prepared(op, p->name);
  default:
    return pqs__rows_send(op, op->sql);
  }
}

/* A stale plan is run again only before the consumer saw anything. */
static int stale_plan(const pqs__op_t *op, const PGresult *res) {
  return pqs__stale_plan(res) && !op->columns_sent && op->rows == 0 &&
         !op->k.rows.retried;
}

static int rows_take(pqs__op_t *op, PGresult *res) {
  switch (op->step) {
  case CLOSE: /* housekeeping: never the statement's failure */
    op->final = 1;
    if (PQresultStatus(res) == PGRES_FATAL_ERROR && !pqs__no_such_stmt(res))
      pqs__stmts_orphan(op->ctx->stmts, op->k.rows.plan.victim);
    return PQS__CONTINUE;
  case PREPARE:
    return pqs__op_take_common(op, res, 0);
  case RUN_PREPARED:
    if (stale_plan(op, res)) {
      op->k.rows.stale = 1;
      op->final = 1;
      return PQS__CONTINUE;
    }
    return pqs__rows_take(op, res);
  default:
    return pqs__rows_take(op, res);
  }
}

static pqs__next_t rows_next(pqs__op_t *op) {
  pqs__stmt_plan_t *p = &op->k.rows.plan;
  if (!pqs__op_step_ok(op))
    return PQS__NEXT_END;
  switch (op->step) {
  case CLOSE:
    p->victim[0] = '\0';
    op->step = p->action == PQS__STMT_PREPARE    ? PREPARE
               : p->action == PQS__STMT_PREPARED ? RUN_PREPARED
                                                  : RUN;
    return PQS__NEXT_SEND;
  case PREPARE:
    pqs__stmts_prepared(op->ctx->stmts, p->name);
    op->step = RUN_PREPARED;
    return PQS__NEXT_SEND;
  case RUN_PREPARED:
    if (!op->k.rows.stale)
      return PQS__NEXT_END;
    /* once: closed, prepared again, run again */
    op->k.rows.stale = 0;
    op->k.rows.retried = 1;
    pqs__stmts_stale(op->ctx->stmts, p->name);
    snprintf(p->victim, sizeof(p->victim), "%s", p->name);
    p->action = PQS__STMT_PREPARE;
    op->step = CLOSE;
    return PQS__NEXT_SEND;
  default:
    return PQS__NEXT_END;
  }
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
    .take = rows_take,
    .next = rows_next,
    .lines = rows_lines,
};
