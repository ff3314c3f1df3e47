/* Merge and gather: several streams, each on its own context, at once.
 *
 * The merge is the source of the merged stream and the consumer of every
 * input. INTERLEAVE forwards each row as it arrives (no copy: the row is
 * the input's, tagged with its index). CONCAT forwards the current input's
 * rows and queues the others'. ORDERED queues every input's rows and emits
 * the least head while every live input has one. An input whose queue is
 * full pauses alone; pausing the merged stream pauses them all. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core.h"
#include "rowq.h"
#include "stream_int.h"

#define DEFAULT_BUFFER_ROWS 1000

/* The merge object; a gather's callback sees it as a pqs_gather_t. */
typedef struct pqs_gather_s merge_t;

/* NEW --m_start()--> RUNNING <--pause_all() / m_resume()--> PAUSED
 * RUNNING | PAUSED --stop_all()--> STOPPING (inputs closing, queues
 *                                   dropped)
 * RUNNING | PAUSED | STOPPING --finish()--> FINISHED: the one completion,
 *                                   then freed once its timer is closed
 * A gather starts RUNNING at once and is never paused. */
typedef enum {
  M_NEW,
  M_RUNNING,
  M_PAUSED,
  M_STOPPING,
  M_FINISHED
} merge_state_t;

typedef enum { M_MERGE, M_GATHER } merge_kind_t;

typedef struct {
  merge_t *m;
  int index;
  pqs_stream_t *s; /* NULL once it has ended */
  int full;        /* paused because its queue is full */
  pqs__schema_t *schema;
  pqs__rowq_t q;
  pqs__rowq_t last; /* ORDERED: its previous row, to check its order */
  uint64_t rows;
  pqs_rowset_t *set; /* gather */
  size_t set_cap;
} input_t;

struct pqs_gather_s {
  merge_kind_t kind;
  merge_state_t state;
  pqs_stream_t *out; /* the merged stream (M_MERGE) */
  uv_timer_t kick;   /* drains queues from the loop after a resume */
  pqs_merge_opts_t opts;
  pqs_sort_key_t *keys;
  size_t bound;
  pqs_gather_opts_t gopts;
  pqs_gather_cb gather_cb;
  void *gather_data;
  int n;       /* inputs */
  int ended;   /* inputs that have ended */
  int current; /* CONCAT: the input streaming straight through */
  input_t *in;
  pqs__schema_t *schema; /* the merged columns */
  int status;            /* the first reason it ends early, 0 if none */
  pqs_error_t err;
  char *err_strings;
  uint64_t rows_in, bytes_in;
  char tag[32];
};

static void maybe_end(merge_t *m);
static void emit(merge_t *m);
static void on_kick(uv_timer_t *t);

/* ---- ending early ---- */

/* Records the first reason to end, with its message naming the input. */
static void note_failure(merge_t *m, int input, int status,
                         const pqs_error_t *e, const char *msg) {
  if (m->status != 0)
    return;
  m->status = status;
  pqs_error_t src = e ? *e : (pqs_error_t){.message = msg};
  if (src.message == NULL)
    src.message = pqs_strerror(status);
  char prefix[32] = "";
  if (input >= 0)
    snprintf(prefix, sizeof(prefix), "input %d: ", input);
  pqs__error_copy(&m->err, &m->err_strings, &src, prefix);
}

/* Stops every input that still runs; each ends with its own on_done.
 * Queued rows are dropped when the merge is freed, not here: this may run
 * from inside an emit loop that still holds a queue's head. */
static void stop_all(merge_t *m, int status) {
  assert(m->state == M_RUNNING || m->state == M_PAUSED ||
         m->state == M_STOPPING);
  if (m->status == 0)
    m->status = status;
  m->state = M_STOPPING;
  for (int i = 0; i < m->n; i++)
    if (m->in[i].s != NULL)
      pqs__stream_close(m->in[i].s);
  uv_timer_start(&m->kick, on_kick, 0, 0);
}

static void fail(merge_t *m, input_t *in, int status, const char *msg) {
  note_failure(m, in ? in->index : -1, status, NULL, msg);
  stop_all(m, status);
}

/* ---- flow control ---- */

static void pause_all(merge_t *m) {
  if (m->state != M_RUNNING)
    return;
  m->state = M_PAUSED;
  for (int i = 0; i < m->n; i++)
    if (m->in[i].s != NULL)
      pqs__stream_pause(m->in[i].s);
}

