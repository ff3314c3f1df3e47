/* The context: opening the connection on the loop, closing, thread rule. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "conninfo.h"
#include "ctx_int.h"
#include "error_int.h"
#include "stmt_cache.h"

int pqs__ctx_on_thread(const pqs_ctx_t *ctx) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &ctx->thread);
}

static void on_defer(uv_timer_t *timer) {
  pqs_ctx_t *ctx = timer->data;
  if (ctx->state == PQS__CTX_RESOLVING)
    pqs__resolve_kick(ctx);
  else if (ctx->state == PQS__CTX_CONNECTING)
    pqs__ctx_connect_step(ctx);
  else if (ctx->op != NULL)
    pqs__op_kick(ctx);
}

/* Runs the pending work of the context on the next loop turn, so that no
 * callback ever runs from inside the public call that caused it. */
void pqs__ctx_defer(pqs_ctx_t *ctx) {
  if (!pqs__ctx_closing(ctx))
    uv_timer_start(&ctx->defer, on_defer, 0, 0);
}

/* As pqs__ctx_defer, `ms` from now, unless work is already pending. */
void pqs__ctx_defer_ms(pqs_ctx_t *ctx, unsigned ms) {
  if (!pqs__ctx_closing(ctx) && !uv_is_active((uv_handle_t *)&ctx->defer))
    uv_timer_start(&ctx->defer, on_defer, ms, 0);
}

/* ---- notices ---- */

static void on_notice(void *arg, const PGresult *res) {
  pqs_ctx_t *ctx = arg;
  pqs_error_t n;
  pqs__error_view(res, &n);
  if (n.message == NULL)
    n.message = PQresultErrorMessage(res);
  ctx->opts.on_notice(ctx, &n, ctx->opts.notice_data);
}

/* Notices go to the user's callback while this context has the
 * connection; a connection given back to a pool gets libpq's again. */
static void take_notices(pqs_ctx_t *ctx) {
  if (ctx->opts.on_notice != NULL && ctx->conn != NULL)
    ctx->prev_notice = PQsetNoticeReceiver(ctx->conn, on_notice, ctx);
}

static void give_back_notices(pqs_ctx_t *ctx, PGconn *conn) {
  if (ctx->prev_notice != NULL)
    PQsetNoticeReceiver(conn, ctx->prev_notice, NULL);
}

/* ---- connecting: CONNECTING -> READY | BROKEN ---- */

/* The open callback, exactly once: from here, or from pqs__ctx_maybe_free
 * if the context is closed first. */
static void report_open(pqs_ctx_t *ctx, int status, const char *why) {
  pqs_error_t err, *errp = NULL;
  char *store = NULL;
  if (status != 0) {
    if (pqs__error_from_conn(ctx->conn, &err, &store) == 0)
      pqs__scrub_all(store, ctx->secrets); /* PQpass may not know it */
    if (why != NULL)
      err.message = why;
    errp = &err;
  }
  pqs_open_cb cb = ctx->open_cb;
  ctx->open_cb = NULL;
  cb(ctx, status, errp, ctx->open_data);
  pqs__free(store);
}

/* Why the context could not go on: out of memory says so; anything else
 * is libpq's to explain. */
static int open_failure(int rc) {
  return rc == PQS_ENOMEM ? PQS_ENOMEM : PQS_ECONNECT;
}

static const char *open_reason(const pqs_ctx_t *ctx, int status) {
  switch (status) {
  case PQS_ETIMEDOUT:
    return ctx->state == PQS__CTX_RESOLVING
               ? "timeout expired while resolving the host name"
               : "timeout expired while connecting";
  case PQS_ENOMEM:
    return "out of memory";
  default:
    return NULL; /* libpq's message */
  }
}

