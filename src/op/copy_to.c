/* The COPY TO kind: a COPY ... TO STDOUT statement of the caller's own,
 * read as its data. Each message the server sends (a line, in the text
 * and CSV formats) is a row of one column, copy_data, whose value is the
 * bytes as sent; every sink writes such a row as it is, in any format,
 * with no header or footer of its own, so a stream of it is byte for
 * byte the COPY's output, whatever its options (delimiter, header,
 * binary).
 *
 *   COMMAND --PGRES_COPY_OUT--> DATA (messages, not results) --their end-->
 *   COMMAND (its result: "COPY n") --> done
 *   COMMAND --PGRES_COPY_IN (a COPY FROM STDIN)--> refused as the engine
 *   refuses any COPY it did not ask for: PQS_EINVAL (pqs_copy_in loads) */
#include <string.h>

#include "kind.h"

enum { COMMAND, DATA };

static const char *const names[] = {"copy_data"};
static const uint32_t types[] = {25}; /* text (binary COPY: its bytes) */

static int copy_to_send(pqs__op_t *op) { return pqs__rows_send(op, op->sql); }

/* COMMAND -> DATA: the one column, announced. */
static int started(pqs__op_t *op) {
  pqs__schema_t s = {.ncols = 1, .names = names, .types = types,
                     .text = PQS__TEXT_SETTINGS_DEFAULT, .nfields = 1,
                     .raw_copy = 1};
  op->step = DATA;
  if ((op->schema = pqs__schema_copy(&s)) == NULL)
    return PQS_ENOMEM;
  return op->state == PQS__OP_STOPPING ? PQS__CONTINUE
                                       : pqs__op_deliver_columns(op, NULL);
}

static int copy_to_take(pqs__op_t *op, PGresult *res) {
  ExecStatusType st = PQresultStatus(res);
  if (op->step == COMMAND && st == PGRES_COPY_OUT)
    return started(op);
  if (op->step == COMMAND && st == PGRES_COPY_IN) /* refused as any COPY
                                                    the engine did not ask
                                                    for, in these words */
    op->err.message = "COPY ... FROM STDIN is not read by pqs_query: load "
                      "with pqs_copy_in";
  return pqs__op_take_common(op, res, 1);
}

/* One message as a row: its bytes are the row's value and its line. */
static int deliver(pqs__op_t *op, char *msg, int n) {
  pqs__cell_t cell = {msg, n};
  pqs_row_t row = {.schema = op->schema, .cells = &cell, .line = msg,
                   .line_len = (size_t)n, .line_format = PQS__LINE_RAW};
  pqs__arena_reset(&op->arena);
  row.arena = &op->arena;
  op->rows++;
  return op->consumer_vt->row(op->consumer, &row);
}

/* DATA: the next message, as copy_out.c reads them. */
static int copy_to_pump(pqs__op_t *op) {
  if (op->step != DATA)
    return PQS__RESULTS;
  char *msg;
  int n = op->lost ? -2 : PQgetCopyData(op->ctx->conn, &msg, 1);
  if (n > 0) {
    int rc = op->state == PQS__OP_STOPPING ? PQS__CONTINUE
                                           : deliver(op, msg, n);
    PQfreemem(msg);
    return rc;
  }
  if (n == 0)
    return PQS__WAIT;
  op->step = COMMAND; /* DATA -> COMMAND: its result follows */
  return pqs__op_copy_data_end(op, n);
}

/* libpq 15, out of memory for COPY's start, stays busy: see engine.c. */
static pqs__busy_t copy_to_busy(pqs__op_t *op) {
  return op->step == COMMAND ? PQS__BUSY_PROBE : PQS__BUSY_WAIT;
}

const pqs__kind_t pqs__kind_copy_to = {
    .name = "copy_to",
    .send = copy_to_send,
    .pump = copy_to_pump,
    .take = copy_to_take,
    .busy = copy_to_busy,
};