static void unfull(merge_t *m, input_t *in) {
  if (in->full && in->q.count <= m->bound / 2) {
    in->full = 0;
    if (m->state == M_RUNNING && in->s != NULL)
      pqs__stream_resume(in->s);
  }
}

/* What the merged stream answered, as the answer to an input. */
static int control(merge_t *m, int rc) {
  if (rc == PQS__CONTINUE)
    return m->state == M_PAUSED ? PQS__PAUSE : PQS__CONTINUE;
  if (rc == PQS__PAUSE) {
    pause_all(m);
    return PQS__PAUSE;
  }
  stop_all(m, rc == PQS__STOP ? PQS_ECANCELED : rc);
  return PQS__STOP;
}

static int deliver(merge_t *m, const pqs_row_t *row) {
  return control(m, pqs__stream_consumer.row(m->out, row));
}

/* ---- emitting queued rows ---- */

static int cmp(merge_t *m, const pqs_row_t *a, const pqs_row_t *b) {
  return m->opts.cmp ? m->opts.cmp(a, b, m->opts.cmp_data)
                     : pqs__compare_keys(a, b, m->keys, m->opts.nkeys);
}

/* ORDERED: the least head, while every live input has one. Hot path. */
static void emit_ordered(merge_t *m) {
  while (m->state == M_RUNNING) {
    input_t *best = NULL;
    pqs_row_t head, best_head;
    for (int i = 0; i < m->n; i++) {
      input_t *in = &m->in[i];
      if (in->q.count == 0) {
        if (in->s != NULL)
          return; /* it may still send a lesser row: wait for it */
        continue;
      }
      pqs__rowq_peek(&in->q, in->schema, &head);
      if (best == NULL || cmp(m, &head, &best_head) < 0) {
        best = in;
        best_head = head;
      }
    }
    if (best == NULL)
      return;
    int rc = deliver(m, &best_head);
    pqs__rowq_pop(&best->q);
    unfull(m, best);
    if (rc == PQS__STOP)
      return;
  }
}

/* CONCAT: the current input's queue, then on to the next input. */
static void emit_concat(merge_t *m) {
  while (m->state == M_RUNNING && m->current < m->n) {
    input_t *in = &m->in[m->current];
    while (in->q.count > 0 && m->state == M_RUNNING) {
      pqs_row_t row;
      pqs__rowq_peek(&in->q, in->schema, &row);
      deliver(m, &row);
      pqs__rowq_pop(&in->q);
      unfull(m, in);
    }
    if (in->q.count > 0 || in->s != NULL)
      return; /* paused, or it still runs and now streams straight on */
    m->current++;
  }
}

static void emit(merge_t *m) {
  if (m->opts.mode == PQS_MERGE_ORDERED)
    emit_ordered(m);
  else if (m->opts.mode == PQS_MERGE_CONCAT)
    emit_concat(m);
}

/* ---- each input's callbacks ---- */

static int same_types(const pqs__schema_t *a, const pqs__schema_t *b) {
  if (a->ncols != b->ncols || a->binary != b->binary)
    return 0;
  for (int i = 0; i < a->ncols; i++)
    if (a->types[i] != b->types[i])
      return 0;
  return 1;
}

static int in_columns(pqs_stream_t *s, const pqs_row_t *cols, void *data) {
  (void)s;
  input_t *in = data;
  merge_t *m = in->m;
  if ((in->schema = pqs__schema_copy(cols->schema)) == NULL)
    return PQS_ENOMEM;
  if (m->kind == M_GATHER) /* it keeps each input's own columns */
    return PQS_CONTINUE;
  if (m->schema == NULL) {
    if ((m->schema = pqs__schema_copy(cols->schema)) == NULL)
      return PQS_ENOMEM;
    return control(m, pqs__stream_consumer.columns(m->out, cols));
  }
  if (!m->opts.mixed_columns && !same_types(m->schema, cols->schema)) {
    fail(m, in, PQS_ESCHEMA,
         "its columns differ in count, type or format from the merge's first "
         "input");
    return PQS_STOP;
  }
  return PQS_CONTINUE;
}

static int enqueue(merge_t *m, input_t *in, const pqs_row_t *row) {
  if (pqs__rowq_push(&in->q, row) != 0) {
    fail(m, in, PQS_ENOMEM, NULL);
    return PQS_STOP;
  }
  if (in->q.count >= m->bound) {
    in->full = 1;
    return PQS_PAUSE;
  }
  return m->state == M_PAUSED ? PQS__PAUSE : PQS__CONTINUE;
}

