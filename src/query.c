/* One operation on a context: sending it, pumping its results out of libpq
 * in single-row mode, pausing, stopping early, and finishing exactly once.
 * This is the row source behind every stream and command; its states are
 * drawn in ctx_int.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "ctx_int.h"
#include "error_int.h"

static void op_drain(pqs_ctx_t *ctx);
static void give_up(pqs_ctx_t *ctx);
static void flush_sent(pqs__op_t *op);

#define PQS__DEFAULT_GRACE_MS 5000
/* How often a stopping op asks again (a cancel that reaches the backend
 * before it has begun the query is ignored) and looks at its deadline. */
#define PQS__STOP_TICK_MS 200

/* ---- begin: READY -> BUSY ---- */

int pqs__ctx_check_ready(const pqs_ctx_t *ctx) {
  /* The thread is checked before any mutable field is read. */
  if (!pqs__ctx_on_thread(ctx))
    return PQS_ETHREAD;
  switch (ctx->state) {
  case PQS__CTX_READY:
    return 0;
  case PQS__CTX_CONNECTING:
  case PQS__CTX_BUSY:
    return PQS_EBUSY;
  case PQS__CTX_BROKEN:
    return PQS_EBROKEN;
  default: /* resetting, releasing, closing */
    return PQS_ESTATE;
  }
}

/* The op, the SQL and the parameters in one allocation. */
static pqs__op_t *op_new(const char *sql, int nparams,
                         const char *const *params) {
  size_t size = sizeof(pqs__op_t) + nparams * sizeof(char *);
  size_t sql_len = strlen(sql) + 1;
  size += sql_len;
  for (int i = 0; i < nparams; i++)
    size += params[i] ? strlen(params[i]) + 1 : 0;
  pqs__op_t *op = pqs__calloc(1, size);
  if (op == NULL)
    return NULL;
  const char **copies = (const char **)(op + 1);
  char *p = (char *)(copies + nparams);
  for (int i = 0; i < nparams; i++) {
    copies[i] = NULL;
    if (params[i] != NULL) {
      size_t n = strlen(params[i]) + 1;
      copies[i] = memcpy(p, params[i], n);
      p += n;
    }
  }
  op->sql = memcpy(p, sql, sql_len);
  op->nparams = nparams;
  op->params = copies;
  return op;
}

/* A reset (RESET_*) keeps its state; a user's operation makes it BUSY. */
int pqs__op_begin(pqs_ctx_t *ctx, const char *sql, int nparams,
                  const char *const *params, const pqs_query_opts_t *opts,
                  int single_row, pqs__op_t **out) {
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
  op->single_row = single_row;
  op->binary = single_row && format == PQS_RESULT_BINARY;
  op->timeout_ms =
      opts && opts->timeout_ms ? opts->timeout_ms : ctx->opts.query_timeout_ms;
  if (opts != NULL) {
    op->on_statement = opts->on_statement;
    op->statement_data = opts->statement_data;
  }
  op->state = PQS__OP_NEW;
  /* A command without parameters goes by the simple protocol, which
   * allows several statements; anything with rows to stream, or with
   * parameters, by the extended one (one statement). */
  op->send = !single_row && nparams == 0 ? PQS__SEND_SIMPLE : PQS__SEND_PARAMS;
  /* COPY: prepared and described first, for the columns. */
  op->copy =
      single_row && source == PQS_SOURCE_COPY && pqs__copy_qualifies(sql);
  if (op->copy)
    op->send = PQS__SEND_PREPARE;
  ctx->op = op;
  if (ctx->state == PQS__CTX_READY)
    ctx->state = PQS__CTX_BUSY;
  *out = op;
  return 0;
}

void pqs__op_set_typed(pqs__op_t *op, pqs__params_t *typed) {
  op->typed = typed;
  op->copy = 0; /* the COPY source binds text */
  op->send = PQS__SEND_PARAMS;
}

void pqs__op_bind(pqs__op_t *op, const pqs__consumer_vt_t *vt, void *consumer) {
  op->consumer_vt = vt;
  op->consumer = consumer;
}

static void op_free(pqs__op_t *op) {
  pqs__copy_free(op);
  pqs__arena_free(&op->arena);
  pqs__free(op->typed);
  pqs__free(op->schema);
  pqs__free(op->tag);
  pqs__free(op->err_strings);
  pqs__free(op);
}

/* ---- what the op watches on the socket ---- */

static void op_watch(pqs_ctx_t *ctx) {
  pqs__op_t *op = ctx->op;
  int events = 0;
  if (op->lost || op->state == PQS__OP_ABANDONED)
    events = 0;
  else if (op->flushing)
    events = UV_READABLE | UV_WRITABLE; /* libpq wants both while sending */
  else if (op->state == PQS__OP_RUNNING || op->state == PQS__OP_STOPPING)
    events = UV_READABLE;
  pqs__io_watch(ctx, events);
}

/* ---- recording how it went ---- */

