/* Sinks: a stream written, formatted, through libuv with backpressure. */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "../src/core.h"
#include "format.h"
#include "stream_int.h"

#define PQS__CHUNK (64 * 1024)
#define PQS__DEFAULT_MAX_QUEUED (1024 * 1024)

typedef struct chunk_s chunk_t;

/* RUNNING --more than max_queued bytes wait--> PAUSED (the stream too)
 * PAUSED --half of them written--> RUNNING
 * RUNNING | PAUSED --the stream's on_done--> DRAINING (bytes still out)
 * DRAINING --every byte written, or failed--> CLOSING --handles closed-->
 *   the callback, then freed
 * A sink whose start failed goes to CLOSING quietly: no callback. */
typedef enum { K_RUNNING, K_PAUSED, K_DRAINING, K_CLOSING } sink_state_t;

/* Where the bytes go, fixed when the sink is made:
 *   T_CALLERS a libuv stream the caller owns (pqs_sink_uv)
 *   T_STREAM  a libuv stream of the sink's own over its dup of the fd
 *             (pipe, TCP, TTY), closed with the sink
 *   T_FILE    a regular file or a device, one uv_fs_write at a time
 *   T_NULL    /dev/null, written at once on the loop (it never blocks) */
typedef enum { T_CALLERS, T_STREAM, T_FILE, T_NULL } sink_target_t;

struct pqs_sink_s {
  sink_state_t state;
  sink_target_t target;
  pqs_stream_t *stream; /* while RUNNING or PAUSED */
  uv_loop_t *loop;
  int file_fd; /* T_FILE, T_NULL: the sink's dup */
  union {
    uv_pipe_t pipe;
    uv_tty_t tty;
    uv_tcp_t tcp;
  } own;
  uv_stream_t *out; /* T_STREAM: `own`; T_CALLERS: the caller's */
  uv_prepare_t flush; /* sends what a loop turn wrote, before it blocks */
  int handles;
  pqs_format_t format;
  int header;
  int psql;          /* fact: a psql format, written through `table` */
  pqs__psql_t table;
  size_t max_queued, queued;
  pqs__buf_t cur, spare;
  int write_err; /* fact: the first write error, 0 if none */
  char why[256]; /* what the sink itself refused, with write_err */
  pqs_error_t why_err;
  uint64_t bytes;
  chunk_t *fq_head, *fq_tail; /* file writes waiting */
  int fs_busy;                /* fact: a uv_fs_write is in flight */
  uv_fs_t fs_req;
  pqs_done_t done; /* the stream's, copied */
  pqs_error_t err;
  char *err_strings;
  char *tag;
  pqs_sink_cb cb;
  void *data;
  uint64_t *written;   /* the caller's live count, if asked for */
  /* Rows formatted into the buffers so far, and rows whose bytes are all
   * written (chunks end in order), for on_rows_written. */
  uint64_t rows_in, rows_out;
  void (*on_rows_written)(pqs_sink_t *, uint64_t, void *);
  int *header_written; /* the caller's: one header for several sinks */
};

struct chunk_s {
  uv_write_t req;
  pqs_sink_t *sink;
  pqs__buf_t buf;
  uint64_t rows_end; /* the sink's rows_in when the chunk was cut */
  chunk_t *next;
};

static void maybe_finish(pqs_sink_t *k);

/* ---- writing ---- */

static void write_failed(pqs_sink_t *k, int err) {
  if (k->write_err == 0)
    k->write_err = err;
  if (k->state == K_RUNNING || k->state == K_PAUSED)
    pqs_stream_close(k->stream); /* cancels the query */
}

/* Rows up to `rows` are written whole: the caller hears of it. */
static void rows_out(pqs_sink_t *k, uint64_t rows) {
  if (rows <= k->rows_out)
    return;
  k->rows_out = rows;
  if (k->on_rows_written != NULL)
    k->on_rows_written(k, rows, k->data);
}

static void chunk_done(pqs_sink_t *k, chunk_t *c, int status) {
  k->queued -= c->buf.len;
  if (status < 0)
    write_failed(k, status);
  else
    k->bytes += c->buf.len;
  if (status >= 0 && k->write_err == 0)
    rows_out(k, c->rows_end);
  if (k->written)
    *k->written = k->bytes;
  if (k->spare.data == NULL) { /* keep one buffer for the next chunk */
    k->spare = c->buf;
    k->spare.len = 0;
  } else {
    pqs__buf_free(&c->buf);
  }
  pqs__free(c);
  if (k->state == K_PAUSED && k->queued <= k->max_queued / 2) {
    k->state = K_RUNNING;
    pqs_stream_resume(k->stream);
  }
  maybe_finish(k);
}

