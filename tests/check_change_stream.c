#define _DEFAULT_SOURCE /* usleep */
/* Change streams (pqs_changes) against the second test server, which runs
 * with wal_level=logical: every kind of change with its values, the
 * corpus of every type through `new` as row_to_json writes it, TOAST
 * values unchanged, replica identity full, a column added mid-stream,
 * truncate; acknowledgement (a clean stop delivers nothing twice, a stop
 * inside a transaction and a consumer killed with SIGKILL lose nothing);
 * a reader paused for three times wal_sender_timeout stays connected; a
 * reset connection ends with one completion; the errors said before
 * anything streams. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultproxy.h"
#include "pqs_test.h"

static const char *conninfo2(void) {
  const char *c = getenv("PQS_TEST_CONNINFO2");
  ck_assert_msg(c != NULL, "PQS_TEST_CONNINFO2 is not set: the test command "
                           "starts a second server with wal_level=logical");
  return c;
}

static PGconn *admin2(void) {
  PGconn *admin = PQconnectdb(conninfo2());
  ck_assert_msg(PQstatus(admin) == CONNECTION_OK, "%s", PQerrorMessage(admin));
  char *wl = pt_scalar(admin, "SHOW wal_level");
  ck_assert_msg(strcmp(wl, "logical") == 0,
                "the second test server needs wal_level=logical (tests/pg.sh "
                "start DIR logical), not %s", wl);
  free(wl);
  return admin;
}

/* A replication context on `base` (+ `extra` keys). */
static pqs_ctx_t *open_repl(uv_loop_t *loop, const char *base,
                            const char *extra) {
  char ci[1024];
  snprintf(ci, sizeof(ci), "%s replication=database %s", base,
           extra ? extra : "");
  return pt_open(loop, ci);
}

static void drop_slot(PGconn *admin, const char *slot) {
  char sql[512];
  snprintf(sql, sizeof(sql),
           "SELECT pg_drop_replication_slot(slot_name) FROM "
           "pg_replication_slots WHERE slot_name = '%s'",
           slot);
  pt_sql(admin, sql);
}

/* A new slot, made before the test's changes (one a run that died left
 * is dropped first). */
static void fresh_slot(PGconn *admin, const char *slot) {
  char sql[512];
  drop_slot(admin, slot);
  snprintf(sql, sizeof(sql),
           "SELECT pg_create_logical_replication_slot('%s', 'pgoutput')",
           slot);
  pt_sql(admin, sql);
}

/* What a consumer saw: each row as "op table new old unchanged" lines
 * (the variable columns left out), and the rows' ids in `new` or `old`. */
#define TEXT_CAP (1 << 20)
typedef struct {
  char *text; /* TEXT_CAP bytes */
  size_t len;
  int rows, want, pause_ms, paused, close_after;
  uint64_t last_lsn_seen;
  pqs_stream_t *s;
  uv_timer_t timer;
  pt_done_t done;
  int col_lsn, ok_lsn;
  char commit_lsn[32];
  int same_tx; /* rows that had the first row's commit_lsn */
  int ack_each; /* manual acks: each row acknowledged as it comes */
  long long id_sum; /* of "id" in new */
  int columns;      /* on_columns calls */
} seen_t;

static const char *text_of(const pqs_row_t *row, int col) {
  size_t n;
  const char *t = pqs_row_text(row, col, &n);
  return t ? t : "NULL";
}

static void on_resume(uv_timer_t *t) {
  seen_t *v = t->data;
  pqs_stream_resume(v->s);
}

static void on_close_later(uv_timer_t *t) {
  seen_t *v = t->data;
  pqs_stream_close(v->s);
}

static int on_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  seen_t *v = data;
  v->s = s;
  ck_assert_int_eq(pqs_row_ncols(row), 10);
  ck_assert_str_eq(pqs_row_name(row, 0), "lsn");
  ck_assert_str_eq(pqs_row_name(row, 9), "unchanged");
  if (v->rows == 0)
    snprintf(v->commit_lsn, sizeof(v->commit_lsn), "%s", text_of(row, 1));
  v->same_tx += strcmp(v->commit_lsn, text_of(row, 1)) == 0;
  ck_assert_ptr_nonnull(strchr(text_of(row, 0), '/'));
  ck_assert_msg(strstr(text_of(row, 3), "+00") != NULL, "commit_time %s",
                text_of(row, 3));
  if (v->len < TEXT_CAP - 1024)
    v->len += (size_t)snprintf(v->text + v->len, TEXT_CAP - v->len,
                               "%s %s %s %s %s\n", text_of(row, 4),
                               text_of(row, 6), text_of(row, 7),
                               text_of(row, 8), text_of(row, 9));
  v->rows++;
  const char *id = strstr(text_of(row, 7), "{\"id\":");
  if (id != NULL)
    v->id_sum += strtoll(id + 6, NULL, 10);
  if (v->ack_each)
    ck_assert_int_eq(pqs_changes_ack(s, (uint64_t)v->rows), 0);
  if (v->pause_ms && v->rows == 1) {
    v->paused = 1;
    uv_timer_start(&v->timer, on_resume, (uint64_t)v->pause_ms, 0);
    return PQS_PAUSE;
  }
  if (v->rows == v->want) {
    if (!v->close_after)
      return PQS_STOP;
    /* after the transaction's Commit has been read */
    uv_timer_start(&v->timer, on_close_later, (uint64_t)v->close_after, 0);
  }
  return PQS_CONTINUE;
}

