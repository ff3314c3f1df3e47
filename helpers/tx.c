/* The transaction helper: BEGIN, the user's body, COMMIT or ROLLBACK, and
 * the body again on a conflict. Built on pqs_exec; its one tie to the
 * context is a close hook (pqs__ctx_set_close_hook), by which a close
 * ends it.
 *
 *   BEGINNING --BEGIN ok--> IN_BODY --pqs_tx_end(0)--> COMMITTING
 *   IN_BODY --pqs_tx_end(error)--> ROLLING_BACK
 *   COMMITTING --ok--> ENDING (committed)
 *   COMMITTING --conflict, retries left--> WAITING
 *   ROLLING_BACK --done; the body's error a conflict, retries left--> WAITING
 *   WAITING --the pause is over--> BEGINNING
 *   any --failure, no retry left, or the context closed--> ENDING
 *   ENDING --its timer closed--> the callback, then freed */
#include <string.h>

#include "../src/core.h"

typedef enum {
  TX_BEGINNING,
  TX_IN_BODY,
  TX_COMMITTING,
  TX_ROLLING_BACK,
  TX_WAITING,
  TX_ENDING
} tx_state_t;

struct pqs_tx_s {
  tx_state_t state;
  pqs_ctx_t *ctx;
  pqs_tx_opts_t opts;
  pqs_tx_body_fn body;
  pqs_tx_cb cb;
  void *data;
  unsigned attempts;
  uint64_t rng;
  uv_timer_t timer; /* the pause before a retry */
  char begin[80];
  int status; /* what ends it, once known */
  pqs_error_t err;
  char *err_strings;
  int has_err;
  int ctx_closing; /* fact: the context is closing; its hook let go */
};

static void begin(pqs_tx_t *tx);

/* ---- the end ---- */

static void on_timer_closed(uv_handle_t *h) {
  pqs_tx_t *tx = h->data;
  if (tx->cb == NULL) { /* never started */
    pqs__free(tx);
    return;
  }
  pqs_tx_done_t done = {.status = tx->status,
                        .error = tx->has_err ? &tx->err : NULL,
                        .attempts = tx->attempts};
  tx->cb(tx->ctx, &done, tx->data);
  pqs__free(tx->err_strings);
  pqs__free(tx);
}

/* Keeps the error that explains the end (a copy: the caller's is
 * borrowed); a failed copy is a failure of its own. */
static void keep(pqs_tx_t *tx, int status, const pqs_error_t *err) {
  tx->status = status;
  pqs__free(tx->err_strings);
  tx->err_strings = NULL;
  tx->has_err = 0;
  if (err == NULL)
    return;
  tx->has_err = 1;
  if (pqs__error_copy(&tx->err, &tx->err_strings, err, NULL) != 0 &&
      tx->status == 0)
    tx->status = PQS_ENOMEM;
}

/* any -> ENDING; the callback comes from the loop. */
static void finish(pqs_tx_t *tx, int status, const pqs_error_t *err) {
  if (tx->state == TX_ENDING)
    return;
  if (err != NULL)
    keep(tx, status, err);
  else
    tx->status = status; /* the error kept before, if any, explains it */
  tx->state = TX_ENDING;
  if (!tx->ctx_closing)
    pqs__ctx_set_close_hook(tx->ctx, NULL, NULL);
  /* A transaction it began and could not end (no memory for the COMMIT or
   * ROLLBACK) must not meet the context's next user. */
  if (!tx->ctx_closing)
    pqs__ctx_break_in_transaction(tx->ctx);
  uv_close((uv_handle_t *)&tx->timer, on_timer_closed);
}

/* The context's close hook: the context lets go of it first. */
static void ctx_closing(void *data) {
  pqs_tx_t *tx = data;
  tx->ctx_closing = 1;
  /* An exec of ours still running ends by itself, with PQS_ECANCELED. */
  if (tx->state == TX_IN_BODY || tx->state == TX_WAITING)
    finish(tx, PQS_ECANCELED, NULL);
}

/* ---- retries ---- */

static void on_pause_over(uv_timer_t *t) { begin(t->data); }

/* -> WAITING if the failure is a conflict with retries left, else the
 * end with what was kept. */
static void retry_or_finish(pqs_tx_t *tx) {
  if (!tx->has_err || !pqs__is_conflict(&tx->err) ||
      tx->attempts > tx->opts.retries) {
    finish(tx, tx->status, NULL);
    return;
  }
  tx->state = TX_WAITING;
  uv_timer_start(&tx->timer, on_pause_over,
                 pqs__backoff_ms(tx->opts.backoff_ms, tx->attempts, &tx->rng),
                 0);
}

/* ---- the steps ---- */