static void on_written(uv_write_t *req, int status) {
  chunk_t *c = (chunk_t *)req;
  chunk_done(c->sink, c, status);
}

static void fs_next(pqs_sink_t *k);

static void on_fs_written(uv_fs_t *req) {
  pqs_sink_t *k = req->data;
  chunk_t *c = k->fq_head;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  if (n >= 0 && (size_t)n < c->buf.len) { /* short write: send the rest */
    memmove(c->buf.data, c->buf.data + n, c->buf.len - (size_t)n);
    k->queued -= (size_t)n;
    k->bytes += (size_t)n;
    c->buf.len -= (size_t)n;
    k->fs_busy = 0;
    fs_next(k);
    return;
  }
  k->fq_head = c->next;
  if (k->fq_head == NULL)
    k->fq_tail = NULL;
  k->fs_busy = 0;
  chunk_done(k, c, n < 0 ? (int)n : 0);
  if (k->fq_head != NULL)
    fs_next(k);
}

static void fs_next(pqs_sink_t *k) {
  if (k->fs_busy || k->fq_head == NULL)
    return;
  chunk_t *c = k->fq_head;
  uv_buf_t b = uv_buf_init(c->buf.data, (unsigned)c->buf.len);
  k->fs_busy = 1;
  k->fs_req.data = k;
  int rc =
      uv_fs_write(k->loop, &k->fs_req, k->file_fd, &b, 1, -1, on_fs_written);
  if (rc < 0) {
    k->fs_busy = 0;
    k->fq_head = c->next;
    if (k->fq_head == NULL)
      k->fq_tail = NULL;
    chunk_done(k, c, rc);
  }
}

/* /dev/null takes every byte at once: no thread, no queue. */
static void write_null(pqs_sink_t *k) {
  uv_buf_t b = uv_buf_init(k->cur.data, (unsigned)k->cur.len);
  uv_fs_t req;
  int n = uv_fs_write(k->loop, &req, k->file_fd, &b, 1, -1, NULL);
  uv_fs_req_cleanup(&req);
  if (n < 0)
    write_failed(k, n);
  else
    k->bytes += (size_t)n;
  if (k->written)
    *k->written = k->bytes;
  k->cur.len = 0;
  if (n >= 0 && k->write_err == 0)
    rows_out(k, k->rows_in);
}

/* Hands what the current buffer holds to libuv, without copying it. */
static void send_current(pqs_sink_t *k) {
  if (k->cur.len == 0)
    return;
  if (k->write_err != 0) { /* the reader is gone: drop */
    k->cur.len = 0;
    return;
  }
  if (k->target == T_NULL) {
    write_null(k);
    return;
  }
  chunk_t *c = pqs__calloc(1, sizeof(*c));
  if (c == NULL) {
    write_failed(k, PQS_ENOMEM);
    k->cur.len = 0;
    return;
  }
  c->sink = k;
  c->rows_end = k->rows_in;
  c->buf = k->cur;
  k->cur = k->spare;
  k->spare = (pqs__buf_t){0};
  k->queued += c->buf.len;
  if (k->target == T_FILE) {
    if (k->fq_tail)
      k->fq_tail->next = c;
    else
      k->fq_head = c;
    k->fq_tail = c;
    fs_next(k);
    return;
  }
  uv_buf_t b = uv_buf_init(c->buf.data, (unsigned)c->buf.len);
  int rc = uv_write(&c->req, k->out, &b, 1, on_written);
  if (rc < 0)
    chunk_done(k, c, rc);
}

static void on_flush(uv_prepare_t *p) { send_current(p->data); }

/* ---- the stream's consumer ---- */

/* Not one row is written unless every column has exact text. */
static int check_text(pqs_sink_t *k, const pqs_row_t *cols) {
  int rc = pqs__format_check_text(k->format, cols, k->why, sizeof(k->why));
  if (rc != 0) {
    k->why_err = (pqs_error_t){.message = k->why};
    k->write_err = rc;
  }
  return rc;
}

static int sink_columns(pqs_stream_t *s, const pqs_row_t *cols, void *data) {
  (void)s;
  pqs_sink_t *k = data;
  int rc = check_text(k, cols);
  if (rc != 0)
    return rc;
  if (cols->schema->raw_copy) { /* a COPY's own data: no table of ours */
    k->psql = 0;
    return PQS_CONTINUE;
  }
  if (k->psql)
    return pqs__psql_header(&k->cur, &k->table, cols);
  if (!k->header || k->format == PQS_FORMAT_JSONL ||
      (k->header_written != NULL && *k->header_written))
    return PQS_CONTINUE;
  if (k->header_written != NULL)
    *k->header_written = 1;
  return pqs__format_header(&k->cur, k->format, cols);
}

