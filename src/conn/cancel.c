/* Cancelling the query on the server, in bounded time.
 *
 * PQcancel blocks (libpq 15 has no asynchronous cancel) and has no timeout
 * of its own: against a peer that accepts and never answers it waits
 * forever. So it never runs on the loop, nor on libuv's thread pool, where
 * each stuck cancel would take one of the application's four threads for
 * good. Each request runs on a short-lived, detached thread of pqstream's
 * own (a small stack), and the context can let go of it at any time: the
 * thread then frees the request itself when PQcancel returns, if ever.
 * The context lets go when it closes its connection (no later query can be
 * hit then) and when a stop's grace period is over (the engine gives the
 * connection up then, for the same reason).
 *
 * Threads stuck on a server that never answers would pile up, one per
 * stop, for as long as it stays so. At most PQS__CANCEL_THREADS_MAX of
 * them are in flight per process: past that a stop sends no cancel and
 * relies on its deadline alone (the connection is given up at the end of
 * the grace period, which also ends the query when the server notices).
 * The count is the process's, as the threads are: one atomic counter, the
 * only state this file shares between contexts. */
#include <pthread.h>
#include <stdatomic.h>

#include "alloc.h"
#include "ctx_int.h"

/* A request shared by its thread and its context, each holding a
 * reference; the last to let go frees it. `notify` is the context's async
 * handle, NULL once the context has let go (the thread then tells no
 * one). */
struct pqs__cancel_job_s {
  uv_mutex_t lock;
  int refs;
  uv_async_t *notify;
  PGcancel *handle;
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
    PQfreeCancel(job->handle);
    uv_mutex_destroy(&job->lock);
    pqs__free(job);
  }
}

static void *cancel_main(void *arg) {
  pqs__cancel_job_t *job = arg;
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
  job->handle = PQgetCancel(ctx->conn);
  job->refs = 2;
  job->notify = &ctx->cancel.async;
  if (job->handle == NULL || start_thread(job) != 0) {
    job->refs = 1;
    job_unref(job);
    return;
  }
  ctx->cancel.job = job;
  ctx->cancel.state = PQS__CANCEL_SENDING;
}

/* SENDING -> IDLE without waiting: the thread goes on alone. */
void pqs__cancel_let_go(pqs_ctx_t *ctx) {
  pqs__cancel_job_t *job = ctx->cancel.job;
  if (ctx->cancel.state != PQS__CANCEL_SENDING)
    return;
  uv_mutex_lock(&job->lock);
  job->notify = NULL;
  uv_mutex_unlock(&job->lock);
  job_unref(job);
  ctx->cancel.job = NULL;
  ctx->cancel.state = PQS__CANCEL_IDLE;
}

/* SENDING -> IDLE: the thread is done, back on the loop. */
static void on_cancel_done(uv_async_t *async) {
  pqs_ctx_t *ctx = async->data;
  if (ctx->cancel.state != PQS__CANCEL_SENDING)
    return; /* a wake-up from a request already let go */
  job_unref(ctx->cancel.job);
  ctx->cancel.job = NULL;
  ctx->cancel.state = PQS__CANCEL_IDLE;
  pqs__op_maybe_finish(ctx);
}

int pqs__cancel_init(pqs_ctx_t *ctx) {
  int rc = uv_async_init(ctx->loop, &ctx->cancel.async, on_cancel_done);
  if (rc != 0)
    return rc;
  ctx->cancel.async.data = ctx;
  /* Never what keeps the loop alive: a stopping op's deadline timer is. */
  uv_unref((uv_handle_t *)&ctx->cancel.async);
  return 0;
}
