/* Scenarios for the whole-process allocation-failure harness
 * (tests/oom_harness.sh runs them under tests/support/oomshim.c).
 *
 *   oom_scenario lib|lib-copy|lib-binary|factory|merge|batch|pipeline|
 *     copy-in
 *     CONNINFO
 *     (lib-copy: lib over the COPY source; lib-binary: over binary COPY,
 *     each row's text made too)
 *   oom_scenario abandon CONNINFO  (needs the shim: fails everything from
 *     row 100 on)
 *
 * On success a scenario prints what it got and exits 0. When memory runs
 * out it exits 1 with a message on stderr. A broken contract (not exactly
 * one completion, a success that hides an error or lost rows) exits 3:
 * the harness counts that as a failure of pqstream's, whatever k was. */
#define _GNU_SOURCE /* dlsym's RTLD_DEFAULT */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pqstream.h>

static const char *conninfo;
static pqs_source_t source; /* the contexts' default */
static pqs_result_format_t format; /* likewise */

static void broken(const char *what, int status) {
  fprintf(stderr, "CONTRACT BROKEN: %s (%s)\n", what, pqs_err_name(status));
  exit(3);
}

static void failed(const char *what, int status, const pqs_error_t *e) {
  fprintf(stderr, "%s: %s%s%s\n", what, pqs_strerror(status), e ? ": " : "",
          e ? e->message : "");
  exit(1);
}

/* ---- a stream run to its end ---- */

typedef struct {
  int calls, status;
  uint64_t rows, done_rows;
  int64_t sum;
  char message[256];
  void (*at_100)(void);
} run_t;

static int on_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  run_t *r = data;
  int64_t v = 0;
  pqs_row_int64(row, 0, &v);
  r->sum += v;
  r->rows++;
  if (pqs_row_is_binary(row)) { /* its text is made on demand: it may fail */
    const char *t;
    char want[32];
    int rc = pqs_row_get_text(row, 0, &t, NULL);
    snprintf(want, sizeof(want), "%lld", (long long)v);
    if (rc == PQS_ENOMEM)
      return rc; /* the stream ends with it: a failure with a message */
    if (rc != 0 || strcmp(t, want) != 0)
      broken("a binary row's text is wrong", rc);
  }
  if (r->rows == 100 && r->at_100)
    r->at_100();
  return PQS_CONTINUE;
}

static void on_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)s;
  run_t *r = data;
  r->calls++;
  r->status = done->status;
  r->done_rows = done->rows;
  if (done->error)
    snprintf(r->message, sizeof(r->message), "%s", done->error->message);
}

static void run(uv_loop_t *loop, pqs_stream_t *s, run_t *r) {
  pqs_stream_cbs_t cbs = {.on_row = on_row, .on_done = on_done};
  int rc = pqs_stream_start(s, &cbs, r);
  if (rc != 0)
    failed("start", rc, NULL);
  while (r->calls == 0 && uv_run(loop, UV_RUN_ONCE))
    ;
  if (r->calls != 1)
    broken("a stream did not end with exactly one on_done", r->calls);
  if (r->done_rows != r->rows)
    broken("on_done's row count is not the rows delivered", r->status);
}

static pqs_stream_t *query(pqs_ctx_t *ctx, const char *sql) {
  pqs_stream_t *s;
  int rc = pqs_query(ctx, &s, sql, 0, NULL, NULL);
  if (rc != 0)
    failed("query", rc, NULL);
  return s;
}

/* ---- opening ---- */

typedef struct {
  int calls, status;
  pqs_ctx_t *ctx;
} open_t;

static void on_open(pqs_ctx_t *ctx, int status, const pqs_error_t *e,
                    void *data) {
  open_t *o = data;
  o->calls++;
  o->status = status;
  o->ctx = ctx;
  if (status != 0)
    fprintf(stderr, "open: %s: %s\n", pqs_strerror(status),
            e ? e->message : "");
}

