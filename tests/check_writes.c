/* Writes: typed parameters, atomic batches (one round trip, nothing
 * committed on failure, retries on conflicts). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctx_int.h" /* the connection, for libpq's protocol trace */
#include "pqs_test.h"

/* ---- typed parameters ---- */

typedef struct {
  pt_done_t done;
  char value[256];
} one_t;

static int keep_first(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  one_t *o = data;
  const char *v = pqs_row_text(row, 0, NULL);
  snprintf(o->value, sizeof(o->value), "%s", v ? v : "<NULL>");
  return PQS_CONTINUE;
}

static void one_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  pt_on_done(s, done, &((one_t *)data)->done);
}

/* The first value of `sql` run with one typed parameter, as text. */
static const char *typed_value(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql,
                               pqs_param_t p, one_t *o) {
  memset(o, 0, sizeof(*o));
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_query_typed(ctx, &s, sql, 1, &p, NULL), 0);
  pqs_stream_cbs_t cbs = {.on_row = keep_first, .on_done = one_done};
  pt_stream_wait(loop, s, &cbs, o, &o->done);
  ck_assert_msg(o->done.status == 0, "%s: %s", sql, o->done.message);
  return o->value;
}

START_TEST(typed_parameters) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  one_t o;
  ck_assert_str_eq(
      typed_value(loop, ctx, "SELECT $1", pqs_p_int64(INT64_MIN), &o),
      "-9223372036854775808");
  ck_assert_str_eq(
      typed_value(loop, ctx, "SELECT pg_typeof($1)::text", pqs_p_int64(1), &o),
      "bigint");
  ck_assert_str_eq(typed_value(loop, ctx, "SELECT $1", pqs_p_double(0.1), &o),
                   "0.1");
  ck_assert_str_eq(typed_value(loop, ctx, "SELECT $1", pqs_p_double(-0.0), &o),
                   "-0");
  ck_assert_str_eq(typed_value(loop, ctx, "SELECT $1", pqs_p_double(NAN), &o),
                   "NaN");
  ck_assert_str_eq(
      typed_value(loop, ctx, "SELECT $1", pqs_p_double(-INFINITY), &o),
      "-Infinity");
  ck_assert_str_eq(typed_value(loop, ctx, "SELECT $1", pqs_p_bool(7), &o), "t");
  ck_assert_str_eq(
      typed_value(loop, ctx, "SELECT $1::int + 1", pqs_p_text("41"), &o), "42");
  ck_assert_str_eq(
      typed_value(loop, ctx, "SELECT $1::int IS NULL", pqs_p_null(), &o), "t");
  const unsigned char raw[] = {0, 0xff, '\\', 'x', 0, '\''};
  ck_assert_str_eq(
      typed_value(loop, ctx, "SELECT $1", pqs_p_bytea(raw, sizeof(raw)), &o),
      "\\x00ff5c7800"
      "27");
  const int64_t nums[] = {1, -2, INT64_MAX};
  ck_assert_str_eq(
      typed_value(loop, ctx, "SELECT $1", pqs_p_int64_array(nums, 3), &o),
      "{1,-2,9223372036854775807}");
  ck_assert_str_eq(typed_value(loop, ctx, "SELECT cardinality($1)",
                               pqs_p_int64_array(NULL, 0), &o),
                   "0");
  /* no escaping by anyone: the server holds each element as it was */
  const char *words[] = {"a,b",         "{brace}", "quo\"te", NULL,
                         "back\\slash", "",        "NULL"};
  ck_assert_str_eq(
      typed_value(loop, ctx,
                  "SELECT $1[1] = 'a,b' AND $1[2] = '{brace}' AND "
                  "$1[3] = 'quo\"te' AND $1[4] IS NULL AND "
                  "$1[5] = E'back\\\\slash' AND $1[6] = '' AND $1[7] = 'NULL' "
                  "AND cardinality($1) = 7",
                  pqs_p_text_array(words, 7), &o),
      "t");
  /* bad ones are refused before anything is sent */
  pqs_stream_t *s;
  pqs_param_t bad = {.kind = (pqs_param_kind_t)99};
  ck_assert_int_eq(pqs_query_typed(ctx, &s, "SELECT $1", 1, &bad, NULL),
                   PQS_EINVAL);
  pqs_param_t nodata = pqs_p_bytea(NULL, 5);
  ck_assert_int_eq(pqs_query_typed(ctx, &s, "SELECT $1", 1, &nodata, NULL),
                   PQS_EINVAL);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 0);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* 10 MB of every byte value, in as binary and back byte for byte. */
typedef struct {
  pt_done_t done;
  unsigned char *got;
  size_t len;
} blob_t;

