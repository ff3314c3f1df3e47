/* Giving a pooled context's connection back: the next user must find a
 * fresh session, never this one's transaction or settings. */
#include "ctx_int.h"
#include "factory_int.h"

/* 1: ROLLBACK sent (a transaction was open), 2: DISCARD ALL sent. */
static void on_reset(pqs_ctx_t *ctx, const pqs_done_t *done, void *data);

static int send_reset(pqs_ctx_t *ctx) {
  int rollback =
      ctx->recycling == 0 && PQtransactionStatus(ctx->conn) != PQTRANS_IDLE;
  ctx->recycling = rollback ? 1 : 2;
  /* DISCARD ALL cannot run inside a transaction block: ROLLBACK first. */
  return pqs_exec(ctx, rollback ? "ROLLBACK" : "DISCARD ALL", 0, NULL, NULL,
                  on_reset, NULL);
}

static void on_reset(pqs_ctx_t *ctx, const pqs_done_t *done, void *data) {
  (void)data;
  pqs_close_cb cb = ctx->close_cb;
  if (done->status == 0 && ctx->recycling == 1 && send_reset(ctx) == 0)
    return;
  ctx->keep_conn = done->status == 0 && ctx->recycling == 2 &&
                   PQtransactionStatus(ctx->conn) == PQTRANS_IDLE;
  pqs__ctx_close_now(ctx, cb);
}

int pqs__ctx_recycle(pqs_ctx_t *ctx, pqs_close_cb cb) {
  ctx->close_cb = cb;
  int rc = send_reset(ctx);
  if (rc != 0) { /* cannot reset: close it, the pool opens another */
    ctx->recycling = 0;
    pqs__ctx_close_now(ctx, cb);
  }
  return 0;
}
