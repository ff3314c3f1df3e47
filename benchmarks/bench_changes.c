/* pqstream bench --changes: a slot's changes consumed, side by side.
 *
 *   pqstream_changes  the tool: pqstream --changes SLOT --limit N, JSON
 *                     Lines into a pipe the bench drains
 *   pg_recvlogical    PostgreSQL's own client on a pgoutput slot
 *                     (proto_version 1, the same publication) up to the
 *                     WAL's end, into the same kind of pipe
 *
 * Each run makes two slots, then N inserts (in 10 transactions, then, as a
 * second table of figures, in one), so that both ways read the very same
 * WAL; the ways alternate which goes first. Each shape is measured with
 * the output into /dev/null (the time to compare), then into a pipe the
 * bench drains (the time to the first byte, and MB/s of output). Client CPU and peak RSS are
 * the process's (wait4); server CPU is the walsender's, read as what the
 * postmaster's reaped children gained while the way ran and its
 * walsender exited (a server on this machine; n/a otherwise; another
 * session ending meanwhile would count too). */
#define _DEFAULT_SOURCE /* wait4 */
#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include "ways.h"

enum { C_PQSTREAM, C_RECVLOGICAL, NCWAYS };
static const char *const names[NCWAYS] = {"pqstream_changes",
                                          "pg_recvlogical"};
#define MAXRUNS 50

typedef struct {
  double secs, first_ms, bytes, cpu_s, rss_kb, server_cpu_s;
} csample_t;

static int sql(PGconn *c, const char *q) {
  PGresult *r = PQexec(c, q);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK ||
           PQresultStatus(r) == PGRES_TUPLES_OK;
  if (!ok)
    fprintf(stderr, "pqstream: bench: %s: %s", q, PQerrorMessage(c));
  PQclear(r);
  return ok ? 0 : -1;
}

/* The first value of `q`, into out (cap bytes): 0 or -1. */
static int scalar(PGconn *c, const char *q, char *out, size_t cap) {
  PGresult *r = PQexec(c, q);
  int ok = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  if (ok)
    snprintf(out, cap, "%s", PQgetvalue(r, 0, 0));
  else
    fprintf(stderr, "pqstream: bench: %s: %s", q, PQerrorMessage(c));
  PQclear(r);
  return ok ? 0 : -1;
}

/* The fields of /proc/PID/stat after the command's name (its state
 * first), into buf: NULL if there is no such process here. */
static const char *proc_stat(int pid, char *buf, size_t cap) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  FILE *f = pid > 0 ? fopen(path, "r") : NULL;
  if (f == NULL)
    return NULL;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* the name may hold anything */
  return p ? p + 2 : NULL;
}

/* The postmaster of `c`'s backend (its parent), if on this machine. */
static int postmaster_of(PGconn *c) {
  char buf[1024];
  const char *p = proc_stat(PQbackendPID(c), buf, sizeof(buf));
  int ppid;
  return p && sscanf(p, "%*c %d", &ppid) == 1 ? ppid : -1;
}

/* CPU seconds of the postmaster's exited children (cutime + cstime). */
static double reaped_cpu(int pm) {
  char buf[1024];
  const char *p = proc_stat(pm, buf, sizeof(buf));
  long long cut, cst;
  if (p == NULL || sscanf(p,
                          "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u "
                          "%*u %lld %lld",
                          &cut, &cst) != 2)
    return -1;
  return (double)(cut + cst) / (double)sysconf(_SC_CLK_TCK);
}

/* Until the way's walsender (its application_name is the slot's name)
 * has exited, and so been reaped (at most 10 s). */
static void wait_walsender_gone(PGconn *c, const char *slot) {
  char q[256], v[16] = "1";
  snprintf(q, sizeof(q),
           "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
           "'%s'",
           slot);
  for (int i = 0; i < 500 && strcmp(v, "0") != 0; i++) {
    if (scalar(c, q, v, sizeof(v)) != 0)
      return;
    if (strcmp(v, "0") != 0)
      usleep(20000);
  }
  usleep(50000); /* the postmaster reaps it after it is gone from view */
}

