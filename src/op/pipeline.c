/* The pipeline kind: several queries sent in one round trip (libpq's
 * pipeline mode), their results handed to one consumer each, in order.
 * This file holds the pipeline and its members (each a row source behind
 * a stream, source.h), and the kind:
 *
 *   DESCRIBE (only if a member's consumer writes JSON Lines: each such
 *     statement prepared unnamed and described, a sync after each)
 *     --the last sync--> RUN
 *   RUN (every query, a sync after each, or one sync after all when all
 *     or nothing) --the last sync--> (done)
 *
 * The op's consumer is the pipeline, which passes columns and rows to the
 * member whose results are coming (`cur`). A member ends at its query's
 * last result: its consumer's end is called then, except the last
 * member's (and every member's when all or nothing), which waits for the
 * op's own end, when the context is free. The op's error, status, tag,
 * rows and schema are the current member's, moved out at its end.
 *
 * A member's own states:
 *   NEW --start--> STARTED --its results end--> ENDED (its end called)
 *   STARTED --its results end, the last or all or nothing--> KEPT
 *   KEPT --the op's end--> ENDED
 *   NEW --discard (closed before the send)--> GONE (never sent)
 * Beside them, facts: `reason` (its consumer ended it early: its rows
 * are dropped from then on) and `paused`. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error_int.h"
#include "kind.h"
#include "sqltext.h"

enum { DESCRIBE, RUN };
enum { M_NEW, M_STARTED, M_KEPT, M_ENDED, M_GONE };

typedef struct pqs__member_s {
  pqs_pipeline_t *pl;
  const pqs__consumer_vt_t *vt;
  void *consumer;
  const char *sql;          /* with the text parameters, one allocation */
  int nparams;
  const char *const *params;
  pqs__params_t *typed;     /* or NULL; owned */
  int state;
  int reason;               /* 0, or why its consumer ended it */
  int paused;
  int json;                 /* its consumer writes JSON Lines */
  pqs__schema_t *schema;    /* described (JSON Lines), until it runs;
                               kept with its end after */
  pqs__buf_t json_sql;      /* the statement sent for it, or empty */
  /* A finished member whose end waits for the op's end: */
  int status;
  pqs_error_t err;
  char *err_strings;
  char *tag;
  uint64_t affected;
} member_t;

struct pqs_pipeline_s {
  pqs_ctx_t *ctx;
  pqs__op_t *op;
  uv_thread_t thread;
  member_t **m;
  size_t n, cap;
  size_t unstarted; /* members NEW */
  size_t cur;       /* the member whose results are coming */
  size_t syncs;     /* syncs of the step still to come */
  size_t at;        /* DESCRIBE: results since the last sync */
  int all_or_nothing;
  int asked;        /* fact: pqs_pipeline_send was called; the op starts
                       once no member is NEW */
  int nulls;        /* NULL results in a row */
};

/* ---- members ---- */

static member_t *member_new(const char *sql, int nparams,
                            const char *const *params) {
  const char *sql_copy;
  const char *const *copies;
  member_t *m = pqs__with_texts(sizeof(member_t), sql, nparams, params,
                                &sql_copy, &copies);
  if (m == NULL)
    return NULL;
  m->sql = sql_copy;
  m->nparams = nparams;
  m->params = copies;
  return m;
}

static void member_free(member_t *m) {
  pqs__free(m->typed);
  pqs__free(m->schema);
  pqs__buf_free(&m->json_sql);
  pqs__free(m->err_strings);
  pqs__free(m->tag);
  pqs__free(m);
}

/* 1 if a member after `i` still wants its rows. */
static int later_wanted(const pqs_pipeline_t *pl, size_t i) {
  for (size_t j = i + 1; j < pl->n; j++)
    if (pl->m[j]->state == M_STARTED && pl->m[j]->reason == 0)
      return 1;
  return 0;
}

/* 1 if no member after `i` is sent (they are GONE). */
static int last_live(const pqs_pipeline_t *pl, size_t i) {
  for (size_t j = i + 1; j < pl->n; j++)
    if (pl->m[j]->state != M_GONE)
      return 0;
  return 1;
}

static member_t *current(const pqs_pipeline_t *pl) {
  return pl->cur < pl->n ? pl->m[pl->cur] : NULL;
}

/* ---- sending ---- */

