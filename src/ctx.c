/* The context: opening the connection on the loop, closing, thread rule. */
#include <stdlib.h>
#include <string.h>

#include "ctx_int.h"
#include "factory_int.h"

#define PQS__DEFAULT_CONNECT_TIMEOUT_MS 10000

int pqs__ctx_on_thread(const pqs_ctx_t *ctx) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &ctx->thread);
}

static void on_defer(uv_timer_t *timer) {
  pqs_ctx_t *ctx = timer->data;
  if (ctx->state == PQS__CTX_CONNECTING)
    pqs__ctx_connect_step(ctx);
  else if (ctx->op != NULL)
    pqs__op_kick(ctx);
}

/* Runs the pending work of the context on the next loop turn, so that no
 * callback ever runs from inside the public call that caused it. */
void pqs__ctx_defer(pqs_ctx_t *ctx) {
  if (ctx->state != PQS__CTX_CLOSING)
    uv_timer_start(&ctx->defer, on_defer, 0, 0);
}

/* ---- errors from libpq's message, with the password removed ---- */

static void scrub(char *msg, const char *secret) {
  size_t n = secret ? strlen(secret) : 0;
  if (n < 3) /* a shorter "password" would mangle ordinary words */
    return;
  for (char *p = strstr(msg, secret); p != NULL; p = strstr(p, secret))
    memset(p, '*', n);
}

int pqs__error_from_conn(PGconn *conn, pqs_error_t *err, char **store) {
  const char *msg = conn ? PQerrorMessage(conn) : NULL;
  if (msg == NULL || *msg == '\0')
    msg = "unknown libpq error";
  char *copy = strdup(msg);
  if (copy == NULL)
    return PQS_ENOMEM;
  size_t n = strlen(copy);
  while (n > 0 && (copy[n - 1] == '\n' || copy[n - 1] == ' '))
    copy[--n] = '\0';
  if (conn)
    scrub(copy, PQpass(conn));
  memset(err, 0, sizeof(*err));
  err->message = copy;
  *store = copy;
  return 0;
}

/* ---- notices ---- */

static void on_notice(void *arg, const PGresult *res) {
  pqs_ctx_t *ctx = arg;
  pqs_error_t n = {.severity = PQresultErrorField(res, PG_DIAG_SEVERITY),
                   .sqlstate = PQresultErrorField(res, PG_DIAG_SQLSTATE),
                   .message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
                   .detail = PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL),
                   .hint = PQresultErrorField(res, PG_DIAG_MESSAGE_HINT)};
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

static void give_back_notices(pqs_ctx_t *ctx) {
  if (ctx->prev_notice != NULL)
    PQsetNoticeReceiver(ctx->conn, ctx->prev_notice, NULL);
}

/* ---- connecting: CONNECTING -> READY | BROKEN ---- */

static void report_open(pqs_ctx_t *ctx, int status) {
  pqs_error_t err, *errp = NULL;
  char *store = NULL;
  if (status != 0 && pqs__error_from_conn(ctx->conn, &err, &store) == 0)
    errp = &err;
  if (status == PQS_ETIMEDOUT && errp != NULL)
    err.message = "timeout expired while connecting";
  ctx->open_pending = 0;
  ctx->open_cb(ctx, status, errp, ctx->open_data);
  free(store);
}

static void connected(pqs_ctx_t *ctx) {
  uv_timer_stop(&ctx->timer);
  /* An adopted connection has no poll handle on this loop yet. */
  if (pqs__io_attach(ctx) != 0 || PQsetnonblocking(ctx->conn, 1) != 0) {
    ctx->state = PQS__CTX_BROKEN;
    report_open(ctx, PQS_ECONNECT);
    return;
  }
  pqs__io_watch(ctx, 0);
  ctx->state = PQS__CTX_READY;
  report_open(ctx, 0);
}

static void connect_failed(pqs_ctx_t *ctx, int status) {
  uv_timer_stop(&ctx->timer);
  pqs__io_watch(ctx, 0);
  pqs__io_detach(ctx);
  ctx->state = PQS__CTX_BROKEN;
  report_open(ctx, status);
}

