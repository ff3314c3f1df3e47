/* The COPY source's parts: which statements qualify, the COPY command with
 * its parameters bound, and COPY's text lines split into rows in place.
 * query.c drives the protocol (the steps are drawn in ctx_int.h).
 *
 * libpq 15 builds one PGresult per row in single-row mode, which is most
 * of the client's cost per row; COPY hands over one buffer per row, which
 * is split here without allocating. */
#include <string.h>

#include "alloc.h"
#include "ctx_int.h"
#include "error_int.h"
#include "sqltext.h"

int pqs__copy_qualifies(const char *sql) {
  static const char *const words[] = {"select", "values", "table", "with",
                                      "insert", "update", "delete"};
  char word[8];
  pqs__sql_first_word(sql, word, sizeof(word));
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (strcmp(word, words[i]) == 0)
      return 1;
  return 0;
}

void pqs__copy_free(pqs__op_t *op) {
  pqs__free(op->cp.cells);
  pqs__free(op->cp.param_types);
  pqs__buf_free(&op->cp.scratch);
}

void pqs__copy_offer_lines(pqs__op_t *op, int format, int parse) {
  /* COPY's csv lines are not split here: csv only when nobody reads. */
  if (!op->copy || op->binary || op->state != PQS__OP_NEW ||
      (format == PQS_FORMAT_CSV && parse) ||
      (format != PQS_FORMAT_CSV && format != PQS_FORMAT_TSV))
    return;
  op->cp.lines = format + 1;
}

/* ---- after the Describe ---- */

int pqs__copy_described(pqs__op_t *op, const PGresult *res) {
  pqs__copy_t *cp = &op->cp;
  int ncols = PQnfields(res), nparams = PQnparams(res);
  op->schema = pqs__schema_from_result(res);
  cp->cells = pqs__calloc(ncols > 0 ? ncols : 1, sizeof(*cp->cells));
  cp->param_types = pqs__calloc(nparams > 0 ? nparams : 1, sizeof(uint32_t));
  if (op->schema == NULL || cp->cells == NULL || cp->param_types == NULL)
    return PQS_ENOMEM;
  op->schema->binary = op->binary; /* described in text; sent as asked */
  for (int i = 0; i < nparams; i++)
    cp->param_types[i] = PQparamtype(res, i);
  return PQS__CONTINUE;
}

pqs__op_send_t pqs__copy_next(pqs__op_t *op) {
  if (op->schema != NULL && op->schema->ncols > 0)
    return PQS__SEND_COPY;
  /* No columns (an UPDATE without RETURNING, SELECT ... INTO): COPY would
   * refuse it, single-row mode runs it. */
  pqs__copy_fall_back(op);
  return PQS__SEND_PARAMS;
}

void pqs__copy_fall_back(pqs__op_t *op) {
  op->copy = 0;
  op->cp.lines = 0;
  pqs__free(op->schema); /* the columns come with the result */
  op->schema = NULL;
  op->send = PQS__SEND_PARAMS;
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
  const char *type = cast_name(op->cp.param_types[n - 1]);
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

int pqs__copy_command(pqs__op_t *op, pqs__buf_t *out) {
  size_t len = pqs__sql_trim_end(op->sql, strlen(op->sql));
  /* The newlines keep a final -- comment from swallowing the ')'. */
  int rc = append(out, "COPY (\n");
  rc = rc ? rc : pqs__sql_bind(op->sql, len, put_param, op, out);
  rc = rc ? rc : append(out, "\n) TO STDOUT");
  if (rc == 0 && op->cp.lines == PQS_FORMAT_CSV + 1)
    rc = append(out, " (FORMAT csv)");
  if (rc == 0 && op->binary)
    rc = append(out, " (FORMAT binary)");
  return rc ? rc : pqs__buf_append(out, "", 1);
}

/* ---- lines into rows ---- */

static int octal(char c) { return c >= '0' && c <= '7' ? c - '0' : -1; }

static int hex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* COPY's escape at p[1..] (p[0] is the backslash, end is the field's
 * end): writes the byte to *w and returns the bytes read. */
static size_t unescape_one(const char *p, const char *end, char *w) {
  if (p + 1 >= end) {
    *w = '\\';
    return 1;
  }
  int v, d;
  size_t n = 2;
  switch (p[1]) {
  case 'b':
    *w = '\b';
    return 2;
  case 'f':
    *w = '\f';
    return 2;
  case 'n':
    *w = '\n';
    return 2;
  case 'r':
    *w = '\r';
    return 2;
  case 't':
    *w = '\t';
    return 2;
  case 'v':
    *w = '\v';
    return 2;
  case 'x':
    if (p + 2 >= end || (v = hex(p[2])) < 0)
      break;
    n = 3;
    if (p + 3 < end && (d = hex(p[3])) >= 0)
      v = v * 16 + d, n = 4;
    *w = (char)v;
    return n;
  default:
    if ((v = octal(p[1])) < 0)
      break;
    while (n < 4 && p + n < end && (d = octal(p[n])) >= 0)
      v = v * 8 + d, n++;
    *w = (char)v;
    return n;
  }
  *w = p[1]; /* \\ and any other: the byte itself */
  return 2;
}