static void on_rolled_back(pqs_ctx_t *ctx, const pqs_done_t *done, void *data) {
  (void)ctx;
  pqs_tx_t *tx = data;
  if (tx->state != TX_ROLLING_BACK)
    return;
  if (done->status != 0) /* the connection, most likely: that is the end */
    finish(tx, done->status, done->error);
  else
    retry_or_finish(tx);
}

static const pqs_error_t commit_rolled_back = {
    .message = "COMMIT rolled the transaction back: a statement of the "
               "body had failed",
    .sqlstate = "25P02"};

static void on_committed(pqs_ctx_t *ctx, const pqs_done_t *done, void *data) {
  (void)ctx;
  pqs_tx_t *tx = data;
  if (tx->state != TX_COMMITTING)
    return;
  if (done->status == 0 && done->command_tag &&
      strcmp(done->command_tag, "ROLLBACK") == 0) {
    finish(tx, PQS_ESQL, &commit_rolled_back);
    return;
  }
  if (done->status == 0) {
    finish(tx, 0, NULL);
    return;
  }
  keep(tx, done->status, done->error);
  retry_or_finish(tx); /* a failed COMMIT has ended the transaction */
}

static void on_begun(pqs_ctx_t *ctx, const pqs_done_t *done, void *data) {
  pqs_tx_t *tx = data;
  if (tx->state != TX_BEGINNING)
    return;
  if (done->status != 0) {
    finish(tx, done->status, done->error);
    return;
  }
  tx->state = TX_IN_BODY; /* BEGINNING -> IN_BODY */
  tx->attempts++;
  tx->body(tx, ctx, tx->attempts, tx->data);
}

/* -> BEGINNING */
static void begin(pqs_tx_t *tx) {
  tx->state = TX_BEGINNING;
  keep(tx, 0, NULL);
  const char *sql = tx->begin[0] ? tx->begin : "BEGIN";
  int rc = pqs_exec(tx->ctx, sql, 0, NULL, NULL, on_begun, tx);
  if (rc != 0)
    finish(tx, rc, NULL);
}

int pqs_tx_end(pqs_tx_t *tx, int status, const pqs_error_t *error) {
  if (tx == NULL)
    return PQS_EINVAL;
  if (!pqs__ctx_on_thread(tx->ctx))
    return PQS_ETHREAD;
  if (tx->state != TX_IN_BODY)
    return PQS_ESTATE;
  if (pqs_ctx_is_busy(tx->ctx))
    return PQS_EBUSY;
  int rc;
  if (status == 0) {
    tx->state = TX_COMMITTING; /* IN_BODY -> COMMITTING */
    rc = pqs_exec(tx->ctx, "COMMIT", 0, NULL, NULL, on_committed, tx);
  } else {
    keep(tx, status, error);
    tx->state = TX_ROLLING_BACK; /* IN_BODY -> ROLLING_BACK */
    rc = pqs_exec(tx->ctx, "ROLLBACK", 0, NULL, NULL, on_rolled_back, tx);
  }
  if (rc != 0)
    finish(tx, status != 0 ? tx->status : rc, NULL);
  return 0;
}

int pqs_tx_run(pqs_ctx_t *ctx, const pqs_tx_opts_t *opts, pqs_tx_body_fn body,
               pqs_tx_cb cb, void *data) {
  if (ctx == NULL || body == NULL || cb == NULL ||
      (opts && (unsigned)opts->isolation > PQS_ISOLATION_SERIALIZABLE))
    return PQS_EINVAL;
  int rc = pqs__ctx_check_ready(ctx);
  if (rc != 0)
    return rc;
  pqs_tx_t *tx = pqs__calloc(1, sizeof(*tx));
  if (tx == NULL)
    return PQS_ENOMEM;
  if ((rc = pqs__ctx_set_close_hook(ctx, ctx_closing, tx)) != 0) {
    pqs__free(tx); /* another helper's transaction runs on it */
    return rc;
  }
  tx->ctx = ctx;
  if (opts)
    tx->opts = *opts;
  tx->body = body;
  tx->cb = cb;
  tx->data = data;
  tx->rng = pqs__jitter_seed(tx);
  pqs__begin_sql(tx->opts.isolation, tx->opts.read_only, tx->begin);
  (void)uv_timer_init(pqs_ctx_loop(ctx), &tx->timer); /* cannot fail */
  tx->timer.data = tx;
  tx->state = TX_BEGINNING;
  rc = pqs_exec(ctx, tx->begin[0] ? tx->begin : "BEGIN", 0, NULL, NULL,
                on_begun, tx);
  if (rc != 0) { /* nothing started: no callback owed */
    pqs__ctx_set_close_hook(ctx, NULL, NULL);
    tx->cb = NULL;
    uv_close((uv_handle_t *)&tx->timer, on_timer_closed);
    return rc;
  }
  return 0;
}