/* The first reason to end other than the server's own answer wins. */
static void note_status(pqs__op_t *op, int status) {
  if (op->status == 0)
    op->status = status;
}

/* The first error explains the failure; running out of memory while
 * keeping it is a failure of its own, never a success. */
static void keep_error(pqs__op_t *op, int rc) {
  if (rc != 0)
    note_status(op, rc);
}

static void record_conn_error(pqs__op_t *op) {
  if (op->err.message == NULL)
    keep_error(op,
               pqs__error_from_conn(op->ctx->conn, &op->err, &op->err_strings));
}

static void record_result_error(pqs__op_t *op, const PGresult *res) {
  if (op->err.message == NULL)
    keep_error(op, pqs__error_from_result(res, op->ctx->conn, &op->err,
                                          &op->err_strings));
}

static void record_command(pqs__op_t *op, PGresult *res) {
  const char *tag = PQcmdStatus(res);
  pqs__free(op->tag);
  op->tag = NULL;
  if (tag != NULL && (op->tag = pqs__strdup(tag)) == NULL)
    note_status(op, PQS_ENOMEM);
  op->affected = strtoull(PQcmdTuples(res), NULL, 10);
  if (op->on_statement != NULL && op->tag != NULL)
    op->on_statement(op->ctx, op->tag, op->affected, op->statement_data);
}

static void mark_lost(pqs__op_t *op) {
  if (op->lost)
    return;
  op->lost = 1;
  record_conn_error(op);
  /* libpq has closed its socket; ours is a dup that would report EOF
   * forever. Closing it releases the connection entirely. */
  pqs__io_detach(op->ctx);
}

/* The poll saw the socket fail (a reset, say) before libpq did: let libpq
 * read the failure, so that the error is in its words; the errno's if it
 * has none. */
static void mark_lost_by_poll(pqs__op_t *op, int status) {
  PGconn *conn = op->ctx->conn;
  if (!op->lost)
    PQconsumeInput(conn);
  const char *said = PQerrorMessage(conn);
  if (op->err.message == NULL && (said == NULL || *said == '\0')) {
    char text[160];
    snprintf(text, sizeof(text), "connection to the server lost: %s",
             pqs_strerror(status));
    pqs_error_t e = {.message = text};
    keep_error(op, pqs__error_copy(&op->err, &op->err_strings, &e, NULL));
  }
  mark_lost(op);
}

/* ---- pause, resume, stop: the controls of the source ---- */

static void op_pause(void *src) {
  pqs__op_t *op = src;
  if (op->state != PQS__OP_RUNNING)
    return;
  op->state = PQS__OP_PAUSED;
  op_watch(op->ctx);
}

static void op_resume(void *src) {
  pqs__op_t *op = src;
  if (op->state != PQS__OP_PAUSED)
    return;
  op->state = PQS__OP_RUNNING;
  /* The socket will not signal data libpq has already read: drain that
   * first, from the loop (never from inside the caller). */
  pqs__ctx_defer(op->ctx);
}

/* A stopping op, every tick until it ends: past its deadline it gives the
 * connection up; before, it cancels again if no cancel is on its way. The
 * server ignores a cancel that arrives before the backend has begun the
 * query, and a cancel can never hit a later query: none starts until the
 * last cancel is back (pqs__op_maybe_finish) or the connection is gone. */
static void on_stop_tick(uv_timer_t *timer) {
  pqs_ctx_t *ctx = timer->data;
  pqs__op_t *op = ctx->op;
  if (op == NULL ||
      (op->state != PQS__OP_STOPPING && op->state != PQS__OP_DRAINED)) {
    uv_timer_stop(timer);
    return;
  }
  if (uv_now(ctx->loop) >= op->deadline)
    give_up(ctx);
  else if (op->state == PQS__OP_STOPPING && !op->lost &&
           op->send != PQS__SEND_UNLISTEN) /* a cancel would stop it */
    pqs__cancel_request(ctx);
}

static void stop_deadline(pqs__op_t *op) {
  pqs_ctx_t *ctx = op->ctx;
  unsigned grace = ctx->opts.cancel_grace_ms ? ctx->opts.cancel_grace_ms
                                             : PQS__DEFAULT_GRACE_MS;
  op->deadline = uv_now(ctx->loop) + grace;
  /* The query's timeout is over: the timer now ticks the stop. */
  uv_timer_start(&ctx->timer, on_stop_tick, PQS__STOP_TICK_MS,
                 PQS__STOP_TICK_MS);
}

static void flush_sent(pqs__op_t *op);

/* A listening op stops: nothing runs on the server to cancel; UNLISTEN *
 * leaves the session as it was, and its results end the op. */
static void stop_listening(pqs__op_t *op) {
  op->state = PQS__OP_STOPPING;
  op->send = PQS__SEND_UNLISTEN;
  stop_deadline(op);
  if (op->lost)
    pqs__ctx_defer(op->ctx);
  else if (!PQsendQuery(op->ctx->conn, "UNLISTEN *"))
    pqs__ctx_defer(op->ctx); /* libpq says why, from the loop */
  else
    flush_sent(op);
}