static void seen_init(seen_t *v, uv_loop_t *loop) {
  memset(v, 0, sizeof(*v));
  v->text = calloc(1, TEXT_CAP);
  uv_timer_init(loop, &v->timer);
  v->timer.data = v;
}

static void seen_end(seen_t *v, uv_loop_t *loop) {
  free(v->text);
  uv_close((uv_handle_t *)&v->timer, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
}

/* pt_on_done records into the pt_done_t at the start of its data: seen_t
 * has its own, so the callbacks' data is given that. */
static void on_done_seen(pqs_stream_t *s, const pqs_done_t *d, void *data) {
  pt_on_done(s, d, &((seen_t *)data)->done);
}

static int on_columns(pqs_stream_t *s, const pqs_row_t *cols, void *data) {
  (void)s;
  seen_t *v = data;
  v->columns++;
  ck_assert_int_eq(pqs_row_ncols(cols), 10);
  if (v->want == 0 && v->close_after)
    uv_timer_start(&v->timer, on_close_later, (uint64_t)v->close_after, 0);
  return PQS_CONTINUE;
}

static void stream_seen(uv_loop_t *loop, pqs_ctx_t *ctx,
                        const pqs_changes_opts_t *o, seen_t *v) {
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_changes(ctx, &s, o), 0);
  v->s = s;
  pqs_stream_cbs_t cbs = {.on_columns = on_columns, .on_row = on_row,
                          .on_done = on_done_seen};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, v), 0);
  while (v->done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(v->done.calls, 1);
}

static const char *const pubs[] = {"cs_pub"};

static void tables(PGconn *admin) {
  pt_sql(admin, "SET client_min_messages = warning;"
                "DROP TABLE IF EXISTS cs, cs_full;"
                "DROP PUBLICATION IF EXISTS cs_pub;"
                "CREATE TABLE cs (id int PRIMARY KEY, name text, big text,"
                " n numeric, ok bool, at date);"
                "CREATE TABLE cs_full (a int, b text, big text);"
                "ALTER TABLE cs_full REPLICA IDENTITY FULL;"
                "CREATE PUBLICATION cs_pub FOR TABLE cs, cs_full");
}

/* Every kind of change, with its values as row_to_json writes them. */
START_TEST(every_kind_of_change) {
  PGconn *admin = admin2();
  tables(admin);
  fresh_slot(admin, "cs_kinds");
  pt_sql(admin, "INSERT INTO cs SELECT 1, 'one', string_agg(md5(g::text), "
                "''), 1.50, true, '2026-01-02' FROM generate_series(1, 2000) "
                "g");
  pt_sql(admin, "UPDATE cs SET name = 'uno' WHERE id = 1");
  pt_sql(admin, "BEGIN; INSERT INTO cs VALUES (2, 'tab\there \"q\"', NULL, "
                "'NaN', false, NULL); UPDATE cs SET id = 3 WHERE id = 2; "
                "COMMIT");
  pt_sql(admin, "DELETE FROM cs WHERE id = 1");
  pt_sql(admin, "INSERT INTO cs_full SELECT 7, 'seven', string_agg(md5(g::"
                "text), '') FROM generate_series(1, 2000) g;"
                "UPDATE cs_full SET b = 'SEVEN'; DELETE FROM cs_full");
  pt_sql(admin, "ALTER TABLE cs ADD COLUMN extra int[];"
                "INSERT INTO cs (id, extra) VALUES (4, '{1,NULL,3}')");
  pt_sql(admin, "TRUNCATE cs, cs_full");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_repl(loop, conninfo2(), NULL);
  seen_t v;
  seen_init(&v, loop);
  v.want = 11;
  pqs_changes_opts_t o = {.slot = "cs_kinds", .publications = pubs,
                          .npublications = 1};
  stream_seen(loop, ctx, &o, &v);
  ck_assert_int_eq(v.done.status, PQS_ECANCELED);
  /* the md5 text of 2000 values, as the server would make it */
  char *big = pt_scalar(admin, "SELECT string_agg(md5(g::text), '') FROM "
                               "generate_series(1, 2000) g");
  static char want[TEXT_CAP];
  snprintf(
      want, sizeof(want),
      "insert cs {\"id\":1,\"name\":\"one\",\"big\":\"%s\",\"n\":1.50,"
      "\"ok\":true,\"at\":\"2026-01-02\"} NULL []\n"
      /* the TOASTed value not sent: unchanged, never null */
      "update cs {\"id\":1,\"name\":\"uno\",\"n\":1.50,\"ok\":true,"
      "\"at\":\"2026-01-02\"} NULL [\"big\"]\n"
      "insert cs {\"id\":2,\"name\":\"tab\\there \\\"q\\\"\",\"big\":null,"
      "\"n\":\"NaN\",\"ok\":false,\"at\":null} NULL []\n"
      /* the key changed: the old key, its columns only */
      "update cs {\"id\":3,\"name\":\"tab\\there \\\"q\\\"\",\"big\":null,"
      "\"n\":\"NaN\",\"ok\":false,\"at\":null} {\"id\":2} []\n"
      "delete cs NULL {\"id\":1} []\n"
      "insert cs_full {\"a\":7,\"b\":\"seven\",\"big\":\"%s\"} NULL []\n"
      /* identity full: the unsent value taken from the old row */
      "update cs_full {\"a\":7,\"b\":\"SEVEN\",\"big\":\"%s\"} "
      "{\"a\":7,\"b\":\"seven\",\"big\":\"%s\"} []\n"
      "delete cs_full NULL {\"a\":7,\"b\":\"SEVEN\",\"big\":\"%s\"} []\n"
      /* the column added mid-stream */
      "insert cs {\"id\":4,\"name\":null,\"big\":null,\"n\":null,"
      "\"ok\":null,\"at\":null,\"extra\":[1,null,3]} NULL []\n"
      "truncate cs NULL NULL []\ntruncate cs_full NULL NULL []\n",
      big, big, big, big, big);
  if (strcmp(v.text, want) != 0)
    fprintf(stderr, "got:\n%s\nwant:\n%s\n", v.text, want);
  ck_assert_msg(strcmp(v.text, want) == 0, "the changes differ (on stderr)");
  free(big);
  seen_end(&v, loop);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  drop_slot(admin, "cs_kinds");
  PQfinish(admin);
}
END_TEST


