/* LISTEN/NOTIFY as a stream: the LISTEN sent as the op's first step, then
 * each notification libpq parses delivered as a row (channel, payload,
 * pid). query.c drives the steps: LISTEN --ok--> listening --stop-->
 * UNLISTEN * --its results end--> finished, the context reusable. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "ctx_int.h"

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

int pqs__listen_schema(pqs__op_t *op) {
  pqs__schema_t s = {3, names, types, 0};
  op->schema = pqs__schema_copy(&s);
  return op->schema ? 0 : PQS_ENOMEM;
}

void pqs__listen_row(pqs__op_t *op, const PGnotify *n, pqs_row_t *row) {
  pqs__listen_t *l = &op->ln;
  snprintf(l->pid, sizeof(l->pid), "%d", n->be_pid);
  l->cells[0] = (pqs__cell_t){n->relname, (int)strlen(n->relname)};
  l->cells[1] = (pqs__cell_t){n->extra, (int)strlen(n->extra)};
  l->cells[2] = (pqs__cell_t){l->pid, (int)strlen(l->pid)};
  *row = (pqs_row_t){.schema = op->schema, .cells = l->cells};
}

int pqs__listen_begin(pqs_ctx_t *ctx, const char *const *channels, int n,
                      pqs__op_t **out) {
  if (channels == NULL || n < 1)
    return PQS_EINVAL;
  char *sql;
  int rc = listen_sql(ctx->conn, channels, n, &sql);
  if (rc != 0)
    return rc;
  rc = pqs__op_begin(ctx, sql, 0, NULL, NULL, 0, out);
  pqs__free(sql); /* the op has its copy */
  if (rc == 0)
    (*out)->send = PQS__SEND_LISTEN;
  return rc;
}
