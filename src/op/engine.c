/* The engine: one operation on a context, whatever its kind. It sends the
 * kind's steps, watches the socket, drains what libpq holds, pauses and
 * resumes, stops with a cancel and a deadline, and finishes exactly once.
 * What a step sends and what its results mean are the kind's (kind.h);
 * the op's states are drawn in op.h. This is the row source behind every
 * stream and command. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "error_int.h"
#include "kind.h"

static void op_drain(pqs_ctx_t *ctx);
static void give_up(pqs_ctx_t *ctx);
static void op_finish(pqs_ctx_t *ctx, int status);

/* How often a stopping op asks again (a cancel that reaches the backend
 * before it has begun the query is ignored) and looks at its deadline. */
#define PQS__STOP_TICK_MS 200

/* ---- what the op watches on the socket ---- */

void pqs__op_watch(pqs__op_t *op) {
  int events = 0;
  if (op->lost || op->state == PQS__OP_ABANDONED)
    events = 0;
  else if (op->flushing)
    events = UV_READABLE | UV_WRITABLE; /* libpq wants both while sending */
  else if (op->state == PQS__OP_RUNNING && op->resting)
    events = 0;
  else if (op->state == PQS__OP_RUNNING || op->state == PQS__OP_STOPPING)
    events = UV_READABLE;
  pqs__io_watch(op->ctx, events);
}

/* ---- a lost connection ---- */

static void mark_lost(pqs__op_t *op) {
  if (op->lost)
    return;
  op->lost = 1;
  pqs__op_conn_error(op);
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
    pqs__op_keep(op, pqs__error_copy(&op->err, &op->err_strings, &e, NULL));
  }
  mark_lost(op);
}

int pqs__op_broken(const pqs__op_t *op) {
  return op->lost || PQstatus(op->ctx->conn) == CONNECTION_BAD;
}

int pqs__op_step_ended(const pqs__op_t *op) {
  return op->state == PQS__OP_RUNNING && !op->lost && op->final;
}

int pqs__op_step_ok(const pqs__op_t *op) {
  return pqs__op_step_ended(op) && op->status == 0 && op->err.message == NULL;
}

/* ---- pause, resume, stop: the controls of the source ---- */

static void op_pause(void *src) {
  pqs__op_t *op = src;
  if (op->state != PQS__OP_RUNNING)
    return;
  op->state = PQS__OP_PAUSED;
  pqs__op_watch(op);
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
           (op->kind->cancellable == NULL || op->kind->cancellable(op)))
    pqs__cancel_request(ctx);
}

static void stop_deadline(pqs__op_t *op) {
  pqs_ctx_t *ctx = op->ctx;
  op->deadline = uv_now(ctx->loop) + pqs__ctx_grace_ms(ctx);
  /* The query's timeout is over: the timer now ticks the stop. */
  uv_timer_start(&ctx->timer, on_stop_tick, PQS__STOP_TICK_MS,
                 PQS__STOP_TICK_MS);
}

/* RUNNING | PAUSED -> STOPPING: cancel (or the kind's own ending), drop
 * what still arrives, and end within the grace period whatever the
 * network does. WAITING -> DRAINED: nothing is on the server. */
void pqs__op_stop(pqs__op_t *op, int reason) {
  pqs_ctx_t *ctx = op->ctx;
  if (op->state == PQS__OP_WAITING) {
    pqs__op_note(op, reason);
    op->state = PQS__OP_DRAINED;
    pqs__ctx_defer(ctx);
    return;
  }
  if (op->state != PQS__OP_RUNNING && op->state != PQS__OP_PAUSED)
    return;
  pqs__op_note(op, reason);
  op->state = PQS__OP_STOPPING;
  stop_deadline(op);
  if (op->kind->stop != NULL && op->kind->stop(op))
    return;
  if (!op->lost)
    pqs__cancel_request(ctx);
  pqs__op_watch(op);
  pqs__ctx_defer(ctx); /* results libpq already holds end it sooner */
}

static void op_stop(void *src, int reason) { pqs__op_stop(src, reason); }

/* NEW -> DRAINED: an op that never started ends with `reason`, from the
 * loop (a pipeline closed before it was sent: its started streams hear
 * of it there, never from inside the caller's call). */