/* ---- the corpus of every type, through `new` ---- */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct {
  char **lines;
  int n, cap, want, done, status;
} lines_t;

static void lines_add(lines_t *l, char *line) {
  if (l->n == l->cap) {
    l->cap = l->cap ? 2 * l->cap : 256;
    l->lines = realloc(l->lines, (size_t)l->cap * sizeof(char *));
  }
  l->lines[l->n++] = line;
}

static void lines_free(lines_t *l) {
  for (int i = 0; i < l->n; i++)
    free(l->lines[i]);
  free(l->lines);
}

static int on_row_line(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  lines_t *l = data;
  /* an insert's new row, a delete's old one (REPLICA IDENTITY FULL) */
  int col = strcmp(text_of(row, 4), "delete") == 0 ? 8 : 7;
  const char *table = text_of(row, 6), *new = text_of(row, col);
  char *line = malloc(strlen(table) + strlen(new) + 2);
  sprintf(line, "%s\t%s", table, new);
  lines_add(l, line);
  return l->n == l->want ? PQS_STOP : PQS_CONTINUE;
}

static void on_done_lines(pqs_stream_t *s, const pqs_done_t *d, void *data) {
  (void)s;
  lines_t *l = data;
  l->done++;
  l->status = d->status;
}

/* What row_to_json writes for each row of corpus2's tables: a user's type
 * (and arrays of one) as the string of its text, as a change row has it. */
static void expected_lines(PGconn *admin, lines_t *want) {
  PGresult *q = PQexec(
      admin,
      "SELECT c.relname, format('SELECT %L || E''\\t'' || row_to_json(q)::"
      "text FROM (SELECT %s FROM corpus2.%I) q', c.relname, string_agg("
      "CASE WHEN a.atttypid >= 16384 OR el.oid >= 16384 THEN format('%I::"
      "text AS %I', a.attname, a.attname) ELSE format('%I', a.attname) END, "
      "', ' ORDER BY a.attnum), c.relname) FROM pg_class c JOIN pg_attribute"
      " a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped JOIN"
      " pg_type ty ON ty.oid = a.atttypid LEFT JOIN pg_type el ON el.oid = "
      "ty.typelem AND ty.typelem <> 0 WHERE c.relnamespace = "
      "'corpus2'::regnamespace AND c.relkind = 'r' GROUP BY c.relname");
  ck_assert_msg(PQresultStatus(q) == PGRES_TUPLES_OK, "%s",
                PQerrorMessage(admin));
  for (int t = 0; t < PQntuples(q); t++) {
    PGresult *r = PQexec(admin, PQgetvalue(q, t, 1));
    ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK, "%s",
                  PQerrorMessage(admin));
    for (int i = 0; i < PQntuples(r); i++)
      lines_add(want, strdup(PQgetvalue(r, i, 0)));
    PQclear(r);
  }
  PQclear(q);
}

static void load_corpus2(PGconn *admin) {
  pt_load_corpus(admin, PQS_TEST_CORPUS);
  pt_sql(admin,
         "SET client_min_messages = warning; RESET search_path;"
         "DROP PUBLICATION IF EXISTS corpus_pub;"
         "DROP SCHEMA IF EXISTS corpus2 CASCADE; CREATE SCHEMA corpus2;"
         "DO $$DECLARE t text; BEGIN FOR t IN SELECT relname FROM pg_class "
         "WHERE relnamespace = 'corpus'::regnamespace AND relkind = 'r' LOOP "
         "EXECUTE format('CREATE TABLE corpus2.%I (LIKE corpus.%I)', t, t); "
         "END LOOP; END$$;"
         "CREATE PUBLICATION corpus_pub FOR TABLES IN SCHEMA corpus2");
}

/* Every type of the corpus through `new` (inserts) and `old` (deletes
 * under REPLICA IDENTITY FULL), as row_to_json writes each row. */
