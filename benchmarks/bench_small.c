/* pqstream bench --small: many small queries, one at a time or
 * pipelined, on three shapes:
 *
 *   value   SELECT $1::int
 *   lookup  a primary-key lookup in a table of --rows rows
 *   join    three tables joined by keys, one row
 *
 * and these ways, each in a process of its own, alternating over runs:
 *
 *   raw_one         raw libpq: PQsendQueryParams, then its results, one
 *                   query at a time (the unnamed statement)
 *   raw_pipe16/100  raw libpq's pipeline mode, 16 or 100 queries a sync
 *   pqs_unnamed     pqs_query one at a time, no prepared statements
 *   pqs_prepared    pqs_query one at a time, prepared from the 5th run on
 *   pqs_pipe16/100  pqs_pipeline of 16 or 100 streams, all or nothing:
 *                   one sync a pipeline, as the raw ways send
 *   pqs_pipe100s    pqs_pipeline of 100 streams, a sync after each query
 *                   (the default: each query its own transaction)
 *
 * Figures: queries per second, client CPU and the backend's CPU per
 * query, in microseconds. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ways.h"

enum { S_VALUE, S_LOOKUP, S_JOIN, NSHAPES };
static const char *const shape_names[NSHAPES] = {"value", "lookup", "join"};
static const char *const shape_sql[NSHAPES] = {
    "SELECT $1::int",
    "SELECT name FROM bench_small_a WHERE id = $1",
    "SELECT a.name, b.label, c.tag FROM bench_small_a a JOIN bench_small_b b "
    "ON b.id = a.b_id JOIN bench_small_c c ON c.id = b.c_id WHERE a.id = $1"};

enum {
  K_RAW_ONE,
  K_RAW_PIPE16,
  K_RAW_PIPE100,
  K_PQS_UNNAMED,
  K_PQS_PREPARED,
  K_PQS_PIPE16,
  K_PQS_PIPE100,
  K_PQS_PIPE100S,
  NSMALL
};
static const char *const way_names[NSMALL] = {
    "raw_one",     "raw_pipe16",   "raw_pipe100", "pqs_unnamed",
    "pqs_prepared", "pqs_pipe16", "pqs_pipe100", "pqs_pipe100s"};

#define QUERIES 20000
#define MAXRUNS 50

/* The key of the i-th query: spread over the table. */
static long long key_of(const bench_t *b, int i) {
  return 1 + (long long)((i * 7919LL) % b->rows);
}

static int server_pid(PGconn *c) { return PQbackendPID(c); }

/* ---- raw libpq ---- */

static int raw_one(const bench_t *b, PGconn *c, const char *sql) {
  for (int i = 0; i < QUERIES; i++) {
    char k[24];
    snprintf(k, sizeof(k), "%lld", key_of(b, i));
    const char *v[] = {k};
    if (!PQsendQueryParams(c, sql, 1, NULL, v, NULL, NULL, 0))
      return -1;
    PGresult *r;
    int ok = 1;
    while ((r = PQgetResult(c)) != NULL) {
      ok &= PQresultStatus(r) == PGRES_TUPLES_OK;
      PQclear(r);
    }
    if (!ok)
      return -1;
  }
  return 0;
}

static int raw_pipe(const bench_t *b, PGconn *c, const char *sql, int depth) {
  if (!PQenterPipelineMode(c))
    return -1;
  for (int done = 0; done < QUERIES; done += depth) {
    int n = QUERIES - done < depth ? QUERIES - done : depth;
    for (int i = 0; i < n; i++) {
      char k[24];
      snprintf(k, sizeof(k), "%lld", key_of(b, done + i));
      const char *v[] = {k};
      if (!PQsendQueryParams(c, sql, 1, NULL, v, NULL, NULL, 0))
        return -1;
    }
    if (!PQpipelineSync(c))
      return -1;
    for (int i = 0; i < n; i++) { /* each query's result, then its NULL */
      PGresult *r;
      while ((r = PQgetResult(c)) != NULL) {
        int ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        if (!ok)
          return -1;
      }
    }
    PGresult *sync = PQgetResult(c);
    int ok = PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    PQclear(sync);
    if (!ok)
      return -1;
  }
  return PQexitPipelineMode(c) ? 0 : -1;
}

/* ---- pqstream ---- */

typedef struct {
  const bench_t *b;
  const char *sql;
  int i, failed, opened;
  int depth, each; /* pipelined: queries a pipeline; a sync after each */
  pqs_ctx_t *ctx;
} pq_run_t;

