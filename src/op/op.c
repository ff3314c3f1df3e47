/* Making and freeing an op: the SQL and parameters copied, the kind
 * chosen by the caller, the context made busy. */
#include <string.h>

#include "alloc.h"
#include "kind.h"

/* The op, the SQL and the parameters in one allocation. */
static pqs__op_t *op_new(const char *sql, int nparams,
                         const char *const *params) {
  const char *sql_copy;
  const char *const *copies;
  pqs__op_t *op = pqs__with_texts(sizeof(pqs__op_t), sql, nparams, params,
                                  &sql_copy, &copies);
  if (op == NULL)
    return NULL;
  op->sql = sql_copy;
  op->nparams = nparams;
  op->params = copies;
  return op;
}

/* A reset (RESET_*) keeps its state; a user's operation makes it BUSY. */
int pqs__op_begin(pqs_ctx_t *ctx, const pqs__kind_t *kind, const char *sql,
                  int nparams, const char *const *params,
                  const pqs_query_opts_t *opts, int single_row,
                  pqs__op_t **out) {
  pqs_source_t source = opts && opts->source ? opts->source : ctx->opts.source;
  pqs_result_format_t format = opts && opts->result_format
                                   ? opts->result_format
                                   : ctx->opts.result_format;
  if (sql == NULL || nparams < 0 || nparams > 65535 ||
      (nparams > 0 && params == NULL) || (unsigned)source > PQS_SOURCE_COPY ||
      (unsigned)format > PQS_RESULT_BINARY)
    return PQS_EINVAL;
  pqs__op_t *op = op_new(sql, nparams, params);
  if (op == NULL)
    return PQS_ENOMEM;
  op->ctx = ctx;
  op->kind = kind;
  op->single_row = single_row;
  op->binary = single_row && format == PQS_RESULT_BINARY;
  op->timeout_ms =
      opts && opts->timeout_ms ? opts->timeout_ms : ctx->opts.query_timeout_ms;
  if (opts != NULL) {
    op->on_statement = opts->on_statement;
    op->statement_data = opts->statement_data;
  }
  op->state = PQS__OP_NEW;
  ctx->op = op;
  if (ctx->state == PQS__CTX_READY)
    ctx->state = PQS__CTX_BUSY;
  *out = op;
  return 0;
}

void pqs__op_become(pqs__op_t *op, const pqs__kind_t *kind, int step) {
  if (op->kind != NULL && op->kind->free != NULL)
    op->kind->free(op);
  memset(&op->k, 0, sizeof(op->k));
  op->kind = kind;
  op->step = step;
}

void pqs__op_bind(pqs__op_t *op, const pqs__consumer_vt_t *vt, void *consumer) {
  op->consumer_vt = vt;
  op->consumer = consumer;
}

void pqs__op_free(pqs__op_t *op) {
  if (op->kind->free != NULL)
    op->kind->free(op);
  pqs__arena_free(&op->arena);
  pqs__free(op->typed);
  pqs__free(op->schema);
  pqs__free(op->tag);
  pqs__free(op->err_strings);
  pqs__free(op);
}