/* CONNECTING -> READY, or BROKEN if the socket cannot be watched. */
static void connected(pqs_ctx_t *ctx) {
  assert(ctx->state == PQS__CTX_CONNECTING);
  uv_timer_stop(&ctx->timer);
  /* An adopted connection has no poll handle on this loop yet. */
  int rc = pqs__io_attach(ctx);
  if (rc == 0 && PQsetnonblocking(ctx->conn, 1) != 0)
    rc = PQS_ECONNECT;
  if (rc != 0) {
    pqs__io_detach(ctx);
    ctx->state = PQS__CTX_BROKEN;
    report_open(ctx, open_failure(rc), open_reason(ctx, open_failure(rc)));
    return;
  }
  pqs__io_watch(ctx, 0);
  ctx->state = PQS__CTX_READY;
  report_open(ctx, 0, NULL);
}

/* RESOLVING | CONNECTING -> BROKEN. */
static void connect_failed(pqs_ctx_t *ctx, int status) {
  assert(ctx->state == PQS__CTX_RESOLVING ||
         ctx->state == PQS__CTX_CONNECTING);
  const char *why = open_reason(ctx, status);
  uv_timer_stop(&ctx->timer);
  pqs__resolve_let_go(ctx); /* a timeout while resolving */
  pqs__io_watch(ctx, 0);
  pqs__io_detach(ctx);
  ctx->state = PQS__CTX_BROKEN;
  report_open(ctx, status, why);
}

static void watch_socket(pqs_ctx_t *ctx, int events) {
  int rc = pqs__io_attach(ctx);
  if (rc != 0) {
    connect_failed(ctx, open_failure(rc));
    return;
  }
  pqs__io_watch(ctx, events);
}

/* One step of PQconnectPoll, then watch what it asks for. */
void pqs__ctx_connect_step(pqs_ctx_t *ctx) {
  switch (PQconnectPoll(ctx->conn)) {
  case PGRES_POLLING_OK:
    connected(ctx);
    break;
  case PGRES_POLLING_READING:
    watch_socket(ctx, UV_READABLE);
    break;
  case PGRES_POLLING_WRITING:
    watch_socket(ctx, UV_WRITABLE);
    break;
  default:
    connect_failed(ctx, PQS_ECONNECT);
    break;
  }
}

static void on_connect_timeout(uv_timer_t *timer) {
  pqs_ctx_t *ctx = timer->data;
  if (ctx->state == PQS__CTX_RESOLVING || ctx->state == PQS__CTX_CONNECTING)
    connect_failed(ctx, PQS_ETIMEDOUT);
}

/* libpq with pqstream's defaults, the user's conninfo, and, once host
 * names are resolved, the host/hostaddr/port lists that replace theirs
 * (later values win). */
static PGconn *start_libpq(const char *conninfo, const char *host,
                           const char *hostaddr, const char *port) {
  const char *const *defaults;
  const char *keys[PQS__CONNINFO_NPARAMS + 4];
  const char *vals[PQS__CONNINFO_NPARAMS + 4];
  pqs__conninfo_params(conninfo, &defaults, vals);
  int n = 0;
  for (; defaults[n] != NULL; n++)
    keys[n] = defaults[n];
  if (host != NULL) {
    keys[n] = "host", vals[n++] = host;
    keys[n] = "hostaddr", vals[n++] = hostaddr;
    keys[n] = "port", vals[n++] = port;
  }
  keys[n] = vals[n] = NULL;
  return PQconnectStartParams(keys, vals, 1);
}

/* The caller's deadline, else the conninfo's connect_timeout (or
 * PGCONNECT_TIMEOUT), else ours: libpq does not time a connection it
 * does not drive itself, and would wait forever without one. */
static void start_timer(pqs_ctx_t *ctx, const char *conninfo) {
  uv_timer_start(&ctx->timer, on_connect_timeout,
                 pqs__connect_deadline_ms(ctx->opts.connect_timeout_ms,
                                          conninfo),
                 0);
}

/* Starts the connection: at once, or once the host names are resolved
 * off the loop (libpq's own getaddrinfo would block it). */
