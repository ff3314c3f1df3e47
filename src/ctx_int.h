/* The context: one connection on one loop, one operation at a time. */
#ifndef PQS_CTX_INT_H
#define PQS_CTX_INT_H

#include <libpq-fe.h>
#include <sys/types.h>

#include "buf.h"
#include "copy_binary.h"
#include "owner.h"
#include "params.h"
#include "pqstream.h"
#include "row_int.h"
#include "source.h"

/* Context states and the transitions between them (one function each):
 *
 *  CONNECTING --connected()--> READY --op_begin()--> BUSY
 *      |                       ^  |  <--op_finish()--  |
 *  connect_failed()            |  |                    | op_finish(): lost,
 *      |                       |  |                    | or given up
 *      v                       |  |                    v
 *    BROKEN <------------------+--+--------------------+
 *
 *  READY, owner wants a reset --pqs_ctx_close()--> pqs__ctx_reset():
 *    RESET_ROLLBACK (a transaction was open) --ok--> RESET_DISCARD
 *    RESET_DISCARD --ok, session idle--> RELEASING
 *    either, on failure ---------------> CLOSING
 *  READY with an owner that wants no reset --pqs_ctx_close()--> RELEASING
 *  any other state --pqs_ctx_close()--> CLOSING
 *
 *  CLOSING   --handles closed--> freed, connection closed (a cancel still
 *            on its way is let go of, never waited for)
 *  RELEASING --handles closed--> freed, connection given to its owner
 *
 * A reset step runs as an ordinary operation while the context stays in
 * its RESET_* state (not BUSY), so the busy rule and the bounded-time rule
 * hold for it too: it has a timeout, and a stop's grace period. */
typedef enum {
  PQS__CTX_CONNECTING,
  PQS__CTX_READY,
  PQS__CTX_BUSY,
  PQS__CTX_BROKEN,
  PQS__CTX_RESET_ROLLBACK,
  PQS__CTX_RESET_DISCARD,
  PQS__CTX_RELEASING,
  PQS__CTX_CLOSING
} pqs__ctx_state_t;

/* Operation states (query.c, one function per arrow):
 *
 *   NEW --op_start()--> RUNNING <--op_pause() / op_resume()--> PAUSED
 *                          |                                     |
 *                          +--op_stop_with(): stop, timeout,-----+
 *                          |  error, consumer's STOP or DONE
 *                          |               v
 *                          |           STOPPING (a cancel was sent; what
 *                          |               |     still arrives is dropped)
 *                          |  results end  |  results end, a cancel is
 *                          |               |  still on the thread pool
 *                          |               v
 *                          |           DRAINED --cancel returned--+
 *                          v                                      v
 *                      op_finish(): the one completion <----------+
 *                                                                 ^
 *   STOPPING, DRAINED --the grace period is over: give_up()-------+
 *                       (connection closed, context broken)
 *
 *   NEW, RUNNING, PAUSED, STOPPING, DRAINED --context closed--> ABANDONED
 *   ABANDONED --context freed--> op_finish() with PQS_ECANCELED
 *
 *   A batch (pipeline.c) between two attempts:
 *   RUNNING --results end with 40001/40P01, retries left--> WAITING
 *   WAITING --its backoff is over: sent again--> RUNNING
 *   WAITING --stop, timeout--> op_finish() (nothing is on the server)
 *
 * Beside the state, two independent facts: `lost` (the connection died;
 * libpq will not block any more) and `flushing` (bytes of the query are
 * still to be sent). */
typedef enum {
  PQS__OP_NEW,
  PQS__OP_RUNNING,
  PQS__OP_PAUSED,
  PQS__OP_STOPPING,
  PQS__OP_DRAINED,
  PQS__OP_ABANDONED,
  PQS__OP_WAITING
} pqs__op_state_t;

/* The op's step: what it sent, and so what comes back (one function per
 * arrow: next_step, copy_started, copy_pump, start_listening,
 * stop_listening, next_batch_step):
 *   describe:   PREPARE --results end well--> DESCRIBE
 *   COPY:       PREPARE -> DESCRIBE --columns--> COPY --PGRES_COPY_OUT-->
 *               COPY_DATA (lines, not results) --their end--> COPY (its
 *               result); DESCRIBE --no columns--> PARAMS
 *   batch:      PIPELINE --a failed BEGIN left open--> ROLLBACK
 *   listen:     LISTEN --results end well--> LISTENING (notifications, no
 *               results) --stop--> UNLISTEN; --connection lost--> LISTEN
 *               (whose results, none, end it) */