static int send_query(PGconn *conn, const member_t *m, int binary) {
  const char *sql = m->json_sql.len ? m->json_sql.data : m->sql;
  if (m->typed != NULL)
    return PQsendQueryParams(conn, sql, m->typed->n, m->typed->types,
                             m->typed->values, m->typed->lengths,
                             m->typed->formats, binary);
  return PQsendQueryParams(conn, sql, m->nparams, NULL, m->params, NULL, NULL,
                           binary);
}

static int send_describe(pqs_pipeline_t *pl, PGconn *conn) {
  int ok = 1;
  pl->syncs = 0;
  for (size_t i = 0; ok && i < pl->n; i++) {
    const member_t *m = pl->m[i];
    if (!m->json || m->state == M_GONE)
      continue;
    ok = PQsendPrepare(conn, "", m->sql, m->typed ? m->typed->n : m->nparams,
                       m->typed ? m->typed->types : NULL) &&
         PQsendDescribePrepared(conn, "") && PQpipelineSync(conn);
    pl->syncs++;
  }
  return ok;
}

/* Single-row mode is the current query's, set before its first result
 * is read: after the previous one's results end (libpq forgets it). */
static void arm(pqs__op_t *op) { PQsetSingleRowMode(op->ctx->conn); }

static int send_run(pqs_pipeline_t *pl, PGconn *conn, int binary) {
  int ok = 1, first = 1;
  pl->syncs = 0;
  for (size_t i = 0; ok && i < pl->n; i++) {
    if (pl->m[i]->state == M_GONE)
      continue;
    ok = send_query(conn, pl->m[i], binary);
    if (ok && first)
      arm(pl->op);
    first = 0;
    if (ok && !pl->all_or_nothing) {
      ok = PQpipelineSync(conn);
      pl->syncs++;
    }
  }
  if (ok && pl->all_or_nothing) {
    ok = PQpipelineSync(conn);
    pl->syncs++;
  }
  return ok;
}

/* 1: all sent; 0: nothing went out; -1: part of it did (the connection
 * must be given up: a later sync would run half a pipeline). */
static int pipeline_send(pqs__op_t *op) {
  if (pqs__settings_first(op))
    return op->kind->send(op);
  pqs_pipeline_t *pl = op->k.pipeline;
  PGconn *conn = op->ctx->conn;
  if (!PQenterPipelineMode(conn))
    return 0;
  pl->nulls = 0;
  pl->at = 0;
  int ok = op->step == DESCRIBE ? send_describe(pl, conn)
                                : send_run(pl, conn, op->binary);
  return ok ? 1 : -1;
}

/* ---- a member's end ---- */

/* How the current member ended, from what the op learnt of it. */
static int member_status(const pqs__op_t *op, const member_t *m) {
  if (m->reason != 0)
    return m->reason == PQS__DONE ? 0 : m->reason;
  if (pqs__op_broken(op))
    return PQS_ECONNLOST; /* libpq's error result says so too */
  if (op->state == PQS__OP_STOPPING || op->status != 0)
    return op->status == PQS__DONE ? 0 : op->status;
  return op->err.message != NULL ? PQS_ESQL : 0;
}

/* The op's record of the member, moved into it (its end waits). */
static void keep(pqs__op_t *op, member_t *m, int status) {
  m->state = M_KEPT;
  m->status = status;
  m->err = op->err;
  m->err_strings = op->err_strings;
  m->tag = op->tag;
  m->affected = op->affected;
  m->schema = op->schema; /* rows a batch stage holds borrow it */
  op->err_strings = NULL;
  op->tag = NULL;
  op->schema = NULL;
}

static void report(member_t *m, const pqs_done_t *done) {
  m->state = M_ENDED;
  m->vt->end(m->consumer, done);
}

static void report_now(pqs__op_t *op, member_t *m, int status) {
  pqs_done_t done = {
      .status = status,
      .affected = status == 0 ? op->affected : 0,
      .command_tag = status == 0 && m->reason == 0 ? op->tag : NULL,
      .error = status != 0 && op->err.message ? &op->err : NULL,
  };
  report(m, &done);
}

/* The op forgets the member that ended, and readies for the next. */
static void forget(pqs__op_t *op) {
  pqs__free(op->err_strings);
  op->err_strings = NULL;
  op->err = (pqs_error_t){0};
  if (op->state != PQS__OP_STOPPING)
    op->status = 0; /* its own failure (ENOMEM, ABORTED), not the op's */
  pqs__free(op->tag);
  op->tag = NULL;
  op->affected = 0;
  pqs__free(op->schema);
  op->schema = NULL;
  op->columns_sent = 0;
  op->rows = 0;
}

