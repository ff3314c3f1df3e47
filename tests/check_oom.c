/* Allocation failure, tested as SQLite tests it: each scenario runs with
 * the k-th allocation of pqstream's own code failing, for k = 1, 2, ...
 * until a run meets no failure at all; once with only the k-th failing,
 * once with every one from the k-th on. For every k the scenario must end
 * with exactly one completion per operation it started, each a success
 * with the whole, right result or PQS_ENOMEM (never a success that hides
 * an error), and the loop must close clean; ASan/LSan check the rest. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "cli.h"
#include "pqs_test.h"

/* A call that failed before anything started: ENOMEM, nothing else. */
#define ASSERT_NOMEM(rc)                                                       \
  ck_assert_msg((rc) == PQS_ENOMEM, "%s returned %s, not 0 or ENOMEM", #rc,    \
                pqs_err_name(rc))

/* Runs `scenario` for every k until one run injects no failure. */
static void oom_loop(const char *name, void (*scenario)(void), int sticky) {
  uint64_t k;
  for (k = 1;; k++) {
    ck_assert_msg(k < 5000, "%s: still failing at k = %llu", name,
                  (unsigned long long)k);
    pqs__alloc_fail_at(k, sticky);
    scenario();
    uint64_t failed = pqs__alloc_failed();
    pqs__alloc_fail_at(0, 0);
    if (failed == 0)
      break;
  }
  ck_assert_msg(k > 1, "%s: made no allocation at all", name);
  fprintf(stderr, "%s (%s): %llu allocations survived\n", name,
          sticky ? "from k on" : "k-th only", (unsigned long long)(k - 1));
}

/* ---- opening, with a bad outcome allowed only for memory ---- */

typedef struct {
  int calls, status;
} opened_t;

static void on_opened(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                      void *data) {
  (void)ctx;
  opened_t *o = data;
  o->calls++;
  o->status = status;
  ck_assert_msg(status == 0 || status == PQS_ENOMEM, "open ended with %s: %s",
                pqs_err_name(status), err ? err->message : "(no message)");
  ck_assert(status == 0 || (err != NULL && err->message != NULL));
}

/* Opens `ctx`; NULL (and nothing to close) if even that failed. */
static pqs_ctx_t *open_ctx(uv_loop_t *loop, opened_t *o) {
  pqs_ctx_t *ctx = NULL;
  pqs_ctx_opts_t opts = {.source = pt_source(), .result_format = pt_format()};
  int rc = pqs_ctx_open(&ctx, loop, pt_conninfo(), &opts, on_opened, o);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    return NULL;
  }
  while (o->calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(o->calls, 1);
  return ctx;
}

static void close_ctx(uv_loop_t *loop, pqs_ctx_t *ctx) {
  if (ctx != NULL)
    ck_assert_int_eq(pqs_ctx_close(ctx, NULL), 0);
  pt_loop_free(loop); /* runs it to its end and checks it closes clean */
}

/* ---- 1: open, rows, a server error after rows, close ---- */

typedef struct {
  pt_done_t done;
  int64_t sum;
} summed_t;

static int sum_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  summed_t *t = data;
  int64_t v;
  if (pqs_row_int64(row, 0, &v) == 0)
    t->sum += v;
  return PQS_CONTINUE;
}

static void sum_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  summed_t *t = data;
  pt_on_done(s, done, &t->done);
}

/* Runs `sql` to its end; 0 and the done in *t, or ENOMEM before start. */
static int run_query(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                     summed_t *t) {
  pqs_stream_t *s;
  int rc = pqs_query(ctx, &s, sql, 0, NULL, NULL);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    return rc;
  }
  pqs_stream_cbs_t cbs = {.on_row = sum_row, .on_done = sum_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, t), 0);
  while (t->done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(t->done.calls, 1);
  return 0;
}

typedef struct {
  int calls, status, ncols;
} described_t;

static void on_described(pqs_ctx_t *ctx, int status, const pqs_row_t *cols,
                         const pqs_error_t *err, void *data) {
  (void)ctx;
  described_t *d = data;
  d->calls++;
  d->status = status;
  d->ncols = cols ? pqs_row_ncols(cols) : -1;
  ck_assert(status == 0 || (err != NULL && err->message != NULL));
}

