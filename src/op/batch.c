/* The batch kind: statements sent in one round trip through libpq's
 * pipeline mode, one transaction, run again on a serialization failure or
 * deadlock. This file holds the batch, the run and its tally, the retry
 * rule, and the kind:
 *
 *   PIPELINE --the sync's results end; a failed explicit transaction
 *              left open--> ROLLBACK --its results end--> done
 *   PIPELINE --a conflict, retries left, or a prepared statement's plan
 *              gone stale (once): pqs__op_wait()--> (WAITING)
 *            --the pause is over: again()--> PIPELINE
 *   PIPELINE --otherwise--> done
 *
 * With the context's statement cache (stmt_cache.h), each statement with
 * parameters is planned as it is sent: a statement the cache evicted is
 * closed (DEALLOCATE) just before, a statement to prepare is prepared
 * (Parse) just before it runs by name. Each result's role (roles[]) says
 * which statement it belongs to. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "kind.h"
#include "params.h"
#include "retry.h"
#include "stmt_cache.h"

enum { PIPELINE, ROLLBACK };

/* What a result of the pipeline is the result of. */
typedef enum { R_CLOSE, R_BEGIN, R_PREPARE, R_STMT, R_COMMIT } role_kind_t;
typedef struct {
  role_kind_t kind;
  size_t stmt; /* R_PREPARE, R_STMT: the statement's index */
} role_t;

typedef struct {
  char *sql;
  pqs__params_t *params;
} stmt_t;

struct pqs_batch_s {
  stmt_t *stmts;
  size_t n, cap;
};

/* A run: the op's consumer, and its tally of the statements' outcomes. */
struct pqs__pipeline_s {
  pqs_ctx_t *ctx;
  const pqs_batch_t *b;
  pqs_batch_opts_t opts;
  pqs_batch_cb cb;
  void *data;
  char begin[80]; /* "" or the BEGIN sent before the statements */
  size_t seen;    /* results so far, the BEGIN's included */
  long failed;    /* statement index of the first error; -1 */
  unsigned attempts;
  pqs__buf_t tags; /* each statement's tag, NUL-terminated */
  size_t *tag_at;  /* offsets into tags */
  uint64_t *affected;
  uint64_t rng; /* the backoff's jitter */
  int nulls;    /* NULL results in a row */
  role_t *roles; /* one per result to come, as sent */
  size_t nroles;
  pqs__stmt_plan_t *plans; /* per statement, with the statement cache */
  int stale;       /* fact: a prepared statement's plan went stale */
  int stale_retry; /* fact: the batch ran again for it once already */
};

/* ---- the batch ---- */

int pqs_batch_new(pqs_batch_t **out) {
  if (out == NULL)
    return PQS_EINVAL;
  *out = pqs__calloc(1, sizeof(pqs_batch_t));
  return *out ? 0 : PQS_ENOMEM;
}

int pqs_batch_add(pqs_batch_t *b, const char *sql, int nparams,
                  const pqs_param_t *params) {
  if (b == NULL || sql == NULL)
    return PQS_EINVAL;
  if (b->n == b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 16;
    stmt_t *grown = pqs__realloc(b->stmts, cap * sizeof(*grown));
    if (grown == NULL)
      return PQS_ENOMEM;
    b->stmts = grown;
    b->cap = cap;
  }
  stmt_t st = {pqs__strdup(sql), NULL};
  int rc = st.sql ? pqs__params_typed(nparams, params, &st.params) : PQS_ENOMEM;
  if (rc != 0) {
    pqs__free(st.sql);
    return rc;
  }
  b->stmts[b->n++] = st;
  return 0;
}

size_t pqs_batch_len(const pqs_batch_t *b) { return b ? b->n : 0; }

void pqs_batch_free(pqs_batch_t *b) {
  if (b == NULL)
    return;
  for (size_t i = 0; i < b->n; i++) {
    pqs__free(b->stmts[i].sql);
    pqs__free(b->stmts[i].params);
  }
  pqs__free(b->stmts);
  pqs__free(b);
}

/* ---- sending ---- */

static int send_one(PGconn *conn, const char *sql, const pqs__params_t *p) {
  if (p == NULL)
    return PQsendQueryParams(conn, sql, 0, NULL, NULL, NULL, NULL, 0);
  return PQsendQueryParams(conn, sql, p->n, p->types, p->values, p->lengths,
                           p->formats, 0);
}

static void role(pqs__pipeline_t *pl, role_kind_t kind, size_t stmt) {
  pl->roles[pl->nroles++] = (role_t){kind, stmt};
}