/* RUNNING | PAUSED -> STOPPING: cancel, drop what still arrives, and end
 * within the grace period whatever the network does. */
static void op_stop_with(pqs__op_t *op, int reason) {
  pqs_ctx_t *ctx = op->ctx;
  if (op->state == PQS__OP_WAITING) { /* nothing on the server: end now */
    note_status(op, reason);
    op->state = PQS__OP_DRAINED;
    pqs__ctx_defer(ctx);
    return;
  }
  if (op->state != PQS__OP_RUNNING && op->state != PQS__OP_PAUSED)
    return;
  note_status(op, reason);
  if (op->send == PQS__SEND_LISTENING) {
    stop_listening(op);
    return;
  }
  op->state = PQS__OP_STOPPING;
  stop_deadline(op);
  if (!op->lost)
    pqs__cancel_request(ctx);
  op_watch(ctx);
  pqs__ctx_defer(ctx); /* results libpq already holds end it sooner */
}

static void op_stop(void *src, int reason) { op_stop_with(src, reason); }

static void on_query_timeout(uv_timer_t *timer) {
  pqs_ctx_t *ctx = timer->data;
  if (ctx->op != NULL)
    op_stop_with(ctx->op, PQS_ETIMEDOUT);
}

/* ---- start: NEW -> RUNNING ---- */

/* A query libpq would not take: it ends from the loop, where PQgetResult
 * says it is over. */
static void send_failed(pqs__op_t *op) {
  if (PQstatus(op->ctx->conn) == CONNECTION_BAD)
    mark_lost(op);
  record_conn_error(op);
  note_status(op, PQS_EINVAL);
  pqs__ctx_defer(op->ctx);
}

void pqs__op_describe(pqs__op_t *op) { op->send = PQS__SEND_PREPARE; }

static int send_step(pqs__op_t *op);

/* The COPY of the op's statement; 0 if it could not be sent. A value
 * libpq will not escape for the connection's encoding is the server's to
 * judge, as in single-row mode: the statement runs so instead. */
static int send_copy(pqs__op_t *op) {
  pqs__buf_t text = {0};
  int rc = pqs__copy_command(op, &text);
  int sent = rc == 0 && PQsendQuery(op->ctx->conn, text.data);
  pqs__buf_free(&text);
  if (rc == PQS_EINVAL) {
    pqs__copy_fall_back(op);
    return send_step(op);
  }
  if (rc == PQS_ENOMEM && op->err.message == NULL)
    op->err.message = "out of memory";
  keep_error(op, rc);
  return sent;
}

/* Sends what the op's step says; 0 if libpq would not take it. */
static int send_step(pqs__op_t *op) {
  PGconn *conn = op->ctx->conn;
  switch (op->send) {
  case PQS__SEND_SIMPLE:
    return PQsendQuery(conn, op->sql);
  case PQS__SEND_PARAMS:
    if (op->typed != NULL)
      return PQsendQueryParams(conn, op->sql, op->typed->n, op->typed->types,
                               op->typed->values, op->typed->lengths,
                               op->typed->formats, op->binary);
    return PQsendQueryParams(conn, op->sql, op->nparams, NULL, op->params, NULL,
                             NULL, op->binary);
  case PQS__SEND_PIPELINE:
    return pqs__pipeline_send(op);
  case PQS__SEND_ROLLBACK:
    return PQsendQuery(conn, "ROLLBACK");
  case PQS__SEND_LISTEN:
    return PQsendQuery(conn, op->sql);
  case PQS__SEND_UNLISTEN:
    return PQsendQuery(conn, "UNLISTEN *");
  case PQS__SEND_PREPARE:
    return PQsendPrepare(conn, "", op->sql, op->nparams, NULL);
  case PQS__SEND_DESCRIBE:
    return PQsendDescribePrepared(conn, "");
  default:
    return send_copy(op);
  }
}

/* Half a batch went out and must never be synced (the sync would commit
 * it): the connection is given up, from the loop, by the stop's own
 * deadline (STOPPING with no grace left), and never cancelled. */
static void on_stop_tick(uv_timer_t *timer);

static void give_up_soon(pqs__op_t *op) {
  pqs_ctx_t *ctx = op->ctx;
  op->state = PQS__OP_STOPPING;
  op->deadline = uv_now(ctx->loop);
  pqs__io_watch(ctx, 0);
  uv_timer_start(&ctx->timer, on_stop_tick, 0, PQS__STOP_TICK_MS);
}

/* Sends a step and makes sure it is on its way; on failure it ends from
 * the loop. Rows to stream come one result each (single-row mode). */