static pqs_ctx_t *open_ctx(uv_loop_t *loop) {
  open_t o = {0};
  pqs_ctx_t *ctx;
  pqs_ctx_opts_t opts = {.source = source, .result_format = format};
  int rc = pqs_ctx_open(&ctx, loop, conninfo, &opts, on_open, &o);
  if (rc != 0)
    failed("open", rc, NULL);
  while (o.calls == 0 && uv_run(loop, UV_RUN_ONCE))
    ;
  if (o.calls != 1)
    broken("open did not call back exactly once", o.calls);
  if (o.status != 0)
    exit(1);
  return ctx;
}

static uv_loop_t *new_loop(void) {
  uv_loop_t *loop = malloc(sizeof(*loop));
  if (loop == NULL || uv_loop_init(loop) != 0) {
    fprintf(stderr, "out of memory\n");
    exit(1);
  }
  return loop;
}

static void end_loop(uv_loop_t *loop) {
  uv_run(loop, UV_RUN_DEFAULT);
  if (uv_loop_close(loop) != 0)
    broken("the loop did not close: a handle was left open", 0);
  free(loop);
}

/* ---- the scenarios ---- */

/* Rows, then a server error after rows, then close. */
static void lib(void) {
  uv_loop_t *loop = new_loop();
  pqs_ctx_t *ctx = open_ctx(loop);
  run_t a = {0};
  run(loop, query(ctx, "SELECT g::int8 FROM generate_series(1, 300) g"), &a);
  if (a.status != 0)
    failed("rows", a.status, NULL);
  if (a.rows != 300 || a.sum != 45150)
    broken("a success with rows missing", a.status);
  run_t b = {0};
  run(loop,
      query(ctx, "SELECT (1 / (150 - g))::int8 FROM generate_series(1, 300) g"),
      &b);
  if (b.status == 0)
    broken("a server error reported as success", 0);
  if (b.status == PQS_ESQL && b.rows != 149) {
    fprintf(stderr, "%llu rows, then: %s\n", (unsigned long long)b.rows,
            b.message);
    broken("the rows before the error are not all there", b.status);
  }
  if (b.status != PQS_ESQL)
    failed("error after rows", b.status, NULL);
  printf("rows %llu sum %lld; then %s after %llu rows\n",
         (unsigned long long)a.rows, (long long)a.sum, pqs_err_name(b.status),
         (unsigned long long)b.rows);
  pqs_ctx_close(ctx, NULL);
  end_loop(loop);
}

/* A pipeline of three streams: rows, an error after rows, rows again;
 * each ends once, in order, and a success has every row. */
static void pipeline(void) {
  uv_loop_t *loop = new_loop();
  pqs_ctx_t *ctx = open_ctx(loop);
  pqs_pipeline_t *pl;
  int rc = pqs_pipeline(ctx, NULL, &pl);
  if (rc != 0)
    failed("pipeline", rc, NULL);
  static const char *const sql[3] = {
      "SELECT g::int8 FROM generate_series(1, 300) g",
      "SELECT (1 / (150 - g))::int8 FROM generate_series(1, 300) g",
      "SELECT g::int8 FROM generate_series(1, 200) g"};
  run_t r[3] = {{0}};
  pqs_stream_cbs_t cbs = {.on_row = on_row, .on_done = on_done};
  for (int i = 0; i < 3; i++) {
    pqs_stream_t *s;
    if ((rc = pqs_pipeline_query(pl, &s, sql[i], 0, NULL)) != 0 ||
        (rc = pqs_stream_start(s, &cbs, &r[i])) != 0) {
      pqs_pipeline_close(pl);
      failed("pipeline query", rc, NULL);
    }
  }
  if ((rc = pqs_pipeline_send(pl)) != 0)
    failed("pipeline send", rc, NULL);
  while (r[2].calls == 0 && uv_run(loop, UV_RUN_ONCE))
    ;
  for (int i = 0; i < 3; i++) {
    if (r[i].calls != 1)
      broken("a pipelined stream did not end exactly once", r[i].calls);
    if (r[i].done_rows != r[i].rows)
      broken("on_done's row count is not the rows delivered", r[i].status);
  }
  if (r[0].status == 0 && (r[0].rows != 300 || r[0].sum != 45150))
    broken("a pipelined success with rows missing", 0);
  if (r[1].status == 0)
    broken("a server error reported as success", 0);
  if (r[2].status == 0 && (r[2].rows != 200 || r[2].sum != 20100))
    broken("a pipelined success with rows missing", 0);
  for (int i = 0; i < 3; i++)
    if (r[i].status != 0 && (i != 1 || r[i].status != PQS_ESQL))
      failed("pipeline", r[i].status, NULL);
  printf("pipeline: %llu rows, %s after %llu, %llu rows\n",
         (unsigned long long)r[0].rows, pqs_err_name(r[1].status),
         (unsigned long long)r[1].rows, (unsigned long long)r[2].rows);
  pqs_ctx_close(ctx, NULL);
  end_loop(loop);
}

