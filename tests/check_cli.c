/* The pqstream tool, run as a user would: output, exit codes, messages,
 * pipes that close, signals, parallel runs, shards, bench. */
#define _XOPEN_SOURCE 700 /* posix_openpt */
#define _DEFAULT_SOURCE   /* wait4 */
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "faultproxy.h"
#include "pqs_test.h"

static const char *cli(void) {
  const char *p = getenv("PQS_CLI");
  ck_assert_msg(p != NULL, "PQS_CLI (the tool's path) is not set: run the "
                           "suites through ctest");
  return p;
}

typedef struct {
  int status; /* exit code, or 128 + signal */
  char *out, *err;
  size_t out_len;
  double secs;
  long maxrss_kb;
} ran_t;

static char *slurp(int fd, size_t *len) {
  size_t n = 0, cap = 4096;
  char *buf = malloc(cap);
  ssize_t got;
  lseek(fd, 0, SEEK_SET);
  while ((got = read(fd, buf + n, cap - n - 1)) > 0)
    if ((n += (size_t)got) == cap - 1)
      buf = realloc(buf, cap *= 2);
  buf[n] = '\0';
  if (len)
    *len = n;
  close(fd);
  return buf;
}

static int tmpfd(void) {
  char path[] = "/tmp/pqs-cli-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  return fd;
}

/* Runs argv (argv[0] "CLI" means the tool), output to temp files. */
/* The tool reads through COPY by default; PQS_TEST_SOURCE=single-row runs
 * every test again with --single-row (one list of tests, two sources). */
static const char *const *with_source(const char *const *argv, const char **buf,
                                      size_t cap) {
  const char *src = getenv("PQS_TEST_SOURCE");
  if (src == NULL || strcmp(src, "single-row") != 0 ||
      strcmp(argv[0], "CLI") != 0 || (argv[1] && strcmp(argv[1], "bench") == 0))
    return argv;
  size_t n = 0;
  buf[n++] = argv[0];
  buf[n++] = "--single-row";
  for (size_t i = 1; argv[i] != NULL && n + 1 < cap; i++)
    buf[n++] = argv[i];
  buf[n] = NULL;
  return buf;
}

static ran_t run(const char *const *argv) {
  const char *buf[128];
  argv = with_source(argv, buf, 128);
  int out = tmpfd(), err = tmpfd();
  double t0 = pt_now();
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out, 1);
    dup2(err, 2);
    int devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    const char *path = strcmp(argv[0], "CLI") == 0 ? cli() : argv[0];
    execv(path, (char *const *)argv);
    _exit(127);
  }
  int st;
  struct rusage ru;
  ck_assert_int_eq(wait4(pid, &st, 0, &ru), pid);
  ran_t r = {.secs = pt_now() - t0, .maxrss_kb = ru.ru_maxrss};
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.out = slurp(out, &r.out_len);
  r.err = slurp(err, NULL);
  return r;
}

static void ran_free(ran_t *r) {
  free(r->out);
  free(r->err);
}

#define CONN pt_conninfo()

/* ---- output ---- */