static int in_order(merge_t *m, input_t *in, const pqs_row_t *row) {
  if (in->last.count > 0) {
    pqs_row_t prev;
    pqs__rowq_peek(&in->last, in->schema, &prev);
    if (cmp(m, row, &prev) < 0) {
      char msg[96];
      snprintf(msg, sizeof(msg), "row %llu sorts before the row it follows",
               (unsigned long long)in->rows);
      fail(m, in, PQS_EORDER, msg);
      return 0;
    }
    pqs__rowq_pop(&in->last);
  }
  if (pqs__rowq_push(&in->last, row) != 0) {
    fail(m, in, PQS_ENOMEM, NULL);
    return 0;
  }
  return 1;
}

static int gather_row(merge_t *m, input_t *in, const pqs_row_t *row) {
  size_t bytes = 0;
  for (int i = 0; i < pqs_row_ncols(row); i++) {
    size_t len;
    const char *v;
    pqs__row_raw(row, i, &v, &len); /* the bytes held, text or binary */
    if (v != NULL)
      bytes += len;
  }
  m->bytes_in += bytes;
  if ((m->gopts.max_rows && m->rows_in > m->gopts.max_rows) ||
      (m->gopts.max_bytes && m->bytes_in > m->gopts.max_bytes)) {
    fail(m, in, PQS_ELIMIT, "the gather's cap on rows or bytes was reached");
    return PQS_STOP;
  }
  pqs_rowset_t *set = in->set;
  if (set->nrows == in->set_cap) {
    size_t cap = in->set_cap ? in->set_cap * 2 : 64;
    pqs_row_t **rows = pqs__realloc(set->rows, cap * sizeof(*rows));
    if (rows == NULL) {
      fail(m, in, PQS_ENOMEM, NULL);
      return PQS_STOP;
    }
    set->rows = rows;
    in->set_cap = cap;
  }
  if ((set->rows[set->nrows] = pqs_row_dup(row)) == NULL) {
    fail(m, in, PQS_ENOMEM, NULL);
    return PQS_STOP;
  }
  set->nrows++;
  return PQS_CONTINUE;
}

/* Hot path: every row of every input. */
static int in_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  input_t *in = data;
  merge_t *m = in->m;
  if (m->state == M_STOPPING)
    return PQS__STOP;
  in->rows++;
  m->rows_in++;
  pqs_row_t tagged = *row;
  tagged.input = in->index + 1;
  if (m->kind == M_GATHER)
    return gather_row(m, in, &tagged);
  switch (m->opts.mode) {
  case PQS_MERGE_CONCAT:
    if (in->index == m->current && in->q.count == 0)
      return deliver(m, &tagged);
    return enqueue(m, in, &tagged);
  case PQS_MERGE_ORDERED: {
    if (!in_order(m, in, &tagged))
      return PQS_STOP;
    int rc = enqueue(m, in, &tagged);
    emit_ordered(m);
    if (m->state == M_STOPPING)
      return PQS__STOP;
    return in->full || m->state == M_PAUSED ? PQS__PAUSE : rc;
  }
  default:
    return deliver(m, &tagged);
  }
}

static void in_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)s;
  input_t *in = data;
  merge_t *m = in->m;
  in->s = NULL;
  m->ended++;
  if (in->set)
    in->set->status = done->status;
  if (m->opts.on_input_done)
    m->opts.on_input_done(m->out, in->index, done, m->opts.data);
  /* A cancel the merge asked for is no failure of the input's own. */
  int stopping = m->state == M_STOPPING;
  if (done->status != 0 && !(stopping && done->status == PQS_ECANCELED)) {
    note_failure(m, in->index, done->status, done->error, NULL);
    int keep_going =
        m->kind == M_MERGE ? m->opts.keep_going : m->gopts.keep_going;
    if (!keep_going && !stopping)
      stop_all(m, done->status);
  }
  if (m->state != M_STOPPING)
    emit(m);
  maybe_end(m);
}

static const pqs_stream_cbs_t input_cbs = {
    .on_columns = in_columns, .on_row = in_row, .on_done = in_done};

/* ---- the end ---- */

static void merge_free_cb(uv_handle_t *h) {
  merge_t *m = h->data;
  for (int i = 0; i < m->n; i++) {
    pqs__rowq_free(&m->in[i].q);
    pqs__rowq_free(&m->in[i].last);
    pqs__free(m->in[i].schema);
    pqs_rowset_free(m->in[i].set);
  }
  pqs__free(m->in);
  pqs__free(m->keys);
  pqs__free(m->schema);
  pqs__free(m->err_strings);
  pqs__free(m);
}