/* Acquire, query, release (reset), acquire again, free the factory. */
static void on_acquired(pqs_ctx_t *ctx, int status, const pqs_error_t *e,
                        void *data) {
  on_open(ctx, status, e, data);
}

static pqs_ctx_t *acquire(uv_loop_t *loop, pqs_factory_t *f) {
  open_t o = {0};
  int rc = pqs_factory_open_ctx(f, loop, NULL, on_acquired, &o);
  if (rc != 0)
    failed("acquire", rc, NULL);
  while (o.calls == 0 && uv_run(loop, UV_RUN_ONCE))
    ;
  if (o.calls != 1)
    broken("acquire did not call back exactly once", o.calls);
  if (o.status != 0)
    exit(1);
  return o.ctx;
}

static void factory(void) {
  pqs_factory_opts_t fo = {.conninfo = conninfo, .max_size = 1};
  pqs_factory_t *f;
  int rc = pqs_factory_new(&f, &fo);
  if (rc != 0)
    failed("factory", rc, NULL);
  uv_loop_t *loop = new_loop();
  for (int round = 0; round < 2; round++) {
    pqs_ctx_t *ctx = acquire(loop, f);
    run_t r = {0};
    run(loop, query(ctx, "SELECT g::int8 FROM generate_series(1, 100) g"), &r);
    if (r.status != 0)
      failed("query", r.status, NULL);
    if (r.sum != 5050)
      broken("a success with rows missing", 0);
    pqs_ctx_close(ctx, NULL);
    uv_run(loop, UV_RUN_DEFAULT); /* the reset, and back to the pool */
  }
  end_loop(loop);
  pqs_factory_stats_t st;
  pqs_factory_stats(f, &st);
  if (st.in_use != 0)
    broken("a lease was lost", 0);
  if (pqs_factory_free(f) != 0)
    broken("the factory could not be freed", 0);
  printf("two rounds of 100 rows\n");
}

/* Three ordered inputs merged. */
static void merge(void) {
  uv_loop_t *loop = new_loop();
  pqs_ctx_t *ctx[3];
  pqs_stream_t *in[3];
  for (int i = 0; i < 3; i++)
    ctx[i] = open_ctx(loop);
  for (int i = 0; i < 3; i++) {
    char sql[128];
    snprintf(sql, sizeof(sql),
             "SELECT g::int8 FROM generate_series(%d, 300, 3) g ORDER BY g",
             i + 1);
    in[i] = query(ctx[i], sql);
  }
  static const pqs_sort_key_t key = {.col = 0};
  pqs_merge_opts_t mo = {.mode = PQS_MERGE_ORDERED, .keys = &key, .nkeys = 1};
  pqs_stream_t *m;
  int rc = pqs_merge(in, 3, &mo, &m);
  if (rc != 0)
    failed("merge", rc, NULL);
  run_t r = {0};
  run(loop, m, &r);
  if (r.status != 0)
    failed("merged", r.status, NULL);
  if (r.rows != 300 || r.sum != 45150)
    broken("a merge that succeeded with rows missing", 0);
  printf("merged %llu rows, sum %lld\n", (unsigned long long)r.rows,
         (long long)r.sum);
  for (int i = 0; i < 3; i++)
    pqs_ctx_close(ctx[i], NULL);
  end_loop(loop);
}