static void next_query(pq_run_t *r);
static void next_pipeline(pq_run_t *r);

static void query_done(pqs_stream_t *s, const pqs_done_t *d, void *data) {
  (void)s;
  pq_run_t *r = data;
  if (d->status != 0) {
    r->failed = 1;
    fprintf(stderr, "pqstream: bench: %s\n",
            d->error ? d->error->message : pqs_strerror(d->status));
    return;
  }
  if (++r->i == QUERIES)
    return;
  if (r->depth == 0)
    next_query(r);
  else if (r->i % r->depth == 0)
    next_pipeline(r); /* the last stream of the pipeline ended */
}

/* The next `depth` queries as one pipeline, each its own stream. */
static void next_pipeline(pq_run_t *r) {
  pqs_pipeline_opts_t o = {.all_or_nothing = !r->each};
  pqs_pipeline_t *pl;
  if (pqs_pipeline(r->ctx, &o, &pl) != 0) {
    r->failed = 1;
    return;
  }
  int n = QUERIES - r->i < r->depth ? QUERIES - r->i : r->depth;
  for (int i = 0; i < n; i++) {
    char k[24];
    snprintf(k, sizeof(k), "%lld", key_of(r->b, r->i + i));
    const char *v[] = {k};
    pqs_stream_t *s;
    pqs_stream_cbs_t cbs = {.on_done = query_done};
    if (pqs_pipeline_query(pl, &s, r->sql, 1, v) != 0 ||
        pqs_stream_start(s, &cbs, r) != 0)
      r->failed = 1;
  }
  if (r->failed || pqs_pipeline_send(pl) != 0) {
    r->failed = 1;
    pqs_pipeline_close(pl);
  }
}

static void next_query(pq_run_t *r) {
  char k[24];
  snprintf(k, sizeof(k), "%lld", key_of(r->b, r->i));
  const char *v[] = {k};
  pqs_stream_t *s;
  pqs_stream_cbs_t cbs = {.on_done = query_done};
  if (pqs_query(r->ctx, &s, r->sql, 1, v, NULL) != 0 ||
      pqs_stream_start(s, &cbs, r) != 0)
    r->failed = 1;
}

static void opened(pqs_ctx_t *ctx, int status, const pqs_error_t *e,
                   void *data) {
  (void)ctx;
  pq_run_t *r = data;
  r->opened = 1;
  if (status != 0) {
    fprintf(stderr, "pqstream: bench: %s\n", e ? e->message : "connect");
    r->failed = 1;
  }
}