static int take_blob(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  blob_t *b = data;
  size_t len;
  ck_assert_int_eq(pqs_row_bytea(row, 0, NULL, 0, &len), PQS_ERANGE);
  b->got = malloc(len);
  ck_assert_int_eq(pqs_row_bytea(row, 0, b->got, len, &b->len), 0);
  return PQS_CONTINUE;
}

static void blob_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  pt_on_done(s, done, &((blob_t *)data)->done);
}

START_TEST(bytea_ten_megabytes) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  ck_assert_int_eq(pt_exec_wait(loop, ctx,
                                "DROP TABLE IF EXISTS blobs; CREATE TABLE "
                                "blobs (id int PRIMARY KEY, b bytea)"),
                   0);
  size_t n = 10 * 1024 * 1024;
  unsigned char *data = malloc(n);
  uint32_t x = 12345;
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245 + 12345;
    data[i] = (unsigned char)(x >> 16);
  }
  pqs_param_t p[] = {pqs_p_int64(1), pqs_p_bytea(data, n)};
  pt_done_t d = {0};
  ck_assert_int_eq(pqs_exec_typed(ctx, "INSERT INTO blobs VALUES ($1, $2)", 2,
                                  p, NULL, pt_on_exec, &d),
                   0);
  while (d.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_msg(d.status == 0, "%s", d.message);
  ck_assert_str_eq(d.tag, "INSERT 0 1");
  PGconn *admin = pt_admin();
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT length(b) FROM blobs"),
                   (long long)n);
  PQfinish(admin);
  blob_t b = {0};
  pqs_stream_t *s = pt_query(ctx, "SELECT b FROM blobs WHERE id = 1", NULL);
  pqs_stream_cbs_t cbs = {.on_row = take_blob, .on_done = blob_done};
  pt_stream_wait(loop, s, &cbs, &b, &b.done);
  ck_assert_int_eq(b.done.status, 0);
  ck_assert_uint_eq(b.len, n);
  ck_assert_msg(memcmp(b.got, data, n) == 0, "the bytes differ");
  free(b.got);
  free(data);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* ---- batches ---- */

typedef struct {
  int calls, status;
  long failed;
  unsigned attempts;
  size_t n;
  char tag0[64], tag_last[64];
  uint64_t affected_sum;
  char sqlstate[6];
  char message[256];
} ran_t;

static void on_batch(pqs_ctx_t *ctx, const pqs_batch_done_t *done, void *data) {
  (void)ctx;
  ran_t *r = data;
  r->calls++;
  r->status = done->status;
  r->failed = done->failed;
  r->attempts = done->attempts;
  r->n = done->n;
  r->sqlstate[0] = r->message[0] = '\0';
  if (done->error) {
    snprintf(r->sqlstate, sizeof(r->sqlstate), "%s",
             done->error->sqlstate ? done->error->sqlstate : "");
    snprintf(r->message, sizeof(r->message), "%s", done->error->message);
  }
  if (done->status == 0) {
    ck_assert_ptr_nonnull(done->tags);
    snprintf(r->tag0, sizeof(r->tag0), "%s", done->tags[0]);
    snprintf(r->tag_last, sizeof(r->tag_last), "%s", done->tags[done->n - 1]);
    r->affected_sum = 0;
    for (size_t i = 0; i < done->n; i++)
      r->affected_sum += done->affected[i];
  } else {
    ck_assert_ptr_null(done->tags);
  }
}

