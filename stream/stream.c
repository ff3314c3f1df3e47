/* The stream: what a consumer holds. It receives rows from a source (a
 * query on a context, through src/source.h), runs them through its stages
 * and hands them to the consumer's callbacks. */
#include <assert.h>
#include <stdlib.h>

#include "../src/core.h"
#include "stream_int.h"

pqs_stream_t *pqs__stream_new(pqs_ctx_t *ctx, const pqs__source_vt_t *vt,
                              void *src) {
  pqs_stream_t *s = pqs__calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->ctx = ctx;
  s->thread = uv_thread_self();
  s->src_vt = vt;
  s->src = src;
  return s;
}

static void stream_free(pqs_stream_t *s) {
  pqs__stages_free(s);
  pqs__batch_free(s->batch);
  void (*fn)(void *) = s->on_free;
  void *data = s->on_free_data;
  pqs__free(s);
  if (fn != NULL)
    fn(data);
}

void pqs__stream_on_free(pqs_stream_t *s, void (*fn)(void *), void *data) {
  s->on_free = fn;
  s->on_free_data = data;
}

int pqs__stream_check(const pqs_stream_t *s) {
  if (s == NULL)
    return PQS_EINVAL;
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &s->thread))
    return PQS_ETHREAD;
  return 0;
}

int pqs__stream_check_users(const pqs_stream_t *s) {
  int rc = pqs__stream_check(s); /* the thread before any field */
  return rc == 0 && s->held ? PQS_ESTATE : rc;
}

void pqs__stream_hold(pqs_stream_t *s) {
  assert(s->state == PQS__STREAM_NEW && !s->held);
  s->held = 1;
}

/* ---- the consumer side of the seam: what the source pushes ---- */

static int take_columns(void *self, const pqs_row_t *columns) {
  pqs_stream_t *s = self;
  columns = pqs__stages_columns(s, columns);
  return s->cbs.on_columns ? s->cbs.on_columns(s, columns, s->cb_data)
                           : PQS_CONTINUE;
}

static int deliver_batch(pqs_stream_t *s) {
  size_t n;
  const pqs_row_t *const *rows = pqs__batch_take(s->batch, &n);
  return n ? s->cbs.on_batch(s, rows, n, s->cb_data) : PQS_CONTINUE;
}

/* To the consumer, one row or into the batch. */
static int deliver(pqs_stream_t *s, const pqs_row_t *row) {
  s->rows++;
  if (s->batch == NULL)
    return s->cbs.on_row ? s->cbs.on_row(s, row, s->cb_data) : PQS_CONTINUE;
  int full = pqs__batch_add(s->batch, row);
  if (full <= 0)
    return full; /* 0: not yet, or an error */
  return deliver_batch(s);
}

/* Hot path: once per row from the source. A stage that paused has paused
 * the source already; the row still goes on. */
static int take_row(void *self, const pqs_row_t *row) {
  pqs_stream_t *s = self;
  int rc = s->nstages ? pqs__stages_run(s, &row) : PQS__CONTINUE;
  if (rc == PQS__SKIP)
    return PQS__CONTINUE;
  if (rc != PQS__CONTINUE && rc != PQS__LAST)
    return rc; /* STOP, DONE or an error */
  if (s->state != PQS__STREAM_STARTED)
    return PQS__CONTINUE; /* a stage closed the stream */
  int mine = deliver(s, row);
  if (mine != PQS__CONTINUE && mine != PQS__PAUSE)
    return mine;
  return rc == PQS__LAST ? PQS__DONE : mine;
}

static void take_end(void *self, const pqs_done_t *done) {
  pqs_stream_t *s = self;
  /* A stream that never started owes nobody a completion. */
  if (s->state != PQS__STREAM_NEW) {
    /* Rows a batch holds come before the end, whatever the end. */
    if (s->batch != NULL && s->state == PQS__STREAM_STARTED)
      deliver_batch(s);
    s->state = PQS__STREAM_ENDED;
    pqs_done_t mine = *done;
    mine.rows = s->rows;
    s->cbs.on_done(s, &mine, s->cb_data);
  }
  stream_free(s);
}

const pqs__consumer_vt_t pqs__stream_consumer = {
    .columns = take_columns,
    .row = take_row,
    .end = take_end,
};

/* ---- the consumer side ---- */

/* The checks every stream over a context makes, and the stream, before
 * its op exists. */
static int stream_for(pqs_ctx_t *ctx, pqs_stream_t **out, pqs_stream_t **s) {
  if (out == NULL || ctx == NULL)
    return PQS_EINVAL;
  int rc = pqs__ctx_check_ready(ctx);
  if (rc != 0)
    return rc;
  *s = pqs__stream_new(ctx, &pqs__op_source, NULL);
  return *s ? 0 : PQS_ENOMEM;
}

/* The stream bound to the op its maker made (rc 0), or freed. */
static int stream_bind(pqs_stream_t *s, int rc, pqs__op_t *op,
                       pqs_stream_t **out) {
  if (rc != 0) {
    pqs__free(s);
    return rc;
  }
  pqs__op_bind(op, &pqs__stream_consumer, s);
  s->src = op;
  *out = s;
  return 0;
}

int pqs_query(pqs_ctx_t *ctx, pqs_stream_t **out, const char *sql, int nparams,
              const char *const *params, const pqs_query_opts_t *opts) {
  pqs_stream_t *s;
  pqs__op_t *op = NULL;
  int rc = stream_for(ctx, out, &s);
  if (rc != 0)
    return rc;
  rc = pqs__query_begin(ctx, sql, nparams, params, opts, 1, &op);
  return stream_bind(s, rc, op, out);
}

