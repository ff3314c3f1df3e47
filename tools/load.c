/* --from-file FILE --into-table T: a file (or standard input) loaded into
 * a table with COPY FROM, all of it or none, as psql's \copy T FROM FILE.
 *
 * The file is read on the loop (a regular file by libuv's thread pool, a
 * pipe or terminal as a stream), cut at the last whole record of each
 * piece (a CSV record may hold newlines inside quotes), and put into the
 * load; reading pauses while the load holds what it cannot send.
 *
 *   OPENING --connected, the load begun--> LOADING --on_done--> ENDED
 *   OPENING --no connection, no load--> ENDED
 *
 * A regular file's first piece is read while connecting: that read also
 * starts libuv's thread pool first thing, since libuv aborts if it cannot
 * start its threads later, when memory may be short. ENDED closes
 * everything once no read is out. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define PIECE (64 * 1024)

typedef struct {
  cli_opts_t *o;
  uv_loop_t *loop;
  pqs_ctx_t *ctx;
  pqs_copy_in_t *ci; /* while the load runs */
  int fd;
  int is_file;        /* read with uv_fs_read; else `in` is a stream */
  union {
    uv_pipe_t pipe;
    uv_tty_t tty;
  } in;
  int reading;        /* fact: a read is asked for (file) or started */
  uv_fs_t req;
  char piece[PIECE];
  char *carry;        /* read, not yet put: [0, len) */
  size_t len, cap, scanned;
  int in_quotes;      /* CSV: the scan is inside a quoted field */
  int waiting;        /* fact: put said 1: no reading until on_ready */
  int eof;
  uint64_t rows;
  int exit_code;
  enum { OPENING, LOADING, ENDED } phase;
  ssize_t early;      /* OPENING: the first read's result, once it came */
  int early_in;       /* fact: `early` waits for LOADING */
  cli_watch_t watch;  /* signals and the progress line */
} loader_t;

static void read_more(loader_t *l);

/* ---- the end ---- */

static void close_all(loader_t *l) {
  if (l->is_file && l->reading)
    return; /* the read in flight closes it */
  cli_watch_close(&l->watch);
  if (!l->is_file && !uv_is_closing((uv_handle_t *)&l->in))
    uv_close((uv_handle_t *)&l->in, NULL);
  if (l->ctx != NULL)
    pqs_ctx_close(l->ctx, NULL);
  l->ctx = NULL;
}

static int code_of(loader_t *l, const pqs_done_t *done) {
  switch (done->status) {
  case 0:
    if (!l->o->quiet && done->command_tag)
      fprintf(stderr, "%s\n", done->command_tag);
    return CLI_OK;
  case PQS_ECANCELED:
    if (l->watch.signal)
      return cli_signal_code(l->watch.signal);
    return l->exit_code ? l->exit_code : CLI_FAILED;
  case PQS_ESQL:
    cli_print_error(done->error, done->status);
    return CLI_SQL;
  case PQS_ECONNLOST:
    cli_print_error(done->error, done->status);
    return CLI_CONNECT;
  case PQS_ETIMEDOUT:
    cli_say("the load was rolled back after %g s (--timeout)",
            l->o->timeout);
    return CLI_TIMEOUT;
  default:
    cli_print_error(done->error, done->status);
    return CLI_FAILED;
  }
}

static void on_loaded(pqs_copy_in_t *ci, const pqs_done_t *done, void *data) {
  (void)ci;
  loader_t *l = data;
  l->ci = NULL;
  int code = code_of(l, done);
  if (l->exit_code == CLI_OK)
    l->exit_code = code;
  l->phase = ENDED;
  close_all(l);
}

/* The file failed us: the load is rolled back. */
static void give_up(loader_t *l, int code) {
  if (l->exit_code == CLI_OK)
    l->exit_code = code;
  if (l->ci != NULL)
    pqs_copy_in_abort(l->ci);
}

/* ---- the file, cut into whole records ---- */

/* The end of the last whole record in the carry (0: none yet). */
static size_t records_end(loader_t *l) {
  size_t end = 0;
  int csv = l->o->format == PQS_FORMAT_CSV;
  for (size_t i = l->scanned; i < l->len; i++) {
    char c = l->carry[i];
    if (csv && c == '"')
      l->in_quotes = !l->in_quotes;
    else if (c == '\n' && !l->in_quotes)
      end = i + 1;
  }
  l->scanned = l->len;
  return end;
}

