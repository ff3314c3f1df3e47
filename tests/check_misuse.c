/* The misuse matrix: every call that starts an operation, on a context in
 * each state a user can reach, returns what the header says, whatever
 * the timing:
 *
 *   state                  query (and a user's COPY TO), exec,
 *                          describe, listen, batch, tx, copy_in,      close
 *                          pipeline
 *   RESOLVING              PQS_EBUSY                                   0
 *   CONNECTING             PQS_EBUSY                                   0
 *   READY                  0 (the operation runs)                      0
 *   BUSY (stream not yet   PQS_EBUSY                                   0
 *     started, or running)
 *   BROKEN                 PQS_EBROKEN                                 0
 *   CLOSING                PQS_ESTATE PQS_ESTATE
 *
 * and the stream's own calls in each of its states, a transaction's end
 * twice, and the factory freed with a context out and a request cancelled
 * twice. Then the objects made of streams:
 *
 *   object, state                  call                          answer
 *   sink, writing                  start, sink, merge, stages    PQS_ESTATE
 *                                  pause, resume, close          0
 *   merge or gather input, held    start, pause, resume, close,  PQS_ESTATE
 *     (from pqs_merge/pqs_gather)  stages, sink, merge, gather
 *   merged stream                  as any stream, state by state
 *   a merge or gather refused      its inputs                    the caller's
 *                                                                 as before
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>

#include "pqs_test.h"

typedef struct {
  int calls;
} count_t;

static void on_exec(pqs_ctx_t *ctx, const pqs_done_t *done, void *data) {
  (void)ctx, (void)done;
  ((count_t *)data)->calls++;
}

static void on_describe(pqs_ctx_t *ctx, int status, const pqs_row_t *columns,
                        const pqs_error_t *error, void *data) {
  (void)ctx, (void)status, (void)columns, (void)error;
  ((count_t *)data)->calls++;
}

static void on_batch(pqs_ctx_t *ctx, const pqs_batch_done_t *done, void *data) {
  (void)ctx, (void)done;
  ((count_t *)data)->calls++;
}

static void tx_body(pqs_tx_t *tx, pqs_ctx_t *ctx, unsigned attempt,
                    void *data) {
  (void)ctx, (void)attempt, (void)data;
  ck_assert_int_eq(pqs_tx_end(tx, 0, NULL), 0);
  /* The attempt is over: ending it again is the caller's mistake. */
  ck_assert_int_eq(pqs_tx_end(tx, 0, NULL), PQS_ESTATE);
}

static void on_tx(pqs_ctx_t *ctx, const pqs_tx_done_t *done, void *data) {
  (void)ctx, (void)done;
  ((count_t *)data)->calls++;
}

static void on_stream_done(pqs_stream_t *s, const pqs_done_t *done,
                           void *data) {
  (void)s, (void)done;
  ((count_t *)data)->calls++;
}

static void on_loaded(pqs_copy_in_t *ci, const pqs_done_t *done,
                      void *data) {
  (void)ci, (void)done;
  ((count_t *)data)->calls++;
}

enum {
  Q,
  EXEC,
  DESCRIBE,
  LISTEN,
  BATCH,
  TX,
  COPY_IN,
  COPY_TO,
  PIPELINE,
  NCALLS
};
static const char *const names[NCALLS] = {
    "pqs_query",     "pqs_exec",   "pqs_describe",        "pqs_listen",
    "pqs_batch_run", "pqs_tx_run", "pqs_copy_in",         "pqs_query (COPY TO)",
    "pqs_pipeline"};

/* Calls `which` on ctx. A started operation is run to its end (or, for a
 * stream, closed unstarted) on `loop` before returning. */
