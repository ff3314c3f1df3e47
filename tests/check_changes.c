/* Change streams, the first part: pgoutput's messages decoded, on what a
 * real server's logical slot gives (the second test server's: it runs
 * with wal_level=logical) (pg_logical_slot_get_binary_changes
 * returns the very messages a replication connection streams): inserts,
 * updates (TOASTed values unchanged, REPLICA IDENTITY FULL old rows),
 * deletes (the old key), truncates, a relation whose columns change
 * mid-stream, logical messages; and every malformed prefix refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgoutput.h"
#include "pqs_test.h"

/* The slot's messages since the last call, each a malloc'd buffer. */
typedef struct {
  char **msg;
  size_t *len;
  int n;
} msgs_t;

static msgs_t slot_messages(PGconn *admin, const char *slot) {
  char sql[512];
  snprintf(sql, sizeof(sql),
           "SELECT data FROM pg_logical_slot_get_binary_changes('%s', NULL, "
           "NULL, 'proto_version', '1', 'publication_names', 'pqs_pub', "
           "'messages', 'true')",
           slot);
  PGresult *res = PQexecParams(admin, sql, 0, NULL, NULL, NULL, NULL, 1);
  ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s",
                PQerrorMessage(admin));
  msgs_t m = {.n = PQntuples(res)};
  m.msg = calloc((size_t)m.n + 1, sizeof(char *));
  m.len = calloc((size_t)m.n + 1, sizeof(size_t));
  for (int i = 0; i < m.n; i++) {
    m.len[i] = (size_t)PQgetlength(res, i, 0);
    m.msg[i] = malloc(m.len[i] + 1);
    memcpy(m.msg[i], PQgetvalue(res, i, 0), m.len[i]);
  }
  PQclear(res);
  return m;
}

static void msgs_free(msgs_t *m) {
  for (int i = 0; i < m->n; i++)
    free(m->msg[i]);
  free(m->msg);
  free(m->len);
}

/* A value as the trace shows it: its text, <N bytes> if long, u, n. */
static void value(char *out, size_t cap, const pqs__pgo_value_t *v) {
  if (v->kind == PQS__PGO_NULL)
    snprintf(out, cap, "n");
  else if (v->kind == PQS__PGO_UNCHANGED)
    snprintf(out, cap, "u");
  else if (v->len > 40)
    snprintf(out, cap, "<%d bytes>", v->len);
  else
    snprintf(out, cap, "%.*s", v->len, v->ptr);
}

static void tuple(char *out, size_t cap, int n, const pqs__pgo_value_t *v) {
  size_t w = (size_t)snprintf(out, cap, "(");
  for (int i = 0; i < n && w < cap; i++) {
    char one[64];
    value(one, sizeof(one), &v[i]);
    w += (size_t)snprintf(out + w, cap - w, "%s%s", i ? "," : "", one);
  }
  snprintf(out + w, cap - w, ")");
}