static int keep(loader_t *l, const char *p, size_t n) {
  if (l->len + n + 1 > l->cap) {
    size_t cap = l->cap ? l->cap : PIECE;
    while (cap < l->len + n + 1)
      cap *= 2;
    char *c = realloc(l->carry, cap);
    if (c == NULL)
      return -1;
    l->carry = c;
    l->cap = cap;
  }
  memcpy(l->carry + l->len, p, n);
  l->len += n;
  return 0;
}

/* Puts the whole records read so far; at the end of the file the rest
 * too (its last line may lack a newline), then ends the load. */
static void put_records(loader_t *l) {
  if (l->ci == NULL)
    return;
  size_t end = records_end(l);
  if (l->eof && l->len > 0) {
    if (l->carry[l->len - 1] != '\n' && keep(l, "\n", 1) != 0) {
      give_up(l, CLI_FAILED);
      return;
    }
    end = l->len;
  }
  if (end > 0) {
    for (size_t i = 0; i < end; i++)
      l->rows += l->carry[i] == '\n';
    int rc = pqs_copy_in_put(l->ci, l->carry, end);
    if (rc < 0) {
      cli_say("%s", pqs_strerror(rc));
      give_up(l, CLI_FAILED);
      return;
    }
    memmove(l->carry, l->carry + end, l->len - end);
    l->len -= end;
    l->scanned = l->len;
    l->waiting = rc == 1;
  }
  if (l->eof)
    pqs_copy_in_end(l->ci);
}

/* n bytes read (0: the end of the file; negative: a read error). */
static void got(loader_t *l, const char *p, ssize_t n) {
  if (n < 0) {
    cli_say("%s: %s", l->o->from_file, uv_strerror((int)n));
    give_up(l, CLI_FAILED);
    return;
  }
  if (n == 0)
    l->eof = 1;
  else if (keep(l, p, (size_t)n) != 0) {
    cli_say("%s", "out of memory");
    give_up(l, CLI_FAILED);
    return;
  }
  put_records(l);
  if (!l->eof && !l->waiting && l->ci != NULL)
    read_more(l);
}

/* A file's read came back (or could not be asked for): n as got's. */
static void read_done(loader_t *l, ssize_t n) {
  l->reading = 0;
  switch (l->phase) {
  case OPENING: /* kept until the load begins */
    l->early = n;
    l->early_in = 1;
    return;
  case ENDED: /* the load ended while the read was out */
    close_all(l);
    return;
  default:
    got(l, l->piece, n);
  }
}

static void on_fs_read(uv_fs_t *req) {
  loader_t *l = req->data;
  ssize_t n = req->result;
  uv_fs_req_cleanup(req);
  read_done(l, n);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)size;
  loader_t *l = h->data;
  *buf = uv_buf_init(l->piece, sizeof(l->piece));
}

static void on_stream_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  loader_t *l = s->data;
  (void)buf;
  if (n == 0)
    return; /* nothing this time */
  if (n == UV_EOF)
    n = 0;
  if (n == 0 || n < 0 || l->waiting || l->ci == NULL) {
    uv_read_stop(s);
    l->reading = 0;
  }
  if (l->ci != NULL)
    got(l, l->piece, n);
  if (l->waiting && l->reading) {
    uv_read_stop(s);
    l->reading = 0;
  }
}

static void read_more(loader_t *l) {
  if (l->reading)
    return;
  l->reading = 1;
  if (l->is_file) {
    uv_buf_t b = uv_buf_init(l->piece, sizeof(l->piece));
    l->req.data = l;
    int rc = uv_fs_read(l->loop, &l->req, l->fd, &b, 1, -1, on_fs_read);
    if (rc != 0)
      read_done(l, rc);
    return;
  }
  int rc = uv_read_start((uv_stream_t *)&l->in, on_alloc, on_stream_read);
  if (rc != 0) {
    l->reading = 0;
    got(l, NULL, rc);
  }
}

static void on_ready(pqs_copy_in_t *ci, void *data) {
  (void)ci;
  loader_t *l = data;
  l->waiting = 0;
  if (!l->eof)
    read_more(l);
}

/* ---- connecting, signals, progress ---- */