START_TEST(output_like_copy) {
  PGconn *admin = pt_admin();
  pt_sql(admin, pt_awkward_sql);
  const char *sql = "SELECT * FROM awkward ORDER BY id";
  size_t len;
  char *want = pt_server_copy(admin, sql, "", &len);
  ran_t r = run((const char *[]){"CLI", "-d", CONN, "-c", sql, NULL});
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
  pt_assert_same_bytes("text", want, len, r.out, r.out_len);
  free(want);
  ran_free(&r);

  want = pt_server_copy(admin, sql, "(FORMAT csv, HEADER)", &len);
  r = run((const char *[]){"CLI", "-d", CONN, "-c", sql, "--format", "csv",
                           "--header", NULL});
  ck_assert_int_eq(r.status, 0);
  pt_assert_same_bytes("csv", want, len, r.out, r.out_len);
  free(want);
  ran_free(&r);

  r = run((const char *[]){"CLI", "-d", CONN, "-c", sql, "--format", "jsonl",
                           NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert_int_eq(pt_assert_like_row_to_json(admin, r.out, r.out_len), 12);
  ran_free(&r);
  PQfinish(admin);
}
END_TEST

START_TEST(params_files_limit_output) {
  ran_t r = run((const char *[]){
      "CLI", "-d", CONN, "-c", "SELECT $1::int + 1, $2::text IS NULL, $3",
      "--param", "41", "--param-null", "--param", "it's", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "42\tt\tit's\n");
  ran_free(&r);

  char sqlpath[] = "/tmp/pqs-cli-sql-XXXXXX", outpath[] = "/tmp/pqs-out-XXXXXX";
  int fd = mkstemp(sqlpath);
  ck_assert_int_eq(write(fd, "SELECT 'from a file'\n", 21), 21);
  close(fd);
  close(mkstemp(outpath));
  r = run(
      (const char *[]){"CLI", "-d", CONN, "-f", sqlpath, "-o", outpath, NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "");
  ran_free(&r);
  size_t len;
  char *written = slurp(open(outpath, O_RDONLY), &len);
  ck_assert_str_eq(written, "from a file\n");
  free(written);
  unlink(sqlpath);
  unlink(outpath);

  r = run((const char *[]){"CLI", "-d", CONN, "-c",
                           "SELECT generate_series(1, 1000000000)", "--limit",
                           "5", NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.out, "1\n2\n3\n4\n5\n");
  ck_assert_msg(r.secs < 10, "--limit 5 took %.1fs", r.secs);
  ran_free(&r);
}
END_TEST

/* Without -d, libpq's environment says where the server is. */
START_TEST(environment_defaults) {
  setenv("PGHOST", "127.0.0.1", 1);
  setenv("PGPORT", getenv("PQS_TEST_PORT"), 1);
  setenv("PGDATABASE", "pqstest", 1);
  setenv("PGUSER", "postgres", 1);
  ran_t r = run((const char *[]){
      "CLI", "-c", "SELECT current_database(), current_user", NULL});
  unsetenv("PGHOST");
  unsetenv("PGPORT");
  unsetenv("PGDATABASE");
  unsetenv("PGUSER");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "pqstest\tpostgres\n");
  ran_free(&r);
}
END_TEST

START_TEST(notices_and_quiet) {
  const char *sql = "DO $$BEGIN RAISE NOTICE 'heads up'; END$$";
  ran_t r = run((const char *[]){"CLI", "-d", CONN, "-c", sql, NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.err, "NOTICE:  heads up\nDO\n"); /* then its tag */
  ran_free(&r);
  r = run((const char *[]){"CLI", "-q", "-d", CONN, "-c", sql, NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.err, "");
  ran_free(&r);
}
END_TEST

/* ---- a reader that leaves, and signals ---- */

/* Waits up to `seconds` for the number of active queries marked `marker`
 * on the server to be (want_some) or not be above zero; returns it. */
static long long wait_for_active(const char *marker, int want_some,
                                 double seconds) {
  PGconn *admin = pt_admin();
  char sql[256];
  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
           "AND query LIKE '%%%s%%' AND pid <> pg_backend_pid() "
           "AND query NOT LIKE '%%pg_stat_activity%%'", /* a twin's look */
           marker);
  double until = pt_now() + seconds;
  long long n;
  while (((n = pt_scalar_ll(admin, sql)) > 0) != want_some && pt_now() < until)
    uv_sleep(10);
  PQfinish(admin);
  return n;
}

static void assert_no_active(const char *marker) {
  ck_assert_msg(wait_for_active(marker, 0, 5) == 0,
                "the query '%s' still runs on the server", marker);
}

/* Waits (up to 10 s) until the query marked `marker` runs on the server. */
static void wait_active(const char *marker) {
  ck_assert_msg(wait_for_active(marker, 1, 10) > 0,
                "the query '%s' never started on the server", marker);
}

START_TEST(head_ends_it) {
  char cmd[1024];
  snprintf(cmd, sizeof(cmd),
           "'%s' -d '%s' -c 'SELECT generate_series(1, 1000000000) /* "
           "cli-head */' | head -1",
           cli(), CONN);
  ran_t r = run((const char *[]){"/bin/sh", "-c", cmd, NULL});
  ck_assert_msg(r.secs < 10, "| head -1 took %.1fs", r.secs);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.out, "1\n");
  ck_assert_str_eq(r.err, ""); /* no error message */
  ran_free(&r);
  assert_no_active("cli-head");
}
END_TEST

static int interrupted(int sig) {
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    execl(cli(), "pqstream", "-d", CONN, "-c",
          "SELECT generate_series(1, 1000000000) /* cli-signal */", NULL);
    _exit(127);
  }
  wait_active("cli-signal"); /* signal a running query, not a start-up */
  kill(pid, sig);
  double until = pt_now() + 10;
  int st = 0;
  pid_t done;
  while ((done = waitpid(pid, &st, WNOHANG)) == 0 && pt_now() < until)
    uv_sleep(10);
  if (done == 0)
    kill(pid, SIGKILL);
  ck_assert_msg(done == pid, "still running 10 s after the signal");
  assert_no_active("cli-signal");
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(signals_cancel) {
  ck_assert_int_eq(interrupted(SIGINT), 130);
  ck_assert_int_eq(interrupted(SIGTERM), 143);
}
END_TEST

/* SIGTERM with a reader that reads nothing: the query is cancelled and the
 * tool leaves, with the unwritten output, within a few seconds. */
START_TEST(signal_with_stalled_reader) {
  int fds[2];
  ck_assert_int_eq(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    execl(cli(), "pqstream", "-q", "-d", CONN, "-c",
          "SELECT repeat('x', 100) FROM (SELECT generate_series(1, "
          "1000000000)) s /* cli-stalled */",
          NULL);
    _exit(127);
  }
  close(fds[1]);
  wait_active("cli-stalled");
  uv_sleep(300); /* the pipe fills and the tool's write stalls */
  kill(pid, SIGTERM);
  double t0 = pt_now();
  int st = 0;
  pid_t done;
  while ((done = waitpid(pid, &st, WNOHANG)) == 0 && pt_now() - t0 < 15)
    uv_sleep(20);
  if (done == 0)
    kill(pid, SIGKILL);
  close(fds[0]);
  ck_assert_msg(done == pid, "still running 15 s after SIGTERM");
  ck_assert(WIFEXITED(st));
  ck_assert_int_eq(WEXITSTATUS(st), 143);
  assert_no_active("cli-stalled");
}
END_TEST

/* ---- parallel and shards ---- */

START_TEST(parallel_queries) {
  ran_t r = run((const char *[]){
      "CLI", "-d", CONN, "-c", "SELECT 'a' AS x, pg_sleep(2)::text AS s",
      "-c", "SELECT 'b' AS y, 2 AS n, pg_sleep(2)::text AS s", "-j", "2",
      "--format", "jsonl", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  /* one after the other would take 4 s at least; the bound leaves a busy
   * machine (CI failed a 0.9 s bound on 2 x 0.5 s under ASan) 1.5 s */
  ck_assert_msg(r.secs < 3.5, "2 x 2 s in parallel took %.2fs", r.secs);
  ck_assert_ptr_nonnull(strstr(r.out, "{\"x\":\"a\",\"s\":\"\"}\n"));
  ck_assert_ptr_nonnull(strstr(r.out, "{\"y\":\"b\",\"n\":2,\"s\":\"\"}\n"));
  ran_free(&r);
}
END_TEST

START_TEST(shards_in_order) {
  const char *second = getenv("PQS_TEST_CONNINFO2");
  ck_assert_msg(second != NULL, "PQS_TEST_CONNINFO2 is not set: the test "
                                "command starts a second server");
  PGconn *one = pt_admin(), *two = PQconnectdb(second);
  ck_assert_int_eq(PQstatus(two), CONNECTION_OK);
  const char *make = "DROP TABLE IF EXISTS cli_shard; CREATE TABLE cli_shard "
                     "AS SELECT g AS k, md5(g::text) AS v FROM "
                     "generate_series(1, 50000) g WHERE g %% 2 = %d";
  char sql[256];
  snprintf(sql, sizeof(sql), make, 0);
  pt_sql(one, sql);
  snprintf(sql, sizeof(sql), make, 1);
  pt_sql(two, sql);
  PQfinish(two);
  ran_t r = run((const char *[]){"CLI", "--shard", CONN, "--shard", second,
                                 "-c", "SELECT k, v FROM cli_shard ORDER BY k",
                                 "--order-by", "k", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  size_t len;
  char *want = pt_server_copy(
      one, "SELECT g, md5(g::text) FROM generate_series(1, 50000) g", "", &len);
  pt_assert_same_bytes("shards", want, len, r.out, r.out_len);
  free(want);
  ran_free(&r);
  r = run((const char *[]){"CLI", "--shard", CONN, "--shard", second, "-c",
                           "SELECT k FROM cli_shard ORDER BY k", "--order-by",
                           "nope", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "nope"));
  ran_free(&r);
  PQfinish(one);
}
END_TEST

/* ---- exit codes and messages ---- */

START_TEST(exit_codes_and_messages) {
  ran_t r = run((const char *[]){"CLI", "-d", CONN, "-c",
                                 "SELECT 1 / (2 - g) FROM generate_series(1, "
                                 "3) g",
                                 NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_str_eq(r.out, "1\n");
  ck_assert_str_eq(r.err, "ERROR:  division by zero (SQLSTATE 22012)\n");
  ran_free(&r);

  r = run((const char *[]){"CLI", "-d", CONN, "-c", "SELEC 1", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "syntax error"));
  ck_assert_ptr_nonnull(strstr(r.err, "(SQLSTATE 42601)"));
  ran_free(&r);

  r = run((const char *[]){"CLI", "-d", "host=127.0.0.1 nonsense=1", "-c",
                           "SELECT 1", NULL});
  ck_assert_int_eq(r.status, 2);
  ck_assert_ptr_nonnull(strstr(r.err, "nonsense"));
  ran_free(&r);

  r = run((const char *[]){"CLI", "-d", "host=127.0.0.1 port=1 user=x", "-c",
                           "SELECT 1", NULL});
  ck_assert_int_eq(r.status, 2);
  ck_assert_ptr_nonnull(strstr(r.err, "refused"));
  ran_free(&r);

  char wrong[256];
  snprintf(wrong, sizeof(wrong),
           "host=127.0.0.1 port=%s dbname=pqstest user=%s password=Sekrit-991",
           getenv("PQS_TEST_PORT"), getenv("PQS_TEST_SCRAM_USER"));
  r = run((const char *[]){"CLI", "-d", wrong, "-c", "SELECT 1", NULL});
  ck_assert_int_eq(r.status, 2);
  ck_assert_ptr_nonnull(strstr(r.err, "password authentication failed"));
  ck_assert_ptr_null(strstr(r.err, "Sekrit-991"));
  ran_free(&r);

  r = run((const char *[]){"CLI", "--bogus", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "Try 'pqstream --help'"));
  ran_free(&r);
  r = run((const char *[]){"CLI", "-d", CONN, NULL});
  ck_assert_int_eq(r.status, 1);
  ran_free(&r);
  r = run((const char *[]){"CLI", "-c", "SELECT 1", "--format", "xml", NULL});
  ck_assert_int_eq(r.status, 1);
  ran_free(&r);

  r = run((const char *[]){"CLI", "-d", CONN, "-c", "SELECT pg_sleep(30)",
                           "--timeout", "0.3", NULL});
  ck_assert_int_eq(r.status, 4);
  ck_assert_ptr_nonnull(strstr(r.err, "--timeout"));
  ran_free(&r);

  /* a server that never answers: connect_timeout ends it, exit 2 */
  pt_proxy_t *silent = pt_proxy_start(atoi(getenv("PQS_TEST_PORT")));
  pt_proxy_set(silent, PT_SILENT);
  char never[512];
  snprintf(never, sizeof(never), "%s connect_timeout=2",
           pt_proxy_conninfo(silent));
  r = run((const char *[]){"CLI", "-d", never, "-c", "SELECT 1", NULL});
  ck_assert_int_eq(r.status, 2);
  ck_assert_msg(r.secs >= 1.9 && r.secs < 9, "took %.1f s", r.secs);
  ck_assert_ptr_nonnull(strstr(r.err, "could not connect"));
  ran_free(&r);
  setenv("PGCONNECT_TIMEOUT", "2", 1); /* the same from the environment */
  r = run((const char *[]){"CLI", "-d", pt_proxy_conninfo(silent), "-c",
                           "SELECT 1", NULL});
  unsetenv("PGCONNECT_TIMEOUT");
  ck_assert_int_eq(r.status, 2);
  ck_assert_msg(r.secs >= 1.9 && r.secs < 9, "took %.1f s", r.secs);
  ran_free(&r);
  pt_proxy_set(silent, PT_FORWARD);
  pt_proxy_stop(silent);

  r = run((const char *[]){"CLI", "--help", NULL});
  ck_assert_int_eq(r.status, 0);
  const char *opts[] = {"--dbname",   "--command",  "--file",   "--param",
                        "--format",   "--header",   "--output", "--jobs",
                        "--shard",    "--order-by", "--limit",  "--timeout",
                        "--progress", "--quiet",    "--version"};
  for (size_t i = 0; i < sizeof(opts) / sizeof(*opts); i++)
    ck_assert_msg(strstr(r.out, opts[i]) != NULL, "--help lacks %s", opts[i]);
  ran_free(&r);
}
END_TEST

/* The output's own failure is what the user reads, never the cancel it
 * caused; no password in any spelling reaches stderr. */
START_TEST(output_errors_and_secrets) {
  ran_t r = run((const char *[]){"CLI", "-d", CONN, "-c", "SELECT 1", "-o",
                                 "/nonexistent/dir/out.tsv", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "/nonexistent/dir/out.tsv"));
  ck_assert_ptr_nonnull(strstr(r.err, "No such file"));
  ran_free(&r);

  r = run((const char *[]){"CLI", "-d", CONN, "-c",
                           "SELECT repeat('x', 100) FROM "
                           "generate_series(1, 100000)",
                           "-o", "/dev/full", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "/dev/full") != NULL &&
                    strstr(r.err, "no space left") != NULL,
                "stderr: %s", r.err);
  ck_assert_msg(strstr(r.err, "SQLSTATE") == NULL &&
                    strstr(r.err, "canceling") == NULL,
                "a server error instead of the cause: %s", r.err);
  ran_free(&r);

  r = run((const char *[]){"CLI", "-d",
                           "postgresql://app:S3cret%ZZ@127.0.0.1/db", "-c",
                           "SELECT 1", NULL});
  ck_assert_int_eq(r.status, 2);
  ck_assert_str_ne(r.err, "");
  ck_assert_msg(strstr(r.err, "S3cret") == NULL, "password shown: %s", r.err);
  ran_free(&r);
}
END_TEST

/* A syntax error on line 3 of a script: the LINE and caret lines are
 * psql's own. */
static char *line_from(const char *text, const char *start, char *out,
                       size_t cap) {
  const char *p = strstr(text, start);
  ck_assert_msg(p != NULL, "no '%s' in: %s", start, text);
  size_t n = strcspn(p, "\n");
  /* the caret line: the one after it */
  const char *q = p + n + 1;
  size_t m = strcspn(q, "\n");
  snprintf(out, cap, "%.*s\n%.*s", (int)n, p, (int)m, q);
  return out;
}

/* psql's output options, byte for byte against psql itself on values
 * that need care: NULL and '', tabs, newlines, CR, quotes, backslashes,
 * "\." alone, separators inside values, non-ASCII; names that need
 * quoting in CSV; zero rows; several statements. */
static void fresh_edges(PGconn *admin) {
  pt_sql(admin,
         "DROP TABLE IF EXISTS cli_edges;"
         "CREATE TABLE cli_edges (id int, t text, n numeric, b bool);"
         "INSERT INTO cli_edges VALUES (1, NULL, NULL, NULL), (2, '', 0, true),"
         " (3, E'a\\tb', -1.50, false), (4, E'line1\\nline2', 1e-20, NULL),"
         " (5, 'say \"hi\"', 3, true), (6, E'back\\\\slash', 4, false),"
         " (7, 'ünïcødé ✓', 5, NULL), (8, 'x,y|z;w', 6, true),"
         " (9, E'\\\\.', 7, true), (10, E'cr\\r', 8, false),"
         " (11, ' lead and trail ', 9, NULL)");
}

static void same_as_psql(const char *const *opts, const char *const *sqls) {
  const char *ours[64] = {"CLI", "-d", CONN}, *theirs[64] = {
      "/usr/bin/psql", "-X", "-q", "-d", CONN};
  size_t a = 3, b = 5;
  for (size_t i = 0; opts[i] != NULL; i++)
    ours[a++] = theirs[b++] = opts[i];
  for (size_t i = 0; sqls[i] != NULL; i++) {
    ours[a++] = theirs[b++] = "-c";
    ours[a++] = theirs[b++] = sqls[i];
  }
  ours[a] = theirs[b] = NULL;
  ran_t us = run(ours), them = run(theirs);
  char what[256] = "";
  for (size_t i = 0; opts[i] != NULL; i++)
    snprintf(what + strlen(what), sizeof(what) - strlen(what), "%s ", opts[i]);
  ck_assert_msg(them.status == 0, "psql %s failed: %s", what, them.err);
  ck_assert_msg(us.status == 0, "pqstream %s failed: %s", what, us.err);
  pt_assert_same_bytes(what, them.out, them.out_len, us.out, us.out_len);
  ran_free(&us);
  ran_free(&them);
}

START_TEST(output_options_as_psql) {
  PGconn *admin = pt_admin();
  fresh_edges(admin);
  const char *all[] = {"SELECT * FROM cli_edges ORDER BY id", NULL};
  const char *named[] = {"SELECT id AS \"i|d\", t AS \"t,\"\"q\", b AS \" \" "
                         "FROM cli_edges ORDER BY id",
                         NULL};
  const char *none[] = {"SELECT * FROM cli_edges WHERE false", NULL};
  const char *two[] = {"SELECT t FROM cli_edges WHERE id < 4 ORDER BY id",
                       "SELECT 1 AS one", "SELECT 2 AS two WHERE false", NULL};
  const char *const *queries[] = {all, named, none, two};
  const char *const sets[][12] = {
      {"-A", NULL},
      {"-At", NULL},
      {"--no-align", "--tuples-only", NULL},
      {"-A", "-F", ",", NULL},
      {"-A", "-F", "", "-R", "<>", NULL},
      {"-A", "-z", NULL},
      {"-A", "-0", NULL},
      {"-A", "-z", "-0", "-t", NULL},
      {"-A", "-P", "null=NULL", "-P", "footer=off", NULL},
      {"-A", "-P", "footer", "-P", "tuples_only", NULL},
      {"-P", "format=unaligned", "-P", "fieldsep=::", "-P", "recordsep=##",
       NULL},
      {"-A", "-P", "fieldsep_zero", "-P", "recordsep_zero", NULL},
      {"--csv", NULL},
      {"--csv", "-t", NULL},
      {"--csv", "-P", "null=\\N", NULL},
      {"--csv", "-P", "csv_fieldsep=;", NULL},
      {"--csv", "-P", "csv_fieldsep=|", "-P", "footer=on", NULL},
      {"--csv", "-P", "csv_fieldsep=.", NULL},
      {"-P", "format=csv", "-P", "pager=off", NULL},
      {"-A", "--csv", NULL}, /* the last one wins, as in psql */
  };
  for (size_t q = 0; q < sizeof(queries) / sizeof(queries[0]); q++)
    for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
      same_as_psql(sets[i], queries[q]);
  pt_sql(admin, "DROP TABLE cli_edges");
  PQfinish(admin);
}
END_TEST

/* What pqstream does not print is refused by name, exit 1 as psql's bad
 * options; --csv still loads COPY's csv with --into-table. */
START_TEST(output_options_refused) {
  const char *const bad[][9] = {
      {"CLI", "-d", CONN, "-P", "format=aligned", "-c", "SELECT 1", NULL},
      {"CLI", "-d", CONN, "-P", "expanded", "-c", "SELECT 1", NULL},
      {"CLI", "-d", CONN, "-P", "footer=maybe", "-c", "SELECT 1", NULL},
      {"CLI", "-d", CONN, "-P", "csv_fieldsep=ab", "-c", "SELECT 1", NULL},
      {"CLI", "-d", CONN, "-A", "--into-table", "t", "-c", "SELECT 1", NULL},
  };
  const char *says[] = {"format=aligned", "expanded", "Boolean expected",
                        "single one-byte character", "tsv or csv"};
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    ran_t r = run(bad[i]);
    ck_assert_int_eq(r.status, 1);
    ck_assert_msg(strstr(r.err, says[i]) != NULL, "'%s' lacks '%s'", r.err,
                  says[i]);
    ck_assert_str_eq(r.out, "");
    ran_free(&r);
  }
}
END_TEST

START_TEST(error_caret_as_psql) {
  char path[] = "/tmp/pqs-caret-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  const char *script = "SELECT 1,\n  2,\n  3 FRM pg_class;\n";
  ck_assert(write(fd, script, strlen(script)) == (ssize_t)strlen(script));
  close(fd);
  ran_t ours = run((const char *[]){"CLI", "-d", CONN, "-f", path, NULL});
  ran_t psql = run((const char *[]){"/usr/bin/psql", "-X", "-q", "-d", CONN,
                                    "-f", path, NULL});
  unlink(path);
  ck_assert_int_eq(ours.status, 3); /* a -f script, as psql -v ON_ERROR_STOP=1 */
  char a[512], b[512];
  ck_assert_str_eq(line_from(ours.err, "LINE 3:", a, sizeof(a)),
                   line_from(psql.err, "LINE 3:", b, sizeof(b)));
  ck_assert_ptr_nonnull(strstr(ours.err, "syntax error at or near"));
  ck_assert_ptr_nonnull(strstr(ours.err, "(SQLSTATE 42601)"));
  ran_free(&ours);
  ran_free(&psql);
}
END_TEST

/* Scripts as psql -f runs them with ON_ERROR_STOP=1: in order, on one
 * connection, stopping at the first error; -1 makes them one transaction;
 * tags on stderr unless -q; -v as psql's. */
static char *write_script(const char *text, char *path) {
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  ck_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
  return path;
}

/* psql's meta-commands in a script, against psql on the same files:
 * \set (quoted, joined, :'var'), \unset, \echo (-n, variables, inside a
 * statement), \if/\elif/\else/\endif on variables and :{?name} (nested,
 * skipped branches unread), \i and \ir. */
START_TEST(meta_commands_as_psql) {
  char dir[] = "/tmp/pqs-meta-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char main_sql[128], inc_sql[128], sub[128];
  snprintf(sub, sizeof(sub), "%s/sub", dir);
  ck_assert_int_eq(mkdir(sub, 0700), 0);
  snprintf(main_sql, sizeof(main_sql), "%s/main.sql", dir);
  snprintf(inc_sql, sizeof(inc_sql), "%s/sub/inc.sql", dir);
  const char *text =
      "\\set n 3\n"
      "\\set greeting 'it''s, \\t tabbed' ' and ' joined\n"
      "\\echo :greeting :'greeting' :\"n\" :nosuch \"kept quotes\"\n"
      "SELECT g, g * :n AS times FROM generate_series(1, :n) g;\n"
      "\\if :{?n}\n"
      "  \\echo n is set\n"
      "  \\if false\n"
      "    \\echo never\n"
      "    \\gset never_read\n"
      "  \\elif on\n"
      "    SELECT 'inner elif' AS x;\n"
      "  \\endif\n"
      "\\else\n"
      "  SELECT 'never';\n"
      "\\endif\n"
      "\\unset n\n"
      "\\if :{?n}\n"
      "  \\echo never\n"
      "\\elif 0\n"
      "  \\echo never\n"
      "\\else\n"
      "  \\echo else ran\n"
      "\\endif\n"
      "\\echo -n no newline\n"
      "\\echo\n"
      "SELECT 1 AS a,\n"
      "\\echo printed before the statement it interrupts\n"
      "  2 AS b;\n"
      "\\ir sub/inc.sql\n"
      "SELECT 'back' AS where_;\n";
  const char *inc = "\\echo included: :greeting\n"
                    "SELECT E'tab\\there' AS t;\n";
  int fd = open(main_sql, O_WRONLY | O_CREAT, 0600);
  ck_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
  fd = open(inc_sql, O_WRONLY | O_CREAT, 0600);
  ck_assert(write(fd, inc, strlen(inc)) == (ssize_t)strlen(inc));
  close(fd);
  const char *modes[][2] = {{"-At", NULL}, {"-A", NULL}, {"--csv", NULL}};
  for (size_t m = 0; m < 3; m++) {
    ran_t ours = run((const char *[]){"CLI", "-d", CONN, "-q", modes[m][0],
                                      "-f", main_sql, NULL});
    ran_t psql = run((const char *[]){"/usr/bin/psql", "-X", "-q", "-v",
                                      "ON_ERROR_STOP=1", "-d", CONN,
                                      modes[m][0], "-f", main_sql, NULL});
    ck_assert_msg(psql.status == 0, "psql: %s", psql.err);
    ck_assert_msg(ours.status == 0, "pqstream: %s", ours.err);
    pt_assert_same_bytes(modes[m][0], psql.out, psql.out_len, ours.out,
                         ours.out_len);
    ran_free(&ours);
    ran_free(&psql);
  }
  /* -c: a text that begins with a backslash is one meta-command */
  ran_t r = run((const char *[]){"CLI", "-d", CONN, "-v", "x=5", "-c",
                                 "\\echo x is :x", "-c", "SELECT 1", NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.out, "x is 5\n1\n");
  ran_free(&r);
  unlink(inc_sql);
  unlink(main_sql);
  rmdir(sub);
  rmdir(dir);
}
END_TEST

/* \copy ... TO (the query output, pstdout, a file) and a COPY ... TO
 * STDOUT statement of the user's own (any options, binary too): the
 * same bytes as psql's, in every output mode, the files too. */
START_TEST(copy_to_as_psql) {
  char dir[] = "/tmp/pqs-copyto-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char script[128], file[128];
  snprintf(script, sizeof(script), "%s/c.sql", dir);
  snprintf(file, sizeof(file), "%s/out.csv", dir);
  char text[2048];
  snprintf(text, sizeof(text),
           "\\copy (SELECT g, E'x;y\\t' FROM generate_series(1, 3) g) TO stdout\n"
           "\\copy (SELECT g FROM generate_series(1, 2) g) to pstdout with "
           "(format csv, header)\n"
           "\\copy pg_namespace (nspname) TO '%s' (FORMAT csv, FORCE_QUOTE *)\n"
           "COPY (SELECT 'user copy', NULL, '') TO STDOUT;\n"
           "COPY (SELECT 1, 'a\"b') TO STDOUT (FORMAT csv, DELIMITER '|', "
           "HEADER);\n"
           "COPY (SELECT 1::int4, 'bin'::text) TO STDOUT (FORMAT binary);\n"
           "SELECT 'after' AS x;\n",
           file);
  int fd = open(script, O_WRONLY | O_CREAT, 0600);
  ck_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
  close(fd);
  const char *modes[] = {"-At", "-A", "--csv", "--format=csv"};
  for (size_t m = 0; m < 4; m++) {
    int psql_can = m < 3; /* --format is ours: psql's default stands in */
    ran_t ours = run((const char *[]){"CLI", "-d", CONN, "-q", modes[m],
                                      "-f", script, NULL});
    ck_assert_msg(ours.status == 0, "pqstream: %s", ours.err);
    size_t flen;
    int ffd = open(file, O_RDONLY);
    ck_assert_int_ge(ffd, 0);
    char *ours_file = slurp(ffd, &flen);
    unlink(file);
    ran_t psql = run((const char *[]){"/usr/bin/psql", "-X", "-q", "-v",
                                      "ON_ERROR_STOP=1", "-d", CONN,
                                      psql_can ? modes[m] : "-At", "-f",
                                      script, NULL});
    ck_assert_msg(psql.status == 0, "psql: %s", psql.err);
    size_t plen;
    ffd = open(file, O_RDONLY);
    ck_assert_int_ge(ffd, 0);
    char *psql_file = slurp(ffd, &plen);
    unlink(file);
    pt_assert_same_bytes("the \\copy file", psql_file, plen, ours_file, flen);
    if (psql_can)
      pt_assert_same_bytes(modes[m], psql.out, psql.out_len, ours.out,
                           ours.out_len);
    else /* the COPY bytes alike; only the last SELECT's format differs */
      ck_assert_int_eq(memcmp(psql.out, ours.out, psql.out_len - 6), 0);
    free(ours_file);
    free(psql_file);
    ran_free(&ours);
    ran_free(&psql);
  }
  unlink(script);
  rmdir(dir);
  /* COPY FROM is a load's: refused, in either spelling */
  ran_t r = run((const char *[]){"CLI", "-d", CONN, "-c",
                                 "COPY pg_class FROM STDIN", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "pqs_copy_in"));
  ran_free(&r);
  r = run((const char *[]){"CLI", "-d", CONN, "-c",
                           "\\copy pg_class FROM 'x.csv'", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "--from-file"));
  ran_free(&r);
}
END_TEST

/* What is not run is refused before anything runs, naming it: another
 * meta-command, a non-boolean \if, an \if left open, \echo with -j. */
START_TEST(meta_commands_refused) {
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TABLE IF EXISTS cli_meta; CREATE TABLE cli_meta (a int)");
  const char *scripts[] = {
      "INSERT INTO cli_meta VALUES (1);\n\\gset\n",
      "INSERT INTO cli_meta VALUES (1);\n\\if maybe\n\\endif\n",
      "INSERT INTO cli_meta VALUES (1);\n\\if true\n",
      "INSERT INTO cli_meta VALUES (1);\n\\echo `date`\n",
      "INSERT INTO cli_meta VALUES (1);\n\\endif\n"};
  const char *says[] = {":2: \\gset: a meta-command pqstream does not run",
                        ":2: \\if: the expression is not a boolean",
                        "\\if without \\endif", "backquotes",
                        ":2: \\endif: no matching \\if"};
  for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
    char path[] = "/tmp/pqs-meta-XXXXXX";
    write_script(scripts[i], path);
    ran_t r = run((const char *[]){"CLI", "-d", CONN, "-f", path, NULL});
    unlink(path);
    ck_assert_int_eq(r.status, 3); /* as psql -v ON_ERROR_STOP=1 -f */
    ck_assert_msg(strstr(r.err, says[i]) != NULL, "'%s' lacks '%s'", r.err,
                  says[i]);
    ran_free(&r);
  }
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM cli_meta"), 0);
  ran_t r = run((const char *[]){"CLI", "-d", CONN, "-j", "2", "-c",
                                 "\\echo hi", "-c", "SELECT 1", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "not with -j"));
  ran_free(&r);
  pt_sql(admin, "DROP TABLE cli_meta");
  PQfinish(admin);
}
END_TEST

START_TEST(scripts_and_variables) {
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TABLE IF EXISTS cli_script; CREATE TABLE cli_script "
                "(x int)");
  char p1[] = "/tmp/pqs-script-XXXXXX";
  write_script("INSERT INTO cli_script VALUES (1);\n"
               "SELECT 1 / 0;\n"
               "INSERT INTO cli_script VALUES (2);\n",
               p1);
  ran_t r = run((const char *[]){"CLI", "-d", CONN, "-1", "-f", p1, NULL});
  ck_assert_int_eq(r.status, 3); /* as psql -v ON_ERROR_STOP=1 -f */
  ck_assert_ptr_nonnull(strstr(r.err, "division by zero"));
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM cli_script"), 0);
  ran_free(&r);
  /* without -1: the first is committed, the third never runs; the error
   * names the file and the line its statement starts on, as psql's */
  r = run((const char *[]){"CLI", "-d", CONN, "-f", p1, NULL});
  ck_assert_int_eq(r.status, 3);
  char want[512];
  snprintf(want, sizeof(want),
           "INSERT 0 1\npqstream:%s:2: ERROR:  division by zero (SQLSTATE "
           "22012)\n",
           p1);
  ck_assert_str_eq(r.err, want);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT sum(x) FROM cli_script"), 1);
  ran_t theirs = run((const char *[]){"/usr/bin/psql", "-X", "-q", "-v",
                                      "ON_ERROR_STOP=1", "-d", CONN, "-f", p1,
                                      NULL});
  ck_assert_int_eq(theirs.status, r.status);
  snprintf(want, sizeof(want), "psql:%s:2: ERROR:  division by zero", p1);
  ck_assert_msg(strstr(theirs.err, want) != NULL, "psql said: %s",
                theirs.err);
  ran_free(&theirs);
  /* a statement over several lines: the line it ends on, as psql's */
  char p3[] = "/tmp/pqs-lines-XXXXXX";
  write_script("SELECT 1;\n\nSELECT 1,\n  2 / 0\nFROM cli_script;\n", p3);
  ran_t ours3 = run((const char *[]){"CLI", "-q", "-d", CONN, "-f", p3, NULL});
  ran_t psql3 = run((const char *[]){"/usr/bin/psql", "-X", "-q", "-v",
                                     "ON_ERROR_STOP=1", "-d", CONN, "-f", p3,
                                     NULL});
  ck_assert_int_eq(ours3.status, 3);
  ck_assert_int_eq(psql3.status, 3);
  snprintf(want, sizeof(want), "pqstream:%s:5: ERROR:", p3);
  ck_assert_msg(strstr(ours3.err, want) != NULL, "we said: %s", ours3.err);
  snprintf(want, sizeof(want), "psql:%s:5: ERROR:", p3);
  ck_assert_msg(strstr(psql3.err, want) != NULL, "psql said: %s", psql3.err);
  ran_free(&ours3);
  ran_free(&psql3);
  unlink(p3);
  pt_sql(admin, "TRUNCATE cli_script");
  /* an error in -c is 1, as psql's */
  ran_free(&r);
  r = run((const char *[]){"CLI", "-d", CONN, "-c", "SELECT 1 / 0", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_null(strstr(r.err, "pqstream:"));
  ran_free(&r);
  unlink(p1);
  /* one connection: a temp table lives from one statement to the next */
  r = run((const char *[]){"CLI", "-q", "-d", CONN, "-c",
                           "CREATE TEMP TABLE tt AS SELECT 7 AS x; SELECT x "
                           "FROM tt; -- done",
                           NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "7\n");
  ck_assert_str_eq(r.err, ""); /* -q: no tags */
  ran_free(&r);
  /* -v, as psql interpolates it */
  char p2[] = "/tmp/pqs-vars-XXXXXX";
  write_script("SELECT :'v', length(:'b'), :'d', :n + 1, ':v';\n", p2);
  r = run((const char *[]){"CLI", "-d", CONN, "-v", "v=it's", "-v", "b=a\\b",
                           "--set", "d=$$x$$", "-v", "n=42", "-f", p2, NULL});
  ran_t psql = run((const char *[]){"/usr/bin/psql",
                                    "-X",
                                    "-q",
                                    "-A",
                                    "-t",
                                    "-F",
                                    "\t",
                                    "-d",
                                    CONN,
                                    "-v",
                                    "v=it's",
                                    "-v",
                                    "b=a\\b",
                                    "-v",
                                    "d=$$x$$",
                                    "-v",
                                    "n=42",
                                    "-f",
                                    p2,
                                    NULL});
  unlink(p2);
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "it's\t3\t$$x$$\t43\t:v\n");
  ck_assert_str_eq(r.out, psql.out);
  ran_free(&r);
  ran_free(&psql);
  pt_sql(admin, "DROP TABLE cli_script");
  PQfinish(admin);
}
END_TEST

/* Several queries into one CSV with a header: one header line; columns
 * that differ are refused before the first byte; a failing query of -j N
 * is named as typed. */
START_TEST(several_queries_one_output) {
  ran_t r = run((const char *[]){"CLI", "-d", CONN, "--format=csv", "--header",
                                 "-c", "SELECT 1 AS a, 'x' AS b", "-c",
                                 "SELECT 2 AS a, 'y' AS b", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "a,b\n1,x\n2,y\n");
  ran_free(&r);
  r = run((const char *[]){"CLI", "-d", CONN, "--format=csv", "--header", "-c",
                           "SELECT 1 AS a, 'x' AS b; SELECT 2 AS a", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_uint_eq(r.out_len, 0); /* found before the first byte */
  ck_assert_msg(strstr(r.err,
                       "query 2: its columns (a (type 23)) differ "
                       "from query 1's (a (type 23), b (type 25))") != NULL,
                "stderr: %s", r.err);
  ran_free(&r);
  r = run((const char *[]){"CLI", "-d", CONN, "-j", "3", "-c", "SELECT 1", "-c",
                           "SELECT 2", "-c", "SELECT 1 / 0", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "ERROR:  query 3: division by zero") != NULL,
                "stderr: %s", r.err);
  ran_free(&r);
}
END_TEST

/* ---- psql's connection options ---- */

/* Runs the tool on a pseudo-terminal, types `password` at its prompt, and
 * returns its exit status; *said gets what it showed on the terminal. */
static int run_on_pty(const char *const *argv, const char *password, char *said,
                      size_t cap) {
  int master;
  pid_t pid = forkpty(&master, NULL, NULL, NULL);
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    execv(cli(), (char *const *)argv);
    _exit(127);
  }
  size_t n = 0;
  int typed = 0;
  double until = pt_now() + 20;
  while (pt_now() < until) {
    struct pollfd pf = {.fd = master, .events = POLLIN};
    if (poll(&pf, 1, 100) > 0) {
      ssize_t got = read(master, said + n, cap - n - 1);
      if (got <= 0)
        break; /* the tool has gone: EIO on the master */
      n += (size_t)got;
      said[n] = '\0';
    }
    if (!typed && strstr(said, "Password for user") != NULL) {
      ck_assert(write(master, password, strlen(password)) > 0);
      ck_assert(write(master, "\n", 1) == 1);
      typed = 1;
    }
  }
  int st = 0;
  pid_t done = 0;
  for (int i = 0; i < 50 && done == 0; i++) { /* EOF came: it is ending */
    done = waitpid(pid, &st, WNOHANG);
    if (done == 0)
      uv_sleep(20);
  }
  if (done == 0) { /* never hang the suite: say what it showed */
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
    close(master);
    ck_abort_msg("the tool was still running after 20 s; it showed: %s", said);
  }
  close(master);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

START_TEST(psql_connection_options) {
  const char *port = getenv("PQS_TEST_PORT");
  const char *scram = getenv("PQS_TEST_SCRAM_USER");
  const char *secret = getenv("PQS_TEST_SCRAM_PASSWORD");
  ck_assert_msg(port && scram && secret,
                "tests/pg.sh's environment is not set");
  /* -h -p -U -d as psql; -h is not help; the application name is ours. */
  ran_t r = run((const char *[]){
      "CLI", "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "pqstest",
      "-X", "-c",
      "SELECT current_user, current_database(), application_name FROM "
      "pg_stat_activity WHERE pid = pg_backend_pid()",
      NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "postgres\tpqstest\tpqstream\n");
  ran_free(&r);
  /* positional DBNAME USERNAME, and --csv (psql's, with its header) */
  r = run((const char *[]){"CLI", "-h", "127.0.0.1", "-p", port, "--csv", "-c",
                           "SELECT current_user, 'a,b'", "pqstest", "postgres",
                           NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "current_user,?column?\npostgres,\"a,b\"\n");
  ran_free(&r);
  /* -d as a conninfo: its keys win over -h, as in psql */
  r = run((const char *[]){"CLI", "-h", "/nonexistent/socket/dir", "-d", CONN,
                           "-c", "SELECT 1", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ran_free(&r);
  /* -w with a SCRAM user and no password: fails at once, no prompt */
  double t0 = pt_now();
  r = run((const char *[]){"CLI", "-w", "-h", "127.0.0.1", "-p", port, "-U",
                           scram, "pqstest", "-c", "SELECT 1", NULL});
  ck_assert_int_eq(r.status, 2);
  ck_assert_ptr_nonnull(strstr(r.err, "no password supplied"));
  ck_assert_msg(pt_now() - t0 < 5, "-w took %.1f s", pt_now() - t0);
  ran_free(&r);
  /* -?, and -p no longer a parameter */
  r = run((const char *[]){"CLI", "-?", NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert_ptr_nonnull(strstr(r.out, "--username"));
  ran_free(&r);
  /* -W: the password typed at the prompt, not echoed */
  char said[4096] = "";
  int status =
      run_on_pty((const char *[]){"pqstream", "-W", "-h", "127.0.0.1", "-p",
                                  port, "-U", scram, "pqstest", "-c",
                                  "SELECT 'in as ' || current_user", NULL},
                 secret, said, sizeof(said));
  ck_assert_msg(status == 0, "exit %d: %s", status, said);
  ck_assert_ptr_nonnull(strstr(said, "Password for user pqs_scram: "));
  ck_assert_msg(strstr(said, secret) == NULL, "the password was echoed");
  ck_assert_ptr_nonnull(strstr(said, "in as pqs_scram"));
  /* no -W: asked once, when the server wants a password */
  said[0] = '\0';
  status = run_on_pty((const char *[]){"pqstream", "-h", "127.0.0.1", "-p",
                                       port, "-U", scram, "pqstest", "-c",
                                       "SELECT 'again ' || current_user", NULL},
                      secret, said, sizeof(said));
  ck_assert_msg(status == 0, "exit %d: %s", status, said);
  ck_assert_ptr_nonnull(strstr(said, "Password for user pqs_scram: "));
  ck_assert_ptr_nonnull(strstr(said, "again pqs_scram"));
  ck_assert_msg(strstr(said, "no password supplied") == NULL,
                "an error before the prompt: %s", said);
}
END_TEST

/* ---- memory and progress ---- */

START_TEST(ten_million_rows_bounded) {
  /* The base, then 10,000,000 rows: what streaming adds must stay small
   * (under a sanitizer the base is the sanitizer's, hence the difference;
   * without one the whole is held to 32 MB too). */
  ran_t base = run((const char *[]){"CLI", "-d", CONN, "-c", "SELECT 1", NULL});
  ck_assert_int_eq(base.status, 0);
  char cmd[512];
  snprintf(cmd, sizeof(cmd),
           "exec '%s' -d '%s' -c 'SELECT g, md5(g::text) "
           "FROM generate_series(1, 10000000) g'",
           cli(), CONN);
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    execl("/bin/sh", "sh", "-c", cmd, NULL);
    _exit(127);
  }
  int st;
  struct rusage ru;
  ck_assert_int_eq(wait4(pid, &st, 0, &ru), pid);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  long grew = ru.ru_maxrss - base.maxrss_kb;
#ifdef PQS_SANITIZED
  long cap = 48 * 1024; /* ASan holds freed memory back (16 MB here) */
#else
  long cap = 16 * 1024;
#endif
  ck_assert_msg(grew < cap, "10M rows took %ld kB more than one row", grew);
#ifndef PQS_SANITIZED
  ck_assert_msg(ru.ru_maxrss < 32 * 1024, "peak RSS %ld kB", ru.ru_maxrss);
#endif
  ran_free(&base);
}
END_TEST

START_TEST(progress_on_stderr) {
  /* rows, then a pause longer than the progress period (250 ms), then
   * more rows: the progress line is there whichever source is faster */
  ran_t r = run((const char *[]){
      "CLI", "-d", CONN, "-c",
      "SELECT g, CASE WHEN g = 1000 THEN pg_sleep(0.6)::text END "
      "FROM generate_series(1, 3000000) g",
      "--progress", NULL});
  ck_assert_int_eq(r.status, 0);
  ck_assert_msg(strstr(r.err, "rows/s") && strstr(r.err, " MB "), "stderr: %s",
                r.err);
  size_t n = strlen(r.err);
  ck_assert_msg(n >= 4 && strcmp(r.err + n - 4, "\r\033[K") == 0,
                "progress line not cleared at the end");
  ran_free(&r);
  r = run((const char *[]){"CLI", "-d", CONN, "-c", "SELECT 1", NULL});
  ck_assert_str_eq(r.err, ""); /* stderr is not a terminal: none */
  ran_free(&r);

  /* stderr a terminal and the output not: on by default */
  int master = posix_openpt(O_RDWR | O_NOCTTY);
  ck_assert_int_ge(master, 0);
  ck_assert_int_eq(grantpt(master), 0);
  ck_assert_int_eq(unlockpt(master), 0);
  int tty = open(ptsname(master), O_RDWR | O_NOCTTY);
  ck_assert_int_ge(tty, 0);
  pid_t pid = fork();
  if (pid == 0) {
    int devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(tty, 2);
    /* It lasts 1.5 s whatever the machine's speed: several 250 ms ticks. */
    execl(cli(), "pqstream", "-d", CONN, "-c",
          "SELECT g FROM generate_series(1, 100000) g UNION ALL "
          "SELECT 0 FROM pg_sleep(1.5)",
          NULL);
    _exit(127);
  }
  close(tty);
  char buf[4096];
  size_t got = 0;
  ssize_t nread;
  while (got < sizeof(buf) - 1 &&
         (nread = read(master, buf + got, sizeof(buf) - 1 - got)) > 0)
    got += (size_t)nread; /* ends with EIO once the tool has exited */
  buf[got] = '\0';
  int st;
  ck_assert_int_eq(waitpid(pid, &st, 0), pid);
  ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  ck_assert_msg(strstr(buf, "rows/s") != NULL, "no progress on a terminal");
  close(master);
}
END_TEST

/* ---- partitioned reads ---- */

static int cmp_lines(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines of `text`, sorted, joined again (malloc'd). */
static char *sorted_lines(const char *text) {
  char *copy = strdup(text), **lines = NULL, *save, *l;
  size_t n = 0, len = strlen(text);
  for (l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    lines = realloc(lines, (n + 1) * sizeof(char *));
    lines[n++] = l;
  }
  qsort(lines, n, sizeof(char *), cmp_lines);
  char *out = calloc(1, len + 2), *w = out;
  for (size_t i = 0; i < n; i++)
    w += sprintf(w, "%s\n", lines[i]);
  free(lines);
  free(copy);
  return out;
}

START_TEST(partition_on_a_key) {
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TABLE IF EXISTS cli_parts; CREATE TABLE cli_parts AS "
                "SELECT CASE WHEN g % 97 = 0 THEN NULL ELSE g END AS k, "
                "md5(g::text) AS v FROM generate_series(1, 20000) g");
  size_t olen, alen;
  char *ordered = pt_server_copy(
      admin, "SELECT k, v FROM cli_parts WHERE k IS NOT NULL ORDER BY k", "",
      &olen);
  char *all = pt_server_copy(admin, "SELECT k, v FROM cli_parts", "", &alen);
  PQfinish(admin);
  /* in key order: byte for byte the ORDER BY */
  ran_t r = run((const char *[]){"CLI", "-d", CONN, "-c",
                                 "SELECT k, v FROM cli_parts WHERE k IS NOT "
                                 "NULL",
                                 "--partition-on", "k", "--partitions", "5",
                                 "--order-by", "k", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  pt_assert_same_bytes("in key order", ordered, olen, r.out, r.out_len);
  ran_free(&r);
  /* as the rows come: the same rows as the whole query, NULL keys too */
  r = run((const char *[]){"CLI", "-d", CONN, "-c",
                           "SELECT k, v FROM cli_parts", "--partition-on", "k",
                           NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  char *want = sorted_lines(all), *got = sorted_lines(r.out);
  pt_assert_same_bytes("rows", want, strlen(want), got, strlen(got));
  ran_free(&r);
  r = run((const char *[]){"CLI", "-d", CONN, "-c", "SELECT 1", "-c",
                           "SELECT 2", "--partition-on", "k", NULL});
  ck_assert_int_eq(r.status, 1);
  ran_free(&r);
  r = run((const char *[]){"CLI", "-d", CONN, "-c", "SELECT 1 AS k",
                           "--partitions", "3", NULL});
  ck_assert_int_eq(r.status, 1);
  ran_free(&r);
  free(want);
  free(got);
  free(ordered);
  free(all);
}
END_TEST

/* ---- notifications ---- */

/* A child that waits until a backend is listening, then notifies. */
static pid_t notify_when_listening(const char *channel, int n) {
  pid_t pid = fork();
  if (pid != 0)
    return pid;
  PGconn *admin = pt_admin();
  char sql[256];
  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM pg_stat_activity WHERE query = 'LISTEN "
           "\"%s\"' AND state = 'idle'",
           channel);
  double t0 = pt_now();
  while (pt_scalar_ll(admin, sql) == 0 && pt_now() - t0 < 10)
    usleep(20000);
  for (int i = 1; i <= n; i++) {
    snprintf(sql, sizeof(sql), "SELECT pg_notify('%s', 'say \"%d\"')", channel,
             i);
    pt_sql(admin, sql);
  }
  PQfinish(admin);
  _exit(0);
}

START_TEST(listen_prints_json_lines) {
  /* A channel of this process's own: the tool's suite runs twice, side
   * by side. */
  char channel[32];
  snprintf(channel, sizeof(channel), "cli_jobs_%d", (int)getpid());
  pid_t notifier = notify_when_listening(channel, 3);
  ran_t r = run((const char *[]){"CLI", "-d", CONN, "--listen", channel,
                                 "--limit", "3", NULL});
  int st;
  waitpid(notifier, &st, 0);
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
  /* three lines, each row_to_json-like, compared by the server */
  PGconn *admin = pt_admin();
  const char *params[] = {r.out, channel};
  PGresult *res = PQexecParams(
      admin,
      "SELECT count(*), bool_and(l::jsonb->>'channel' = $2 AND "
      "(l::jsonb->>'pid')::int > 0 AND jsonb_typeof(l::jsonb->'pid') = "
      "'number'), string_agg(l::jsonb->>'payload', ',') FROM "
      "regexp_split_to_table(rtrim($1, E'\\n'), E'\\n') l",
      2, NULL, params, NULL, NULL, 0);
  ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s\n%s",
                PQerrorMessage(admin), r.out);
  ck_assert_str_eq(PQgetvalue(res, 0, 0), "3");
  ck_assert_str_eq(PQgetvalue(res, 0, 1), "t");
  ck_assert_str_eq(PQgetvalue(res, 0, 2), "say \"1\",say \"2\",say \"3\"");
  PQclear(res);
  PQfinish(admin);
  ran_free(&r);
  /* no query with it */
  r = run((const char *[]){"CLI", "-d", CONN, "--listen", "x", "-c", "SELECT 1",
                           NULL});
  ck_assert_int_eq(r.status, 1);
  ran_free(&r);
}
END_TEST


/* ---- change streams ---- */

/* --changes prints each change as a JSON object, acknowledges what it
 * wrote (the next run starts after it), exits 0 at --limit and 130 on
 * SIGINT; the slot is made with --create-slot, and missing otherwise is
 * said before anything runs. The second test server is the logical one;
 * names are this process's own (the suite runs twice side by side). */
START_TEST(changes_print_json_lines) {
  const char *c2 = getenv("PQS_TEST_CONNINFO2");
  ck_assert_msg(c2 != NULL, "PQS_TEST_CONNINFO2 is not set: the test "
                            "command starts a second server with "
                            "wal_level=logical");
  PGconn *admin = PQconnectdb(c2);
  ck_assert_msg(PQstatus(admin) == CONNECTION_OK, "%s", PQerrorMessage(admin));
  char slot[64], pub[64], table[64], sql[1024];
  int me = (int)getpid();
  snprintf(slot, sizeof(slot), "cli_slot_%d", me);
  snprintf(pub, sizeof(pub), "cli_pub_%d", me);
  snprintf(table, sizeof(table), "cli_chg_%d", me);
  snprintf(sql, sizeof(sql),
           "SET client_min_messages = warning; DROP TABLE IF EXISTS %s;"
           "CREATE TABLE %s (id int PRIMARY KEY, t text);"
           "DROP PUBLICATION IF EXISTS %s; CREATE PUBLICATION %s FOR TABLE %s",
           table, table, pub, pub, table);
  pt_sql(admin, sql);
  /* no slot yet: said before anything streams */
  ran_t r = run((const char *[]){"CLI", "-d", c2, "--changes", slot,
                                 "--publication", pub, NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "does not exist") && strstr(r.err,
                                                          "--create-slot"),
                "%s", r.err);
  ran_free(&r);
  r = run((const char *[]){"CLI", "-d", c2, "--changes", slot, NULL});
  ck_assert_int_eq(r.status, 1); /* no --publication: a usage error */
  ck_assert_msg(strstr(r.err, "--publication") != NULL, "%s", r.err);
  ran_free(&r);
  snprintf(sql, sizeof(sql),
           "SELECT pg_create_logical_replication_slot('%s', 'pgoutput')",
           slot);
  pt_sql(admin, sql);
  snprintf(sql, sizeof(sql),
           "BEGIN; INSERT INTO %s VALUES (1, 'a \"q\"'), (2, NULL); COMMIT",
           table);
  pt_sql(admin, sql);
  snprintf(sql, sizeof(sql), "UPDATE %s SET t = 'b' WHERE id = 2", table);
  pt_sql(admin, sql);
  snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE id = 1", table);
  pt_sql(admin, sql);
  /* the two transactions' three changes whole: nothing comes twice */
  r = run((const char *[]){"CLI", "-d", c2, "--changes", slot,
                           "--publication", pub, "--limit", "3", NULL});
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
  const char *params[] = {r.out};
  PGresult *res = PQexecParams(
      admin,
      "SELECT string_agg(concat_ws(' ', l::jsonb->>'op', l::jsonb->>'table', "
      "l::jsonb->'new', l::jsonb->'old', l::jsonb->'unchanged', "
      "jsonb_typeof(l::jsonb->'xid'), l::jsonb->>'lsn' LIKE '%/%'), ';') "
      "FROM regexp_split_to_table(rtrim($1, E'\\n'), E'\\n') l",
      1, NULL, params, NULL, NULL, 0);
  ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "%s\n%s",
                PQerrorMessage(admin), r.out);
  char want[1024];
  snprintf(want, sizeof(want),
           "insert %s {\"t\": \"a \\\"q\\\"\", \"id\": 1} null [] number t;"
           "insert %s {\"t\": null, \"id\": 2} null [] number t;"
           "update %s {\"t\": \"b\", \"id\": 2} null [] number t",
           table, table, table);
  ck_assert_str_eq(PQgetvalue(res, 0, 0), want);
  PQclear(res);
  ran_free(&r);
  /* the delete is next, then nothing: SIGINT ends it, exit 130 */
  r = run((const char *[]){"/usr/bin/timeout", "--preserve-status", "-s",
                           "INT", "3", cli(), "-d", c2, "--changes", slot,
                           "--publication", pub, NULL});
  ck_assert_msg(r.status == 130, "exit %d: %s", r.status, r.err);
  ck_assert_msg(strstr(r.out, "\"op\":\"delete\"") != NULL &&
                    strchr(r.out, '\n') == r.out + strlen(r.out) - 1,
                "%s", r.out);
  ran_free(&r);
  snprintf(sql, sizeof(sql),
           "SELECT pg_drop_replication_slot('%s'); DROP PUBLICATION %s;"
           "DROP TABLE %s", slot, pub, table);
  pt_sql(admin, sql);
  PQfinish(admin);
}
END_TEST

/* ---- bench ---- */

/* ---- into a table ---- */

static void fresh_into(PGconn *c) {
  pt_sql(c, "DROP TABLE IF EXISTS cli_into; CREATE TABLE cli_into (id int "
            "PRIMARY KEY, s text)");
}

/* A query's rows into a table here and on another server, a file and
 * standard input (CSV with a header, quoted newlines) into a table, and
 * the failures: exit codes and messages as for queries, nothing loaded. */
START_TEST(into_table_and_from_file) {
  PGconn *a = pt_admin(), *b = PQconnectdb(getenv("PQS_TEST_CONNINFO2")
                                               ? getenv("PQS_TEST_CONNINFO2")
                                               : "");
  ck_assert_msg(PQstatus(b) == CONNECTION_OK,
                "PQS_TEST_CONNINFO2 (a second server) is needed: %s",
                PQerrorMessage(b));
  fresh_into(a);
  fresh_into(b);
  const char *q = "SELECT g, 'row ' || g FROM generate_series(1, 50000) g";
  ran_t r = run((const char *[]){"CLI", "-d", CONN, "-c", q, "--into-table",
                                 "cli_into (id, s)", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_str_eq(r.out, "");
  ck_assert_ptr_nonnull(strstr(r.err, "COPY 50000\n"));
  ran_free(&r);
  ck_assert_int_eq(pt_scalar_ll(a, "SELECT count(*) FROM cli_into"), 50000);
  r = run((const char *[]){"CLI", "-d", CONN, "-c", q, "--into-table",
                           "cli_into", "--into-db",
                           getenv("PQS_TEST_CONNINFO2"), "-q", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ran_free(&r);
  ck_assert_int_eq(pt_scalar_ll(b, "SELECT sum(id) FROM cli_into WHERE s = "
                                   "'row ' || id"),
                   50000LL * 50001 / 2);
  /* two queries merged (-j 2), and one read as key ranges, into tables */
  fresh_into(b);
  r = run((const char *[]){"CLI", "-d", CONN, "-q", "-j", "2", "-c",
                           "SELECT g, 'a' FROM generate_series(1, 20000) g",
                           "-c",
                           "SELECT g, 'b' FROM generate_series(20001, 30000) g",
                           "--into-table", "cli_into", "--into-db",
                           getenv("PQS_TEST_CONNINFO2"), NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ran_free(&r);
  ck_assert_int_eq(pt_scalar_ll(b, "SELECT count(DISTINCT id) FROM cli_into"),
                   30000);
  pt_sql(a, "DROP TABLE IF EXISTS cli_keys; CREATE TABLE cli_keys AS "
            "SELECT g AS id, 'k' || g AS s FROM generate_series(1, 40000) g");
  fresh_into(b);
  r = run((const char *[]){"CLI", "-d", CONN, "-q", "-c",
                           "SELECT id, s FROM cli_keys", "--partition-on",
                           "id", "--partitions", "3", "--into-table",
                           "cli_into", "--into-db",
                           getenv("PQS_TEST_CONNINFO2"), NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ran_free(&r);
  ck_assert_int_eq(pt_scalar_ll(b, "SELECT sum(id) FROM cli_into WHERE "
                                   "s = 'k' || id"),
                   40000LL * 40001 / 2);
  /* the same rows again: the key is taken, nothing more goes in */
  r = run((const char *[]){"CLI", "-d", CONN, "-c", q, "--into-table",
                           "cli_into", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "duplicate key"));
  ck_assert_ptr_nonnull(strstr(r.err, "CONTEXT:  COPY cli_into, line"));
  ran_free(&r);
  ck_assert_int_eq(pt_scalar_ll(a, "SELECT count(*) FROM cli_into"), 50000);

  /* a file, then standard input as CSV with a header */
  fresh_into(a);
  char path[] = "/tmp/pqs-cli-into-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  for (int i = 1; i <= 1000; i++)
    dprintf(fd, "%d\tline\\n%d\n", i, i);
  close(fd);
  r = run((const char *[]){"CLI", "-d", CONN, "--into-table", "cli_into",
                           "--from-file", path, NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ran_free(&r);
  ck_assert_int_eq(pt_scalar_ll(a, "SELECT count(*) FROM cli_into WHERE s = "
                                   "E'line\\n' || id"),
                   1000);
  char cmd[1024];
  snprintf(cmd, sizeof(cmd),
           "printf 'id,s\\n7,\"two\\nlines, \"\"q\"\"\"\\n8,x' | %s -d '%s' "
           "--into-table cli_into --from-file - --csv --header",
           cli(), CONN);
  pt_sql(a, "TRUNCATE cli_into");
  r = run((const char *[]){"/bin/sh", "-c", cmd, NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_ptr_nonnull(strstr(r.err, "COPY 2"));
  ran_free(&r);
  char *s = pt_scalar(a, "SELECT string_agg(s, '|' ORDER BY id) FROM cli_into");
  ck_assert_str_eq(s, "two\nlines, \"q\"|x");
  free(s);
  /* a bad line: the server's error names it; nothing loaded */
  snprintf(cmd, sizeof(cmd),
           "printf '1\\tok\\n2\\ttoo\\tmany\\n' | %s -d '%s' "
           "--into-table cli_into --from-file -",
           cli(), CONN);
  pt_sql(a, "TRUNCATE cli_into");
  r = run((const char *[]){"/bin/sh", "-c", cmd, NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_ptr_nonnull(strstr(r.err, "extra data after last expected"));
  ck_assert_ptr_nonnull(strstr(r.err, "line 2"));
  ran_free(&r);
  ck_assert_int_eq(pt_scalar_ll(a, "SELECT count(*) FROM cli_into"), 0);
  /* options that do not go together */
  r = run((const char *[]){"CLI", "-d", CONN, "--into-table", "cli_into",
                           "--from-file", path, "-c", "SELECT 1", NULL});
  ck_assert_int_eq(r.status, 1);
  ran_free(&r);
  r = run((const char *[]){"CLI", "-d", CONN, "--from-file", path, NULL});
  ck_assert_int_eq(r.status, 1);
  ran_free(&r);
  unlink(path);
  PQfinish(a);
  PQfinish(b);
}
END_TEST

/* SIGINT in the middle of a load from a pipe that has not ended: rolled
 * back, exit 130; SIGTERM in the middle of a query into a table: its
 * query cancelled too, exit 143. */
START_TEST(into_table_interrupted) {
  PGconn *a = pt_admin();
  fresh_into(a);
  for (int i = 0; i < 2; i++) {
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[0], 0);
      close(fds[1]);
      if (i == 0)
        execl(cli(), "pqstream", "-q", "-d", CONN, "--into-table",
              "cli_into", "--from-file", "-", NULL);
      else
        execl(cli(), "pqstream", "-q", "-d", CONN, "--into-table", "cli_into",
              "-c",
              "SELECT g, 'y' FROM generate_series(1, 100000000) g "
              "/* cli-into */",
              NULL);
      _exit(127);
    }
    close(fds[0]);
    if (i == 1) {
      wait_active("cli-into");
    } else { /* lines for a second, the pipe left open */
      fcntl(fds[1], F_SETFL, O_NONBLOCK);
      char line[32];
      double t0 = pt_now();
      for (int n = 1; pt_now() - t0 < 1;) {
        int len = snprintf(line, sizeof(line), "%d\tx\n", n);
        if (write(fds[1], line, (size_t)len) == len)
          n++;
        else
          uv_sleep(1);
      }
    }
    kill(pid, i == 0 ? SIGINT : SIGTERM);
    double t0 = pt_now();
    int st = 0;
    pid_t done;
    while ((done = waitpid(pid, &st, WNOHANG)) == 0 && pt_now() - t0 < 15)
      uv_sleep(20);
    if (done == 0)
      kill(pid, SIGKILL);
    close(fds[1]);
    ck_assert_msg(done == pid, "still running 15 s after the signal");
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), i == 0 ? 130 : 143);
    ck_assert_int_eq(pt_scalar_ll(a, "SELECT count(*) FROM cli_into"), 0);
  }
  assert_no_active("cli-into");
  PQfinish(a);
}
END_TEST

START_TEST(bench_json) {
  ran_t r = run((const char *[]){"CLI", "bench", "-d", CONN, "--rows", "100000",
                                 "--runs", "2", "--json", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  PGconn *admin = pt_admin();
  const char *params[] = {r.out};
  PGresult *res = PQexecParams(
      admin,
      "WITH j AS (SELECT $1::jsonb AS j), ways AS (SELECT unnest(ARRAY["
      "'pqstream','pqstream_copy','single_row','exec','copy','copy_split']) "
      "AS w), metrics AS (SELECT "
      "unnest(ARRAY['rows_per_s','mb_per_s','first_row_ms','peak_rss_kb',"
      "'cpu_s']) "
      "AS m) SELECT count(*) FILTER (WHERE jsonb_typeof(j->'ways'->w->m->"
      "'median') = 'number' AND jsonb_typeof(j->'ways'->w->m->'min') = "
      "'number' AND jsonb_typeof(j->'ways'->w->m->'max') = 'number'), "
      "(SELECT count(*) FROM jsonb_object_keys((SELECT j->'ratios' FROM "
      "j))), (SELECT (j->>'rows')::int FROM j) FROM j, ways, metrics",
      1, NULL, params, NULL, NULL, 0);
  ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "not JSON: %s\n%s",
                PQerrorMessage(admin), r.out);
  ck_assert_str_eq(PQgetvalue(res, 0, 0), "30"); /* 6 ways x 5 figures */
  ck_assert_str_eq(PQgetvalue(res, 0, 1), "6");  /* 6 ratios */
  ck_assert_str_eq(PQgetvalue(res, 0, 2), "100000");
  PQclear(res);
  PQfinish(admin);
  ran_free(&r);
}
END_TEST


/* --changes: both ways over the same WAL, four tables of figures; a server
 * whose wal_level is not logical is refused with the reason. */
START_TEST(bench_changes_runs) {
  const char *c2 = getenv("PQS_TEST_CONNINFO2");
  ck_assert_msg(c2 != NULL, "PQS_TEST_CONNINFO2 is not set: the logical "
                            "server");
  ran_t r = run((const char *[]){"CLI", "bench", "--changes", "-d", c2,
                                 "--rows", "2000", "--runs", "1", NULL});
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
  int tables = 0, ways = 0;
  for (const char *p = r.out; (p = strstr(p, "2000 changes in")) != NULL; p++)
    tables++;
  for (const char *p = r.out; (p = strstr(p, "\n  pqstream_changes ")) != NULL;
       p++)
    ways++;
  ck_assert_msg(tables == 4 && ways == 4 &&
                    strstr(r.out, "\n  pg_recvlogical ") != NULL,
                "%s", r.out);
  ran_free(&r);
  r = run((const char *[]){"CLI", "bench", "--changes", "-d", CONN, "--rows",
                           "2000", NULL});
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "wal_level is logical") != NULL, "%s", r.err);
  ran_free(&r);
}
END_TEST

/* --binary: the binary ways beside the text ones, and the server's CPU
 * per way (the test server is local: it must be a number). */
START_TEST(bench_binary_json) {
  ran_t r = run((const char *[]){"CLI", "bench", "-d", CONN, "--rows", "50000",
                                 "--runs", "1", "--binary", "--json", NULL});
  ck_assert_msg(r.status == 0, "%s", r.err);
  PGconn *admin = pt_admin();
  const char *params[] = {r.out};
  PGresult *res = PQexecParams(
      admin,
      "WITH j AS (SELECT $1::jsonb AS j) SELECT (SELECT count(*) FROM "
      "unnest(ARRAY['pqstream','pqstream_copy','single_row','exec','copy',"
      "'copy_split','pqstream_binary','pqstream_copy_bin','copy_binary',"
      "'single_row_bin']) w "
      "WHERE jsonb_typeof(j->'ways'->w->'rows_per_s'->'median') = 'number' "
      "AND (j->'ways'->w->'server_cpu_s'->>'median')::float8 >= 0), "
      "jsonb_typeof(j->'ratios'->'pqstream_copy_bin_vs_copy_binary'->"
      "'server_cpu_s'), "
      "jsonb_typeof(j->'ratios'->'single_row_bin_vs_single_row'->"
      "'server_cpu_s') FROM j",
      1, NULL, params, NULL, NULL, 0);
  ck_assert_msg(PQresultStatus(res) == PGRES_TUPLES_OK, "not JSON: %s\n%.300s",
                PQerrorMessage(admin), r.out);
  ck_assert_str_eq(PQgetvalue(res, 0, 0), "10"); /* 10 ways, each measured */
  ck_assert_str_eq(PQgetvalue(res, 0, 1), "number");
  ck_assert_str_eq(PQgetvalue(res, 0, 2), "number"); /* the server's floor */
  PQclear(res);
  PQfinish(admin);
  ran_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("cli");
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, output_like_copy);
  tcase_add_test(tc, output_options_as_psql);
  tcase_add_test(tc, output_options_refused);
  tcase_add_test(tc, meta_commands_as_psql);
  tcase_add_test(tc, meta_commands_refused);
  tcase_add_test(tc, copy_to_as_psql);
  tcase_add_test(tc, params_files_limit_output);
  tcase_add_test(tc, environment_defaults);
  tcase_add_test(tc, notices_and_quiet);
  tcase_add_test(tc, head_ends_it);
  tcase_add_test(tc, signal_with_stalled_reader);
  tcase_add_test(tc, output_errors_and_secrets);
  tcase_add_test(tc, psql_connection_options);
  tcase_add_test(tc, error_caret_as_psql);
  tcase_add_test(tc, scripts_and_variables);
  tcase_add_test(tc, several_queries_one_output);
  tcase_add_test(tc, signals_cancel);
  tcase_add_test(tc, parallel_queries);
  tcase_add_test(tc, shards_in_order);
  tcase_add_test(tc, exit_codes_and_messages);
  tcase_add_test(tc, ten_million_rows_bounded);
  tcase_add_test(tc, progress_on_stderr);
  tcase_add_test(tc, bench_json);
  tcase_add_test(tc, bench_binary_json);
  tcase_add_test(tc, bench_changes_runs);
  tcase_add_test(tc, listen_prints_json_lines);
  tcase_add_test(tc, changes_print_json_lines);
  tcase_add_test(tc, into_table_and_from_file);
  tcase_add_test(tc, into_table_interrupted);
  tcase_add_test(tc, partition_on_a_key);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