static void send_now(pqs__op_t *op) {
  int sent = send_step(op);
  if (sent < 0) { /* half a batch went out: see pipeline_aborted */
    record_conn_error(op);
    const char *said = PQerrorMessage(op->ctx->conn);
    note_status(op, said && strstr(said, "out of memory") ? PQS_ENOMEM
                                                          : PQS_EINVAL);
    give_up_soon(op);
    return;
  }
  if (!sent) {
    send_failed(op);
    return;
  }
  int rows = op->send == PQS__SEND_PARAMS || op->send == PQS__SEND_SIMPLE;
  if (rows && op->single_row && !PQsetSingleRowMode(op->ctx->conn)) {
    /* libpq refused; the query is sent and must still be read to its
     * end, and cancelled rather than buffered whole. */
    op->err.message = "libpq refused single-row mode";
    op_stop_with(op, PQS_ESTATE);
  }
  flush_sent(op);
}

/* After a send: flush what fits, watch for the rest. */
static void flush_sent(pqs__op_t *op) {
  pqs_ctx_t *ctx = op->ctx;
  int rc = PQflush(ctx->conn);
  if (rc < 0)
    mark_lost(op);
  op->flushing = rc == 1;
  op_watch(ctx);
  /* Nothing more until the socket speaks; a lost connection is reported
   * by the drain on the next turn. */
  if (op->lost)
    pqs__ctx_defer(ctx);
}

static void op_start(void *src) {
  pqs__op_t *op = src;
  pqs_ctx_t *ctx = op->ctx;
  op->state = PQS__OP_RUNNING;
  if (op->timeout_ms)
    uv_timer_start(&ctx->timer, on_query_timeout, op->timeout_ms, 0);
  send_now(op);
}

static void op_lines(void *src, int format, int parse) {
  pqs__copy_offer_lines(src, format, parse);
}

/* ---- discard: NEW -> (context READY), no completion ---- */

static void op_discard(void *src) {
  pqs__op_t *op = src;
  pqs_ctx_t *ctx = op->ctx;
  if (ctx->op == op) {
    ctx->op = NULL;
    if (ctx->state == PQS__CTX_BUSY)
      ctx->state = PQS__CTX_READY;
  }
  op_free(op);
}

const pqs__source_vt_t pqs__op_source = {
    .start = op_start,
    .pause = op_pause,
    .resume = op_resume,
    .stop = op_stop,
    .discard = op_discard,
    .lines = op_lines,
};

/* ---- finish: the one completion ---- */

/* libpq ended the results without the result that ends a query: it gave
 * up (out of memory) or the connection went. Never a success. */
static void check_final(pqs__op_t *op, int broken) {
  if (op->final || op->status != 0 || op->state == PQS__OP_ABANDONED)
    return;
  record_conn_error(op);
  note_status(op, broken ? PQS_ECONNLOST : PQS_ENOMEM);
}

static int final_status(const pqs__op_t *op, int broken) {
  if (broken)
    return PQS_ECONNLOST;
  if (op->status == PQS__DONE) /* the consumer had all it wanted */
    return 0;
  if (op->status != 0)
    return op->status;
  return op->err.message != NULL ? PQS_ESQL : 0;
}

/* The context after its operation: BUSY -> READY | BROKEN. A reset keeps
 * its RESET_* state (reset.c decides), a closing context its own. */
static void ctx_after_op(pqs_ctx_t *ctx, int broken) {
  if (pqs__ctx_closing(ctx))
    return;
  uv_timer_stop(&ctx->timer);
  if (ctx->state == PQS__CTX_BUSY)
    ctx->state = broken ? PQS__CTX_BROKEN : PQS__CTX_READY;
  if (broken)
    pqs__io_detach(ctx);
  else
    pqs__io_watch(ctx, 0);
}

static int op_broken(const pqs_ctx_t *ctx) {
  return ctx->op->lost || PQstatus(ctx->conn) == CONNECTION_BAD;
}

/* How an op that ran to its end ended. */
static int settle(pqs__op_t *op, int broken) {
  if (broken)
    record_conn_error(op);
  check_final(op, broken);
  return final_status(op, broken);
}

/* The one completion, with `status`. */
static void op_finish(pqs_ctx_t *ctx, int status) {
  pqs__op_t *op = ctx->op;
  int broken = op_broken(ctx);
  if (status == PQS_ENOMEM && op->err.message == NULL)
    op->err.message = "out of memory";
  pqs_done_t done = {
      .status = status,
      .rows = op->rows,
      .affected = status == 0 ? op->affected : 0,
      .command_tag = status == 0 ? op->tag : NULL,
      .error = status != 0 && op->err.message ? &op->err : NULL,
  };
  ctx->op = NULL;
  ctx_after_op(ctx, broken);
  /* The context is free before the consumer hears of the end, so that the
   * next operation can start from inside on_done. */
  op->consumer_vt->end(op->consumer, &done);
  op_free(op);
}

/* DRAINED -> finished, once no cancel request is in flight: a late cancel
 * must never hit the next query. */
void pqs__op_maybe_finish(pqs_ctx_t *ctx) {
  pqs__op_t *op = ctx->op;
  if (op != NULL && op->state == PQS__OP_DRAINED &&
      ctx->cancel.state == PQS__CANCEL_IDLE)
    op_finish(ctx, settle(op, op_broken(ctx)));
}