static void run_batch(uv_loop_t *loop, pqs_ctx_t *ctx, const pqs_batch_t *b,
                      const pqs_batch_opts_t *o, ran_t *r) {
  memset(r, 0, sizeof(*r));
  ck_assert_int_eq(pqs_batch_run(ctx, b, o, on_batch, r), 0);
  ck_assert_int_eq(r->calls, 0); /* never from inside the call */
  while (r->calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(r->calls, 1);
}

static int count_lines(const char *path, const char *what) {
  FILE *f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  char line[4096];
  int n = 0;
  while (fgets(line, sizeof(line), f))
    n += strstr(line, what) != NULL;
  fclose(f);
  return n;
}

START_TEST(thousand_inserts_one_round_trip) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  ck_assert_int_eq(pt_exec_wait(loop, ctx,
                                "DROP TABLE IF EXISTS items; CREATE TABLE "
                                "items (id int8 PRIMARY KEY, name text)"),
                   0);
  pqs_batch_t *b;
  ck_assert_int_eq(pqs_batch_new(&b), 0);
  for (int i = 1; i <= 1000; i++) {
    char name[32];
    snprintf(name, sizeof(name), "item '%d'", i);
    pqs_param_t p[] = {pqs_p_int64(i), pqs_p_text(name)};
    ck_assert_int_eq(
        pqs_batch_add(b, "INSERT INTO items VALUES ($1, $2)", 2, p), 0);
  }
  ck_assert_uint_eq(pqs_batch_len(b), 1000);
  /* libpq's trace of the protocol: one Sync out, one ReadyForQuery back */
  char path[] = "/tmp/pqs-trace-XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  FILE *trace = fdopen(fd, "w");
  PQtrace(ctx->conn, trace);
  ran_t r;
  run_batch(loop, ctx, b, NULL, &r);
  PQuntrace(ctx->conn);
  fclose(trace);
  ck_assert_msg(r.status == 0, "%s", r.message);
  ck_assert_uint_eq(r.n, 1000);
  ck_assert_str_eq(r.tag0, "INSERT 0 1");
  ck_assert_uint_eq(r.affected_sum, 1000);
  ck_assert_uint_eq(r.attempts, 1);
  ck_assert_int_eq(count_lines(path, "\tSync"), 1);
  ck_assert_int_eq(count_lines(path, "\tReadyForQuery"), 1);
  /* the statement cache (the default): four runs unnamed, the fifth
   * prepares it, every later one runs it by name */
  ck_assert_int_eq(count_lines(path, "\tParse\t"), 5);
  ck_assert_int_eq(count_lines(path, "\tParse\t") -
                       count_lines(path, "\tParse\t \"\""), 1);
  ck_assert_int_eq(count_lines(path, "\tBind\t"), 1000);
  unlink(path);
  PGconn *admin = pt_admin();
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM items"), 1000);
  ck_assert_int_eq(pt_scalar_ll(admin,
                                "SELECT count(*) FROM items WHERE name = "
                                "'item ''500'''"),
                   1);
  PQfinish(admin);
  /* the context is ordinary again: not in pipeline mode, free */
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1; SELECT 2"), 0);
  pqs_batch_free(b);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Statement 7 of 10 fails: nothing is committed, with or without an
 * explicit transaction, and the session is left idle. */
START_TEST(failure_commits_nothing) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  ck_assert_int_eq(pt_exec_wait(loop, ctx,
                                "DROP TABLE IF EXISTS items; CREATE TABLE "
                                "items (id int8 PRIMARY KEY, name text)"),
                   0);
  pqs_batch_t *b;
  ck_assert_int_eq(pqs_batch_new(&b), 0);
  for (int i = 1; i <= 10; i++) {
    pqs_param_t p[] = {pqs_p_int64(i == 7 ? 3 : i)}; /* 7th: a duplicate */
    ck_assert_int_eq(pqs_batch_add(b, "INSERT INTO items VALUES ($1)", 1, p),
                     0);
  }
  pqs_batch_opts_t modes[] = {
      {0},
      {.isolation = PQS_ISOLATION_SERIALIZABLE},
      {.read_only = 0, .isolation = PQS_ISOLATION_REPEATABLE_READ}};
  PGconn *admin = pt_admin();
  for (int m = 0; m < 3; m++) {
    ran_t r;
    run_batch(loop, ctx, b, &modes[m], &r);
    ck_assert_int_eq(r.status, PQS_ESQL);
    ck_assert_str_eq(r.sqlstate, "23505");
    ck_assert_int_eq(r.failed, 6);
    ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM items"), 0);
    /* idle, not inside a failed transaction: the next statement runs */
    ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
    ck_assert_int_eq(PQtransactionStatus(ctx->conn), PQTRANS_IDLE);
  }
  /* read only: a write is refused, nothing committed */
  pqs_batch_opts_t ro = {.read_only = 1};
  ran_t r;
  run_batch(loop, ctx, b, &ro, &r);
  ck_assert_int_eq(r.status, PQS_ESQL);
  ck_assert_str_eq(r.sqlstate, "25006");
  ck_assert_int_eq(r.failed, 0);
  PQfinish(admin);
  pqs_batch_free(b);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

/* Two workers, separate contexts, the same row under SERIALIZABLE: the
 * conflicts are retried and no increment is lost. */
typedef struct worker_s {
  pqs_ctx_t *ctx;
  pqs_batch_t *b;
  int left, completions, failures;
  unsigned retried;
  char why[256];
} worker_t;

static void worker_next(worker_t *w);

static void worker_done(pqs_ctx_t *ctx, const pqs_batch_done_t *done,
                        void *data) {
  (void)ctx;
  worker_t *w = data;
  w->completions++;
  w->retried += done->attempts - 1;
  if (done->status != 0) {
    w->failures++;
    snprintf(w->why, sizeof(w->why), "%s: %s", pqs_err_name(done->status),
             done->error ? done->error->message : "");
  }
  worker_next(w);
}

static void worker_next(worker_t *w) {
  if (w->left == 0)
    return;
  w->left--;
  pqs_batch_opts_t o = {
      .isolation = PQS_ISOLATION_SERIALIZABLE, .retries = 100, .backoff_ms = 1};
  ck_assert_int_eq(pqs_batch_run(w->ctx, w->b, &o, worker_done, w), 0);
}

START_TEST(serializable_retries_lose_nothing) {
  uv_loop_t *loop = pt_loop_new();
  worker_t w[2] = {{0}};
  PGconn *admin = pt_admin();
  pt_sql(admin, "DROP TABLE IF EXISTS counter; CREATE TABLE counter (id int "
                "PRIMARY KEY, n int8); INSERT INTO counter VALUES (1, 0)");
  for (int i = 0; i < 2; i++) {
    w[i].ctx = pt_open(loop, pt_conninfo());
    ck_assert_int_eq(pqs_batch_new(&w[i].b), 0);
    /* read, wait a little (the other one writes meanwhile), write */
    ck_assert_int_eq(
        pqs_batch_add(w[i].b, "SELECT n FROM counter WHERE id = 1", 0, NULL),
        0);
    ck_assert_int_eq(pqs_batch_add(w[i].b, "SELECT pg_sleep(0.005)", 0, NULL),
                     0);
    ck_assert_int_eq(pqs_batch_add(w[i].b,
                                   "UPDATE counter SET n = n + 1 WHERE id = 1",
                                   0, NULL),
                     0);
    w[i].left = 25;
  }
  worker_next(&w[0]);
  worker_next(&w[1]);
  double t0 = pt_now();
  while ((w[0].completions < 25 || w[1].completions < 25) && pt_now() - t0 < 60)
    uv_run(loop, UV_RUN_ONCE);
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(w[i].completions, 25);
    ck_assert_msg(w[i].failures == 0, "worker %d: %s", i, w[i].why);
  }
  ck_assert_msg(w[0].retried + w[1].retried > 0, "no conflict was retried");
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT n FROM counter"), 50);
  PQfinish(admin);
  for (int i = 0; i < 2; i++) {
    pqs_batch_free(w[i].b);
    pt_close(loop, w[i].ctx);
  }
  pt_loop_free(loop);
}
END_TEST