static void scenario_rows_then_error(void) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  pqs_ctx_t *ctx = open_ctx(loop, &o);
  if (ctx != NULL && o.status == 0) {
    summed_t a = {0};
    if (run_query(loop, ctx, "SELECT g::int8 FROM generate_series(1,2000) g",
                  &a) == 0) {
      if (a.done.status == 0) {
        ck_assert_uint_eq(a.done.rows, 2000);
        ck_assert_int_eq(a.sum, 2001000);
        ck_assert_str_eq(a.done.tag, pt_copy() ? "COPY 2000" : "SELECT 2000");
      } else {
        ck_assert_msg(a.done.status == PQS_ENOMEM, "rows ended with %s",
                      pqs_err_name(a.done.status));
        ck_assert_str_ne(a.done.message, "");
      }
    }
    summed_t b = {0};
    if (!pqs_ctx_is_busy(ctx) && !pqs_ctx_is_broken(ctx) &&
        run_query(loop, ctx,
                  "SELECT (1 / (500 - g))::int8 FROM generate_series(1,1000) g",
                  &b) == 0) {
      /* Never a success: the server said division by zero. */
      ck_assert_msg(b.done.status == PQS_ESQL || b.done.status == PQS_ENOMEM,
                    "error after rows ended with %s",
                    pqs_err_name(b.done.status));
      if (b.done.status == PQS_ESQL) {
        ck_assert_str_eq(b.done.sqlstate, "22012");
        ck_assert_uint_eq(b.done.rows, 499);
      }
    }
    described_t d = {0};
    int rc;
    if (!pqs_ctx_is_busy(ctx) && !pqs_ctx_is_broken(ctx)) {
      if ((rc = pqs_describe(ctx, "SELECT 1 AS a, 2 AS b", 0, on_described,
                             &d)) != 0) {
        ASSERT_NOMEM(rc);
      } else {
        while (d.calls == 0)
          uv_run(loop, UV_RUN_ONCE);
        ck_assert_int_eq(d.calls, 1);
        ck_assert(d.status == 0 || d.status == PQS_ENOMEM);
        if (d.status == 0)
          ck_assert_int_eq(d.ncols, 2);
      }
    }
  }
  close_ctx(loop, ctx);
}

/* ---- 2: filter and map into a CSV sink; filter and batch ---- */

static int keep_even(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  (void)data;
  int64_t v = 0;
  pqs_row_int64(row, 0, &v);
  return v % 2 == 0;
}

static int double_it(pqs_stream_t *s, const pqs_row_t *in, pqs_out_t *out,
                     void *data) {
  (void)s;
  (void)data;
  int64_t v = 0;
  pqs_row_int64(in, 0, &v);
  int rc = pqs_out_set_int64(out, 0, v * 2);
  return rc != 0 ? rc : pqs_out_pass(out, 1, in, 1);
}

typedef struct {
  int calls, status;
  uint64_t bytes;
} sunk_t;

static void on_sunk(pqs_sink_t *sink, const pqs_done_t *done, uint64_t bytes,
                    void *data) {
  (void)sink;
  sunk_t *k = data;
  k->calls++;
  k->status = done->status;
  k->bytes = bytes;
}

static char *expected_csv(size_t *len) {
  size_t cap = 64 * 1024, n = 0;
  char *want = malloc(cap);
  ck_assert_ptr_nonnull(want);
  n += (size_t)sprintf(want, "twice,label\n");
  for (int g = 2; g <= 3000; g += 2)
    n += (size_t)sprintf(want + n, "%d,v%d\n", 2 * g, g);
  *len = n;
  return want;
}

static void check_file(int fd, sunk_t *k) {
  size_t want_len;
  char *want = expected_csv(&want_len);
  char *got = malloc(want_len + 16);
  ck_assert_ptr_nonnull(got);
  ssize_t n = pread(fd, got, want_len + 16, 0);
  ck_assert_int_ge(n, 0);
  pt_assert_same_bytes("csv", want, want_len, got, (size_t)n);
  ck_assert_uint_eq(k->bytes, want_len);
  free(want);
  free(got);
}

/* Sinks `s` into a temporary file and runs the loop until the sink's
 * end, which must be a success or PQS_ENOMEM: the file's descriptor, to
 * read and close; or -1 if the sink could not start (for want of memory),
 * the stream closed. */
static int sink_to_temp(uv_loop_t *loop, pqs_stream_t *s,
                        const pqs_sink_opts_t *so, sunk_t *k) {
  char path[] = "/tmp/pqs-oom-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  unlink(path);
  int rc = pqs_sink_fd(s, loop, fd, so, on_sunk, k);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    ck_assert_int_eq(pqs_stream_close(s), 0); /* still the caller's */
    close(fd);
    return -1;
  }
  while (k->calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(k->calls, 1);
  ck_assert_msg(k->status == 0 || k->status == PQS_ENOMEM, "sink ended with %s",
                pqs_err_name(k->status));
  return fd;
}

