/* A change as a row (changes_row.h). The values of a table come as the
 * walsender's output functions wrote them (the session is set to ISO
 * dates before streaming), and are rendered into JSON as row_to_json
 * renders a value of the column's type: numbers bare, booleans, json as
 * it is, ISO dates and timestamps, arrays; types only the server knows
 * (enums, composites, domains) as strings of their text. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "changes_row.h"
#include "json_write.h"
#include "pqstream.h"

#define OID_PG_LSN 3220

static const char *const names[PQS__CHG_NCOLS] = {
    "lsn",   "commit_lsn", "xid", "commit_time", "op",
    "schema", "table",     "new", "old",         "unchanged"};
static const uint32_t types[PQS__CHG_NCOLS] = {
    OID_PG_LSN,    OID_PG_LSN,    PQS_OID_INT8, PQS_OID_TIMESTAMPTZ,
    PQS_OID_TEXT,  PQS_OID_TEXT,  PQS_OID_TEXT, PQS_OID_JSON,
    PQS_OID_JSON,  PQS_OID_JSON};

pqs__schema_t *pqs__chg_schema(void) {
  pqs__schema_t s = {.ncols = PQS__CHG_NCOLS, .names = names, .types = types,
                     .text = PQS__TEXT_SETTINGS_DEFAULT,
                     .nfields = PQS__CHG_NCOLS};
  return pqs__schema_copy(&s);
}

/* Upper-case hexadecimal without leading zeros, as %X: its length. */
static int hex(uint32_t v, char *out) {
  static const char digits[] = "0123456789ABCDEF";
  char tmp[8];
  int n = 0;
  do {
    tmp[n++] = digits[v & 15];
    v >>= 4;
  } while (v != 0);
  for (int i = 0; i < n; i++)
    out[i] = tmp[n - 1 - i];
  return n;
}

/* Hot path: one per change. */
int pqs__lsn_text(uint64_t lsn, char *out) {
  int n = hex((uint32_t)(lsn >> 32), out);
  out[n++] = '/';
  n += hex((uint32_t)lsn, out + n);
  out[n] = '\0';
  return n;
}

static int hex_half(const char **p, uint32_t *out) {
  uint64_t v = 0;
  const char *s = *p;
  int n = 0;
  for (; n < 9; n++, s++) {
    int d = *s >= '0' && *s <= '9'   ? *s - '0'
            : *s >= 'a' && *s <= 'f' ? *s - 'a' + 10
            : *s >= 'A' && *s <= 'F' ? *s - 'A' + 10
                                     : -1;
    if (d < 0)
      break;
    v = v * 16 + (uint64_t)d;
  }
  if (n == 0 || n > 8)
    return -1;
  *p = s;
  *out = (uint32_t)v;
  return 0;
}

int pqs__lsn_parse(const char *text, uint64_t *out) {
  uint32_t hi, lo;
  const char *p = text;
  if (p == NULL || hex_half(&p, &hi) != 0 || *p++ != '/' ||
      hex_half(&p, &lo) != 0 || *p != '\0')
    return PQS_EINVAL;
  *out = (uint64_t)hi << 32 | lo;
  return 0;
}

/* timestamptz's ISO text in UTC: "2026-12-06 08:02:13.5+00". */
static int commit_time(int64_t us, char *out, size_t cap) {
  int64_t secs = us / 1000000, frac = us % 1000000;
  if (frac < 0) {
    frac += 1000000;
    secs--;
  }
  time_t t = (time_t)(secs + 946684800); /* 2000-01-01 in Unix time */
  struct tm tm;
  if (gmtime_r(&t, &tm) == NULL)
    return snprintf(out, cap, "%s", "");
  int n = (int)strftime(out, cap, "%Y-%m-%d %H:%M:%S", &tm);
  if (frac != 0) {
    char f[8];
    snprintf(f, sizeof(f), ".%06" PRId64, frac);
    size_t k = strlen(f);
    while (k > 1 && f[k - 1] == '0')
      f[--k] = '\0';
    n += snprintf(out + n, cap - (size_t)n, "%s", f);
  }
  return n + snprintf(out + n, cap - (size_t)n, "+00");
}

static int put(pqs__buf_t *b, const char *s, size_t n) {
  return pqs__buf_append(b, s, n);
}

/* One value of column i of `rel` into an object under construction. */
static int json_member(pqs__buf_t *b, const pqs__pgo_relation_t *rel, int i,
                       const pqs__pgo_value_t *v, int *first) {
  const char *name = rel->names[i];
  int rc = put(b, *first ? "" : ",", *first ? 0 : 1);
  *first = 0;
  rc = rc ? rc : pqs__json_string(b, name, strlen(name));
  rc = rc ? rc : put(b, ":", 1);
  if (rc != 0 || v->kind == PQS__PGO_NULL)
    return rc ? rc : put(b, "null", 4);
  if (rel->types[i] == 22 || rel->types[i] == 30) /* int2vector, oidvector */
    return pqs__json_vector(b, rel->types[i] == 22 ? PQS__JSON_NUMBER
                                                   : PQS__JSON_STRING,
                            v->ptr, (size_t)v->len);
  uint32_t elem;
  pqs__json_how_t how = pqs__json_how(rel->types[i], PQS__JSON_ISO_DATES, &elem);
  if (how == PQS__JSON_SERVER) { /* a user's type: its text, as a string */
    how = PQS__JSON_STRING;
    elem = 0;
  }
  return pqs__json_value(b, how, elem, v->ptr, (size_t)v->len);
}

