/* dashboard: one customer's orders, invoices and tickets, three ways.
 *
 *   1. The trap: three queries on one context. pqstream refuses the second
 *      at once with PQS_EBUSY, whose message points at the factory.
 *   2. Sequential on one context: correct, and as slow as the sum.
 *   3. Parallel, one context per query from a pqs_factory: as slow as the
 *      slowest query.
 *
 * Each query sleeps 200-300 ms on the server to stand for a heavy report.
 *
 *   dashboard "host=... dbname=..."   (tables from examples/sample.sql)
 */
#include <pqstream.h>
#include <stdio.h>
#include <stdlib.h>

static const char *queries[3] = {
    "SELECT count(*), sum(amount) FROM orders, pg_sleep(0.2) "
    "WHERE customer = $1",
    "SELECT count(*), sum(total) FROM invoices, pg_sleep(0.3) "
    "WHERE customer = $1 AND NOT paid",
    "SELECT count(*), count(*) FILTER (WHERE open) FROM tickets, "
    "pg_sleep(0.25) WHERE customer = $1"};
static const char *titles[3] = {"orders  ", "invoices", "tickets "};
static const char *customer[] = {"42"};

typedef struct {
  uv_loop_t *loop;
  pqs_factory_t *factory;
  int next;    /* sequential: the query to run next */
  int pending; /* parallel: queries not done yet */
  int failed;
  uint64_t t0;
  double seq_ms, par_ms;
  pqs_ctx_t *ctx;
} dash_t;

static double ms_since(uint64_t t0) { return (uv_hrtime() - t0) / 1e6; }

static int print_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  printf("    %s  %s rows, %s\n", titles[*(int *)data],
         pqs_row_text(row, 0, NULL),
         pqs_row_text(row, 1, NULL) ? pqs_row_text(row, 1, NULL) : "-");
  return PQS_CONTINUE;
}

static int start_query(pqs_ctx_t *ctx, int which,
                       void (*done)(pqs_stream_t *, const pqs_done_t *,
                                    void *)) {
  static int index[3] = {0, 1, 2};
  pqs_stream_t *s;
  int rc = pqs_query(ctx, &s, queries[which], 1, customer, NULL);
  if (rc != 0)
    return rc;
  pqs_stream_cbs_t cbs = {.on_row = print_row, .on_done = done};
  return pqs_stream_start(s, &cbs, &index[which]);
}

static void check(dash_t *d, const pqs_done_t *done) {
  if (done->status != 0) {
    fprintf(stderr, "query failed: %s\n",
            done->error ? done->error->message : pqs_strerror(done->status));
    d->failed = 1;
  }
}

/* ---- 3. parallel: one context per query, from the factory ---- */

static dash_t *the_dash;

static void par_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)data;
  dash_t *d = the_dash;
  check(d, done);
  pqs_ctx_close(pqs_stream_ctx(s), NULL); /* back to the pool */
  if (--d->pending == 0) {
    d->par_ms = ms_since(d->t0);
    printf("  parallel:   %4.0f ms (about the slowest query)\n", d->par_ms);
  }
}

static void on_pooled(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                      void *data) {
  int which = (int)(intptr_t)data;
  if (status != 0 || start_query(ctx, which, par_done) != 0) {
    fprintf(stderr, "factory: %s\n", err ? err->message : "query");
    the_dash->failed = 1;
    the_dash->pending--;
    if (ctx)
      pqs_ctx_close(ctx, NULL);
  }
}

static void run_parallel(dash_t *d) {
  printf("3. parallel, a context per query from a factory:\n");
  d->pending = 3;
  d->t0 = uv_hrtime();
  for (int i = 0; i < 3; i++)
    pqs_factory_open_ctx(d->factory, d->loop, NULL, on_pooled,
                         (void *)(intptr_t)i);
}

/* ---- 2. sequential: one context, one query after the other ---- */

static void seq_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)data;
  dash_t *d = the_dash;
  check(d, done);
  if (++d->next < 3) { /* the context is free again inside on_done */
    start_query(pqs_stream_ctx(s), d->next, seq_done);
    return;
  }
  d->seq_ms = ms_since(d->t0);
  printf("  sequential: %4.0f ms (the sum of the three)\n\n", d->seq_ms);
  pqs_ctx_close(pqs_stream_ctx(s), NULL);
  run_parallel(d);
}

/* ---- 1. the trap ---- */

static void trap_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)data;
  dash_t *d = the_dash;
  check(d, done);
  printf("\n2. sequential, on one context:\n");
  d->next = 0;
  d->t0 = uv_hrtime();
  start_query(pqs_stream_ctx(s), 0, seq_done);
}

static void on_open(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                    void *data) {
  dash_t *d = data;
  if (status != 0) {
    fprintf(stderr, "connect failed: %s\n", err ? err->message : "");
    d->failed = 1;
    pqs_ctx_close(ctx, NULL);
    return;
  }
  printf("1. the trap, three queries on one context at once:\n");
  start_query(ctx, 0, trap_done);
  for (int i = 1; i < 3; i++) {
    int rc = start_query(ctx, i, trap_done);
    printf("  %s query: %s: %s\n", titles[i], pqs_err_name(rc),
           pqs_strerror(rc));
    if (rc != PQS_EBUSY)
      d->failed = 1;
  }
}

int main(int argc, char **argv) {
  const char *conninfo = argc > 1 ? argv[1] : "";
  dash_t d = {.loop = uv_default_loop()};
  the_dash = &d;
  pqs_factory_opts_t fo = {.conninfo = conninfo, .max_size = 3};
  if (pqs_factory_new(&d.factory, &fo) != 0)
    return 1;
  pqs_ctx_t *ctx;
  if (pqs_ctx_open(&ctx, d.loop, conninfo, NULL, on_open, &d) != 0)
    return 1;
  uv_run(d.loop, UV_RUN_DEFAULT);
  if (!d.failed && d.par_ms > 0)
    printf("\nparallel took %.0f%% of the sequential time\n",
           100 * d.par_ms / d.seq_ms);
  int rc = pqs_factory_free(d.factory);
  uv_loop_close(d.loop);
  return d.failed || rc != 0 || d.par_ms == 0 ? 1 : 0;
}