static void sink_pipeline(uv_loop_t *loop, pqs_ctx_t *ctx) {
  pqs_stream_t *s;
  int rc = pqs_query(ctx, &s,
                     "SELECT g::int8, 'v' || g FROM generate_series(1,3000) g",
                     0, NULL, NULL);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    return;
  }
  static const pqs_column_t cols[] = {{"twice", 20}, {"label", 25}};
  if ((rc = pqs_stream_filter(s, keep_even, NULL, NULL)) != 0 ||
      (rc = pqs_stream_map(s, cols, 2, double_it, NULL, NULL)) != 0) {
    ASSERT_NOMEM(rc);
    ck_assert_int_eq(pqs_stream_close(s), 0);
    return;
  }
  sunk_t k = {0};
  pqs_sink_opts_t so = {.format = PQS_FORMAT_CSV, .header = 1};
  int fd = sink_to_temp(loop, s, &so, &k);
  if (fd >= 0 && k.status == 0)
    check_file(fd, &k);
  if (fd >= 0)
    close(fd);
}

typedef struct {
  pt_done_t done;
  uint64_t rows;
  size_t most;
} batched_t;

static int on_batch(pqs_stream_t *s, const pqs_row_t *const *rows, size_t n,
                    void *data) {
  (void)s;
  batched_t *b = data;
  for (size_t i = 0; i < n; i++) {
    int64_t v = 0;
    ck_assert_int_eq(pqs_row_int64(rows[i], 0, &v), 0);
    ck_assert_int_eq(v, (int64_t)(2 * (b->rows + i + 1)));
  }
  b->rows += n;
  if (n > b->most)
    b->most = n;
  return PQS_CONTINUE;
}

static void batched_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  batched_t *b = data;
  pt_on_done(s, done, &b->done);
}

static void batch_pipeline(uv_loop_t *loop, pqs_ctx_t *ctx) {
  pqs_stream_t *s;
  int rc = pqs_query(ctx, &s, "SELECT g::int8 FROM generate_series(1,3000) g",
                     0, NULL, NULL);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    return;
  }
  if ((rc = pqs_stream_filter(s, keep_even, NULL, NULL)) != 0 ||
      (rc = pqs_stream_batch(s, 100)) != 0) {
    ASSERT_NOMEM(rc);
    ck_assert_int_eq(pqs_stream_close(s), 0);
    return;
  }
  batched_t b = {0};
  pqs_stream_cbs_t cbs = {.on_batch = on_batch, .on_done = batched_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &b), 0);
  while (b.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(b.done.calls, 1);
  ck_assert_msg(b.done.status == 0 || b.done.status == PQS_ENOMEM,
                "batch ended with %s", pqs_err_name(b.done.status));
  if (b.done.status == 0) {
    ck_assert_uint_eq(b.rows, 1500);
    ck_assert_uint_eq(b.most, 100);
  }
}

/* JSON Lines of a column only the server renders (a record): the
 * statement described, wrapped in to_json, its extra field written. */
static void json_pipeline(uv_loop_t *loop, pqs_ctx_t *ctx) {
  pqs_stream_t *s;
  int rc = pqs_query(ctx, &s,
                     "SELECT g::int8 AS n, ROW(g, 'v' || g) AS r "
                     "FROM generate_series(1,300) g",
                     0, NULL, NULL);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    return;
  }
  if ((rc = pqs_stream_filter(s, keep_even, NULL, NULL)) != 0) {
    ASSERT_NOMEM(rc);
    ck_assert_int_eq(pqs_stream_close(s), 0);
    return;
  }
  sunk_t k = {0};
  pqs_sink_opts_t so = {.format = PQS_FORMAT_JSONL};
  int fd = sink_to_temp(loop, s, &so, &k);
  if (fd < 0)
    return;
  if (k.status == 0) {
    char want[32768], got[32768];
    size_t n = 0;
    for (int g = 2; g <= 300; g += 2)
      n += (size_t)snprintf(want + n, sizeof(want) - n,
                            "{\"n\":%d,\"r\":{\"f1\":%d,\"f2\":\"v%d\"}}\n", g,
                            g, g);
    ssize_t m = pread(fd, got, sizeof(got), 0);
    ck_assert_int_ge(m, 0);
    pt_assert_same_bytes("jsonl", want, n, got, (size_t)m);
  }
  close(fd);
}