START_TEST(every_type_as_row_to_json) {
  PGconn *admin = admin2();
  load_corpus2(admin);
  fresh_slot(admin, "cs_corpus");
  pt_sql(admin, "DO $$DECLARE t text; BEGIN FOR t IN SELECT relname FROM "
                "pg_class WHERE relnamespace = 'corpus2'::regnamespace AND "
                "relkind = 'r' LOOP EXECUTE format('INSERT INTO corpus2.%I "
                "SELECT * FROM corpus.%I', t, t); END LOOP; END$$");
  lines_t want = {0}, got = {0};
  expected_lines(admin, &want);
  ck_assert_int_gt(want.n, 20);
  /* the same rows again as deletes' old rows, whole */
  expected_lines(admin, &want);
  pt_sql(admin, "DO $$DECLARE t text; BEGIN FOR t IN SELECT relname FROM "
                "pg_class WHERE relnamespace = 'corpus2'::regnamespace AND "
                "relkind = 'r' LOOP EXECUTE format('ALTER TABLE corpus2.%I "
                "REPLICA IDENTITY FULL; DELETE FROM corpus2.%I', t, t); END "
                "LOOP; END$$");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_repl(loop, conninfo2(), NULL);
  static const char *const cpubs[] = {"corpus_pub"};
  pqs_changes_opts_t o = {.slot = "cs_corpus", .publications = cpubs,
                          .npublications = 1};
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_changes(ctx, &s, &o), 0);
  got.want = want.n;
  pqs_stream_cbs_t cbs = {.on_row = on_row_line, .on_done = on_done_lines};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &got), 0);
  while (!got.done)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(got.status, PQS_ECANCELED);
  ck_assert_int_eq(got.n, want.n);
  qsort(want.lines, (size_t)want.n, sizeof(char *), cmp_str);
  qsort(got.lines, (size_t)got.n, sizeof(char *), cmp_str);
  for (int i = 0; i < want.n; i++)
    ck_assert_msg(strcmp(got.lines[i], want.lines[i]) == 0,
                  "a change's new differs from row_to_json:\n got  %.600s\n"
                  " want %.600s", got.lines[i], want.lines[i]);
  lines_free(&want);
  lines_free(&got);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  drop_slot(admin, "cs_corpus");
  pt_sql(admin, "DROP PUBLICATION corpus_pub");
  PQfinish(admin);
}
END_TEST

/* ---- acknowledgement ---- */

static char *slot_flushed(PGconn *admin, const char *slot) {
  char sql[256];
  snprintf(sql, sizeof(sql),
           "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE "
           "slot_name = '%s'", slot);
  return pt_scalar(admin, sql);
}

static int lsn_ge(PGconn *admin, const char *a, const char *b) {
  char sql[256];
  snprintf(sql, sizeof(sql), "SELECT '%s'::pg_lsn >= '%s'::pg_lsn", a, b);
  char *r = pt_scalar(admin, sql);
  int yes = strcmp(r, "t") == 0;
  free(r);
  return yes;
}

/* Waits until no stream uses the slot (its walsender has gone). */
static void wait_slot_free(PGconn *admin, const char *slot) {
  char sql[256];
  snprintf(sql, sizeof(sql),
           "SELECT active FROM pg_replication_slots WHERE slot_name = '%s'",
           slot);
  double end = pt_now() + 20;
  char *r;
  while (strcmp((r = pt_scalar(admin, sql)), "f") != 0 && pt_now() < end) {
    free(r);
    usleep(50000);
  }
  ck_assert_msg(strcmp(r, "f") == 0, "slot %s still in use", slot);
  free(r);
}

/* One stream of `want` changes on `slot`, ended by a close `close_after`
 * ms after the last (its Commit read), or by PQS_STOP at it (0). */
static void run_once(uv_loop_t *loop, const char *slot, int want,
                     int close_after, int manual, seen_t *v) {
  pqs_ctx_t *ctx = open_repl(loop, conninfo2(), NULL);
  seen_init(v, loop);
  v->want = want;
  v->close_after = close_after;
  v->ack_each = manual == 2;
  pqs_changes_opts_t o = {.slot = slot, .publications = pubs,
                          .npublications = 1, .status_interval_ms = 200,
                          .manual_ack = manual != 0};
  stream_seen(loop, ctx, &o, v);
  ck_assert_msg(v->done.status == PQS_ECANCELED, "%s: %s (%d rows)",
                pqs_err_name(v->done.status), v->done.message, v->rows);
  ck_assert_int_eq(v->rows, want);
  /* the context stays usable, for anything but a second stream */
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 0);
  pqs_stream_t *again;
  ck_assert_int_eq(pqs_changes(ctx, &again, &o), PQS_ESTATE);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
  pt_close(loop, ctx);
}

