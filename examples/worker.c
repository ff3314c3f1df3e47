/* worker: a background worker in one event loop.
 *
 * Every second (or at once when a NOTIFY on "jobs" says work arrived) it
 * reads pending jobs through a filter and a map, and writes what it made
 * of them as one atomic batch, retried on serialization conflicts. A
 * notification with the payload "stop" ends it.
 *
 *   worker CONNINFO     (tables jobs and results: see examples/sample.sql)
 *
 * Two contexts: one listens (a listen stream holds its context for as
 * long as it runs), the other works. */
#include <pqstream.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_JOBS 100

typedef struct {
  uv_loop_t *loop;
  pqs_ctx_t *listener, *work;
  pqs_stream_t *notes;
  uv_timer_t tick;
  int busy;  /* a round is running */
  int again; /* a NOTIFY came during it: one more round after */
  int stopping;
  int rounds, done_total;
  pqs_batch_t *batch; /* the round's writes */
  int64_t ids[MAX_JOBS], lens[MAX_JOBS];
  int n;
} worker_t;

static void round_start(worker_t *w, const char *why);

/* ---- one round: read, filter, map, write ---- */

static int has_payload(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  (void)data;
  size_t len;
  return pqs_row_text(row, 1, &len) != NULL && len > 0;
}

/* (id, payload) -> (job_id, len): what the worker makes of a job. */
static int measure(pqs_stream_t *s, const pqs_row_t *in, pqs_out_t *out,
                   void *data) {
  (void)s;
  (void)data;
  size_t len;
  pqs_row_text(in, 1, &len);
  pqs_out_pass(out, 0, in, 0);
  pqs_out_set_int64(out, 1, (int64_t)len);
  return PQS_CONTINUE;
}

static int collect(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  worker_t *w = data;
  if (w->n == MAX_JOBS)
    return PQS_STOP;
  pqs_row_int64(row, 0, &w->ids[w->n]);
  pqs_row_int64(row, 1, &w->lens[w->n]);
  w->n++;
  return PQS_CONTINUE;
}

static void written(pqs_ctx_t *ctx, const pqs_batch_done_t *done, void *data) {
  (void)ctx;
  worker_t *w = data;
  if (done->status == 0) {
    w->done_total += w->n;
    printf("round %d: %d jobs done in %u attempt(s)\n", w->rounds, w->n,
           done->attempts);
  } else {
    printf("round %d: the writes failed (%s%s%s); nothing was committed\n",
           w->rounds, pqs_err_name(done->status), done->error ? ": " : "",
           done->error ? done->error->message : "");
  }
  fflush(stdout);
  pqs_batch_free(w->batch);
  w->batch = NULL;
  w->busy = 0;
  if (w->again && !w->stopping) {
    w->again = 0;
    round_start(w, "a NOTIFY came during the last round");
  }
}

static void read_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  worker_t *w = pqs_stream_get_data(s);
  (void)data;
  if (done->status != 0 || w->n == 0) {
    if (done->status != 0)
      printf("round %d: reading failed: %s\n", w->rounds,
             done->error ? done->error->message : pqs_err_name(done->status));
    w->busy = 0;
    return;
  }
  pqs_batch_new(&w->batch);
  for (int i = 0; i < w->n; i++) {
    pqs_param_t p[] = {pqs_p_int64(w->ids[i]), pqs_p_int64(w->lens[i])};
    pqs_batch_add(w->batch,
                  "INSERT INTO results (job_id, len) VALUES ($1, $2) "
                  "ON CONFLICT (job_id) DO NOTHING",
                  2, p);
    pqs_batch_add(w->batch, "UPDATE jobs SET done = true WHERE id = $1", 1, p);
  }
  pqs_batch_opts_t o = {.isolation = PQS_ISOLATION_SERIALIZABLE, .retries = 5};
  if (pqs_batch_run(w->work, w->batch, &o, written, w) != 0)
    w->busy = 0;
}

static void round_start(worker_t *w, const char *why) {
  if (w->busy) {
    w->again = 1;
    return;
  }
  pqs_stream_t *s;
  if (pqs_query(w->work, &s,
                "SELECT id, payload FROM jobs WHERE NOT done ORDER BY id "
                "LIMIT 100",
                0, NULL, NULL) != 0)
    return;
  static const pqs_column_t cols[] = {{"job_id", PQS_OID_INT8},
                                      {"len", PQS_OID_INT8}};
  pqs_stream_filter(s, has_payload, NULL, NULL);
  pqs_stream_map(s, cols, 2, measure, NULL, NULL);
  pqs_stream_tap(s, collect, w, NULL);
  pqs_stream_set_data(s, w);
  w->busy = 1;
  w->n = 0;
  w->rounds++;
  if (why != NULL) {
    printf("round %d: woken by %s\n", w->rounds, why);
    fflush(stdout);
  }
  pqs_stream_cbs_t cbs = {.on_done = read_done};
  pqs_stream_start(s, &cbs, NULL);
}

/* ---- the clock and the notifications ---- */

static void on_tick(uv_timer_t *t) { round_start(t->data, NULL); }

static int on_note(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  worker_t *w = data;
  const char *payload = pqs_row_text(row, 1, NULL);
  if (strcmp(payload, "stop") == 0) {
    w->stopping = 1;
    return PQS_STOP; /* ends the listen stream: UNLISTEN, then closes */
  }
  round_start(w, "NOTIFY");
  return PQS_CONTINUE;
}

static void closed(pqs_ctx_t *ctx, void *data) {
  (void)ctx;
  (void)data;
}

static void finish_when_idle(uv_timer_t *t) {
  worker_t *w = t->data;
  if (w->busy)
    return; /* the round in flight ends first */
  uv_timer_stop(t);
  uv_close((uv_handle_t *)t, NULL);
  printf("stopped after %d rounds, %d jobs done\n", w->rounds, w->done_total);
  pqs_ctx_close(w->work, closed);
  pqs_ctx_close(w->listener, closed);
}

static void notes_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)s;
  worker_t *w = data;
  if (!w->stopping)
    printf("listening ended: %s\n", pqs_err_name(done->status));
  w->stopping = 1;
  uv_timer_stop(&w->tick);
  uv_timer_start(&w->tick, finish_when_idle, 0, 50);
}

static int listening(pqs_stream_t *s, const pqs_row_t *cols, void *data) {
  (void)s;
  (void)cols;
  worker_t *w = data;
  printf("listening on jobs\n");
  fflush(stdout);
  uv_timer_start(&w->tick, on_tick, 0, 1000); /* a first round at once */
  return PQS_CONTINUE;
}

static void opened(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                   void *data) {
  worker_t *w = data;
  if (status != 0) {
    fprintf(stderr, "connect: %s\n", err ? err->message : "");
    exit(1);
  }
  if (ctx != w->listener)
    return;
  const char *const channels[] = {"jobs"};
  pqs_listen(ctx, channels, 1, &w->notes);
  pqs_stream_cbs_t cbs = {
      .on_columns = listening, .on_row = on_note, .on_done = notes_done};
  pqs_stream_start(w->notes, &cbs, w);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s CONNINFO\n", argv[0]);
    return 2;
  }
  worker_t w = {.loop = uv_default_loop()};
  uv_timer_init(w.loop, &w.tick);
  w.tick.data = &w;
  if (pqs_ctx_open(&w.work, w.loop, argv[1], NULL, opened, &w) != 0 ||
      pqs_ctx_open(&w.listener, w.loop, argv[1], NULL, opened, &w) != 0)
    return 1;
  uv_run(w.loop, UV_RUN_DEFAULT);
  uv_loop_close(w.loop);
  return 0;
}