static int call(uv_loop_t *loop, pqs_ctx_t *ctx, int which,
                pqs_batch_t *batch) {
  static const char *const channel[] = {"misuse"};
  count_t c = {0};
  pqs_stream_t *s = NULL;
  int rc;
  switch (which) {
  case Q:
    rc = pqs_query(ctx, &s, "SELECT 1", 0, NULL, NULL);
    break;
  case COPY_TO: /* the user's COPY, its own kind */
    rc = pqs_query(ctx, &s, "COPY (SELECT 1) TO STDOUT", 0, NULL, NULL);
    break;
  case EXEC:
    rc = pqs_exec(ctx, "SELECT 1", 0, NULL, NULL, on_exec, &c);
    break;
  case DESCRIBE:
    rc = pqs_describe(ctx, "SELECT 1", 0, on_describe, &c);
    break;
  case LISTEN:
    rc = pqs_listen(ctx, channel, 1, &s);
    break;
  case BATCH:
    rc = pqs_batch_run(ctx, batch, NULL, on_batch, &c);
    break;
  case PIPELINE: { /* never sent: closing it frees the context */
    pqs_pipeline_t *pl;
    rc = pqs_pipeline(ctx, NULL, &pl);
    if (rc == 0)
      ck_assert_int_eq(pqs_pipeline_close(pl), 0);
    return rc;
  }
  case COPY_IN: { /* into no table: the load ends with the server's error */
    pqs_copy_in_t *ci;
    pqs_copy_in_cbs_t cbs = {.on_done = on_loaded};
    rc = pqs_copy_in(ctx, &ci, "misuse_nowhere", NULL, &cbs, &c);
    if (rc == 0)
      ck_assert_int_eq(pqs_copy_in_end(ci), 0);
    break;
  }
  default:
    rc = pqs_tx_run(ctx, NULL, tx_body, on_tx, &c);
    break;
  }
  if (rc != 0)
    return rc;
  if (s != NULL) { /* never started: closing it frees the context */
    ck_assert_int_eq(pqs_stream_close(s), 0);
    return 0;
  }
  while (c.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(c.calls, 1);
  return 0;
}

static void expect_all(uv_loop_t *loop, pqs_ctx_t *ctx, pqs_batch_t *batch,
                       int want, const char *state) {
  for (int i = 0; i < NCALLS; i++) {
    int rc = call(loop, ctx, i, batch);
    ck_assert_msg(rc == want, "%s on a context %s: %s, want %s", names[i],
                  state, pqs_strerror(rc), pqs_strerror(want));
  }
}

static pqs_batch_t *one_statement(void) {
  pqs_batch_t *b = NULL;
  ck_assert_int_eq(pqs_batch_new(&b), 0);
  ck_assert_int_eq(pqs_batch_add(b, "SELECT 1", 0, NULL), 0);
  return b;
}

START_TEST(context_states) {
  uv_loop_t *loop = pt_loop_new();
  pqs_batch_t *batch = one_statement();

  /* RESOLVING: a host name being resolved off the loop, then closed */
  char named[256];
  snprintf(named, sizeof(named), "host=localhost port=%s dbname=pqstest user=postgres",
           getenv("PQS_TEST_PORT"));
  pt_opened_t r = {0};
  pqs_ctx_t *ctx = NULL;
  ck_assert_int_eq(pqs_ctx_open(&ctx, loop, named, NULL, pt_on_open, &r), 0);
  expect_all(loop, ctx, batch, PQS_EBUSY, "resolving");
  ck_assert_int_eq(pqs_ctx_close(ctx, NULL), 0);
  expect_all(loop, ctx, batch, PQS_ESTATE, "closing while resolving");
  while (r.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(r.status == PQS_ECANCELED, "%d: %s", r.status, r.msg);

  /* CONNECTING */
  pt_opened_t o = {0};
  ck_assert_int_eq(
      pqs_ctx_open(&ctx, loop, pt_conninfo(), NULL, pt_on_open, &o), 0);
  expect_all(loop, ctx, batch, PQS_EBUSY, "connecting");
  while (o.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(o.status, 0);

  /* READY: each call runs, and the context is ready again after it */
  expect_all(loop, ctx, batch, 0, "ready");

  /* BUSY: a stream made and not started, then one running */
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT pg_sleep(30)", 0, NULL, NULL), 0);
  expect_all(loop, ctx, batch, PQS_EBUSY, "with a stream not started");
  count_t done = {0};
  pqs_stream_cbs_t cbs = {.on_done = on_stream_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &done), 0);
  uv_run(loop, UV_RUN_NOWAIT);
  expect_all(loop, ctx, batch, PQS_EBUSY, "streaming");
  pqs_stream_close(s);
  while (done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);

  /* BUSY with a load: every call refused, and the load's own calls as
   * its states allow */
  count_t loaded = {0};
  pqs_copy_in_t *ci;
  pqs_copy_in_cbs_t lcbs = {.on_done = on_loaded};
  ck_assert_int_eq(pqs_copy_in(ctx, &ci, "misuse_nowhere", NULL, &lcbs,
                               &loaded), 0);
  expect_all(loop, ctx, batch, PQS_EBUSY, "loading");
  ck_assert_int_eq(pqs_copy_in_put(ci, "no newline", 10), PQS_EINVAL);
  ck_assert_int_eq(pqs_copy_in_put(NULL, "1\n", 2), PQS_EINVAL);
  ck_assert_int_eq(pqs_copy_in_end(ci), 0);
  ck_assert_int_eq(pqs_copy_in_end(ci), PQS_ESTATE);
  ck_assert_int_eq(pqs_copy_in_put(ci, "1\n", 2), PQS_ESTATE);
  ck_assert_int_eq(pqs_copy_in_abort(ci), 0); /* not over yet */
  ck_assert_int_eq(pqs_copy_in_abort(ci), PQS_ESTATE);
  while (loaded.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(loaded.calls, 1);

  /* streaming again, for the kill below */
  done.calls = 0;
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT pg_sleep(30)", 0, NULL, NULL), 0);
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &done), 0);
  uv_run(loop, UV_RUN_NOWAIT);

  /* BROKEN: its backend killed under the running stream */
  PGconn *admin = pt_admin();
  char sql[64];
  snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)",
           pqs_ctx_backend_pid(ctx));
  pt_sql(admin, sql);
  PQfinish(admin);
  while (done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  expect_all(loop, ctx, batch, PQS_EBROKEN, "broken");

  /* CLOSING: between pqs_ctx_close and its callback */
  ck_assert_int_eq(pqs_ctx_close(ctx, NULL), 0);
  expect_all(loop, ctx, batch, PQS_ESTATE, "closing");
  ck_assert_int_eq(pqs_ctx_close(ctx, NULL), PQS_ESTATE);

  pqs_batch_free(batch);
  pt_loop_free(loop);
}
END_TEST