/* Without retries the conflict is reported, and the busy rule holds. */
START_TEST(batch_rules) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_batch_t *b, *empty;
  ck_assert_int_eq(pqs_batch_new(&b), 0);
  ck_assert_int_eq(pqs_batch_new(&empty), 0);
  ck_assert_int_eq(pqs_batch_add(b, "SELECT pg_sleep(0.2)", 0, NULL), 0);
  ck_assert_int_eq(pqs_batch_run(ctx, empty, NULL, on_batch, NULL), PQS_EINVAL);
  ck_assert_int_eq(pqs_batch_add(NULL, "SELECT 1", 0, NULL), PQS_EINVAL);
  ran_t r = {0};
  ck_assert_int_eq(pqs_batch_run(ctx, b, NULL, on_batch, &r), 0);
  pqs_stream_t *s;
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT 1", 0, NULL, NULL), PQS_EBUSY);
  ck_assert_int_eq(pqs_batch_run(ctx, b, NULL, on_batch, &r), PQS_EBUSY);
  while (r.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(r.status, 0);
  ck_assert_str_eq(r.tag0, "SELECT 1");
  /* a timeout ends it, with nothing left on the server */
  pqs_batch_opts_t o = {.timeout_ms = 50};
  run_batch(loop, ctx, b, &o, &r);
  ck_assert_int_eq(r.status, PQS_ETIMEDOUT);
  ck_assert_int_eq(r.failed, -1);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
  /* the context closed under a batch: one completion, ECANCELED */
  pqs_batch_t *slow;
  ck_assert_int_eq(pqs_batch_new(&slow), 0);
  ck_assert_int_eq(pt_exec_wait(loop, ctx,
                                "DROP TABLE IF EXISTS items; CREATE TABLE "
                                "items (id int8 PRIMARY KEY)"),
                   0);
  ck_assert_int_eq(pqs_batch_add(slow, "INSERT INTO items VALUES (1)", 0, NULL),
                   0);
  ck_assert_int_eq(pqs_batch_add(slow, "SELECT pg_sleep(10)", 0, NULL), 0);
  memset(&r, 0, sizeof(r));
  ck_assert_int_eq(pqs_batch_run(ctx, slow, NULL, on_batch, &r), 0);
  for (int i = 0; i < 20; i++)
    uv_run(loop, UV_RUN_NOWAIT);
  double t0 = pt_now();
  pt_close(loop, ctx);
  ck_assert_int_eq(r.calls, 1);
  ck_assert_int_eq(r.status, PQS_ECANCELED);
  ck_assert_msg(pt_now() - t0 < 5, "close took %.1f s", pt_now() - t0);
  PGconn *admin = pt_admin();
  t0 = pt_now();
  while (pt_scalar_ll(admin, "SELECT count(*) FROM pg_stat_activity WHERE "
                             "query LIKE '%pg_sleep(10)%' AND pid <> "
                             "pg_backend_pid() AND query NOT LIKE "
                             "'%pg_stat_activity%'") > 0 &&
         pt_now() - t0 < 5)
    ;
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT count(*) FROM items"), 0);
  PQfinish(admin);
  pqs_batch_free(slow);
  pqs_batch_free(b);
  pqs_batch_free(empty);
  pt_loop_free(loop);
}
END_TEST

