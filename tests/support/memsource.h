/* A row source in memory, for testing stages and sinks without a socket.
 * It pushes its rows from the loop through the same seam (src/op/source.h)
 * that a query on a context uses. */
#ifndef PQS_MEMSOURCE_H
#define PQS_MEMSOURCE_H

#include "pqstream.h"

typedef struct pt_table_s {
  int ncols;
  const char *const *names;
  const uint32_t *types;
  int nrows;
  const char *const *values; /* nrows * ncols, row-major; NULL is SQL NULL */
} pt_table_t;

/* A new unstarted stream over `t` (borrowed until the stream ends). */
pqs_stream_t *pt_mem_stream(uv_loop_t *loop, const pt_table_t *t);

/* How many times the memory source was asked to stop early. */
int pt_mem_stops(void);

#endif