/* STOPPING | DRAINED -> finished, the connection given up: the server did
 * not end the query within the grace period (unreachable, or blocked
 * writing to a peer that does not read), or the cancel never came back.
 * Either may still happen later, and must never meet a next query: the
 * connection is closed and the context broken. The op ends with the
 * reason it stopped (PQS_ETIMEDOUT, PQS_ECANCELED ...), or, if it had in
 * fact ended and only the cancel was late, with how it ended. */
static void give_up(pqs_ctx_t *ctx) {
  pqs__op_t *op = ctx->op;
  int status = op->state == PQS__OP_DRAINED ? settle(op, 0)
               : op->status == PQS__DONE    ? 0
                                            : op->status;
  if (op->err.message == NULL && status != 0)
    op->err.message = "the server did not end the query within the grace "
                      "period after it was cancelled; the connection was "
                      "closed";
  pqs__cancel_let_go(ctx);
  op->lost = 1;
  pqs__io_detach(ctx);
  PQfinish(ctx->conn); /* libpq takes NULL everywhere from now on */
  ctx->conn = NULL;
  op_finish(ctx, status);
}

/* The step after one that ended well, into op->send: PREPARE -> DESCRIBE
 * (the statement's columns), and for COPY, DESCRIBE -> COPY | PARAMS.
 * 1 if there is one. */
static int next_step(pqs__op_t *op);

/* WAITING -> RUNNING: the batch goes again. */
static void retry_now(pqs__op_t *op) {
  pqs__free(op->err_strings);
  op->err_strings = NULL;
  op->err = (pqs_error_t){0};
  op->status = 0;
  op->final = 0;
  op->nulls = 0;
  op->send = PQS__SEND_PIPELINE;
  op->state = PQS__OP_RUNNING;
  send_now(op);
}

/* After a batch's results: a failed explicit transaction is rolled back
 * first (a sync leaves it open), then a conflict may run it again. */
static int next_batch_step(pqs__op_t *op) {
  pqs_ctx_t *ctx = op->ctx;
  if (op->state != PQS__OP_RUNNING || op->lost || !op->final)
    return 0;
  if (op->send == PQS__SEND_PIPELINE &&
      PQtransactionStatus(ctx->conn) != PQTRANS_IDLE) {
    op->send = PQS__SEND_ROLLBACK;
    return 1;
  }
  unsigned delay;
  if (!pqs__pipeline_retry(op, &delay))
    return 0;
  op->state = PQS__OP_WAITING; /* RUNNING -> WAITING */
  op->retry_at = uv_now(ctx->loop) + delay;
  pqs__io_watch(ctx, 0);
  pqs__ctx_defer_ms(ctx, delay);
  return 2;
}

static int next_step(pqs__op_t *op) {
  if (op->send == PQS__SEND_PIPELINE || op->send == PQS__SEND_ROLLBACK)
    return next_batch_step(op);
  /* Without its final result a step did not end well: libpq gave up. */
  if (op->state != PQS__OP_RUNNING || op->status != 0 ||
      op->err.message != NULL || op->lost || !op->final)
    return 0;
  if (op->send == PQS__SEND_PREPARE)
    op->send = PQS__SEND_DESCRIBE;
  else if (op->send == PQS__SEND_DESCRIBE && op->copy)
    op->send = pqs__copy_next(op);
  else
    return 0;
  return 1;
}

static int deliver_columns(pqs__op_t *op, const PGresult *res);
static int act_on(pqs__op_t *op, int rc);

/* The LISTENs are done: notifications flow, as rows, from now on. */
static void start_listening(pqs__op_t *op) {
  op->send = PQS__SEND_LISTENING; /* LISTEN -> LISTENING */
  int rc = pqs__listen_schema(op);
  rc = rc ? rc : deliver_columns(op, NULL);
  act_on(op, rc);
  op_watch(op->ctx);
  pqs__ctx_defer(op->ctx); /* some may have come with the results */
}

/* RUNNING | STOPPING -> DRAINED: libpq has no more results. */
static void op_drained(pqs_ctx_t *ctx) {
  pqs__op_t *op = ctx->op;
  if (op->send == PQS__SEND_LISTEN && op->state == PQS__OP_RUNNING &&
      op->status == 0 && op->err.message == NULL && !op->lost && op->final) {
    start_listening(op);
    return;
  }
  int next = next_step(op);
  if (next == 2) /* WAITING: sent again later */
    return;
  if (next) {
    op->final = 0;
    send_now(op);
    return;
  }
  op->state = PQS__OP_DRAINED;
  pqs__op_maybe_finish(ctx);
}

/* ---- abandon: the context closes under its op ---- */