static int connect_start(pqs_ctx_t *ctx, const char *conninfo) {
  int started;
  int rc = pqs__resolve_start(ctx, conninfo, &started);
  if (rc != 0)
    return rc;
  if (started) {
    if ((ctx->conninfo = pqs__strdup(conninfo)) == NULL) {
      pqs__resolve_let_go(ctx);
      return PQS_ENOMEM;
    }
    ctx->state = PQS__CTX_RESOLVING;
    start_timer(ctx, conninfo); /* the wait for names counts */
    return 0;
  }
  ctx->conn = start_libpq(conninfo, NULL, NULL, NULL);
  if (ctx->conn == NULL)
    return PQS_ENOMEM;
  take_notices(ctx);
  start_timer(ctx, conninfo);
  if (PQstatus(ctx->conn) == CONNECTION_BAD || PQsocket(ctx->conn) < 0) {
    pqs__ctx_defer(ctx); /* PQconnectPoll will say why, from the loop */
    return 0;
  }
  /* A resource failure here is returned, never called back from inside
   * pqs_ctx_open. */
  rc = pqs__io_attach(ctx);
  if (rc == 0)
    pqs__io_watch(ctx, UV_WRITABLE); /* as libpq's docs prescribe */
  return rc;
}

/* RESOLVING -> CONNECTING, with the addresses. */
void pqs__ctx_connect_resolved(pqs_ctx_t *ctx, const char *host,
                               const char *hostaddr, const char *port) {
  assert(ctx->state == PQS__CTX_RESOLVING);
  ctx->state = PQS__CTX_CONNECTING;
  ctx->conn = start_libpq(ctx->conninfo, host, hostaddr, port);
  pqs__free(ctx->conninfo);
  ctx->conninfo = NULL;
  if (ctx->conn == NULL) {
    connect_failed(ctx, PQS_ENOMEM);
    return;
  }
  take_notices(ctx);
  if (PQstatus(ctx->conn) == CONNECTION_BAD || PQsocket(ctx->conn) < 0)
    pqs__ctx_connect_step(ctx); /* PQconnectPoll says why */
  else
    watch_socket(ctx, UV_WRITABLE);
}

/* RESOLVING -> BROKEN. */
void pqs__ctx_resolve_failed(pqs_ctx_t *ctx, int status, const char *why) {
  assert(ctx->state == PQS__CTX_RESOLVING);
  uv_timer_stop(&ctx->timer);
  ctx->state = PQS__CTX_BROKEN;
  report_open(ctx, status == PQS_ENOMEM ? PQS_ENOMEM : PQS_ECONNECT, why);
}

static pqs_ctx_t *ctx_new(uv_loop_t *loop, const pqs_ctx_opts_t *opts,
                          pqs_open_cb cb, void *data) {
  pqs_ctx_t *ctx = pqs__calloc(1, sizeof(*ctx));
  if (ctx == NULL)
    return NULL;
  ctx->loop = loop;
  if (opts != NULL)
    ctx->opts = *opts;
  unsigned threshold = ctx->opts.prepare_threshold;
  if (threshold != PQS_PREPARE_NEVER &&
      (ctx->stmts = pqs__stmts_new(ctx->opts.statement_cache_size,
                                   threshold ? threshold : 5)) == NULL) {
    pqs__free(ctx);
    return NULL;
  }
  if (pqs__cancel_init(ctx) != 0) { /* the one handle that can fail */
    pqs__stmts_free(ctx->stmts);
    pqs__free(ctx);
    return NULL;
  }
  ctx->thread = uv_thread_self();
  ctx->state = PQS__CTX_CONNECTING;
  ctx->open_cb = cb;
  ctx->open_data = data;
  uv_timer_init(loop, &ctx->timer);
  uv_timer_init(loop, &ctx->defer);
  uv_timer_init(loop, &ctx->tick);
  ctx->timer.data = ctx;
  ctx->defer.data = ctx;
  ctx->tick.data = ctx;
  ctx->handles = 4;
  return ctx;
}

