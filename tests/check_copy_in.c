/* COPY FROM (pqs_copy_in): lines put by the caller go into a table, all of
 * them or none, with backpressure, one completion, and the context usable
 * (or reported broken) afterwards. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pqs_test.h"

/* A producer of lines "i\tline i\n" for i in [1, n], put in pieces of
 * about 64 KB, pausing when told to and going on at on_ready. */
typedef struct {
  pt_done_t done;
  pqs_copy_in_t *ci;
  long next, n;
  long bad_at;     /* 0, or the line that breaks the table's check */
  int waiting;     /* fact: put said 1 */
  int readies;     /* on_ready calls */
  int abort_at;    /* 0, or the piece after which the load is aborted */
  int pieces;
  int no_end;      /* fact: never end (the test stops it) */
  char csv;
} producer_t;

static void produce(producer_t *p) {
  char buf[70000];
  while (!p->waiting && p->next <= p->n) {
    size_t len = 0;
    while (p->next <= p->n && len < 64 * 1024) {
      long i = p->next++;
      long v = i == p->bad_at ? -1 : i;
      len += (size_t)snprintf(buf + len, sizeof(buf) - len,
                              p->csv ? "%ld,\"line %ld\"\n" : "%ld\tline %ld\n",
                              v, i);
    }
    int rc = pqs_copy_in_put(p->ci, buf, len);
    if (rc < 0) /* the load is over (an error ended it): stop putting */
      return;
    p->waiting = rc == 1;
    if (++p->pieces == p->abort_at) {
      ck_assert_int_eq(pqs_copy_in_abort(p->ci), 0);
      return;
    }
  }
  if (!p->waiting && p->next > p->n && !p->no_end)
    ck_assert_int_eq(pqs_copy_in_end(p->ci), 0);
}

static void on_ready(pqs_copy_in_t *ci, void *data) {
  (void)ci;
  producer_t *p = data;
  p->readies++;
  p->waiting = 0;
  produce(p);
}

static void on_loaded(pqs_copy_in_t *ci, const pqs_done_t *done, void *data) {
  (void)ci;
  producer_t *p = data;
  pt_record(&p->done, done);
}

static const pqs_copy_in_cbs_t cbs = {.on_ready = on_ready,
                                      .on_done = on_loaded};

/* Loads p->n lines into `target` and runs the loop until on_done. */
static void load(uv_loop_t *loop, pqs_ctx_t *ctx, const char *target,
                 const pqs_copy_in_opts_t *opts, producer_t *p) {
  ck_assert_int_eq(pqs_copy_in(ctx, &p->ci, target, opts, &cbs, p), 0);
  p->next = p->next ? p->next : 1;
  produce(p);
  double t0 = pt_now();
  while (p->done.calls == 0 && pt_now() - t0 < 120)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(p->done.calls, 1);
}

static void fresh_table(PGconn *admin) {
  pt_sql(admin, "DROP TABLE IF EXISTS loaded;"
                "CREATE TABLE loaded (id int PRIMARY KEY CHECK (id > 0),"
                " s text NOT NULL)");
}

/* The context runs a query again: it is ready, not busy nor broken. */
static void assert_usable(uv_loop_t *loop, pqs_ctx_t *ctx) {
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
}