/* libpq gives up the result mid-stream (every allocation fails from row
 * 100 on): the stream ends with an error and its rows so far, never with
 * success. */
static void (*fail_from_now)(void);
static void (*stop_failing)(void);

static void cut_memory(void) { fail_from_now(); }

/* A batch of 50 inserts, in an explicit transaction, into a temp table
 * (its pipeline is where libpq's allocations fail midway), then a count
 * that must say all or nothing. */
typedef struct {
  int calls, status;
} batched_t;

static void on_batched(pqs_ctx_t *ctx, const pqs_batch_done_t *done,
                       void *data) {
  (void)ctx;
  batched_t *b = data;
  b->calls++;
  b->status = done->status;
}

static void batch(void) {
  uv_loop_t *loop = new_loop();
  pqs_ctx_t *ctx = open_ctx(loop);
  run_t t = {0};
  run(loop,
      query(ctx, "CREATE TEMP TABLE oom_b (x int8) ON COMMIT PRESERVE "
                 "ROWS"),
      &t);
  if (t.status != 0)
    failed("create", t.status, NULL);
  pqs_batch_t *b;
  if (pqs_batch_new(&b) != 0)
    failed("batch", PQS_ENOMEM, NULL);
  for (int i = 0; i < 50; i++) {
    pqs_param_t p = pqs_p_int64(i);
    if (pqs_batch_add(b, "INSERT INTO oom_b VALUES ($1)", 1, &p) != 0)
      failed("batch", PQS_ENOMEM, NULL);
  }
  batched_t r = {0};
  pqs_batch_opts_t o = {.isolation = PQS_ISOLATION_REPEATABLE_READ};
  int rc = pqs_batch_run(ctx, b, &o, on_batched, &r);
  if (rc != 0)
    failed("batch", rc, NULL);
  while (r.calls == 0 && uv_run(loop, UV_RUN_ONCE))
    ;
  if (r.calls != 1)
    broken("the batch did not call back exactly once", r.calls);
  pqs_batch_free(b);
  if (r.status != 0)
    failed("batch", r.status, NULL);
  run_t c = {0};
  run(loop, query(ctx, "SELECT count(*)::int8 FROM oom_b"), &c);
  if (c.status != 0)
    failed("count", c.status, NULL);
  if (c.sum != 50)
    broken("a batch reported as done that is not all there", 0);
  printf("batch of 50: %lld rows\n", (long long)c.sum);
  pqs_ctx_close(ctx, NULL);
  end_loop(loop);
}

static void abandon(void) {
  fail_from_now = (void (*)(void))dlsym(RTLD_DEFAULT, "pqs_oom_fail_from_now");
  stop_failing = (void (*)(void))dlsym(RTLD_DEFAULT, "pqs_oom_stop_failing");
  if (fail_from_now == NULL || stop_failing == NULL) {
    fprintf(stderr, "abandon needs tests/support/oomshim.so preloaded\n");
    exit(2);
  }
  uv_loop_t *loop = new_loop();
  pqs_ctx_t *ctx = open_ctx(loop);
  run_t r = {.at_100 = cut_memory};
  run(loop, query(ctx, "SELECT g::int8 FROM generate_series(1, 100000) g"), &r);
  stop_failing();
  if (r.status == 0)
    broken("a result libpq abandoned was reported as success", 0);
  if (r.rows < 100)
    broken("rows delivered before the failure were lost", r.status);
  printf("ended with %s after %llu rows: %s\n", pqs_err_name(r.status),
         (unsigned long long)r.rows, r.message);
  pqs_ctx_close(ctx, NULL);
  end_loop(loop);
}

