/* The stream: what a consumer holds. It receives rows from a source (a
 * query on a context, through src/source.h) and hands them to the
 * consumer's callbacks. */
#include <stdlib.h>

#include "../src/ctx_int.h"

/* NEW --pqs_stream_start--> STARTED --end()--> freed after on_done */
typedef enum { STREAM_NEW, STREAM_STARTED, STREAM_ENDED } stream_state_t;

struct pqs_stream_s {
  pqs_ctx_t *ctx;
  const pqs__source_vt_t *src_vt;
  void *src;
  stream_state_t state;
  pqs_stream_cbs_t cbs;
  void *data;
  uint64_t rows;
};

static int sink_columns(void *self, const pqs_row_t *columns) {
  pqs_stream_t *s = self;
  return s->cbs.on_columns ? s->cbs.on_columns(s, columns, s->data)
                           : PQS_CONTINUE;
}

/* Hot path. */
static int sink_row(void *self, const pqs_row_t *row) {
  pqs_stream_t *s = self;
  s->rows++;
  return s->cbs.on_row ? s->cbs.on_row(s, row, s->data) : PQS_CONTINUE;
}

static void sink_end(void *self, const pqs_done_t *done) {
  pqs_stream_t *s = self;
  /* A stream that never started owes nobody a completion. */
  if (s->state == STREAM_STARTED) {
    s->state = STREAM_ENDED;
    pqs_done_t mine = *done;
    mine.rows = s->rows;
    s->cbs.on_done(s, &mine, s->data);
  }
  free(s);
}

static const pqs__sink_vt_t stream_sink = {
    .columns = sink_columns,
    .row = sink_row,
    .end = sink_end,
};

int pqs_query(pqs_ctx_t *ctx, pqs_stream_t **out, const char *sql,
              int nparams, const char *const *params,
              const pqs_query_opts_t *opts) {
  if (out == NULL)
    return PQS_EINVAL;
  pqs_stream_t *s = calloc(1, sizeof(*s));
  if (s == NULL)
    return PQS_ENOMEM;
  pqs__op_t *op;
  int rc = pqs__op_begin(ctx, sql, nparams, params, opts, 1, &op);
  if (rc != 0) {
    free(s);
    return rc;
  }
  pqs__op_bind(op, &stream_sink, s);
  s->ctx = ctx;
  s->src_vt = &pqs__op_source;
  s->src = op;
  *out = s;
  return 0;
}

int pqs_stream_start(pqs_stream_t *s, const pqs_stream_cbs_t *cbs,
                     void *data) {
  if (s == NULL || cbs == NULL || cbs->on_done == NULL)
    return PQS_EINVAL;
  if (!pqs__ctx_on_thread(s->ctx))
    return PQS_ETHREAD;
  if (s->state != STREAM_NEW)
    return PQS_ESTATE;
  s->cbs = *cbs;
  s->data = data;
  s->state = STREAM_STARTED;
  s->src_vt->start(s->src);
  return 0;
}

static int check_started(const pqs_stream_t *s) {
  if (s == NULL)
    return PQS_EINVAL;
  if (!pqs__ctx_on_thread(s->ctx))
    return PQS_ETHREAD;
  return s->state == STREAM_STARTED ? 0 : PQS_ESTATE;
}

int pqs_stream_pause(pqs_stream_t *s) {
  int rc = check_started(s);
  if (rc == 0)
    s->src_vt->pause(s->src);
  return rc;
}

int pqs_stream_resume(pqs_stream_t *s) {
  int rc = check_started(s);
  if (rc == 0)
    s->src_vt->resume(s->src);
  return rc;
}

int pqs_stream_close(pqs_stream_t *s) {
  if (s == NULL)
    return PQS_EINVAL;
  if (!pqs__ctx_on_thread(s->ctx))
    return PQS_ETHREAD;
  if (s->state == STREAM_NEW) {
    s->src_vt->discard(s->src);
    free(s);
  } else if (s->state == STREAM_STARTED) {
    s->src_vt->stop(s->src, PQS_ECANCELED);
  }
  return 0;
}

pqs_ctx_t *pqs_stream_ctx(const pqs_stream_t *s) { return s->ctx; }
uint64_t pqs_stream_rows(const pqs_stream_t *s) { return s->rows; }