void pqs__stream_take_lines(pqs_stream_t *s, pqs_format_t format) {
  s->lines = (int)format + 1;
}

/* Lines reach the consumer as they came unless a stage changes rows (a
 * map) or stands between (a batch); filter and tap read values from the
 * same rows. */
static void offer_lines(pqs_stream_t *s) {
  if (s->lines == 0 || s->src_vt->lines == NULL || s->batch != NULL)
    return;
  for (int i = 0; i < s->nstages; i++)
    if (s->stages[i].kind == PQS__STAGE_MAP)
      return;
  s->src_vt->lines(s->src, s->lines - 1);
}

int pqs_listen(pqs_ctx_t *ctx, const char *const *channels, int n,
               pqs_stream_t **out) {
  pqs_stream_t *s;
  pqs__op_t *op = NULL;
  int rc = stream_for(ctx, out, &s);
  if (rc != 0)
    return rc;
  rc = pqs__listen_begin(ctx, channels, n, &op);
  return stream_bind(s, rc, op, out);
}

int pqs_changes(pqs_ctx_t *ctx, pqs_stream_t **out,
                const pqs_changes_opts_t *opts) {
  pqs_stream_t *s;
  pqs__op_t *op = NULL;
  int rc = stream_for(ctx, out, &s);
  if (rc != 0)
    return rc;
  rc = pqs__changes_begin(ctx, opts, &op);
  return stream_bind(s, rc, op, out);
}

int pqs_changes_ack(pqs_stream_t *s, uint64_t n) {
  int rc = pqs__stream_check(s);
  if (rc != 0)
    return rc;
  if (s->src_vt != &pqs__op_source || s->state != PQS__STREAM_STARTED)
    return PQS_ESTATE;
  return pqs__changes_ack(s->src, n);
}

int pqs_query_typed(pqs_ctx_t *ctx, pqs_stream_t **out, const char *sql,
                    int nparams, const pqs_param_t *params,
                    const pqs_query_opts_t *opts) {
  pqs__params_t *typed = NULL;
  int rc = pqs__params_typed(nparams, params, &typed);
  if (rc == 0 && (rc = pqs_query(ctx, out, sql, 0, NULL, opts)) == 0)
    pqs__op_set_typed((*out)->src, typed);
  else
    pqs__free(typed);
  return rc;
}

int pqs__stream_start(pqs_stream_t *s, const pqs_stream_cbs_t *cbs,
                      void *data) {
  if (s == NULL || cbs == NULL || cbs->on_done == NULL)
    return PQS_EINVAL;
  int rc = pqs__stream_check(s);
  if (rc != 0)
    return rc;
  if (s->state != PQS__STREAM_NEW)
    return PQS_ESTATE;
  if (s->batch != NULL && cbs->on_batch == NULL)
    return PQS_EINVAL;
  s->cbs = *cbs;
  s->cb_data = data;
  s->state = PQS__STREAM_STARTED;
  offer_lines(s);
  s->src_vt->start(s->src);
  return 0;
}

static int check_running(const pqs_stream_t *s) {
  int rc = pqs__stream_check(s);
  if (rc == 0 && s->state != PQS__STREAM_STARTED)
    rc = PQS_ESTATE;
  return rc;
}

int pqs__stream_pause(pqs_stream_t *s) {
  int rc = check_running(s);
  if (rc == 0)
    s->src_vt->pause(s->src);
  return rc;
}

int pqs__stream_resume(pqs_stream_t *s) {
  int rc = check_running(s);
  if (rc == 0)
    s->src_vt->resume(s->src);
  return rc;
}

/* NEW -> freed, STARTED -> STOPPING; nothing in the other states. */
int pqs__stream_close(pqs_stream_t *s) {
  if (s == NULL)
    return 0;
  int rc = pqs__stream_check(s);
  if (rc != 0)
    return rc;
  if (s->state == PQS__STREAM_NEW) {
    s->src_vt->discard(s->src);
    stream_free(s);
  } else if (s->state == PQS__STREAM_STARTED) {
    s->state = PQS__STREAM_STOPPING;
    s->src_vt->stop(s->src, PQS_ECANCELED);
  }
  return 0;
}

/* ---- the user's calls: the holder's, unless the stream is held ---- */

int pqs_stream_start(pqs_stream_t *s, const pqs_stream_cbs_t *cbs, void *data) {
  int rc = s == NULL ? 0 : pqs__stream_check_users(s);
  return rc != 0 ? rc : pqs__stream_start(s, cbs, data);
}

int pqs_stream_pause(pqs_stream_t *s) {
  int rc = s == NULL ? 0 : pqs__stream_check_users(s);
  return rc != 0 ? rc : pqs__stream_pause(s);
}

int pqs_stream_resume(pqs_stream_t *s) {
  int rc = s == NULL ? 0 : pqs__stream_check_users(s);
  return rc != 0 ? rc : pqs__stream_resume(s);
}

int pqs_stream_close(pqs_stream_t *s) {
  int rc = s == NULL ? 0 : pqs__stream_check_users(s);
  return rc != 0 ? rc : pqs__stream_close(s);
}

pqs_ctx_t *pqs_stream_ctx(const pqs_stream_t *s) { return s->ctx; }
uint64_t pqs_stream_rows(const pqs_stream_t *s) { return s->rows; }
void *pqs_stream_get_data(const pqs_stream_t *s) { return s->data; }
void pqs_stream_set_data(pqs_stream_t *s, void *data) { s->data = data; }