/* ---- transactions with logic between statements ---- */

/* A read-modify-write of counter n: SELECT it, wait a little, write n + 1
 * computed here. Under SERIALIZABLE no increment may be lost. */
typedef struct txw_s {
  pqs_tx_t *tx;
  pqs_ctx_t *ctx;
  int left, completions, failures, fail_at; /* fail_at: the body errors */
  int close_in_body;
  unsigned retried;
  long long read;
  int step;
  pqs_tx_opts_t opts;
  char why[256];
  int last_status;
} txw_t;

static void txw_step(pqs_ctx_t *ctx, const pqs_done_t *done, void *data);

static int txw_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  int64_t v;
  ck_assert_int_eq(pqs_row_int64(row, 0, &v), 0);
  ((txw_t *)data)->read = v;
  return PQS_CONTINUE;
}

static void txw_read(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  txw_step(pqs_stream_ctx(s), done, data);
}

/* Each step of the body, from the previous step's completion. */
static void txw_step(pqs_ctx_t *ctx, const pqs_done_t *done, void *data) {
  txw_t *w = data;
  if (done != NULL && done->status != 0) {
    ck_assert_int_eq(pqs_tx_end(w->tx, done->status, done->error), 0);
    return;
  }
  char sql[128];
  switch (w->step++) {
  case 0: {
    pqs_stream_t *s;
    ck_assert_int_eq(pqs_query(ctx, &s,
                               "SELECT n FROM counter WHERE id = 1 FOR UPDATE",
                               0, NULL, NULL),
                     0);
    pqs_stream_cbs_t cbs = {.on_row = txw_row, .on_done = txw_read};
    ck_assert_int_eq(pqs_stream_start(s, &cbs, w), 0);
    return;
  }
  case 1:
    ck_assert_int_eq(
        pqs_exec(ctx, "SELECT pg_sleep(0.003)", 0, NULL, NULL, txw_step, w), 0);
    return;
  case 2:
    snprintf(sql, sizeof(sql), "UPDATE counter SET n = %lld WHERE id = 1",
             w->read + 1);
    ck_assert_int_eq(pqs_exec(ctx, sql, 0, NULL, NULL, txw_step, w), 0);
    return;
  case 3:
    if (w->close_in_body) {
      ck_assert_int_eq(pqs_ctx_close(ctx, NULL), 0);
      return;
    }
    if (w->fail_at && w->completions + 1 == w->fail_at) {
      ck_assert_int_eq(
          pqs_exec(ctx, "SELECT 1 / 0", 0, NULL, NULL, txw_step, w), 0);
      return;
    }
    ck_assert_int_eq(pqs_tx_end(w->tx, 0, NULL), 0);
    ck_assert_int_eq(pqs_tx_end(w->tx, 0, NULL), PQS_ESTATE);
    return;
  }
}

static void txw_body(pqs_tx_t *tx, pqs_ctx_t *ctx, unsigned attempt,
                     void *data) {
  (void)attempt;
  txw_t *w = data;
  w->tx = tx;
  w->step = 0;
  txw_step(ctx, NULL, w);
}

static void txw_next(txw_t *w);

static void txw_done(pqs_ctx_t *ctx, const pqs_tx_done_t *done, void *data) {
  (void)ctx;
  txw_t *w = data;
  w->completions++;
  w->retried += done->attempts - 1;
  w->last_status = done->status;
  if (done->status != 0) {
    w->failures++;
    snprintf(w->why, sizeof(w->why), "%s: %s", pqs_err_name(done->status),
             done->error ? done->error->message : "");
  }
  if (done->status != PQS_ECANCELED)
    txw_next(w);
}

