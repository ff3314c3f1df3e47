/* The listen kind: LISTEN/NOTIFY as a stream. The LISTENs are the op's
 * first step, then each notification libpq parses is delivered as a row
 * (channel, payload, pid):
 *
 *   LISTEN --results end well--> LISTENING (notifications, no results)
 *   LISTENING --stop--> UNLISTEN (UNLISTEN *) --its results end--> done,
 *                                             the context reusable
 *   LISTENING --connection lost--> LISTEN (whose results, none, end it) */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "kind.h"

enum { LISTEN, LISTENING, UNLISTEN };

static const char *const names[] = {"channel", "payload", "pid"};
static const uint32_t types[] = {PQS_OID_TEXT, PQS_OID_TEXT, PQS_OID_INT4};

/* "LISTEN "a"; LISTEN "b"" with each name quoted by libpq. */
static int listen_sql(PGconn *conn, const char *const *channels, int n,
                      char **out) {
  pqs__buf_t b = {0};
  int rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    if (channels[i] == NULL || channels[i][0] == '\0') {
      rc = PQS_EINVAL;
      break;
    }
    char *quoted = PQescapeIdentifier(conn, channels[i], strlen(channels[i]));
    if (quoted == NULL) {
      rc = PQS_EINVAL; /* not valid in the connection's encoding */
      break;
    }
    rc = pqs__buf_append(&b, i ? "; LISTEN " : "LISTEN ", i ? 9 : 7);
    rc = rc ? rc : pqs__buf_append(&b, quoted, strlen(quoted));
    PQfreemem(quoted);
  }
  rc = rc ? rc : pqs__buf_append(&b, "", 1);
  if (rc != 0) {
    pqs__buf_free(&b);
    return rc;
  }
  *out = b.data;
  return 0;
}

static int listen_schema(pqs__op_t *op) {
  pqs__schema_t s = {.ncols = 3, .names = names, .types = types,
                     .text = PQS__TEXT_SETTINGS_DEFAULT, .nfields = 3};
  op->schema = pqs__schema_copy(&s);
  return op->schema ? 0 : PQS_ENOMEM;
}

/* A notification as a row of the op's cells (valid until the next). */
static void listen_row(pqs__op_t *op, const PGnotify *n, pqs_row_t *row) {
  pqs__listen_t *l = &op->k.listen;
  snprintf(l->pid, sizeof(l->pid), "%d", n->be_pid);
  l->cells[0] = (pqs__cell_t){n->relname, (int)strlen(n->relname)};
  l->cells[1] = (pqs__cell_t){n->extra, (int)strlen(n->extra)};
  l->cells[2] = (pqs__cell_t){l->pid, (int)strlen(l->pid)};
  *row = (pqs_row_t){.schema = op->schema, .cells = l->cells};
}

/* ---- the kind ---- */

static int listen_send(pqs__op_t *op) {
  return PQsendQuery(op->ctx->conn,
                     op->step == UNLISTEN ? "UNLISTEN *" : op->sql);
}

/* Hot path of a listen stream: the next notification libpq holds, as an
 * answer code (PQS__WAIT: none yet). A lost connection ends it: the
 * results (none) then end the op with PQS_ECONNLOST. */
static int listen_pump(pqs__op_t *op) {
  if (op->step != LISTENING)
    return PQS__RESULTS;
  if (op->lost || PQstatus(op->ctx->conn) == CONNECTION_BAD) {
    op->step = LISTEN; /* LISTENING -> LISTEN: its results end it */
    return PQS__CONTINUE;
  }
  PGnotify *n = PQnotifies(op->ctx->conn);
  if (n == NULL)
    return PQS__WAIT;
  pqs_row_t row;
  listen_row(op, n, &row);
  op->rows++;
  int rc = op->consumer_vt->row(op->consumer, &row);
  PQfreemem(n);
  return rc;
}

static int listen_take(pqs__op_t *op, PGresult *res) {
  return pqs__op_take_common(op, res, 0);
}

/* The LISTENs are done: LISTEN -> LISTENING, and notifications flow, as
 * rows, from now on. */
static pqs__next_t listen_next(pqs__op_t *op) {
  if (op->step != LISTEN || !pqs__op_step_ok(op))
    return PQS__NEXT_END;
  op->step = LISTENING;
  int rc = listen_schema(op);
  rc = rc ? rc : pqs__op_deliver_columns(op, NULL);
  pqs__op_answer(op, rc);
  pqs__op_watch(op);
  pqs__ctx_defer(op->ctx); /* some may have come with the results */
  return PQS__NEXT_HELD;
}

/* LISTENING, stopped: nothing runs on the server to cancel; UNLISTEN *
 * leaves the session as it was, and its results end the op. */
static int listen_stop(pqs__op_t *op) {
  if (op->step != LISTENING)
    return 0;
  op->step = UNLISTEN;
  if (op->lost || !listen_send(op))
    pqs__ctx_defer(op->ctx); /* libpq says why, from the loop */
  else
    pqs__op_flush(op);
  return 1;
}

static int listen_cancellable(const pqs__op_t *op) {
  return op->step != UNLISTEN; /* a cancel would stop the UNLISTEN */
}

const pqs__kind_t pqs__kind_listen = {
    .name = "listen",
    .send = listen_send,
    .pump = listen_pump,
    .take = listen_take,
    .next = listen_next,
    .stop = listen_stop,
    .cancellable = listen_cancellable,
};

int pqs__listen_begin(pqs_ctx_t *ctx, const char *const *channels, int n,
                      pqs__op_t **out) {
  if (channels == NULL || n < 1)
    return PQS_EINVAL;
  char *sql;
  int rc = listen_sql(ctx->conn, channels, n, &sql);
  if (rc != 0)
    return rc;
  rc = pqs__op_begin(ctx, &pqs__kind_listen, sql, 0, NULL, NULL, 0, out);
  pqs__free(sql); /* the op has its copy */
  return rc;
}