int pqs_ctx_open(pqs_ctx_t **out, uv_loop_t *loop, const char *conninfo,
                 const pqs_ctx_opts_t *opts, pqs_open_cb cb, void *data) {
  if (out == NULL || loop == NULL || conninfo == NULL || cb == NULL)
    return PQS_EINVAL;
  pqs_ctx_t *ctx = ctx_new(loop, opts, cb, data);
  if (ctx == NULL)
    return PQS_ENOMEM;
  int rc = pqs__secrets_of(conninfo, &ctx->secrets);
  if (rc == 0)
    rc = connect_start(ctx, conninfo);
  if (rc != 0) {
    /* Nothing was reported yet: close quietly, as if never opened. */
    ctx->open_cb = NULL;
    pqs__ctx_close_now(ctx, 0);
    return rc;
  }
  *out = ctx;
  return 0;
}

/* Adopted: the same CONNECTING -> READY transition, from the loop, where
 * PQconnectPoll answers OK at once and the socket is attached. */
int pqs__ctx_adopt(pqs_ctx_t **out, uv_loop_t *loop, PGconn *conn,
                   const pqs_ctx_opts_t *opts, pqs_open_cb cb, void *data) {
  pqs_ctx_t *ctx = ctx_new(loop, opts, cb, data);
  if (ctx == NULL)
    return PQS_ENOMEM;
  ctx->conn = conn;
  take_notices(ctx);
  pqs__ctx_defer(ctx);
  *out = ctx;
  return 0;
}

void pqs__ctx_set_owner(pqs_ctx_t *ctx, const pqs__owner_vt_t *vt,
                        void *owner) {
  ctx->owner_vt = vt;
  ctx->owner = owner;
}

/* ---- closing: any state -> CLOSING -> freed ---- */

void pqs__ctx_handle_closed(uv_handle_t *handle) {
  pqs_ctx_t *ctx = handle->data;
  ctx->handles--;
  pqs__ctx_maybe_free(ctx);
}

/* ---- who may start an operation ---- */

int pqs__ctx_check_ready(const pqs_ctx_t *ctx) {
  /* The thread is checked before any mutable field is read. */
  if (!pqs__ctx_on_thread(ctx))
    return PQS_ETHREAD;
  switch (ctx->state) {
  case PQS__CTX_READY:
    return 0;
  case PQS__CTX_RESOLVING:
  case PQS__CTX_CONNECTING:
  case PQS__CTX_BUSY:
    return PQS_EBUSY;
  case PQS__CTX_BROKEN:
    return PQS_EBROKEN;
  default: /* resetting, releasing, closing */
    return PQS_ESTATE;
  }
}

int pqs__ctx_set_close_hook(pqs_ctx_t *ctx, void (*fn)(void *), void *data) {
  if (fn != NULL && ctx->close_hook != NULL)
    return PQS_EBUSY;
  ctx->close_hook = fn;
  ctx->close_hook_data = data;
  return 0;
}

int pqs__ctx_closing(const pqs_ctx_t *ctx) {
  return ctx->state == PQS__CTX_CLOSING || ctx->state == PQS__CTX_RELEASING;
}

int pqs_ctx_close(pqs_ctx_t *ctx, pqs_close_cb cb) {
  if (ctx == NULL)
    return 0;
  if (!pqs__ctx_on_thread(ctx))
    return PQS_ETHREAD;
  if (ctx->close_hook != NULL && !pqs__ctx_closing(ctx) &&
      ctx->state != PQS__CTX_RESET_ROLLBACK &&
      ctx->state != PQS__CTX_RESET_DISCARD) {
    void (*hook)(void *) = ctx->close_hook;
    ctx->close_hook = NULL; /* once */
    hook(ctx->close_hook_data);
  }
  switch (ctx->state) {
  case PQS__CTX_RESET_ROLLBACK:
  case PQS__CTX_RESET_DISCARD:
  case PQS__CTX_RELEASING:
  case PQS__CTX_CLOSING:
    return PQS_ESTATE;
  case PQS__CTX_READY:
    ctx->close_cb = cb;
    if (ctx->owner_vt != NULL && ctx->owner_vt->reset_first)
      pqs__ctx_reset(ctx); /* then back to its owner, or closed */
    else
      pqs__ctx_close_now(ctx, ctx->owner_vt != NULL);
    return 0;
  default:
    ctx->close_cb = cb;
    pqs__ctx_close_now(ctx, 0);
    return 0;
  }
}