static const char *recvlogical(void) {
  static const char *const at[] = {"/usr/lib/postgresql/15/bin/pg_recvlogical",
                                   "/usr/bin/pg_recvlogical"};
  for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
    if (access(at[i], X_OK) == 0)
      return at[i];
  return "pg_recvlogical";
}

/* Runs the way's command with its output into /dev/null (to_null), or
 * into a pipe drained here, which times the first byte. */
static int run_way(const bench_t *b, int way, int to_null, PGconn *c, int pm,
                   const char *slot, const char *endpos, csample_t *s) {
  char self[4096], limit[32], conninfo[2048];
  snprintf(conninfo, sizeof(conninfo), "%s application_name=%s", b->conninfo,
           slot); /* its walsender is found by it */
  ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
  if (len <= 0)
    return -1;
  self[len] = '\0';
  snprintf(limit, sizeof(limit), "%lld", b->rows);
  const char *pq[] = {self,          "-d",       conninfo,    "--changes",
                      slot,          "--publication", "bench_pub", "--limit",
                      limit,         NULL};
  const char *rl[] = {recvlogical(), "-d",           conninfo,
                      "--slot",      slot,           "--start",
                      "--no-loop",   "--endpos",     endpos,
                      "-o",          "proto_version=1",
                      "-o",          "publication_names=bench_pub",
                      "-f",          "-",            NULL};
  const char *const *argv = way == C_PQSTREAM ? pq : rl;
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  double pm0 = reaped_cpu(pm), t0 = bench_now(), first = -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int nul = to_null ? open("/dev/null", O_WRONLY) : -1;
    dup2(to_null ? nul : fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(fds[1]);
  static char buf[1 << 16];
  ssize_t n;
  s->bytes = 0;
  while ((n = read(fds[0], buf, sizeof(buf))) > 0) {
    if (first < 0)
      first = bench_now();
    s->bytes += (double)n;
  }
  close(fds[0]);
  int st = 0;
  struct rusage ru = {0};
  wait4(pid, &st, 0, &ru);
  s->secs = bench_now() - t0;
  s->first_ms = first < 0 ? -1 : (first - t0) * 1000;
  s->cpu_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
             (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  s->rss_kb = (double)ru.ru_maxrss;
  wait_walsender_gone(c, slot); /* its CPU is the postmaster's now */
  double pm1 = reaped_cpu(pm);
  s->server_cpu_s = pm0 < 0 || pm1 < 0 ? -1 : pm1 - pm0;
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    fprintf(stderr, "pqstream: bench: %s exited %d\n", names[way],
            WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    return -1;
  }
  return 0;
}

/* A fresh table and publication, two slots, then the rows in `txns`
 * transactions; *endpos is the WAL's end after them. */
static int prepare(const bench_t *b, PGconn *c, int txns, char *endpos) {
  if (sql(c, "SET client_min_messages = warning;"
             "SELECT pg_drop_replication_slot(slot_name) FROM "
             "pg_replication_slots WHERE slot_name LIKE 'pqs_bench_%';"
             "DROP PUBLICATION IF EXISTS bench_pub;"
             "DROP TABLE IF EXISTS bench_changes;"
             "CREATE TABLE bench_changes (id int8, t text, n numeric);"
             "CREATE PUBLICATION bench_pub FOR TABLE bench_changes") != 0 ||
      sql(c, "SELECT pg_create_logical_replication_slot('pqs_bench_0', "
             "'pgoutput')") != 0 ||
      sql(c, "SELECT pg_create_logical_replication_slot('pqs_bench_1', "
             "'pgoutput')") != 0)
    return -1;
  long long per = (b->rows + txns - 1) / txns;
  for (long long from = 1; from <= b->rows; from += per) {
    char q[256];
    long long to = from + per - 1 < b->rows ? from + per - 1 : b->rows;
    snprintf(q, sizeof(q),
             "INSERT INTO bench_changes SELECT g, md5(g::text), g / 7.0 "
             "FROM generate_series(%lld, %lld) g",
             from, to);
    if (sql(c, q) != 0)
      return -1;
  }
  return scalar(c, "SELECT pg_current_wal_insert_lsn()", endpos, 32);
}

static double med(csample_t *s, int n, size_t field) {
  double v[MAXRUNS];
  for (int i = 0; i < n; i++)
    v[i] = *(double *)((char *)&s[i] + field);
  return bench_median(v, n);
}

static void report(const bench_t *b, int txns, int to_null,
                   csample_t (*s)[MAXRUNS]) {
  printf("\n%lld changes in %d transaction%s into %s, %d run%s (medians):\n",
         b->rows, txns, txns == 1 ? "" : "s",
         to_null ? "/dev/null" : "a pipe", b->runs, b->runs == 1 ? "" : "s");
  printf("  %-17s %12s %8s %10s %8s %9s %9s %11s\n", "way", "changes/s",
         "MB/s", "first ms", "RSS MB", "client s", "server s", "time ratio");
  double base = med(s[C_RECVLOGICAL], b->runs, offsetof(csample_t, secs));
  for (int w = 0; w < NCWAYS; w++) {
    double secs = med(s[w], b->runs, offsetof(csample_t, secs));
    double srv = med(s[w], b->runs, offsetof(csample_t, server_cpu_s));
    char server[16] = "n/a";
    if (srv >= 0)
      snprintf(server, sizeof(server), "%.2f", srv);
    char mbs[16] = "n/a", first[16] = "n/a";
    if (!to_null) {
      snprintf(mbs, sizeof(mbs), "%.1f",
               med(s[w], b->runs, offsetof(csample_t, bytes)) / secs / 1e6);
      snprintf(first, sizeof(first), "%.1f",
               med(s[w], b->runs, offsetof(csample_t, first_ms)));
    }
    printf("  %-17s %12.0f %8s %10s %8.1f %9.2f %9s %10.2fx\n", names[w],
           (double)b->rows / secs, mbs, first,
           med(s[w], b->runs, offsetof(csample_t, rss_kb)) / 1024,
           med(s[w], b->runs, offsetof(csample_t, cpu_s)), server,
           secs / base);
  }
  if (!to_null)
    printf("  (MB/s: each way's own output, JSON Lines or pgoutput's "
           "messages)\n");
}

int bench_changes(const bench_t *b) {
  PGconn *c = PQconnectdb(b->conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "pqstream: bench: %s", PQerrorMessage(c));
    PQfinish(c);
    return BENCH_FAILED;
  }
  char level[32] = "";
  if (scalar(c, "SHOW wal_level", level, sizeof(level)) != 0 ||
      strcmp(level, "logical") != 0) {
    fprintf(stderr, "pqstream: bench: --changes needs a server whose "
                    "wal_level is logical (it is %s)\n", level);
    PQfinish(c);
    return BENCH_FAILED;
  }
  int pm = postmaster_of(c), rc = 0;
  static csample_t s[NCWAYS][MAXRUNS];
  static const int shapes[] = {10, 1};
  for (int k = 0; k < 4 && rc == 0; k++) {
    int txns = shapes[k / 2], to_null = k % 2 == 0;
    for (int run = 0; run < b->runs && rc == 0; run++) {
      char endpos[32];
      rc = prepare(b, c, txns, endpos);
      for (int i = 0; i < NCWAYS && rc == 0; i++) {
        int way = (i + run) % NCWAYS; /* who goes first alternates */
        char slot[32];
        snprintf(slot, sizeof(slot), "pqs_bench_%d", way);
        rc = run_way(b, way, to_null, c, pm, slot, endpos, &s[way][run]);
      }
    }
    if (rc == 0)
      report(b, txns, to_null, s);
  }
  sql(c, "SELECT pg_drop_replication_slot(slot_name) FROM "
         "pg_replication_slots WHERE slot_name LIKE 'pqs_bench_%';"
         "DROP PUBLICATION IF EXISTS bench_pub;"
         "DROP TABLE IF EXISTS bench_changes");
  PQfinish(c);
  return rc == 0 ? BENCH_OK : BENCH_FAILED;
}