/* Statement i, as the cache plans it: closing its victim, preparing it,
 * then running it by name; or unnamed. A statement prepared here counts
 * as prepared from now, so that the same one later in the batch runs by
 * the same name; a Parse that fails or never runs is told to the cache
 * by the tally (unprepared). */
static int send_stmt(pqs__pipeline_t *pl, PGconn *conn, size_t i) {
  const stmt_t *st = &pl->b->stmts[i];
  pqs__stmts_t *cache = pl->ctx->stmts;
  if (cache == NULL || st->params == NULL || st->params->n == 0) {
    role(pl, R_STMT, i);
    return send_one(conn, st->sql, st->params);
  }
  pqs__stmt_plan_t *p = &pl->plans[i];
  pqs__stmts_plan(cache, st->sql, st->params->n, st->params->types, p);
  if (p->victim[0] != '\0') {
    char sql[64];
    snprintf(sql, sizeof(sql), "DEALLOCATE %s", p->victim);
    role(pl, R_CLOSE, i);
    if (!send_one(conn, sql, NULL))
      return 0;
  }
  if (p->action == PQS__STMT_UNNAMED) {
    role(pl, R_STMT, i);
    return send_one(conn, st->sql, st->params);
  }
  if (p->action == PQS__STMT_PREPARE) {
    role(pl, R_PREPARE, i);
    if (!PQsendPrepare(conn, p->name, st->sql, st->params->n,
                       st->params->types))
      return 0;
    pqs__stmts_prepared(cache, p->name);
  }
  role(pl, R_STMT, i);
  return PQsendQueryPrepared(conn, p->name, st->params->n, st->params->values,
                             st->params->lengths, st->params->formats, 0);
}

/* Sends the batch and its sync: 1, 0 if nothing went out, -1 if only part
 * of it did (the connection must then be given up, never synced). */
static int pipeline_send(pqs__op_t *op) {
  pqs__pipeline_t *pl = op->k.batch;
  PGconn *conn = op->ctx->conn;
  pl->nroles = 0;
  if (!PQenterPipelineMode(conn))
    return 0;
  int ok = 1;
  if (pl->begin[0] != '\0') {
    role(pl, R_BEGIN, 0);
    ok = send_one(conn, pl->begin, NULL);
  }
  for (size_t i = 0; ok && i < pl->b->n; i++)
    ok = send_stmt(pl, conn, i);
  if (ok && pl->begin[0] != '\0') {
    role(pl, R_COMMIT, 0);
    ok = send_one(conn, "COMMIT", NULL);
  }
  /* Half a batch must never meet a sync, which would commit it. */
  return ok && PQpipelineSync(conn) ? 1 : -1;
}

/* ---- the tally ---- */

/* The role of the result that came; NULL past the roles (the sync). */
static const role_t *role_of(pqs__pipeline_t *pl) {
  return pl->seen < pl->nroles ? &pl->roles[pl->seen++] : NULL;
}

/* A statement's result: its tag kept (0 or PQS_ENOMEM). */
static int done_one(pqs__op_t *op, const PGresult *res) {
  pqs__pipeline_t *pl = op->k.batch;
  const role_t *r = role_of(pl);
  if (r == NULL || r->kind != R_STMT)
    return 0; /* BEGIN, COMMIT, a Parse, a DEALLOCATE */
  const char *tag = PQcmdStatus((PGresult *)res);
  pqs__ctx_tag_seen(op->ctx, tag);
  pl->tag_at[r->stmt] = pl->tags.len;
  pl->affected[r->stmt] = strtoull(PQcmdTuples((PGresult *)res), NULL, 10);
  return pqs__buf_append(&pl->tags, tag ? tag : "", strlen(tag ? tag : "") + 1);
}

/* What the cache believed of a statement that did not run as planned. */
static void undo_plan(pqs__op_t *op, const role_t *r, const PGresult *res) {
  pqs__pipeline_t *pl = op->k.batch;
  if (r != NULL && r->kind == R_CLOSE) {
    const char *victim = pl->plans[r->stmt].victim;
    if (res != NULL && pqs__no_such_stmt(res))
      pl->stale = 1; /* the server had no such statement: once more */
    else
      pqs__stmts_orphan(op->ctx->stmts, victim); /* closed later */
  }
  if (r == NULL || (r->kind != R_PREPARE && r->kind != R_STMT) ||
      pl->plans == NULL)
    return;
  const pqs__stmt_plan_t *p = &pl->plans[r->stmt];
  if (p->action == PQS__STMT_UNNAMED)
    return;
  if (r->kind == R_PREPARE)
    pqs__stmts_unprepared(op->ctx->stmts, p->name);
  else if (res != NULL && pqs__stale_plan(res)) {
    pqs__stmts_stale(op->ctx->stmts, p->name);
    pl->stale = 1;
  }
}