void pqs__ctx_close_now(pqs_ctx_t *ctx, int keep) {
  ctx->state = keep ? PQS__CTX_RELEASING : PQS__CTX_CLOSING;
  if (ctx->op != NULL)
    pqs__op_abandon(ctx); /* cancels on the server; on_done comes last */
  /* A cancel still on its way is waited for if it has a deadline (its
   * socket and thread are gone before the close callback), let go of
   * otherwise: it can hit no later query once the connection closes. */
  pqs__cancel_close(ctx);
  pqs__resolve_let_go(ctx); /* an answer still to come connects nothing */
  pqs__io_detach(ctx);
  uv_close((uv_handle_t *)&ctx->timer, pqs__ctx_handle_closed);
  uv_close((uv_handle_t *)&ctx->defer, pqs__ctx_handle_closed);
  uv_close((uv_handle_t *)&ctx->tick, pqs__ctx_handle_closed);
}

/* The connection's end: given back to its owner, or closed. */
static void release_conn(pqs_ctx_t *ctx) {
  PGconn *conn = ctx->conn;
  ctx->conn = NULL;
  if (ctx->state == PQS__CTX_RELEASING) {
    give_back_notices(ctx, conn);
  } else {
    PQfinish(conn);
    conn = NULL;
  }
  if (ctx->owner_vt != NULL)
    ctx->owner_vt->release(ctx->owner, conn);
}

/* Frees the context once nothing refers to it any more: every handle
 * closed (a cancel thread still running was let go of). The callbacks owed
 * to the user run here, in the order they were started. */
void pqs__ctx_maybe_free(pqs_ctx_t *ctx) {
  if (!pqs__ctx_closing(ctx) || ctx->handles > 0)
    return;
  if (ctx->open_cb != NULL)
    report_open(ctx, PQS_ECANCELED, "context closed while connecting");
  if (ctx->op != NULL)
    pqs__op_end_abandoned(ctx);
  pqs_close_cb close_cb = ctx->close_cb;
  void *data = ctx->data;
  release_conn(ctx);
  if (close_cb != NULL)
    close_cb(ctx, data);
  pqs__resolve_let_go(ctx);
  pqs__free(ctx->conninfo);
  pqs__free(ctx->secrets);
  pqs__stmts_free(ctx->stmts);
  pqs__free(ctx);
}

/* READY -> BROKEN if the session is inside a transaction: one that a
 * batch or the transaction helper opened and could not end (no memory for
 * its ROLLBACK) is closed rather than handed on. */
void pqs__ctx_break_in_transaction(pqs_ctx_t *ctx) {
  if (ctx->state != PQS__CTX_READY ||
      PQtransactionStatus(ctx->conn) == PQTRANS_IDLE)
    return;
  pqs__io_detach(ctx);
  PQfinish(ctx->conn);
  ctx->conn = NULL; /* an owner gets nothing back: its place is freed */
  ctx->state = PQS__CTX_BROKEN;
}

/* ---- accessors ---- */

int pqs_ctx_is_broken(const pqs_ctx_t *ctx) {
  return ctx->state == PQS__CTX_BROKEN;
}

int pqs_ctx_is_busy(const pqs_ctx_t *ctx) {
  return ctx->state == PQS__CTX_BUSY;
}

int pqs_ctx_backend_pid(const pqs_ctx_t *ctx) {
  return ctx->conn && PQstatus(ctx->conn) == CONNECTION_OK
             ? PQbackendPID(ctx->conn)
             : 0;
}

unsigned pqs__ctx_grace_ms(const pqs_ctx_t *ctx) {
  return ctx->opts.cancel_grace_ms ? ctx->opts.cancel_grace_ms : 5000;
}

uv_loop_t *pqs_ctx_loop(const pqs_ctx_t *ctx) { return ctx->loop; }
void *pqs_ctx_get_data(const pqs_ctx_t *ctx) { return ctx->data; }
void pqs_ctx_set_data(pqs_ctx_t *ctx, void *data) { ctx->data = data; }
