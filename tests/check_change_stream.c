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

static void fresh_slot(PGconn *admin, const char *slot) {
  char sql[512];
  snprintf(sql, sizeof(sql),
           "SELECT pg_drop_replication_slot(slot_name) FROM "
           "pg_replication_slots WHERE slot_name = '%s'",
           slot);
  pt_sql(admin, sql);
  snprintf(sql, sizeof(sql),
           "SELECT pg_create_logical_replication_slot('%s', 'pgoutput')",
           slot);
  pt_sql(admin, sql);
}

static void drop_slot(PGconn *admin, const char *slot) {
  char sql[512];
  snprintf(sql, sizeof(sql),
           "SELECT pg_drop_replication_slot(slot_name) FROM "
           "pg_replication_slots WHERE slot_name = '%s'",
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

static void stream_seen(uv_loop_t *loop, pqs_ctx_t *ctx,
                        const pqs_changes_opts_t *o, seen_t *v) {
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_changes(ctx, &s, o), 0);
  v->s = s;
  pqs_stream_cbs_t cbs = {.on_row = on_row, .on_done = on_done_seen};
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

int main(void) {
  Suite *s = suite_create("change_stream");
  TCase *tc = tcase_create("change_stream");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, every_kind_of_change);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
