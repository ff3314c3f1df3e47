/* The rows kind for a consumer that writes JSON Lines: the statement is
 * described first, so that the columns only the server can render as
 * row_to_json() does get a to_json() field of their own (json_plan.c);
 * then it runs in single-row mode as the rows kind runs it.
 *
 *   PREPARE --ok--> DESCRIBE --columns--> COMMAND --results end--> (done)
 *   DESCRIBE --no columns--> the rows kind (the statement as it is)
 *
 * PREPARE and DESCRIBE are the describe kind's steps (describe.c); the
 * columns go to the consumer with the first row, or with the end of a
 * result of none, under the names the user's statement gives them. */
#include <string.h>

#include "alloc.h"
#include "kind.h"
#include "sqltext.h"

/* PREPARE and DESCRIBE first, as describe.c numbers them. */
enum { PREPARE, DESCRIBE, COMMAND };

static int json_send(pqs__op_t *op) {
  if (op->step == PREPARE && pqs__settings_first(op))
    return op->kind->send(op);
  if (op->step == PREPARE && op->typed != NULL) /* their types, as sent */
    return PQsendPrepare(op->ctx->conn, "", op->sql, op->typed->n,
                         op->typed->types);
  if (op->step != COMMAND)
    return pqs__describe_send(op);
  pqs__buf_t *sql = &op->k.json_sql;
  return pqs__rows_send(op, sql->len ? sql->data : op->sql);
}

/* The described columns, and the statement that has the server write
 * the JSON the client cannot. */
static int described(pqs__op_t *op, const PGresult *res) {
  pqs__buf_t *sql = &op->k.json_sql;
  if ((op->schema = pqs__op_schema_of(op, res)) == NULL ||
      pqs__json_plan(op) != 0)
    return PQS_ENOMEM;
  op->schema->binary = op->binary; /* described in text; sent as asked */
  return pqs__json_wrap(op->schema, op->sql, sql) ? PQS_ENOMEM : PQS__CONTINUE;
}

static int json_take(pqs__op_t *op, PGresult *res) {
  if (op->step == DESCRIBE && PQresultStatus(res) == PGRES_COMMAND_OK) {
    op->final = 1;
    return described(op, res);
  }
  if (op->step != COMMAND)
    return pqs__op_take_common(op, res, 0);
  return pqs__rows_take(op, res);
}

/* DESCRIBE -> COMMAND; without columns (an UPDATE without RETURNING),
 * the rows kind runs the statement as it is. */
static pqs__next_t json_next(pqs__op_t *op) {
  if (op->step == PREPARE)
    return pqs__describe_next(op);
  if (op->step == COMMAND) { /* its error's position is in our text */
    if (op->k.json_sql.len)
      pqs__op_forget_position(op);
    return PQS__NEXT_END;
  }
  if (!pqs__op_step_ok(op))
    return PQS__NEXT_END;
  if (op->schema != NULL && op->schema->ncols > 0) {
    op->step = COMMAND;
  } else {
    pqs__free(op->schema); /* the columns come with the result */
    op->schema = NULL;
    pqs__op_become(op, &pqs__kind_rows, 0);
  }
  return PQS__NEXT_SEND;
}

static void json_free(pqs__op_t *op) { pqs__buf_free(&op->k.json_sql); }

const pqs__kind_t pqs__kind_rows_json = {
    .name = "rows_json",
    .send = json_send,
    .take = json_take,
    .next = json_next,
    .free = json_free,
};
