/* The seam between the engine (engine.c) and a kind of operation.
 *
 * The engine drives one operation on a connection: it begins it, sends
 * its steps, watches the socket, drains what libpq holds, pauses and
 * resumes, stops it with a cancel and a deadline, and finishes it exactly
 * once. It knows no kind by name: what is sent, what a result means, and
 * what comes after a step are the kind's, through this table. A kind is a
 * file of its own (rows.c, copy_out.c, describe.c, batch.c, listen.c,
 * changes.c ...) with
 * its own step enum, kept in op->step, and its diagram beside it.
 *
 * Every hook runs on the loop thread, from the engine, with the op alive;
 * none may free the op. Hooks that may be NULL say so. */
#ifndef PQS_KIND_H
#define PQS_KIND_H

#include "op.h"

/* What comes after a step whose results libpq has ended (next). */
typedef enum {
  PQS__NEXT_END,  /* nothing: the op is drained and finishes */
  PQS__NEXT_SEND, /* op->step is a new step: the engine sends it */
  PQS__NEXT_HELD  /* the kind holds the op (listening, waiting to retry)
                     and has arranged what wakes it */
} pqs__next_t;

/* What a libpq that is busy with nothing to read means (busy). */
typedef enum {
  PQS__BUSY_WAIT,  /* the socket will speak: wait for it */
  PQS__BUSY_PROBE, /* libpq may be stuck for want of memory: look again
                      soon, and give the connection up if memory is short */
  PQS__BUSY_STUCK  /* stuck for good: give the connection up */
} pqs__busy_t;

typedef struct pqs__kind_s {
  const char *name;
  /* Sends op->step. 1: sent (the engine flushes it); 0: libpq would not
   * take it (the connection's message says why); -1: only part of it went
   * out and the connection must be given up, never synced. */
  int (*send)(pqs__op_t *op);
  /* May be NULL. Before results are read: for a step whose input is not
   * results (COPY data, notifications), the next piece as an answer code
   * (answer.h; PQS__WAIT: libpq needs input); PQS__RESULTS otherwise. */
  int (*pump)(pqs__op_t *op);
  /* One result of the step (not NULL; the engine clears it after): an
   * answer code. Sets op->final when it is the result that ends the
   * step. */
  int (*take)(pqs__op_t *op, PGresult *res);
  /* May be NULL (a NULL result ends the step). 1 if libpq's NULL result
   * ends only part of the step and more results follow (a pipeline). */
  int (*goes_on)(pqs__op_t *op);
  /* May be NULL (PQS__NEXT_END). libpq has no more results for the step,
   * which ran (RUNNING) or was stopped (STOPPING). */
  pqs__next_t (*next)(pqs__op_t *op);
  /* May be NULL (PQS__BUSY_WAIT). RUNNING, libpq busy. */
  pqs__busy_t (*busy)(pqs__op_t *op);
  /* May be NULL (the engine cancels). RUNNING or PAUSED, asked to stop:
   * 1 if the kind ends the op its own way (it sent what ends it; the
   * engine still bounds the wait), 0 for the engine's cancel. */
  int (*stop)(pqs__op_t *op);
  /* May be NULL (always). STOPPING: whether a cancel would help. */
  int (*cancellable)(const pqs__op_t *op);
  /* May be NULL. WAITING -> RUNNING: the kind's run starts again (the
   * engine has forgotten the last attempt's error and result). */
  void (*again)(pqs__op_t *op);
  /* May be NULL. NEW: the consumer takes lines (source.h, lines). */
  void (*lines)(pqs__op_t *op, int format);
  /* May be NULL. The time the kind asked for (pqs__op_tick_in) has come,
   * the op RUNNING or PAUSED: a change stream's status update, which must
   * go out while the consumer pauses too. */
  void (*tick)(pqs__op_t *op);
  /* May be NULL. The op is freed: what the kind holds goes too. */
  void (*free)(pqs__op_t *op);
} pqs__kind_t;

/* The kinds, each in its file. */
extern const pqs__kind_t pqs__kind_copy_in;  /* copy_in.c */
extern const pqs__kind_t pqs__kind_rows;     /* rows.c */
extern const pqs__kind_t pqs__kind_copy_out; /* copy_out.c */
extern const pqs__kind_t pqs__kind_copy_to;  /* copy_to.c */
extern const pqs__kind_t pqs__kind_describe; /* describe.c */
extern const pqs__kind_t pqs__kind_batch;    /* batch.c */
extern const pqs__kind_t pqs__kind_listen;   /* listen.c */
extern const pqs__kind_t pqs__kind_changes;  /* changes.c */
extern const pqs__kind_t pqs__kind_pipeline; /* pipeline.c */