START_TEST(acknowledged_after_use) {
  PGconn *admin = admin2();
  tables(admin);
  pt_sql(admin, "DROP TABLE IF EXISTS cs_other; CREATE TABLE cs_other (x int)");
  fresh_slot(admin, "cs_ack");
  uv_loop_t *loop = pt_loop_new();
  seen_t v;
  /* two transactions used whole, then a clean stop: nothing comes twice */
  pt_sql(admin, "BEGIN; INSERT INTO cs (id) VALUES (1), (2); COMMIT;"
                "INSERT INTO cs (id) VALUES (3)");
  run_once(loop, "cs_ack", 3, 300, 0, &v);
  ck_assert_int_eq(v.id_sum, 6);
  seen_end(&v, loop);
  pt_sql(admin, "BEGIN; INSERT INTO cs (id) VALUES (4), (5); COMMIT");
  /* stopped inside the transaction: it comes again from its first */
  run_once(loop, "cs_ack", 1, 0, 0, &v);
  ck_assert_int_eq(v.id_sum, 4);
  seen_end(&v, loop);
  run_once(loop, "cs_ack", 2, 300, 0, &v);
  ck_assert_int_eq(v.id_sum, 9);
  seen_end(&v, loop);
  /* manual acks: what was not acknowledged comes again */
  pt_sql(admin, "INSERT INTO cs (id) VALUES (6)");
  run_once(loop, "cs_ack", 1, 300, 1, &v);
  ck_assert_int_eq(v.id_sum, 6);
  seen_end(&v, loop);
  run_once(loop, "cs_ack", 1, 300, 2, &v); /* acknowledged this time */
  ck_assert_int_eq(v.id_sum, 6);
  seen_end(&v, loop);
  /* an idle slot moves past WAL of tables it does not publish */
  pt_sql(admin, "INSERT INTO cs_other VALUES (1)");
  char *wal = pt_scalar(admin, "SELECT pg_current_wal_lsn()");
  pt_sql(admin, "INSERT INTO cs (id) VALUES (7)");
  run_once(loop, "cs_ack", 1, 1500, 0, &v);
  ck_assert_int_eq(v.id_sum, 7);
  seen_end(&v, loop);
  char *flushed = slot_flushed(admin, "cs_ack");
  ck_assert_msg(lsn_ge(admin, flushed, wal), "slot at %s, WAL at %s", flushed,
                wal);
  free(flushed);
  free(wal);
  /* and with nothing published since, the next stream has nothing */
  pqs_ctx_t *ctx = open_repl(loop, conninfo2(), NULL);
  seen_init(&v, loop);
  v.close_after = 1000;
  pqs_changes_opts_t o = {.slot = "cs_ack", .publications = pubs,
                          .npublications = 1, .status_interval_ms = 200};
  stream_seen(loop, ctx, &o, &v);
  ck_assert_int_eq(v.rows, 0);
  ck_assert_int_eq(v.columns, 1);
  ck_assert_int_eq(v.done.status, PQS_ECANCELED);
  seen_end(&v, loop);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  drop_slot(admin, "cs_ack");
  PQfinish(admin);
}
END_TEST

/* A consumer killed (SIGKILL) in the middle of a large transaction: the
 * next stream has every change of it. The consumer stops reading at its
 * 20,000th change (paused: its status updates go on), so that it is
 * inside the transaction however fast it reads. */
static int on_row_then_stall(pqs_stream_t *s, const pqs_row_t *row,
                             void *data) {
  seen_t *v = data;
  (void)s;
  (void)row;
  return ++v->rows == 20000 ? PQS_PAUSE : PQS_CONTINUE;
}

static void consume_forever(int ready_fd) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  pqs_ctx_t *ctx = open_repl(&loop, conninfo2(), NULL);
  seen_t v;
  seen_init(&v, &loop);
  v.want = -1;
  pqs_changes_opts_t o = {.slot = "cs_kill", .publications = pubs,
                          .npublications = 1, .status_interval_ms = 100};
  pqs_stream_t *s;
  if (pqs_changes(ctx, &s, &o) != 0)
    _exit(2);
  pqs_stream_cbs_t cbs = {.on_row = on_row_then_stall,
                          .on_done = on_done_seen};
  pqs_stream_start(s, &cbs, &v);
  int told = 0;
  while (v.done.calls == 0) {
    uv_run(&loop, UV_RUN_ONCE);
    if (!told && v.rows >= 20000) {
      told = 1;
      if (write(ready_fd, "x", 1) != 1)
        _exit(3);
    }
  }
  _exit(4); /* never: it is killed first */
}

START_TEST(killed_consumer_loses_nothing) {
  PGconn *admin = admin2();
  tables(admin);
  fresh_slot(admin, "cs_kill");
  pt_sql(admin, "INSERT INTO cs (id) SELECT g FROM generate_series(1, "
                "200000) g");
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    close(fds[0]);
    consume_forever(fds[1]);
  }
  close(fds[1]);
  char c;
  ck_assert_msg(read(fds[0], &c, 1) == 1, "the consumer never got going");
  close(fds[0]);
  kill(pid, SIGKILL);
  int st;
  waitpid(pid, &st, 0);
  ck_assert(WIFSIGNALED(st));
  wait_slot_free(admin, "cs_kill");
  uv_loop_t *loop = pt_loop_new();
  seen_t v;
  run_once(loop, "cs_kill", 200000, 300, 0, &v);
  ck_assert_int_eq(v.id_sum, 200000LL * 200001 / 2);
  ck_assert_int_eq(v.same_tx, 200000); /* one transaction, whole */
  seen_end(&v, loop);
  pt_loop_free(loop);
  drop_slot(admin, "cs_kill");
  PQfinish(admin);
}
END_TEST

/* A reader paused for three times wal_sender_timeout is not dropped: the
 * status updates go on while it pauses. */
START_TEST(paused_reader_stays_connected) {
  PGconn *admin = admin2();
  tables(admin);
  fresh_slot(admin, "cs_pause");
  pt_sql(admin, "INSERT INTO cs (id) VALUES (1); INSERT INTO cs (id) VALUES "
                "(2); INSERT INTO cs (id) VALUES (3)");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx =
      open_repl(loop, conninfo2(), "options='-c wal_sender_timeout=2s'");
  int pid = pqs_ctx_backend_pid(ctx);
  seen_t v;
  seen_init(&v, loop);
  v.want = 3;
  v.pause_ms = 6000;
  v.close_after = 300;
  pqs_changes_opts_t o = {.slot = "cs_pause", .publications = pubs,
                          .npublications = 1};
  double t0 = pt_now();
  stream_seen(loop, ctx, &o, &v);
  ck_assert_msg(pt_now() - t0 >= 6.0, "the pause did not last");
  ck_assert_msg(v.done.status == PQS_ECANCELED, "%s: %s",
                pqs_err_name(v.done.status), v.done.message);
  ck_assert_int_eq(v.rows, 3);
  ck_assert_int_eq(pqs_ctx_backend_pid(ctx), pid);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 0);
  seen_end(&v, loop);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  drop_slot(admin, "cs_pause");
  PQfinish(admin);
}
END_TEST

