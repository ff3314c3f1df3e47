/* The ways through pqstream: one stream (single-row or COPY source, text
 * or binary), K streams merged, or a partitioned read from a factory. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ways.h"

typedef struct {
  sample_t *s;
  double t0;
  int pending, failed;
  int fd; /* --sink: /dev/null, closed after the run */
  int ncols;           /* --binary: the columns' types, from on_columns, */
  uint32_t types[128]; /* as a program reading typed values keeps them */
} live_t;

static int st_row(pqs_stream_t *st, const pqs_row_t *row, void *data) {
  (void)st;
  live_t *l = data;
  for (int i = 0; i < pqs_row_ncols(row); i++) {
    size_t len;
    const char *v = pqs_row_text(row, i, &len);
    bench_touch(l->s, l->t0, v, len);
  }
  l->s->rows++;
  return PQS_CONTINUE;
}

/* --binary: every field through the getter of its type, as a program
 * that wants numbers does (text rows parse, binary rows decode). */
static int st_columns(pqs_stream_t *st, const pqs_row_t *cols, void *data) {
  (void)st;
  live_t *l = data;
  l->ncols = pqs_row_ncols(cols) < 128 ? pqs_row_ncols(cols) : 128;
  for (int i = 0; i < l->ncols; i++)
    l->types[i] = pqs_row_type(cols, i);
  return PQS_CONTINUE;
}

static int st_typed_row(pqs_stream_t *st, const pqs_row_t *row, void *data) {
  (void)st;
  live_t *l = data;
  for (int i = 0; i < l->ncols; i++) {
    int64_t v;
    double d;
    size_t len = 8;
    const char *t = NULL;
    switch (l->types[i]) {
    case PQS_OID_INT2:
    case PQS_OID_INT4:
    case PQS_OID_INT8:
      pqs_row_int64(row, i, &v);
      break;
    case PQS_OID_FLOAT4:
    case PQS_OID_FLOAT8:
      pqs_row_double(row, i, &d);
      break;
    case PQS_OID_DATE:
    case PQS_OID_TIMESTAMP:
    case PQS_OID_TIMESTAMPTZ:
      pqs_row_timestamp_us(row, i, &v);
      break;
    default:
      t = pqs_row_text(row, i, &len);
    }
    bench_touch(l->s, l->t0, t, len);
  }
  l->s->rows++;
  return PQS_CONTINUE;
}

static void st_done(pqs_stream_t *st, const pqs_done_t *done, void *data) {
  live_t *l = data;
  if (done->status != 0) {
    fprintf(stderr, "pqstream: %s\n",
            done->error && done->error->message ? done->error->message
                                                : pqs_strerror(done->status));
    l->failed = 1;
  }
  l->pending = 0;
  (void)st;
}

static int keep_all(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  (void)data;
  return pqs_row_ncols(row) > 0;
}

/* --sink: the stream written as TSV into /dev/null. */
static void on_sunk(pqs_sink_t *sink, const pqs_done_t *done, uint64_t bytes,
                    void *data) {
  (void)sink;
  live_t *l = data;
  l->s->bytes = (double)bytes;
  l->s->rows = (double)done->rows;
  st_done(NULL, done, data);
}

static int sink_start(pqs_stream_t *st, uv_loop_t *loop, live_t *l) {
  int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
  pqs_sink_opts_t so = {.format = PQS_FORMAT_TSV};
  if (fd < 0 || pqs_sink_fd(st, loop, fd, &so, on_sunk, l) != 0)
    return -1;
  l->fd = fd;
  return 0;
}

typedef struct {
  pqs_ctx_t *ctx[16];
  int opened, want, failed;
} opener_t;

static void on_open(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                    void *data) {
  opener_t *op = data;
  if (status != 0) {
    fprintf(stderr, "connect: %s\n", err ? err->message : "");
    op->failed = 1;
  }
  op->ctx[op->opened++] = ctx;
}

/* The query of input i of k: a generated query is split by ranges. */
static char *input_query(const bench_t *b, int i, int k) {
  if (k == 1 || b->generated == NULL)
    return strdup(b->query);
  long long lo = b->rows * i / k + 1, hi = b->rows * (i + 1) / k;
  char *q = malloc(strlen(b->generated) + 64);
  sprintf(q, b->generated, lo, hi);
  return q;
}

