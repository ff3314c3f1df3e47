/* psql's unaligned (-A) and CSV (--csv) output, byte for byte as psql's
 * print.c writes a query's result: a table is its header (unless tuples
 * only), its rows, and in unaligned a "(N rows)" footer (unless tuples
 * only or footer off). Unaligned puts the record separator *before* each
 * record but the first, and ends the last with a newline (a zero byte
 * with recordsep_zero), so the end is written apart. Values are written
 * as they are: unaligned escapes nothing; CSV quotes as psql's
 * csv_print_field does (which, unlike COPY's, leaves an empty string
 * unquoted: NULL and '' both print as the null string). */
#include <stdio.h>
#include <string.h>

#include "../src/core.h"
#include "format.h"

static int put(pqs__buf_t *out, const char *s, size_t len) {
  return pqs__buf_append(out, s, len);
}

static int put_sep(pqs__buf_t *out, const char *sep, int zero) {
  return zero ? put(out, "", 1) : put(out, sep, strlen(sep));
}

int pqs__psql_init(pqs__psql_t *p, pqs_format_t format,
                   const pqs_print_opts_t *o) {
  static const pqs_print_opts_t defaults = {0};
  if (o == NULL)
    o = &defaults;
  char csv_sep = o->csv_fieldsep ? o->csv_fieldsep : ',';
  if (csv_sep == '"' || csv_sep == '\n' || csv_sep == '\r')
    return PQS_EINVAL; /* as psql's \pset csv_fieldsep refuses */
  *p = (pqs__psql_t){.format = format,
                     .csv_sep = csv_sep,
                     .fieldsep_zero = o->fieldsep_zero,
                     .recordsep_zero = o->recordsep_zero,
                     .tuples_only = o->tuples_only,
                     .no_footer = o->no_footer};
  p->fieldsep = pqs__strdup(o->fieldsep ? o->fieldsep : "|");
  p->recordsep = pqs__strdup(o->recordsep ? o->recordsep : "\n");
  p->null = pqs__strdup(o->null ? o->null : "");
  if (p->fieldsep == NULL || p->recordsep == NULL || p->null == NULL) {
    pqs__psql_free(p);
    return PQS_ENOMEM;
  }
  return 0;
}

void pqs__psql_free(pqs__psql_t *p) {
  pqs__free(p->fieldsep);
  pqs__free(p->recordsep);
  pqs__free(p->null);
  p->fieldsep = p->recordsep = p->null = NULL;
}

/* psql's csv_print_field: quoted when it holds the separator, CR, LF or a
 * quote, is "\." alone, or the separator is a backslash or a dot. */
static int csv_field(pqs__buf_t *out, const pqs__psql_t *p, const char *v,
                     size_t len) {
  int quote = p->csv_sep == '\\' || p->csv_sep == '.' ||
              (len == 2 && v[0] == '\\' && v[1] == '.');
  for (size_t i = 0; i < len && !quote; i++)
    quote = v[i] == p->csv_sep || v[i] == '\r' || v[i] == '\n' || v[i] == '"';
  if (!quote)
    return put(out, v, len);
  if (put(out, "\"", 1) != 0)
    return PQS_ENOMEM;
  for (size_t i = 0; i < len; i++)
    if ((v[i] == '"' && put(out, "\"", 1) != 0) || put(out, v + i, 1) != 0)
      return PQS_ENOMEM;
  return put(out, "\"", 1);
}

/* One record: the names (header) or a row's values, NULL as p->null. */
static int record(pqs__buf_t *out, pqs__psql_t *p, const pqs_row_t *row,
                  int names) {
  int csv = p->format == PQS_FORMAT_PSQL_CSV;
  if (!csv && p->need_recordsep &&
      put_sep(out, p->recordsep, p->recordsep_zero) != 0)
    return PQS_ENOMEM;
  int n = pqs_row_ncols(row);
  for (int i = 0; i < n; i++) {
    if (i > 0 && (csv ? put(out, &p->csv_sep, 1)
                      : put_sep(out, p->fieldsep, p->fieldsep_zero)) != 0)
      return PQS_ENOMEM;
    const char *v = NULL;
    size_t len = 0;
    if (names) {
      v = pqs_row_name(row, i);
      len = strlen(v);
    } else {
      int rc = pqs__row_text_or_null(row, i, &v, &len);
      if (rc != 0)
        return rc;
      if (v == NULL) {
        v = p->null;
        len = strlen(v);
      }
    }
    if ((csv ? csv_field(out, p, v, len) : put(out, v, len)) != 0)
      return PQS_ENOMEM;
  }
  p->need_recordsep = 1;
  return csv ? put(out, "\n", 1) : 0;
}

int pqs__psql_header(pqs__buf_t *out, pqs__psql_t *p, const pqs_row_t *cols) {
  p->began = 1;
  return p->tuples_only ? 0 : record(out, p, cols, 1);
}

int pqs__psql_row(pqs__buf_t *out, pqs__psql_t *p, const pqs_row_t *row) {
  p->rows++;
  return record(out, p, row, 0);
}

int pqs__psql_end(pqs__buf_t *out, pqs__psql_t *p) {
  if (!p->began || p->format == PQS_FORMAT_PSQL_CSV)
    return 0; /* a command prints no table; CSV has no footer */
  if (!p->tuples_only && !p->no_footer) {
    char footer[40];
    int n = snprintf(footer, sizeof(footer), "(%llu %s)",
                     (unsigned long long)p->rows, p->rows == 1 ? "row" : "rows");
    if (p->need_recordsep &&
        put_sep(out, p->recordsep, p->recordsep_zero) != 0)
      return PQS_ENOMEM;
    if (put(out, footer, (size_t)n) != 0)
      return PQS_ENOMEM;
    p->need_recordsep = 1;
  }
  if (!p->need_recordsep)
    return 0;
  return p->recordsep_zero ? put(out, "", 1) : put(out, "\n", 1);
}