/* ---- COPY FROM: a load the scenario puts, then a stream piped in ---- */

typedef struct {
  int calls, status;
  uint64_t rows;
  pqs_side_t side;
  char message[256];
} loaded_t;

static void on_loaded(pqs_copy_in_t *ci, const pqs_done_t *done, void *data) {
  (void)ci;
  loaded_t *l = data;
  l->calls++;
  l->status = done->status;
  l->rows = done->rows;
  if (done->error)
    snprintf(l->message, sizeof(l->message), "%s", done->error->message);
}

static void on_piped(pqs_into_t *in, const pqs_done_t *done, pqs_side_t side,
                     void *data) {
  loaded_t *l = data;
  l->side = side;
  on_loaded(NULL, done, data);
  (void)in;
}

/* What the table holds must be all of a load that succeeded, and none of
 * one that failed. */
static void check_table(uv_loop_t *loop, pqs_ctx_t *ctx, const loaded_t *l,
                        int64_t want_sum, const char *what) {
  run_t c = {0};
  run(loop, query(ctx, "SELECT coalesce(sum(x), 0)::int8 FROM oom_c"), &c);
  if (c.status != 0)
    failed("sum", c.status, NULL);
  if (l->status == 0 && c.sum != want_sum)
    broken("a load reported as done that is not all there", 0);
  if (l->status != 0 && c.sum != 0 &&
      strstr(l->message, "whether it committed is unknown") == NULL)
    broken("a load that failed left rows behind", l->status);
  if (l->status != 0)
    failed(what, l->status, NULL);
}

static void copy_in(void) {
  uv_loop_t *loop = new_loop();
  pqs_ctx_t *ctx = open_ctx(loop), *src = open_ctx(loop);
  run_t t = {0};
  run(loop, query(ctx, "CREATE TEMP TABLE oom_c (x int8)"), &t);
  if (t.status != 0)
    failed("create", t.status, NULL);
  loaded_t l = {0};
  pqs_copy_in_t *ci;
  pqs_copy_in_cbs_t cbs = {.on_done = on_loaded};
  int rc = pqs_copy_in(ctx, &ci, "oom_c", NULL, &cbs, &l);
  if (rc != 0)
    failed("copy in", rc, NULL);
  char line[32];
  for (int i = 1; i <= 300 && rc >= 0; i++) {
    snprintf(line, sizeof(line), "%d\n", i);
    rc = pqs_copy_in_put(ci, line, strlen(line));
  }
  if (rc >= 0)
    pqs_copy_in_end(ci);
  else if (pqs_copy_in_abort(ci) != 0)
    broken("a load that could not take a line could not be aborted", rc);
  while (l.calls == 0 && uv_run(loop, UV_RUN_ONCE))
    ;
  if (l.calls != 1)
    broken("a load did not call back exactly once", l.calls);
  check_table(loop, ctx, &l, 300 * 301 / 2, "copy in");
  run_t u = {0};
  run(loop, query(ctx, "TRUNCATE oom_c"), &u);
  if (u.status != 0)
    failed("truncate", u.status, NULL);
  loaded_t p = {0};
  pqs_stream_t *s = query(src, "SELECT g::int8 FROM generate_series(1, 300) g");
  rc = pqs_stream_into(s, ctx, "oom_c", NULL, on_piped, &p, NULL);
  if (rc != 0)
    failed("into", rc, NULL);
  while (p.calls == 0 && uv_run(loop, UV_RUN_ONCE))
    ;
  if (p.calls != 1)
    broken("a pipe did not call back exactly once", p.calls);
  check_table(loop, ctx, &p, 300 * 301 / 2, "into");
  printf("loaded 300 rows, then piped %llu\n", (unsigned long long)p.rows);
  pqs_ctx_close(ctx, NULL);
  pqs_ctx_close(src, NULL);
  end_loop(loop);
}


