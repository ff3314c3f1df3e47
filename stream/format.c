/* Rows as bytes, one home for the sinks and for programs that frame rows
 * themselves (pqs_formatter_t): the same function writes both. */
#include <stdio.h>

#include "format.h"
#include "../src/core.h"
#include "stream_int.h"

int pqs__format_row(pqs__buf_t *out, pqs_format_t format,
                    const pqs_row_t *row) {
  if (row->line != NULL && (row->line_format == (int)format + 1 ||
                            row->line_format == PQS__LINE_RAW))
    return pqs__buf_append(out, row->line, row->line_len); /* as sent */
  switch (format) {
  case PQS_FORMAT_CSV:
    return pqs__csv_row(out, row);
  case PQS_FORMAT_JSONL:
    return pqs__jsonl_row(out, row);
  default:
    return pqs__text_row(out, row);
  }
}

int pqs__format_check_text(pqs_format_t format, const pqs_row_t *cols,
                           char *why, size_t size) {
  if (!cols->schema->binary)
    return 0;
  const int *json_at = cols->schema->json_at;
  for (int i = 0; i < cols->schema->ncols; i++) {
    uint32_t type = cols->schema->types[i];
    if (pqs__binary_has_text(type) ||
        (format == PQS_FORMAT_JSONL && json_at != NULL && json_at[i] >= 0))
      continue;
    snprintf(why, size,
             "column \"%s\" (type oid %u) has no exact text in a binary "
             "result: ask for text results to write it",
             cols->schema->names[i], (unsigned)type);
    return PQS_ETYPE;
  }
  return 0;
}

int pqs__format_header(pqs__buf_t *out, pqs_format_t format,
                       const pqs_row_t *cols) {
  switch (format) {
  case PQS_FORMAT_CSV:
    return pqs__csv_header(out, cols);
  case PQS_FORMAT_JSONL:
    return 0;
  default:
    return pqs__text_header(out, cols);
  }
}

struct pqs_formatter_s {
  pqs_format_t format;
  pqs__buf_t buf; /* reused: grows to the longest row, then stays */
};

int pqs_formatter_new(pqs_formatter_t **out, pqs_format_t format) {
  if (out == NULL || (unsigned)format > PQS_FORMAT_JSONL)
    return PQS_EINVAL;
  pqs_formatter_t *f = pqs__calloc(1, sizeof(*f));
  if (f == NULL)
    return PQS_ENOMEM;
  f->format = format;
  *out = f;
  return 0;
}

static int done(pqs_formatter_t *f, int rc, const char **out, size_t *len) {
  if (rc != 0)
    return rc;
  *out = f->buf.data ? f->buf.data : "";
  *len = f->buf.len;
  return 0;
}

int pqs_format_row(pqs_formatter_t *f, const pqs_row_t *row, const char **out,
                   size_t *len) {
  if (f == NULL || row == NULL || out == NULL || len == NULL)
    return PQS_EINVAL;
  f->buf.len = 0;
  return done(f, pqs__format_row(&f->buf, f->format, row), out, len);
}

int pqs_format_header(pqs_formatter_t *f, const pqs_row_t *cols,
                      const char **out, size_t *len) {
  if (f == NULL || cols == NULL || out == NULL || len == NULL)
    return PQS_EINVAL;
  f->buf.len = 0;
  return done(f, pqs__format_header(&f->buf, f->format, cols), out, len);
}

void pqs_formatter_free(pqs_formatter_t *f) {
  if (f == NULL)
    return;
  pqs__buf_free(&f->buf);
  pqs__free(f);
}