void pqs__op_abandon(pqs_ctx_t *ctx) {
  pqs__op_t *op = ctx->op;
  int on_server = op->state == PQS__OP_RUNNING || op->state == PQS__OP_PAUSED ||
                  op->state == PQS__OP_STOPPING;
  if (on_server && !op->lost)
    pqs__cancel_request(ctx); /* or a sleeping query runs on */
  op->state = PQS__OP_ABANDONED;
}

void pqs__op_end_abandoned(pqs_ctx_t *ctx) { op_finish(ctx, PQS_ECANCELED); }

/* ---- the pump ---- */

/* The columns to the consumer: those of `res`, or the COPY's, described
 * before. */
static int deliver_columns(pqs__op_t *op, const PGresult *res) {
  if (op->schema == NULL && (op->schema = pqs__schema_from_result(res)) == NULL)
    return PQS_ENOMEM;
  if (op->consumer_vt->columns == NULL)
    return PQS__CONTINUE;
  pqs_row_t columns = {.schema = op->schema};
  return op->consumer_vt->columns(op->consumer, &columns);
}

/* Hot path: one call per row. */
static int deliver_row(pqs__op_t *op, const PGresult *res) {
  int first = PQS__CONTINUE;
  if (op->schema == NULL) {
    first = deliver_columns(op, res);
    if (first < 0 || first == PQS__STOP || first == PQS__DONE)
      return first;
    /* Closed from inside on_columns: not one row after that. */
    if (op->state == PQS__OP_ABANDONED || op->state == PQS__OP_STOPPING)
      return first;
  }
  pqs__arena_reset(&op->arena); /* the previous row's texts */
  pqs_row_t row = {.schema = op->schema, .res = res, .arena = &op->arena};
  op->rows++;
  int rc = op->consumer_vt->row(op->consumer, &row);
  return rc == PQS__CONTINUE ? first : rc;
}

/* Hot path, the COPY source: one call per line. */
static int deliver_line(pqs__op_t *op, char *line, int n) {
  pqs_row_t row;
  pqs__arena_reset(&op->arena);
  int rc = pqs__copy_row(op, line, (size_t)n, &row);
  if (rc != 0)
    return rc == PQS__WAIT ? PQS__CONTINUE : rc; /* the trailer: no row */
  row.arena = &op->arena;
  op->rows++;
  rc = op->consumer_vt->row(op->consumer, &row);
  if (op->cp.bad_line && rc >= 0 && rc != PQS__STOP) /* split late, badly */
    return pqs__copy_row_done(op);
  return rc;
}

/* Hot path of a listen stream: the next notification libpq holds, as an
 * answer code (PQS__WAIT: none yet). A lost connection ends it: the
 * results (none) then end the op with PQS_ECONNLOST. */
static int listen_pump(pqs__op_t *op) {
  if (op->lost || PQstatus(op->ctx->conn) == CONNECTION_BAD) {
    op->send = PQS__SEND_LISTEN; /* LISTENING -> LISTEN: its results end it */
    return PQS__CONTINUE;
  }
  PGnotify *n = PQnotifies(op->ctx->conn);
  if (n == NULL)
    return PQS__WAIT;
  pqs_row_t row;
  pqs__listen_row(op, n, &row);
  op->rows++;
  int rc = op->consumer_vt->row(op->consumer, &row);
  PQfreemem(n);
  return rc;
}

/* PGRES_COPY_OUT of the op's own COPY: the lines follow. */
static int copy_started(pqs__op_t *op, const PGresult *res) {
  op->send = PQS__SEND_COPY_DATA;            /* COPY -> COPY_DATA */
  if (PQnfields(res) != op->schema->ncols) { /* changed since described */
    op->err.message = "the COPY's columns differ from the described ones";
    return PQS_EINVAL;
  }
  return op->state == PQS__OP_STOPPING ? PQS__CONTINUE
                                       : deliver_columns(op, NULL);
}

/* Hot path: the next line libpq holds, as an answer code. PQS__WAIT:
 * libpq needs input. The data over, the step is COPY again and its result
 * follows.
 * A COPY that fails otherwise cannot be left: libpq, unless it saw the
 * connection die itself, would hand out PGRES_COPY_OUT again and again.
 * So the connection is given up, and the op ends here: PQS_ECONNLOST, or
 * PQS_ENOMEM if libpq failed for want of memory with the connection up. */
static int copy_pump(pqs__op_t *op) {
  char *line;
  int n = op->lost ? -2 : PQgetCopyData(op->ctx->conn, &line, 1);
  if (n > 0) {
    int rc = op->state == PQS__OP_STOPPING ? PQS__CONTINUE
                                           : deliver_line(op, line, n);
    PQfreemem(line);
    return rc;
  }
  if (n == 0)
    return PQS__WAIT;
  op->send = PQS__SEND_COPY; /* COPY_DATA -> COPY */
  if (n == -1)
    return PQS__CONTINUE;
  record_conn_error(op);
  if (op_broken(op->ctx))
    op->status = PQS_ECONNLOST; /* as for rows: a loss is the story */
  else
    note_status(op, PQS_ENOMEM);
  if (op->err.message == NULL)
    op->err.message = pqs_strerror(op->status);
  give_up(op->ctx); /* the op is gone */
  return PQS__WAIT;
}