START_TEST(lines_in_all_or_none) {
  PGconn *admin = pt_admin();
  fresh_table(admin);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  producer_t p = {.n = 300000};
  pqs_copy_in_opts_t o = {.max_pending = 64 * 1024};
  load(loop, ctx, "loaded (id, s)", &o, &p);
  ck_assert_msg(p.done.status == 0, "%s", p.done.message);
  ck_assert_int_eq(p.done.rows, 300000);
  ck_assert_str_eq(p.done.tag, "COPY 300000");
  ck_assert_msg(p.readies > 0, "the producer was never told to wait");
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM loaded"), 300000);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT sum(id) FROM loaded WHERE "
                                       "s = 'line ' || id"),
                   300000LL * 300001 / 2);
  /* CSV with a header line */
  pt_sql(admin, "TRUNCATE loaded");
  pqs_copy_in_opts_t csv = {.format = PQS_FORMAT_CSV, .header = 1};
  ck_assert_int_eq(pqs_copy_in(ctx, &p.ci, "loaded", &csv, &cbs, &p), 0);
  memset(&p.done, 0, sizeof(p.done));
  const char *l1 = "id,s\n1,\"a, \"\"b\"\"\"\n", *l2 = "2,\"two\nlines\"\n";
  ck_assert_int_eq(pqs_copy_in_put(p.ci, l1, strlen(l1)), 0);
  ck_assert_int_eq(pqs_copy_in_put(p.ci, l2, strlen(l2)), 0);
  ck_assert_int_eq(pqs_copy_in_put(p.ci, "3,x", 3), PQS_EINVAL);
  ck_assert_int_eq(pqs_copy_in_end(p.ci), 0);
  ck_assert_int_eq(pqs_copy_in_end(p.ci), PQS_ESTATE);
  while (p.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(p.done.status == 0, "%s", p.done.message);
  ck_assert_int_eq(p.done.rows, 2);
  char *s = pt_scalar(admin, "SELECT string_agg(s, '|' ORDER BY id) "
                             "FROM loaded");
  ck_assert_str_eq(s, "a, \"b\"|two\nlines");
  free(s);
  assert_usable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  PQfinish(admin);
}
END_TEST

/* One binary COPY tuple (int4 id, text s) appended at `p`; its size. */
static size_t tuple(unsigned char *p, int32_t id, const char *s) {
  size_t n = 0, len = s ? strlen(s) : 0;
  p[n++] = 0, p[n++] = 2;
  p[n++] = 0, p[n++] = 0, p[n++] = 0, p[n++] = 4;
  for (int k = 3; k >= 0; k--)
    p[n++] = (unsigned char)((uint32_t)id >> (8 * k));
  uint32_t l = s ? (uint32_t)len : 0xffffffffu;
  for (int k = 3; k >= 0; k--)
    p[n++] = (unsigned char)(l >> (8 * k));
  memcpy(p + n, s ? s : "", len);
  return n + len;
}

/* Binary tuples: pqstream writes the header and trailer around each COPY
 * of the load (several, when a trigger's notices cut it), a NULL stays
 * NULL, and a broken tuple is refused before it is sent. */
START_TEST(binary_tuples) {
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TABLE IF EXISTS loaded_b;"
                "CREATE TABLE loaded_b (id int PRIMARY KEY, s text);"
                "CREATE OR REPLACE FUNCTION loaded_b_say() RETURNS trigger"
                " LANGUAGE plpgsql AS $$BEGIN IF NEW.id % 5000 = 0 THEN"
                " RAISE NOTICE 'row %', NEW.id; END IF; RETURN NEW; END$$;"
                "CREATE TRIGGER say BEFORE INSERT ON loaded_b FOR EACH ROW"
                " EXECUTE FUNCTION loaded_b_say()");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  producer_t p = {0};
  pqs_copy_in_opts_t o = {.binary = 1};
  ck_assert_int_eq(pqs_copy_in(ctx, &p.ci, "loaded_b", &o, &cbs, &p), 0);
  static unsigned char buf[64 * 1024];
  int id = 1;
  for (int piece = 0; piece < 40; piece++) {
    size_t n = 0;
    for (int k = 0; k < 1000; k++, id++)
      n += tuple(buf + n, id, id % 7 ? "tuple\n\t\\" : NULL);
    ck_assert_int_ge(pqs_copy_in_put(p.ci, (const char *)buf, n), 0);
    for (int i = 0; i < 5; i++) /* let the load go while we make more */
      uv_run(loop, UV_RUN_NOWAIT);
  }
  size_t n = tuple(buf, id, "cut short");
  ck_assert_int_eq(pqs_copy_in_put(p.ci, (const char *)buf, n - 1),
                   PQS_EINVAL);
  ck_assert_int_eq(pqs_copy_in_end(p.ci), 0);
  while (p.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(p.done.status == 0, "%s", p.done.message);
  ck_assert_int_eq(p.done.rows, 40000);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM loaded_b WHERE "
                                       "s = E'tuple\\n\\t\\\\'"),
                   40000 - 40000 / 7);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM loaded_b WHERE "
                                       "s IS NULL"),
                   40000 / 7);
  assert_usable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  pt_sql(admin, "DROP TABLE loaded_b; DROP FUNCTION loaded_b_say()");
  PQfinish(admin);
}
END_TEST

