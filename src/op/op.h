/* One operation on a context, as the engine (engine.c) and the kinds of
 * operation (kind.h) share it. */
#ifndef PQS_OP_H
#define PQS_OP_H

#include "copy_binary.h"
#include "ctx_int.h"
#include "params.h"
#include "source.h"
#include "stmt_cache.h"

/* Operation states (engine.c, one function per arrow):
 *
 *   NEW --op_start()--> RUNNING <--op_pause() / op_resume()--> PAUSED
 *                          |                                     |
 *                          +--op_stop_with(): stop, timeout,-----+
 *                          |  error, consumer's STOP or DONE
 *                          |               v
 *                          |           STOPPING (a cancel was sent, or
 *                          |               |     the kind's own ending;
 *                          |               |     what arrives is dropped)
 *                          |  results end  |  results end, a cancel is
 *                          |               |  still on its thread
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
 *   A kind that runs again after a pause (a batch's retry):
 *   RUNNING --its next step says so: pqs__op_wait()--> WAITING
 *   WAITING --the pause is over: the kind's again(), sent--> RUNNING
 *   WAITING --stop, timeout--> DRAINED (nothing is on the server)
 *
 *   NEW --pqs__op_end_unstarted() (a pipeline closed before it was
 *         sent)--> DRAINED, finished from the loop
 *
 * Beside the state, independent facts: `lost` (the connection died;
 * libpq will not block any more), `flushing` (bytes of the step are still
 * to be sent) and `final` (libpq gave the result that ends the step). */
typedef enum {
  PQS__OP_NEW,
  PQS__OP_RUNNING,
  PQS__OP_PAUSED,
  PQS__OP_STOPPING,
  PQS__OP_DRAINED,
  PQS__OP_ABANDONED,
  PQS__OP_WAITING
} pqs__op_state_t;

typedef struct pqs__kind_s pqs__kind_t;

/* The COPY source's state (copy_out.c). */
typedef struct pqs__copy_s {
  pqs__cell_t *cells;    /* one per column, reused row after row */
  uint32_t *param_types; /* what the server inferred for $1..$n */
  pqs__buf_t scratch;    /* a line's copy, when its bytes are also passed on */
  int lines;             /* 0, or 1 + the pqs_format_t of lines passed on */
  int split_done;        /* fact: the current line's copy is split */
  int bad_line;          /* fact: a line did not split into the columns */
  int json;              /* the consumer writes JSON Lines (json_plan.c) */
  pqs__bin_state_t bin;  /* binary COPY: how far its stream is read */
} pqs__copy_t;

/* A listen stream's state (listen.c): each notification is one row of
 * these cells. */
typedef struct pqs__listen_s {
  pqs__cell_t cells[3];
  char pid[16];
} pqs__listen_t;

typedef struct pqs__pipeline_s pqs__pipeline_t;
typedef struct pqs__changes_s pqs__changes_t; /* changes.c */

/* The COPY FROM kind's state (copy_in.c). What the producer puts waits in
 * `pending` until libpq takes it; `inflight` counts what libpq took since
 * it last had everything out, so that neither grows past its bound. */
typedef struct pqs__copy_in_s {
  char *command;        /* COPY ... FROM STDIN, for the first segment */
  char *again;          /* the same without HEADER, for the next ones */
  char *tag;            /* room for "COPY n", to become op->tag */
  pqs__buf_t pending;   /* put; [0, sent) is already libpq's */
  size_t sent;
  size_t cut;           /* a segment ends at this offset, or NO_CUT */
  size_t inflight;
  size_t max_pending;
  uint64_t rows;        /* rows of the segments ended */
  uint64_t segment_at;  /* loop time the current segment began */
  size_t segment_bytes; /* given to libpq in the current segment */
  int suspect;          /* fact: the server spoke during this segment */
  /* PUTTING --a put past max_pending--> WAITING --half gone: ready-->
   * PUTTING; either --end--> ENDED */
  enum {
    PQS__PRODUCER_PUTTING,
    PQS__PRODUCER_WAITING,
    PQS__PRODUCER_ENDED
  } producer;
  int began;            /* fact: the BEGIN is ours, so COMMIT or ROLLBACK */
  int64_t rx;           /* the server's bytes on the socket at the
                           segment's start (TCP), -1 if unknown */
  int blocked;          /* fact: the socket refused bytes this segment */
  int binary;           /* COPY's binary format: tuples are put */
  int header_sent;      /* fact: this segment's binary header is libpq's */
  void (*ready)(void *consumer); /* may be NULL */
} pqs__copy_in_t;

