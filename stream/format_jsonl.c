/* JSON Lines: one object per row, keys in column order, each value byte
 * for byte as the server's row_to_json() writes it: numbers bare (NaN
 * and infinities as strings), booleans, NULL as null, json and jsonb as
 * they are, dates and timestamps in the ISO 8601 form json uses, arrays
 * as JSON arrays, everything else as the string of its text. What the
 * client cannot render (json_types.c) the source had the server render
 * into a field of its own (schema->json_at, json_plan.c), written as it
 * came. Rows without those fields (made by a map, copied, merged) are
 * rendered here as far as their types are known, as strings beyond, and
 * their dates as if the DateStyle were ISO. */
#include <string.h>

#include "../src/core.h"
#include "format.h"
#include "json_types.h"
#include "json_write.h"

/* Column `col`'s value, rendered as its type says: from the schema's
 * plan, or looked up for a schema without one. */
static int value(pqs__buf_t *out, const pqs__schema_t *s, int col,
                 const char *v, size_t len) {
  uint32_t elem;
  pqs__json_how_t how;
  if (s->json_how != NULL) {
    how = (pqs__json_how_t)s->json_how[col];
    elem = s->json_elem[col];
  } else {
    how = pqs__json_how(s->types[col], PQS__JSON_ISO_DATES, &elem);
  }
  return pqs__json_value(out, how, elem, v, len);
}

int pqs__jsonl_row(pqs__buf_t *out, const pqs_row_t *row) {
  int n = pqs_row_ncols(row);
  if (pqs__buf_append(out, "{", 1) != 0)
    return PQS_ENOMEM;
  for (int i = 0; i < n; i++) {
    const char *name = pqs_row_name(row, i);
    if ((i > 0 && pqs__buf_append(out, ",", 1) != 0) ||
        pqs__json_string(out, name, strlen(name)) != 0 ||
        pqs__buf_append(out, ":", 1) != 0)
      return PQS_ENOMEM;
    size_t len;
    const char *v;
    const int *json_at = row->schema->json_at;
    int rc = json_at != NULL && json_at[i] >= 0
                 ? pqs__row_field(row, json_at[i], &v, &len)
                 : pqs__row_text_or_null(row, i, &v, &len);
    if (rc != 0)
      return rc;
    if (v == NULL)
      rc = pqs__buf_append(out, "null", 4);
    else if (json_at != NULL && json_at[i] >= 0)
      rc = pqs__buf_append(out, v, len); /* the server's to_json() */
    else
      rc = value(out, row->schema, i, v, len);
    if (rc != 0)
      return rc;
  }
  return pqs__buf_append(out, "}\n", 2);
}
