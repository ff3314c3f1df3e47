/* Cancelling the query on the server, in bounded time.
 *
 * A cancel request is a connection of its own to the server, and waiting
 * for it must never block the loop nor hold one of the four threads of
 * libuv's pool. Each request runs on a short-lived, detached thread of
 * pqstream's own (a small stack).
 *
 * When the backend's key can be read (cancel_send.c: libpq up to 16),
 * the thread sends the request itself and gives up at the context's
 * cancel_grace_ms: its thread and socket are gone by then, whatever the
 * network does. Such a request is never let go of: a closing context
 * waits for it (ENDING), so the close callback comes once nothing of the
 * context is left, and within that bound.
 *
 * Otherwise PQcancel sends it, which has no timeout: against a peer that
 * accepts and never answers it waits forever. The context lets go of
 * such a thread when it closes its connection (no later query can be hit
 * then) and when a stop's grace period is over (the engine gives the
 * connection up then, for the same reason); the thread frees the request
 * itself when PQcancel returns, if ever.
 *
 * At most PQS__CANCEL_THREADS_MAX threads are in flight per process: past
 * that a stop sends no cancel and relies on its deadline alone (the
 * connection is given up at the end of the grace period, which also ends
 * the query when the server notices). The count is the process's, as the
 * threads are: one atomic counter, the only state this file shares
 * between contexts. */
#include <pthread.h>
#include <stdatomic.h>

#include "alloc.h"
#include "ctx_int.h"

/* A request shared by its thread and its context, each holding a
 * reference; the last to let go frees it. `notify` is the context's async
 * handle, NULL once the context has let go (the thread then tells no
 * one). With no `handle` (the key was read) the thread sends `key`
 * within `timeout_ms`; with one, PQcancel sends through it. */
struct pqs__cancel_job_s {
  uv_mutex_t lock;
  int refs;
  uv_async_t *notify;
  PGcancel *handle;
  pqs__cancel_key_t key;
  unsigned timeout_ms;
  char errbuf[256];
};

#define PQS__CANCEL_THREADS_MAX 8

static atomic_int threads_in_flight;

/* A place for one more thread: 1, or 0 when every place is taken. */
static int take_place(void) {
  int n = atomic_load(&threads_in_flight);
  while (n < PQS__CANCEL_THREADS_MAX)
    if (atomic_compare_exchange_weak(&threads_in_flight, &n, n + 1))
      return 1;
  return 0;
}

static void give_place(void) { atomic_fetch_sub(&threads_in_flight, 1); }

static void job_unref(pqs__cancel_job_t *job) {
  uv_mutex_lock(&job->lock);
  int last = --job->refs == 0;
  uv_mutex_unlock(&job->lock);
  if (last) {
    if (job->handle != NULL)
      PQfreeCancel(job->handle);
    uv_mutex_destroy(&job->lock);
    pqs__free(job);
  }
}

/* Sent with a deadline: the key was read, libpq's handle let go. */
static int bounded(const pqs__cancel_job_t *job) {
  return job->handle == NULL;
}

static void *cancel_main(void *arg) {
  pqs__cancel_job_t *job = arg;
  if (bounded(job))
    (void)pqs__cancel_send(&job->key, job->timeout_ms);
  else
    PQcancel(job->handle, job->errbuf, sizeof(job->errbuf));
  uv_mutex_lock(&job->lock);
  if (job->notify != NULL)
    uv_async_send(job->notify);
  uv_mutex_unlock(&job->lock);
  job_unref(job);
  give_place();
  return NULL;
}

static int start_thread(pqs__cancel_job_t *job) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0)
    return -1;
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024); /* PQcancel needs little */
  pthread_t t;
  int rc = take_place() ? pthread_create(&t, &attr, cancel_main, job) : -1;
  if (rc > 0)
    give_place();
  pthread_attr_destroy(&attr);
  return rc;
}

