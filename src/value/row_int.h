/* Rows and schemas, shared by the libpq source, the stream and its stages. */
#ifndef PQS_ROW_INT_H
#define PQS_ROW_INT_H

#include <libpq-fe.h>

#include "arena.h"
#include "binary.h"
#include "pqstream.h"

/* Column names and types of a result. Built once per query, in one
 * allocation, and borrowed by every row of it. */
#define PQS__LINE_RAW 100

typedef struct pqs__schema_s {
  int ncols;
  const char *const *names;
  const uint32_t *types;
  int binary; /* the values are in binary (PQS_RESULT_BINARY) */
  /* The settings the text of a binary value follows; the server's
   * defaults unless the op that made the schema knew the session's. */
  pqs__text_settings_t text;
  /* For a JSON Lines consumer (json_plan.c): NULL, or for each column
   * the field of the row that holds the server's to_json() of it, or -1.
   * Those fields come after the columns: a row has nfields values (every
   * schema sets it; ncols without JSON), of which the first ncols are the
   * columns. pqs__schema_copy keeps them (a
   * merge's queues copy every field); pqs_row_dup drops them. */
  const int *json_at;
  int nfields;
  /* How the JSON writer renders each column (json_types.c): the value's
   * way, or its elements' for an array, whose element type json_elem
   * then holds (else 0). Looked up once per schema, not once per value;
   * NULL in schemas made elsewhere (a map's, a copied row's), for which
   * the writer looks it up per value. */
  const unsigned char *json_how;
  const uint32_t *json_elem;
  /* A COPY TO statement's data (copy_to.c): sinks write its rows as they
   * are, with no header or footer of theirs. */
  int raw_copy;
} pqs__schema_t;

/* A value held in memory: len < 0 is SQL NULL. */
typedef struct pqs__cell_s {
  const char *ptr;
  int len;
} pqs__cell_t;

/* A row is a view: either over a libpq single-row result (res set, values
 * read through libpq, nothing copied) or over cells in memory (rows made by
 * pqs_row_dup, by stages, or by tests). Neither set: a columns-only row. */
struct pqs_row_s {
  const pqs__schema_t *schema;
  const PGresult *res;
  const pqs__cell_t *cells;
  int input; /* 1 + the merge input it came from; 0 outside a merge */
  /* A row from the COPY source that a sink may write as it came: the
   * server's line (newline included) in format line_format - 1
   * (pqs_format_t), or PQS__LINE_RAW: a COPY TO statement's own data
   * (copy_to.c), written as it came in every format. NULL unless the
   * consumer asked for lines (or the data is raw). */
  const char *line;
  size_t line_len;
  int line_format;
  /* Such a row is split only when a value is first read: cells is NULL
   * and lazy(row) returns them. NULL for a row that is never split (csv
   * lines, offered only when nothing reads values). */
  const struct pqs__cell_s *(*lazy)(const pqs_row_t *row);
  void *lazy_data;
  /* Where a binary row's texts are made (pqs_row_text): owned by whoever
   * made the row, reset when the row goes. NULL: texts cannot be made
   * (PQS_ENOMEM), which no producer of binary rows leaves. */
  pqs__arena_t *arena;
};

/* The bytes a value is held in, whatever its format: 0 with *ptr NULL for
 * SQL NULL, or PQS_EINVAL (col out of range). What copies of rows copy. */
int pqs__row_raw(const pqs_row_t *row, int col, const char **ptr, size_t *len);

/* The stored bytes of column `col` (text, NUL-terminated, or binary; see
 * row->schema->binary) if it is not NULL and of one of the `nok` types
 * `ok`: 0, or PQS_EINVAL (col out of range, out NULL), PQS_ETYPE,
 * PQS_ENULL. `out` is only checked for NULL; `len` may be NULL. */
int pqs__row_typed(const pqs_row_t *row, int col, const void *out,
                   const uint32_t *ok, int nok, const char **text,
                   size_t *len);

/* A value's text, or *v NULL for SQL NULL: 0, or the error of
 * pqs_row_get_text (PQS_ETYPE: a binary value without exact text). For
 * whatever writes rows as text. */
static inline int pqs__row_text_or_null(const pqs_row_t *row, int col,
                                        const char **v, size_t *len) {
  int rc = pqs_row_get_text(row, col, v, len);
  if (rc == PQS_ENULL)
    *v = NULL, *len = 0;
  return rc == PQS_ENULL ? 0 : rc;
}

static inline int pqs__row_binary(const pqs_row_t *row) {
  return row->schema->binary;
}

/* Copies the names and types of `res` into a new schema (one allocation,
 * freed with free()). NULL if out of memory. */
pqs__schema_t *pqs__schema_from_result(const PGresult *res);

/* A copy of `schema` (json_at included) in one allocation, freed with
 * free(). */
pqs__schema_t *pqs__schema_copy(const pqs__schema_t *schema);

/* A copy of `schema` whose column i's JSON is the server's when
 * server[i] is nonzero (json_at, fields after the columns in column
 * order). NULL if out of memory. */
pqs__schema_t *pqs__schema_with_json(const pqs__schema_t *schema,
                                     const unsigned char *server);

/* The value of field `field` (a column or a JSON field after them), as
 * pqs__row_raw. */
int pqs__row_field(const pqs_row_t *row, int field, const char **ptr,
                   size_t *len);

#endif
