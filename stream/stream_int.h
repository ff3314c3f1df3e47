/* The stream object and its stages, shared by the files of stream/. */
#ifndef PQS_STREAM_INT_H
#define PQS_STREAM_INT_H

#include "../src/core.h"

typedef enum {
  PQS__STAGE_FILTER,
  PQS__STAGE_TAP,
  PQS__STAGE_TAKE,
  PQS__STAGE_SKIP,
  PQS__STAGE_MAP
} pqs__stage_kind_t;

typedef struct pqs__stage_s {
  pqs__stage_kind_t kind;
  pqs_row_fn fn; /* filter, tap */
  pqs_map_fn map_fn;
  void *data;
  pqs_free_cb free_data;
  uint64_t n, seen; /* take, skip */
  pqs_out_t *out;   /* map */
} pqs__stage_t;

typedef struct pqs__batch_s pqs__batch_t;

/* NEW --pqs_stream_start()--> STARTED --pqs_stream_close()--> STOPPING
 * STARTED | STOPPING --the source's end()--> ENDED: on_done, then freed
 * NEW --pqs_stream_close()--> freed (the source discarded, no on_done)
 *
 * Who may make those calls is a second, orthogonal fact: the user's
 * stream is theirs (`held` 0); a merge's or gather's input is held from
 * pqs_merge/pqs_gather on (`held` 1), and then only its holder moves it,
 * through the pqs__stream_* calls, while every public call on it is
 * PQS_ESTATE. */
typedef enum {
  PQS__STREAM_NEW,
  PQS__STREAM_STARTED,
  PQS__STREAM_STOPPING,
  PQS__STREAM_ENDED
} pqs__stream_state_t;

struct pqs_stream_s {
  pqs_ctx_t *ctx; /* NULL for a source that is not a context */
  uv_thread_t thread;
  const pqs__source_vt_t *src_vt;
  void *src;
  pqs__stream_state_t state;
  pqs_stream_cbs_t cbs;
  void *cb_data; /* the callbacks' `data` argument */
  void *data;    /* the user's: pqs_stream_get_data */
  uint64_t rows;
  pqs__stage_t *stages;
  int nstages;
  pqs__batch_t *batch;
  int lines; /* 0, or 1 + the pqs_format_t its sink writes lines in */
  int held;  /* a merge's or gather's input: see the states above */
  void (*on_free)(void *data); /* what its maker lets go of with it */
  void *on_free_data;
};

/* A stream over any source; the source must push into
 * pqs__stream_consumer with the stream as the consumer. */
pqs_stream_t *pqs__stream_new(pqs_ctx_t *ctx, const pqs__source_vt_t *vt,
                              void *src);
extern const pqs__consumer_vt_t pqs__stream_consumer;
/* Before start: the stream's consumer (a sink) writes rows in `format`
 * and can take them as the server's lines when nothing changes rows. */
void pqs__stream_take_lines(pqs_stream_t *s, pqs_format_t format);
/* `fn(data)` runs once when the stream is freed (ended, or closed
 * unstarted): a partitioned read gives its contexts back then. */
void pqs__stream_on_free(pqs_stream_t *s, void (*fn)(void *), void *data);
int pqs__stream_check(const pqs_stream_t *s); /* NULL, thread */
/* The user's to call: pqs__stream_check, and not held (PQS_ESTATE). */
int pqs__stream_check_users(const pqs_stream_t *s);
/* A holder takes its input: from now on public calls on it are refused. */
void pqs__stream_hold(pqs_stream_t *s);
/* The holder's calls: as the public ones, held or not. */
int pqs__stream_start(pqs_stream_t *s, const pqs_stream_cbs_t *cbs,
                      void *data);
int pqs__stream_pause(pqs_stream_t *s);
int pqs__stream_resume(pqs_stream_t *s);
int pqs__stream_close(pqs_stream_t *s);

/* stages.c: runs the stages over *row (which a map replaces). Hot path;
 * the answers are explained where it is defined. */
int pqs__stages_run(pqs_stream_t *s, const pqs_row_t **row);
/* The columns after every map. */
const pqs_row_t *pqs__stages_columns(pqs_stream_t *s, const pqs_row_t *cols);
void pqs__stages_free(pqs_stream_t *s);

/* compare.c: rows by sort keys; negative, zero or positive. */
int pqs__compare_keys(const pqs_row_t *a, const pqs_row_t *b,
                      const pqs_sort_key_t *keys, int nkeys);

/* map.c */
pqs_out_t *pqs__out_new(const pqs_column_t *cols, int ncols);
void pqs__out_free(pqs_out_t *out);
const pqs_row_t *pqs__out_columns(pqs_out_t *out);
int pqs__out_run(pqs_out_t *out, pqs_stream_t *s, pqs_map_fn fn, void *data,
                 const pqs_row_t **row);

/* batch.c */
pqs__batch_t *pqs__batch_new(size_t n);
void pqs__batch_free(pqs__batch_t *b);
/* Adds a copy of row; returns 1 when the batch is full, 0, or an error. */
int pqs__batch_add(pqs__batch_t *b, const pqs_row_t *row);
/* The rows collected (pointers fixed up), and empties the batch. */
const pqs_row_t *const *pqs__batch_take(pqs__batch_t *b, size_t *n);

#endif