typedef enum {
  PQS__SEND_SIMPLE,   /* PQsendQuery: a command, maybe several statements */
  PQS__SEND_PARAMS,   /* PQsendQueryParams: one statement, rows or not */
  PQS__SEND_PREPARE,  /* PQsendPrepare of the unnamed statement */
  PQS__SEND_DESCRIBE, /* PQsendDescribePrepared of it: its columns */
  PQS__SEND_COPY,     /* PQsendQuery of COPY (statement) TO STDOUT */
  PQS__SEND_COPY_DATA, /* its data flows: PQgetCopyData, not results */
  PQS__SEND_PIPELINE, /* a batch: its statements and a sync, pipelined */
  PQS__SEND_ROLLBACK, /* after a batch that left a failed transaction */
  PQS__SEND_LISTEN,   /* a listen stream's LISTENs */
  PQS__SEND_LISTENING, /* nothing sent: notifications flow */
  PQS__SEND_UNLISTEN  /* a listen stream stopping: UNLISTEN * */
} pqs__op_send_t;

/* A listen stream (listen.c): each notification is one row of these
 * cells. */
typedef struct pqs__listen_s {
  pqs__cell_t cells[3];
  char pid[16];
} pqs__listen_t;

typedef struct pqs__pipeline_s pqs__pipeline_t;

/* The COPY source (copy.c), as steps of one op:
 *   PREPARE --ok--> DESCRIBE --columns, and the statement qualifies--> COPY
 *                   DESCRIBE --no columns--> PARAMS (single-row mode)
 * A statement whose first word does not qualify goes to PARAMS at once.
 * In step COPY_DATA the pump reads lines instead of results. */
typedef struct pqs__copy_s {
  pqs__cell_t *cells;   /* one per column, reused row after row */
  uint32_t *param_types; /* what the server inferred for $1..$n */
  pqs__buf_t scratch;   /* a line's copy, when its bytes are also passed on */
  int lines;            /* 0, or 1 + the pqs_format_t of lines passed on */
  int split_done;       /* fact: the current line's copy is split */
  int bad_line;         /* fact: a line did not split into the columns */
  pqs__bin_state_t bin; /* binary COPY: how far its stream is read */
} pqs__copy_t;

typedef struct pqs__op_s {
  pqs_ctx_t *ctx;
  pqs__op_state_t state;
  pqs__op_send_t send;
  int single_row;
  int copy; /* the COPY source was asked for: see pqs__copy_t */
  int binary; /* results in binary (PQS_RESULT_BINARY) */
  pqs__arena_t arena; /* texts of the current binary row (pqs_row_text) */
  pqs__copy_t cp;
  pqs__listen_t ln;
  pqs__params_t *typed; /* typed parameters instead of `params`; owned */
  pqs__pipeline_t *pl;  /* a batch's run (its consumer too) */
  uint64_t retry_at;    /* WAITING: loop time to send again at */
  int nulls;            /* PIPELINE: NULL results in a row */
  unsigned timeout_ms;
  void (*on_statement)(pqs_ctx_t *, const char *, uint64_t, void *);
  void *statement_data;
  const char *sql;
  int nparams;
  const char *const *params;
  const pqs__consumer_vt_t *consumer_vt;
  void *consumer;
  pqs__schema_t *schema;
  uint64_t rows;
  uint64_t deadline; /* STOPPING, DRAINED: loop time to give up at */
  /* How it ends, besides what the server says: the first reason to end
   * early (a stop, a timeout, PQS__DONE, a send that failed, ENOMEM);
   * 0 if none. */
  int status;
  int lost;     /* fact: the connection died */
  int flushing; /* fact: the query is not all sent yet */
  int final;    /* fact: libpq gave the result that ends the query */
  char *tag;
  uint64_t affected;
  pqs_error_t err; /* err.message is NULL until something explains it */
  char *err_strings;
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

/* A cancel request on a thread of its own (cancel.c):
 *   IDLE --pqs__cancel_request()--> SENDING --the thread is done--> IDLE
 *   SENDING --pqs__cancel_let_go()--> IDLE (the thread goes on alone) */
typedef enum { PQS__CANCEL_IDLE, PQS__CANCEL_SENDING } pqs__cancel_state_t;

typedef struct pqs__cancel_job_s pqs__cancel_job_t;

typedef struct pqs__cancel_s {
  pqs__cancel_state_t state;
  pqs__cancel_job_t *job; /* while SENDING */
  uv_async_t async;       /* the thread's wake-up; unreferenced */
} pqs__cancel_t;

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
  pqs_open_cb open_cb; /* NULL once called: the open callback is owed */
  void *open_data;
  pqs_close_cb close_cb;
  int handles; /* handles not yet through their close callback */
  pqs__op_t *op;
  const pqs__owner_vt_t *owner_vt; /* NULL: the context owns conn */
  void *owner;
  PQnoticeReceiver prev_notice; /* restored when the connection leaves */
  char *secrets; /* the conninfo's passwords, masked in open errors */
  pqs__cancel_t cancel;
  pqs_tx_t *tx; /* a transaction helper running on it (tx.c) */
  struct pqs__dns_s *dns; /* CONNECTING: host names being resolved */
  char *conninfo;         /* kept while they are */
};