/* One way's queries; the server's CPU read around them. */
static int run_small(const bench_t *b, int code, sample_t *s) {
  int shape = code / NSMALL, way = code % NSMALL;
  const char *sql = shape_sql[shape];
  double t0, cpu0;
  int rc;
  if (way >= K_PQS_UNNAMED) {
    uv_loop_t loop;
    if (uv_loop_init(&loop) != 0)
      return -1;
    pq_run_t r = {.b = b,
                  .sql = sql,
                  .depth = way == K_PQS_PIPE16    ? 16
                           : way >= K_PQS_PIPE100 ? 100
                                                  : 0,
                  .each = way == K_PQS_PIPE100S};
    pqs_ctx_opts_t o = {.source = PQS_SOURCE_SINGLE_ROW,
                        .prepare_threshold = way == K_PQS_UNNAMED
                                                 ? PQS_PREPARE_NEVER
                                                 : 0};
    if (pqs_ctx_open(&r.ctx, &loop, b->conninfo, &o, opened, &r) != 0)
      return -1;
    while (!r.opened)
      uv_run(&loop, UV_RUN_ONCE);
    int pid = pqs_ctx_backend_pid(r.ctx);
    cpu0 = bench_backend_cpu(pid);
    t0 = bench_now();
    if (r.depth)
      next_pipeline(&r);
    else
      next_query(&r);
    while (!r.failed && r.i < QUERIES)
      uv_run(&loop, UV_RUN_ONCE);
    s->secs = bench_now() - t0;
    double cpu1 = bench_backend_cpu(pid);
    s->server_cpu_s = cpu0 < 0 || cpu1 < 0 ? -1 : cpu1 - cpu0;
    pqs_ctx_close(r.ctx, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    rc = r.failed ? -1 : 0;
  } else {
    PGconn *c = PQconnectdb(b->conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
      fprintf(stderr, "pqstream: bench: %s", PQerrorMessage(c));
      PQfinish(c);
      return -1;
    }
    int pid = server_pid(c);
    cpu0 = bench_backend_cpu(pid);
    t0 = bench_now();
    rc = way == K_RAW_ONE ? raw_one(b, c, sql)
                          : raw_pipe(b, c, sql,
                                     way == K_RAW_PIPE16 ? 16 : 100);
    s->secs = bench_now() - t0;
    double cpu1 = bench_backend_cpu(pid);
    s->server_cpu_s = cpu0 < 0 || cpu1 < 0 ? -1 : cpu1 - cpu0;
    if (rc != 0)
      fprintf(stderr, "pqstream: bench: %s: %s", way_names[way],
              PQerrorMessage(c));
    PQfinish(c);
  }
  s->rows = QUERIES;
  return rc;
}

static int prepare_tables(const bench_t *b) {
  PGconn *c = PQconnectdb(b->conninfo);
  char q[1024];
  snprintf(q, sizeof(q),
           "SET client_min_messages = warning;"
           "DROP TABLE IF EXISTS bench_small_a, bench_small_b, bench_small_c;"
           "CREATE TABLE bench_small_c (id int PRIMARY KEY, tag text);"
           "CREATE TABLE bench_small_b (id int PRIMARY KEY, label text, c_id "
           "int);"
           "CREATE TABLE bench_small_a (id int8 PRIMARY KEY, name text, b_id "
           "int);"
           "INSERT INTO bench_small_c SELECT g, 'tag ' || g FROM "
           "generate_series(1, 100) g;"
           "INSERT INTO bench_small_b SELECT g, 'label ' || g, 1 + g %% 100 "
           "FROM generate_series(1, 1000) g;"
           "INSERT INTO bench_small_a SELECT g, md5(g::text), 1 + g %% 1000 "
           "FROM generate_series(1, %lld) g;"
           "ANALYZE bench_small_a, bench_small_b, bench_small_c",
           b->rows);
  PGresult *r = PQexec(c, q);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    fprintf(stderr, "pqstream: bench: %s", PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return ok ? 0 : -1;
}

static double med(sample_t *s, int n, int which) {
  double v[MAXRUNS];
  for (int i = 0; i < n; i++)
    v[i] = which == 0   ? s[i].secs
           : which == 1 ? s[i].cpu_s
                        : s[i].server_cpu_s;
  return bench_median(v, n);
}

static void report(const bench_t *b, int shape, sample_t (*s)[MAXRUNS]) {
  printf("\n%s (%s), %d queries, %d run%s (medians):\n", shape_names[shape],
         shape_sql[shape], QUERIES, b->runs, b->runs == 1 ? "" : "s");
  printf("  %-13s %10s %9s %12s %12s %13s\n", "way", "queries/s",
         "vs one", "client us/q", "server us/q", "server vs one");
  double base = med(s[K_RAW_ONE], b->runs, 0);
  double base_srv = med(s[K_RAW_ONE], b->runs, 2);
  for (int w = 0; w < NSMALL; w++) {
    double secs = med(s[w], b->runs, 0), srv = med(s[w], b->runs, 2);
    char server[16] = "n/a", ratio[16] = "n/a";
    if (srv >= 0) {
      snprintf(server, sizeof(server), "%.1f", srv / QUERIES * 1e6);
      if (base_srv > 0)
        snprintf(ratio, sizeof(ratio), "%.2fx", srv / base_srv);
    }
    printf("  %-13s %10.0f %8.2fx %12.1f %12s %13s\n", way_names[w],
           QUERIES / secs, base / secs,
           med(s[w], b->runs, 1) / QUERIES * 1e6, server, ratio);
  }
}

int bench_small(const bench_t *b) {
  if (prepare_tables(b) != 0)
    return BENCH_FAILED;
  static sample_t s[NSMALL][MAXRUNS];
  for (int shape = 0; shape < NSHAPES; shape++) {
    for (int run = 0; run < b->runs; run++)
      for (int i = 0; i < NSMALL; i++) {
        int way = (i + run) % NSMALL; /* who goes first rotates */
        if (bench_in_child(b, shape * NSMALL + way, run_small,
                           &s[way][run]) != 0)
          return BENCH_FAILED;
      }
    report(b, shape, s);
  }
  return BENCH_OK;
}