/* The way this request goes: keyed with a deadline, or by PQcancel. */
static int prepare(pqs_ctx_t *ctx, pqs__cancel_job_t *job) {
  job->handle = PQgetCancel(ctx->conn);
  if (job->handle == NULL)
    return -1;
  if (pqs__cancel_key_read(ctx->conn, job->handle, &job->key) == 0) {
    job->timeout_ms = pqs__ctx_grace_ms(ctx);
    PQfreeCancel(job->handle);
    job->handle = NULL;
  }
  return 0;
}

/* IDLE -> SENDING: one cancel request for the running query. The op does
 * not finish until it has come back (see pqs__op_maybe_finish). Without a
 * connection, memory or a thread (or a place for one), nothing is sent:
 * the stop's deadline still bounds the wait. */
void pqs__cancel_request(pqs_ctx_t *ctx) {
  if (ctx->cancel.state != PQS__CANCEL_IDLE)
    return;
  pqs__cancel_job_t *job = pqs__calloc(1, sizeof(*job));
  if (job == NULL)
    return;
  if (uv_mutex_init(&job->lock) != 0) {
    pqs__free(job);
    return;
  }
  job->refs = 2;
  job->notify = &ctx->cancel.async;
  if (prepare(ctx, job) != 0 || start_thread(job) != 0) {
    job->refs = 1;
    job_unref(job);
    return;
  }
  ctx->cancel.job = job;
  ctx->cancel.state = PQS__CANCEL_SENDING;
}

/* SENDING -> IDLE without waiting: PQcancel's thread goes on alone. One
 * with a deadline is kept: it ends soon, and is waited for at close. */
void pqs__cancel_let_go(pqs_ctx_t *ctx) {
  pqs__cancel_job_t *job = ctx->cancel.job;
  if (ctx->cancel.state != PQS__CANCEL_SENDING || bounded(job))
    return;
  uv_mutex_lock(&job->lock);
  job->notify = NULL;
  uv_mutex_unlock(&job->lock);
  job_unref(job);
  ctx->cancel.job = NULL;
  ctx->cancel.state = PQS__CANCEL_IDLE;
}

/* IDLE -> CLOSED. */
static void close_handle(pqs_ctx_t *ctx) {
  ctx->cancel.state = PQS__CANCEL_CLOSED;
  uv_close((uv_handle_t *)&ctx->cancel.async, pqs__ctx_handle_closed);
}

/* IDLE | SENDING -> CLOSED, or SENDING -> ENDING for a request with a
 * deadline, which then keeps the loop alive until it is back. */
void pqs__cancel_close(pqs_ctx_t *ctx) {
  pqs__cancel_let_go(ctx);
  if (ctx->cancel.state == PQS__CANCEL_SENDING) {
    ctx->cancel.state = PQS__CANCEL_ENDING;
    uv_ref((uv_handle_t *)&ctx->cancel.async);
    return;
  }
  if (ctx->cancel.state == PQS__CANCEL_IDLE)
    close_handle(ctx);
}

/* SENDING -> IDLE, ENDING -> CLOSED: the thread is done, back on the
 * loop. */
static void on_cancel_done(uv_async_t *async) {
  pqs_ctx_t *ctx = async->data;
  pqs__cancel_state_t state = ctx->cancel.state;
  if (state != PQS__CANCEL_SENDING && state != PQS__CANCEL_ENDING)
    return; /* a wake-up from a request already let go */
  job_unref(ctx->cancel.job);
  ctx->cancel.job = NULL;
  ctx->cancel.state = PQS__CANCEL_IDLE;
  if (state == PQS__CANCEL_ENDING)
    close_handle(ctx);
  else
    pqs__op_maybe_finish(ctx);
}

int pqs__cancel_init(pqs_ctx_t *ctx) {
  int rc = uv_async_init(ctx->loop, &ctx->cancel.async, on_cancel_done);
  if (rc != 0)
    return rc;
  ctx->cancel.async.data = ctx;
  /* Never what keeps the loop alive while the context is open: a stopping
   * op's deadline timer is. */
  uv_unref((uv_handle_t *)&ctx->cancel.async);
  return 0;
}
