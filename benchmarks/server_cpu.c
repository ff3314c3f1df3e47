/* What the server spends: a local backend's CPU time from /proc, and the
 * server's CPU count from its own /proc/cpuinfo. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ways.h"

/* CPU seconds the server process `pid` has used, from /proc/PID/stat
 * (utime and stime): only when the server runs on this machine, and the
 * process is a postgres backend; -1 otherwise. */
double bench_backend_cpu(int pid) {
  char path[64], comm[64] = "", buf[1024];
  snprintf(path, sizeof(path), "/proc/%d/comm", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return -1;
  int is_pg = fgets(comm, sizeof(comm), f) && strstr(comm, "postgres");
  fclose(f);
  snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  if (!is_pg || (f = fopen(path, "r")) == NULL)
    return -1;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* past the command name */
  unsigned long long ut, st;
  if (p == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The server CPU of the way so far: the backends' use since `at`. */
void bench_server_cpu_since(sample_t *s, const int *pids, const double *at,
                             int n) {
  s->server_cpu_s = 0;
  for (int i = 0; i < n; i++) {
    double now_cpu = bench_backend_cpu(pids[i]);
    if (at[i] < 0 || now_cpu < 0) {
      s->server_cpu_s = -1;
      return;
    }
    s->server_cpu_s += now_cpu - at[i];
  }
}

/* The server's CPUs, from its /proc/cpuinfo (a superuser, on Linux);
 * -1 when it cannot be read. */
int bench_server_cpus(const char *conninfo) {
  PGconn *c = PQconnectdb(conninfo);
  int n = -1;
  PGresult *r = PQstatus(c) == CONNECTION_OK
                    ? PQexec(c, "SELECT count(*) FROM regexp_matches("
                                "pg_read_file('/proc/cpuinfo'), "
                                "'^processor', 'gn')")
                    : NULL;
  if (r && PQresultStatus(r) == PGRES_TUPLES_OK)
    n = atoi(PQgetvalue(r, 0, 0));
  PQclear(r);
  PQfinish(c);
  return n;
}

