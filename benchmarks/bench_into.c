/* pqstream bench --into: rows written into a table, side by side.
 *
 *   pqstream_lines  pqs_copy_in, the lines made by the bench
 *   raw_lines       raw libpq's PQputCopyData loop, the same lines
 *   batch_inserts   pqs_batch_run of INSERTs, 1,000 rows a batch
 *   pqstream_pipe   pqs_stream_into: the query on -d into the table on
 *                   --into-db (the same server by default)
 *   psql_pipe       psql -c "COPY (q) TO STDOUT" | psql -c "COPY t FROM
 *                   STDIN", the two processes together
 *
 * Each way runs in a child of its own (its CPU, RSS and time its own,
 * psql's two children included), the ways alternating over the runs; the
 * table is emptied before each. Server CPU is the target backend's, read
 * from /proc where it runs on this machine (n/a for psql, whose backends
 * are not ours to find). */
#include <libpq-fe.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ways.h"

enum { I_LINES, I_RAW, I_BATCH, I_PIPE, I_PSQL, NINTO };
static const char *const into_names[NINTO] = {
    "pqstream_lines", "raw_lines", "batch_inserts", "pqstream_pipe",
    "psql_pipe"};

#define TABLE "bench_into"
#define PIECE (64 * 1024)

static const char *target(const bench_t *b) {
  return b->into_db ? b->into_db : b->conninfo;
}

static PGconn *must_connect(const char *conninfo) {
  PGconn *c = PQconnectdb(conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connect: %s", PQerrorMessage(c));
    exit(1);
  }
  return c;
}

static int sql(PGconn *c, const char *q) {
  PGresult *r = PQexec(c, q);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok)
    fprintf(stderr, "%s: %s", q, PQerrorMessage(c));
  PQclear(r);
  return ok ? 0 : -1;
}

/* The generated query's rows, as COPY's text lines, `from` on: into
 * `out` up to about PIECE bytes; the next id. */
static long long lines(const bench_t *b, long long from, char *out,
                       size_t *len) {
  size_t n = 0;
  for (; from <= b->rows && n < PIECE - 2048; from++) {
    n += (size_t)sprintf(out + n, "%lld", from);
    for (int c = 0; c < b->cols; c++) {
      int w = sprintf(out + n + 1, "%lld", from);
      out[n++] = '\t';
      int pad = b->width > w ? b->width - w : 0;
      memmove(out + n + pad, out + n, (size_t)w);
      memset(out + n, 'x', (size_t)pad);
      n += (size_t)(pad + w);
    }
    out[n++] = '\n';
  }
  *len = n;
  return from;
}

/* ---- pqstream: lines ---- */

typedef struct {
  const bench_t *b;
  pqs_copy_in_t *ci;
  long long next;
  int done, failed, waiting;
  uint64_t rows, bytes;
  char buf[PIECE];
} feed_t;

static void feed(feed_t *f) {
  while (!f->waiting && f->next <= f->b->rows) {
    size_t n;
    f->next = lines(f->b, f->next, f->buf, &n);
    f->bytes += n;
    int rc = pqs_copy_in_put(f->ci, f->buf, n);
    if (rc < 0) {
      f->failed = 1;
      return;
    }
    f->waiting = rc == 1;
  }
  if (!f->waiting && f->next > f->b->rows)
    pqs_copy_in_end(f->ci);
}

static void feed_ready(pqs_copy_in_t *ci, void *data) {
  (void)ci;
  feed_t *f = data;
  f->waiting = 0;
  feed(f);
}

static void feed_done(pqs_copy_in_t *ci, const pqs_done_t *done, void *data) {
  (void)ci;
  feed_t *f = data;
  if (done->status != 0)
    fprintf(stderr, "load: %s\n",
            done->error ? done->error->message : pqs_strerror(done->status));
  f->failed |= done->status != 0;
  f->rows = done->rows;
  f->done = 1;
}