typedef struct pqs__dns_s pqs__dns_t;

/* ctx.c */
int pqs__ctx_on_thread(const pqs_ctx_t *ctx);
void pqs__ctx_defer(pqs_ctx_t *ctx);
void pqs__ctx_defer_ms(pqs_ctx_t *ctx, unsigned ms);
void pqs__ctx_connect_step(pqs_ctx_t *ctx);
void pqs__ctx_maybe_free(pqs_ctx_t *ctx);
/* Any state -> CLOSING, or RELEASING if `keep` (the connection goes back
 * to its owner). */
void pqs__ctx_close_now(pqs_ctx_t *ctx, int keep);
int pqs__ctx_closing(const pqs_ctx_t *ctx); /* CLOSING or RELEASING */
/* READY -> BROKEN if the session is inside a transaction (ctx.c). */
void pqs__ctx_break_in_transaction(pqs_ctx_t *ctx);

/* reset.c: READY -> RESET_* -> RELEASING | CLOSING. */
void pqs__ctx_reset(pqs_ctx_t *ctx);

/* io.c */
int pqs__io_attach(pqs_ctx_t *ctx);
void pqs__io_watch(pqs_ctx_t *ctx, int events);
void pqs__io_detach(pqs_ctx_t *ctx);

/* query.c */
/* Checks that a user's call may start an operation: 0, PQS_ETHREAD,
 * PQS_EBUSY, PQS_EBROKEN or PQS_ESTATE. */
int pqs__ctx_check_ready(const pqs_ctx_t *ctx);
/* Makes the context's operation (the caller checked it may). */
int pqs__op_begin(pqs_ctx_t *ctx, const char *sql, int nparams,
                  const char *const *params, const pqs_query_opts_t *opts,
                  int single_row, pqs__op_t **out);
extern const pqs__source_vt_t pqs__op_source;
void pqs__op_bind(pqs__op_t *op, const pqs__consumer_vt_t *vt, void *consumer);
/* A new op sends `typed` (owned from now) as its parameters. */
void pqs__op_set_typed(pqs__op_t *op, pqs__params_t *typed);
void pqs__op_io(pqs_ctx_t *ctx, int status, int events);
void pqs__op_kick(pqs_ctx_t *ctx);
void pqs__op_abandon(pqs_ctx_t *ctx);
void pqs__op_end_abandoned(pqs_ctx_t *ctx);
void pqs__op_maybe_finish(pqs_ctx_t *ctx);

/* copy.c: the COPY source's parts, called by query.c. */
/* 1 if `sql` begins with a word COPY (statement) TO accepts. */
int pqs__copy_qualifies(const char *sql);
/* DESCRIBE's result: keeps columns and parameter types. 0 or ENOMEM. */
int pqs__copy_described(pqs__op_t *op, const PGresult *res);
/* The step after DESCRIBE: PQS__SEND_COPY, or PQS__SEND_PARAMS. */
pqs__op_send_t pqs__copy_next(pqs__op_t *op);
/* COPY -> PARAMS: the statement runs in single-row mode after all. */
void pqs__copy_fall_back(pqs__op_t *op);
/* The COPY command, parameters bound, NUL-terminated, appended to `out`:
 * 0, PQS_ENOMEM, or PQS_EINVAL (libpq would not escape a value; the
 * connection's message says why). */
