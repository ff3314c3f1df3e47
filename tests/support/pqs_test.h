/* Helpers shared by the Check suites. Every suite runs against the real
 * server that tests/pg.sh started; PQS_TEST_CONNINFO names it. */
#ifndef PQS_TEST_H
#define PQS_TEST_H

#include <check.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "pqstream.h"

/* What one completion said, recorded by pt_on_done / pt_on_exec. */
typedef struct pt_done_s {
  int calls;
  int status;
  uint64_t rows;
  uint64_t affected;
  char tag[64];
  char sqlstate[6];
  char message[512];
} pt_done_t;

/* Connection string of the test server; fails the test if unset. */
const char *pt_conninfo(void);

/* A new loop (owned; pt_loop_free checks it closes cleanly). */
uv_loop_t *pt_loop_new(void);
void pt_loop_free(uv_loop_t *loop);

/* What an open callback said, recorded by pt_on_open. */
typedef struct pt_opened_s {
  int calls, status;
  pqs_ctx_t *ctx;
  char msg[512];
} pt_opened_t;
void pt_on_open(pqs_ctx_t *ctx, int status, const pqs_error_t *err, void *data);

/* The row source the suites run over: PQS_TEST_SOURCE=copy or single-row
 * (the default). Contexts from pt_open and the suites' factories use it as
 * their default, so one list of tests runs over both sources. */
pqs_source_t pt_source(void);
int pt_copy(void); /* 1 when the suites run over the COPY source */
/* PQS_TEST_SOURCE=pipeline: the stage and sink suites' streams are the
 * second of a pipeline (pt_stream); contexts use the single-row source. */
int pt_pipelined(void);
/* pqs_query; pipelined: a pipeline of "SELECT 1" (rows dropped) and
 * `sql`, whose stream is *out, sent once the test starts it. */
int pt_stream(pqs_ctx_t *ctx, pqs_stream_t **out, const char *sql,
              int nparams, const char *const *params,
              const pqs_query_opts_t *opts);
/* The result format likewise: PQS_TEST_FORMAT=binary or text (the
 * default), the default of pt_open's contexts and the suites' factories. */
pqs_result_format_t pt_format(void);
int pt_binary(void); /* 1 when the suites run over binary results */

/* The stop grace of the suites' contexts and factories. A stopped query's
 * connection is reusable once what the sockets already hold is drained:
 * a few hundred thousand rows of a big result, which took over the
 * library's default 5 s under a sanitizer on a busy two-core CI
 * machine, and the connection was given up. The tests about the grace
 * set their own. */
#define PT_GRACE_MS 30000

/* What every suite's context and factory options start from, in a
 * designated initializer: the suites' source and format, and PT_GRACE_MS. */
#define PT_SUITE_OPTS                                                          \
  .source = pt_source(), .result_format = pt_format(),                         \
  .cancel_grace_ms = PT_GRACE_MS

/* Opens a context (its default source pt_source()) and runs the loop
 * until it is connected. */
pqs_ctx_t *pt_open(uv_loop_t *loop, const char *conninfo);
/* Closes it and runs the loop until its close callback has run. */
void pt_close(uv_loop_t *loop, pqs_ctx_t *ctx);

/* Record a completion into the pt_done_t passed as data. */
void pt_record(pt_done_t *d, const pqs_done_t *done);
void pt_on_done(pqs_stream_t *s, const pqs_done_t *done, void *data);
void pt_on_exec(pqs_ctx_t *ctx, const pqs_done_t *done, void *data);

/* pqs_query that must succeed: the unstarted stream. */
pqs_stream_t *pt_query(pqs_ctx_t *ctx, const char *sql,
                       const pqs_query_opts_t *opts);
/* Starts `s` with `cbs` and `data` and runs the loop until the stream's
 * on_done has recorded into *done; fails unless it did so exactly once. */
void pt_stream_wait(uv_loop_t *loop, pqs_stream_t *s,
                    const pqs_stream_cbs_t *cbs, void *data,
                    const pt_done_t *done);

/* Runs `sql` on `ctx` as a command and waits for it; returns its status. */
int pt_exec_wait(uv_loop_t *loop, pqs_ctx_t *ctx, const char *sql);

/* A blocking admin connection (plain libpq) for setting up and checking. */
PGconn *pt_admin(void);
void pt_sql(PGconn *conn, const char *sql);
/* First value of the first row, as a malloc'd string ("" for NULL). */
char *pt_scalar(PGconn *conn, const char *sql);
long long pt_scalar_ll(PGconn *conn, const char *sql);
/* state of a backend in pg_stat_activity ("idle", "active" ...), malloc'd. */
char *pt_backend_state(PGconn *admin, int pid);
/* Waits up to `seconds` for the backend to be idle; 1 if it became so. */
int pt_wait_idle(PGconn *admin, int pid, double seconds);
/* Fails the test unless backend `pid` is idle within 5 seconds: its query
 * really ended on the server. */
void pt_assert_idle(int pid);

/* Runs every test of `s` and returns the exit status for main(). */
int pt_run(Suite *s);

/* The table "awkward": every awkward value we could think of. */
extern const char *pt_awkward_sql;
/* What the server's COPY (sql) TO STDOUT options writes (malloc'd). */
char *pt_server_copy(PGconn *admin, const char *sql, const char *options,
                     size_t *len);
/* Fails the test, showing where, unless the two byte strings are equal. */
void pt_assert_same_bytes(const char *what, const char *want, size_t want_len,
                          const char *got, size_t got_len);
/* Each JSON line of `data` equals row_to_json of the awkward row with its
 * id, compared by the server as jsonb. Returns the number of lines. */
int pt_assert_like_row_to_json(PGconn *admin, const char *data, size_t len);

/* Runs the exact-types corpus (tests/corpus.sql, at `path`) on `conn`:
 * the schema corpus, every built-in type with its edge values. */
void pt_load_corpus(PGconn *conn, const char *path);

double pt_now(void);
long pt_rss_kb(void);

#endif
