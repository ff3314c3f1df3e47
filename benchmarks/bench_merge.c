/* bench_merge: the per-row cost of merging K streams, against consuming
 * the same K streams separately, in one process and one run, alternating.
 *
 *   bench_merge CONNINFO [RUNS [copy]]  (reads the table benchmarks/run.sh
 *                                        loads: bench(id, a, b, s))
 *
 * With "copy" every stream reads through the COPY source. The last column
 * compares the merged cost per row with one stream's (K = 1).
 *
 * Input i of K reads "WHERE id % K = i", so both ways read the same rows
 * with the same server work; the client CPU per row is what differs. */
#include <pqstream.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAXK 8

typedef struct {
  int pending;
  unsigned long long rows, bytes;
  int failed;
} tally_t;

static double cpu(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int on_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  tally_t *t = data;
  t->rows++;
  for (int i = 0; i < pqs_row_ncols(row); i++) {
    size_t len;
    pqs_row_text(row, i, &len);
    t->bytes += len;
  }
  return PQS_CONTINUE;
}

static void on_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)s;
  tally_t *t = data;
  if (done->status != 0) {
    fprintf(stderr, "stream: %s\n",
            done->error ? done->error->message : pqs_strerror(done->status));
    t->failed = 1;
  }
  t->pending--;
}

static void on_open(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                    void *data) {
  (void)ctx;
  if (status != 0) {
    fprintf(stderr, "connect: %s\n", err ? err->message : "");
    exit(1);
  }
  (*(int *)data)--;
}

/* One pass over the table through K streams; returns the CPU seconds. */
static pqs_query_opts_t qopts; /* the source every stream reads through */

static double pass(uv_loop_t *loop, pqs_ctx_t **ctx, int k, int merged,
                   double *wall, tally_t *t) {
  pqs_stream_t *in[MAXK];
  char sql[128];
  for (int i = 0; i < k; i++) {
    snprintf(sql, sizeof(sql),
             "SELECT id, a, b, s FROM bench WHERE id %% %d = %d", k, i);
    if (pqs_query(ctx[i], &in[i], sql, 0, NULL, &qopts) != 0)
      exit(1);
  }
  pqs_stream_cbs_t cbs = {.on_row = on_row, .on_done = on_done};
  *t = (tally_t){0};
  double c0 = cpu();
  uint64_t t0 = uv_hrtime();
  if (merged) {
    pqs_stream_t *m;
    if (pqs_merge(in, k, NULL, &m) != 0)
      exit(1);
    t->pending = 1;
    pqs_stream_start(m, &cbs, t);
  } else {
    t->pending = k;
    for (int i = 0; i < k; i++)
      pqs_stream_start(in[i], &cbs, t);
  }
  while (t->pending > 0)
    uv_run(loop, UV_RUN_ONCE);
  *wall = (uv_hrtime() - t0) / 1e9;
  if (t->failed)
    exit(1);
  return cpu() - c0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s CONNINFO [RUNS [copy]]\n", argv[0]);
    return 2;
  }
  int runs = argc > 2 ? atoi(argv[2]) : 5;
  if (runs < 1 || runs > 50)
    runs = 5;
  int copy = argc > 3 && strcmp(argv[3], "copy") == 0;
  qopts.source = copy ? PQS_SOURCE_COPY : PQS_SOURCE_SINGLE_ROW;
  printf("source: %s\n", copy ? "COPY" : "single-row");
  uv_loop_t *loop = uv_default_loop();
  pqs_ctx_t *ctx[MAXK];
  int pending = MAXK;
  for (int i = 0; i < MAXK; i++)
    pqs_ctx_open(&ctx[i], loop, argv[1], NULL, on_open, &pending);
  while (pending > 0)
    uv_run(loop, UV_RUN_ONCE);

  printf("%2s %14s %14s %16s %16s %10s %10s\n", "K", "separate rows/s",
         "merged rows/s", "separate ns/row", "merged ns/row", "CPU ratio",
         "vs K=1");
  double one = 0; /* one stream's CPU per row */
  for (int k = 1; k <= MAXK; k *= 2) {
    double cpu_s[50], cpu_m[50], wall_s[50], wall_m[50];
    tally_t t;
    unsigned long long rows = 0;
    for (int r = 0; r < runs; r++) { /* alternate which goes first */
      int first = r % 2;
      for (int j = 0; j < 2; j++) {
        int merged = j ^ first;
        double w, c = pass(loop, ctx, k, merged, &w, &t);
        (merged ? cpu_m : cpu_s)[r] = c;
        (merged ? wall_m : wall_s)[r] = w;
        rows = t.rows;
      }
    }
    double cs = median(cpu_s, runs), cm = median(cpu_m, runs);
    double ws = median(wall_s, runs), wm = median(wall_m, runs);
    if (k == 1)
      one = cs / rows;
    printf("%2d %14.0f %14.0f %16.1f %16.1f %9.3fx %9.3fx\n", k, rows / ws,
           rows / wm, cs / rows * 1e9, cm / rows * 1e9, cm / cs,
           cm / rows / one);
  }
  for (int i = 0; i < MAXK; i++)
    pqs_ctx_close(ctx[i], NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
