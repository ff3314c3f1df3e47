/* bench_stream: reads one query's rows one of three ways and prints what it
 * cost, as one line of key=value pairs. Each way runs in its own process so
 * that its peak RSS is its own; benchmarks/run.sh alternates them.
 *
 *   bench_stream pqstream|single|exec CONNINFO QUERY
 *
 *   pqstream  pqs_query on a libuv loop, no stages
 *   single    raw libpq, blocking PQgetResult loop in single-row mode
 *   exec      raw libpq, PQexec: the whole result in memory at once
 *
 * Every way touches every field (length and first byte), so that none of
 * them wins by not reading what it was sent. */
#include <libpq-fe.h>
#include <pqstream.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

typedef struct {
  double t0, first, end;
  unsigned long long rows, bytes;
  unsigned check;
  int status;
} run_t;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void touch(run_t *r, const char *v, size_t len) {
  r->bytes += len;
  r->check += len ? (unsigned char)v[0] : 0;
}

static void first_row(run_t *r) {
  if (r->rows++ == 0)
    r->first = now();
}

/* ---- pqstream ---- */

static int on_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  run_t *r = data;
  first_row(r);
  int n = pqs_row_ncols(row);
  for (int i = 0; i < n; i++) {
    size_t len;
    const char *v = pqs_row_text(row, i, &len);
    touch(r, v, len);
  }
  return PQS_CONTINUE;
}

static void on_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  run_t *r = data;
  r->end = now();
  r->status = done->status;
  if (done->status != 0)
    fprintf(stderr, "stream: %s\n",
            done->error ? done->error->message : pqs_strerror(done->status));
  pqs_ctx_close(pqs_stream_ctx(s), NULL);
}

static const char *query;

static void on_open(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                    void *data) {
  run_t *r = data;
  pqs_stream_t *s;
  if (status != 0 || pqs_query(ctx, &s, query, 0, NULL, NULL) != 0) {
    fprintf(stderr, "connect: %s\n", err ? err->message : "?");
    r->status = 1;
    pqs_ctx_close(ctx, NULL);
    return;
  }
  pqs_stream_cbs_t cbs = {.on_row = on_row, .on_done = on_done};
  r->t0 = now();
  pqs_stream_start(s, &cbs, r);
}

static void run_pqstream(const char *conninfo, run_t *r) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  pqs_ctx_t *ctx;
  if (pqs_ctx_open(&ctx, &loop, conninfo, NULL, on_open, r) != 0)
    exit(1);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
}

/* ---- raw libpq ---- */

static PGconn *connect_raw(const char *conninfo) {
  PGconn *c = PQconnectdb(conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connect: %s", PQerrorMessage(c));
    exit(1);
  }
  return c;
}

static void touch_result(run_t *r, const PGresult *res, int row) {
  int n = PQnfields(res);
  for (int i = 0; i < n; i++)
    touch(r, PQgetvalue(res, row, i), (size_t)PQgetlength(res, row, i));
}

static void run_single(const char *conninfo, run_t *r) {
  PGconn *c = connect_raw(conninfo);
  r->t0 = now();
  if (!PQsendQueryParams(c, query, 0, NULL, NULL, NULL, NULL, 0) ||
      !PQsetSingleRowMode(c))
    exit(1);
  PGresult *res;
  while ((res = PQgetResult(c)) != NULL) {
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_SINGLE_TUPLE) {
      first_row(r);
      touch_result(r, res, 0);
    } else if (st != PGRES_TUPLES_OK) {
      fprintf(stderr, "query: %s", PQerrorMessage(c));
      r->status = 1;
    }
    PQclear(res);
  }
  r->end = now();
  PQfinish(c);
}

static void run_exec(const char *conninfo, run_t *r) {
  PGconn *c = connect_raw(conninfo);
  r->t0 = now();
  PGresult *res = PQexec(c, query);
  if (PQresultStatus(res) != PGRES_TUPLES_OK) {
    fprintf(stderr, "query: %s", PQerrorMessage(c));
    r->status = 1;
  }
  int n = PQntuples(res);
  for (int i = 0; i < n; i++) {
    first_row(r);
    touch_result(r, res, i);
  }
  PQclear(res);
  r->end = now();
  PQfinish(c);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s pqstream|single|exec CONNINFO QUERY\n",
            argv[0]);
    return 2;
  }
  query = argv[3];
  run_t r = {0};
  double cpu0 = cpu();
  if (strcmp(argv[1], "pqstream") == 0)
    run_pqstream(argv[2], &r);
  else if (strcmp(argv[1], "single") == 0)
    run_single(argv[2], &r);
  else if (strcmp(argv[1], "exec") == 0)
    run_exec(argv[2], &r);
  else
    return 2;
  if (r.status != 0)
    return 1;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double wall = r.end - r.t0;
  /* cpu counts the whole process, connect included, the same for all. */
  printf("way=%s rows=%llu bytes=%llu wall=%.4f cpu=%.4f ttfr_ms=%.3f "
         "rss_kb=%ld check=%u\n",
         argv[1], r.rows, r.bytes, wall, cpu() - cpu0,
         (r.first - r.t0) * 1000, ru.ru_maxrss, r.check);
  return 0;
}
