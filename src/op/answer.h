/* The per-row answers: one code space for every hop a row makes.
 *
 * A row travels source -> stream (stages, then the consumer) -> back. Each
 * hop answers with one of these, or with a negative error that ends the
 * stream with that error. Who may return which:
 *
 *   PQS__CONTINUE  anyone            go on
 *   PQS__PAUSE     anyone            this row goes on; then no more until
 *                                    resumed (a stage's pause pauses the
 *                                    source at once)
 *   PQS__STOP      anyone            end now: the consumer stopped it
 *                                    (on_done: PQS_ECANCELED)
 *   PQS__SKIP      filter, map, skip drop this row, go on (stages only)
 *   PQS__LAST      take              this row goes on, then end (stages)
 *   PQS__DONE      stages -> source  end now, with success: the consumer
 *                                    has all it wanted
 *   PQS__WAIT      inside a source   libpq needs more input first
 *   PQS__RESULTS   inside a source   this step's input is results: read
 *                                    them (an op kind's pump, kind.h)
 *
 * The first four are the public PQS_CONTINUE .. PQS_SKIP. */
#ifndef PQS_ANSWER_H
#define PQS_ANSWER_H

#include "pqstream.h"

typedef enum {
  PQS__CONTINUE = PQS_CONTINUE,
  PQS__PAUSE = PQS_PAUSE,
  PQS__STOP = PQS_STOP,
  PQS__SKIP = PQS_SKIP,
  PQS__LAST,
  PQS__DONE,
  PQS__WAIT,
  PQS__RESULTS
} pqs__answer_t;

#endif
