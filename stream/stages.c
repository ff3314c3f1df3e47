/* Stages: adding them to a stream, and running them as one flat loop. */
#include <stdlib.h>

#include "../src/core.h"
#include "stream_int.h"

/* Stages change what the stream delivers: once rows flow, adding one is
 * too late (PQS_ESTATE, as for every call at the wrong moment); adding
 * one after the batch, which stays last, is a misuse (PQS_EINVAL). */
static int check_unstarted(pqs_stream_t *s) {
  int rc = pqs__stream_check_users(s);
  if (rc == 0 && s->state != PQS__STREAM_NEW)
    rc = PQS_ESTATE;
  else if (rc == 0 && s->batch != NULL)
    rc = PQS_EINVAL;
  return rc;
}

/* Appends a stage. On failure the user's data is released at once, as the
 * header promises. */
static int add(pqs_stream_t *s, const pqs__stage_t *stage) {
  int rc = check_unstarted(s);
  pqs__stage_t *grown = NULL;
  if (rc == 0) {
    grown = pqs__realloc(s->stages, (s->nstages + 1) * sizeof(*grown));
    rc = grown ? 0 : PQS_ENOMEM;
  }
  if (rc != 0) {
    if (stage->free_data)
      stage->free_data(stage->data);
    pqs__out_free(stage->out);
    return rc;
  }
  s->stages = grown;
  s->stages[s->nstages++] = *stage;
  return 0;
}

static int add_fn(pqs_stream_t *s, pqs__stage_kind_t kind, pqs_row_fn fn,
                  void *data, pqs_free_cb free_data) {
  pqs__stage_t st = {
      .kind = kind, .fn = fn, .data = data, .free_data = free_data};
  if (fn == NULL) {
    if (free_data)
      free_data(data);
    return PQS_EINVAL;
  }
  return add(s, &st);
}

int pqs_stream_filter(pqs_stream_t *s, pqs_row_fn pred, void *data,
                      pqs_free_cb free_data) {
  return add_fn(s, PQS__STAGE_FILTER, pred, data, free_data);
}

int pqs_stream_tap(pqs_stream_t *s, pqs_row_fn fn, void *data,
                   pqs_free_cb free_data) {
  return add_fn(s, PQS__STAGE_TAP, fn, data, free_data);
}

int pqs_stream_take(pqs_stream_t *s, uint64_t n) {
  pqs__stage_t st = {.kind = PQS__STAGE_TAKE, .n = n};
  return add(s, &st);
}

int pqs_stream_skip(pqs_stream_t *s, uint64_t n) {
  pqs__stage_t st = {.kind = PQS__STAGE_SKIP, .n = n};
  return add(s, &st);
}

int pqs_stream_map(pqs_stream_t *s, const pqs_column_t *cols, int ncols,
                   pqs_map_fn fn, void *data, pqs_free_cb free_data) {
  pqs__stage_t st = {.kind = PQS__STAGE_MAP,
                     .map_fn = fn,
                     .data = data,
                     .free_data = free_data};
  int rc = PQS_EINVAL;
  if (fn != NULL && cols != NULL && ncols > 0) {
    st.out = pqs__out_new(cols, ncols);
    rc = st.out ? 0 : PQS_ENOMEM;
  }
  if (rc != 0) {
    if (free_data)
      free_data(data);
    return rc;
  }
  return add(s, &st);
}

int pqs_stream_batch(pqs_stream_t *s, size_t n) {
  int rc = check_unstarted(s);
  if (rc == 0 && n == 0)
    rc = PQS_EINVAL;
  if (rc != 0)
    return rc;
  s->batch = pqs__batch_new(n);
  return s->batch ? 0 : PQS_ENOMEM;
}

void pqs__stages_free(pqs_stream_t *s) {
  for (int i = 0; i < s->nstages; i++) {
    if (s->stages[i].free_data)
      s->stages[i].free_data(s->stages[i].data);
    pqs__out_free(s->stages[i].out);
  }
  pqs__free(s->stages);
  s->stages = NULL;
  s->nstages = 0;
}

const pqs_row_t *pqs__stages_columns(pqs_stream_t *s, const pqs_row_t *cols) {
  for (int i = 0; i < s->nstages; i++)
    if (s->stages[i].kind == PQS__STAGE_MAP)
      cols = pqs__out_columns(s->stages[i].out);
  return cols;
}

/* Hot path: one pass over the stages per row, no allocation, no
 * recursion. Returns what becomes of the row (src/answer.h): CONTINUE (on
 * to the consumer), SKIP (dropped), LAST (on, then end), DONE (end now),
 * STOP or an error. A stage's PAUSE pauses the source at once, as
 * pqs_stream_pause from inside it would; the row still finishes its way. */
int pqs__stages_run(pqs_stream_t *s, const pqs_row_t **row) {
  int last = 0;
  pqs__stage_t *st = s->stages, *end = st + s->nstages;
  for (; st < end; st++) {
    int rc;
    switch (st->kind) {
    case PQS__STAGE_FILTER:
      rc = st->fn(s, *row, st->data);
      if (rc >= 0)
        rc = rc ? PQS__CONTINUE : PQS__SKIP;
      break;
    case PQS__STAGE_TAP:
      rc = st->fn(s, *row, st->data);
      break;
    case PQS__STAGE_SKIP:
      rc = st->seen < st->n ? (st->seen++, PQS__SKIP) : PQS__CONTINUE;
      break;
    case PQS__STAGE_TAKE:
      if (st->seen >= st->n)
        return PQS__DONE;
      rc = ++st->seen == st->n ? PQS__LAST : PQS__CONTINUE;
      break;
    default: /* PQS__STAGE_MAP */
      rc = pqs__out_run(st->out, s, st->map_fn, st->data, row);
      break;
    }
    switch (rc) {
    case PQS__CONTINUE:
      break;
    case PQS__PAUSE:
      if (s->state == PQS__STREAM_STARTED)
        s->src_vt->pause(s->src);
      break;
    case PQS__LAST:
      last = 1;
      break;
    case PQS__SKIP:
      return last ? PQS__DONE : PQS__SKIP;
    default:
      return rc; /* STOP or an error */
    }
  }
  return last ? PQS__LAST : PQS__CONTINUE;
}