typedef struct {
  pqs_ctx_t *ctx;
  int opened, failed;
} opening_t;

static void on_open(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                    void *data) {
  opening_t *o = data;
  o->ctx = ctx;
  o->opened = 1;
  if (status != 0) {
    fprintf(stderr, "connect: %s\n", err ? err->message : "");
    o->failed = 1;
  }
}

static pqs_ctx_t *open_ctx(uv_loop_t *loop, const char *conninfo) {
  opening_t o = {0};
  pqs_ctx_t *ctx;
  if (pqs_ctx_open(&ctx, loop, conninfo, NULL, on_open, &o) != 0)
    exit(1);
  while (!o.opened)
    uv_run(loop, UV_RUN_ONCE);
  if (o.failed)
    exit(1);
  return ctx;
}

static int run_lines(const bench_t *b, sample_t *s, int *pid) {
  uv_loop_t *loop = uv_default_loop();
  pqs_ctx_t *ctx = open_ctx(loop, target(b));
  *pid = pqs_ctx_backend_pid(ctx);
  double c0 = bench_backend_cpu(*pid);
  feed_t *f = calloc(1, sizeof(*f));
  f->b = b;
  f->next = 1;
  pqs_copy_in_cbs_t cbs = {.on_ready = feed_ready, .on_done = feed_done};
  double t0 = bench_now();
  if (pqs_copy_in(ctx, &f->ci, TABLE, NULL, &cbs, f) != 0)
    return -1;
  feed(f);
  while (!f->done)
    uv_run(loop, UV_RUN_ONCE);
  s->secs = bench_now() - t0;
  s->server_cpu_s = c0 < 0 ? -1 : bench_backend_cpu(*pid) - c0;
  s->rows = (double)f->rows;
  s->bytes = (double)f->bytes;
  int rc = f->failed ? -1 : 0;
  free(f);
  pqs_ctx_close(ctx, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return rc;
}

/* ---- raw libpq: the same lines, blocking ---- */

static int run_raw(const bench_t *b, sample_t *s, int *pid) {
  PGconn *c = must_connect(target(b));
  *pid = PQbackendPID(c);
  double c0 = bench_backend_cpu(*pid);
  char *buf = malloc(PIECE);
  double t0 = bench_now();
  PGresult *r = PQexec(c, "COPY " TABLE " FROM STDIN");
  int ok = PQresultStatus(r) == PGRES_COPY_IN;
  PQclear(r);
  for (long long next = 1; ok && next <= b->rows;) {
    size_t n;
    next = lines(b, next, buf, &n);
    s->bytes += (double)n;
    ok = PQputCopyData(c, buf, (int)n) == 1;
  }
  ok = ok && PQputCopyEnd(c, NULL) == 1;
  r = PQgetResult(c);
  ok = ok && PQresultStatus(r) == PGRES_COMMAND_OK;
  if (ok)
    s->rows = (double)strtoull(PQcmdTuples(r), NULL, 10);
  else
    fprintf(stderr, "raw COPY: %s", PQerrorMessage(c));
  PQclear(r);
  while ((r = PQgetResult(c)) != NULL)
    PQclear(r);
  s->secs = bench_now() - t0;
  s->server_cpu_s = c0 < 0 ? -1 : bench_backend_cpu(*pid) - c0;
  free(buf);
  PQfinish(c);
  return ok ? 0 : -1;
}

/* ---- pqstream: batches of INSERTs ---- */

typedef struct {
  int done, failed;
} batched_t;

static void batch_done(pqs_ctx_t *ctx, const pqs_batch_done_t *done,
                       void *data) {
  (void)ctx;
  batched_t *r = data;
  r->failed = done->status != 0;
  r->done = 1;
}

static int run_batch(const bench_t *b, sample_t *s, int *pid) {
  uv_loop_t *loop = uv_default_loop();
  pqs_ctx_t *ctx = open_ctx(loop, target(b));
  *pid = pqs_ctx_backend_pid(ctx);
  char insert[256];
  int n = sprintf(insert, "INSERT INTO " TABLE " VALUES ($1");
  for (int c = 0; c < b->cols; c++)
    n += sprintf(insert + n, ", lpad($1::text, %d, 'x')", b->width);
  sprintf(insert + n, ")");
  double c0 = bench_backend_cpu(*pid);
  double t0 = bench_now();
  for (long long id = 1; id <= b->rows;) {
    pqs_batch_t *batch;
    if (pqs_batch_new(&batch) != 0)
      return -1;
    for (int k = 0; k < 1000 && id <= b->rows; k++, id++) {
      pqs_param_t p = pqs_p_int64(id);
      if (pqs_batch_add(batch, insert, 1, &p) != 0)
        return -1;
    }
    batched_t r = {0};
    if (pqs_batch_run(ctx, batch, NULL, batch_done, &r) != 0)
      return -1;
    while (!r.done)
      uv_run(loop, UV_RUN_ONCE);
    pqs_batch_free(batch);
    if (r.failed)
      return -1;
  }
  s->secs = bench_now() - t0;
  s->server_cpu_s = c0 < 0 ? -1 : bench_backend_cpu(*pid) - c0;
  s->rows = (double)b->rows;
  pqs_ctx_close(ctx, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}

/* ---- pqstream: a query into the table ---- */

typedef struct {
  int done, failed;
  uint64_t rows;
} piped_t;

static void piped(pqs_into_t *in, const pqs_done_t *done, pqs_side_t side,
                  void *data) {
  (void)in;
  piped_t *p = data;
  if (done->status != 0)
    fprintf(stderr, "pipe (%s side): %s\n",
            side == PQS_SIDE_SOURCE ? "source" : "target",
            done->error ? done->error->message : pqs_strerror(done->status));
  p->failed = done->status != 0;
  p->rows = done->rows;
  p->done = 1;
}

static int run_pipe(const bench_t *b, sample_t *s, int *pid) {
  uv_loop_t *loop = uv_default_loop();
  pqs_ctx_t *from = open_ctx(loop, b->conninfo);
  pqs_ctx_t *to = open_ctx(loop, target(b));
  *pid = pqs_ctx_backend_pid(to);
  pqs_stream_t *st;
  pqs_query_opts_t qo = {.source = PQS_SOURCE_COPY};
  piped_t p = {0};
  double c0 = bench_backend_cpu(*pid);
  double t0 = bench_now();
  if (pqs_query(from, &st, b->query, 0, NULL, &qo) != 0 ||
      pqs_stream_into(st, to, TABLE, NULL, piped, &p, NULL) != 0)
    return -1;
  while (!p.done)
    uv_run(loop, UV_RUN_ONCE);
  s->secs = bench_now() - t0;
  s->server_cpu_s = c0 < 0 ? -1 : bench_backend_cpu(*pid) - c0;
  s->rows = (double)p.rows;
  pqs_ctx_close(from, NULL);
  pqs_ctx_close(to, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return p.failed ? -1 : 0;
}

/* ---- psql | psql ---- */

/* A shell word in single quotes. */
static void quoted(char *out, const char *s) {
  *out++ = '\'';
  for (; *s; s++) {
    if (*s == '\'') {
      memcpy(out, "'\\''", 4);
      out += 4;
    } else {
      *out++ = *s;
    }
  }
  *out++ = '\'';
  *out = '\0';
}

static int run_psql(const bench_t *b, sample_t *s) {
  size_t cap = strlen(b->query) * 4 + strlen(b->conninfo) * 4 +
               strlen(target(b)) * 4 + 512;
  char *copy_out = malloc(cap), *a = malloc(cap), *t = malloc(cap),
       *q = malloc(cap), *cmd = malloc(cap * 2);
  snprintf(copy_out, cap, "COPY (%s) TO STDOUT", b->query);
  quoted(q, copy_out);
  quoted(a, b->conninfo);
  quoted(t, target(b));
  snprintf(cmd, cap * 2,
           "psql -X -q -d %s -c %s | psql -X -q -v ON_ERROR_STOP=1 -d %s "
           "-c 'COPY " TABLE " FROM STDIN'",
           a, q, t);
  double t0 = bench_now();
  int rc = system(cmd);
  s->secs = bench_now() - t0;
  s->rows = rc == 0 ? (double)b->rows : 0;
  free(copy_out), free(a), free(t), free(q), free(cmd);
  return rc == 0 ? 0 : -1;
}

/* ---- measuring ---- */

/* One way's run (in its child: bench_in_child). */
static int run_way(const bench_t *b, int way, sample_t *s) {
  int backend = 0;
  switch (way) {
  case I_LINES:
    return run_lines(b, s, &backend);
  case I_RAW:
    return run_raw(b, s, &backend);
  case I_BATCH:
    return run_batch(b, s, &backend);
  case I_PIPE:
    return run_pipe(b, s, &backend);
  default:
    return run_psql(b, s);
  }
}

/* The table emptied, then one way's run. */
static int measure(const bench_t *b, int way, sample_t *s) {
  PGconn *c = must_connect(target(b));
  int rc = sql(c, "TRUNCATE " TABLE);
  PQfinish(c);
  return rc != 0 ? -1 : bench_in_child(b, way, run_way, s);
}

static double median(const sample_t *s, int n, size_t off) {
  double v[50];
  for (int i = 0; i < n; i++)
    v[i] = *(const double *)((const char *)&s[i] + off);
  return bench_median(v, n);
}

#define MED(w, field) median(samples[w], b->runs, offsetof(sample_t, field))

static void report(const bench_t *b, sample_t (*samples)[50]) {
  printf("%lld rows into %s, %d runs each, medians\n\n", b->rows, TABLE,
         b->runs);
  printf("%-16s %12s %10s %12s %14s %12s\n", "way", "rows/s", "wall s",
         "client CPU s", "peak RSS MB", "server CPU s");
  for (int w = 0; w < NINTO; w++) {
    double server = MED(w, server_cpu_s);
    printf("%-16s %12.0f %10.2f %12.2f %14.1f ", into_names[w],
           MED(w, rows) / MED(w, secs), MED(w, secs), MED(w, cpu_s),
           MED(w, rss_kb) / 1024);
    if (server < 0)
      printf("%12s\n", "n/a");
    else
      printf("%12.2f\n", server);
  }
  printf("\nratios of the medians (wall, client CPU):\n");
  static const int pairs[][2] = {{I_PIPE, I_PSQL}, {I_LINES, I_RAW},
                                 {I_BATCH, I_LINES}, {I_PIPE, I_LINES}};
  for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
    int x = pairs[i][0], y = pairs[i][1];
    printf("  %-16s vs %-16s %6.3fx wall  %6.3fx client CPU\n",
           into_names[x], into_names[y], MED(x, secs) / MED(y, secs),
           MED(x, cpu_s) / MED(y, cpu_s));
  }
}

int bench_into(const bench_t *b) {
  PGconn *c = must_connect(target(b));
  char create[1024];
  int n = sprintf(create, "DROP TABLE IF EXISTS " TABLE "; CREATE TABLE "
                          TABLE " (id int8");
  for (int i = 1; i <= b->cols; i++)
    n += sprintf(create + n, ", c%d text", i);
  sprintf(create + n, ")");
  int rc = sql(c, create);
  PQfinish(c);
  if (rc != 0)
    return BENCH_FAILED;
  static sample_t samples[NINTO][50];
  for (int r = 0; r < b->runs; r++)
    for (int k = 0; k < NINTO; k++) {
      int w = (k + r) % NINTO;
      if (measure(b, w, &samples[w][r]) != 0) {
        fprintf(stderr, "pqstream: bench: the %s run failed\n", into_names[w]);
        return BENCH_FAILED;
      }
    }
  report(b, samples);
  return BENCH_OK;
}