/* One line per message, with the checks that do not fit a line. */
static void trace(pqs__pgo_t *d, const msgs_t *m, char *out, size_t cap) {
  size_t w = 0;
  uint64_t last_commit = 0;
  int open = 0;
  out[0] = '\0';
  for (int i = 0; i < m->n; i++) {
    pqs__pgo_msg_t msg;
    const char *why = NULL;
    int rc = pqs__pgo_decode(d, m->msg[i], m->len[i], &msg, &why);
    ck_assert_msg(rc == 0, "message %d ('%c'): %s", i, m->msg[i][0], why);
    char line[1024] = "", a[256], b[256];
    switch (msg.kind) {
    case PQS__PGO_BEGIN:
      ck_assert(!open && msg.lsn > last_commit && msg.xid > 0 &&
                msg.time_us > 0);
      open = 1;
      snprintf(line, sizeof(line), "B");
      break;
    case PQS__PGO_COMMIT:
      ck_assert(open && msg.end_lsn > msg.lsn && msg.time_us > 0);
      open = 0;
      last_commit = msg.lsn;
      snprintf(line, sizeof(line), "C");
      break;
    case PQS__PGO_RELATION: {
      size_t k = (size_t)snprintf(line, sizeof(line), "R %s.%s %c",
                                  msg.rel->schema, msg.rel->table,
                                  msg.rel->replica_identity);
      for (int c = 0; c < msg.rel->ncols; c++)
        k += (size_t)snprintf(line + k, sizeof(line) - k, " %s%s:%u",
                              msg.rel->names[c], msg.rel->key[c] ? "*" : "",
                              msg.rel->types[c]);
      break;
    }
    case PQS__PGO_INSERT:
      tuple(a, sizeof(a), msg.nnew, msg.new_values);
      snprintf(line, sizeof(line), "I %s %s", msg.rel->table, a);
      break;
    case PQS__PGO_UPDATE:
      tuple(a, sizeof(a), msg.nnew, msg.new_values);
      tuple(b, sizeof(b), msg.nold, msg.old_values);
      snprintf(line, sizeof(line), "U %s %s old %c%s", msg.rel->table, a,
               msg.old_kind ? msg.old_kind : '-', msg.old_kind ? b : "");
      break;
    case PQS__PGO_DELETE:
      tuple(b, sizeof(b), msg.nold, msg.old_values);
      snprintf(line, sizeof(line), "D %s old %c%s", msg.rel->table,
               msg.old_kind, b);
      break;
    case PQS__PGO_TRUNCATE:
      ck_assert_int_eq(msg.nrels, 1);
      snprintf(line, sizeof(line), "T %s %d",
               pqs__pgo_relation(d, msg.relids[0])->table, msg.options);
      break;
    case PQS__PGO_MESSAGE:
      snprintf(line, sizeof(line), "M %s %.*s %d", msg.name, msg.content_len,
               msg.content, msg.transactional);
      break;
    default:
      snprintf(line, sizeof(line), "%c", (char)msg.kind);
    }
    w += (size_t)snprintf(out + w, cap - w, "%s\n", line);
  }
  ck_assert(!open);
}

/* The second test server, which runs with wal_level=logical. */
static PGconn *logical_server(void) {
  const char *c = getenv("PQS_TEST_CONNINFO2");
  ck_assert_msg(c != NULL, "PQS_TEST_CONNINFO2 is not set: the test command "
                           "starts a second server with wal_level=logical");
  PGconn *admin = PQconnectdb(c);
  ck_assert_msg(PQstatus(admin) == CONNECTION_OK, "%s", PQerrorMessage(admin));
  PGresult *wl = PQexec(admin, "SHOW wal_level");
  ck_assert_msg(strcmp(PQgetvalue(wl, 0, 0), "logical") == 0,
                "the second test server needs wal_level=logical (tests/pg.sh "
                "start DIR logical), not %s", PQgetvalue(wl, 0, 0));
  PQclear(wl);
  return admin;
}