/* The connection reset under a running stream: one completion, soon. */
static void on_reset(uv_timer_t *t) { pt_proxy_reset(t->data); }

START_TEST(reset_mid_stream_ends_it) {
  PGconn *admin = admin2();
  tables(admin);
  fresh_slot(admin, "cs_reset");
  char *port = pt_scalar(admin, "SHOW port");
  pt_proxy_t *proxy = pt_proxy_start(atoi(port));
  free(port);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_repl(loop, pt_proxy_conninfo(proxy), NULL);
  seen_t v;
  seen_init(&v, loop);
  uv_timer_t reset;
  uv_timer_init(loop, &reset);
  reset.data = proxy;
  uv_timer_start(&reset, on_reset, 500, 0);
  pqs_changes_opts_t o = {.slot = "cs_reset", .publications = pubs,
                          .npublications = 1};
  double t0 = pt_now();
  stream_seen(loop, ctx, &o, &v);
  ck_assert_msg(pt_now() - t0 < 10, "the reset took %.1f s to end it",
                pt_now() - t0);
  ck_assert_msg(v.done.status == PQS_ECONNLOST, "%s: %s",
                pqs_err_name(v.done.status), v.done.message);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  uv_close((uv_handle_t *)&reset, NULL);
  seen_end(&v, loop);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  pt_proxy_stop(proxy);
  wait_slot_free(admin, "cs_reset");
  drop_slot(admin, "cs_reset");
  PQfinish(admin);
}
END_TEST

/* ---- errors before anything streams ---- */

static void expect_refusal(uv_loop_t *loop, pqs_ctx_t *ctx,
                           const pqs_changes_opts_t *o, const char *sqlstate,
                           const char *words) {
  seen_t v;
  seen_init(&v, loop);
  stream_seen(loop, ctx, o, &v);
  ck_assert_msg(v.done.status == PQS_ESQL, "%s: %s",
                pqs_err_name(v.done.status), v.done.message);
  ck_assert_str_eq(v.done.sqlstate, sqlstate);
  ck_assert_msg(strstr(v.done.message, words) != NULL, "%s",
                v.done.message);
  ck_assert_int_eq(v.rows, 0);
  ck_assert_int_eq(v.columns, 0);
  seen_end(&v, loop);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 0);
}