/* RUNNING | PAUSED | STOPPING -> FINISHED. */
static void finish(merge_t *m) {
  assert(m->state != M_NEW && m->state != M_FINISHED);
  m->state = M_FINISHED;
  int status = m->status == PQS__DONE ? 0 : m->status;
  snprintf(m->tag, sizeof(m->tag), "MERGE %llu",
           (unsigned long long)m->rows_in);
  pqs_done_t done = {.status = status,
                     .rows = m->rows_in,
                     .command_tag = status == 0 ? m->tag : NULL,
                     .error = status != 0 && m->err_strings ? &m->err : NULL};
  if (m->kind == M_MERGE) {
    pqs__stream_consumer.end(m->out, &done);
  } else {
    pqs_rowset_t **sets = pqs__malloc((size_t)m->n * sizeof(*sets));
    for (int i = 0; sets && i < m->n; i++) {
      sets[i] = m->in[i].set; /* the caller's now */
      m->in[i].set = NULL;
    }
    if (sets == NULL)
      done.status = PQS_ENOMEM;
    m->gather_cb(m, sets, sets ? m->n : 0, &done, m->gather_data);
    pqs__free(sets);
  }
  uv_close((uv_handle_t *)&m->kick, merge_free_cb);
}

/* Ends once every input has ended and every queued row is out (or the
 * merge is stopping, and queued rows are dropped). */
static void maybe_end(merge_t *m) {
  if (m->state == M_FINISHED || m->ended < m->n)
    return;
  for (int i = 0; i < m->n && m->state != M_STOPPING; i++)
    if (m->in[i].q.count > 0)
      return; /* paused with rows to give: resume goes on */
  finish(m);
}

static void on_kick(uv_timer_t *t) {
  merge_t *m = t->data;
  if (m->state != M_STOPPING)
    emit(m);
  maybe_end(m);
}

/* ---- the merged stream's source ---- */

/* NEW -> RUNNING. Every input was checked unstarted, on this thread. */
static void m_start(void *src) {
  merge_t *m = src;
  assert(m->state == M_NEW);
  m->state = M_RUNNING;
  for (int i = 0; i < m->n; i++) {
    int rc = pqs__stream_start(m->in[i].s, &input_cbs, &m->in[i]);
    assert(rc == 0);
    (void)rc;
  }
}

static void m_pause(void *src) { pause_all(src); }

static void m_resume(void *src) {
  merge_t *m = src;
  if (m->state != M_PAUSED)
    return;
  m->state = M_RUNNING;
  for (int i = 0; i < m->n; i++)
    if (m->in[i].s != NULL && !m->in[i].full)
      pqs__stream_resume(m->in[i].s);
  uv_timer_start(&m->kick, on_kick, 0, 0);
}

static void m_stop(void *src, int reason) { stop_all(src, reason); }

static void m_discard(void *src) {
  merge_t *m = src;
  for (int i = 0; i < m->n; i++)
    pqs__stream_close(m->in[i].s); /* unstarted: freed at once */
  uv_close((uv_handle_t *)&m->kick, merge_free_cb);
}

/* A JSON Lines consumer: each input asks its source for the server's
 * JSON of the columns the client cannot render (json_plan.c), and the
 * queues keep those fields with the rows. TSV and CSV lines are not
 * kept through the queues: rows are formatted from their values. */
static void m_lines(void *src, int format) {
  merge_t *m = src;
  if (format != PQS_FORMAT_JSONL)
    return;
  for (int i = 0; i < m->n; i++)
    pqs__stream_take_lines(m->in[i].s, PQS_FORMAT_JSONL);
}

static const pqs__source_vt_t merge_source = {
    .start = m_start,
    .pause = m_pause,
    .resume = m_resume,
    .stop = m_stop,
    .discard = m_discard,
    .lines = m_lines,
};

/* ---- making one ---- */

static int check_inputs(pqs_stream_t *const *inputs, int n, uv_loop_t **loop) {
  if (inputs == NULL || n < 1)
    return PQS_EINVAL;
  for (int i = 0; i < n; i++) {
    int rc = pqs__stream_check_users(inputs[i]);
    if (rc != 0)
      return rc;
    if (inputs[i]->ctx == NULL)
      return PQS_EINVAL;
    if (inputs[i]->state != PQS__STREAM_NEW)
      return PQS_ESTATE;
    if (pqs_ctx_loop(inputs[i]->ctx) != pqs_ctx_loop(inputs[0]->ctx))
      return PQS_EINVAL;
    for (int j = 0; j < i; j++)
      if (inputs[j]->ctx == inputs[i]->ctx)
        return PQS_ESAMECTX;
  }
  *loop = pqs_ctx_loop(inputs[0]->ctx);
  return 0;
}

