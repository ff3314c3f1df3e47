/* pqstream bench: stream throughput side by side with raw libpq.
 *
 * Every way runs in a child process of its own, so that each peak RSS is
 * its own, and the ways alternate over the runs, so that a noisy machine
 * hurts them alike. Ratios to the baselines are the point. */
#include <getopt.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"

/* pqstream over each of its sources, then raw libpq's ways. copy_split
 * is the COPY loop that also splits each line into fields in place, as a
 * program reading COPY by hand must: the baseline of the COPY source. */
enum {
  W_PQSTREAM,
  W_PQS_COPY,
  W_SINGLE,
  W_EXEC,
  W_COPY,
  W_COPY_SPLIT,
  W_PQS_BIN,      /* --binary only: pqstream, binary results */
  W_PQS_COPY_BIN, /* its COPY source, COPY (FORMAT binary) */
  W_COPY_BIN,     /* raw binary COPY, fields decoded by hand */
  W_SINGLE_BIN,   /* raw single-row loop, binary results decoded by hand */
  W_PARTS,        /* --partitions K only */
  NWAYS
};
static const char *way_names[NWAYS] = {
    "pqstream",    "pqstream_copy",  "single_row",      "exec",
    "copy",        "copy_split",     "pqstream_binary", "pqstream_copy_bin",
    "copy_binary", "single_row_bin", "pqstream_parts"};
/* The ratios reported: way against baseline. */
static const int pairs[][2] = {
    {W_PQSTREAM, W_SINGLE},       {W_PQSTREAM, W_EXEC},
    {W_PQSTREAM, W_COPY},         {W_PQS_COPY, W_COPY_SPLIT},
    {W_PQS_COPY, W_PQSTREAM},     {W_PQS_COPY, W_COPY},
    {W_PQS_BIN, W_PQSTREAM},      {W_PQS_BIN, W_SINGLE},
    {W_PQS_COPY_BIN, W_COPY_BIN}, {W_PQS_COPY_BIN, W_PQS_COPY},
    {W_PQS_COPY_BIN, W_PQSTREAM}, {W_PQS_BIN, W_SINGLE_BIN},
    {W_SINGLE_BIN, W_SINGLE},     {W_PARTS, W_PQS_COPY}};
#define NPAIRS ((int)(sizeof(pairs) / sizeof(pairs[0])))

typedef struct {
  double rows, bytes, secs, first_ms, rss_kb, cpu_s;
  double server_cpu_s; /* the backend's, from /proc; -1 if unknown */
} sample_t;

typedef struct {
  const char *conninfo, *query;
  long long rows;
  int cols, width, runs, jobs, stages, json;
  int partitions;           /* --partitions K: the partitioned way too */
  const char *partition_on; /* its key; "id" */
  int server_cpus;          /* -1: unknown */
  int binary; /* --binary: the binary ways, and typed getters throughout */
  char *generated;
} bench_t;

/* ---- the ways, each in its child ---- */

static int way_on(const bench_t *b, int w) {
  if (w >= W_PQS_BIN && w <= W_SINGLE_BIN)
    return b->binary;
  return w != W_PARTS || b->partitions;
}

/* CPU seconds the server process `pid` has used, from /proc/PID/stat
 * (utime and stime): only when the server runs on this machine, and the
 * process is a postgres backend; -1 otherwise. */