static void scenario_stages_and_sink(void) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  pqs_ctx_t *ctx = open_ctx(loop, &o);
  if (ctx != NULL && o.status == 0) {
    sink_pipeline(loop, ctx);
    if (!pqs_ctx_is_busy(ctx) && !pqs_ctx_is_broken(ctx))
      batch_pipeline(loop, ctx);
    if (!pqs_ctx_is_busy(ctx) && !pqs_ctx_is_broken(ctx))
      json_pipeline(loop, ctx);
  }
  close_ctx(loop, ctx);
}

/* ---- 3: a merge of three ordered inputs ---- */

typedef struct {
  pt_done_t done;
  int64_t last;
  uint64_t rows;
} ordered_t;

static int ordered_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  ordered_t *t = data;
  int64_t v = 0;
  ck_assert_int_eq(pqs_row_int64(row, 0, &v), 0);
  ck_assert_int_eq(v, t->last + 1); /* in order, none lost */
  ck_assert_int_eq(pqs_row_input(row), (int)((v - 1) % 3));
  t->last = v;
  t->rows++;
  return PQS_CONTINUE;
}

static void ordered_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  ordered_t *t = data;
  pt_on_done(s, done, &t->done);
}

static void merge_three(uv_loop_t *loop, pqs_ctx_t **ctx) {
  pqs_stream_t *in[3];
  int rc = 0, made = 0;
  for (; made < 3 && rc == 0; made++) {
    char sql[128];
    snprintf(sql, sizeof(sql),
             "SELECT g::int8 FROM generate_series(%d,3000,3) g ORDER BY g",
             made + 1);
    rc = pqs_query(ctx[made], &in[made], sql, 0, NULL, NULL);
  }
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    for (int i = 0; i < made - 1; i++)
      pqs_stream_close(in[i]);
    return;
  }
  static const pqs_sort_key_t key = {.col = 0};
  pqs_merge_opts_t mo = {
      .mode = PQS_MERGE_ORDERED, .keys = &key, .nkeys = 1, .buffer_rows = 50};
  pqs_stream_t *m;
  if ((rc = pqs_merge(in, 3, &mo, &m)) != 0) {
    ASSERT_NOMEM(rc);
    for (int i = 0; i < 3; i++)
      pqs_stream_close(in[i]);
    return;
  }
  ordered_t t = {0};
  pqs_stream_cbs_t cbs = {.on_row = ordered_row, .on_done = ordered_done};
  ck_assert_int_eq(pqs_stream_start(m, &cbs, &t), 0);
  while (t.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(t.done.calls, 1);
  ck_assert_msg(t.done.status == 0 || t.done.status == PQS_ENOMEM,
                "merge ended with %s: %s", pqs_err_name(t.done.status),
                t.done.message);
  if (t.done.status == 0)
    ck_assert_uint_eq(t.rows, 3000);
}

static void scenario_merge(void) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o[3] = {{0}};
  pqs_ctx_t *ctx[3] = {NULL};
  int ok = 1;
  for (int i = 0; i < 3; i++) {
    ctx[i] = open_ctx(loop, &o[i]);
    ok = ok && ctx[i] != NULL && o[i].status == 0;
  }
  if (ok)
    merge_three(loop, ctx);
  for (int i = 0; i < 3; i++)
    if (ctx[i] != NULL)
      ck_assert_int_eq(pqs_ctx_close(ctx[i], NULL), 0);
  pt_loop_free(loop);
}

/* ---- 4: a factory: acquire, change the session, release, reset ---- */

typedef struct {
  int calls, status;
  pqs_ctx_t *ctx;
} acquired_t;

static void on_acquired(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                        void *data) {
  acquired_t *a = data;
  a->calls++;
  a->status = status;
  a->ctx = ctx;
  ck_assert_msg(status == 0 || status == PQS_ENOMEM, "acquire: %s: %s",
                pqs_err_name(status), err ? err->message : "");
}

static pqs_ctx_t *acquire(uv_loop_t *loop, pqs_factory_t *f) {
  acquired_t a = {0};
  int rc = pqs_factory_open_ctx(f, loop, NULL, on_acquired, &a);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    return NULL;
  }
  while (a.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(a.calls, 1);
  return a.status == 0 ? a.ctx : NULL;
}

static void release(uv_loop_t *loop, pqs_ctx_t *ctx) {
  ck_assert_int_eq(pqs_ctx_close(ctx, NULL), 0);
  uv_run(loop, UV_RUN_DEFAULT); /* the reset runs, then it goes back */
}