/* The current member's results are over: it ends (now or with the op),
 * and the next one's come. An answer code: a pause if the next member
 * is paused. */
static int member_done(pqs__op_t *op) {
  pqs_pipeline_t *pl = op->k.pipeline;
  member_t *m = current(pl);
  if (m == NULL)
    return PQS__CONTINUE;
  if (m->json_sql.len)
    pqs__op_forget_position(op); /* its position is in our text */
  int status = member_status(op, m);
  if (pl->all_or_nothing || last_live(pl, pl->cur))
    keep(op, m, status);
  else if (m->state == M_STARTED)
    report_now(op, m, status);
  forget(op);
  do
    pl->cur++;
  while (pl->cur < pl->n && pl->m[pl->cur]->state == M_GONE);
  member_t *next = current(pl);
  if (next == NULL)
    return PQS__CONTINUE;
  op->schema = next->schema; /* described, or NULL: from the result */
  next->schema = NULL;
  if (next->reason != 0 && !later_wanted(pl, pl->cur) &&
      op->state == PQS__OP_RUNNING)
    return next->reason == PQS_ECANCELED ? PQS__STOP : next->reason;
  return next->paused ? PQS__PAUSE : PQS__CONTINUE;
}

/* ---- the op's consumer: the pipeline, passing on to the member ---- */

/* A member's consumer ended it early: its rows are dropped while a later
 * member wants rows; else the op stops (the engine cancels). */
static int member_answer(pqs_pipeline_t *pl, member_t *m, int rc) {
  if (rc == PQS__CONTINUE || rc == PQS__PAUSE)
    return rc;
  m->reason = rc == PQS__STOP ? PQS_ECANCELED : rc;
  return later_wanted(pl, pl->cur) ? PQS__CONTINUE : rc;
}

static int pl_columns(void *self, const pqs_row_t *columns) {
  pqs_pipeline_t *pl = self;
  member_t *m = current(pl);
  if (m == NULL || m->reason != 0 || m->vt->columns == NULL)
    return PQS__CONTINUE;
  return member_answer(pl, m, m->vt->columns(m->consumer, columns));
}

/* Hot path: one call per row. */
static int pl_row(void *self, const pqs_row_t *row) {
  pqs_pipeline_t *pl = self;
  member_t *m = current(pl);
  if (m == NULL || m->reason != 0)
    return PQS__CONTINUE;
  return member_answer(pl, m, m->vt->row(m->consumer, row));
}

/* all or nothing: the first member whose failure undid the others, or
 * NULL. */
static const member_t *undoer(const pqs_pipeline_t *pl) {
  if (!pl->all_or_nothing)
    return NULL;
  for (size_t i = 0; i < pl->n; i++)
    if (pl->m[i]->state == M_KEPT &&
        (pl->m[i]->status == PQS_ESQL || pl->m[i]->status == PQS_EABORTED))
      return pl->m[i];
  return NULL;
}

/* The op ended (the context is free): every member not yet ended ends,
 * in order, with what it kept, or with the op's end. */
static void pl_end(void *self, const pqs_done_t *done) {
  pqs_pipeline_t *pl = self;
  const member_t *failed = undoer(pl);
  for (size_t i = 0; i < pl->n; i++) {
    member_t *m = pl->m[i];
    if (m->state != M_STARTED && m->state != M_KEPT && m->state != M_NEW)
      continue;
    int kept = m->state == M_KEPT;
    pqs_done_t mine = {.status = done->status, .error = done->error};
    if (m->reason != 0 && !kept)
      mine = (pqs_done_t){.status = m->reason == PQS__DONE ? 0 : m->reason};
    else if (kept && failed != NULL && m->status == 0)
      mine = (pqs_done_t){.status = PQS_EABORTED,
                          .error = failed->err.message ? &failed->err : NULL};
    else if (kept)
      mine = (pqs_done_t){
          .status = m->status,
          .affected = m->status == 0 ? m->affected : 0,
          .command_tag = m->status == 0 && m->reason == 0 ? m->tag : NULL,
          .error = m->status != 0 && m->err.message ? &m->err : NULL,
      };
    if (mine.status == PQS__DONE)
      mine.status = 0;
    if (mine.status == 0 && done->status != 0 && !kept)
      mine = (pqs_done_t){.status = done->status, .error = done->error};
    report(m, &mine);
  }
}

static const pqs__consumer_vt_t pipeline_consumer = {
    .columns = pl_columns,
    .row = pl_row,
    .end = pl_end,
};

