/* Formatting rows as bytes: COPY's csv and text formats, and JSON Lines.
 * Each function appends to `out` and returns 0 or PQS_ENOMEM. Hot path. */
#ifndef PQS_FORMAT_H
#define PQS_FORMAT_H

#include "../src/core.h"
#include "pqstream.h"

/* What COPY ... TO STDOUT (FORMAT csv) writes: a header line of column
 * names (HEADER), and one line per row. */
int pqs__csv_header(pqs__buf_t *out, const pqs_row_t *cols);
int pqs__csv_row(pqs__buf_t *out, const pqs_row_t *row);

/* What COPY ... TO STDOUT (FORMAT text) writes. */
int pqs__text_header(pqs__buf_t *out, const pqs_row_t *cols);
int pqs__text_row(pqs__buf_t *out, const pqs_row_t *row);

/* One JSON object per line, equal value for value to row_to_json(). */
int pqs__jsonl_row(pqs__buf_t *out, const pqs_row_t *row);

/* One row in `format`, as a sink writes it (format.c): a COPY row's own
 * line when it came in that format, else formatted. Hot path. */
int pqs__format_row(pqs__buf_t *out, pqs_format_t format, const pqs_row_t *row);
/* A binary stream's columns must all have exact text in `format`, or
 * not one row is written: 0, or PQS_ETYPE with `why` naming the column.
 * (JSON the server writes for a column needs none.) */
int pqs__format_check_text(pqs_format_t format, const pqs_row_t *cols,
                           char *why, size_t size);
/* The header line of csv and tsv; nothing for jsonl. */
int pqs__format_header(pqs__buf_t *out, pqs_format_t format,
                       const pqs_row_t *cols);

/* psql's unaligned and CSV output (format_psql.c): a table's state, one
 * per sink. */
typedef struct {
  pqs_format_t format; /* PQS_FORMAT_UNALIGNED or PQS_FORMAT_PSQL_CSV */
  char *fieldsep, *recordsep, *null; /* owned copies */
  char csv_sep;
  int fieldsep_zero, recordsep_zero, tuples_only, no_footer;
  int began;          /* fact: the columns came (a query, not a command) */
  int need_recordsep; /* fact: a record was written, unterminated */
  uint64_t rows;
} pqs__psql_t;

/* 0, PQS_EINVAL (a CSV separator psql refuses) or PQS_ENOMEM; `o` may be
 * NULL (psql's defaults) and is copied. */
int pqs__psql_init(pqs__psql_t *p, pqs_format_t format,
                   const pqs_print_opts_t *o);
void pqs__psql_free(pqs__psql_t *p);
int pqs__psql_header(pqs__buf_t *out, pqs__psql_t *p, const pqs_row_t *cols);
int pqs__psql_row(pqs__buf_t *out, pqs__psql_t *p, const pqs_row_t *row);
/* After the last row of a query that succeeded: the footer and the end. */
int pqs__psql_end(pqs__buf_t *out, pqs__psql_t *p);

#endif