static void failed_one(pqs__op_t *op, const PGresult *res) { /* an error */
  pqs__pipeline_t *pl = op->k.batch;
  const role_t *r = role_of(pl);
  undo_plan(op, r, res);
  if (pl->failed < 0 && r != NULL &&
      (r->kind == R_PREPARE || r->kind == R_STMT))
    pl->failed = (long)r->stmt;
  else if (pl->failed < 0 && r != NULL && r->kind == R_COMMIT)
    pl->failed = (long)pl->b->n;
}

/* PGRES_PIPELINE_ABORTED */
static void skipped_one(pqs__op_t *op) {
  undo_plan(op, role_of(op->k.batch), NULL);
}

/* ---- retries ---- */

/* 1 and the pause before it if the batch is to run again (a conflict and
 * retries left; the tally is reset), else 0. */
static int retry(pqs__op_t *op, unsigned *delay_ms) {
  pqs__pipeline_t *pl = op->k.batch;
  if (op->status != 0)
    return 0;
  if (pl->stale && !pl->stale_retry) {
    /* rolled back; planned again, the statement is prepared anew */
    pl->stale_retry = 1;
    *delay_ms = 0;
  } else if (!pqs__is_conflict(&op->err) || pl->attempts > pl->opts.retries) {
    return 0;
  } else {
    *delay_ms = pqs__backoff_ms(pl->opts.backoff_ms, pl->attempts, &pl->rng);
  }
  pl->stale = 0;
  pl->attempts++;
  pl->seen = 0;
  pl->failed = -1;
  pl->tags.len = 0;
  return 1;
}

/* ---- the kind ---- */

static int batch_send(pqs__op_t *op) {
  if (op->step == ROLLBACK)
    return PQsendQuery(op->ctx->conn, "ROLLBACK");
  return pipeline_send(op);
}

/* A result of the pipeline: one per statement (the BEGIN and COMMIT
 * around them included), then the sync's. */
static int batch_take(pqs__op_t *op, PGresult *res) {
  if (op->step == ROLLBACK)
    return pqs__op_take_common(op, res, 0);
  op->k.batch->nulls = 0;
  switch (PQresultStatus(res)) {
  case PGRES_PIPELINE_SYNC:
    op->final = 1;
    return PQS__CONTINUE;
  case PGRES_PIPELINE_ABORTED:
    skipped_one(op);
    return PQS__CONTINUE;
  case PGRES_COMMAND_OK:
  case PGRES_TUPLES_OK:
    op->rows += PQntuples(res);
    pqs__op_keep(op, done_one(op, res));
    return PQS__CONTINUE;
  default:
    pqs__op_result_failed(op, res);
    failed_one(op, res);
    return PQS__CONTINUE;
  }
}

/* In pipeline mode a NULL result ends one statement's results, not the
 * batch's: that is the sync. Two in a row, or a dead connection, and
 * libpq has nothing more to give. */
static int batch_goes_on(pqs__op_t *op) {
  return op->step == PIPELINE && !op->final && !op->lost &&
         PQstatus(op->ctx->conn) != CONNECTION_BAD && ++op->k.batch->nulls < 2;
}

/* After the results: a failed explicit transaction is rolled back first
 * (a sync leaves it open), then a conflict may run it again. */
static pqs__next_t batch_next(pqs__op_t *op) {
  pqs_ctx_t *ctx = op->ctx;
  /* Idle now: the sync came. Should libpq still refuse, the session's
   * state is not known: the context is given up as broken. */
  if (op->step == PIPELINE && PQexitPipelineMode(ctx->conn) == 0 &&
      !op->lost) {
    pqs__op_conn_error(op);
    pqs__op_note(op, PQS_EBROKEN);
    op->lost = 1;
  }
  if (!pqs__op_step_ended(op))
    return PQS__NEXT_END;
  if (op->step == PIPELINE && PQtransactionStatus(ctx->conn) != PQTRANS_IDLE) {
    op->step = ROLLBACK;
    return PQS__NEXT_SEND;
  }
  unsigned delay;
  if (!retry(op, &delay))
    return PQS__NEXT_END;
  pqs__op_wait(op, delay);
  return PQS__NEXT_HELD;
}

/* libpq 15, failing to allocate a result while it parses one, can stay
 * busy for good with nothing more to read, memory fine again (the OOM
 * harness's batch scenario): the connection's "out of memory" (libpq's
 * own words, untranslated in the C locale) is the sign. */