/* A stream's own calls in each of its states. */
START_TEST(stream_states) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(
      pqs_query(ctx, &s, "SELECT generate_series(1, 100000000)", 0, NULL, NULL),
      0);
  /* NEW */
  ck_assert_int_eq(pqs_stream_pause(s), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_resume(s), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_start(s, NULL, NULL), PQS_EINVAL);
  count_t done = {0};
  pqs_stream_cbs_t cbs = {.on_done = on_stream_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &done), 0);
  /* STARTED */
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &done), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_take(s, 1), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_pause(s), 0);
  ck_assert_int_eq(pqs_stream_pause(s), 0); /* paused already: nothing */
  ck_assert_int_eq(pqs_stream_resume(s), 0);
  ck_assert_int_eq(pqs_stream_resume(s), 0); /* running: nothing */
  /* STOPPING */
  ck_assert_int_eq(pqs_stream_close(s), 0);
  ck_assert_int_eq(pqs_stream_close(s), 0); /* ending already: nothing */
  ck_assert_int_eq(pqs_stream_resume(s), PQS_ESTATE);
  while (done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(done.calls, 1);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* A pipeline's calls, and its streams', in each state; from another
 * thread, PQS_ETHREAD. */
typedef struct {
  pqs_pipeline_t *pl;
  int query_rc, send_rc, close_rc;
} elsewhere_t;

static void pipeline_elsewhere(void *arg) {
  elsewhere_t *e = arg;
  pqs_stream_t *s;
  e->query_rc = pqs_pipeline_query(e->pl, &s, "SELECT 1", 0, NULL);
  e->send_rc = pqs_pipeline_send(e->pl);
  e->close_rc = pqs_pipeline_close(e->pl);
}

START_TEST(pipeline_states) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_stream_t *s = NULL, *t = NULL;
  ck_assert_int_eq(pqs_pipeline_query(NULL, &s, "SELECT 1", 0, NULL),
                   PQS_EINVAL);
  ck_assert_int_eq(pqs_pipeline_send(NULL), PQS_EINVAL);
  ck_assert_int_eq(pqs_pipeline_close(NULL), 0);
  pqs_pipeline_t *pl;
  ck_assert_int_eq(pqs_pipeline(ctx, NULL, &pl), 0);
  elsewhere_t e = {.pl = pl};
  uv_thread_t th;
  ck_assert_int_eq(uv_thread_create(&th, pipeline_elsewhere, &e), 0);
  ck_assert_int_eq(uv_thread_join(&th), 0);
  ck_assert_int_eq(e.query_rc, PQS_ETHREAD);
  ck_assert_int_eq(e.send_rc, PQS_ETHREAD);
  ck_assert_int_eq(e.close_rc, PQS_ETHREAD);
  ck_assert_int_eq(pqs_pipeline_send(pl), PQS_EINVAL); /* no query */
  ck_assert_int_eq(pqs_pipeline_query(pl, &s, "SELECT 1", 0, NULL), 0);
  ck_assert_int_eq(
      pqs_pipeline_query(pl, &t, "SELECT generate_series(1, 100000000)", 0,
                         NULL),
      0);
  /* a stream NEW */
  ck_assert_int_eq(pqs_stream_pause(s), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_resume(s), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_start(s, NULL, NULL), PQS_EINVAL);
  /* asked to send: it waits for its streams */
  ck_assert_int_eq(pqs_pipeline_send(pl), 0);
  ck_assert_int_eq(pqs_pipeline_send(pl), PQS_ESTATE);
  pqs_stream_t *late;
  ck_assert_int_eq(pqs_pipeline_query(pl, &late, "SELECT 1", 0, NULL),
                   PQS_ESTATE);
  count_t d1 = {0}, d2 = {0};
  pqs_stream_cbs_t cbs = {.on_done = on_stream_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &d1), 0);
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &d1), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_take(s, 1), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_start(t, &cbs, &d2), 0); /* sent */
  /* STARTED, then STOPPING */
  ck_assert_int_eq(pqs_stream_pause(t), 0);
  ck_assert_int_eq(pqs_stream_pause(t), 0);
  ck_assert_int_eq(pqs_stream_resume(t), 0);
  ck_assert_int_eq(pqs_stream_close(t), 0);
  ck_assert_int_eq(pqs_stream_close(t), 0);
  ck_assert_int_eq(pqs_stream_resume(t), PQS_ESTATE);
  ck_assert_int_eq(pqs_pipeline_close(pl), 0); /* ending already */
  while (d2.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(d1.calls, 1);
  ck_assert_int_eq(d2.calls, 1);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

static void quiet(const char *line, void *data) {
  (void)line;
  ((count_t *)data)->calls++;
}

/* The factory with a context out, and a request waiting its turn. */
START_TEST(factory_states) {
  uv_loop_t *loop = pt_loop_new();
  count_t logged = {0};
  pqs_factory_opts_t fo = {.conninfo = pt_conninfo(),
                           .max_size = 1,
                           .log = quiet,
                           .log_data = &logged};
  pqs_factory_t *f = NULL;
  ck_assert_int_eq(pqs_factory_new(&f, &fo), 0);
  pt_opened_t first = {0};
  ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, pt_on_open, &first), 0);
  while (first.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(first.status, 0);
  /* A context out: freeing frees nothing, and says what is out. */
  ck_assert_int_eq(pqs_factory_free(f), PQS_EBUSY);
  ck_assert_int_gt(logged.calls, 0);
  /* A request waiting (max_size 1), cancelled, then cancelled again. */
  pt_opened_t second = {0};
  pqs_acquire_t *req = NULL;
  ck_assert_int_eq(pqs_factory_open_ctx(f, loop, &req, pt_on_open, &second), 0);
  ck_assert_int_eq(pqs_acquire_cancel(req), 0);
  ck_assert_int_eq(pqs_acquire_cancel(req), PQS_ESTATE);
  while (second.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(second.status, PQS_ECANCELED);
  pt_close(loop, first.ctx);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  pt_loop_free(loop);
}
END_TEST

#define LONG "SELECT generate_series(1, 100000000)"

static pqs_stream_t *long_query(pqs_ctx_t *ctx) {
  pqs_stream_t *s = NULL;
  ck_assert_int_eq(pqs_query(ctx, &s, LONG, 0, NULL, NULL), 0);
  return s;
}

static int keep(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s, (void)row, (void)data;
  return 1;
}

typedef struct {
  int calls, status;
} sunk_t;

static void on_sunk(pqs_sink_t *k, const pqs_done_t *done, uint64_t bytes,
                    void *data) {
  (void)k, (void)bytes;
  sunk_t *r = data;
  r->calls++;
  r->status = done->status;
}

static void on_gathered(pqs_gather_t *g, pqs_rowset_t **sets, int n,
                        const pqs_done_t *done, void *data) {
  (void)g, (void)done;
  for (int i = 0; i < n; i++)
    pqs_rowset_free(sets[i]);
  ((count_t *)data)->calls++;
}

/* Every call a user could make on a stream someone else moves: all
 * PQS_ESTATE, and none of them changes anything. */
static void expect_held(uv_loop_t *loop, pqs_stream_t *in, pqs_stream_t *other) {
  count_t c = {0};
  pqs_stream_cbs_t cbs = {.on_done = on_stream_done};
  ck_assert_int_eq(pqs_stream_start(in, &cbs, &c), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_pause(in), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_resume(in), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_close(in), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_take(in, 1), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_filter(in, keep, NULL, NULL), PQS_ESTATE);
  int fd = open("/dev/null", O_WRONLY);
  sunk_t k = {0};
  ck_assert_int_eq(pqs_sink_fd(in, loop, fd, NULL, on_sunk, &k), PQS_ESTATE);
  close(fd);
  pqs_stream_t *pair[2] = {in, other}, *merged = NULL;
  ck_assert_int_eq(pqs_merge(pair, 2, NULL, &merged), PQS_ESTATE);
  ck_assert_int_eq(pqs_gather(pair, 2, NULL, on_gathered, &c), PQS_ESTATE);
  ck_assert_int_eq(c.calls, 0);
}

/* A sink's stream: started by the sink, so what only an unstarted stream
 * takes is refused; pausing, resuming and closing act as on any started
 * stream (closing is how a program stops a sink). */
START_TEST(sink_states) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo()),
            *ctx2 = pt_open(loop, pt_conninfo());
  pqs_stream_t *s = long_query(ctx), *other = long_query(ctx2);
  int fd = open("/dev/null", O_WRONLY);
  sunk_t k = {0}, k2 = {0};
  /* Refused: nothing changes hands, the stream is still the caller's. */
  ck_assert_int_eq(pqs_sink_fd(s, loop, fd, NULL, NULL, &k), PQS_EINVAL);
  pqs_sink_opts_t bad = {.format = (pqs_format_t)7};
  ck_assert_int_eq(pqs_sink_fd(s, loop, fd, &bad, on_sunk, &k), PQS_EINVAL);
  ck_assert_int_eq(pqs_stream_take(s, 1000), 0);
  /* Writing. */
  ck_assert_int_eq(pqs_sink_fd(s, loop, fd, NULL, on_sunk, &k), 0);
  count_t c = {0};
  pqs_stream_cbs_t cbs = {.on_done = on_stream_done};
  ck_assert_int_eq(pqs_stream_start(s, &cbs, &c), PQS_ESTATE);
  ck_assert_int_eq(pqs_sink_fd(s, loop, fd, NULL, on_sunk, &k2), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_take(s, 1), PQS_ESTATE);
  pqs_stream_t *pair[2] = {s, other}, *merged = NULL;
  ck_assert_int_eq(pqs_merge(pair, 2, NULL, &merged), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_pause(s), 0);
  ck_assert_int_eq(pqs_stream_resume(s), 0);
  while (k.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(k.status, 0); /* take(1000) ended it */
  ck_assert_int_eq(k2.calls + c.calls, 0);
  /* A second sink, stopped by closing its stream, twice. */
  ck_assert_int_eq(pqs_sink_fd(other, loop, fd, NULL, on_sunk, &k2), 0);
  ck_assert_int_eq(pqs_stream_close(other), 0);
  ck_assert_int_eq(pqs_stream_close(other), 0);
  while (k2.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(k2.status, PQS_ECANCELED);
  ck_assert_int_eq(k.calls, 1);
  close(fd);
  pt_close(loop, ctx);
  pt_close(loop, ctx2);
  pt_loop_free(loop);
}
END_TEST

/* A merge: refused, its inputs stay the caller's; made, they are held;
 * its merged stream answers as any stream does in each state. */
START_TEST(merge_states) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx[3];
  for (int i = 0; i < 3; i++)
    ctx[i] = pt_open(loop, pt_conninfo());
  pqs_stream_t *a = long_query(ctx[0]), *b = long_query(ctx[1]),
               *c = long_query(ctx[2]), *merged = NULL;
  /* Refused. */
  pqs_stream_t *same[2] = {a, a};
  ck_assert_int_eq(pqs_merge(same, 2, NULL, &merged), PQS_ESAMECTX);
  ck_assert_int_eq(pqs_merge(same, 0, NULL, &merged), PQS_EINVAL);
  pqs_merge_opts_t ordered = {.mode = PQS_MERGE_ORDERED}; /* no keys */
  pqs_stream_t *ab[2] = {a, b};
  ck_assert_int_eq(pqs_merge(ab, 2, &ordered, &merged), PQS_EINVAL);
  ck_assert_ptr_null(merged);
  count_t cdone = {0};
  pqs_stream_cbs_t cbs = {.on_done = on_stream_done};
  ck_assert_int_eq(pqs_stream_start(c, &cbs, &cdone), 0);
  pqs_stream_t *abc[3] = {a, b, c};
  ck_assert_int_eq(pqs_merge(abc, 3, NULL, &merged), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_take(a, 10), 0); /* still the caller's */
  ck_assert_int_eq(pqs_stream_close(c), 0);
  /* Made: a and b are held; the merged stream is NEW. */
  ck_assert_int_eq(pqs_merge(ab, 2, NULL, &merged), 0);
  expect_held(loop, a, b);
  expect_held(loop, b, a);
  ck_assert_int_eq(pqs_stream_pause(merged), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_resume(merged), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_take(merged, 1000000), 0);
  count_t done = {0};
  ck_assert_int_eq(pqs_stream_start(merged, &cbs, &done), 0);
  /* STARTED */
  expect_held(loop, a, b);
  ck_assert_int_eq(pqs_stream_start(merged, &cbs, &done), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_take(merged, 1), PQS_ESTATE);
  ck_assert_int_eq(pqs_stream_pause(merged), 0);
  ck_assert_int_eq(pqs_stream_resume(merged), 0);
  /* STOPPING */
  ck_assert_int_eq(pqs_stream_close(merged), 0);
  ck_assert_int_eq(pqs_stream_close(merged), 0);
  ck_assert_int_eq(pqs_stream_resume(merged), PQS_ESTATE);
  while (done.calls == 0 || cdone.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(done.calls, 1);
  /* A merged stream closed unstarted frees its inputs with it. */
  a = long_query(ctx[0]);
  b = long_query(ctx[1]);
  pqs_stream_t *again[2] = {a, b};
  ck_assert_int_eq(pqs_merge(again, 2, NULL, &merged), 0);
  ck_assert_int_eq(pqs_stream_close(merged), 0);
  for (int i = 0; i < 3; i++) {
    ck_assert(!pqs_ctx_is_busy(ctx[i]) || i == 2);
    pt_close(loop, ctx[i]);
  }
  pt_loop_free(loop);
}
END_TEST

/* A gather: refused, nothing starts; started, its inputs are held. */
START_TEST(gather_states) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo()),
            *ctx2 = pt_open(loop, pt_conninfo());
  pqs_stream_t *a = long_query(ctx), *b = long_query(ctx2);
  pqs_stream_t *ab[2] = {a, b};
  count_t got = {0};
  ck_assert_int_eq(pqs_gather(ab, 2, NULL, NULL, &got), PQS_EINVAL);
  ck_assert_int_eq(pqs_gather(ab, 0, NULL, on_gathered, &got), PQS_EINVAL);
  ck_assert_int_eq(pqs_stream_take(a, 5), 0); /* still the caller's */
  ck_assert_int_eq(pqs_stream_take(b, 5), 0);
  ck_assert_int_eq(pqs_gather(ab, 2, NULL, on_gathered, &got), 0);
  expect_held(loop, a, b);
  expect_held(loop, b, a);
  while (got.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(got.calls, 1);
  pt_close(loop, ctx);
  pt_close(loop, ctx2);
  pt_loop_free(loop);
}
END_TEST

int main(void) {
  Suite *s = suite_create("misuse");
  TCase *tc = tcase_create("misuse");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, context_states);
  tcase_add_test(tc, stream_states);
  tcase_add_test(tc, pipeline_states);
  tcase_add_test(tc, factory_states);
  tcase_add_test(tc, sink_states);
  tcase_add_test(tc, merge_states);
  tcase_add_test(tc, gather_states);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
