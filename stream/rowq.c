#include "../src/core.h"
#include "rowq.h"

#include <stdlib.h>
#include <string.h>

/* A row in the buffer: its size, its merge input, a length per field
 * (-1: NULL), then the values, each with a NUL. Read with memcpy: no
 * alignment. The fields are the columns, and the server's JSON after
 * them where the schema has some (json_at). */
typedef struct {
  uint32_t size;
  int32_t input;
} rec_t;

int pqs__rowq_push(pqs__rowq_t *q, const pqs_row_t *row) {
  int n = row->schema->nfields;
  size_t size = sizeof(rec_t) + n * sizeof(int32_t), data = 0;
  for (int i = 0; i < n; i++) {
    size_t len;
    const char *v;
    pqs__row_field(row, i, &v, &len); /* binary stays binary */
    if (v != NULL)
      data += len + 1;
  }
  size += data;
  if (q->head > 0 && q->head >= q->buf.len / 2) { /* reuse the front */
    memmove(q->buf.data, q->buf.data + q->head, q->buf.len - q->head);
    q->buf.len -= q->head;
    q->head = 0;
  }
  if (q->ncols < n) { /* the head's view: sized here, where it can fail */
    pqs__cell_t *cells = pqs__realloc(q->cells, (size_t)n * sizeof(*cells));
    if (cells == NULL)
      return PQS_ENOMEM;
    q->cells = cells;
    q->ncols = n;
  }
  if (pqs__buf_reserve(&q->buf, size) != 0)
    return PQS_ENOMEM;
  rec_t rec = {(uint32_t)size, row->input};
  pqs__buf_put(&q->buf, &rec, sizeof(rec));
  size_t lens_at = q->buf.len;
  q->buf.len += n * sizeof(int32_t);
  for (int i = 0; i < n; i++) {
    size_t len;
    const char *v;
    pqs__row_field(row, i, &v, &len);
    int32_t l = v ? (int32_t)len : -1;
    memcpy(q->buf.data + lens_at + i * sizeof(int32_t), &l, sizeof(l));
    if (v != NULL) {
      pqs__buf_put(&q->buf, v, len);
      pqs__buf_putc(&q->buf, '\0');
    }
  }
  q->count++;
  q->bytes += size;
  return 0;
}

void pqs__rowq_peek(pqs__rowq_t *q, const pqs__schema_t *schema,
                    pqs_row_t *view) {
  int n = schema->nfields;
  const char *p = q->buf.data + q->head;
  rec_t rec;
  memcpy(&rec, p, sizeof(rec));
  const char *lens = p + sizeof(rec);
  const char *v = lens + n * sizeof(int32_t);
  for (int i = 0; i < n; i++) {
    int32_t l;
    memcpy(&l, lens + i * sizeof(int32_t), sizeof(l));
    q->cells[i] = (pqs__cell_t){l >= 0 ? v : NULL, l};
    if (l >= 0)
      v += l + 1;
  }
  *view = (pqs_row_t){.schema = schema, .cells = q->cells, .input = rec.input,
                      .arena = &q->arena};
}

void pqs__rowq_pop(pqs__rowq_t *q) {
  rec_t rec;
  memcpy(&rec, q->buf.data + q->head, sizeof(rec));
  q->head += rec.size;
  q->bytes -= rec.size;
  pqs__arena_reset(&q->arena); /* the head's texts go with it */
  if (--q->count == 0) {
    q->head = 0;
    q->buf.len = 0;
    q->bytes = 0;
  }
}

void pqs__rowq_free(pqs__rowq_t *q) {
  pqs__buf_free(&q->buf);
  pqs__arena_free(&q->arena);
  pqs__free(q->cells);
  q->cells = NULL;
  q->ncols = 0;
  q->head = q->count = q->bytes = 0;
}