static merge_t *merge_new(uv_loop_t *loop, pqs_stream_t *const *inputs, int n) {
  merge_t *m = pqs__calloc(1, sizeof(*m));
  input_t *in = pqs__calloc((size_t)n, sizeof(*in));
  if (m == NULL || in == NULL) {
    pqs__free(m);
    pqs__free(in);
    return NULL;
  }
  m->n = n;
  m->in = in;
  for (int i = 0; i < n; i++)
    in[i] = (input_t){.m = m, .index = i, .s = inputs[i]};
  uv_timer_init(loop, &m->kick);
  m->kick.data = m;
  return m;
}

/* The inputs change hands, once nothing can fail any more. */
static void hold_all(merge_t *m) {
  for (int i = 0; i < m->n; i++)
    pqs__stream_hold(m->in[i].s);
}

static int check_opts(const pqs_merge_opts_t *o) {
  if ((unsigned)o->mode > PQS_MERGE_ORDERED ||
      (o->mixed_columns && o->mode == PQS_MERGE_ORDERED))
    return PQS_EINVAL;
  if (o->mode == PQS_MERGE_ORDERED && o->cmp == NULL &&
      (o->keys == NULL || o->nkeys < 1))
    return PQS_EINVAL;
  for (int i = 0; o->cmp == NULL && i < o->nkeys; i++)
    if (o->keys[i].col < 0)
      return PQS_EINVAL;
  return 0;
}

int pqs_merge(pqs_stream_t *const *inputs, int n, const pqs_merge_opts_t *opts,
              pqs_stream_t **out) {
  pqs_merge_opts_t o = opts ? *opts : (pqs_merge_opts_t){0};
  uv_loop_t *loop;
  int rc = out == NULL ? PQS_EINVAL : check_opts(&o);
  if (rc == 0)
    rc = check_inputs(inputs, n, &loop);
  if (rc != 0)
    return rc;
  merge_t *m = merge_new(loop, inputs, n);
  pqs_stream_t *s = m ? pqs__stream_new(NULL, &merge_source, m) : NULL;
  if (m && o.nkeys > 0 && o.keys != NULL) {
    m->keys = pqs__malloc((size_t)o.nkeys * sizeof(*m->keys));
    if (m->keys)
      memcpy(m->keys, o.keys, (size_t)o.nkeys * sizeof(*m->keys));
  }
  if (s == NULL || (o.nkeys > 0 && m->keys == NULL)) {
    pqs__free(s);
    if (m)
      uv_close((uv_handle_t *)&m->kick, merge_free_cb);
    return PQS_ENOMEM;
  }
  m->kind = M_MERGE;
  m->opts = o;
  m->bound = o.buffer_rows ? o.buffer_rows : DEFAULT_BUFFER_ROWS;
  m->out = s;
  hold_all(m);
  *out = s;
  return 0;
}

int pqs_gather(pqs_stream_t *const *inputs, int n,
               const pqs_gather_opts_t *opts, pqs_gather_cb cb, void *data) {
  uv_loop_t *loop;
  int rc = cb == NULL ? PQS_EINVAL : check_inputs(inputs, n, &loop);
  if (rc != 0)
    return rc;
  merge_t *m = merge_new(loop, inputs, n);
  for (int i = 0; m && i < n; i++)
    if ((m->in[i].set = pqs__calloc(1, sizeof(pqs_rowset_t))) == NULL) {
      uv_close((uv_handle_t *)&m->kick, merge_free_cb);
      m = NULL;
    }
  if (m == NULL)
    return PQS_ENOMEM;
  if (opts)
    m->gopts = *opts;
  m->kind = M_GATHER;
  m->gather_cb = cb;
  m->gather_data = data;
  hold_all(m);
  m_start(m);
  return 0;
}

int pqs_row_input(const pqs_row_t *row) { return row->input - 1; }

void pqs_rowset_free(pqs_rowset_t *set) {
  if (set == NULL)
    return;
  for (size_t i = 0; i < set->nrows; i++)
    pqs_row_free(set->rows[i]);
  pqs__free(set->rows);
  pqs__free(set);
}