void pqs__op_end_unstarted(pqs__op_t *op, int reason) {
  if (op->state != PQS__OP_NEW)
    return;
  pqs__op_note(op, reason);
  op->state = PQS__OP_DRAINED;
  pqs__ctx_defer(op->ctx);
}

static void on_query_timeout(uv_timer_t *timer) {
  pqs_ctx_t *ctx = timer->data;
  if (ctx->op != NULL)
    pqs__op_stop(ctx->op, PQS_ETIMEDOUT);
}

/* ---- start: NEW -> RUNNING ---- */

/* A step libpq would not take: it ends from the loop, where PQgetResult
 * says it is over. */
static void send_failed(pqs__op_t *op) {
  if (PQstatus(op->ctx->conn) == CONNECTION_BAD)
    mark_lost(op);
  pqs__op_conn_error(op);
  pqs__op_note(op, PQS_EINVAL);
  pqs__ctx_defer(op->ctx);
}

/* Part of a step went out and must never be completed (a batch's sync
 * would commit half of it): the connection is given up, from the loop, by
 * the stop's own deadline (STOPPING with no grace left), and never
 * cancelled. */
static void give_up_soon(pqs__op_t *op) {
  pqs_ctx_t *ctx = op->ctx;
  pqs__op_conn_error(op);
  const char *said = PQerrorMessage(ctx->conn);
  pqs__op_note(op,
               said && strstr(said, "out of memory") ? PQS_ENOMEM : PQS_EINVAL);
  op->state = PQS__OP_STOPPING;
  op->deadline = uv_now(ctx->loop);
  pqs__io_watch(ctx, 0);
  uv_timer_start(&ctx->timer, on_stop_tick, 0, PQS__STOP_TICK_MS);
}

/* Sends the kind's step and makes sure it is on its way; on failure it
 * ends from the loop. */
static void send_now(pqs__op_t *op) {
  int sent = op->kind->send(op);
  if (sent < 0)
    give_up_soon(op);
  else if (!sent)
    send_failed(op);
  else
    pqs__op_flush(op);
}