START_TEST(clear_errors_before_streaming) {
  PGconn *admin = admin2();
  tables(admin);
  fresh_slot(admin, "cs_err");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_repl(loop, conninfo2(), NULL);
  pqs_changes_opts_t o = {.slot = "cs_missing", .publications = pubs,
                          .npublications = 1};
  expect_refusal(loop, ctx, &o, "42704", "replication slot \"cs_missing\" "
                                         "does not exist");
  static const char *const nopub[] = {"cs_pub", "no_such_pub"};
  o = (pqs_changes_opts_t){.slot = "cs_err", .publications = nopub,
                           .npublications = 2};
  expect_refusal(loop, ctx, &o, "42704", "publication no_such_pub does not");
  /* a slot in use by another stream */
  pqs_ctx_t *other = open_repl(loop, conninfo2(), NULL);
  seen_t first;
  seen_init(&first, loop);
  pqs_stream_t *s1;
  o = (pqs_changes_opts_t){.slot = "cs_err", .publications = pubs,
                           .npublications = 1};
  ck_assert_int_eq(pqs_changes(other, &s1, &o), 0);
  pqs_stream_cbs_t cbs = {.on_columns = on_columns, .on_row = on_row,
                          .on_done = on_done_seen};
  ck_assert_int_eq(pqs_stream_start(s1, &cbs, &first), 0);
  while (first.columns == 0)
    uv_run(loop, UV_RUN_ONCE);
  expect_refusal(loop, ctx, &o, "55006", "is in use");
  pqs_stream_close(s1);
  while (first.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  seen_end(&first, loop);
  pt_close(loop, other);
  /* bad options, and a context that is not a replication connection */
  pqs_stream_t *s;
  o.slot = "Bad-Name";
  ck_assert_int_eq(pqs_changes(ctx, &s, &o), PQS_EINVAL);
  o.slot = "cs_err";
  o.npublications = 0;
  ck_assert_int_eq(pqs_changes(ctx, &s, &o), PQS_EINVAL);
  ck_assert_int_eq(pqs_changes(ctx, &s, NULL), PQS_EINVAL);
  o.npublications = 1;
  pqs_ctx_t *plain = pt_open(loop, conninfo2());
  ck_assert_int_eq(pqs_changes(plain, &s, &o), PQS_EINVAL);
  ck_assert_int_eq(pqs_ctx_is_busy(plain), 0);
  pt_close(loop, plain);
  pt_close(loop, ctx);
  /* a server whose wal_level is not logical (the first test server) */
  ctx = open_repl(loop, pt_conninfo(), NULL);
  expect_refusal(loop, ctx, &o, "55000", "wal_level");
  pt_close(loop, ctx);
  /* a role without REPLICATION: the server refuses the connection */
  pt_sql(admin, "DROP ROLE IF EXISTS cs_norepl; CREATE ROLE cs_norepl LOGIN");
  char ci[1024];
  snprintf(ci, sizeof(ci), "%s user=cs_norepl replication=database",
           conninfo2());
  pt_opened_t r = {0};
  pqs_ctx_t *bad;
  pqs_ctx_opts_t copts = {0};
  ck_assert_int_eq(pqs_ctx_open(&bad, loop, ci, &copts, pt_on_open, &r), 0);
  while (r.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(r.status, PQS_ECONNECT);
  ck_assert_msg(strstr(r.msg, "replication") != NULL, "%s", r.msg);
  pt_close(loop, bad);
  pt_loop_free(loop);
  drop_slot(admin, "cs_err");
  PQfinish(admin);
}
END_TEST

/* A slot made by the stream: persistent (it stays), or temporary (it
 * goes with the session). */
START_TEST(slots_created_when_asked) {
  PGconn *admin = admin2();
  tables(admin);
  drop_slot(admin, "cs_made");
  drop_slot(admin, "cs_temp");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_repl(loop, conninfo2(), NULL);
  seen_t v;
  seen_init(&v, loop);
  v.close_after = 200;
  pqs_changes_opts_t o = {.slot = "cs_made", .publications = pubs,
                          .npublications = 1, .create = PQS_SLOT_PERSISTENT};
  stream_seen(loop, ctx, &o, &v);
  ck_assert_int_eq(v.done.status, PQS_ECANCELED);
  seen_end(&v, loop);
  pt_close(loop, ctx);
  /* it exists now; asking again uses it */
  pt_sql(admin, "INSERT INTO cs (id) VALUES (11)");
  ctx = open_repl(loop, conninfo2(), NULL);
  seen_init(&v, loop);
  v.want = 1;
  v.close_after = 200;
  stream_seen(loop, ctx, &o, &v);
  ck_assert_int_eq(v.id_sum, 11);
  seen_end(&v, loop);
  pt_close(loop, ctx);
  ctx = open_repl(loop, conninfo2(), NULL);
  o.slot = "cs_temp";
  o.create = PQS_SLOT_TEMPORARY;
  seen_init(&v, loop);
  v.close_after = 200;
  stream_seen(loop, ctx, &o, &v);
  ck_assert_int_eq(v.done.status, PQS_ECANCELED);
  seen_end(&v, loop);
  char *n = pt_scalar(admin, "SELECT count(*) FROM pg_replication_slots "
                             "WHERE slot_name IN ('cs_made', 'cs_temp')");
  ck_assert_str_eq(n, "2");
  free(n);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  double end = pt_now() + 10;
  do {
    n = pt_scalar(admin, "SELECT count(*) FROM pg_replication_slots WHERE "
                         "slot_name = 'cs_temp'");
  } while (strcmp(n, "0") != 0 && pt_now() < end && (free(n), usleep(50000), 1));
  ck_assert_str_eq(n, "0");
  free(n);
  drop_slot(admin, "cs_made");
  PQfinish(admin);
}
END_TEST


/* Where a slot stands, before and after a stream used its changes, and
 * its drop (refused while a stream holds it). */
typedef struct {
  int calls, status, active;
  char sqlstate[6], confirmed[32], plugin[32];
  long long lag;
} pos_t;

static void on_position(pqs_ctx_t *ctx, int status, const pqs_error_t *e,
                        const pqs_slot_info_t *info, void *data) {
  (void)ctx;
  pos_t *p = data;
  p->calls++;
  p->status = status;
  snprintf(p->sqlstate, sizeof(p->sqlstate), "%s",
           e && e->sqlstate ? e->sqlstate : "");
  if (info != NULL) {
    ck_assert_ptr_null(e);
    snprintf(p->confirmed, sizeof(p->confirmed), "%s",
             info->confirmed_flush ? info->confirmed_flush : "NULL");
    snprintf(p->plugin, sizeof(p->plugin), "%s", info->plugin);
    p->active = info->active;
    p->lag = (long long)info->lag_bytes;
  }
}

static pos_t position(uv_loop_t *loop, pqs_ctx_t *ctx, const char *slot) {
  pos_t p = {0};
  ck_assert_int_eq(pqs_slot_position(ctx, slot, on_position, &p), 0);
  while (p.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(p.calls, 1);
  return p;
}

static pt_done_t drop(uv_loop_t *loop, pqs_ctx_t *ctx, const char *slot) {
  pt_done_t d = {0};
  ck_assert_int_eq(pqs_slot_drop(ctx, slot, pt_on_exec, &d), 0);
  while (d.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  return d;
}

START_TEST(slot_position_and_drop) {
  PGconn *admin = admin2();
  tables(admin);
  fresh_slot(admin, "cs_pos");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *plain = pt_open(loop, conninfo2());
  pos_t before = position(loop, plain, "cs_pos");
  ck_assert_int_eq(before.status, 0);
  ck_assert_str_eq(before.plugin, "pgoutput");
  ck_assert_int_eq(before.active, 0);
  /* 1,000 rows of short texts (not compressed): some 100 kB of WAL */
  pt_sql(admin, "INSERT INTO cs (id, name) SELECT g, md5(g::text) FROM "
                "generate_series(1, 1000) g");
  pos_t held = position(loop, plain, "cs_pos");
  ck_assert_msg(held.lag > 50000, "the slot holds %lld bytes", held.lag);
  ck_assert_str_eq(held.confirmed, before.confirmed);
  /* a stream holds it: its drop is refused, its position says so */
  pqs_ctx_t *repl = open_repl(loop, conninfo2(), NULL);
  seen_t v;
  seen_init(&v, loop);
  v.want = 1000;
  pqs_changes_opts_t o = {.slot = "cs_pos", .publications = pubs,
                          .npublications = 1};
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_changes(repl, &s, &o), 0);
  pqs_stream_cbs_t cbs = {.on_columns = on_columns, .on_row = on_row,
                          .on_done = on_done_seen};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &v), 0);
  while (v.columns == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(position(loop, plain, "cs_pos").active, 1);
  pt_done_t d = drop(loop, plain, "cs_pos");
  ck_assert_int_eq(d.status, PQS_ESQL);
  ck_assert_str_eq(d.sqlstate, "55006");
  v.close_after = 300; /* the last change stops nothing: closed after */
  v.want = 1000;
  while (v.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(v.rows, 1000);
  seen_end(&v, loop);
  pos_t after = position(loop, plain, "cs_pos");
  ck_assert_msg(lsn_ge(admin, after.confirmed, before.confirmed) &&
                    strcmp(after.confirmed, before.confirmed) != 0,
                "the position did not move: %s", after.confirmed);
  ck_assert_msg(after.lag < held.lag, "%lld bytes held", after.lag);
  /* dropped from the replication context too; then it is missing */
  d = drop(loop, repl, "cs_pos");
  ck_assert_msg(d.status == 0, "%s", d.message);
  pos_t gone = position(loop, plain, "cs_pos");
  ck_assert_int_eq(gone.status, PQS_ESQL);
  ck_assert_str_eq(gone.sqlstate, "42704");
  d = drop(loop, plain, "cs_pos");
  ck_assert_str_eq(d.sqlstate, "42704");
  ck_assert_int_eq(pqs_slot_drop(plain, "Bad Name", pt_on_exec, &d),
                   PQS_EINVAL);
  ck_assert_int_eq(pqs_slot_position(plain, "", on_position, &d), PQS_EINVAL);
  pt_close(loop, repl);
  pt_close(loop, plain);
  pt_loop_free(loop);
  PQfinish(admin);
}
END_TEST


/* The busy rule and acks where none can be taken. */
START_TEST(misuse_is_refused) {
  PGconn *admin = admin2();
  tables(admin);
  fresh_slot(admin, "cs_misuse");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = open_repl(loop, conninfo2(), NULL);
  pqs_changes_opts_t o = {.slot = "cs_misuse", .publications = pubs,
                          .npublications = 1};
  pqs_stream_t *s, *second;
  ck_assert_int_eq(pqs_changes(ctx, &s, &o), 0);
  ck_assert_int_eq(pqs_changes(ctx, &second, &o), PQS_EBUSY);
  ck_assert_int_eq(pqs_changes_ack(s, 0), PQS_ESTATE); /* not started */
  seen_t v;
  seen_init(&v, loop);
  v.close_after = 200;
  pqs_stream_cbs_t cbs = {.on_columns = on_columns, .on_row = on_row,
                          .on_done = on_done_seen};
  v.s = s;
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &v), 0);
  while (v.columns == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(pqs_changes_ack(s, 0), PQS_ESTATE); /* automatic acks */
  ck_assert_int_eq(pqs_changes_ack(NULL, 0), PQS_EINVAL);
  while (v.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  seen_end(&v, loop);
  pt_close(loop, ctx);
  /* manual acks: no more than were delivered */
  ctx = open_repl(loop, conninfo2(), NULL);
  o.manual_ack = 1;
  seen_init(&v, loop);
  v.close_after = 200;
  ck_assert_int_eq(pqs_changes(ctx, &s, &o), 0);
  v.s = s;
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &v), 0);
  while (v.columns == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(pqs_changes_ack(s, 1), PQS_EINVAL);
  ck_assert_int_eq(pqs_changes_ack(s, 0), 0);
  while (v.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  seen_end(&v, loop);
  /* an ordinary stream takes no acks */
  pqs_ctx_t *plain = pt_open(loop, conninfo2());
  pt_done_t d = {0};
  pqs_stream_t *q = pt_query(plain, "SELECT 1", NULL);
  pqs_stream_cbs_t qc = {.on_done = pt_on_done};
  ck_assert_int_eq(pqs_stream_start(q, &qc, &d), 0);
  ck_assert_int_eq(pqs_changes_ack(q, 0), PQS_ESTATE);
  while (d.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  pt_close(loop, plain);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  drop_slot(admin, "cs_misuse");
  PQfinish(admin);
}
END_TEST

/* PT_ONLY=name runs that test alone (when looking into one). */
#define ADD(tc, name)                                                          \
  do {                                                                         \
    const char *only = getenv("PT_ONLY");                                      \
    if (only == NULL || strcmp(only, #name) == 0)                              \
      tcase_add_test(tc, name);                                                \
  } while (0)

int main(void) {
  Suite *s = suite_create("change_stream");
  TCase *tc = tcase_create("change_stream");
  tcase_set_timeout(tc, 120);
  ADD(tc, every_kind_of_change);
  ADD(tc, every_type_as_row_to_json);
  ADD(tc, acknowledged_after_use);
  ADD(tc, killed_consumer_loses_nothing);
  ADD(tc, paused_reader_stays_connected);
  ADD(tc, reset_mid_stream_ends_it);
  ADD(tc, clear_errors_before_streaming);
  ADD(tc, slots_created_when_asked);
  ADD(tc, slot_position_and_drop);
  ADD(tc, misuse_is_refused);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
