/* The describe kind: the columns a statement would return, without
 * running it (the unnamed prepared statement, prepared and described in
 * one op), and pqs_describe over it.
 *
 *   PREPARE --results end well--> DESCRIBE --results end--> (done)
 *
 * The COPY source (copy_out.c) begins with the same two steps. */
#include "alloc.h"
#include "kind.h"

enum { PREPARE, DESCRIBE };

int pqs__describe_send(pqs__op_t *op) {
  if (op->step == PREPARE)
    return PQsendPrepare(op->ctx->conn, "", op->sql, op->nparams, NULL);
  return PQsendDescribePrepared(op->ctx->conn, "");
}

/* A step ended well: PREPARE -> DESCRIBE. */
pqs__next_t pqs__describe_next(pqs__op_t *op) {
  if (op->step != PREPARE || !pqs__op_step_ok(op))
    return PQS__NEXT_END;
  op->step = DESCRIBE;
  return PQS__NEXT_SEND;
}

static int describe_take(pqs__op_t *op, PGresult *res) {
  if (op->step == DESCRIBE && PQresultStatus(res) == PGRES_COMMAND_OK) {
    op->final = 1;
    return pqs__op_deliver_columns(op, res); /* the statement's columns */
  }
  return pqs__op_take_common(op, res, 0);
}

const pqs__kind_t pqs__kind_describe = {
    .name = "describe",
    .send = pqs__describe_send,
    .take = describe_take,
    .next = pqs__describe_next,
};

/* ---- pqs_describe: the kind, and a consumer that keeps the columns ---- */

typedef struct {
  pqs_ctx_t *ctx;
  pqs_describe_cb cb;
  void *data;
  pqs__schema_t *schema;
} describe_t;

static int describe_columns(void *self, const pqs_row_t *columns) {
  describe_t *d = self;
  d->schema = pqs__schema_copy(columns->schema);
  return d->schema ? PQS__CONTINUE : PQS_ENOMEM;
}

static int describe_row(void *self, const pqs_row_t *row) {
  (void)self;
  (void)row;
  return PQS__CONTINUE; /* a describe has none */
}

static void describe_end(void *self, const pqs_done_t *done) {
  describe_t *d = self;
  int status = done->status;
  if (status == 0 && d->schema == NULL)
    status = PQS_ENOMEM;
  if (status == 0) {
    pqs_row_t columns = {.schema = d->schema};
    d->cb(d->ctx, 0, &columns, NULL, d->data);
  } else {
    d->cb(d->ctx, status, NULL, done->error, d->data);
  }
  pqs__free(d->schema);
  pqs__free(d);
}

static const pqs__consumer_vt_t describe_consumer = {
    .columns = describe_columns,
    .row = describe_row,
    .end = describe_end,
};

int pqs_describe(pqs_ctx_t *ctx, const char *sql, int nparams,
                 pqs_describe_cb cb, void *data) {
  if (ctx == NULL || cb == NULL)
    return PQS_EINVAL;
  int rc = pqs__ctx_check_ready(ctx);
  if (rc != 0)
    return rc;
  describe_t *d = pqs__calloc(1, sizeof(*d));
  if (d == NULL)
    return PQS_ENOMEM;
  pqs__op_t *op;
  /* Parameters are only counted: their types are the server's guess. */
  static const char *const none[1] = {NULL};
  rc = pqs__op_begin(ctx, &pqs__kind_describe, sql, 0, none, NULL, 0, &op);
  if (rc != 0) {
    pqs__free(d);
    return rc;
  }
  *d = (describe_t){ctx, cb, data, NULL};
  op->nparams = nparams < 0 ? 0 : nparams; /* for PQsendPrepare only */
  pqs__op_bind(op, &describe_consumer, d);
  pqs__op_source.start(op);
  return 0;
}