/* A command run to its end: its status, or ENOMEM if it could not start. */
static int exec_step(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql) {
  pt_done_t d = {0};
  int rc = pqs_exec(ctx, sql, 0, NULL, NULL, pt_on_exec, &d);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    return rc;
  }
  while (d.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(d.calls, 1);
  ck_assert_msg(d.status == 0 || d.status == PQS_ENOMEM, "%s: %s", sql,
                pqs_err_name(d.status));
  return d.status;
}

/* A string setting of the session, read through a stream. */
typedef struct {
  pt_done_t done;
  char value[128];
} shown_t;

static int show_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  shown_t *t = data;
  const char *v = pqs_row_text(row, 0, NULL);
  snprintf(t->value, sizeof(t->value), "%s", v ? v : "");
  return PQS_CONTINUE;
}

static void show_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  shown_t *t = data;
  pt_on_done(s, done, &t->done);
}

static void scenario_factory(void) {
  pqs_factory_opts_t fo = {.conninfo = pt_conninfo(),
                           .max_size = 1,
                           .source = pt_source(),
                           .result_format = pt_format()};
  pqs_factory_t *f;
  int rc = pqs_factory_new(&f, &fo);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    return;
  }
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = acquire(loop, f);
  if (ctx != NULL) {
    /* A session setting, and a transaction left open over it: the reset
     * must roll back, then discard. */
    if (exec_step(loop, ctx, "SET application_name = 'dirty'") == 0)
      exec_step(loop, ctx, "BEGIN");
    release(loop, ctx);
  }
  /* Whoever gets the connection next finds a fresh session. */
  if ((ctx = acquire(loop, f)) != NULL) {
    pqs_stream_t *s;
    shown_t t = {0};
    rc = pqs_query(ctx, &s, "SELECT current_setting('application_name')", 0,
                   NULL, NULL);
    if (rc != 0) {
      ASSERT_NOMEM(rc);
    } else {
      pqs_stream_cbs_t cbs = {.on_row = show_row, .on_done = show_done};
      ck_assert_int_eq(pqs_stream_start(s, &cbs, &t), 0);
      while (t.done.calls == 0)
        uv_run(loop, UV_RUN_ONCE);
      ck_assert(t.done.status == 0 || t.done.status == PQS_ENOMEM);
      if (t.done.status == 0)
        ck_assert_str_ne(t.value, "dirty");
    }
    release(loop, ctx);
  }
  pt_loop_free(loop);
  pqs_factory_stats_t st;
  pqs_factory_stats(f, &st);
  ck_assert_uint_eq(st.in_use, 0); /* no lease lost on any path */
  ck_assert_int_eq(pqs_factory_free(f), 0);
}

/* ---- 5: the tool's run path, in-process ---- */

static void scenario_tool(void) {
  char out[] = "/tmp/pqs-oom-out-XXXXXX", err[] = "/tmp/pqs-oom-err-XXXXXX";
  int ofd = mkstemp(out), efd = mkstemp(err);
  ck_assert(ofd >= 0 && efd >= 0);
  cli_opts_t o = {
      .dbname = pt_conninfo(),
      .ncommands = 3,
      .commands =
          (const char *const[]){"SELECT g FROM generate_series(1,500) g "
                                "ORDER BY g",
                                "SELECT g FROM generate_series(501,1000) g "
                                "ORDER BY g",
                                "SELECT g FROM generate_series(1001,1500) g "
                                "ORDER BY g"},
      .format = PQS_FORMAT_TSV,
      .output = out,
      .jobs = 3,
      .order_by = "g",
      .limit = -1,
      .progress = 0,
      .quiet = 1};
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  dup2(efd, STDERR_FILENO);
  int code = cli_run(&o);
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  char said[512] = "";
  ssize_t n = pread(efd, said, sizeof(said) - 1, 0);
  said[n > 0 ? n : 0] = '\0';
  if (code == CLI_OK) {
    char got[8192];
    ssize_t len = pread(ofd, got, sizeof(got), 0);
    ck_assert_int_gt(len, 0);
    char want[8192];
    size_t w = 0;
    for (int g = 1; g <= 1500; g++)
      w += (size_t)snprintf(want + w, sizeof(want) - w, "%d\n", g);
    pt_assert_same_bytes("tool output", want, w, got, (size_t)len);
  } else {
    ck_assert_msg(said[0] != '\0', "exit %d without a word on stderr", code);
  }
  close(ofd);
  close(efd);
  unlink(out);
  unlink(err);
}

/* ---- 6: writes and events: a batch, a transaction, a listen stream ---- */

