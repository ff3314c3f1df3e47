/* The seam between a producer of rows (a query on a context, a merge, or
 * rows in memory for tests) and the stream that consumes them.
 *
 * A source pushes into its consumer: columns once, rows, then end exactly
 * once. The consumer answers each push with a code of src/answer.h
 * (PQS__CONTINUE, PQS__PAUSE, PQS__STOP, PQS__DONE) or a negative error,
 * and the source acts on it. The stream drives the source back through
 * pqs__source_vt_t. After end() the source never touches the consumer
 * again, and the consumer may be freed inside end(). */
#ifndef PQS_SOURCE_H
#define PQS_SOURCE_H

#include "answer.h"

typedef struct pqs__consumer_vt_s {
  int (*columns)(void *consumer, const pqs_row_t *columns); /* may be NULL */
  int (*row)(void *consumer, const pqs_row_t *row);         /* hot path */
  void (*end)(void *consumer, const pqs_done_t *done);
} pqs__consumer_vt_t;

typedef struct pqs__source_vt_s {
  void (*start)(void *src);            /* begin producing, from the loop */
  void (*pause)(void *src);            /* stop producing until resume */
  void (*resume)(void *src);           /* buffered rows first, from the loop */
  void (*stop)(void *src, int reason); /* end early; end() reports reason */
  void (*discard)(void *src);          /* never started: release, no end() */
  /* May be NULL. Before start: the consumer can write rows in `format`
   * (pqs_format_t) from their line, as the server sent it. The source
   * sets row->line where it can, and values read from such a row (by a
   * stage) still come. */
  void (*lines)(void *src, int format);
} pqs__source_vt_t;

#endif