void pqs__op_flush(pqs__op_t *op) {
  pqs_ctx_t *ctx = op->ctx;
  int rc = PQflush(ctx->conn);
  if (rc < 0)
    mark_lost(op);
  op->flushing = rc == 1;
  pqs__op_watch(op);
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

static void op_lines(void *src, int format) {
  pqs__op_t *op = src;
  if (op->state == PQS__OP_NEW && op->kind->lines != NULL)
    op->kind->lines(op, format);
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
  pqs__op_free(op);
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
  pqs__op_conn_error(op);
  pqs__op_note(op, broken ? PQS_ECONNLOST : PQS_ENOMEM);
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
 * its RESET_* state (reset.c decides), a closing context its own. The
 * socket stays watched until the consumer has heard (idle_after_end). */
static void ctx_after_op(pqs_ctx_t *ctx, int broken) {
  if (pqs__ctx_closing(ctx))
    return;
  uv_timer_stop(&ctx->timer);
  uv_timer_stop(&ctx->tick);
  if (ctx->state == PQS__CTX_BUSY)
    ctx->state = broken ? PQS__CTX_BROKEN : PQS__CTX_READY;
  if (broken)
    pqs__io_detach(ctx);
}

/* After the consumer heard of the end: an idle context stops watching its
 * socket. A next operation started from on_done (small queries one after
 * another) finds it watched already: no epoll_ctl to stop and start it
 * again, which cost as much as a query's own system calls. */
static void idle_after_end(pqs_ctx_t *ctx) {
  if (ctx->op == NULL && !pqs__ctx_closing(ctx))
    pqs__io_watch(ctx, 0);
}

/* How an op that ran to its end ended. */
static int settle(pqs__op_t *op, int broken) {
  if (broken)
    pqs__op_conn_error(op);
  check_final(op, broken);
  return final_status(op, broken);
}

/* The one completion, with `status`. */
static void op_finish(pqs_ctx_t *ctx, int status) {
  pqs__op_t *op = ctx->op;
  int broken = pqs__op_broken(op);
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
  pqs__op_free(op);
  idle_after_end(ctx);
}

/* DRAINED -> finished, once no cancel request is in flight: a late cancel
 * must never hit the next query. */
void pqs__op_maybe_finish(pqs_ctx_t *ctx) {
  pqs__op_t *op = ctx->op;
  if (op != NULL && op->state == PQS__OP_DRAINED &&
      ctx->cancel.state == PQS__CANCEL_IDLE)
    op_finish(ctx, settle(op, pqs__op_broken(op)));
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

void pqs__op_give_up(pqs__op_t *op) { give_up(op->ctx); }

/* ---- the kind's own time ---- */

static void on_tick(uv_timer_t *timer) {
  pqs_ctx_t *ctx = timer->data;
  pqs__op_t *op = ctx->op;
  if (op != NULL && op->kind->tick != NULL &&
      (op->state == PQS__OP_RUNNING || op->state == PQS__OP_PAUSED))
    op->kind->tick(op);
}

void pqs__op_tick_in(pqs__op_t *op, unsigned ms) {
  uv_timer_start(&op->ctx->tick, on_tick, ms, 0);
}

void pqs__op_untime(pqs__op_t *op) {
  if (op->state == PQS__OP_RUNNING || op->state == PQS__OP_PAUSED)
    uv_timer_stop(&op->ctx->timer);
  op->timeout_ms = 0;
}

/* ---- waiting between attempts: RUNNING <-> WAITING ---- */

void pqs__op_wait(pqs__op_t *op, unsigned delay_ms) {
  op->state = PQS__OP_WAITING;
  op->wake_at = uv_now(op->ctx->loop) + delay_ms;
  pqs__io_watch(op->ctx, 0);
  pqs__ctx_defer_ms(op->ctx, delay_ms);
}

/* WAITING -> RUNNING: the last attempt is forgotten, the kind's run
 * starts again. */
static void wake(pqs__op_t *op) {
  pqs__free(op->err_strings);
  op->err_strings = NULL;
  op->err = (pqs_error_t){0};
  op->status = 0;
  op->final = 0;
  op->kind->again(op);
  op->state = PQS__OP_RUNNING;
  send_now(op);
}

/* ---- results end: RUNNING | STOPPING -> the next step, or DRAINED ---- */

static void op_drained(pqs_ctx_t *ctx) {
  pqs__op_t *op = ctx->op;
  pqs__next_t next = op->kind->next ? op->kind->next(op) : PQS__NEXT_END;
  if (next == PQS__NEXT_HELD)
    return;
  if (next == PQS__NEXT_SEND) {
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

int pqs__op_deliver_columns(pqs__op_t *op, const PGresult *res) {
  if (op->schema == NULL && (op->schema = pqs__op_schema_of(op, res)) == NULL)
    return PQS_ENOMEM;
  op->columns_sent = 1;
  if (op->consumer_vt->columns == NULL)
    return PQS__CONTINUE;
  pqs_row_t columns = {.schema = op->schema};
  return op->consumer_vt->columns(op->consumer, &columns);
}

/* COPY is not a row stream: refuse it without leaving the protocol stuck. */
static int refuse_copy(pqs__op_t *op, ExecStatusType st) {
  PGconn *conn = op->ctx->conn;
  if (op->err.message == NULL)
    op->err.message = "COPY is not supported by pqs_query or pqs_exec";
  pqs__op_note(op, PQS_EINVAL);
  if (st != PGRES_COPY_OUT) {
    PQputCopyEnd(conn, "COPY is not supported by pqstream");
    op->flushing = PQflush(conn) == 1;
    pqs__op_watch(op);
    return PQS__CONTINUE;
  }
  char *buf;
  int n;
  while ((n = PQgetCopyData(conn, &buf, 1)) > 0)
    PQfreemem(buf);
  return n == 0 ? PQS__WAIT : PQS__CONTINUE;
}

int pqs__op_take_common(pqs__op_t *op, PGresult *res, int record) {
  ExecStatusType st = PQresultStatus(res);
  op->final = 1;
  switch (st) {
  case PGRES_TUPLES_OK:
    pqs__op_record_command(op, res);
    if (!op->single_row)
      op->rows += PQntuples(res);
    else if (!op->columns_sent && op->state != PQS__OP_STOPPING)
      return pqs__op_deliver_columns(op, res); /* a result of no rows */
    return PQS__CONTINUE;
  case PGRES_COMMAND_OK:
    pqs__ctx_tag_seen(op->ctx, PQcmdStatus(res));
    if (record)
      pqs__op_record_command(op, res);
    return PQS__CONTINUE;
  case PGRES_EMPTY_QUERY:
    pqs__op_record_command(op, res);
    return PQS__CONTINUE;
  case PGRES_COPY_OUT:
  case PGRES_COPY_IN:
  case PGRES_COPY_BOTH:
    return refuse_copy(op, st);
  default:
    pqs__op_result_failed(op, res);
    return PQS__CONTINUE;
  }
}

int pqs__op_answer(pqs__op_t *op, int rc) {
  switch (rc) {
  case PQS__CONTINUE:
    return 0;
  case PQS__WAIT:
    return 1;
  case PQS__PAUSE:
    op_pause(op);
    return 0;
  case PQS__STOP:
    pqs__op_stop(op, PQS_ECANCELED);
    return 0;
  default: /* PQS__DONE, or an error */
    pqs__op_stop(op, rc);
    return 0;
  }
}

/* libpq 15, out of memory for a message it must parse (COPY's start, a
 * pipeline's results), leaves the message to be parsed again and says it
 * is busy: no byte may ever come to wake the op. A kind that knows its
 * step can meet this says so (busy, kind.h): libpq is looked at again
 * every 100 ms, and one still busy while even a small allocation fails
 * is stuck for good; the connection is given up (PQS_ENOMEM). */
#define PQS__BUSY_RETRY_MS 100
static void busy(pqs_ctx_t *ctx) {
  pqs__op_t *op = ctx->op;
  pqs__busy_t b = op->state == PQS__OP_RUNNING && op->kind->busy != NULL
                      ? op->kind->busy(op)
                      : PQS__BUSY_WAIT;
  if (b == PQS__BUSY_WAIT)
    return;
  void *probe = b == PQS__BUSY_PROBE ? malloc(256) : NULL; /* as libpq's */
  free(probe);
  if (probe != NULL) {
    pqs__ctx_defer_ms(ctx, PQS__BUSY_RETRY_MS);
    return;
  }
  pqs__op_note(op, PQS_ENOMEM);
  op->err.message = op->err.message ? op->err.message : "out of memory";
  give_up(ctx);
}

/* Hot path: delivers every result (or piece of input) libpq already
 * holds, without reading the socket again. Stops when libpq needs more
 * input, when the consumer pauses, or when the op has ended (the op may
 * be freed then). */
static void op_drain(pqs_ctx_t *ctx) {
  pqs__op_t *op = ctx->op;
  while (op->state == PQS__OP_RUNNING || op->state == PQS__OP_STOPPING) {
    int rc = op->kind->pump ? op->kind->pump(op) : PQS__RESULTS;
    if (rc != PQS__RESULTS) {
      if (pqs__op_answer(op, rc))
        return;
      continue;
    }
    /* After a loss libpq's socket is gone and PQgetResult cannot block. */
    if (!op->lost && PQisBusy(ctx->conn)) {
      busy(ctx);
      return;
    }
    PGresult *res = PQgetResult(ctx->conn);
    if (res == NULL && op->kind->goes_on && op->kind->goes_on(op))
      continue; /* more results of the same step */
    if (res == NULL) {
      op_drained(ctx);
      return;
    }
    rc = op->kind->take(op, res);
    PQclear(res);
    if (pqs__op_answer(op, rc))
      return;
  }
}

/* ---- events from the loop ---- */

void pqs__op_io(pqs_ctx_t *ctx, int status, int events) {
  pqs__op_t *op = ctx->op;
  if (status < 0) {
    mark_lost_by_poll(op, status);
  } else {
    if (events & UV_READABLE)
      op->heard = 1;
    if ((events & UV_READABLE) && !PQconsumeInput(ctx->conn))
      mark_lost(op);
    if (op->flushing && !op->lost) {
      int rc = PQflush(ctx->conn);
      if (rc < 0)
        mark_lost(op);
      op->flushing = rc == 1;
    }
    pqs__op_watch(op);
  }
  op_drain(ctx);
}

void pqs__op_kick(pqs_ctx_t *ctx) {
  pqs__op_t *op = ctx->op;
  if (op->state == PQS__OP_WAITING) {
    uint64_t now = uv_now(ctx->loop);
    if (now < op->wake_at)
      pqs__ctx_defer_ms(ctx, (unsigned)(op->wake_at - now));
    else
      wake(op);
    return;
  }
  if (op->state == PQS__OP_DRAINED) {
    pqs__op_maybe_finish(ctx);
    return;
  }
  pqs__op_watch(op);
  op_drain(ctx);
}