/* ---- the kind ---- */

/* DESCRIBE: per JSON member, its Prepare's result, then its Describe's
 * (the columns), or an error and the Describe aborted; then a sync. */
static int describe_take(pqs__op_t *op, PGresult *res) {
  pqs_pipeline_t *pl = op->k.pipeline;
  if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
    pl->at = 0;
    do
      pl->cur++;
    while (pl->cur < pl->n && (!pl->m[pl->cur]->json ||
                               pl->m[pl->cur]->state == M_GONE));
    op->final = --pl->syncs == 0;
    return PQS__CONTINUE;
  }
  member_t *m = current(pl);
  if (pl->at++ != 1 || PQresultStatus(res) != PGRES_COMMAND_OK || m == NULL)
    return PQS__CONTINUE; /* a failure shows again when it runs */
  if ((m->schema = pqs__op_schema_of(op, res)) == NULL ||
      pqs__json_plan_of(op->ctx, m->sql, op->binary, &m->schema) != 0 ||
      pqs__json_wrap(m->schema, m->sql, &m->json_sql) != 0)
    return PQS_ENOMEM;
  m->schema->binary = op->binary; /* described in text; sent as asked */
  return PQS__CONTINUE;
}

/* RUN: each query's results (rows one result each, then its end, or an
 * error, or PGRES_PIPELINE_ABORTED after an earlier failure when all or
 * nothing), each followed by a sync unless all or nothing. */
static int run_take(pqs__op_t *op, PGresult *res) {
  pqs_pipeline_t *pl = op->k.pipeline;
  int rc;
  switch (PQresultStatus(res)) {
  case PGRES_SINGLE_TUPLE:
    return op->state == PQS__OP_STOPPING ? PQS__CONTINUE
                                         : pqs__rows_take(op, res);
  case PGRES_PIPELINE_SYNC:
    op->final = --pl->syncs == 0;
    arm(op);
    return PQS__CONTINUE;
  case PGRES_PIPELINE_ABORTED:
    pqs__op_note(op, PQS_EABORTED);
    return member_done(op);
  case PGRES_TUPLES_OK:
    if (PQntuples(res) > 0) { /* single-row mode did not take */
      op->err.message = "libpq refused single-row mode";
      pqs__op_note(op, PQS_ESTATE);
    }
    /* fall through */
  default:
    rc = pqs__rows_take(op, res);
    op->final = 0; /* the last sync ends the step */
    if (rc != PQS__CONTINUE && rc != PQS__PAUSE) {
      member_t *m = current(pl);
      if (m != NULL)
        (void)member_answer(pl, m, rc);
    }
    return member_done(op);
  }
}

static int pipeline_take(pqs__op_t *op, PGresult *res) {
  op->k.pipeline->nulls = 0;
  return op->step == DESCRIBE ? describe_take(op, res) : run_take(op, res);
}

/* A NULL result ends one query's results, not the step's: the last sync
 * does. Two in a row, or a dead connection, and libpq has no more. */
static int pipeline_goes_on(pqs__op_t *op) {
  pqs_pipeline_t *pl = op->k.pipeline;
  if (op->final || op->lost || PQstatus(op->ctx->conn) == CONNECTION_BAD ||
      ++pl->nulls >= 2)
    return 0;
  if (op->step == RUN)
    arm(op);
  return 1;
}

static pqs__next_t pipeline_next(pqs__op_t *op) {
  pqs_pipeline_t *pl = op->k.pipeline;
  if (PQexitPipelineMode(op->ctx->conn) == 0 && !op->lost) {
    pqs__op_conn_error(op);
    pqs__op_note(op, PQS_EBROKEN);
    op->lost = 1;
  }
  if (op->step == DESCRIBE && pqs__op_step_ended(op) && op->status == 0) {
    op->step = RUN;
    pl->cur = 0;
    while (pl->cur < pl->n && pl->m[pl->cur]->state == M_GONE)
      pl->cur++;
    member_t *m = current(pl);
    if (m != NULL) {
      op->schema = m->schema;
      m->schema = NULL;
    }
    return PQS__NEXT_SEND;
  }
  return PQS__NEXT_END;
}

/* libpq 15 out of memory while parsing a pipeline's result: batch.c. */
static pqs__busy_t pipeline_busy(pqs__op_t *op) {
  return strstr(PQerrorMessage(op->ctx->conn), "out of memory")
             ? PQS__BUSY_STUCK
             : PQS__BUSY_PROBE;
}