START_TEST(pgoutput_decoded) {
  PGconn *admin = logical_server();
  pt_sql(admin, "DROP TABLE IF EXISTS chg, chg_full;"
                "DROP PUBLICATION IF EXISTS pqs_pub;"
                "CREATE TABLE chg (id int PRIMARY KEY, name text, big text);"
                "CREATE TABLE chg_full (a int, b text);"
                "ALTER TABLE chg_full REPLICA IDENTITY FULL;"
                "CREATE PUBLICATION pqs_pub FOR TABLE chg, chg_full");
  /* a slot is made outside a transaction that wrote; one left by a run
   * that died is dropped first */
  pt_sql(admin, "SELECT pg_drop_replication_slot(slot_name) FROM "
                "pg_replication_slots WHERE slot_name = 'pqs_dec'");
  pt_sql(admin, "SELECT pg_create_logical_replication_slot('pqs_dec', "
                "'pgoutput')");
  /* a big value of its own, stored out of line (TOAST): not compressible */
  pt_sql(admin, "INSERT INTO chg SELECT 1, 'one', string_agg(md5(g::text), "
                "'') FROM generate_series(1, 2000) g");
  pt_sql(admin, "UPDATE chg SET name = 'uno' WHERE id = 1");
  pt_sql(admin, "BEGIN; INSERT INTO chg VALUES (2, NULL, 'tab\there');"
                "UPDATE chg SET id = 3 WHERE id = 2; COMMIT");
  pt_sql(admin, "DELETE FROM chg WHERE id = 1");
  pt_sql(admin, "INSERT INTO chg_full VALUES (7, 'seven');"
                "UPDATE chg_full SET b = 'SEVEN';"
                "DELETE FROM chg_full");
  pt_sql(admin, "ALTER TABLE chg ADD COLUMN extra int;"
                "INSERT INTO chg VALUES (4, 'four', NULL, 44)");
  pt_sql(admin, "SELECT pg_logical_emit_message(true, 'pqs', 'hello')");
  pt_sql(admin, "TRUNCATE chg");
  msgs_t m = slot_messages(admin, "pqs_dec");
  pqs__pgo_t *d = pqs__pgo_new();
  ck_assert_ptr_nonnull(d);
  char got[8192];
  trace(d, &m, got, sizeof(got));
  const char *want =
      "B\nR public.chg d id*:23 name:25 big:25\nI chg (1,one,<64000 bytes>)\nC\n"
      /* the big value not sent (TOASTed, not changed); no old key: the
       * key did not change */
      "B\nU chg (1,uno,u) old -\nC\n"
      "B\nI chg (2,n,tab\there)\nU chg (3,n,tab\there) old K(2,n,n)\nC\n"
      "B\nD chg old K(1,n,n)\nC\n"
      /* REPLICA IDENTITY FULL: every column is the key, old rows whole */
      "B\nR public.chg_full f a*:23 b*:25\nI chg_full (7,seven)\n"
      "U chg_full (7,SEVEN) old O(7,seven)\nD chg_full old O(7,SEVEN)\nC\n"
      /* a column added: the relation described again before its change */
      "B\nR public.chg d id*:23 name:25 big:25 extra:23\n"
      "I chg (4,four,n,44)\nC\n"
      "B\nM pqs hello 1\nC\n"
      "B\nR public.chg d id*:23 name:25 big:25 extra:23\nT chg 0\nC\n";
  ck_assert_msg(strcmp(got, want) == 0, "got:\n%s\nwant:\n%s", got, want);
  pqs__pgo_free(d);
  /* Every proper prefix of every message is refused, never read past. */
  d = pqs__pgo_new();
  for (int i = 0; i < m.n; i++) {
    pqs__pgo_msg_t msg;
    const char *why;
    for (size_t cut = 0; cut < m.len[i]; cut++) {
      char *part = malloc(cut ? cut : 1); /* exactly cut bytes: ASan sees */
      memcpy(part, m.msg[i], cut);
      int rc = pqs__pgo_decode(d, part, cut, &msg, &why);
      free(part);
      ck_assert_msg(rc != 0,
                    "message %d cut at %zu of %zu decoded", i, cut, m.len[i]);
    }
    ck_assert_int_eq(pqs__pgo_decode(d, m.msg[i], m.len[i], &msg, &why), 0);
  }
  pqs__pgo_free(d);
  msgs_free(&m);
  pt_sql(admin, "SELECT pg_drop_replication_slot('pqs_dec');"
                "DROP PUBLICATION pqs_pub; DROP TABLE chg, chg_full");
  PQfinish(admin);
}
END_TEST

/* Changes of a relation never described, and unknown kinds, are errors
 * that say so. */
START_TEST(pgoutput_refuses) {
  pqs__pgo_t *d = pqs__pgo_new();
  pqs__pgo_msg_t msg;
  const char *why = NULL;
  const char insert[] = {'I', 0, 0, 0, 42, 'N', 0, 0};
  ck_assert_int_eq(pqs__pgo_decode(d, insert, sizeof(insert), &msg, &why),
                   PQS_EFORMAT);
  ck_assert_ptr_nonnull(strstr(why, "not described"));
  ck_assert_int_eq(pqs__pgo_decode(d, "Z", 1, &msg, &why), PQS_EFORMAT);
  ck_assert_ptr_nonnull(strstr(why, "unknown kind"));
  ck_assert_int_eq(pqs__pgo_decode(d, "", 0, &msg, &why), PQS_EFORMAT);
  pqs__pgo_free(d);
}
END_TEST

int main(void) {
  Suite *s = suite_create("changes");
  TCase *tc = tcase_create("changes");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, pgoutput_decoded);
  tcase_add_test(tc, pgoutput_refuses);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
