/* The COPY out kind: a statement's rows read through COPY (...) TO
 * STDOUT instead of single-row mode. libpq 15 builds one PGresult per row
 * in single-row mode, which is most of the client's cost per row; COPY
 * hands over one buffer per row, which is split without allocating
 * (value/copy_text.c, value/copy_binary.c).
 *
 *   PREPARE --ok--> DESCRIBE --columns--> COMMAND --PGRES_COPY_OUT-->
 *   DATA (lines, not results) --their end--> COMMAND (its result) --> done
 *   DESCRIBE --no columns--> the rows kind (single-row mode after all)
 *   COMMAND, a value libpq will not escape --> the rows kind
 *
 * PREPARE and DESCRIBE are the describe kind's steps (describe.c): the
 * columns, and the types the server inferred for the parameters, which
 * the COPY binds as literals cast to them. */
#include <string.h>

#include "alloc.h"
#include "copy_text.h"
#include "error_int.h"
#include "kind.h"
#include "sqltext.h"

/* PREPARE and DESCRIBE first, as describe.c numbers them. */
enum { PREPARE, DESCRIBE, COMMAND, DATA };

static void copy_free(pqs__op_t *op) {
  pqs__free(op->k.copy.cells);
  pqs__free(op->k.copy.param_types);
  pqs__buf_free(&op->k.copy.scratch);
}

/* A consumer that writes lines in `format` takes COPY's own, in that
 * format; values read from them (a filter or tap) are split late, from
 * either format. */
static void copy_lines(pqs__op_t *op, int format) {
  if (format == PQS_FORMAT_JSONL)
    op->k.copy.json = 1;
  if (op->binary || (format != PQS_FORMAT_CSV && format != PQS_FORMAT_TSV))
    return;
  op->k.copy.lines = format + 1;
}

/* ---- after the Describe ---- */

static int described(pqs__op_t *op, const PGresult *res) {
  pqs__copy_t *cp = &op->k.copy;
  int nparams = PQnparams(res);
  op->schema = pqs__op_schema_of(op, res);
  if (op->schema == NULL)
    return PQS_ENOMEM;
  op->schema->binary = op->binary; /* described in text; sent as asked */
  if (cp->json && pqs__json_plan(op) != 0)
    return PQS_ENOMEM;
  int nfields = op->schema->nfields; /* the columns, and JSON after them */
  cp->cells = pqs__calloc(nfields > 0 ? nfields : 1, sizeof(*cp->cells));
  cp->param_types = pqs__calloc(nparams > 0 ? nparams : 1, sizeof(uint32_t));
  if (cp->cells == NULL || cp->param_types == NULL)
    return PQS_ENOMEM;
  for (int i = 0; i < nparams; i++)
    cp->param_types[i] = PQparamtype(res, i);
  return PQS__CONTINUE;
}

/* The rows kind from the next step on: the statement runs in single-row
 * mode after all. */
static void fall_back(pqs__op_t *op) {
  pqs__free(op->schema); /* the columns come with the result */
  op->schema = NULL;
  pqs__op_become(op, &pqs__kind_rows, 0);
}

/* ---- the COPY command ---- */

/* The name to cast a bound literal to, so that it has the type the
 * server inferred for $n; NULL leaves it untyped (unknown), which the
 * server resolves as it would have resolved the parameter. */
static const char *cast_name(uint32_t oid) {
  switch (oid) {
  case PQS_OID_BOOL:
    return "bool";
  case PQS_OID_BYTEA:
    return "bytea";
  case PQS_OID_INT8:
    return "int8";
  case PQS_OID_INT2:
    return "int2";
  case PQS_OID_INT4:
    return "int4";
  case PQS_OID_TEXT:
    return "text";
  case PQS_OID_JSON:
    return "json";
  case PQS_OID_FLOAT4:
    return "float4";
  case PQS_OID_FLOAT8:
    return "float8";
  case PQS_OID_DATE:
    return "date";
  case PQS_OID_TIMESTAMP:
    return "timestamp";
  case PQS_OID_TIMESTAMPTZ:
    return "timestamptz";
  case PQS_OID_NUMERIC:
    return "numeric";
  case PQS_OID_JSONB:
    return "jsonb";
  case 26:
    return "oid";
  case 1043:
    return "varchar";
  case 1083:
    return "time";
  case 1186:
    return "interval";
  case 2950:
    return "uuid";
  case 1007:
    return "int4[]";
  case 1016:
    return "int8[]";
  case 1009:
    return "text[]";
  default:
    return NULL;
  }
}

static int append(pqs__buf_t *b, const char *s) {
  return pqs__buf_append(b, s, strlen(s));
}

/* $n as a literal libpq escaped for this connection's encoding, in
 * parentheses so that it stands wherever $n could (FETCH FIRST (...)). */
