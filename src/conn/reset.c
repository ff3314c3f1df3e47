/* Resetting a context's session before its connection goes back to its
 * owner: the next user must find a fresh session, never this one's
 * transaction or settings. READY -> RESET_ROLLBACK -> RESET_DISCARD ->
 * RELEASING, or CLOSING as soon as a step fails. */
#include "ctx_int.h"

#define PQS__RESET_TIMEOUT_MS 10000

static void on_reset(pqs_ctx_t *ctx, const pqs_done_t *done, void *data);

/* Enters `step` and sends its command. DISCARD ALL cannot run inside a
 * transaction block: ROLLBACK comes first when one is open. */
static int enter(pqs_ctx_t *ctx, pqs__ctx_state_t step) {
  ctx->state = step;
  const char *sql =
      step == PQS__CTX_RESET_ROLLBACK ? "ROLLBACK" : "DISCARD ALL";
  /* Bounded like any operation: a reset that cannot finish closes the
   * connection (the pool opens another). */
  static const pqs_query_opts_t bounded = {.timeout_ms = PQS__RESET_TIMEOUT_MS};
  return pqs__exec_start(ctx, sql, 0, NULL, &bounded, on_reset, NULL);
}

static void on_reset(pqs_ctx_t *ctx, const pqs_done_t *done, void *data) {
  (void)data;
  if (done->status == 0 && ctx->state == PQS__CTX_RESET_ROLLBACK) {
    if (enter(ctx, PQS__CTX_RESET_DISCARD) != 0)
      pqs__ctx_close_now(ctx, 0); /* never back without its DISCARD ALL */
    return;
  }
  int clean = done->status == 0 && ctx->state == PQS__CTX_RESET_DISCARD &&
              PQtransactionStatus(ctx->conn) == PQTRANS_IDLE;
  pqs__ctx_close_now(ctx, clean);
}

void pqs__ctx_reset(pqs_ctx_t *ctx) {
  int in_tx = PQtransactionStatus(ctx->conn) != PQTRANS_IDLE;
  if (enter(ctx, in_tx ? PQS__CTX_RESET_ROLLBACK : PQS__CTX_RESET_DISCARD) !=
      0)
    pqs__ctx_close_now(ctx, 0); /* cannot reset: the owner opens another */
}