static double backend_cpu(int pid) {
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
static void server_cpu_since(sample_t *s, const int *pids, const double *at,
                             int n) {
  s->server_cpu_s = 0;
  for (int i = 0; i < n; i++) {
    double now_cpu = backend_cpu(pids[i]);
    if (at[i] < 0 || now_cpu < 0) {
      s->server_cpu_s = -1;
      return;
    }
    s->server_cpu_s += now_cpu - at[i];
  }
}

static double now(void) { return uv_hrtime() / 1e9; }

typedef struct {
  sample_t *s;
  double t0;
  int pending, failed;
  int ncols;           /* --binary: the columns' types, from on_columns, */
  uint32_t types[128]; /* as a program reading typed values keeps them */
} live_t;

static void touch(sample_t *s, double t0, const char *v, size_t len) {
  (void)v;
  if (s->rows == 0 && s->first_ms == 0)
    s->first_ms = (now() - t0) * 1000;
  s->bytes += len;
}

static int st_row(pqs_stream_t *st, const pqs_row_t *row, void *data) {
  (void)st;
  live_t *l = data;
  for (int i = 0; i < pqs_row_ncols(row); i++) {
    size_t len;
    const char *v = pqs_row_text(row, i, &len);
    touch(l->s, l->t0, v, len);
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
    touch(l->s, l->t0, t, len);
  }
  l->s->rows++;
  return PQS_CONTINUE;
}

static void st_done(pqs_stream_t *st, const pqs_done_t *done, void *data) {
  live_t *l = data;
  if (done->status != 0) {
    cli_print_error(done->error, done->status);
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

static int run_pqstream(const bench_t *b, int way, sample_t *s) {
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
    at[i] = backend_cpu(pids[i] = pqs_ctx_backend_pid(op.ctx[i]));
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
  l.t0 = now();
  pqs_stream_start(st, &cbs, &l);
  while (l.pending)
    uv_run(loop, UV_RUN_ONCE);
  s->secs = now() - l.t0;
  server_cpu_since(s, pids, at, b->jobs);
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
  p->l->t0 = now();
  pqs_stream_start(merged, &cbs, p->l);
}

static int run_partitioned(const bench_t *b, sample_t *s) {
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
  double t0 = now();
  if (pqs_partitioned(f, loop, b->query, &po, on_parts, &p) != 0)
    return -1;
  while (l.pending)
    uv_run(loop, UV_RUN_ONCE);
  uv_run(loop, UV_RUN_DEFAULT); /* the contexts back in the pool */
  s->secs = now() - t0;         /* the range query included */
  s->server_cpu_s = -1;         /* its backends come and go in the pool */
  pqs_factory_free(f);
  return l.failed ? -1 : 0;
}

static PGconn *raw_connect(const bench_t *b) {
  PGconn *c = PQconnectdb(b->conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connect: %s", PQerrorMessage(c));
    return NULL;
  }
  return c;
}

static void touch_result(sample_t *s, double t0, const PGresult *r, int row) {
  for (int i = 0; i < PQnfields(r); i++)
    touch(s, t0, PQgetvalue(r, row, i), (size_t)PQgetlength(r, row, i));
  s->rows++;
}

/* A COPY text line split in place, each field touched: what a program
 * reading COPY by hand does (no field of the bench has an escape, so
 * finding the backslashes is the whole of unescaping). */
static void touch_split(sample_t *s, double t0, char *line, size_t n) {
  char *end = line + n - 1, *f = line;
  for (;;) {
    char *t = memchr(f, '\t', (size_t)(end - f));
    if (t == NULL)
      t = end;
    if (memchr(f, '\\', (size_t)(t - f)) == NULL)
      *t = '\0';
    touch(s, t0, f, (size_t)(t - f));
    if (t == end)
      break;
    f = t + 1;
  }
}

/* One binary field decoded by hand: integers and floats by their type,
 * the rest touched as bytes. */
static void touch_binary_field(sample_t *s, double t0, const char *p, int len,
                               Oid type) {
  uint64_t v = 0;
  for (int k = 0; k < len && k < 8; k++)
    v = v << 8 | (unsigned char)p[k];
  volatile double d;
  if (type == PQS_OID_FLOAT8)
    memcpy((void *)&d, &v, sizeof(d));
  touch(s, t0, p, type == PQS_OID_TEXT ? (size_t)len : 8);
}

/* A binary COPY tuple's fields decoded by hand, as a program reading
 * binary COPY itself would. 0 at the trailer. */
static int touch_binary(sample_t *s, double t0, const char *p, size_t n,
                        const Oid *types, int ncols, int *header) {
  const char *end = p + n;
  if (!*header) {
    if (n < 19)
      return -1;
    p += 19 + ((unsigned)(unsigned char)p[15] << 24 |
               (unsigned char)p[16] << 16 | (unsigned char)p[17] << 8 |
               (unsigned char)p[18]);
    *header = 1;
  }
  if (end - p < 2)
    return -1;
  int count = (int16_t)((unsigned char)p[0] << 8 | (unsigned char)p[1]);
  p += 2;
  if (count == -1)
    return 0;
  for (int i = 0; i < count && i < ncols; i++) {
    int32_t len =
        (int32_t)((uint32_t)(unsigned char)p[0] << 24 |
                  (uint32_t)(unsigned char)p[1] << 16 |
                  (uint32_t)(unsigned char)p[2] << 8 | (unsigned char)p[3]);
    p += 4;
    if (len < 0)
      continue;
    touch_binary_field(s, t0, p, len, types[i]);
    p += len;
  }
  return 1;
}

static int run_raw(const bench_t *b, int way, sample_t *s) {
  PGconn *c = raw_connect(b);
  if (c == NULL)
    return -1;
  Oid types[128] = {0};
  int ncols = 0;
  if (way == W_COPY_BIN) { /* the column types, before the clock starts */
    PGresult *r = PQprepare(c, "", b->query, 0, NULL);
    PQclear(r);
    r = PQdescribePrepared(c, "");
    ncols = PQnfields(r) < 128 ? PQnfields(r) : 128;
    for (int i = 0; i < ncols; i++)
      types[i] = PQftype(r, i);
    PQclear(r);
  }
  int pid = PQbackendPID(c);
  double at = backend_cpu(pid);
  double t0 = now();
  int ok = 1;
  if (way == W_EXEC) {
    PGresult *r = PQexec(c, b->query);
    ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    for (int i = 0; ok && i < PQntuples(r); i++)
      touch_result(s, t0, r, i);
    PQclear(r);
  } else if (way == W_SINGLE || way == W_SINGLE_BIN) {
    int bin = way == W_SINGLE_BIN; /* binary needs the extended protocol */
    ok = (bin ? PQsendQueryParams(c, b->query, 0, NULL, NULL, NULL, NULL, 1)
              : PQsendQuery(c, b->query)) &&
         PQsetSingleRowMode(c);
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
      if (PQresultStatus(r) == PGRES_SINGLE_TUPLE && bin) {
        for (int i = 0; i < PQnfields(r); i++)
          if (!PQgetisnull(r, 0, i))
            touch_binary_field(s, t0, PQgetvalue(r, 0, i), PQgetlength(r, 0, i),
                               PQftype(r, i));
        s->rows++;
      } else if (PQresultStatus(r) == PGRES_SINGLE_TUPLE)
        touch_result(s, t0, r, 0);
      else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        ok = 0;
      PQclear(r);
    }
  } else { /* COPY (query) TO STDOUT: one buffer per row */
    char *q = malloc(strlen(b->query) + 48), *buf;
    sprintf(q, "COPY (%s) TO STDOUT%s", b->query,
            way == W_COPY_BIN ? " (FORMAT binary)" : "");
    int header = 0;
    PGresult *r = PQexec(c, q);
    free(q);
    ok = PQresultStatus(r) == PGRES_COPY_OUT;
    PQclear(r);
    int n;
    while (ok && (n = PQgetCopyData(c, &buf, 0)) > 0) {
      if (way == W_COPY_BIN) {
        int rc = touch_binary(s, t0, buf, (size_t)n, types, ncols, &header);
        ok = rc >= 0;
        s->rows += rc == 1;
      } else {
        if (way == W_COPY_SPLIT)
          touch_split(s, t0, buf, (size_t)n);
        else
          touch(s, t0, buf, (size_t)n);
        s->rows++;
      }
      PQfreemem(buf);
    }
    while ((r = PQgetResult(c)) != NULL) {
      ok &= PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
    }
  }
  s->secs = now() - t0;
  server_cpu_since(s, &pid, &at, 1);
  if (!ok)
    fprintf(stderr, "%s: %s", way_names[way], PQerrorMessage(c));
  PQfinish(c);
  return ok ? 0 : -1;
}

/* The server's CPUs, from its /proc/cpuinfo (a superuser, on Linux);
 * -1 when it cannot be read. */
static int server_cpus(const bench_t *b) {
  PGconn *c = PQconnectdb(b->conninfo);
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

/* Runs one way in a child; its sample comes back through a pipe. */
static int measure(const bench_t *b, int way, sample_t *s) {
  int fds[2];
  if (pipe(fds) != 0)
    return -1;
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    sample_t mine = {0};
    int pqs_way = way == W_PQSTREAM || way == W_PQS_COPY || way == W_PQS_BIN ||
                  way == W_PQS_COPY_BIN;
    int rc = pqs_way          ? run_pqstream(b, way, &mine)
             : way == W_PARTS ? run_partitioned(b, &mine)
                              : run_raw(b, way, &mine);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    mine.rss_kb = (double)ru.ru_maxrss;
    /* the whole child, connecting included: the same for every way */
    mine.cpu_s = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
                 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    if (rc == 0 && write(fds[1], &mine, sizeof(mine)) != sizeof(mine))
      rc = -1;
    _exit(rc == 0 ? 0 : 1);
  }
  close(fds[1]);
  ssize_t n = pid > 0 ? read(fds[0], s, sizeof(*s)) : -1;
  close(fds[0]);
  int status = 0;
  if (pid > 0)
    waitpid(pid, &status, 0);
  return n == sizeof(*s) && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0
                                                                          : -1;
}

/* ---- statistics and the report ---- */

typedef struct {
  double median, min, max;
} stat_t;

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static stat_t stat_of(double *v, int n) {
  qsort(v, (size_t)n, sizeof(*v), cmp_double);
  stat_t s = {n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2, v[0], v[n - 1]};
  return s;
}

enum { M_ROWS_S, M_MB_S, M_FIRST, M_RSS, M_CPU, M_SERVER_CPU, NMETRICS };
static const char *metric_names[NMETRICS] = {"rows_per_s",   "mb_per_s",
                                             "first_row_ms", "peak_rss_kb",
                                             "cpu_s",        "server_cpu_s"};

static double metric(const sample_t *s, int m) {
  switch (m) {
  case M_ROWS_S:
    return s->rows / s->secs;
  case M_MB_S:
    return s->bytes / s->secs / 1e6;
  case M_FIRST:
    return s->first_ms;
  case M_CPU:
    return s->cpu_s;
  case M_SERVER_CPU:
    return s->server_cpu_s;
  default:
    return s->rss_kb;
  }
}

static void report(const bench_t *b, sample_t (*samples)[50]) {
  stat_t st[NWAYS][NMETRICS];
  for (int w = 0; w < NWAYS; w++)
    for (int m = 0; m < NMETRICS && way_on(b, w); m++) {
      double v[50];
      for (int r = 0; r < b->runs; r++)
        v[r] = metric(&samples[w][r], m);
      st[w][m] = stat_of(v, b->runs);
    }
  if (b->json) {
    printf("{\"query\": \"");
    for (const char *p = b->query; *p; p++)
      printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
    printf("\", \"runs\": %d, \"jobs\": %d, \"stages\": %s, \"rows\": %.0f, "
           "\"ways\": {",
           b->runs, b->jobs, b->stages ? "true" : "false",
           samples[W_PQSTREAM][0].rows);
    for (int w = 0, first = 1; w < NWAYS; w++) {
      if (!way_on(b, w))
        continue;
      printf("%s\"%s\": {", first ? "" : ", ", way_names[w]);
      first = 0;
      for (int m = 0; m < NMETRICS; m++)
        printf("%s\"%s\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}",
               m ? ", " : "", metric_names[m], st[w][m].median, st[w][m].min,
               st[w][m].max);
      printf("}");
    }
    printf("}, \"server_cpus\": %d, \"ratios\": {", b->server_cpus);
    for (int i = 0, first = 1; i < NPAIRS; i++) {
      int a = pairs[i][0], w = pairs[i][1];
      if (!way_on(b, a) || !way_on(b, w))
        continue;
      printf("%s\"%s_vs_%s\": {\"rows_per_s\": %.3f, \"mb_per_s\": "
             "%.3f, \"first_row_ms\": %.3f, \"peak_rss_kb\": %.3f, "
             "\"cpu_s\": %.3f",
             first ? "" : ", ", way_names[a], way_names[w],
             st[a][M_ROWS_S].median / st[w][M_ROWS_S].median,
             st[a][M_MB_S].median / st[w][M_MB_S].median,
             st[a][M_FIRST].median / st[w][M_FIRST].median,
             st[a][M_RSS].median / st[w][M_RSS].median,
             st[a][M_CPU].median / st[w][M_CPU].median);
      if (st[a][M_SERVER_CPU].min >= 0 && st[w][M_SERVER_CPU].min > 0)
        printf(", \"server_cpu_s\": %.3f",
               st[a][M_SERVER_CPU].median / st[w][M_SERVER_CPU].median);
      printf("}");
      first = 0;
    }
    printf("}}\n");
    return;
  }
  printf("%.0f rows, %d runs each, median [min .. max]\n\n",
         samples[W_PQSTREAM][0].rows, b->runs);
  printf("%-17s %28s %21s %21s %21s %21s %21s\n", "way", "rows/s", "MB/s",
         "first row ms", "peak RSS MB", "client CPU s", "server CPU s");
  for (int w = 0; w < NWAYS; w++) {
    if (!way_on(b, w))
      continue;
    printf("%-17s", way_names[w]);
    for (int m = 0; m < NMETRICS; m++) {
      double k = m == M_RSS ? 1024 : 1;
      if (m == M_SERVER_CPU && st[w][m].min < 0) {
        printf(" %21s", "n/a");
        continue;
      }
      printf(m == M_ROWS_S                     ? " %9.0f [%7.0f..%7.0f]"
             : m == M_CPU || m == M_SERVER_CPU ? " %6.2f [%5.2f..%5.2f]"
                                               : " %6.1f [%5.1f..%5.1f]",
             st[w][m].median / k, st[w][m].min / k, st[w][m].max / k);
    }
    printf("\n");
  }
  printf("\nratios of the medians:\n");
  for (int i = 0; i < NPAIRS; i++) {
    int a = pairs[i][0], w = pairs[i][1];
    if (!way_on(b, a) || !way_on(b, w))
      continue;
    printf("  %-17s vs %-17s %6.3fx rows/s  %6.3fx client CPU  %6.3fx "
           "memory",
           way_names[a], way_names[w],
           st[a][M_ROWS_S].median / st[w][M_ROWS_S].median,
           st[a][M_CPU].median / st[w][M_CPU].median,
           st[a][M_RSS].median / st[w][M_RSS].median);
    if (st[a][M_SERVER_CPU].min >= 0 && st[w][M_SERVER_CPU].min > 0)
      printf("  %6.3fx server CPU",
             st[a][M_SERVER_CPU].median / st[w][M_SERVER_CPU].median);
    printf("\n");
  }
  if (!(st[W_SINGLE][M_SERVER_CPU].min >= 0))
    printf("\nserver CPU: n/a (read from the backend's /proc/PID/stat, so "
           "only when the server runs on this machine)\n");
  else
    printf("\nserver CPU: the backend's user+system time over the way, from "
           "its /proc/PID/stat\n");
  if (b->binary)
    printf("--binary: every pqstream way reads each field through the getter "
           "of its type\n");
  if (b->partitions) {
    if (b->server_cpus > 0)
      printf("\nthe server has %d CPUs; %d partitions can use at most that "
             "many\n",
             b->server_cpus, b->partitions);
    else
      printf("\nthe server's CPU count is unknown (read from its "
             "/proc/cpuinfo, which needs a superuser and Linux)\n");
  }
}

/* Every way, every run, a different way first each run. */
static int measure_all(const bench_t *b, sample_t (*samples)[50]) {
  int on[NWAYS], n = 0;
  for (int w = 0; w < NWAYS; w++)
    if (way_on(b, w))
      on[n++] = w;
  for (int r = 0; r < b->runs; r++)
    for (int k = 0; k < n; k++) {
      int w = on[(k + r) % n];
      if (measure(b, w, &samples[w][r]) != 0) {
        cli_say("bench: the %s run failed", way_names[w]);
        return -1;
      }
      if (!b->json && isatty(STDERR_FILENO))
        fprintf(stderr, "\rrun %d/%d: %s done\033[K", r + 1, b->runs,
                way_names[w]);
    }
  if (!b->json && isatty(STDERR_FILENO))
    fputs("\r\033[K", stderr);
  return 0;
}

/* ---- options ---- */

static const char bench_usage[] =
    "Usage: pqstream bench [OPTION]...\n"
    "Measure how fast a query streams through pqstream, side by side with raw\n"
    "libpq on the same query and server: PQexec (the whole result at once),\n"
    "single-row mode (a blocking loop), and COPY (query) TO STDOUT (whole\n"
    "lines, and split into fields). pqstream runs over its single-row source\n"
    "(pqstream) and its COPY source (pqstream_copy).\n"
    "\n"
    "  -d, --dbname=CONNINFO  the server (default: libpq's environment)\n"
    "  -c, --command=SQL      your own query (default: a generated one)\n"
    "      --rows=N           generated: rows (default 1000000)\n"
    "      --cols=N           generated: text columns besides id (default 3)\n"
    "      --width=N          generated: characters per column (default 32)\n"
    "      --runs=N           runs of each way (default 5)\n"
    "  -j, --jobs=K           pqstream: K parallel streams, merged (both\n"
    "                         sources)\n"
    "                         (generated query only; default 1)\n"
    "      --stages           pqstream: through a filter stage\n"
    "      --partitions=K     also the query read as K ranges of a key on K\n"
    "                         connections (pqstream_parts, over COPY), with\n"
    "                         the server's CPU count beside it\n"
    "      --partition-on=COL that key (default id)\n"
    "      --binary           also the binary ways: pqstream with binary\n"
    "                         results over both sources (pqstream_binary,\n"
    "                         pqstream_copy_bin), and raw libpq's binary\n"
    "                         single-row loop and binary COPY, decoded by "
    "hand\n"
    "                         (single_row_bin, copy_binary); every pqstream "
    "way\n"
    "                         then reads each field through the getter of its\n"
    "                         type; the generated query gets int4 and float8\n"
    "                         columns\n"
    "      --json             machine-readable output\n"
    "The server's CPU per way is read from the backend's /proc/PID/stat when\n"
    "the server runs on this machine, and shown as n/a otherwise.\n";

int cli_bench(int argc, char **argv) {
  bench_t b = {.conninfo = "",
               .rows = 1000000,
               .cols = 3,
               .width = 32,
               .runs = 5,
               .jobs = 1};
  static const struct option lo[] = {
      {"dbname", required_argument, NULL, 'd'},
      {"command", required_argument, NULL, 'c'},
      {"rows", required_argument, NULL, 'r'},
      {"cols", required_argument, NULL, 'C'},
      {"width", required_argument, NULL, 'w'},
      {"runs", required_argument, NULL, 'n'},
      {"jobs", required_argument, NULL, 'j'},
      {"stages", no_argument, NULL, 's'},
      {"json", no_argument, NULL, 'J'},
      {"binary", no_argument, NULL, 'B'},
      {"partitions", required_argument, NULL, 'P'},
      {"partition-on", required_argument, NULL, 'O'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "d:c:j:h", lo, NULL)) != -1) {
    switch (c) {
    case 'd':
      b.conninfo = optarg;
      break;
    case 'c':
      b.query = optarg;
      break;
    case 'r':
      b.rows = atoll(optarg);
      break;
    case 'C':
      b.cols = atoi(optarg);
      break;
    case 'w':
      b.width = atoi(optarg);
      break;
    case 'n':
      b.runs = atoi(optarg);
      break;
    case 'j':
      b.jobs = atoi(optarg);
      break;
    case 's':
      b.stages = 1;
      break;
    case 'J':
      b.json = 1;
      break;
    case 'B':
      b.binary = 1;
      break;
    case 'P':
      b.partitions = atoi(optarg);
      break;
    case 'O':
      b.partition_on = optarg;
      break;
    case 'h':
      fputs(bench_usage, stdout);
      return CLI_OK;
    default:
      fputs("Try 'pqstream bench --help' for more information.\n", stderr);
      return CLI_USAGE;
    }
  }
  if (b.rows < 1 || b.cols < 0 || b.cols > 100 || b.width < 1 ||
      b.width > 100000 || b.runs < 1 || b.runs > 50 || b.jobs < 1 ||
      b.jobs > 16 || (b.query && b.jobs > 1) || optind < argc ||
      b.partitions < 0 || b.partitions > 64) {
    cli_say("%s", "bench: bad option value (see pqstream bench --help)");
    return CLI_USAGE;
  }
  if (b.query == NULL) { /* streams from the server as it is generated */
    size_t size = 256 + (size_t)b.cols * 64;
    char *q = malloc(size), *gen = malloc(size);
    int n = sprintf(gen, b.binary ? "SELECT id, (id %%%% 100000)::int4 AS a, "
                                    "id * 1.37::float8 / 3 AS b"
                                  : "SELECT id");
    for (int i = 1; i <= b.cols; i++)
      n += sprintf(gen + n, ", lpad(id::text, %d, 'x') AS c%d", b.width, i);
    sprintf(gen + n, " FROM (SELECT generate_series(%%lld, %%lld)::int8 "
                     "AS id) g");
    sprintf(q, gen, 1LL, b.rows);
    b.query = q;
    b.generated = gen;
  }
  if (b.partition_on == NULL)
    b.partition_on = "id";
  b.server_cpus = server_cpus(&b);
  static sample_t samples[NWAYS][50];
  int failed = measure_all(&b, samples) != 0;
  if (!failed)
    report(&b, samples);
  if (b.generated) {
    free((char *)b.query);
    free(b.generated);
  }
  return failed ? CLI_FAILED : CLI_OK;
}