typedef struct {
  int calls, status;
  long failed;
} wbatch_t;

static void w_on_batched(pqs_ctx_t *ctx, const pqs_batch_done_t *done,
                         void *data) {
  (void)ctx;
  wbatch_t *b = data;
  b->calls++;
  b->status = done->status;
  b->failed = done->failed;
  if (done->status == 0)
    ck_assert(done->tags != NULL && strcmp(done->tags[1], "INSERT 0 1") == 0);
}

static void writes_batch(uv_loop_t *loop, pqs_ctx_t *ctx) {
  pqs_batch_t *b;
  int rc = pqs_batch_new(&b);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    return;
  }
  const char *tags[] = {"a", NULL};
  pqs_param_t p[] = {pqs_p_int64(7), pqs_p_text_array(tags, 2)};
  if ((rc = pqs_batch_add(b, "SELECT $1::int8, $2::text[]", 2, p)) != 0 ||
      (rc = pqs_batch_add(b, "INSERT INTO oom_w VALUES ($1)", 1, p)) != 0) {
    ASSERT_NOMEM(rc);
    pqs_batch_free(b);
    return;
  }
  wbatch_t r = {0};
  pqs_batch_opts_t o = {.isolation = PQS_ISOLATION_SERIALIZABLE, .retries = 1};
  if ((rc = pqs_batch_run(ctx, b, &o, w_on_batched, &r)) != 0) {
    ASSERT_NOMEM(rc);
  } else {
    while (r.calls == 0)
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_msg(r.status == 0 || r.status == PQS_ENOMEM, "batch: %s",
                  pqs_err_name(r.status));
  }
  pqs_batch_free(b);
}

typedef struct {
  int calls, status, bodies;
} wtx_t;

static void w_tx_done(pqs_ctx_t *ctx, const pqs_tx_done_t *done, void *data) {
  (void)ctx;
  wtx_t *t = data;
  t->calls++;
  t->status = done->status;
}

static void w_body_done(pqs_ctx_t *ctx, const pqs_done_t *done, void *data) {
  (void)ctx;
  pqs_tx_t *tx = data;
  ck_assert_int_eq(pqs_tx_end(tx, done->status, done->error), 0);
}

static void w_tx_body(pqs_tx_t *tx, pqs_ctx_t *ctx, unsigned attempt,
                      void *data) {
  (void)attempt;
  ((wtx_t *)data)->bodies++;
  int rc = pqs_exec(ctx, "INSERT INTO oom_w VALUES (8)", 0, NULL, NULL,
                    w_body_done, tx);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    ck_assert_int_eq(pqs_tx_end(tx, rc, NULL), 0);
  }
}

static void writes_tx(uv_loop_t *loop, pqs_ctx_t *ctx) {
  wtx_t t = {0};
  int rc = pqs_tx_run(ctx, NULL, w_tx_body, w_tx_done, &t);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    return;
  }
  while (t.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(t.calls, 1);
  ck_assert_msg(t.status == 0 || t.status == PQS_ENOMEM, "tx: %s",
                pqs_err_name(t.status));
}

typedef struct {
  pt_done_t done;
  int listening, heard;
} wheard_t;

static int w_heard_cols(pqs_stream_t *s, const pqs_row_t *cols, void *data) {
  (void)s;
  (void)cols;
  ((wheard_t *)data)->listening = 1;
  return PQS_CONTINUE;
}

static int w_heard_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  ck_assert_str_eq(pqs_row_text(row, 0, NULL), "oom_ch");
  return ++((wheard_t *)data)->heard == 2 ? PQS_STOP : PQS_CONTINUE;
}

static void w_heard_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  pt_on_done(s, done, &((wheard_t *)data)->done);
}