static void txw_next(txw_t *w) {
  if (w->left == 0)
    return;
  w->left--;
  ck_assert_int_eq(pqs_tx_run(w->ctx, &w->opts, txw_body, txw_done, w), 0);
  ck_assert_int_eq(pqs_tx_run(w->ctx, &w->opts, txw_body, txw_done, w),
                   PQS_EBUSY);
}

static void counter_table(PGconn *admin) {
  pt_sql(admin, "DROP TABLE IF EXISTS counter; CREATE TABLE counter (id int "
                "PRIMARY KEY, n int8); INSERT INTO counter VALUES (1, 0)");
}

START_TEST(tx_read_decide_write) {
  uv_loop_t *loop = pt_loop_new();
  PGconn *admin = pt_admin();
  counter_table(admin);
  txw_t w[2] = {{0}};
  for (int i = 0; i < 2; i++) {
    w[i].ctx = pt_open(loop, pt_conninfo());
    w[i].left = 20;
    w[i].opts = (pqs_tx_opts_t){.isolation = PQS_ISOLATION_SERIALIZABLE,
                                .retries = 100,
                                .backoff_ms = 1};
  }
  /* the same read-modify-write without FOR UPDATE would lose updates at
   * READ COMMITTED; here FOR UPDATE and SERIALIZABLE both guard it, and
   * conflicts are retried */
  txw_next(&w[0]);
  txw_next(&w[1]);
  double t0 = pt_now();
  while ((w[0].completions < 20 || w[1].completions < 20) && pt_now() - t0 < 60)
    uv_run(loop, UV_RUN_ONCE);
  for (int i = 0; i < 2; i++) {
    ck_assert_int_eq(w[i].completions, 20);
    ck_assert_msg(w[i].failures == 0, "worker %d: %s", i, w[i].why);
  }
  ck_assert_msg(w[0].retried + w[1].retried > 0, "no conflict was retried");
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT n FROM counter"), 40);
  for (int i = 0; i < 2; i++)
    pt_close(loop, w[i].ctx);
  PQfinish(admin);
  pt_loop_free(loop);
}
END_TEST

