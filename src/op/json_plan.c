/* JSON Lines byte for byte as row_to_json() writes them, whatever the
 * types and the session's settings: the client renders what it knows
 * (json_types.c), and the server renders the rest. After the statement
 * is described, each column the client cannot render exactly (a
 * composite, a domain over one, an enum, an array of those, a date under
 * a DateStyle other than ISO, any type a user made) gets a field of its
 * own with the server's to_json() of it, after the columns:
 *
 *   SELECT q.*, to_json(q."3") FROM (
 *   <the statement>
 *   ) q("1", "2", "3")
 *
 * (a WITH around an INSERT, UPDATE or DELETE ... RETURNING). The columns
 * keep their values, so stages that read them see what they would have
 * seen; only the JSON writer reads the extra fields (schema->json_at).
 * What to_json() writes for a value is what row_to_json() writes for it
 * as a column: both go through the server's datum_to_json. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "json_types.h"
#include "kind.h"
#include "sqltext.h"

static int session_flags(pqs_ctx_t *ctx, int binary) {
  const char *style = PQparameterStatus(ctx->conn, "DateStyle");
  int flags = binary ? PQS__JSON_BINARY : 0;
  if (style != NULL && strncmp(style, "ISO", 3) == 0)
    flags |= PQS__JSON_ISO_DATES;
  return flags;
}

int pqs__json_plan_of(pqs_ctx_t *ctx, const char *sql, int binary,
                      pqs__schema_t **planned) {
  pqs__schema_t *schema = *planned;
  if (schema == NULL || schema->ncols == 0 || !pqs__copy_qualifies(sql))
    return 0; /* EXPLAIN, SHOW and the like cannot be wrapped */
  int flags = session_flags(ctx, binary), n = 0;
  unsigned char *server = pqs__calloc((size_t)schema->ncols, 1);
  if (server == NULL)
    return PQS_ENOMEM;
  for (int i = 0; i < schema->ncols; i++) {
    uint32_t elem;
    server[i] = pqs__json_how(schema->types[i], flags, &elem) ==
                PQS__JSON_SERVER;
    n += server[i];
  }
  pqs__schema_t *with = n > 0 ? pqs__schema_with_json(schema, server) : NULL;
  pqs__free(server);
  if (n > 0 && with == NULL)
    return PQS_ENOMEM;
  if (with != NULL) {
    pqs__free(schema);
    *planned = with;
  }
  return 0;
}

int pqs__json_plan(pqs__op_t *op) {
  return pqs__json_plan_of(op->ctx, op->sql, op->binary, &op->schema);
}

static int dml(const char *sql) {
  char word[8];
  pqs__sql_first_word(sql, word, sizeof(word));
  return strcmp(word, "insert") == 0 || strcmp(word, "update") == 0 ||
         strcmp(word, "delete") == 0;
}

static int put(pqs__buf_t *out, const char *s) {
  return pqs__buf_append(out, s, strlen(s));
}

/* q."k" for column k (1-based): names no user column can clash with. */
static int put_col(pqs__buf_t *out, const char *before, int k,
                   const char *after) {
  char num[64];
  snprintf(num, sizeof(num), "%s\"%d\"%s", before, k, after);
  return put(out, num);
}

static int select_list(const pqs__schema_t *s, pqs__buf_t *out) {
  int rc = put(out, "SELECT q.*");
  for (int i = 0; rc == 0 && i < s->ncols; i++)
    if (s->json_at[i] >= 0)
      rc = put_col(out, ", pg_catalog.to_json(q.", i + 1, ")");
  return rc;
}

static int alias_list(const pqs__schema_t *s, pqs__buf_t *out) {
  int rc = put(out, "q(");
  for (int i = 0; rc == 0 && i < s->ncols; i++)
    rc = put_col(out, i ? ", " : "", i + 1, "");
  return rc ? rc : put(out, ")");
}

int pqs__json_head(const pqs__schema_t *schema, const char *sql,
                   pqs__buf_t *out) {
  if (schema == NULL || schema->json_at == NULL)
    return 0;
  if (!dml(sql))
    return select_list(schema, out) || put(out, " FROM (\n") ? PQS_ENOMEM : 0;
  return put(out, "WITH ") || alias_list(schema, out) ||
                 put(out, " AS (\n")
             ? PQS_ENOMEM
             : 0;
}

/* The newlines keep a final -- comment of the statement to itself. */
int pqs__json_tail(const pqs__schema_t *schema, const char *sql,
                   pqs__buf_t *out) {
  if (schema == NULL || schema->json_at == NULL)
    return 0;
  if (!dml(sql))
    return put(out, "\n) ") || alias_list(schema, out) ? PQS_ENOMEM : 0;
  return put(out, "\n) ") || select_list(schema, out) ||
                 put(out, " FROM q")
             ? PQS_ENOMEM
             : 0;
}

int pqs__json_wrap(const pqs__schema_t *schema, const char *sql,
                   pqs__buf_t *out) {
  if (schema == NULL || schema->json_at == NULL)
    return 0;
  return pqs__json_head(schema, sql, out) != 0 ||
                 pqs__buf_append(out, sql,
                                 pqs__sql_trim_end(sql, strlen(sql))) != 0 ||
                 pqs__json_tail(schema, sql, out) != 0 ||
                 pqs__buf_append(out, "", 1) != 0
             ? PQS_ENOMEM
             : 0;
}

/* An error raised by a statement pqstream wrote around the user's: its
 * position is in that text, not the user's, so it goes, with libpq's
 * "LINE n:" and caret that show it. */
void pqs__op_forget_position(pqs__op_t *op) {
  if (op->err.position == 0 || op->err.text == NULL)
    return;
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