static int put_param(int n, pqs__buf_t *out, void *data) {
  pqs__op_t *op = data;
  if (n < 1 || n > op->nparams)
    return PQS_EINVAL; /* the server refused it when it was prepared */
  const char *v = op->params[n - 1];
  const char *type = cast_name(op->k.copy.param_types[n - 1]);
  int rc = append(out, "(");
  if (rc == 0 && v == NULL) {
    rc = append(out, "NULL");
  } else if (rc == 0) {
    char *lit = PQescapeLiteral(op->ctx->conn, v, strlen(v));
    if (lit == NULL)
      return PQS_EINVAL; /* the connection's message says why */
    rc = append(out, lit);
    PQfreemem(lit);
  }
  if (rc == 0 && type != NULL)
    rc = append(out, "::pg_catalog.") || append(out, type) ? PQS_ENOMEM : 0;
  return rc ? rc : append(out, ")");
}

static int copy_command(pqs__op_t *op, pqs__buf_t *out) {
  size_t len = pqs__sql_trim_end(op->sql, strlen(op->sql));
  /* The newlines keep a final -- comment from swallowing the ')'. */
  int rc = append(out, "COPY (\n");
  rc = rc ? rc : pqs__json_head(op->schema, op->sql, out);
  rc = rc ? rc : pqs__sql_bind(op->sql, len, put_param, op, out);
  rc = rc ? rc : pqs__json_tail(op->schema, op->sql, out);
  rc = rc ? rc : append(out, "\n) TO STDOUT");
  if (rc == 0 && op->k.copy.lines == PQS_FORMAT_CSV + 1)
    rc = append(out, " (FORMAT csv)");
  if (rc == 0 && op->binary)
    rc = append(out, " (FORMAT binary)");
  return rc ? rc : pqs__buf_append(out, "", 1);
}

/* ---- lines into rows ---- */

/* A row whose line goes on as it came is split, from a copy, when a
 * value is first read: a stage that only counts (take, skip, a tap that
 * looks at no value) costs nothing. The copy's room is reserved before
 * the row is delivered, so that reading a value never allocates. */
static const pqs__cell_t *split_late(const pqs_row_t *row) {
  pqs__op_t *op = row->lazy_data;
  pqs__copy_t *cp = &op->k.copy;
  if (!cp->split_done) {
    cp->split_done = 1;
    memcpy(cp->scratch.data, row->line, row->line_len);
    int (*split)(char *, size_t, pqs__cell_t *, int) =
        cp->lines == PQS_FORMAT_CSV + 1 ? pqs__copy_split_csv
                                        : pqs__copy_split;
    if (split(cp->scratch.data, row->line_len, cp->cells,
              op->schema->nfields) != 0)
      cp->bad_line = 1; /* its values read as NULL; the op ends after it */
  }
  return cp->cells;
}

/* Binary: one message, one row, or the trailer; nothing after it. */
static int binary_row(pqs__op_t *op, char *msg, size_t n) {
  const char *why = "a malformed binary COPY message";
  int rc = pqs__copy_binary_row(&op->k.copy.bin, msg, n, op->k.copy.cells,
                                op->schema->nfields, &why);
  if (rc == 1)
    return 0;
  if (rc == 0)
    return PQS__WAIT; /* the trailer */
  if (op->err.message == NULL)
    op->err.message = why;
  return rc;
}

/* A line (libpq's, `n` bytes with its newline; split in place) as a
 * row: 0, or PQS_EINVAL (a line that does not match the columns),
 * PQS_ENOMEM. In binary, one CopyData message: 0 and a row, PQS__WAIT for
 * the trailer (no row), or PQS_EINVAL (op->err says what is wrong). Hot
 * path. */
static int copy_row(pqs__op_t *op, char *line, size_t n, pqs_row_t *row) {
  pqs__copy_t *cp = &op->k.copy;
  *row = (pqs_row_t){.schema = op->schema, .cells = cp->cells};
  int rc;
  if (op->binary)
    return binary_row(op, line, n);
  if (cp->lines) {
    row->line = line;
    row->line_len = n;
    row->line_format = cp->lines;
    row->cells = NULL;
    cp->scratch.len = 0;
    if ((rc = pqs__buf_reserve(&cp->scratch, n)) != 0)
      return rc;
    row->lazy = split_late;
    row->lazy_data = op;
    cp->split_done = 0;
    return 0;
  }
  rc = pqs__copy_split(line, n, cp->cells, op->schema->nfields);
  if (rc != 0 && op->err.message == NULL)
    op->err.message = "a COPY line does not match the query's columns";
  return rc;
}

/* After the consumer had a row split late: 0, or PQS_EINVAL if it did
 * not split (op->err says so). */
