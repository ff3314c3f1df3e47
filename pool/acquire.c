/* A request for a context, on the requester's loop: waiting (timer),
 * being woken by whichever thread gave a connection back (async), then
 * adopting that connection, or opening a new one, as a context there. */
#include <assert.h>
#include <stdlib.h>

#include "../src/core.h"
#include "pool_int.h"

static void req_closed(uv_handle_t *h) {
  pqs_acquire_t *req = h->data;
  if (--req->handles == 0) {
    pqs__free(req->lease); /* only if never granted: a grant hands it on */
    pqs__free(req);
  }
}

static void req_close(pqs_acquire_t *req) {
  uv_close((uv_handle_t *)&req->async, req_closed);
  uv_close((uv_handle_t *)&req->timer, req_closed);
}

/* Any state but DONE -> DONE: the one callback of a request that ended
 * without a context. */
static void fail(pqs_acquire_t *req, int status, const pqs_error_t *err) {
  assert(req->side != PQS__AREQ_DONE);
  req->side = PQS__AREQ_DONE;
  req->cb(NULL, status, err, req->data);
  req_close(req);
}

/* OPENING | ABANDONED -> DONE. */
static void on_ctx_open(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                        void *data) {
  pqs_acquire_t *req = data;
  assert(req->side == PQS__AREQ_OPENING || req->side == PQS__AREQ_ABANDONED);
  if (status == 0 && req->side == PQS__AREQ_OPENING) {
    req->side = PQS__AREQ_DONE;
    req->cb(ctx, 0, NULL, req->data);
    req_close(req);
    return;
  }
  /* A failed connection is discarded; a good one a cancelled request no
   * longer wants goes back to the pool. */
  pqs_ctx_close(ctx, NULL);
  if (req->side == PQS__AREQ_ABANDONED)
    fail(req, PQS_ECANCELED, NULL);
  else
    fail(req, status, err);
}

static void on_new_open(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                        void *data) {
  pqs_acquire_t *req = data;
  if (status == 0)
    pqs__factory_opened(req->f);
  on_ctx_open(ctx, status, err, data);
}

/* A connection back to the pool, or, if NULL, its place to the next in
 * line: for a context's owner seam and for a grant nobody will use. */
static void lease_release(void *owner, PGconn *conn) {
  pqs__lease_t *lease = owner;
  if (conn)
    pqs__factory_put(lease, conn);
  else
    pqs__factory_discard(lease);
}

const pqs__owner_vt_t pqs__lease_owner = {.reset_first = 1,
                                          .release = lease_release};

/* WAITING -> OPENING: turns a grant into a context on this loop (or DONE
 * if it cannot start). */
static void take_grant(pqs_acquire_t *req, PGconn *conn, pqs__lease_t *lease) {
  assert(req->side == PQS__AREQ_WAITING);
  req->side = PQS__AREQ_OPENING;
  pqs_ctx_opts_t opts = {0};
  pqs__factory_ctx_opts(req->f, &opts);
  pqs_ctx_t *ctx = NULL;
  int rc = conn ? pqs__ctx_adopt(&ctx, req->loop, conn, &opts, on_ctx_open, req)
                : pqs_ctx_open(&ctx, req->loop, pqs__factory_conninfo(req->f),
                               &opts, on_new_open, req);
  if (rc != 0) {
    lease_release(lease, conn);
    fail(req, rc, NULL);
    return;
  }
  pqs__ctx_set_owner(ctx, &pqs__lease_owner, lease);
}

/* WAITING: a grant to claim. WITHDRAWN: the cancel's wake-up, or a grant
 * that raced it, given back. Other states: nothing is owed. */
static void on_granted(uv_async_t *async) {
  pqs_acquire_t *req = async->data;
  if (req->side != PQS__AREQ_WAITING && req->side != PQS__AREQ_WITHDRAWN)
    return;
  PGconn *conn;
  pqs__lease_t *lease;
  int claimed = pqs__factory_claim(req->f, req, &conn, &lease);
  if (claimed)
    uv_timer_stop(&req->timer);
  if (req->side == PQS__AREQ_WITHDRAWN) {
    if (claimed)
      lease_release(lease, conn);
    uv_timer_stop(&req->timer);
    fail(req, PQS_ECANCELED, NULL);
  } else if (claimed) {
    take_grant(req, conn, lease);
  }
}

/* WAITING -> DONE, unless a grant is on its way. */
static void on_timeout(uv_timer_t *timer) {
  pqs_acquire_t *req = timer->data;
  if (req->side != PQS__AREQ_WAITING)
    return;
  if (pqs__factory_dequeue(req->f, req)) {
    pqs_error_t err = {.message = "timed out waiting for a connection from "
                                  "the factory's pool"};
    fail(req, PQS_ETIMEDOUT, &err);
  }
}

void pqs__acquire_granted(pqs_acquire_t *req) { uv_async_send(&req->async); }

int pqs_factory_open_ctx_at(pqs_factory_t *f, uv_loop_t *loop,
                            pqs_acquire_t **reqp, pqs_open_cb cb, void *data,
                            const char *file, int line) {
  if (f == NULL || loop == NULL || cb == NULL)
    return PQS_EINVAL;
  pqs_acquire_t *req = pqs__calloc(1, sizeof(*req));
  pqs__lease_t *lease = pqs__calloc(1, sizeof(*lease));
  if (req == NULL || lease == NULL) {
    pqs__free(req);
    pqs__free(lease);
    return PQS_ENOMEM;
  }
  lease->file = file;
  lease->line = line;
  *req = (pqs_acquire_t){.f = f,
                         .loop = loop,
                         .thread = uv_thread_self(),
                         .cb = cb,
                         .data = data,
                         .file = file,
                         .line = line,
                         .lease = lease,
                         .handles = 2};
  int rc = uv_async_init(loop, &req->async, on_granted);
  if (rc != 0) { /* no handle yet: nothing to close */
    pqs__free(lease);
    pqs__free(req);
    return rc;
  }
  uv_timer_init(loop, &req->timer);
  req->async.data = req->timer.data = req;
  rc = pqs__factory_acquire(f, req);
  if (rc < 0) {
    req_close(req); /* no callback: the call failed */
    return rc;
  }
  if (rc == 1)
    uv_async_send(&req->async); /* granted: deliver from the loop */
  else
    uv_timer_start(&req->timer, on_timeout, pqs__factory_acquire_timeout(f), 0);
  if (reqp != NULL)
    *reqp = req;
  return 0;
}

int pqs_acquire_cancel(pqs_acquire_t *req) {
  if (req == NULL)
    return PQS_EINVAL;
  uv_thread_t self = uv_thread_self();
  if (!uv_thread_equal(&self, &req->thread))
    return PQS_ETHREAD;
  switch (req->side) {
  case PQS__AREQ_WAITING: /* WAITING -> WITHDRAWN */
    req->side = PQS__AREQ_WITHDRAWN;
    if (pqs__factory_dequeue(req->f, req))
      uv_async_send(&req->async); /* ECANCELED, from the loop */
    /* else a grant's wake-up is on its way, and gives it back */
    return 0;
  case PQS__AREQ_OPENING: /* OPENING -> ABANDONED */
    req->side = PQS__AREQ_ABANDONED;
    return 0;
  default:
    return PQS_ESTATE;
  }
}