static void writes_listen(uv_loop_t *loop, pqs_ctx_t *ctx) {
  const char *const ch[] = {"oom_ch"};
  pqs_stream_t *s;
  int rc = pqs_listen(ctx, ch, 1, &s);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    return;
  }
  wheard_t h = {0};
  pqs_stream_cbs_t cbs = {.on_columns = w_heard_cols,
                          .on_row = w_heard_row,
                          .on_done = w_heard_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &h), 0);
  while (!h.listening && h.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  if (h.listening) {
    PGconn *admin = pt_admin();
    pt_sql(admin, "NOTIFY oom_ch, '1'; NOTIFY oom_ch, '2'");
    PQfinish(admin);
  }
  while (h.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(h.done.calls, 1);
  ck_assert_msg(h.done.status == PQS_ECANCELED || h.done.status == PQS_ENOMEM,
                "listen: %s", pqs_err_name(h.done.status));
}

static void scenario_writes(void) {
  PGconn *admin = pt_admin();
  pt_sql(admin, "CREATE TABLE IF NOT EXISTS oom_w (x int8)");
  PQfinish(admin);
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  pqs_ctx_t *ctx = open_ctx(loop, &o);
  if (ctx != NULL && o.status == 0) {
    writes_batch(loop, ctx);
    if (!pqs_ctx_is_busy(ctx) && !pqs_ctx_is_broken(ctx))
      writes_tx(loop, ctx);
    if (!pqs_ctx_is_busy(ctx) && !pqs_ctx_is_broken(ctx))
      writes_listen(loop, ctx);
  }
  close_ctx(loop, ctx);
}

/* ---- 7: a partitioned read, and a host name resolved off the loop ---- */

typedef struct {
  int calls, status;
  pqs_stream_t *merged;
  pt_done_t done;
  uint64_t rows;
} parted_t;

static int p_count_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  (void)row;
  ((parted_t *)data)->rows++;
  return PQS_CONTINUE;
}

static void p_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  pt_on_done(s, done, &((parted_t *)data)->done);
}

static void on_parted(pqs_factory_t *f, int status, const pqs_error_t *err,
                      pqs_stream_t *m, void *data) {
  (void)f;
  (void)err;
  parted_t *p = data;
  p->calls++;
  p->status = status;
  p->merged = m;
  ck_assert_msg(status == 0 || status == PQS_ENOMEM, "partitioned: %s",
                pqs_err_name(status));
  if (m != NULL) {
    pqs_stream_cbs_t cbs = {.on_row = p_count_row, .on_done = p_done};
    ck_assert_int_eq(pqs_stream_start(m, &cbs, p), 0);
  }
}

static void scenario_scale(void) {
  uv_loop_t *loop = pt_loop_new();
  pqs_factory_opts_t fo = {.conninfo = pt_conninfo(),
                           .max_size = 4,
                           .source = pt_source(),
                           .result_format = pt_format()};
  pqs_factory_t *f;
  int rc = pqs_factory_new(&f, &fo);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    pt_loop_free(loop);
    return;
  }
  parted_t p = {0};
  pqs_partition_opts_t po = {.column = "g", .partitions = 3};
  rc = pqs_partitioned(f, loop,
                       "SELECT g FROM generate_series(1, 300) g "
                       "UNION ALL SELECT NULL",
                       &po, on_parted, &p);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
  } else {
    while (p.calls == 0 || (p.merged != NULL && p.done.calls == 0))
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_int_eq(p.calls, 1);
    if (p.merged != NULL && p.done.status == 0)
      ck_assert_uint_eq(p.rows, 301);
    else if (p.merged != NULL)
      ck_assert_int_eq(p.done.status, PQS_ENOMEM);
  }
  uv_run(loop, UV_RUN_DEFAULT); /* the contexts back in the pool */
  ck_assert_int_eq(pqs_factory_free(f), 0);
  /* a host name: "localhost" resolves on the thread pool */
  char conninfo[512];
  snprintf(conninfo, sizeof(conninfo), "%s host=localhost", pt_conninfo());
  opened_t o = {0};
  pqs_ctx_t *ctx = NULL;
  rc = pqs_ctx_open(&ctx, loop, conninfo, NULL, on_opened, &o);
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    ctx = NULL;
  } else {
    while (o.calls == 0)
      uv_run(loop, UV_RUN_ONCE);
  }
  close_ctx(loop, ctx);
}

/* ---- a pipeline: rows, an error after rows, JSON Lines to a sink ---- */

static void jsonl_sunk(pqs_sink_t *k, const pqs_done_t *d, uint64_t bytes,
                       void *data) {
  (void)k;
  (void)bytes;
  pt_record(data, d);
}