struct pqs__op_s {
  pqs_ctx_t *ctx;
  pqs__op_state_t state;
  const pqs__kind_t *kind;
  int step; /* the kind's own step enum */
  /* While the settings kind runs first (settings.c): the kind and step
   * it hands the op back to. */
  const pqs__kind_t *after;
  int after_step;
  union {   /* what the kind keeps between steps */
    pqs__copy_t copy;
    pqs__listen_t listen;
    pqs__pipeline_t *batch;
    pqs__buf_t json_sql; /* rows_json.c: the statement as sent, or empty */
    pqs__copy_in_t copy_in;
    pqs__changes_t *changes;
    pqs_pipeline_t *pipeline; /* pipeline.c */
    struct { /* rows.c: a run's plan with automatic prepared statements */
      pqs__stmt_plan_t plan;
      int planned; /* fact: the cache was asked */
      int stale;   /* fact: the prepared statement's plan went stale */
      int retried; /* fact: it was prepared again once already */
    } rows;
  } k;
  int single_row;       /* rows come one result each (single-row mode) */
  int binary;           /* results in binary (PQS_RESULT_BINARY) */
  int columns_sent;     /* fact: the consumer has had the columns */
  pqs__arena_t arena;   /* texts of the current binary row (pqs_row_text) */
  pqs__params_t *typed; /* typed parameters instead of `params`; owned */
  uint64_t wake_at;     /* WAITING: loop time to send again at */
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
  int flushing; /* fact: the step is not all sent yet */
  int final;    /* fact: libpq gave the result that ends the step */
  int heard;    /* fact: the socket was readable since the kind last
                   looked (copy_in.c: the server spoke mid-COPY) */
  int resting;  /* fact: the kind does not want the socket read for now
                   (changes.c: letting the server batch) */
  char *tag;
  uint64_t affected;
  pqs_error_t err; /* err.message is NULL until something explains it */
  char *err_strings;
};

/* ---- the engine, for the kinds ---- */

/* Records a reason to end other than the server's answer; the first
 * wins. pqs__op_keep does so for a nonzero rc only. */
void pqs__op_note(pqs__op_t *op, int status);
void pqs__op_keep(pqs__op_t *op, int rc);
/* Keeps the connection's message as the op's error, unless it has one. */
void pqs__op_conn_error(pqs__op_t *op);
/* The consumer's answer (or a pump's): 1 to wait for more input, else 0.
 * A pause, stop or error acts on the op. */
int pqs__op_answer(pqs__op_t *op, int rc);
/* Stops a RUNNING or PAUSED op for `reason` (op_stop_with). */
void pqs__op_stop(pqs__op_t *op, int reason);
/* The columns to the consumer: those of `res`, or op->schema if set. */
int pqs__op_deliver_columns(pqs__op_t *op, const PGresult *res);
/* A statement's tag and count (and the user's on_statement). */
void pqs__op_record_command(pqs__op_t *op, PGresult *res);
/* A command's tag: the session's text settings forgotten if it may have
 * changed them (SET, RESET, DISCARD; COMMIT or ROLLBACK of the block
 * they were learned in). */
void pqs__ctx_tag_seen(pqs_ctx_t *ctx, const char *tag);
/* The result every kind reads alike: a command's, an empty query's, a
 * COPY nobody asked for (refused), an error. `record`: a command's tag
 * is the op's. Sets op->final. */
int pqs__op_take_common(pqs__op_t *op, PGresult *res, int record);
/* An error result: the server's error kept, or libpq's own failure to
 * keep the rows (PQS_ENOMEM). */
void pqs__op_result_failed(pqs__op_t *op, const PGresult *res);
/* A prepared statement whose result type changed since it was prepared
 * (an ALTER TABLE): told by SQLSTATE 0A000 and the routine
 * RevalidateCachedQuery, never by the message. */
int pqs__stale_plan(const PGresult *res);
/* An error saying the prepared statement does not exist (26000). */
int pqs__no_such_stmt(const PGresult *res);
/* Watches the socket for what the op waits for. */
void pqs__op_watch(pqs__op_t *op);
/* After a send: flush what fits, watch for the rest. */
void pqs__op_flush(pqs__op_t *op);
/* The connection is gone (op->lost) or bad. */
int pqs__op_broken(const pqs__op_t *op);
/* STOPPING | DRAINED -> finished, the connection closed: the op is gone
 * when this returns. */
void pqs__op_give_up(pqs__op_t *op);
/* The kind's tick (kind.h) runs once, `ms` from now, if the op is then
 * RUNNING or PAUSED; a later call replaces an earlier one. */
void pqs__op_tick_in(pqs__op_t *op, unsigned ms);
/* The op's timeout is over: a long-lived op (a change stream) timed its
 * start only. */
void pqs__op_untime(pqs__op_t *op);
/* NEW -> DRAINED: the op ends with `reason` from the loop, never sent. */
void pqs__op_end_unstarted(pqs__op_t *op, int reason);
/* RUNNING -> WAITING for `delay_ms`; then the kind's again(). */
void pqs__op_wait(pqs__op_t *op, unsigned delay_ms);
/* RUNNING, its step ended well: the final result came, no error, no
 * stop, connection up. pqs__op_step_ended: all but the error. */
int pqs__op_step_ok(const pqs__op_t *op);
int pqs__op_step_ended(const pqs__op_t *op);

/* Begins an op of `kind` (the caller checked the context may). */
int pqs__op_begin(pqs_ctx_t *ctx, const pqs__kind_t *kind, const char *sql,
                  int nparams, const char *const *params,
                  const pqs_query_opts_t *opts, int single_row,
                  pqs__op_t **out);
/* The op as a row source, and its consumer (the stream, or a command's
 * tally). */
extern const pqs__source_vt_t pqs__op_source;
void pqs__op_bind(pqs__op_t *op, const pqs__consumer_vt_t *vt, void *consumer);
/* Frees a finished or discarded op, and what its kind holds (op.c). */
void pqs__op_free(pqs__op_t *op);
/* The op runs as `kind` from `step` on (COPY falling back to rows): the
 * old kind lets go of what it holds, and the new one starts from a zeroed
 * `k`. */
void pqs__op_become(pqs__op_t *op, const pqs__kind_t *kind, int step);

#endif