static void on_open(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                    void *data) {
  loader_t *l = data;
  if (status != 0) {
    l->ctx = NULL; /* the library closes a context that failed to open */
    l->exit_code = cli_connect_failed(l->o, status, err);
    l->phase = ENDED;
    close_all(l);
    return;
  }
  pqs_copy_in_opts_t co = {.format = l->o->format,
                           .header = l->o->header,
                           .timeout_ms = (unsigned)(l->o->timeout * 1000)};
  pqs_copy_in_cbs_t cbs = {.on_ready = on_ready, .on_done = on_loaded};
  int rc = pqs_copy_in(ctx, &l->ci, l->o->into_table, &co, &cbs, l);
  if (rc != 0) {
    cli_say("%s", pqs_strerror(rc));
    l->exit_code = CLI_FAILED;
    l->phase = ENDED;
    close_all(l);
    return;
  }
  l->phase = LOADING;
  if (l->early_in) {
    l->early_in = 0;
    got(l, l->piece, l->early);
  } else {
    read_more(l);
  }
}

static void on_signal(void *data, int signum) {
  loader_t *l = data;
  (void)signum; /* code_of names it, unless the load committed first */
  if (l->ci != NULL)
    pqs_copy_in_abort(l->ci); /* rolled back */
}

static void progress_line(void *data, double secs, char *line, size_t cap) {
  loader_t *l = data;
  snprintf(line, cap, "%llu rows in  %.0f rows/s  %.1f s",
           (unsigned long long)l->rows, secs > 0 ? l->rows / secs : 0.0,
           secs);
}

/* The input: a regular file is read by the thread pool, anything else
 * (a pipe, a terminal, a socket) as a stream. */
static int open_input(loader_t *l) {
  const char *path = l->o->from_file;
  l->fd = strcmp(path, "-") == 0 ? STDIN_FILENO
                                 : open(path, O_RDONLY | O_CLOEXEC);
  if (l->fd < 0) {
    cli_say("%s: %s", path, strerror(errno));
    return -1;
  }
  uv_handle_type t = uv_guess_handle(l->fd);
  l->is_file = t == UV_FILE || t == UV_UNKNOWN_HANDLE;
  int rc = 0;
  if (t == UV_TTY)
    rc = uv_tty_init(l->loop, &l->in.tty, l->fd, 1);
  else if (!l->is_file && (rc = uv_pipe_init(l->loop, &l->in.pipe, 0)) == 0 &&
           (rc = uv_pipe_open(&l->in.pipe, l->fd)) != 0) {
    uv_close((uv_handle_t *)&l->in.pipe, NULL);
    uv_run(l->loop, UV_RUN_DEFAULT);
  }
  if (rc != 0) {
    cli_say("%s: %s", path, uv_strerror(rc));
    if (l->fd > STDIN_FILENO)
      close(l->fd);
    return -1;
  }
  l->in.pipe.data = l;
  return 0;
}

int cli_load_file(cli_opts_t *o) {
  signal(SIGPIPE, SIG_IGN);
  loader_t *l = calloc(1, sizeof(*l));
  if (l == NULL) {
    cli_say("%s", "out of memory");
    return CLI_FAILED;
  }
  l->o = o;
  l->loop = uv_default_loop();
  if (l->loop == NULL || open_input(l) != 0) {
    if (l->loop == NULL)
      cli_say("%s", "out of memory");
    free(l);
    return CLI_FAILED;
  }
  if (l->is_file)
    read_more(l); /* the first piece, while connecting */
  char *conninfo = cli_conninfo(o, o->into_db ? o->into_db : o->dbname);
  unsigned ms = (unsigned)(o->timeout * 1000);
  pqs_ctx_opts_t co = {.connect_timeout_ms = ms, .query_timeout_ms = ms,
                       .on_notice = cli_notice_fn(o)};
  int progress = o->quiet ? 0 : o->progress >= 0 ? o->progress
                                                 : isatty(STDERR_FILENO);
  int rc = cli_watch_start(&l->watch, l->loop, progress, on_signal,
                           progress_line, l);
  if (rc != 0)
    cli_say("could not watch for signals: %s", pqs_strerror(rc));
  else if (conninfo == NULL) {
    cli_say("%s", "out of memory");
    rc = PQS_ENOMEM;
  } else if ((rc = pqs_ctx_open(&l->ctx, l->loop, conninfo, &co, on_open, l)))
    cli_say("could not connect: %s", pqs_strerror(rc));
  free(conninfo);
  if (rc != 0) {
    l->exit_code = CLI_FAILED;
    l->ctx = NULL;
    l->phase = ENDED;
    close_all(l);
  }
  uv_run(l->loop, UV_RUN_DEFAULT);
  rc = l->exit_code;
  if (l->fd > STDIN_FILENO && l->is_file)
    close(l->fd);
  uv_loop_close(l->loop);
  free(l->carry);
  free(l);
  return rc;
}
