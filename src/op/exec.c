/* Commands: an operation whose rows, if any, are counted and dropped. */
#include "alloc.h"
#include "kind.h"
#include "params.h"

typedef struct {
  pqs_ctx_t *ctx;
  pqs_exec_cb cb;
  void *data;
} exec_t;

static int exec_row(void *self, const pqs_row_t *row) {
  (void)self;
  (void)row;
  return PQS__CONTINUE;
}

static void exec_end(void *self, const pqs_done_t *done) {
  exec_t *e = self;
  e->cb(e->ctx, done, e->data);
  pqs__free(e);
}

static const pqs__consumer_vt_t exec_consumer = {
    .columns = NULL,
    .row = exec_row,
    .end = exec_end,
};

int pqs__exec_start(pqs_ctx_t *ctx, const char *sql, int nparams,
                    const char *const *params, const pqs_query_opts_t *opts,
                    pqs_exec_cb cb, void *data) {
  exec_t *e = pqs__malloc(sizeof(*e));
  if (e == NULL)
    return PQS_ENOMEM;
  pqs__op_t *op;
  int rc =
      pqs__op_begin(ctx, &pqs__kind_rows, sql, nparams, params, opts, 0, &op);
  if (rc != 0) {
    pqs__free(e);
    return rc;
  }
  *e = (exec_t){ctx, cb, data};
  pqs__op_bind(op, &exec_consumer, e);
  pqs__op_source.start(op);
  return 0;
}

int pqs_exec_typed(pqs_ctx_t *ctx, const char *sql, int nparams,
                   const pqs_param_t *params, const pqs_query_opts_t *opts,
                   pqs_exec_cb cb, void *data) {
  if (ctx == NULL || cb == NULL || sql == NULL)
    return PQS_EINVAL;
  int rc = pqs__ctx_check_ready(ctx);
  if (rc != 0)
    return rc;
  exec_t *e = pqs__malloc(sizeof(*e));
  pqs__params_t *typed = NULL;
  pqs__op_t *op;
  if (e == NULL)
    return PQS_ENOMEM;
  if ((rc = pqs__params_typed(nparams, params, &typed)) != 0 ||
      (rc = pqs__op_begin(ctx, &pqs__kind_rows, sql, 0, NULL, opts, 0, &op)) !=
          0) {
    pqs__free(typed);
    pqs__free(e);
    return rc;
  }
  *e = (exec_t){ctx, cb, data};
  op->typed = typed;
  pqs__op_bind(op, &exec_consumer, e);
  pqs__op_source.start(op);
  return 0;
}

int pqs_exec(pqs_ctx_t *ctx, const char *sql, int nparams,
             const char *const *params, const pqs_query_opts_t *opts,
             pqs_exec_cb cb, void *data) {
  if (ctx == NULL || cb == NULL)
    return PQS_EINVAL;
  int rc = pqs__ctx_check_ready(ctx);
  return rc != 0 ? rc
                 : pqs__exec_start(ctx, sql, nparams, params, opts, cb, data);
}
