/* The seam between a producer of rows (a query on a context, or rows in
 * memory for tests) and the stream that consumes them.
 *
 * A source pushes into its sink: columns once, rows, then end exactly once.
 * The sink answers each push with PQS_CONTINUE, PQS_PAUSE, PQS_STOP or a
 * negative error, and the source acts on it. The stream drives the source
 * back through pqs__source_vt_t. After end() the source never touches the
 * sink again, and the sink may be freed inside end(). */
#ifndef PQS_SOURCE_H
#define PQS_SOURCE_H

#include "pqstream.h"

/* Beside PQS_CONTINUE, PQS_PAUSE and PQS_STOP a sink may answer PQS__DONE:
 * it has all it wants; the source ends early, as for PQS_STOP, but the end
 * reports success. Used by take(n). */
#define PQS__DONE 4

typedef struct pqs__sink_vt_s {
  int (*columns)(void *sink, const pqs_row_t *columns); /* may be NULL */
  int (*row)(void *sink, const pqs_row_t *row);         /* hot path */
  void (*end)(void *sink, const pqs_done_t *done);
} pqs__sink_vt_t;

typedef struct pqs__source_vt_s {
  void (*start)(void *src);            /* begin producing, from the loop */
  void (*pause)(void *src);            /* stop producing until resume */
  void (*resume)(void *src);           /* buffered rows first, from the loop */
  void (*stop)(void *src, int reason); /* end early; end() reports reason */
  void (*discard)(void *src);          /* never started: release, no end() */
} pqs__source_vt_t;

#endif