/* A bad line, a missing table or column, a type that does not parse: one
 * completion with the server's error, nothing committed, the context
 * usable. */
static void expect_error(uv_loop_t *loop, pqs_ctx_t *ctx, PGconn *admin,
                         const char *target, const char *line,
                         const char *sqlstate, const char *says) {
  producer_t p = {0};
  ck_assert_int_eq(pqs_copy_in(ctx, &p.ci, target, NULL, &cbs, &p), 0);
  ck_assert_int_eq(pqs_copy_in_put(p.ci, "1\tfine\n", 7), 0);
  if (line != NULL)
    ck_assert_int_eq(pqs_copy_in_put(p.ci, line, strlen(line)), 0);
  ck_assert_int_eq(pqs_copy_in_end(p.ci), 0);
  while (p.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(p.done.calls, 1);
  ck_assert_int_eq(p.done.status, PQS_ESQL);
  ck_assert_str_eq(p.done.sqlstate, sqlstate);
  ck_assert_msg(strstr(p.done.message, says) != NULL, "'%s' lacks '%s'",
                p.done.message, says);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM loaded"), 0);
  assert_usable(loop, ctx);
}

START_TEST(errors_end_it_once) {
  PGconn *admin = pt_admin();
  fresh_table(admin);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  expect_error(loop, ctx, admin, "loaded", "2\ttoo\tmany\n", "22P04",
               "extra data after last expected column");
  expect_error(loop, ctx, admin, "loaded", "x\tnot a number\n", "22P02",
               "invalid input syntax for type integer");
  expect_error(loop, ctx, admin, "no_such_table", NULL, "42P01",
               "no_such_table");
  expect_error(loop, ctx, admin, "loaded (id, nope)", NULL, "42703", "nope");
  expect_error(loop, ctx, admin, "loaded", "1\tagain\n", "23505",
               "duplicate key");
  pt_close(loop, ctx);
  pt_loop_free(loop);
  PQfinish(admin);
}
END_TEST

/* Over a Unix socket there is no TCP_INFO to tell that the server spoke
 * while libpq was sending: a segment is cut each 4 MB (or a second after
 * its sending blocked) to look. */
static const char *socket_conninfo(void) {
  const char *sock = getenv("PQS_TEST_SOCKET_CONNINFO");
  ck_assert_msg(sock != NULL, "PQS_TEST_SOCKET_CONNINFO is not set "
                              "(tests/pg.sh writes it)");
  return sock;
}

/* A constraint broken at row 1,000,001 of 2,000,000: the load ends there,
 * without the rest of the rows being put, over `conninfo`. */
static void constraint_midway(const char *conninfo) {
  PGconn *admin = pt_admin();
  fresh_table(admin);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, conninfo);
  producer_t p = {.n = 2000000, .bad_at = 1000001};
  load(loop, ctx, "loaded", NULL, &p);
  ck_assert_int_eq(p.done.status, PQS_ESQL);
  ck_assert_str_eq(p.done.sqlstate, "23514");
  if (getenv("PQS_TEST_DEBUG"))
    fprintf(stderr, "put %ld rows before the end\n", p.next - 1);
  ck_assert_msg(p.next <= 1500000,
                "%ld of 2,000,000 rows were put before the load ended",
                p.next - 1);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM loaded"), 0);
  assert_usable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  PQfinish(admin);
}

START_TEST(constraint_midway_ends_it_early) { constraint_midway(pt_conninfo()); }
END_TEST

START_TEST(unix_socket_error_midway_ends_it_early) {
  constraint_midway(socket_conninfo());
}
END_TEST

START_TEST(unix_socket_all_rows_arrive) {
  PGconn *admin = pt_admin();
  fresh_table(admin);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, socket_conninfo());
  producer_t p = {.n = 1000000};
  load(loop, ctx, "loaded", NULL, &p);
  ck_assert_msg(p.done.status == 0, "%s", p.done.message);
  ck_assert_int_eq(p.done.rows, 1000000);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(DISTINCT id) FROM loaded"),
                   1000000);
  assert_usable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  PQfinish(admin);
}
END_TEST

/* Notices mid-COPY (a trigger's) cut the load into several COPYs of one
 * transaction: every row still arrives once. */