static void pipeline_free(pqs__op_t *op) {
  pqs_pipeline_t *pl = op->k.pipeline;
  if (pl == NULL)
    return;
  for (size_t i = 0; i < pl->n; i++)
    member_free(pl->m[i]);
  pqs__free(pl->m);
  pqs__free(pl);
  op->k.pipeline = NULL;
}

const pqs__kind_t pqs__kind_pipeline = {
    .name = "pipeline",
    .send = pipeline_send,
    .take = pipeline_take,
    .goes_on = pipeline_goes_on,
    .next = pipeline_next,
    .busy = pipeline_busy,
    .free = pipeline_free,
};

/* ---- a member as the row source of its stream ---- */

static int send_when_ready(pqs_pipeline_t *pl);
static size_t live(const pqs_pipeline_t *pl);

/* NEW -> STARTED: its stream started. */
static void member_start(void *src) {
  member_t *m = src;
  assert(m->state == M_NEW);
  m->state = M_STARTED;
  m->pl->unstarted--;
  send_when_ready(m->pl);
}

static void member_pause(void *src) {
  member_t *m = src;
  assert(m->state == M_STARTED || m->state == M_KEPT);
  m->paused = 1;
  if (current(m->pl) == m)
    pqs__op_source.pause(m->pl->op);
}

static void member_resume(void *src) {
  member_t *m = src;
  assert(m->state == M_STARTED || m->state == M_KEPT);
  m->paused = 0;
  if (current(m->pl) == m)
    pqs__op_source.resume(m->pl->op);
}

/* Its consumer ends it early. Before the send, it just waits for its
 * turn; after, the op stops if nothing later wants rows. */
static void member_stop(void *src, int reason) {
  member_t *m = src;
  pqs_pipeline_t *pl = m->pl;
  assert(m->state == M_STARTED || m->state == M_KEPT);
  if (m->reason != 0 || m->state == M_KEPT)
    return; /* its results are all in: nothing to stop */
  m->reason = reason;
  if (pl->op->state == PQS__OP_NEW)
    return;
  /* A DESCRIBE's end looks again, as the members' turns come. */
  member_t *cur = current(pl);
  if (pl->op->step == RUN && cur != NULL && cur->reason != 0 &&
      !later_wanted(pl, pl->cur))
    pqs__op_stop(pl->op, reason);
}

/* Closed before it started: left out of the pipeline, which goes too if
 * it was to be sent and nothing is left (the context is free). */
static void member_discard(void *src) {
  member_t *m = src;
  pqs_pipeline_t *pl = m->pl;
  assert(m->state == M_NEW);
  pl->unstarted--;
  m->state = M_GONE;
  if (pl->asked && live(pl) == 0)
    pqs__op_source.discard(pl->op);
  else
    send_when_ready(pl);
}

static void member_lines(void *src, int format) {
  member_t *m = src;
  m->json = format == PQS_FORMAT_JSONL;
}

const pqs__source_vt_t pqs__member_source = {
    .start = member_start,
    .pause = member_pause,
    .resume = member_resume,
    .stop = member_stop,
    .discard = member_discard,
    .lines = member_lines,
};

/* ---- the pipeline ---- */

static int check(const pqs_pipeline_t *pl) {
  if (pl == NULL)
    return PQS_EINVAL;
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &pl->thread) ? 0 : PQS_ETHREAD;
}

int pqs_pipeline(pqs_ctx_t *ctx, const pqs_pipeline_opts_t *opts,
                 pqs_pipeline_t **out) {
  if (ctx == NULL || out == NULL ||
      (opts && (unsigned)opts->result_format > PQS_RESULT_BINARY))
    return PQS_EINVAL;
  int rc = pqs__ctx_check_ready(ctx);
  if (rc != 0)
    return rc;
  pqs_pipeline_t *pl = pqs__calloc(1, sizeof(*pl));
  if (pl == NULL)
    return PQS_ENOMEM;
  pqs_query_opts_t qo = {0};
  if (opts != NULL) {
    qo.timeout_ms = opts->timeout_ms;
    qo.result_format = opts->result_format;
    pl->all_or_nothing = opts->all_or_nothing != 0;
  }
  pqs__op_t *op;
  rc = pqs__op_begin(ctx, &pqs__kind_pipeline, "", 0, NULL, &qo, 1, &op);
  if (rc != 0) {
    pqs__free(pl);
    return rc;
  }
  pl->ctx = ctx;
  pl->op = op;
  pl->thread = uv_thread_self();
  op->k.pipeline = pl;
  op->step = RUN;
  pqs__op_bind(op, &pipeline_consumer, pl);
  *out = pl;
  return 0;
}

