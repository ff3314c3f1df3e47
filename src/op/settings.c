/* What the session's settings are, for the text of binary values: the
 * server reports DateStyle and TimeZone as they change, but not
 * extra_float_digits or bytea_output, which float8out, float4out and
 * byteaout follow. A binary result is the only one whose text pqstream
 * writes itself, so the first op with binary results asks for them, as a
 * step of its own before the op's kind begins (each kind whose results
 * may be binary asks, when it sends its first step):
 *
 *   SETTINGS --one row--> the op's own kind and first step
 *
 * They are known until the session may have changed them (results.c,
 * pqs__ctx_tag_seen): a SET, RESET or DISCARD, or the end of a
 * transaction block they were learned in (a SET LOCAL's value ends with
 * it). set_config() in a query is not seen; a SET is, however it came
 * (exec, a batch, a script). */
#include <stdlib.h>
#include <string.h>

#include "kind.h"

static int settings_send(pqs__op_t *op) {
  return PQsendQueryParams(
      op->ctx->conn,
      "SELECT pg_catalog.current_setting('extra_float_digits'),"
      " pg_catalog.current_setting('bytea_output')",
      0, NULL, NULL, NULL, NULL, 0);
}

/* The row: both settings, or the server's defaults for what does not
 * read (a server that returns something else is not one we know). */
static void learn(pqs_ctx_t *ctx, const PGresult *res) {
  pqs__text_settings_t t = PQS__TEXT_SETTINGS_DEFAULT;
  if (PQntuples(res) == 1 && PQnfields(res) == 2) {
    char *end;
    long efd = strtol(PQgetvalue(res, 0, 0), &end, 10);
    if (*end == '\0' && efd >= -15 && efd <= 3)
      t.efd = (int)efd;
    t.bytea_escape = strcmp(PQgetvalue(res, 0, 1), "escape") == 0;
  }
  ctx->text = t;
  ctx->text_known = PQtransactionStatus(ctx->conn) == PQTRANS_IDLE
                        ? PQS__TEXT_KNOWN
                        : PQS__TEXT_KNOWN_IN_TX;
}

static int settings_take(pqs__op_t *op, PGresult *res) {
  if (PQresultStatus(res) == PGRES_TUPLES_OK) {
    op->final = 1;
    learn(op->ctx, res);
    return PQS__CONTINUE;
  }
  return pqs__op_take_common(op, res, 0);
}

/* SETTINGS -> the op's kind, at its first step. */
static pqs__next_t settings_next(pqs__op_t *op) {
  if (!pqs__op_step_ok(op) || op->ctx->text_known == PQS__TEXT_UNKNOWN)
    return PQS__NEXT_END;
  op->kind = op->after;
  op->step = op->after_step;
  return PQS__NEXT_SEND;
}

/* What the op's kind holds goes with it, whichever runs. */
static void settings_free(pqs__op_t *op) {
  if (op->after->free != NULL)
    op->after->free(op);
}

static const pqs__kind_t settings_kind = {
    .name = "settings",
    .send = settings_send,
    .take = settings_take,
    .next = settings_next,
    .free = settings_free,
};

int pqs__settings_first(pqs__op_t *op) {
  if (!op->binary || op->ctx->text_known != PQS__TEXT_UNKNOWN)
    return 0;
  /* The kind's own state (op->k) stays as it is: this kind has none. */
  op->after = op->kind;
  op->after_step = op->step;
  op->kind = &settings_kind;
  op->step = 0;
  return 1;
}
