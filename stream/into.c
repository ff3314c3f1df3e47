/* A stream written into a table: the stream's rows, as COPY's text lines
 * (the server's own lines where a COPY source sends them and no stage
 * changes rows), put into a load on another context (pqs_copy_in).
 *
 * Backpressure crosses it: a put told to wait pauses the stream, and the
 * load's on_ready resumes it. Either side failing ends both: a source
 * that fails aborts the load (rolled back), a load that fails closes the
 * stream (its query cancelled); the one callback comes once both are
 * over, with the first failure and the side it came from. */
#include <stdio.h>
#include <string.h>

#include "../src/core.h"
#include "format.h"
#include "stream_int.h"

#define PQS__INTO_PIECE (64 * 1024)

struct pqs_into_s {
  pqs_stream_t *stream; /* while the source runs */
  pqs_copy_in_t *ci;    /* while the load runs */
  pqs_into_cb cb;       /* NULL: the start failed, end quietly */
  void *data;
  pqs__buf_t buf;       /* rows formatted, not yet put */
  int paused;           /* fact: a put said wait; the stream is paused */
  int ended;            /* fact: the result is decided (done, side) */
  pqs_side_t side;
  pqs_done_t done;
  pqs_error_t err;
  char *err_strings;
  char tag[32]; /* "COPY n": kept without allocating, for a pipe that
                   committed must not end in a failure to allocate */
  char why[256];
};

/* The first word on how it ended is kept; later ones (the cancel a
 * failure caused on the other side) are not the story. */
static void decide(pqs_into_t *in, const pqs_done_t *done, pqs_side_t side) {
  if (in->ended)
    return;
  in->ended = 1;
  in->side = side;
  in->done = *done;
  in->done.error = NULL;
  in->done.command_tag = NULL;
  if (done->command_tag != NULL) {
    snprintf(in->tag, sizeof(in->tag), "%s", done->command_tag);
    in->done.command_tag = in->tag;
  }
  if (done->error != NULL &&
      pqs__error_copy(&in->err, &in->err_strings, done->error, NULL) == 0)
    in->done.error = &in->err;
}

static void fail(pqs_into_t *in, int status, pqs_side_t side, const char *why) {
  pqs_error_t e = {.message = why};
  pqs_done_t d = {.status = status, .error = why ? &e : NULL};
  decide(in, &d, side);
}

static void finish(pqs_into_t *in) {
  if (in->stream != NULL || in->ci != NULL)
    return;
  if (in->cb != NULL)
    in->cb(in, &in->done, in->side, in->data);
  pqs__buf_free(&in->buf);
  pqs__free(in->err_strings);
  pqs__free(in);
}

/* What is formatted goes to the load: 0, 1 (the stream must pause), or
 * an error. */
static int put(pqs_into_t *in) {
  if (in->buf.len == 0)
    return 0;
  int rc = pqs_copy_in_put(in->ci, in->buf.data, in->buf.len);
  if (rc >= 0)
    in->buf.len = 0;
  return rc;
}

/* ---- the source's side ---- */

static int into_columns(pqs_stream_t *s, const pqs_row_t *cols, void *data) {
  (void)s;
  pqs_into_t *in = data;
  int rc = pqs__format_check_text(PQS_FORMAT_TSV, cols, in->why,
                                  sizeof(in->why));
  if (rc != 0)
    fail(in, rc, PQS_SIDE_SOURCE, in->why);
  return rc;
}

/* Hot path. */
static int into_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  pqs_into_t *in = data;
  if (in->ci == NULL) /* the load is over: nothing more goes in */
    return PQS_STOP;
  int rc = pqs__format_row(&in->buf, PQS_FORMAT_TSV, row);
  if (rc != 0)
    return rc;
  if (in->buf.len < PQS__INTO_PIECE)
    return PQS_CONTINUE;
  rc = put(in);
  if (rc == 1) {
    in->paused = 1;
    return PQS_PAUSE;
  }
  return rc;
}

static void into_source_done(pqs_stream_t *s, const pqs_done_t *done,
                             void *data) {
  (void)s;
  pqs_into_t *in = data;
  in->stream = NULL;
  if (in->ci != NULL) {
    int rc = done->status == 0 ? put(in) : 0;
    if (done->status != 0 || rc < 0) {
      if (done->status != 0)
        decide(in, done, PQS_SIDE_SOURCE);
      else
        fail(in, rc, PQS_SIDE_NONE, NULL);
      pqs_copy_in_abort(in->ci);
    } else {
      pqs_copy_in_end(in->ci);
    }
  }
  finish(in);
}

/* ---- the load's side ---- */

static void into_ready(pqs_copy_in_t *ci, void *data) {
  (void)ci;
  pqs_into_t *in = data;
  if (in->paused && in->stream != NULL) {
    in->paused = 0;
    pqs_stream_resume(in->stream);
  }
}

static void into_load_done(pqs_copy_in_t *ci, const pqs_done_t *done,
                           void *data) {
  (void)ci;
  pqs_into_t *in = data;
  in->ci = NULL;
  decide(in, done, done->status == 0 ? PQS_SIDE_NONE : PQS_SIDE_TARGET);
  if (in->stream != NULL)
    pqs_stream_close(in->stream); /* the query cancelled; on_done follows */
  finish(in);
}

static const pqs_copy_in_cbs_t into_load = {.on_ready = into_ready,
                                            .on_done = into_load_done};

/* ---- starting and stopping ---- */

int pqs_stream_into(pqs_stream_t *s, pqs_ctx_t *target, const char *table,
                    const pqs_copy_in_opts_t *opts, pqs_into_cb cb,
                    void *data, pqs_into_t **out) {
  if (s == NULL || target == NULL || table == NULL || cb == NULL ||
      (opts != NULL && (opts->format != PQS_FORMAT_TSV || opts->binary)))
    return PQS_EINVAL;
  int rc = pqs__stream_check_users(s);
  if (rc == 0 && s->state != PQS__STREAM_NEW)
    rc = PQS_ESTATE;
  if (rc == 0 && s->ctx == target)
    rc = PQS_ESAMECTX;
  if (rc != 0)
    return rc;
  pqs_into_t *in = pqs__calloc(1, sizeof(*in));
  if (in == NULL)
    return PQS_ENOMEM;
  if ((rc = pqs_copy_in(target, &in->ci, table, opts, &into_load, in)) != 0) {
    pqs__free(in);
    return rc;
  }
  in->stream = s;
  pqs_stream_cbs_t cbs = {.on_columns = into_columns,
                          .on_row = into_row,
                          .on_done = into_source_done};
  pqs__stream_take_lines(s, PQS_FORMAT_TSV);
  if ((rc = pqs_stream_start(s, &cbs, in)) != 0) {
    in->stream = NULL; /* still the caller's, unstarted */
    pqs_copy_in_abort(in->ci); /* ends quietly: cb is NULL */
    return rc;
  }
  in->cb = cb;
  in->data = data;
  if (out != NULL)
    *out = in;
  return 0;
}

int pqs_into_stop(pqs_into_t *in) {
  if (in == NULL)
    return PQS_EINVAL;
  if (in->ended || (in->stream == NULL && in->ci == NULL))
    return PQS_ESTATE;
  fail(in, PQS_ECANCELED, PQS_SIDE_NONE, NULL);
  if (in->stream != NULL)
    pqs_stream_close(in->stream);
  if (in->ci != NULL)
    pqs_copy_in_abort(in->ci);
  return 0;
}