static pqs__busy_t batch_busy(pqs__op_t *op) {
  if (op->step != PIPELINE)
    return PQS__BUSY_WAIT;
  return strstr(PQerrorMessage(op->ctx->conn), "out of memory")
             ? PQS__BUSY_STUCK
             : PQS__BUSY_PROBE;
}

static void batch_again(pqs__op_t *op) {
  op->k.batch->nulls = 0;
  op->step = PIPELINE;
}

const pqs__kind_t pqs__kind_batch = {
    .name = "batch",
    .send = batch_send,
    .take = batch_take,
    .goes_on = batch_goes_on,
    .next = batch_next,
    .busy = batch_busy,
    .again = batch_again,
};

/* ---- the run: an op whose consumer is the tally ---- */

static int run_row(void *self, const pqs_row_t *row) {
  (void)self;
  (void)row;
  return PQS__CONTINUE; /* rows a statement returns are dropped */
}

static void run_end(void *self, const pqs_done_t *done) {
  pqs__pipeline_t *pl = self;
  /* A BEGIN of ours whose ROLLBACK could not be sent leaves a transaction
   * open: the session is closed rather than handed on in it. */
  pqs__ctx_break_in_transaction(pl->ctx);
  size_t n = pl->b->n;
  const char **tags = NULL;
  int status = done->status;
  if (status == 0 && (tags = pqs__malloc(n * sizeof(char *))) == NULL)
    status = PQS_ENOMEM;
  for (size_t i = 0; tags != NULL && i < n; i++)
    tags[i] = pl->tags.data + pl->tag_at[i];
  pqs_batch_done_t bd = {
      .status = status,
      .n = n,
      .tags = status == 0 ? tags : NULL,
      .affected = status == 0 ? pl->affected : NULL,
      .failed = status == PQS_ESQL ? pl->failed : -1,
      .error = done->error,
      .attempts = pl->attempts,
  };
  pl->cb(pl->ctx, &bd, pl->data);
  pqs__free(tags);
  pqs__buf_free(&pl->tags);
  pqs__free(pl->tag_at);
  pqs__free(pl->affected);
  pqs__free(pl->roles);
  pqs__free(pl->plans);
  pqs__free(pl);
}

static const pqs__consumer_vt_t run_consumer = {
    .columns = NULL,
    .row = run_row,
    .end = run_end,
};

int pqs_batch_run(pqs_ctx_t *ctx, const pqs_batch_t *b,
                  const pqs_batch_opts_t *opts, pqs_batch_cb cb, void *data) {
  if (ctx == NULL || b == NULL || b->n == 0 || cb == NULL ||
      (opts && (unsigned)opts->isolation > PQS_ISOLATION_SERIALIZABLE))
    return PQS_EINVAL;
  int rc = pqs__ctx_check_ready(ctx);
  if (rc != 0)
    return rc;
  pqs__pipeline_t *pl = pqs__calloc(1, sizeof(*pl));
  if (pl == NULL)
    return PQS_ENOMEM;
  pl->tag_at = pqs__calloc(b->n, sizeof(size_t));
  pl->affected = pqs__calloc(b->n, sizeof(uint64_t));
  /* at most a DEALLOCATE, a Parse and the statement each, BEGIN, COMMIT */
  pl->roles = pqs__calloc(3 * b->n + 2, sizeof(role_t));
  if (ctx->stmts != NULL)
    pl->plans = pqs__calloc(b->n, sizeof(pqs__stmt_plan_t));
  pqs__op_t *op = NULL;
  pqs_query_opts_t qo = {.timeout_ms = opts ? opts->timeout_ms : 0};
  if (pl->tag_at == NULL || pl->affected == NULL || pl->roles == NULL ||
      (ctx->stmts != NULL && pl->plans == NULL) ||
      (rc = pqs__op_begin(ctx, &pqs__kind_batch, "", 0, NULL, &qo, 0, &op)) !=
          0) {
    pqs__free(pl->tag_at);
    pqs__free(pl->affected);
    pqs__free(pl->roles);
    pqs__free(pl->plans);
    pqs__free(pl);
    return rc ? rc : PQS_ENOMEM;
  }
  pl->ctx = ctx;
  pl->b = b;
  if (opts != NULL)
    pl->opts = *opts;
  pl->cb = cb;
  pl->data = data;
  pl->failed = -1;
  pl->attempts = 1;
  pl->rng = pqs__jitter_seed(pl);
  pqs__begin_sql(pl->opts.isolation, pl->opts.read_only, pl->begin);
  op->k.batch = pl;
  pqs__op_bind(op, &run_consumer, pl);
  pqs__op_source.start(op);
  return 0;
}