/* COPY is not a row stream: refuse it without leaving the protocol stuck. */
static int refuse_copy(pqs__op_t *op, ExecStatusType st) {
  PGconn *conn = op->ctx->conn;
  if (op->err.message == NULL)
    op->err.message = "COPY is not supported by pqs_query or pqs_exec";
  note_status(op, PQS_EINVAL);
  if (st != PGRES_COPY_OUT) {
    PQputCopyEnd(conn, "COPY is not supported by pqstream");
    op->flushing = PQflush(conn) == 1;
    op_watch(op->ctx);
    return PQS__CONTINUE;
  }
  char *buf;
  int n;
  while ((n = PQgetCopyData(conn, &buf, 1)) > 0)
    PQfreemem(buf);
  return n == 0 ? PQS__WAIT : PQS__CONTINUE;
}

/* libpq ran out of memory for a row: it drops that row and every one
 * after it, then hands over either its own error ("out of memory ...", no
 * server fields) or, if the server raised one later, the server's, with
 * its own complaint left only in the connection's message. Either way rows
 * were lost: the op ends with PQS_ENOMEM and libpq's words, never with
 * the server's error or success. libpq 15 says so only in words; a
 * server's own "out of memory" (SQLSTATE 53200) is in the result's text. */
static void note_local_failure(pqs__op_t *op, const PGresult *res) {
  const char *own = PQresultErrorMessage(res);
  const char *conn_said = PQerrorMessage(op->ctx->conn);
  int said_by_result = own != NULL && strstr(own, "out of memory") != NULL;
  int by_libpq =
      said_by_result
          ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) == NULL
          : conn_said != NULL && strstr(conn_said, "out of memory") != NULL;
  if (!by_libpq)
    return;
  if (op->err_strings != NULL || op->err.message != NULL) {
    pqs__free(op->err_strings);
    op->err_strings = NULL;
    op->err = (pqs_error_t){0};
  }
  record_conn_error(op);
  note_status(op, PQS_ENOMEM);
}

/* A result of a batch's pipeline: one per statement (the BEGIN and COMMIT
 * around them included), then the sync's. */
static int take_pipelined(pqs__op_t *op, PGresult *res) {
  switch (PQresultStatus(res)) {
  case PGRES_PIPELINE_SYNC:
    op->final = 1;
    return PQS__CONTINUE;
  case PGRES_PIPELINE_ABORTED:
    pqs__pipeline_skipped_one(op);
    return PQS__CONTINUE;
  case PGRES_COMMAND_OK:
  case PGRES_TUPLES_OK:
    op->rows += PQntuples(res);
    keep_error(op, pqs__pipeline_done_one(op, res));
    return PQS__CONTINUE;
  default:
    record_result_error(op, res);
    note_local_failure(op, res);
    pqs__pipeline_failed_one(op);
    return PQS__CONTINUE;
  }
}

static int take_result(pqs__op_t *op, PGresult *res) {
  ExecStatusType st = PQresultStatus(res);
  if (op->send == PQS__SEND_PIPELINE)
    return take_pipelined(op, res);
  switch (st) {
  case PGRES_SINGLE_TUPLE:
    return op->state == PQS__OP_STOPPING ? PQS__CONTINUE : deliver_row(op, res);
  case PGRES_TUPLES_OK:
    op->final = 1;
    record_command(op, res);
    if (!op->single_row)
      op->rows += PQntuples(res);
    else if (op->schema == NULL && op->state != PQS__OP_STOPPING)
      return deliver_columns(op, res); /* a result of no rows */
    return PQS__CONTINUE;
  case PGRES_COMMAND_OK:
    op->final = 1;
    if (op->send == PQS__SEND_DESCRIBE) /* the statement's columns */
      return op->copy ? pqs__copy_described(op, res) : deliver_columns(op, res);
    if (op->send == PQS__SEND_PARAMS || op->send == PQS__SEND_SIMPLE ||
        op->send == PQS__SEND_COPY)
      record_command(op, res);
    return PQS__CONTINUE;
  case PGRES_EMPTY_QUERY:
    op->final = 1;
    record_command(op, res);
    return PQS__CONTINUE;
  case PGRES_COPY_OUT:
    if (op->send == PQS__SEND_COPY)
      return copy_started(op, res);
    /* fall through */
  case PGRES_COPY_IN:
  case PGRES_COPY_BOTH:
    op->final = 1;
    return refuse_copy(op, st);
  default:
    op->final = 1;
    record_result_error(op, res);
    note_local_failure(op, res);
    if (op->send == PQS__SEND_COPY)
      pqs__copy_fix_error(op);
    return PQS__CONTINUE;
  }
}

/* What the consumer (or a COPY being skipped) answered: 1 to wait for
 * more input, else 0. */