/* The describe kind's two steps, which the COPY out kind begins with
 * (its step enum numbers them alike): PREPARE (0) and DESCRIBE (1). */
int pqs__describe_send(pqs__op_t *op);
pqs__next_t pqs__describe_next(pqs__op_t *op);


/* json_plan.c, for an op whose consumer writes JSON Lines (the COPY
 * kind told so, the rows kind for JSON): once op->schema holds the described columns, gives the schema fields
 * of the server's JSON for the columns the client cannot render
 * (json_at): 0 or PQS_ENOMEM. Then head and tail are what goes around
 * the statement's text to have the server write them (nothing when no
 * column needs it): 0 or PQS_ENOMEM. */
int pqs__json_plan(pqs__op_t *op);
int pqs__json_head(const pqs__schema_t *schema, const char *sql,
                   pqs__buf_t *out);
int pqs__json_tail(const pqs__schema_t *schema, const char *sql,
                   pqs__buf_t *out);
/* The same for a statement that is not the op's (a pipeline's): plans
 * *schema, described, for `sql`; then `out` gets the whole statement to
 * send, NUL-terminated (nothing when no column needs the server). */
int pqs__json_plan_of(pqs_ctx_t *ctx, const char *sql, int binary,
                      pqs__schema_t **schema);
int pqs__json_wrap(const pqs__schema_t *schema, const char *sql,
                   pqs__buf_t *out);

/* An error of a statement pqstream wrote around the user's loses its
 * position (and libpq's LINE and caret), which are in pqstream's text. */
void pqs__op_forget_position(pqs__op_t *op);

/* settings.c. A kind whose results may be binary calls it as it sends
 * its first step: 1 if the session's text settings are not known and the
 * op has become the settings kind, which asks for them and then hands
 * the op back to its kind at that step (the caller sends the op's new
 * step: `return op->kind->send(op)`); else 0. */
int pqs__settings_first(pqs__op_t *op);

/* A result's columns as a schema, with the settings its binary values'
 * text follows: NULL if out of memory. */
static inline pqs__schema_t *pqs__op_schema_of(pqs__op_t *op,
                                               const PGresult *res) {
  pqs__schema_t *s = pqs__schema_from_result(res);
  if (s != NULL)
    s->text = op->ctx->text;
  return s;
}

/* copy_in.c: a COPY FROM op into `target` ("table" or "table (cols)",
 * SQL as written), in COPY's text format, CSV (with a header line the
 * server skips) or binary (tuples, between the header and trailer the
 * op writes): NEW and unbound, the context busy. 0, PQS_ENOMEM, or what
 * pqs__op_begin says. */
enum { PQS__COPY_IN_TEXT, PQS__COPY_IN_CSV, PQS__COPY_IN_BINARY };
int pqs__copy_in_begin(pqs_ctx_t *ctx, const char *target, int format,
                       int header, unsigned timeout_ms, size_t max_pending,
                       pqs__op_t **out);
/* Whole lines (CSV: whole records) for the op, copied: 0, 1 (taken, but
 * more than max_pending wait: put no more until k.copy_in.ready), or
 * PQS_ENOMEM (not taken), PQS_ESTATE (after end). */
int pqs__copy_in_put(pqs__op_t *op, const char *data, size_t len);
/* Everything is put: the load commits once it is sent. */
void pqs__copy_in_end(pqs__op_t *op);

/* The rows kind for a consumer that writes JSON Lines (rows_json.c). */
extern const pqs__kind_t pqs__kind_rows_json;

/* rows.c, shared with rows_json.c: sends `sql` as the rows kind sends
 * op->sql, and reads a result as the rows kind does. */
int pqs__rows_send(pqs__op_t *op, const char *sql);

/* PQgetCopyData said the data is over (-1: the COPY's result follows,
 * PQS__CONTINUE) or failed (-2): a COPY that fails so cannot be left
 * (libpq would hand out PGRES_COPY_OUT again and again, unless it saw
 * the connection die), so the connection is given up and the op ends
 * with PQS_ECONNLOST, or PQS_ENOMEM if libpq lacked memory; PQS__WAIT. */
int pqs__op_copy_data_end(pqs__op_t *op, int n);
int pqs__rows_take(pqs__op_t *op, PGresult *res);

#endif