/* ---- a change stream (conninfo: a replication connection) ---- */

typedef struct {
  int calls, status, rows;
  char message[256];
} changes_t;

static int on_change(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  changes_t *c = data;
  const char *t[5];
  static const int cols[5] = {4, 6, 7, 8, 9}; /* op table new old unchanged */
  for (int i = 0; i < 5; i++) {
    int rc = pqs_row_get_text(row, cols[i], &t[i], NULL);
    if (rc == PQS_ENOMEM)
      return rc;
    if (rc == PQS_ENULL)
      t[i] = NULL;
    else if (rc != 0)
      broken("a change row's column cannot be read", rc);
  }
  printf("%s %s %s %s %s\n", t[0], t[1], t[2] ? t[2] : "NULL",
         t[3] ? t[3] : "NULL", t[4]);
  return ++c->rows == 121 ? PQS_STOP : PQS_CONTINUE;
}

static void on_changes_done(pqs_stream_t *s, const pqs_done_t *done,
                            void *data) {
  (void)s;
  changes_t *c = data;
  c->calls++;
  c->status = done->status;
  if (done->error)
    snprintf(c->message, sizeof(c->message), "%s", done->error->message);
}

/* The 121 changes the harness made (inserts, updates, deletes and a
 * truncate of the table oom_chg), then a stop: ECANCELED is its success. */
static void changes(void) {
  uv_loop_t *loop = new_loop();
  pqs_ctx_t *ctx = open_ctx(loop);
  static const char *const pubs[] = {"oom_pub"};
  pqs_changes_opts_t o = {.slot = "oom_lslot", .publications = pubs,
                          .npublications = 1, .status_interval_ms = 100};
  pqs_stream_t *s;
  int rc = pqs_changes(ctx, &s, &o);
  if (rc != 0)
    failed("changes", rc, NULL);
  changes_t c = {0};
  pqs_stream_cbs_t cbs = {.on_row = on_change, .on_done = on_changes_done};
  if ((rc = pqs_stream_start(s, &cbs, &c)) != 0)
    failed("start", rc, NULL);
  while (c.calls == 0 && uv_run(loop, UV_RUN_ONCE))
    ;
  if (c.calls != 1)
    broken("a change stream did not end with exactly one on_done", c.calls);
  if (c.status == 0)
    broken("a change stream stopped by its consumer reported success", 0);
  if (c.status != PQS_ECANCELED || c.rows != 121) {
    fprintf(stderr, "changes: %s after %d rows: %s\n",
            pqs_err_name(c.status), c.rows, c.message);
    exit(1);
  }
  pqs_ctx_close(ctx, NULL);
  end_loop(loop);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr,
            "usage: %s lib|lib-copy|lib-binary|batch|pipeline|copy-in|factory|"
            "merge|"
            "abandon|changes "
            "CONNINFO\n",
            argv[0]);
    return 2;
  }
  conninfo = argv[2];
  if (strcmp(argv[1], "lib") == 0)
    lib();
  else if (strcmp(argv[1], "lib-copy") == 0)
    source = PQS_SOURCE_COPY, lib();
  else if (strcmp(argv[1], "lib-binary") == 0)
    source = PQS_SOURCE_COPY, format = PQS_RESULT_BINARY, lib();
  else if (strcmp(argv[1], "factory") == 0)
    factory();
  else if (strcmp(argv[1], "merge") == 0)
    merge();
  else if (strcmp(argv[1], "batch") == 0)
    batch();
  else if (strcmp(argv[1], "pipeline") == 0)
    pipeline();
  else if (strcmp(argv[1], "copy-in") == 0)
    copy_in();
  else if (strcmp(argv[1], "abandon") == 0)
    abandon();
  else if (strcmp(argv[1], "changes") == 0)
    changes();
  else
    return 2;
  return 0;
}
