/* stream_demo: the first program to read.
 *
 * Opens a context, streams one customer's orders with a parameter, pausing
 * now and then as a slow consumer would, and shows the one rule pqstream
 * enforces: a second query on a busy context is refused at once.
 *
 *   stream_demo "host=... dbname=..."   (or libpq's PG* environment)
 */
#include <pqstream.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  uv_timer_t resume;
  pqs_stream_t *stream;
  long rows;
  double total;
  int status;
} demo_t;

static void on_resume(uv_timer_t *t) {
  demo_t *d = t->data;
  pqs_stream_resume(d->stream);
}

static int on_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  demo_t *d = data;
  int64_t id;
  pqs_row_int64(row, 0, &id);
  const char *amount = pqs_row_text(row, 1, NULL); /* numeric: keep text */
  const char *note = pqs_row_text(row, 2, NULL);
  d->total += atof(amount);
  if (d->rows++ < 5)
    printf("  order %-6lld amount %8s  note %s\n", (long long)id, amount,
           note ? note : "(null)");
  if (d->rows % 50 == 0) { /* a slow consumer: pause, resume in 10 ms */
    d->stream = s;
    uv_timer_start(&d->resume, on_resume, 10, 0);
    return PQS_PAUSE;
  }
  return PQS_CONTINUE;
}

/* Ends the demo: every handle closed, so uv_run returns. */
static void finish(demo_t *d, pqs_ctx_t *ctx, int status) {
  d->status = status;
  uv_close((uv_handle_t *)&d->resume, NULL);
  pqs_ctx_close(ctx, NULL);
}

static void on_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  demo_t *d = data;
  if (done->status == 0)
    printf("  ... %llu rows (%s), total amount %.2f\n",
           (unsigned long long)done->rows, done->command_tag, d->total);
  else
    fprintf(stderr, "stream failed: %s: %s\n", pqs_err_name(done->status),
            done->error ? done->error->message : pqs_strerror(done->status));
  finish(d, pqs_stream_ctx(s), done->status);
}

static void on_open(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                    void *data) {
  demo_t *d = data;
  if (status != 0) {
    fprintf(stderr, "connect failed: %s\n", err ? err->message : "");
    finish(d, ctx, status);
    return;
  }
  printf("connected (backend pid %d)\n", pqs_ctx_backend_pid(ctx));
  const char *params[] = {"42"};
  pqs_stream_t *s;
  int rc = pqs_query(ctx, &s,
                     "SELECT id, amount, note FROM orders "
                     "WHERE customer = $1 ORDER BY id",
                     1, params, NULL);
  if (rc != 0) {
    fprintf(stderr, "query: %s\n", pqs_strerror(rc));
    finish(d, ctx, rc);
    return;
  }
  /* The trap pqstream closes: a second operation on the same context. */
  pqs_stream_t *second;
  rc = pqs_query(ctx, &second, "SELECT count(*) FROM orders", 0, NULL, NULL);
  printf("second query on the same context: %s\n  (%s)\n", pqs_err_name(rc),
         pqs_strerror(rc));
  printf("orders of customer 42:\n");
  pqs_stream_cbs_t cbs = {.on_row = on_row, .on_done = on_done};
  pqs_stream_start(s, &cbs, d);
}

int main(int argc, char **argv) {
  const char *conninfo = argc > 1 ? argv[1] : "";
  uv_loop_t *loop = uv_default_loop();
  demo_t d = {0};
  uv_timer_init(loop, &d.resume);
  d.resume.data = &d;
  pqs_ctx_t *ctx;
  int rc = pqs_ctx_open(&ctx, loop, conninfo, NULL, on_open, &d);
  if (rc != 0) {
    fprintf(stderr, "open: %s\n", pqs_strerror(rc));
    return 1;
  }
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
  return d.status == 0 ? 0 : 1;
}