/* The field [f, end) without its escapes, in place, NUL-terminated; its
 * new length. `bs` is its first backslash. */
static size_t unescape(char *f, char *end, char *bs) {
  char *w = bs;
  for (char *r = bs; r < end;) {
    if (*r == '\\')
      r += unescape_one(r, end, w++);
    else
      *w++ = *r++;
  }
  *w = '\0';
  return (size_t)(w - f);
}

/* A text-format line (ending in '\n') split into op->cp.cells. Hot path:
 * memchr finds the tabs, and only fields holding a backslash are
 * rewritten. */
static int split(pqs__op_t *op, char *text, size_t n) {
  pqs__cell_t *cells = op->cp.cells;
  int ncols = op->schema->ncols, i = 0;
  if (n == 0 || text[n - 1] != '\n')
    return PQS_EINVAL;
  char *end = text + n - 1, *f = text;
  for (;;) {
    char *t = memchr(f, '\t', (size_t)(end - f));
    if (t == NULL)
      t = end;
    if (i == ncols)
      return PQS_EINVAL;
    if (t - f == 2 && f[0] == '\\' && f[1] == 'N') {
      cells[i].ptr = NULL;
      cells[i].len = -1;
    } else {
      char *bs = memchr(f, '\\', (size_t)(t - f));
      size_t len = bs ? unescape(f, t, bs) : (size_t)(t - f);
      f[len] = '\0';
      cells[i].ptr = f;
      cells[i].len = (int)len;
    }
    i++;
    if (t == end)
      break;
    f = t + 1;
  }
  return i == ncols ? 0 : PQS_EINVAL;
}

/* A row whose line goes on as it came is split, from a copy, when a
 * value is first read: a stage that only counts (take, skip, a tap that
 * looks at no value) costs nothing. The copy's room is reserved before
 * the row is delivered, so that reading a value never allocates. */
static const pqs__cell_t *split_late(const pqs_row_t *row) {
  pqs__op_t *op = row->lazy_data;
  pqs__copy_t *cp = &op->cp;
  if (!cp->split_done) {
    cp->split_done = 1;
    memcpy(cp->scratch.data, row->line, row->line_len);
    if (split(op, cp->scratch.data, row->line_len) != 0)
      cp->bad_line = 1; /* its values read as NULL; the op ends after it */
  }
  return cp->cells;
}

/* Binary: one message, one row, or the trailer; nothing after it. */
static int binary_row(pqs__op_t *op, char *msg, size_t n) {
  const char *why = "a malformed binary COPY message";
  int rc = pqs__copy_binary_row(&op->cp.bin, msg, n, op->cp.cells,
                                op->schema->ncols, &why);
  if (rc == 1)
    return 0;
  if (rc == 0)
    return PQS__WAIT; /* the trailer */
  if (op->err.message == NULL)
    op->err.message = why;
  return rc;
}

int pqs__copy_row(pqs__op_t *op, char *line, size_t n, pqs_row_t *row) {
  pqs__copy_t *cp = &op->cp;
  *row = (pqs_row_t){.schema = op->schema, .cells = cp->cells};
  int rc;
  if (op->binary)
    return binary_row(op, line, n);
  if (cp->lines) {
    row->line = line;
    row->line_len = n;
    row->line_format = cp->lines;
    row->cells = NULL;
    if (cp->lines == PQS_FORMAT_CSV + 1)
      return 0; /* csv lines are offered only when nobody reads values */
    cp->scratch.len = 0;
    if ((rc = pqs__buf_reserve(&cp->scratch, n)) != 0)
      return rc;
    row->lazy = split_late;
    row->lazy_data = op;
    cp->split_done = 0;
    return 0;
  }
  rc = split(op, line, n);
  if (rc != 0 && op->err.message == NULL)
    op->err.message = "a COPY line does not match the query's columns";
  return rc;
}

int pqs__copy_row_done(pqs__op_t *op) {
  if (!op->cp.bad_line)
    return 0;
  if (op->err.message == NULL)
    op->err.message = "a COPY line does not match the query's columns";
  return PQS_EINVAL;
}

/* ---- errors ---- */

void pqs__copy_fix_error(pqs__op_t *op) {
  if (op->err.position == 0 || op->err.text == NULL)
    return;
  /* libpq's "LINE n: COPY (..." and its caret show the COPY's text, not
   * the user's: both go, with the position. */
  op->err.position = 0;
  char *text = (char *)op->err.text; /* ours: in op->err_strings */
  char *at = strstr(text, "\nLINE ");
  if (at == NULL)
    return;
  char *caret = strchr(at + 1, '\n');
  char *next = caret ? strchr(caret + 1, '\n') : NULL;
  if (next != NULL)
    memmove(at, next, strlen(next) + 1);
}