/* The new row: every value sent; one not sent (TOAST) is taken from a
 * full old row that has it, or else left out and named in `unchanged`. */
static int new_json(pqs__chg_row_t *r, const pqs__pgo_msg_t *m) {
  const pqs__pgo_relation_t *rel = m->rel;
  int first = 1, firstu = 1, rc = put(&r->new_json, "{", 1);
  rc = rc ? rc : put(&r->unchanged, "[", 1);
  for (int i = 0; i < m->nnew && rc == 0; i++) {
    const pqs__pgo_value_t *v = &m->new_values[i];
    if (v->kind == PQS__PGO_UNCHANGED && m->old_kind == 'O' &&
        m->old_values[i].kind != PQS__PGO_UNCHANGED)
      v = &m->old_values[i];
    if (v->kind != PQS__PGO_UNCHANGED) {
      rc = json_member(&r->new_json, rel, i, v, &first);
      continue;
    }
    rc = put(&r->unchanged, firstu ? "" : ",", firstu ? 0 : 1);
    firstu = 0;
    rc = rc ? rc
            : pqs__json_string(&r->unchanged, rel->names[i],
                               strlen(rel->names[i]));
  }
  rc = rc ? rc : put(&r->new_json, "}", 2); /* with its NUL */
  return rc ? rc : put(&r->unchanged, "]", 2);
}

/* The old key ('K': its columns only) or the whole old row ('O'). */
static int old_json(pqs__chg_row_t *r, const pqs__pgo_msg_t *m) {
  const pqs__pgo_relation_t *rel = m->rel;
  int first = 1, rc = put(&r->old_json, "{", 1);
  for (int i = 0; i < m->nold && rc == 0; i++)
    if ((m->old_kind == 'O' || rel->key[i]) &&
        m->old_values[i].kind != PQS__PGO_UNCHANGED)
      rc = json_member(&r->old_json, rel, i, &m->old_values[i], &first);
  return rc ? rc : put(&r->old_json, "}", 2);
}

/* Every cell's text ends in a NUL, as the text getters promise. */
static void cell(pqs__chg_row_t *r, int col, const char *p, size_t n) {
  r->cells[col] = (pqs__cell_t){p, (int)n};
}

static void null_cell(pqs__chg_row_t *r, int col) {
  r->cells[col] = (pqs__cell_t){NULL, -1};
}

static const char *op_name(pqs__pgo_kind_t kind) {
  switch (kind) {
  case PQS__PGO_INSERT:
    return "insert";
  case PQS__PGO_UPDATE:
    return "update";
  case PQS__PGO_DELETE:
    return "delete";
  default:
    return "truncate";
  }
}

void pqs__chg_tx_begin(pqs__chg_tx_t *tx, uint64_t commit_lsn,
                       int64_t commit_us, uint32_t xid) {
  tx->commit_lsn = commit_lsn;
  tx->commit_lsn_len = pqs__lsn_text(commit_lsn, tx->commit_lsn_text);
  tx->xid_len = snprintf(tx->xid_text, sizeof(tx->xid_text), "%" PRIu32, xid);
  tx->time_len = commit_time(commit_us, tx->time_text, sizeof(tx->time_text));
}

int pqs__chg_row(pqs__chg_row_t *r, const pqs__chg_tx_t *tx, uint64_t lsn,
                 const pqs__pgo_msg_t *m, const pqs__pgo_relation_t *rel) {
  r->new_json.len = r->old_json.len = r->unchanged.len = 0;
  cell(r, PQS__CHG_LSN, r->lsn, (size_t)pqs__lsn_text(lsn, r->lsn));
  cell(r, PQS__CHG_COMMIT_LSN, tx->commit_lsn_text,
       (size_t)tx->commit_lsn_len);
  cell(r, PQS__CHG_XID, tx->xid_text, (size_t)tx->xid_len);
  cell(r, PQS__CHG_COMMIT_TIME, tx->time_text, (size_t)tx->time_len);
  const char *op = op_name(m->kind);
  cell(r, PQS__CHG_OP, op, strlen(op));
  if (m->kind != PQS__PGO_TRUNCATE)
    rel = m->rel;
  cell(r, PQS__CHG_SCHEMA, rel->schema, strlen(rel->schema));
  cell(r, PQS__CHG_TABLE, rel->table, strlen(rel->table));
  null_cell(r, PQS__CHG_NEW);
  null_cell(r, PQS__CHG_OLD);
  cell(r, PQS__CHG_UNCHANGED, "[]", 2);
  int rc = 0;
  if (m->kind == PQS__PGO_INSERT || m->kind == PQS__PGO_UPDATE) {
    if ((rc = new_json(r, m)) != 0)
      return rc;
    cell(r, PQS__CHG_NEW, r->new_json.data, r->new_json.len - 1);
    cell(r, PQS__CHG_UNCHANGED, r->unchanged.data, r->unchanged.len - 1);
  }
  if (m->kind != PQS__PGO_TRUNCATE && m->old_kind != 0) {
    if ((rc = old_json(r, m)) != 0)
      return rc;
    cell(r, PQS__CHG_OLD, r->old_json.data, r->old_json.len - 1);
  }
  return 0;
}

void pqs__chg_row_free(pqs__chg_row_t *r) {
  pqs__buf_free(&r->new_json);
  pqs__buf_free(&r->old_json);
  pqs__buf_free(&r->unchanged);
}