int pqs__copy_command(pqs__op_t *op, pqs__buf_t *out);
/* A COPY line (libpq's, `n` bytes with its newline; split in place) as a
 * row: 0, or PQS_EINVAL (a line that does not match the columns),
 * PQS_ENOMEM. In binary, one CopyData message: 0 and a row, PQS__WAIT for
 * the trailer (no row), or PQS_EINVAL (op->err says what is wrong). Hot
 * path. */
int pqs__copy_row(pqs__op_t *op, char *line, size_t n, pqs_row_t *row);
/* After the consumer had the row: 0, or PQS_EINVAL if splitting it late
 * failed (op->err says so). */
int pqs__copy_row_done(pqs__op_t *op);
/* The consumer takes whole lines (source.h, lines). */
void pqs__copy_offer_lines(pqs__op_t *op, int format, int parse);
/* An error raised while the COPY ran: its position is in the COPY's
 * text, not the user's, so it is dropped. */
void pqs__copy_fix_error(pqs__op_t *op);
void pqs__copy_free(pqs__op_t *op);

/* pipeline.c: a batch's parts, called by query.c. */
/* Sends the batch and its sync: 1, 0 if nothing went out, -1 if only part
 * of it did (the connection must then be given up, never synced). */
int pqs__pipeline_send(pqs__op_t *op);
/* A statement's result: its tag kept (0 or PQS_ENOMEM). */
int pqs__pipeline_done_one(pqs__op_t *op, const PGresult *res);
void pqs__pipeline_failed_one(pqs__op_t *op);  /* an error result */
void pqs__pipeline_skipped_one(pqs__op_t *op); /* PGRES_PIPELINE_ABORTED */
/* 1 and the pause before it if the batch is to run again (a conflict and
 * retries left; the tally is reset), else 0. */
int pqs__pipeline_retry(pqs__op_t *op, unsigned *delay_ms);

/* listen.c */
/* A new op whose first step LISTENs on the `n` channels. Errors:
 * PQS_EINVAL (no channel, an empty or unquotable name), PQS_ENOMEM. */
int pqs__listen_begin(pqs_ctx_t *ctx, const char *const *channels, int n,
                      pqs__op_t **out);
int pqs__listen_schema(pqs__op_t *op); /* channel, payload, pid */
/* A notification as a row of the op's cells (valid until the next). */
void pqs__listen_row(pqs__op_t *op, const PGnotify *n, pqs_row_t *row);

/* Turns a new op into a describe (describe.c), before it starts. */
void pqs__op_describe(pqs__op_t *op);

/* exec.c: a command, started at once; for reset.c as for pqs_exec. */
int pqs__exec_start(pqs_ctx_t *ctx, const char *sql, int nparams,
                    const char *const *params, const pqs_query_opts_t *opts,
                    pqs_exec_cb cb, void *data);

/* resolve.c: host names resolved on libuv's thread pool before libpq
 * connects (CONNECTING, before a connection exists). *started is 1 if
 * names are being resolved: the answer comes through
 * pqs__ctx_connect_resolved or pqs__ctx_resolve_failed. */
int pqs__resolve_start(pqs_ctx_t *ctx, const char *conninfo, int *started);
void pqs__resolve_kick(pqs_ctx_t *ctx);
void pqs__resolve_let_go(pqs_ctx_t *ctx);
/* ctx.c: the answers. */
void pqs__ctx_connect_resolved(pqs_ctx_t *ctx, const char *host,
                               const char *hostaddr, const char *port);
void pqs__ctx_resolve_failed(pqs_ctx_t *ctx, int status, const char *why);

/* tx.c: the context closes under a transaction helper. */
void pqs__tx_ctx_closing(pqs_tx_t *tx);

/* cancel.c */
int pqs__cancel_init(pqs_ctx_t *ctx); /* the async handle; 0 or libuv's */
void pqs__cancel_request(pqs_ctx_t *ctx);
void pqs__cancel_let_go(pqs_ctx_t *ctx);

#endif