static void watch_socket(pqs_ctx_t *ctx, int events) {
  if (pqs__io_attach(ctx) != 0) {
    connect_failed(ctx, PQS_ECONNECT);
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
  if (ctx->state == PQS__CTX_CONNECTING)
    connect_failed(ctx, PQS_ETIMEDOUT);
}

/* Starts the connection. libpq resolves host names inside
 * PQconnectStartParams (getaddrinfo blocks); hostaddr= avoids it. */
static int connect_start(pqs_ctx_t *ctx, const char *conninfo) {
  const char *keys[] = {"dbname", NULL};
  const char *vals[] = {conninfo, NULL};
  ctx->conn = PQconnectStartParams(keys, vals, 1);
  if (ctx->conn == NULL)
    return PQS_ENOMEM;
  take_notices(ctx);
  unsigned ms = ctx->opts.connect_timeout_ms;
  uv_timer_start(&ctx->timer, on_connect_timeout,
                 ms ? ms : PQS__DEFAULT_CONNECT_TIMEOUT_MS, 0);
  if (PQstatus(ctx->conn) == CONNECTION_BAD || PQsocket(ctx->conn) < 0) {
    pqs__ctx_defer(ctx); /* PQconnectPoll will say why, from the loop */
    return 0;
  }
  /* A resource failure here is returned, never called back from inside
   * pqs_ctx_open. */
  int rc = pqs__io_attach(ctx);
  if (rc == 0)
    pqs__io_watch(ctx, UV_WRITABLE); /* as libpq's docs prescribe */
  return rc;
}

static pqs_ctx_t *ctx_new(uv_loop_t *loop, const pqs_ctx_opts_t *opts,
                          pqs_open_cb cb, void *data) {
  pqs_ctx_t *ctx = calloc(1, sizeof(*ctx));
  if (ctx == NULL)
    return NULL;
  ctx->loop = loop;
  ctx->thread = uv_thread_self();
  ctx->state = PQS__CTX_CONNECTING;
  if (opts != NULL)
    ctx->opts = *opts;
  ctx->open_cb = cb;
  ctx->open_data = data;
  ctx->open_pending = 1;
  uv_timer_init(loop, &ctx->timer);
  uv_timer_init(loop, &ctx->defer);
  ctx->timer.data = ctx;
  ctx->defer.data = ctx;
  ctx->handles = 2;
  return ctx;
}

int pqs_ctx_open(pqs_ctx_t **out, uv_loop_t *loop, const char *conninfo,
                 const pqs_ctx_opts_t *opts, pqs_open_cb cb, void *data) {
  if (out == NULL || loop == NULL || conninfo == NULL || cb == NULL)
    return PQS_EINVAL;
  pqs_ctx_t *ctx = ctx_new(loop, opts, cb, data);
  if (ctx == NULL)
    return PQS_ENOMEM;
  int rc = connect_start(ctx, conninfo);
  if (rc != 0) {
    /* Nothing was reported yet: close quietly, as if never opened. */
    ctx->open_pending = 0;
    pqs_ctx_close(ctx, NULL);
    return rc;
  }
  *out = ctx;
  return 0;
}

/* A context over a connection a factory already holds open: it goes
 * through the same CONNECTING -> READY transition, from the loop, where
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

void pqs__ctx_set_lease(pqs_ctx_t *ctx, pqs__lease_t *lease) {
  ctx->lease = lease;
}

/* ---- closing: any state -> CLOSING -> freed ---- */

static void timer_closed(uv_handle_t *handle) {
  pqs_ctx_t *ctx = handle->data;
  ctx->handles--;
  pqs__ctx_maybe_free(ctx);
}

int pqs_ctx_close(pqs_ctx_t *ctx, pqs_close_cb cb) {
  if (ctx == NULL)
    return PQS_EINVAL;
  if (!pqs__ctx_on_thread(ctx))
    return PQS_ETHREAD;
  if (ctx->state == PQS__CTX_CLOSING || ctx->recycling)
    return PQS_ESTATE;
  if (ctx->lease != NULL && ctx->state == PQS__CTX_READY)
    return pqs__ctx_recycle(ctx, cb); /* reset, then back to the pool */
  pqs__ctx_close_now(ctx, cb);
  return 0;
}

void pqs__ctx_close_now(pqs_ctx_t *ctx, pqs_close_cb cb) {
  ctx->state = PQS__CTX_CLOSING;
  ctx->close_cb = cb;
  if (ctx->op != NULL)
    pqs__op_abandon(ctx); /* cancels on the server; on_done comes last */
  pqs__io_detach(ctx);
  uv_close((uv_handle_t *)&ctx->timer, timer_closed);
  uv_close((uv_handle_t *)&ctx->defer, timer_closed);
}

/* The connection's end: closed, or given back to its factory. */
static void release_conn(pqs_ctx_t *ctx) {
  if (ctx->lease != NULL && ctx->keep_conn) {
    give_back_notices(ctx);
    pqs__factory_put(ctx->lease, ctx->conn);
    return;
  }
  PQfinish(ctx->conn);
  if (ctx->lease != NULL)
    pqs__factory_discard(ctx->lease);
}

/* Frees the context once nothing refers to it any more: every handle
 * closed and no cancel request left on the thread pool. The callbacks owed
 * to the user run here, in the order they were started. */
void pqs__ctx_maybe_free(pqs_ctx_t *ctx) {
  if (ctx->state != PQS__CTX_CLOSING || ctx->handles > 0 || ctx->cancel_pending)
    return;
  if (ctx->open_pending) {
    ctx->open_pending = 0;
    pqs_error_t err = {.message = "context closed while connecting"};
    ctx->open_cb(ctx, PQS_ECANCELED, &err, ctx->open_data);
  }
  if (ctx->op != NULL)
    pqs__op_end_abandoned(ctx);
  release_conn(ctx);
  if (ctx->close_cb != NULL)
    ctx->close_cb(ctx, ctx->data);
  free(ctx);
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

uv_loop_t *pqs_ctx_loop(const pqs_ctx_t *ctx) { return ctx->loop; }
void *pqs_ctx_get_data(const pqs_ctx_t *ctx) { return ctx->data; }
void pqs_ctx_set_data(pqs_ctx_t *ctx, void *data) { ctx->data = data; }