START_TEST(tx_body_error_rolls_back) {
  uv_loop_t *loop = pt_loop_new();
  PGconn *admin = pt_admin();
  counter_table(admin);
  txw_t w = {0};
  w.ctx = pt_open(loop, pt_conninfo());
  w.left = 1;
  w.fail_at = 1;
  w.opts.retries = 3; /* a division by zero is no conflict: no retry */
  txw_next(&w);
  while (w.completions == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(w.last_status, PQS_ESQL);
  ck_assert_uint_eq(w.retried, 0);
  ck_assert_msg(strstr(w.why, "division by zero") != NULL, "%s", w.why);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT n FROM counter"), 0);
  /* the context is out of the transaction */
  ck_assert_int_eq(pt_exec_wait(loop, w.ctx, "SELECT 1"), 0);
  ck_assert_int_eq(PQtransactionStatus(w.ctx->conn), PQTRANS_IDLE);
  pt_close(loop, w.ctx);
  PQfinish(admin);
  pt_loop_free(loop);
}
END_TEST

START_TEST(tx_close_mid_transaction_rolls_back) {
  uv_loop_t *loop = pt_loop_new();
  PGconn *admin = pt_admin();
  counter_table(admin);
  txw_t w = {0};
  w.ctx = pt_open(loop, pt_conninfo());
  w.left = 1;
  w.close_in_body = 1; /* after the UPDATE, before any COMMIT */
  txw_next(&w);
  double t0 = pt_now();
  while (w.completions == 0 && pt_now() - t0 < 10)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(w.completions, 1);
  ck_assert_int_eq(w.last_status, PQS_ECANCELED);
  uv_run(loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT n FROM counter"), 0);
  /* through a factory: the pooled connection's reset rolls it back */
  pqs_factory_opts_t fo = {.conninfo = pt_conninfo(), .max_size = 1};
  pqs_factory_t *f;
  ck_assert_int_eq(pqs_factory_new(&f, &fo), 0);
  pt_opened_t o = {0};
  ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, pt_on_open, &o), 0);
  while (o.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(o.status, 0);
  memset(&w, 0, sizeof(w));
  w.ctx = o.ctx;
  w.left = 1;
  w.close_in_body = 1;
  txw_next(&w);
  while (w.completions == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(w.last_status, PQS_ECANCELED);
  uv_run(loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(pt_scalar_ll(admin, "SELECT n FROM counter"), 0);
  pt_opened_t o2 = {0};
  ck_assert_int_eq(pqs_factory_open_ctx(f, loop, NULL, pt_on_open, &o2), 0);
  while (o2.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(pt_exec_wait(loop, o2.ctx, "SELECT 1"), 0);
  ck_assert_int_eq(PQtransactionStatus(o2.ctx->conn), PQTRANS_IDLE);
  pt_close(loop, o2.ctx);
  ck_assert_int_eq(pqs_factory_free(f), 0);
  PQfinish(admin);
  pt_loop_free(loop);
}
END_TEST

/* ---- notifications ---- */

typedef struct {
  pt_done_t done;
  uv_loop_t *loop;
  pqs_stream_t *s;
  uv_timer_t timer;
  long next; /* the payload expected next */
  long count;
  int listening; /* on_columns came */
  int paused, out_of_order, pid, wrong_pid;
  char channel[64];
} heard_t;

static int heard_columns(pqs_stream_t *s, const pqs_row_t *cols, void *data) {
  (void)s;
  heard_t *h = data;
  ck_assert_int_eq(pqs_row_ncols(cols), 3);
  ck_assert_str_eq(pqs_row_name(cols, 0), "channel");
  ck_assert_str_eq(pqs_row_name(cols, 1), "payload");
  ck_assert_str_eq(pqs_row_name(cols, 2), "pid");
  ck_assert_uint_eq(pqs_row_type(cols, 2), PQS_OID_INT4);
  h->listening = 1;
  return PQS_CONTINUE;
}

static void resume_later(uv_timer_t *t) {
  heard_t *h = t->data;
  ck_assert_int_eq(pqs_stream_resume(h->s), 0);
}

static int heard_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  heard_t *h = data;
  int32_t pid;
  ck_assert_int_eq(pqs_row_int32(row, 2, &pid), 0);
  h->wrong_pid |= h->pid != 0 && pid != h->pid;
  snprintf(h->channel, sizeof(h->channel), "%s", pqs_row_text(row, 0, NULL));
  long v = atol(pqs_row_text(row, 1, NULL));
  h->out_of_order |= v != h->next;
  h->next = v + 1;
  h->count++;
  if (h->count == 30000) { /* pause in the middle for 300 ms */
    h->paused++;
    uv_timer_start(&h->timer, resume_later, 300, 0);
    return PQS_PAUSE;
  }
  (void)s;
  return PQS_CONTINUE;
}

static void heard_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  pt_on_done(s, done, &((heard_t *)data)->done);
}

static void listen_on(uv_loop_t *loop, pqs_ctx_t *ctx, heard_t *h,
                      const char *const *channels, int n) {
  memset(h, 0, sizeof(*h));
  h->loop = loop;
  h->next = 1;
  uv_timer_init(loop, &h->timer);
  h->timer.data = h;
  ck_assert_int_eq(pqs_listen(ctx, channels, n, &h->s), 0);
  pqs_stream_cbs_t cbs = {
      .on_columns = heard_columns, .on_row = heard_row, .on_done = heard_done};
  ck_assert_int_eq(pqs_stream_start(h->s, &cbs, h), 0);
  while (!h->listening && h->done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(h->listening, 1);
}

START_TEST(listen_hundred_thousand_in_order) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  heard_t h;
  const char *const channels[] = {"jobs", "Other \"one\""};
  listen_on(loop, ctx, &h, channels, 2);
  PGconn *admin = pt_admin();
  h.pid = PQbackendPID(admin);
  pt_sql(admin, "SELECT pg_notify('jobs', g::text) FROM "
                "generate_series(1, 100000) g");
  double t0 = pt_now();
  while (h.count < 100000 && pt_now() - t0 < 60)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(h.count, 100000);
  ck_assert_int_eq(h.out_of_order, 0);
  ck_assert_int_eq(h.wrong_pid, 0);
  ck_assert_int_eq(h.paused, 1);
  ck_assert_str_eq(h.channel, "jobs");
  /* the quoted name is a channel of its own, as LISTEN "..." makes it */
  h.next = 1;
  pt_sql(admin, "NOTIFY \"Other \"\"one\"\"\", '1'");
  t0 = pt_now();
  while (h.count < 100001 && pt_now() - t0 < 10)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_str_eq(h.channel, "Other \"one\"");
  /* close: UNLISTEN, ECANCELED, the context reusable and listening to
   * nothing */
  ck_assert_int_eq(pqs_stream_close(h.s), 0);
  while (h.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(h.done.status, PQS_ECANCELED);
  ck_assert_int_eq(h.done.calls, 1);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 0);
  one_t o;
  memset(&o, 0, sizeof(o));
  pqs_stream_t *s =
      pt_query(ctx, "SELECT count(*) FROM pg_listening_channels()", NULL);
  pqs_stream_cbs_t cbs = {.on_row = keep_first, .on_done = one_done};
  pt_stream_wait(loop, s, &cbs, &o, &o.done);
  ck_assert_str_eq(o.value, "0");
  uv_close((uv_handle_t *)&h.timer, NULL);
  PQfinish(admin);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(listen_ends_when_backend_killed) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  heard_t h;
  const char *const channels[] = {"jobs"};
  listen_on(loop, ctx, &h, channels, 1);
  PGconn *admin = pt_admin();
  char sql[128];
  snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)",
           pqs_ctx_backend_pid(ctx));
  pt_sql(admin, sql);
  double t0 = pt_now();
  while (h.done.calls == 0 && pt_now() - t0 < 10)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(h.done.calls, 1);
  ck_assert_int_eq(h.done.status, PQS_ECONNLOST);
  ck_assert_str_ne(h.done.message, "");
  ck_assert_int_eq(pqs_ctx_is_broken(ctx), 1);
  uv_close((uv_handle_t *)&h.timer, NULL);
  PQfinish(admin);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

START_TEST(listen_rules) {
  uv_loop_t *loop = pt_loop_new();
  pqs_ctx_t *ctx = pt_open(loop, pt_conninfo());
  pqs_stream_t *s;
  const char *const none[] = {""};
  ck_assert_int_eq(pqs_listen(ctx, NULL, 1, &s), PQS_EINVAL);
  ck_assert_int_eq(pqs_listen(ctx, none, 1, &s), PQS_EINVAL);
  ck_assert_int_eq(pqs_listen(ctx, none, 0, &s), PQS_EINVAL);
  heard_t h;
  const char *const channels[] = {"jobs"};
  listen_on(loop, ctx, &h, channels, 1);
  ck_assert_int_eq(pqs_query(ctx, &s, "SELECT 1", 0, NULL, NULL), PQS_EBUSY);
  /* a stage's STOP ends it too; a take(2) after two notifications */
  ck_assert_int_eq(pqs_stream_close(h.s), 0);
  while (h.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(h.done.status, PQS_ECANCELED);
  int closed = 0;
  h.timer.data = &closed;
  uv_close((uv_handle_t *)&h.timer, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  memset(&h, 0, sizeof(h));
  h.next = 1;
  uv_timer_init(loop, &h.timer);
  h.timer.data = &h;
  ck_assert_int_eq(pqs_listen(ctx, channels, 1, &h.s), 0);
  ck_assert_int_eq(pqs_stream_take(h.s, 2), 0);
  pqs_stream_cbs_t cbs = {
      .on_columns = heard_columns, .on_row = heard_row, .on_done = heard_done};
  ck_assert_int_eq(pqs_stream_start(h.s, &cbs, &h), 0);
  while (!h.listening)
    uv_run(loop, UV_RUN_ONCE);
  PGconn *admin = pt_admin();
  pt_sql(admin, "SELECT pg_notify('jobs', g::text) FROM "
                "generate_series(1, 5) g");
  while (h.done.calls == 0)
    uv_run(loop, UV_RUN_ONCE);
  ck_assert_int_eq(h.done.status, 0);
  ck_assert_int_eq(h.count, 2);
  ck_assert_int_eq(pqs_ctx_is_busy(ctx), 0);
  ck_assert_int_eq(pt_exec_wait(loop, ctx, "SELECT 1"), 0);
  uv_close((uv_handle_t *)&h.timer, NULL);
  PQfinish(admin);
  pt_close(loop, ctx);
  pt_loop_free(loop);
}
END_TEST

int main(void) {
  Suite *s = suite_create("writes");
  TCase *tc = tcase_create("writes");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, typed_parameters);
  tcase_add_test(tc, bytea_ten_megabytes);
  tcase_add_test(tc, thousand_inserts_one_round_trip);
  tcase_add_test(tc, failure_commits_nothing);
  tcase_add_test(tc, serializable_retries_lose_nothing);
  tcase_add_test(tc, batch_rules);
  tcase_add_test(tc, tx_read_decide_write);
  tcase_add_test(tc, tx_body_error_rolls_back);
  tcase_add_test(tc, tx_close_mid_transaction_rolls_back);
  tcase_add_test(tc, listen_hundred_thousand_in_order);
  tcase_add_test(tc, listen_ends_when_backend_killed);
  tcase_add_test(tc, listen_rules);
  suite_add_tcase(s, tc);
  return pt_run(s);
}
