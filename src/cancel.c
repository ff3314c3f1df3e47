/* Cancelling the query on the server. PQcancel blocks (libpq 15 has no
 * asynchronous cancel), so it runs on libuv's thread pool. */
#include "ctx_int.h"

static void cancel_work(uv_work_t *req) {
  pqs_ctx_t *ctx = req->data;
  /* Only ctx->cancel and cancel_err are touched off the loop thread; the
   * loop thread leaves both alone while cancel_pending is set. */
  PQcancel(ctx->cancel, ctx->cancel_err, sizeof(ctx->cancel_err));
}

static void cancel_done(uv_work_t *req, int status) {
  (void)status;
  pqs_ctx_t *ctx = req->data;
  PQfreeCancel(ctx->cancel);
  ctx->cancel = NULL;
  ctx->cancel_pending = 0;
  if (ctx->state == PQS__CTX_CLOSING)
    pqs__ctx_maybe_free(ctx);
  else
    pqs__op_maybe_finish(ctx);
}

/* Sends one cancel request for the running query. The context stays busy
 * until it has returned (see pqs__op_maybe_finish). */
void pqs__cancel_request(pqs_ctx_t *ctx) {
  if (ctx->cancel_pending)
    return;
  ctx->cancel = PQgetCancel(ctx->conn);
  if (ctx->cancel == NULL)
    return; /* no connection: nothing runs on the server to cancel */
  ctx->cancel_work.data = ctx;
  ctx->cancel_pending = 1;
  if (uv_queue_work(ctx->loop, &ctx->cancel_work, cancel_work,
                    cancel_done) != 0) {
    PQfreeCancel(ctx->cancel);
    ctx->cancel = NULL;
    ctx->cancel_pending = 0;
  }
}