static int act_on(pqs__op_t *op, int rc) {
  switch (rc) {
  case PQS__CONTINUE:
    return 0;
  case PQS__WAIT:
    return 1;
  case PQS__PAUSE:
    op_pause(op);
    return 0;
  case PQS__STOP:
    op_stop_with(op, PQS_ECANCELED);
    return 0;
  default: /* PQS__DONE, or an error */
    op_stop_with(op, rc);
    return 0;
  }
}

/* libpq 15, out of memory for a message it must parse (COPY's start, a
 * pipeline's results), leaves the message to be parsed again and says it
 * is busy: no byte may ever come to wake the op. For a COPY that has not
 * started and for a pipeline, a busy libpq is looked at again every
 * 100 ms; one still busy while even a small allocation fails is stuck for
 * good, and the connection is given up (PQS_ENOMEM). So is a pipeline
 * whose connection says "out of memory": libpq 15, failing to allocate a
 * result while it parses one, can stay busy for good with nothing more to
 * read, memory fine again (the OOM harness's batch scenario). The words
 * are libpq's own, untranslated in the C locale. */
#define PQS__BUSY_RETRY_MS 100
static int libpq_ran_out(pqs_ctx_t *ctx) {
  return ctx->op->send == PQS__SEND_PIPELINE &&
         strstr(PQerrorMessage(ctx->conn), "out of memory") != NULL;
}

static void busy_and_stuck(pqs_ctx_t *ctx) {
  void *probe = malloc(256); /* libc's, as libpq's own allocations */
  if (probe != NULL && !libpq_ran_out(ctx)) {
    free(probe);
    pqs__ctx_defer_ms(ctx, PQS__BUSY_RETRY_MS);
    return;
  }
  free(probe);
  pqs__op_t *op = ctx->op;
  note_status(op, PQS_ENOMEM);
  op->err.message = op->err.message ? op->err.message : "out of memory";
  give_up(ctx);
}

/* In pipeline mode a NULL result ends one statement's results, not the
 * batch's: that is the sync. Two in a row, or a dead connection, and
 * libpq has nothing more to give. */
static int pipeline_goes_on(pqs__op_t *op) {
  return op->send == PQS__SEND_PIPELINE && !op->final && !op->lost &&
         PQstatus(op->ctx->conn) != CONNECTION_BAD && ++op->nulls < 2;
}

/* Hot path: delivers every result libpq already holds, without reading the
 * socket again. Stops when libpq needs more input, when the consumer
 * pauses, or when the op has ended (the op may be freed then). */
static void op_drain(pqs_ctx_t *ctx) {
  pqs__op_t *op = ctx->op;
  while (op->state == PQS__OP_RUNNING || op->state == PQS__OP_STOPPING) {
    if (op->send == PQS__SEND_COPY_DATA) {
      if (act_on(op, copy_pump(op)))
        return;
      continue;
    }
    if (op->send == PQS__SEND_LISTENING) {
      if (act_on(op, listen_pump(op)))
        return;
      continue;
    }
    /* After a loss libpq's socket is gone and PQgetResult cannot block. */
    if (!op->lost && PQisBusy(ctx->conn)) {
      if ((op->send == PQS__SEND_COPY || op->send == PQS__SEND_PIPELINE) &&
          op->state == PQS__OP_RUNNING)
        busy_and_stuck(ctx);
      return;
    }
    PGresult *res = PQgetResult(ctx->conn);
    if (res == NULL && pipeline_goes_on(op))
      continue; /* the next statement's results */
    if (res == NULL) {
      if (op->send == PQS__SEND_PIPELINE)
        PQexitPipelineMode(ctx->conn); /* idle now: the sync came */
      op_drained(ctx);
      return;
    }
    op->nulls = 0;
    int rc = take_result(op, res);
    PQclear(res);
    if (act_on(op, rc))
      return;
  }
}

/* ---- events from the loop ---- */

void pqs__op_io(pqs_ctx_t *ctx, int status, int events) {
  pqs__op_t *op = ctx->op;
  if (status < 0) {
    mark_lost_by_poll(op, status);
  } else {
    if ((events & UV_READABLE) && !PQconsumeInput(ctx->conn))
      mark_lost(op);
    if (op->flushing && !op->lost) {
      int rc = PQflush(ctx->conn);
      if (rc < 0)
        mark_lost(op);
      op->flushing = rc == 1;
    }
    op_watch(ctx);
  }
  op_drain(ctx);
}

void pqs__op_kick(pqs_ctx_t *ctx) {
  pqs__op_t *op = ctx->op;
  if (op->state == PQS__OP_WAITING) {
    uint64_t now = uv_now(ctx->loop);
    if (now < op->retry_at)
      pqs__ctx_defer_ms(ctx, (unsigned)(op->retry_at - now));
    else
      retry_now(op);
    return;
  }
  if (op->state == PQS__OP_DRAINED) {
    pqs__op_maybe_finish(ctx);
    return;
  }
  op_watch(ctx);
  op_drain(ctx);
}
