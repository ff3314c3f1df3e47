/* Cancelling the query on the server. PQcancel blocks (libpq 15 has no
 * asynchronous cancel), so it runs on libuv's thread pool. */
#include "ctx_int.h"

static void cancel_work(uv_work_t *req) {
  pqs_ctx_t *ctx = req->data;
  /* Only the handle and errbuf are touched off the loop thread; the loop
   * thread leaves both alone while the cancel is SENDING. */
  PQcancel(ctx->cancel.handle, ctx->cancel.errbuf,
           sizeof(ctx->cancel.errbuf));
}

/* The server ignores a cancel that arrives before the backend has begun
 * the query (it is still reading it): a query stopped at once could then
 * run to its end. So while the stopped op has not ended, cancel again.
 * This cannot hit a later query: the context starts none until the last
 * cancel has returned (pqs__op_maybe_finish). */
#define PQS__CANCEL_RETRY_MS 200

static int still_stopping(const pqs_ctx_t *ctx) {
  const pqs__op_t *op = ctx->op;
  return !pqs__ctx_closing(ctx) && op != NULL &&
         op->state == PQS__OP_STOPPING && !op->lost;
}

static void on_retry(uv_timer_t *timer) {
  pqs_ctx_t *ctx = timer->data;
  if (still_stopping(ctx))
    pqs__cancel_request(ctx);
}

/* SENDING -> IDLE, back on the loop. */
static void cancel_done(uv_work_t *req, int status) {
  (void)status;
  pqs_ctx_t *ctx = req->data;
  PQfreeCancel(ctx->cancel.handle);
  ctx->cancel.handle = NULL;
  ctx->cancel.state = PQS__CANCEL_IDLE;
  if (pqs__ctx_closing(ctx)) {
    pqs__ctx_maybe_free(ctx);
    return;
  }
  if (still_stopping(ctx)) /* the op's timeout is over: the timer is free */
    uv_timer_start(&ctx->timer, on_retry, PQS__CANCEL_RETRY_MS, 0);
  pqs__op_maybe_finish(ctx);
}

/* IDLE -> SENDING: one cancel request for the running query. The context
 * stays busy until it has returned (see pqs__op_maybe_finish). */
void pqs__cancel_request(pqs_ctx_t *ctx) {
  if (ctx->cancel.state != PQS__CANCEL_IDLE)
    return;
  ctx->cancel.handle = PQgetCancel(ctx->conn);
  if (ctx->cancel.handle == NULL)
    return; /* no connection, or no memory: nothing to send it with */
  ctx->cancel.work.data = ctx;
  ctx->cancel.state = PQS__CANCEL_SENDING;
  if (uv_queue_work(ctx->loop, &ctx->cancel.work, cancel_work,
                    cancel_done) != 0) {
    PQfreeCancel(ctx->cancel.handle);
    ctx->cancel.handle = NULL;
    ctx->cancel.state = PQS__CANCEL_IDLE;
  }
}