START_TEST(notices_midway_lose_nothing) {
  PGconn *admin = pt_admin();
  fresh_table(admin);
  pt_sql(admin, "CREATE FUNCTION loaded_say() RETURNS trigger LANGUAGE plpgsql"
                " AS $$BEGIN IF NEW.id % 20000 = 0 THEN"
                " RAISE NOTICE 'row %', NEW.id; END IF; RETURN NEW; END$$;"
                "CREATE TRIGGER say BEFORE INSERT ON loaded FOR EACH ROW"
                " EXECUTE FUNCTION loaded_say()");
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  producer_t p = {.n = 200000};
  load(loop, ctx, "loaded", NULL, &p);
  ck_assert_msg(p.done.status == 0, "%s", p.done.message);
  ck_assert_int_eq(p.done.rows, 200000);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(DISTINCT id) FROM loaded"),
                   200000);
  assert_usable(loop, ctx);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  pt_sql(admin, "DROP TABLE loaded; DROP FUNCTION loaded_say()");
  PQfinish(admin);
}
END_TEST

/* Aborted by the caller, timed out, or inside the caller's transaction
 * (whose ROLLBACK undoes it): nothing stays. */
START_TEST(aborts_and_timeouts_roll_back) {
  PGconn *admin = pt_admin();
  fresh_table(admin);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  producer_t p = {.n = 100000, .abort_at = 3};
  load(loop, ctx, "loaded", NULL, &p);
  ck_assert_int_eq(p.done.status, PQS_ECANCELED);
  assert_usable(loop, ctx);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM loaded"), 0);
  /* A producer that never ends, and a timeout */
  producer_t q = {.n = 10, .no_end = 1};
  pqs_copy_in_opts_t o = {.timeout_ms = 300};
  double t0 = pt_now();
  load(loop, ctx, "loaded", &o, &q);
  ck_assert_int_eq(q.done.status, PQS_ETIMEDOUT);
  ck_assert_msg(pt_now() - t0 < 10, "the timeout took %.1f s", pt_now() - t0);
  assert_usable(loop, ctx);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM loaded"), 0);
  /* In the caller's transaction: loaded, then rolled back by the caller */
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "BEGIN"), 0);
  producer_t r = {.n = 1000};
  load(loop, ctx, "loaded", NULL, &r);
  ck_assert_msg(r.done.status == 0, "%s", r.done.message);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM loaded"), 0);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "ROLLBACK"), 0);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM loaded"), 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  PQfinish(admin);
}
END_TEST

/* The target's backend terminated mid-load: one completion, the context
 * broken, nothing committed. */
START_TEST(backend_killed_midway) {
  PGconn *admin = pt_admin();
  fresh_table(admin);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  int pid = pqs_ctx_backend_pid(ctx);
  producer_t p = {.n = 10, .next = 1, .no_end = 1};
  ck_assert_int_eq(pqs_copy_in(ctx, &p.ci, "loaded", NULL, &cbs, &p), 0);
  produce(&p);
  for (int i = 0; i < 20; i++)
    uv_run(loop, UV_RUN_NOWAIT);
  char sql[64];
  snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)", pid);
  pt_sql(admin, sql);
  double t0 = pt_now();
  while (p.done.calls == 0 && pt_now() - t0 < 30)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(p.done.calls, 1);
  ck_assert_int_eq(p.done.status, PQS_ECONNLOST);
  pt_done_t d = {0};
  ck_assert_int_eq(pqs_exec(ctx, "SELECT 1", 0, NULL, NULL, pt_on_exec, &d),
                   PQS_EBROKEN);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM loaded"), 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
  PQfinish(admin);
}
END_TEST

static Suite *copy_in_suite(void) {
  Suite *s = suite_create("copy_in");
  TCase *tc = tcase_create("copy_in");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, lines_in_all_or_none);
  tcase_add_test(tc, errors_end_it_once);
  tcase_add_test(tc, binary_tuples);
  tcase_add_test(tc, constraint_midway_ends_it_early);
  tcase_add_test(tc, notices_midway_lose_nothing);
  tcase_add_test(tc, unix_socket_error_midway_ends_it_early);
  tcase_add_test(tc, unix_socket_all_rows_arrive);
  tcase_add_test(tc, aborts_and_timeouts_roll_back);
  tcase_add_test(tc, backend_killed_midway);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return pt_run(copy_in_suite()); }
