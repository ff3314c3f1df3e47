/* The context: one connection on one loop, one operation at a time. */
#ifndef PQS_CTX_INT_H
#define PQS_CTX_INT_H

#include <libpq-fe.h>
#include <sys/types.h>

#include "pqstream.h"
#include "row_int.h"
#include "source.h"

/* Context states and the transitions between them (one function each, in
 * ctx.c and query.c):
 *
 *   CONNECTING --connected()--> READY <--op_finish()-- BUSY
 *       |                         |  ---op_begin()--->  |
 *   connect_failed()              |                     | op_finish(), lost
 *       v                         v                     v
 *     BROKEN <------------------------------------------+
 *
 *   any state --pqs_ctx_close()--> CLOSING --all handles closed--> freed
 */
typedef enum {
  PQS__CTX_CONNECTING,
  PQS__CTX_READY,
  PQS__CTX_BUSY,
  PQS__CTX_BROKEN,
  PQS__CTX_CLOSING
} pqs__ctx_state_t;

/* Operation states:
 *
 *   NEW --start--> RUNNING <--pause/resume--> PAUSED
 *                     |                         |
 *                     +--stop/timeout/error-----+--> STOPPING
 *   RUNNING/STOPPING --PQgetResult() NULL and no cancel in flight--> ended
 *
 * STOPPING drops what still arrives until the server ends the query. */
typedef enum {
  PQS__OP_NEW,
  PQS__OP_RUNNING,
  PQS__OP_PAUSED,
  PQS__OP_STOPPING,
  PQS__OP_ABANDONED /* the context is closing under it */
} pqs__op_state_t;

typedef struct pqs__op_s {
  pqs_ctx_t *ctx;
  pqs__op_state_t state;
  int started;
  int single_row;
  unsigned timeout_ms;
  const char *sql;
  int nparams;
  const char *const *params;
  const pqs__sink_vt_t *sink_vt;
  void *sink;
  pqs__schema_t *schema;
  uint64_t rows;
  int stop_reason; /* first reason to stop early, 0 if none */
  int fail_status; /* a send that failed before reaching the server */
  int lost;        /* the connection died; libpq will not block any more */
  int flushing;    /* the query is not all sent yet */
  int ended;       /* results done, waiting for the cancel to return */
  char *tag;
  uint64_t affected;
  pqs_error_t err;
  char *err_strings;
  int has_err;
} pqs__op_t;

/* The poll handle watches a dup() of libpq's socket, so that libpq closing
 * its descriptor (connection lost, or a retry during connect) can never
 * leave a closed or reused descriptor inside the loop's epoll set. */
typedef struct pqs__io_s {
  uv_poll_t handle;
  int fd;
  ino_t ino; /* identity of the socket, to notice libpq replacing it */
  int events;
  pqs_ctx_t *ctx;
} pqs__io_t;

struct pqs_ctx_s {
  void *data;
  uv_loop_t *loop;
  uv_thread_t thread;
  PGconn *conn;
  pqs__ctx_state_t state;
  pqs_ctx_opts_t opts;
  pqs__io_t *io;
  uv_timer_t timer; /* connect timeout, then each query's timeout */
  uv_timer_t defer; /* runs work on the next loop turn: never re-enter */
  int open_pending; /* the open callback has not run yet */
  pqs_open_cb open_cb;
  void *open_data;
  pqs_close_cb close_cb;
  int handles; /* handles not yet through their close callback */
  pqs__op_t *op;
  struct pqs__lease_s *lease;   /* set for a context from a factory */
  int keep_conn;                /* give the connection back, do not close it */
  int recycling;                /* resetting it for the pool: 1, then 2 */
  PQnoticeReceiver prev_notice; /* restored when the connection leaves */
  uv_work_t cancel_work;
  PGcancel *cancel;
  int cancel_pending;
  char cancel_err[256];
};

/* ctx.c */
int pqs__ctx_on_thread(const pqs_ctx_t *ctx);
void pqs__ctx_defer(pqs_ctx_t *ctx);
void pqs__ctx_connect_step(pqs_ctx_t *ctx);
void pqs__ctx_maybe_free(pqs_ctx_t *ctx);
void pqs__ctx_close_now(pqs_ctx_t *ctx, pqs_close_cb cb);
/* An error struct over a libpq message: trimmed, password removed. The
 * strings are stored in *store (one allocation the caller frees). */
int pqs__error_from_conn(PGconn *conn, pqs_error_t *err, char **store);

/* io.c */
int pqs__io_attach(pqs_ctx_t *ctx);
void pqs__io_watch(pqs_ctx_t *ctx, int events);
void pqs__io_detach(pqs_ctx_t *ctx);

/* query.c */
int pqs__op_begin(pqs_ctx_t *ctx, const char *sql, int nparams,
                  const char *const *params, const pqs_query_opts_t *opts,
                  int single_row, pqs__op_t **out);
extern const pqs__source_vt_t pqs__op_source;
void pqs__op_bind(pqs__op_t *op, const pqs__sink_vt_t *vt, void *sink);
void pqs__op_io(pqs_ctx_t *ctx, int status, int events);
void pqs__op_kick(pqs_ctx_t *ctx);
void pqs__op_abandon(pqs_ctx_t *ctx);
void pqs__op_end_abandoned(pqs_ctx_t *ctx);
void pqs__op_maybe_finish(pqs_ctx_t *ctx);

/* cancel.c */
void pqs__cancel_request(pqs_ctx_t *ctx);

#endif