static void scenario_pipeline(void) {
  uv_loop_t *loop = pt_loop_new();
  opened_t o = {0};
  pqs_ctx_t *ctx = open_ctx(loop, &o);
  pqs_pipeline_t *pl = NULL;
  int rc;
  if (ctx == NULL || o.status != 0 ||
      (rc = pqs_pipeline(ctx, NULL, &pl)) != 0) {
    if (ctx != NULL && o.status == 0)
      ASSERT_NOMEM(rc);
    close_ctx(loop, ctx);
    return;
  }
  summed_t a = {0}, b = {0};
  pt_done_t c = {0};
  pqs_stream_cbs_t cbs = {.on_row = sum_row, .on_done = sum_done};
  pqs_stream_t *s;
  int null = open("/dev/null", O_WRONLY);
  ck_assert_int_ge(null, 0);
  pqs_sink_opts_t so = {.format = PQS_FORMAT_JSONL};
  int started = 0;
  if ((rc = pqs_pipeline_query(
           pl, &s, "SELECT g::int8 FROM generate_series(1, 300) g", 0,
           NULL)) == 0 &&
      (rc = pqs_stream_start(s, &cbs, &a)) == 0 && ++started &&
      (rc = pqs_pipeline_query(
           pl, &s, "SELECT (1 / (150 - g))::int8 FROM generate_series(1, 300) g",
           0, NULL)) == 0 &&
      (rc = pqs_stream_start(s, &cbs, &b)) == 0 && ++started &&
      (rc = pqs_pipeline_query(pl, &s, "SELECT 1 AS n, now()::date AS d", 0,
                               NULL)) == 0) {
    if ((rc = pqs_sink_fd(s, loop, null, &so, jsonl_sunk, &c)) != 0)
      pqs_stream_close(s); /* left out */
    else
      started++;
  }
  if (rc != 0) {
    ASSERT_NOMEM(rc);
    ck_assert_int_eq(pqs_pipeline_close(pl), 0);
    while (pqs_ctx_is_busy(ctx)) /* started ones hear from the loop */
      uv_run(loop, UV_RUN_ONCE);
    ck_assert_int_eq(a.done.calls + b.done.calls + c.calls, started);
    close(null);
    close_ctx(loop, ctx);
    return;
  }
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  while (a.done.calls == 0 || b.done.calls == 0 || c.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(a.done.calls + b.done.calls + c.calls, 3);
  ck_assert(a.done.status == 0 || a.done.status == PQS_ENOMEM ||
            a.done.status == PQS_ECONNLOST);
  if (a.done.status == 0)
    ck_assert_int_eq(a.sum, 45150);
  ck_assert_msg(b.done.status != 0, "an error after rows ended well");
  ck_assert(c.status == 0 || c.status == PQS_ENOMEM ||
            c.status == PQS_ECONNLOST);
  close(null);
  close_ctx(loop, ctx);
}

/* ---- the suite ---- */

#define OOM_TEST(name, fn)                                                     \
  START_TEST(name##_kth) { oom_loop(#name, fn, 0); }                           \
  END_TEST                                                                     \
  START_TEST(name##_from_k) { oom_loop(#name, fn, 1); }                        \
  END_TEST

OOM_TEST(rows_then_error, scenario_rows_then_error)
OOM_TEST(stages_and_sink, scenario_stages_and_sink)
OOM_TEST(merge, scenario_merge)
OOM_TEST(factory, scenario_factory)
OOM_TEST(tool, scenario_tool)
OOM_TEST(writes, scenario_writes)
OOM_TEST(scale, scenario_scale)
OOM_TEST(pipeline, scenario_pipeline)

/* The hook itself: a scenario that allocates does fail when asked. */
START_TEST(hook_fails_the_kth) {
  pqs__alloc_fail_at(1, 0);
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = NULL;
  opened_t o = {0};
  ck_assert_int_eq(pqs_ctx_open(&ctx, loop, pt_conninfo(), NULL, on_opened, &o),
                   PQS_ENOMEM);
  ck_assert_uint_eq(pqs__alloc_failed(), 1);
  pqs__alloc_fail_at(0, 0);
  pt_loop_free(loop);
  ck_assert_int_eq(o.calls, 0);
}
END_TEST

int main(void) {
  Suite *s = suite_create("oom");
  TCase *tc = tcase_create("oom");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, hook_fails_the_kth);
  tcase_add_test(tc, rows_then_error_kth);
  tcase_add_test(tc, rows_then_error_from_k);
  tcase_add_test(tc, stages_and_sink_kth);
  tcase_add_test(tc, stages_and_sink_from_k);
  tcase_add_test(tc, merge_kth);
  tcase_add_test(tc, merge_from_k);
  tcase_add_test(tc, factory_kth);
  tcase_add_test(tc, factory_from_k);
  tcase_add_test(tc, tool_kth);
  tcase_add_test(tc, tool_from_k);
  tcase_add_test(tc, writes_kth);
  tcase_add_test(tc, writes_from_k);
  tcase_add_test(tc, scale_kth);
  tcase_add_test(tc, scale_from_k);
  tcase_add_test(tc, pipeline_kth);
  tcase_add_test(tc, pipeline_from_k);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
