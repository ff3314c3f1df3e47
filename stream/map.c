/* Map stages: the output row a map function fills, reused row after row. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core.h"
#include "stream_int.h"

/* Values set by the function are copied into `buf`, which may move while
 * the row is being filled: such cells hold an offset (`off` >= 0) until
 * the function returns, and become pointers then. Passed-through cells
 * point straight at the input row. */
struct pqs_out_s {
  pqs__schema_t *schema; /* names and types in the same allocation */
  pqs__cell_t *cells;
  long *off;
  pqs__buf_t buf;
  pqs_row_t row;
  pqs_row_t columns;
  pqs__arena_t arena; /* for what is read of the output row (arrays) */
};

pqs_out_t *pqs__out_new(const pqs_column_t *cols, int ncols) {
  size_t size =
      sizeof(pqs__schema_t) + ncols * (sizeof(char *) + sizeof(pqs__cell_t) +
                                       sizeof(long) + sizeof(uint32_t));
  for (int i = 0; i < ncols; i++) {
    if (cols[i].name == NULL)
      return NULL;
    size += strlen(cols[i].name) + 1;
  }
  pqs_out_t *out = pqs__calloc(1, sizeof(*out));
  pqs__schema_t *schema = pqs__malloc(size);
  if (out == NULL || schema == NULL) {
    pqs__free(out);
    pqs__free(schema);
    return NULL;
  }
  const char **names = (const char **)(schema + 1);
  out->cells = (pqs__cell_t *)(names + ncols);
  out->off = (long *)(out->cells + ncols);
  uint32_t *types = (uint32_t *)(out->off + ncols);
  char *p = (char *)(types + ncols);
  for (int i = 0; i < ncols; i++) {
    size_t n = strlen(cols[i].name) + 1;
    names[i] = memcpy(p, cols[i].name, n);
    p += n;
    types[i] = cols[i].type;
  }
  schema->ncols = ncols;
  schema->names = names;
  schema->types = types;
  schema->binary = 0; /* a map writes text */
  schema->text = PQS__TEXT_SETTINGS_DEFAULT;
  schema->json_at = NULL;
  schema->nfields = ncols;
  schema->json_how = NULL; /* the writer looks types up per value */
  schema->json_elem = NULL;
  schema->raw_copy = 0;
  out->schema = schema;
  out->row = (pqs_row_t){.schema = schema, .cells = out->cells,
                         .arena = &out->arena};
  out->columns = (pqs_row_t){.schema = schema};
  return out;
}

void pqs__out_free(pqs_out_t *out) {
  if (out == NULL)
    return;
  pqs__buf_free(&out->buf);
  pqs__arena_free(&out->arena);
  pqs__free(out->schema);
  pqs__free(out);
}

const pqs_row_t *pqs__out_columns(pqs_out_t *out) { return &out->columns; }

/* Hot path: once per row through the map. */
int pqs__out_run(pqs_out_t *out, pqs_stream_t *s, pqs_map_fn fn, void *data,
                 const pqs_row_t **row) {
  int n = out->schema->ncols;
  for (int i = 0; i < n; i++) {
    out->cells[i] = (pqs__cell_t){NULL, -1};
    out->off[i] = -1;
  }
  out->buf.len = 0;
  pqs__arena_reset(&out->arena);
  int rc = fn(s, *row, out, data);
  pqs__buf_fix_cells(&out->buf, out->cells, out->off, (size_t)n);
  out->row.input = (*row)->input;
  *row = &out->row;
  return rc;
}

static int check_col(const pqs_out_t *out, int col) {
  return out != NULL && col >= 0 && col < out->schema->ncols ? 0 : PQS_EINVAL;
}

int pqs_out_set(pqs_out_t *out, int col, const char *text, size_t len) {
  if (check_col(out, col) != 0 || text == NULL || len > INT32_MAX)
    return PQS_EINVAL;
  long at = pqs__buf_put_value(&out->buf, text, len);
  if (at < 0)
    return PQS_ENOMEM;
  out->off[col] = at;
  out->cells[col] = (pqs__cell_t){NULL, (int)len};
  return 0;
}

int pqs_out_set_int64(pqs_out_t *out, int col, int64_t v) {
  char text[24];
  int n = snprintf(text, sizeof(text), "%" PRId64, v);
  return pqs_out_set(out, col, text, (size_t)n);
}

int pqs_out_set_null(pqs_out_t *out, int col) {
  if (check_col(out, col) != 0)
    return PQS_EINVAL;
  out->off[col] = -1;
  out->cells[col] = (pqs__cell_t){NULL, -1};
  return 0;
}

int pqs_out_pass(pqs_out_t *out, int col, const pqs_row_t *in, int in_col) {
  if (check_col(out, col) != 0 || pqs_row_is_null(in, in_col) < 0)
    return PQS_EINVAL;
  size_t len;
  const char *p;
  /* The output is text: a binary value goes as its text, if it has one. */
  int rc = pqs_row_get_text(in, in_col, &p, &len);
  if (rc != 0 && rc != PQS_ENULL)
    return rc;
  out->off[col] = -1;
  out->cells[col] = (pqs__cell_t){rc ? NULL : p, rc ? -1 : (int)len};
  return 0;
}