int bench_run_pqstream(const bench_t *b, int way, sample_t *s) {
  uv_loop_t *loop = uv_default_loop();
  opener_t op = {.want = b->jobs};
  for (int i = 0; i < b->jobs; i++) {
    pqs_ctx_t *c;
    if (pqs_ctx_open(&c, loop, b->conninfo, NULL, on_open, &op) != 0)
      return -1;
  }
  while (op.opened < op.want)
    uv_run(loop, UV_RUN_ONCE);
  if (op.failed)
    return -1;
  pqs_stream_t *in[16], *st;
  int copy = way == W_PQS_COPY || way == W_PQS_COPY_BIN;
  int bin = way == W_PQS_BIN || way == W_PQS_COPY_BIN;
  pqs_query_opts_t qo = {
      .source = copy ? PQS_SOURCE_COPY : PQS_SOURCE_SINGLE_ROW,
      .result_format = bin ? PQS_RESULT_BINARY : PQS_RESULT_TEXT};
  int pids[16];
  double at[16];
  for (int i = 0; i < b->jobs; i++)
    at[i] = bench_backend_cpu(pids[i] = pqs_ctx_backend_pid(op.ctx[i]));
  for (int i = 0; i < b->jobs; i++) {
    char *q = input_query(b, i, b->jobs);
    if (pqs_query(op.ctx[i], &in[i], q, 0, NULL, &qo) != 0)
      return -1;
    free(q);
  }
  st = in[0];
  if (b->jobs > 1 && pqs_merge(in, b->jobs, NULL, &st) != 0)
    return -1;
  if (b->stages && pqs_stream_filter(st, keep_all, NULL, NULL) != 0)
    return -1;
  live_t l = {.s = s, .pending = 1};
  pqs_stream_cbs_t cbs = {.on_columns = b->binary ? st_columns : NULL,
                          .on_row = b->binary ? st_typed_row : st_row,
                          .on_done = st_done};
  l.t0 = bench_now();
  if (b->sink) {
    if (sink_start(st, loop, &l) != 0)
      return -1;
  } else {
    pqs_stream_start(st, &cbs, &l);
  }
  while (l.pending)
    uv_run(loop, UV_RUN_ONCE);
  s->secs = bench_now() - l.t0;
  if (b->sink)
    close(l.fd);
  bench_server_cpu_since(s, pids, at, b->jobs);
  for (int i = 0; i < b->jobs; i++)
    pqs_ctx_close(op.ctx[i], NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  return l.failed ? -1 : 0;
}

/* ---- the partitioned way: K ranges of the key over the COPY source ---- */

typedef struct {
  live_t *l;
  pqs_stream_t *merged;
} parts_t;

static void on_parts(pqs_factory_t *f, int status, const pqs_error_t *err,
                     pqs_stream_t *merged, void *data) {
  (void)f;
  parts_t *p = data;
  if (status != 0) {
    fprintf(stderr, "partitioned: %s\n",
            err ? err->message : pqs_strerror(status));
    p->l->failed = 1;
    p->l->pending = 0;
    return;
  }
  pqs_stream_cbs_t cbs = {.on_row = st_row, .on_done = st_done};
  p->l->t0 = bench_now();
  pqs_stream_start(merged, &cbs, p->l);
}

int bench_run_partitioned(const bench_t *b, sample_t *s) {
  uv_loop_t *loop = uv_default_loop();
  pqs_factory_opts_t fo = {.conninfo = b->conninfo,
                           .max_size = (unsigned)b->partitions + 1,
                           .source = PQS_SOURCE_COPY};
  pqs_factory_t *f;
  if (pqs_factory_new(&f, &fo) != 0)
    return -1;
  live_t l = {.s = s, .pending = 1};
  parts_t p = {.l = &l};
  pqs_partition_opts_t po = {.column = b->partition_on,
                             .partitions = b->partitions};
  double t0 = bench_now();
  if (pqs_partitioned(f, loop, b->query, &po, on_parts, &p) != 0)
    return -1;
  while (l.pending)
    uv_run(loop, UV_RUN_ONCE);
  uv_run(loop, UV_RUN_DEFAULT); /* the contexts back in the pool */
  s->secs = bench_now() - t0;         /* the range query included */
  s->server_cpu_s = -1;         /* its backends come and go in the pool */
  pqs_factory_free(f);
  return l.failed ? -1 : 0;
}

