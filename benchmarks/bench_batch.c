/* bench_batch: inserts per second for a batch of N rows, three ways in one
 * process and one run, alternating: a pqstream batch (pqs_batch_run: one
 * pipeline, one transaction), raw libpq's pipeline mode doing the same,
 * and one pqs_exec per row (a round trip each, autocommit).
 *
 *   bench_batch CONNINFO [ROWS [RUNS]]     (default 10000 rows, 5 runs)
 *
 * It creates and empties its own table, bench_batch. */
#include <libpq-fe.h>
#include <pqstream.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { W_BATCH, W_PIPELINE, W_EACH, NWAYS };
static const char *names[NWAYS] = {"pqs_batch_run", "raw libpq pipeline",
                                   "pqs_exec per row"};
static const char *insert = "INSERT INTO bench_batch VALUES ($1, $2)";

static double now(void) { return uv_hrtime() / 1e9; }

static void must(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK) {
    fprintf(stderr, "%s: %s", sql, PQerrorMessage(c));
    exit(1);
  }
  PQclear(r);
}

/* ---- pqstream ---- */

typedef struct {
  int pending, failed;
  long left, n;
} run_t;

static void opened(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                   void *data) {
  (void)ctx;
  if (status != 0) {
    fprintf(stderr, "connect: %s\n", err ? err->message : "");
    exit(1);
  }
  ((run_t *)data)->pending = 0;
}

static void batch_done(pqs_ctx_t *ctx, const pqs_batch_done_t *done,
                       void *data) {
  (void)ctx;
  run_t *r = data;
  r->failed = done->status != 0;
  r->pending = 0;
}

static void each_done(pqs_ctx_t *ctx, const pqs_done_t *done, void *data);

static void each_next(pqs_ctx_t *ctx, run_t *r) {
  long i = r->n - r->left--;
  char id[24], name[32];
  snprintf(id, sizeof(id), "%ld", i);
  snprintf(name, sizeof(name), "row %ld", i);
  const char *p[] = {id, name};
  if (pqs_exec(ctx, insert, 2, p, NULL, each_done, r) != 0)
    exit(1);
}

static void each_done(pqs_ctx_t *ctx, const pqs_done_t *done, void *data) {
  run_t *r = data;
  if (done->status != 0)
    r->failed = 1;
  if (r->left > 0 && !r->failed)
    each_next(ctx, r);
  else
    r->pending = 0;
}

/* The batch is built inside the timing, as the raw loop builds its
 * parameters inside its own. */
static pqs_batch_t *build(long n) {
  pqs_batch_t *b;
  pqs_batch_new(&b);
  for (long i = 0; i < n; i++) {
    char name[32];
    snprintf(name, sizeof(name), "row %ld", i);
    pqs_param_t p[] = {pqs_p_int64(i), pqs_p_text(name)};
    pqs_batch_add(b, insert, 2, p);
  }
  return b;
}

static double run_pqstream(uv_loop_t *loop, pqs_ctx_t *ctx, long n, int way) {
  run_t r = {.pending = 1, .left = n, .n = n};
  pqs_batch_t *b = NULL;
  double t0 = now();
  if (way == W_BATCH) {
    b = build(n);
    if (pqs_batch_run(ctx, b, NULL, batch_done, &r) != 0)
      exit(1);
  } else {
    each_next(ctx, &r);
  }
  while (r.pending)
    uv_run(loop, UV_RUN_ONCE);
  double secs = now() - t0;
  pqs_batch_free(b);
  if (r.failed) {
    fprintf(stderr, "%s failed\n", names[way]);
    exit(1);
  }
  return secs;
}

/* ---- raw libpq, pipeline mode, blocking ---- */

static double run_pipeline(PGconn *c, long n) {
  double t0 = now();
  if (!PQenterPipelineMode(c))
    exit(1);
  for (long i = 0; i < n; i++) {
    char id[24], name[32];
    snprintf(id, sizeof(id), "%ld", i);
    snprintf(name, sizeof(name), "row %ld", i);
    const char *p[] = {id, name};
    if (!PQsendQueryParams(c, insert, 2, NULL, p, NULL, NULL, 0))
      exit(1);
  }
  PQpipelineSync(c);
  int synced = 0;
  while (!synced) {
    PGresult *r = PQgetResult(c);
    if (r == NULL)
      continue;
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC)
      synced = 1;
    else if (st != PGRES_COMMAND_OK) {
      fprintf(stderr, "pipeline: %s", PQerrorMessage(c));
      exit(1);
    }
    PQclear(r);
  }
  PQexitPipelineMode(c);
  return now() - t0;
}

static void quiet(void *arg, const char *message) {
  (void)arg;
  (void)message;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s CONNINFO [ROWS [RUNS]]\n", argv[0]);
    return 2;
  }
  long n = argc > 2 ? atol(argv[2]) : 10000;
  int runs = argc > 3 ? atoi(argv[3]) : 5;
  if (n < 1 || runs < 1 || runs > 50)
    return 2;
  PGconn *raw = PQconnectdb(argv[1]);
  if (PQstatus(raw) != CONNECTION_OK) {
    fprintf(stderr, "connect: %s", PQerrorMessage(raw));
    return 1;
  }
  PQsetNoticeProcessor(raw, quiet, NULL);
  must(raw, "DROP TABLE IF EXISTS bench_batch");
  must(raw, "CREATE TABLE bench_batch (id int8, name text)");
  uv_loop_t *loop = uv_default_loop();
  pqs_ctx_t *ctx;
  run_t o = {.pending = 1};
  if (pqs_ctx_open(&ctx, loop, argv[1], NULL, opened, &o) != 0)
    return 1;
  while (o.pending)
    uv_run(loop, UV_RUN_ONCE);
  double secs[NWAYS][50];
  for (int r = 0; r < runs; r++)
    for (int k = 0; k < NWAYS; k++) {
      int w = (k + r) % NWAYS;
      must(raw, "TRUNCATE bench_batch");
      secs[w][r] = w == W_PIPELINE ? run_pipeline(raw, n)
                                   : run_pqstream(loop, ctx, n, w);
    }
  printf("%ld rows per batch, %d runs each, median inserts/s\n", n, runs);
  double med[NWAYS];
  for (int w = 0; w < NWAYS; w++) {
    qsort(secs[w], (size_t)runs, sizeof(double), cmp);
    med[w] = runs % 2 ? secs[w][runs / 2]
                      : (secs[w][runs / 2 - 1] + secs[w][runs / 2]) / 2;
    printf("  %-20s %10.0f inserts/s\n", names[w], n / med[w]);
  }
  printf("ratios: pqs_batch_run / raw pipeline %.3fx, pqs_batch_run / "
         "pqs_exec per row %.3fx\n",
         med[W_PIPELINE] / med[W_BATCH], med[W_EACH] / med[W_BATCH]);
  pqs_ctx_close(ctx, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  must(raw, "DROP TABLE bench_batch");
  PQfinish(raw);
  return 0;
}