/* Hot path: one row into the current chunk. */
static int format_row(pqs_sink_t *k, const pqs_row_t *row) {
  if (k->psql)
    return pqs__psql_row(&k->cur, &k->table, row);
  return pqs__format_row(&k->cur, k->format, row);
}

/* Hot path. */
static int sink_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  pqs_sink_t *k = data;
  if (k->write_err != 0)
    return k->write_err;
  int rc = format_row(k, row);
  if (rc != 0)
    return rc;
  k->rows_in++;
  if (k->cur.len >= PQS__CHUNK)
    send_current(k);
  if (k->queued + k->cur.len <= k->max_queued)
    return PQS_CONTINUE;
  send_current(k); /* so that a write callback comes to resume */
  k->state = K_PAUSED;
  return PQS_PAUSE;
}

/* The stream's completion, kept until every byte is out. */
static int copy_done(pqs_sink_t *k, const pqs_done_t *done) {
  k->done = *done;
  k->done.error = NULL;
  k->done.command_tag = NULL;
  if (done->command_tag && (k->tag = pqs__strdup(done->command_tag)) == NULL)
    return PQS_ENOMEM;
  k->done.command_tag = k->tag;
  if (done->error == NULL)
    return 0;
  k->done.error = &k->err; /* a static "out of memory" if the copy fails */
  return pqs__error_copy(&k->err, &k->err_strings, done->error, NULL);
}

/* RUNNING | PAUSED -> DRAINING. */
static void sink_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)s;
  pqs_sink_t *k = data;
  assert(k->state == K_RUNNING || k->state == K_PAUSED);
  k->stream = NULL;
  k->state = K_DRAINING;
  if (copy_done(k, done) != 0 && k->done.status == 0)
    k->done.status = PQS_ENOMEM;
  if (k->psql && k->done.status == 0 && k->write_err == 0 &&
      pqs__psql_end(&k->cur, &k->table) != 0)
    k->done.status = PQS_ENOMEM;
  send_current(k);
  maybe_finish(k);
}

/* ---- the end: everything written, handles closed, then the callback ---- */

static void sink_free(pqs_sink_t *k) {
  pqs__psql_free(&k->table);
  pqs__buf_free(&k->cur);
  pqs__buf_free(&k->spare);
  pqs__free(k->err_strings);
  pqs__free(k->tag);
  if (k->target == T_FILE || k->target == T_NULL)
    close(k->file_fd);
  pqs__free(k);
}

static void handle_closed(uv_handle_t *h) {
  pqs_sink_t *k = h->data;
  if (--k->handles > 0)
    return;
  if (k->cb != NULL) {
    if (k->write_err != 0) {
      /* The stream's own end (a cancel we caused) is not the story. */
      k->done.status = k->write_err;
      k->done.command_tag = NULL;
      k->done.error = k->why[0] ? &k->why_err : NULL;
    }
    k->cb(k, &k->done, k->bytes, k->data);
  }
  sink_free(k);
}

/* DRAINING -> CLOSING, or RUNNING -> CLOSING when the start failed. */
static void close_handles(pqs_sink_t *k) {
  assert(k->state == K_DRAINING || (k->state == K_RUNNING && k->cb == NULL));
  k->state = K_CLOSING;
  k->handles = 1;
  if (k->target == T_STREAM) {
    k->handles++;
    uv_close((uv_handle_t *)k->out, handle_closed);
  }
  uv_close((uv_handle_t *)&k->flush, handle_closed);
}

/* DRAINING -> CLOSING once nothing is left to write. */
static void maybe_finish(pqs_sink_t *k) {
  if (k->state == K_DRAINING && k->queued == 0 && !k->fs_busy)
    close_handles(k);
}

/* ---- opening ---- */

/* A new sink, or NULL with *rc set. */
static pqs_sink_t *sink_new(uv_loop_t *loop, const pqs_sink_opts_t *opts,
                            int *rc) {
  pqs_sink_t *k = pqs__calloc(1, sizeof(*k));
  *rc = PQS_ENOMEM;
  if (k == NULL)
    return NULL;
  k->loop = loop;
  k->file_fd = -1;
  if (opts != NULL) {
    k->format = opts->format;
    k->header = opts->header;
    k->max_queued = opts->max_queued;
    k->written = opts->written;
    k->header_written = opts->header_written;
    k->on_rows_written = opts->on_rows_written;
  }
  if (k->max_queued == 0)
    k->max_queued = PQS__DEFAULT_MAX_QUEUED;
  k->psql = k->format == PQS_FORMAT_UNALIGNED ||
            k->format == PQS_FORMAT_PSQL_CSV;
  if (k->psql && (*rc = pqs__psql_init(&k->table, k->format,
                                       opts->print)) != 0) {
    pqs__free(k);
    return NULL;
  }
  *rc = 0;
  return k;
}