int pqs__pipeline_add(pqs_pipeline_t *pl, const char *sql, int nparams,
                      const char *const *params, pqs__member_t **out) {
  int rc = check(pl);
  if (rc != 0)
    return rc;
  if (sql == NULL || out == NULL || nparams < 0 || nparams > 65535 ||
      (nparams > 0 && params == NULL))
    return PQS_EINVAL;
  if (pl->asked)
    return PQS_ESTATE;
  char word[8];
  pqs__sql_first_word(sql, word, sizeof(word));
  if (strcmp(word, "copy") == 0)
    return PQS_EINVAL; /* not in pipeline mode */
  if (pl->n == pl->cap) {
    size_t cap = pl->cap ? pl->cap * 2 : 8;
    member_t **grown = pqs__realloc(pl->m, cap * sizeof(*grown));
    if (grown == NULL)
      return PQS_ENOMEM;
    pl->m = grown;
    pl->cap = cap;
  }
  member_t *m = member_new(sql, nparams, params);
  if (m == NULL)
    return PQS_ENOMEM;
  m->pl = pl;
  pl->m[pl->n++] = m;
  pl->unstarted++;
  *out = m;
  return 0;
}

void pqs__member_bind(pqs__member_t *m, const pqs__consumer_vt_t *vt,
                      void *consumer, pqs__params_t *typed) {
  m->vt = vt;
  m->consumer = consumer;
  m->typed = typed;
}

pqs_ctx_t *pqs__pipeline_ctx(const pqs_pipeline_t *pl) { return pl->ctx; }

/* Sent once asked and every member is started (or gone): 1 if it was. */
static int send_when_ready(pqs_pipeline_t *pl) {
  if (!pl->asked || pl->op->state != PQS__OP_NEW || pl->unstarted > 0)
    return 0;
  int json = 0;
  for (size_t i = 0; i < pl->n; i++)
    json |= pl->m[i]->state == M_STARTED && pl->m[i]->json;
  pl->cur = 0;
  while (pl->m[pl->cur]->state == M_GONE ||
         (json && !pl->m[pl->cur]->json))
    pl->cur++;
  pl->op->step = json ? DESCRIBE : RUN;
  pqs__op_source.start(pl->op);
  if (pl->op->step == RUN && pl->m[pl->cur]->paused)
    pqs__op_source.pause(pl->op);
  return 1;
}

static size_t live(const pqs_pipeline_t *pl) {
  size_t n = 0;
  for (size_t i = 0; i < pl->n; i++)
    n += pl->m[i]->state != M_GONE;
  return n;
}

int pqs_pipeline_send(pqs_pipeline_t *pl) {
  int rc = check(pl);
  if (rc != 0)
    return rc;
  if (pl->asked)
    return PQS_ESTATE;
  if (live(pl) == 0)
    return PQS_EINVAL;
  pl->asked = 1;
  send_when_ready(pl);
  return 0;
}

int pqs_pipeline_close(pqs_pipeline_t *pl) {
  if (pl == NULL)
    return 0;
  int rc = check(pl);
  if (rc != 0)
    return rc;
  if (pl->op->state != PQS__OP_NEW) {
    for (size_t i = pl->cur; i < pl->n; i++)
      if (pl->m[i]->reason == 0)
        pl->m[i]->reason = PQS_ECANCELED;
    pqs__op_stop(pl->op, PQS_ECANCELED);
    return 0;
  }
  /* Never sent. Streams not started go now, without a word; started
   * ones hear from the loop, as the op ends (their on_done is never
   * called from inside this call), and none: the context is free now. */
  int started = 0;
  for (size_t i = 0; i < pl->n; i++) {
    member_t *m = pl->m[i];
    if (m->state == M_STARTED) {
      started = 1;
      if (m->reason == 0)
        m->reason = PQS_ECANCELED;
    }
  }
  if (!started) {
    pqs_done_t done = {.status = PQS_ECANCELED};
    for (size_t i = 0; i < pl->n; i++)
      if (pl->m[i]->state == M_NEW)
        report(pl->m[i], &done); /* freed, no on_done: never started */
    pqs__op_source.discard(pl->op);
    return 0;
  }
  pl->asked = 1; /* nothing more may be added, nor sent */
  pqs__op_end_unstarted(pl->op, PQS_ECANCELED);
  return 0;
}
