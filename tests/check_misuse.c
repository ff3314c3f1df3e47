/* The misuse matrix: every call that starts an operation, on a context in
 * each state a user can reach, returns what the header says, whatever
 * the timing:
 *
 *   state                  query, exec, describe, listen, batch, tx   close
 *   CONNECTING             PQS_EBUSY                                   0
 *   READY                  0 (the operation runs)                      0
 *   BUSY (stream not yet   PQS_EBUSY                                   0
 *     started, or running)
 *   BROKEN                 PQS_EBROKEN                                 0
 *   CLOSING                PQS_ESTATE PQS_ESTATE
 *
 * and the stream's own calls in each of its states, a transaction's end
 * twice, and the factory freed with a context out and a request cancelled
 * twice. */
#include <stdio.h>
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

enum { Q, EXEC, DESCRIBE, LISTEN, BATCH, TX, NCALLS };
static const char *const names[NCALLS] = {"pqs_query",     "pqs_exec",
                                          "pqs_describe",  "pqs_listen",
                                          "pqs_batch_run", "pqs_tx_run"};

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

  /* CONNECTING */
  pt_opened_t o = {0};
  pqs_ctx_t *ctx = NULL;
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

int main(void) {
  Suite *s = suite_create("misuse");
  TCase *tc = tcase_create("misuse");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, context_states);
  tcase_add_test(tc, stream_states);
  tcase_add_test(tc, factory_states);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