/* Starts the stream with the sink as its consumer. On failure nothing is
 * left open and the stream is still unstarted. */
static int sink_start(pqs_sink_t *k, pqs_stream_t *s, pqs_sink_cb cb,
                      void *data) {
  uv_prepare_init(k->loop, &k->flush);
  k->flush.data = k;
  uv_prepare_start(&k->flush, on_flush);
  k->stream = s;
  k->state = K_RUNNING;
  pqs_stream_cbs_t cbs = {
      .on_columns = sink_columns, .on_row = sink_row, .on_done = sink_done};
  if (!k->psql) /* whose lines are never the server's */
    pqs__stream_take_lines(s, k->format); /* JSON Lines: see json_plan.c */
  int rc = pqs_stream_start(s, &cbs, k);
  if (rc != 0) {
    k->stream = NULL;
    k->cb = NULL; /* close quietly */
    close_handles(k);
    return rc;
  }
  k->cb = cb;
  k->data = data;
  return 0;
}

static int check_args(pqs_stream_t *s, pqs_sink_cb cb,
                      const pqs_sink_opts_t *opts) {
  if (s == NULL || cb == NULL ||
      (opts != NULL && (unsigned)opts->format > PQS_FORMAT_PSQL_CSV))
    return PQS_EINVAL;
  int rc = pqs__stream_check_users(s);
  if (rc == 0 && s->state != PQS__STREAM_NEW)
    rc = PQS_ESTATE;
  return rc;
}

static void failed_closed(uv_handle_t *h) { sink_free(h->data); }

/* Wraps `fd` (the sink's own dup) in the handle libuv writes it with. On
 * failure the dup is closed and the sink freed, now or from the loop. */
static int open_fd(pqs_sink_t *k, int fd) {
  int rc;
  uv_handle_type type = uv_guess_handle(fd);
  struct stat st;
  if (type == UV_UNKNOWN_HANDLE && fstat(fd, &st) == 0 &&
      (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode)))
    type = UV_FILE; /* a device (/dev/null, /dev/full): written as a file */
  if (type == UV_FILE) {
    k->file_fd = fd;
    /* Linux's memory devices (null 1:3) never block, like a buffer. */
    k->target = fstat(fd, &st) == 0 && S_ISCHR(st.st_mode) &&
                        major(st.st_rdev) == 1 && minor(st.st_rdev) == 3
                    ? T_NULL
                    : T_FILE;
    return 0;
  }
  if (type == UV_NAMED_PIPE)
    rc = uv_pipe_init(k->loop, &k->own.pipe, 0);
  else if (type == UV_TTY)
    rc = uv_tty_init(k->loop, &k->own.tty, fd, 0);
  else if (type == UV_TCP)
    rc = uv_tcp_init(k->loop, &k->own.tcp);
  else
    rc = PQS_EINVAL;
  if (rc != 0) { /* no handle to close */
    close(fd);
    pqs__free(k);
    return rc;
  }
  k->out = (uv_stream_t *)&k->own;
  k->out->data = k;
  if (type == UV_NAMED_PIPE)
    rc = uv_pipe_open(&k->own.pipe, fd);
  else if (type == UV_TCP)
    rc = uv_tcp_open(&k->own.tcp, fd);
  if (rc != 0) { /* the handle does not own fd yet */
    close(fd);
    uv_close((uv_handle_t *)k->out, failed_closed);
    return rc;
  }
  k->target = T_STREAM;
  return 0;
}

int pqs_sink_fd(pqs_stream_t *s, uv_loop_t *loop, int fd,
                const pqs_sink_opts_t *opts, pqs_sink_cb cb, void *data) {
  int rc = loop == NULL || fd < 0 ? PQS_EINVAL : check_args(s, cb, opts);
  if (rc != 0)
    return rc;
  pqs_sink_t *k = sink_new(loop, opts, &rc);
  if (k == NULL)
    return rc;
  int own = dup(fd);
  if (own < 0) {
    pqs__psql_free(&k->table);
    pqs__free(k);
    return uv_translate_sys_error(errno);
  }
  rc = open_fd(k, own);
  return rc != 0 ? rc : sink_start(k, s, cb, data);
}

int pqs_sink_uv(pqs_stream_t *s, uv_stream_t *out, const pqs_sink_opts_t *opts,
                pqs_sink_cb cb, void *data) {
  int rc = out == NULL ? PQS_EINVAL : check_args(s, cb, opts);
  if (rc != 0)
    return rc;
  pqs_sink_t *k = sink_new(out->loop, opts, &rc);
  if (k == NULL)
    return rc;
  k->target = T_CALLERS;
  k->out = out;
  return sink_start(k, s, cb, data);
}
