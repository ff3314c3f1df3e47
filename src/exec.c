/* Commands: an operation whose rows, if any, are counted and dropped. */
#include <stdlib.h>

#include "ctx_int.h"

typedef struct {
  pqs_ctx_t *ctx;
  pqs_exec_cb cb;
  void *data;
} exec_t;

static int exec_row(void *self, const pqs_row_t *row) {
  (void)self;
  (void)row;
  return PQS_CONTINUE;
}

static void exec_end(void *self, const pqs_done_t *done) {
  exec_t *e = self;
  e->cb(e->ctx, done, e->data);
  free(e);
}

static const pqs__sink_vt_t exec_sink = {
    .columns = NULL,
    .row = exec_row,
    .end = exec_end,
};

int pqs_exec(pqs_ctx_t *ctx, const char *sql, int nparams,
             const char *const *params, const pqs_query_opts_t *opts,
             pqs_exec_cb cb, void *data) {
  if (cb == NULL)
    return PQS_EINVAL;
  exec_t *e = malloc(sizeof(*e));
  if (e == NULL)
    return PQS_ENOMEM;
  pqs__op_t *op;
  int rc = pqs__op_begin(ctx, sql, nparams, params, opts, 0, &op);
  if (rc != 0) {
    free(e);
    return rc;
  }
  *e = (exec_t){ctx, cb, data};
  pqs__op_bind(op, &exec_sink, e);
  pqs__op_source.start(op);
  return 0;
}