static int row_done(pqs__op_t *op) {
  if (!op->k.copy.bad_line)
    return 0;
  if (op->err.message == NULL)
    op->err.message = "a COPY line does not match the query's columns";
  return PQS_EINVAL;
}

/* ---- the kind ---- */

/* COMMAND: the COPY of the statement. A value libpq will not escape for
 * the connection's encoding is the server's to judge, as in single-row
 * mode: the statement runs so instead. */
static int copy_send(pqs__op_t *op) {
  if (op->step == PREPARE && pqs__settings_first(op))
    return op->kind->send(op);
  if (op->step != COMMAND)
    return pqs__describe_send(op);
  pqs__buf_t text = {0};
  int rc = copy_command(op, &text);
  int sent = rc == 0 && PQsendQuery(op->ctx->conn, text.data);
  pqs__buf_free(&text);
  if (rc == PQS_EINVAL) {
    fall_back(op);
    return op->kind->send(op);
  }
  if (rc == PQS_ENOMEM && op->err.message == NULL)
    op->err.message = "out of memory";
  pqs__op_keep(op, rc);
  return sent;
}

/* Hot path: one call per line. */
static int deliver_line(pqs__op_t *op, char *line, int n) {
  pqs_row_t row;
  pqs__arena_reset(&op->arena);
  int rc = copy_row(op, line, (size_t)n, &row);
  if (rc != 0)
    return rc == PQS__WAIT ? PQS__CONTINUE : rc; /* the trailer: no row */
  row.arena = &op->arena;
  op->rows++;
  rc = op->consumer_vt->row(op->consumer, &row);
  if (op->k.copy.bad_line && rc >= 0 && rc != PQS__STOP) /* split late, badly */
    return row_done(op);
  return rc;
}

/* Hot path: the next line libpq holds, as an answer code. PQS__WAIT:
 * libpq needs input. The data over, the step is COMMAND again and its
 * result follows (a failure: pqs__op_copy_data_end). */
static int copy_pump(pqs__op_t *op) {
  if (op->step != DATA)
    return PQS__RESULTS;
  char *line;
  int n = op->lost ? -2 : PQgetCopyData(op->ctx->conn, &line, 1);
  if (n > 0) {
    int rc = op->state == PQS__OP_STOPPING ? PQS__CONTINUE
                                           : deliver_line(op, line, n);
    PQfreemem(line);
    return rc;
  }
  if (n == 0)
    return PQS__WAIT;
  op->step = COMMAND; /* DATA -> COMMAND */
  return pqs__op_copy_data_end(op, n);
}

/* PGRES_COPY_OUT of the op's own COPY: COMMAND -> DATA. */
static int copy_started(pqs__op_t *op, const PGresult *res) {
  op->step = DATA;
  if (PQnfields(res) != op->schema->nfields) { /* changed since described */
    op->err.message = "the COPY's columns differ from the described ones";
    return PQS_EINVAL;
  }
  return op->state == PQS__OP_STOPPING ? PQS__CONTINUE
                                       : pqs__op_deliver_columns(op, NULL);
}

static int copy_take(pqs__op_t *op, PGresult *res) {
  ExecStatusType st = PQresultStatus(res);
  if (op->step == DESCRIBE && st == PGRES_COMMAND_OK) {
    op->final = 1;
    return described(op, res);
  }
  if (op->step != COMMAND)
    return pqs__op_take_common(op, res, 0);
  if (st == PGRES_COPY_OUT)
    return copy_started(op, res);
  int rc = pqs__op_take_common(op, res, 1);
  pqs__op_forget_position(op);
  return rc;
}

/* DESCRIBE -> COMMAND, or the rows kind when there are no columns (an
 * UPDATE without RETURNING, SELECT ... INTO): COPY would refuse it,
 * single-row mode runs it. */
static pqs__next_t copy_next(pqs__op_t *op) {
  if (op->step != DESCRIBE)
    return pqs__describe_next(op);
  if (!pqs__op_step_ok(op))
    return PQS__NEXT_END;
  if (op->schema != NULL && op->schema->ncols > 0)
    op->step = COMMAND;
  else
    fall_back(op);
  return PQS__NEXT_SEND;
}

/* libpq 15, out of memory for COPY's start, stays busy: see engine.c. */
static pqs__busy_t copy_busy(pqs__op_t *op) {
  return op->step == COMMAND ? PQS__BUSY_PROBE : PQS__BUSY_WAIT;
}

const pqs__kind_t pqs__kind_copy_out = {
    .name = "copy_out",
    .send = copy_send,
    .pump = copy_pump,
    .take = copy_take,
    .next = copy_next,
    .busy = copy_busy,
    .lines = copy_lines,
    .free = copy_free,
};
