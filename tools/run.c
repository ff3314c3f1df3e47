/* Running the queries: factories per server, streams merged N at a time,
 * written by the library's sink; signals, progress and exit codes. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

#define MAXKEYS 16

typedef struct app_s app_t;

typedef struct {
  app_t *app;
  int target; /* the server: -d, or a --shard */
  const char *sql;
  pqs_ctx_t *ctx;
  int echo; /* fact: `sql` is \echo's text, printed in its turn */
  const char *to; /* \copy ... TO's file ("-": standard output), or NULL */
} job_t;

struct app_s {
  cli_opts_t *o;
  uv_loop_t *loop;
  int outfd;
  int ntargets;
  pqs_factory_t *f[CLI_MAX];
  job_t *jobs;
  int njobs, batch_size, next, batch_len, acquired;
  pqs_stream_t *current; /* the running batch's stream; NULL once freed */
  pqs_factory_t *into_f; /* --into-table: the target's pool */
  pqs_into_t *into;      /* the running batch's load, while it runs */
  pqs_ctx_t *into_ctx;   /* its target context, until it ends */
  pqs_stream_t *into_s;  /* its stream, while a target context comes */
  pqs_ctx_t *held;       /* one at a time: the context kept for the next one */
  int header_written;    /* one --header line for every statement's sink */
  uint64_t rows, written, written_before;
  int exit_code;
  /* RUNNING --an error, a signal, a reader gone: stop()--> STOPPING (no
   * new batch starts; the running one ends) --finish()--> FINISHED (the
   * tool's handles closed; the loop ends) */
  enum { APP_RUNNING, APP_STOPPING, APP_FINISHED } phase;
  cli_watch_t watch; /* signals and the progress line */
  char key_names[MAXKEYS][64];
  pqs_sort_key_t keys[MAXKEYS];
  int nkeys, keys_resolved;
  const char *bad_key;
};

static void start_batch(app_t *app);
static void connect_failed(app_t *app, int status, const pqs_error_t *err);

/* One statement at a time on one server: a script, run on one context. */
static int one_at_a_time(const app_t *app) {
  return app->batch_size == 1 && app->o->nshards <= 1;
}

static void let_go_of_held(app_t *app) {
  if (app->held != NULL)
    pqs_ctx_close(app->held, NULL); /* back to its pool */
  app->held = NULL;
}

/* ---- --order-by ---- */

static int parse_order_by(app_t *app, const char *spec) {
  char buf[1024];
  snprintf(buf, sizeof(buf), "%s", spec);
  char *save = NULL;
  for (char *item = strtok_r(buf, ",", &save); item;
       item = strtok_r(NULL, ",", &save)) {
    if (app->nkeys == MAXKEYS)
      return -1;
    char *colon = strchr(item, ':');
    int desc = 0;
    if (colon) {
      *colon = '\0';
      if (strcmp(colon + 1, "desc") == 0)
        desc = 1;
      else if (strcmp(colon + 1, "asc") != 0)
        return -1;
    }
    if (*item == '\0' || strlen(item) >= sizeof(app->key_names[0]))
      return -1;
    strcpy(app->key_names[app->nkeys], item);
    app->keys[app->nkeys++] = (pqs_sort_key_t){.col = -1, .desc = desc};
  }
  return app->nkeys > 0 ? 0 : -1;
}

/* Finds the key columns by name (or 1-based number) in the first row. */
static void resolve_keys(app_t *app, const pqs_row_t *row) {
  app->keys_resolved = 1;
  for (int k = 0; k < app->nkeys; k++) {
    const char *name = app->key_names[k];
    int n = pqs_row_ncols(row);
    char *end;
    long num = strtol(name, &end, 10);
    if (*end == '\0' && num >= 1 && num <= n)
      app->keys[k].col = (int)num - 1;
    for (int c = 0; c < n && app->keys[k].col < 0; c++)
      if (strcmp(pqs_row_name(row, c), name) == 0)
        app->keys[k].col = c;
    if (app->keys[k].col < 0)
      app->bad_key = name;
  }
}

static int order_cmp(const pqs_row_t *a, const pqs_row_t *b, void *data) {
  app_t *app = data;
  if (!app->keys_resolved)
    resolve_keys(app, a);
  return app->bad_key ? 0 : pqs_row_compare(a, b, app->keys, app->nkeys);
}

/* ---- progress ---- */

static void progress_line(void *data, double secs, char *line, size_t cap) {
  app_t *app = data;
  snprintf(line, cap, "%llu rows  %.0f rows/s  %.1f MB  %.1f s",
           (unsigned long long)app->rows, secs > 0 ? app->rows / secs : 0.0,
           (app->written_before + app->written) / 1e6, secs);
}

/* ---- the end ---- */

static void finish(app_t *app) {
  if (app->phase == APP_FINISHED)
    return;
  app->phase = APP_FINISHED;
  let_go_of_held(app);
  cli_watch_close(&app->watch);
}

static void stop(app_t *app, int code) {
  if (app->exit_code == CLI_OK)
    app->exit_code = code;
  if (app->phase == APP_RUNNING)
    app->phase = APP_STOPPING;
}

/* Statements that run one at a time share one connection, as a psql
 * script does (a BEGIN holds over the next statement, so do SET and temp
 * tables); parallel ones go back to their pool, reset, after each batch. */
static void release_batch(app_t *app) {
  for (int i = app->next - app->batch_len; i < app->next; i++) {
    pqs_ctx_t *ctx = app->jobs[i].ctx;
    app->jobs[i].ctx = NULL;
    if (ctx == NULL)
      continue;
    if (one_at_a_time(app) && app->phase == APP_RUNNING &&
        !pqs_ctx_is_broken(ctx))
      app->held = ctx;
    else
      pqs_ctx_close(ctx, NULL); /* back to its pool */
  }
}

/* A merged batch's error names the query as typed, not the input. */
static void print_error(app_t *app, const pqs_error_t *err, int status) {
  char text[1024];
  pqs_error_t named;
  if (err != NULL && app->batch_len > 1) {
    cli_name_input(err, app->next - app->batch_len,
                   app->o->nshards ? app->o->nshards : 1, text, sizeof(text),
                   &named);
    err = &named;
  }
  cli_print_error(err, status);
}

/* The server's error: from a -f script, prefixed with the file and the
 * line its statement ends on and exit 3, as psql with ON_ERROR_STOP;
 * else exit 1. A merged batch names its queries instead. */
static int sql_error(app_t *app, const pqs_done_t *done) {
  const cli_opts_t *o = app->o;
  int ntargets = o->nshards ? o->nshards : 1, from_file = 0;
  int first = (app->next - app->batch_len) / ntargets;
  int last = (app->next - 1) / ntargets;
  for (int c = first; c <= last && c < o->ncommands && o->stmt_file; c++)
    from_file |= o->stmt_file[c] != NULL;
  if (from_file && first == last)
    fprintf(stderr, "pqstream:%s:%d: ", o->stmt_file[first],
            o->stmt_line[first]);
  print_error(app, done->error, done->status);
  return from_file ? CLI_SCRIPT : CLI_SQL;
}

/* How a batch ended, as an exit status. */
static int exit_code_of(app_t *app, const pqs_done_t *done) {
  switch (done->status) {
  case 0:
  case UV_EPIPE: /* the reader had enough (| head): not a failure */
    return CLI_OK;
  case PQS_ECANCELED:
    if (app->watch.signal)
      return cli_signal_code(app->watch.signal);
    if (app->o->changes && app->o->limit >= 0 &&
        app->rows >= (uint64_t)app->o->limit)
      return CLI_OK; /* --limit's changes are written: closed by us */
    break;
  case PQS_ESQL:
    return sql_error(app, done);
  case PQS_ECONNLOST:
    print_error(app, done->error, done->status);
    return CLI_CONNECT;
  case PQS_ETIMEDOUT:
    cli_say("query cancelled after %g s (--timeout)", app->o->timeout);
    return CLI_TIMEOUT;
  default:
    break;
  }
  if (done->status > -30000 && done->status < 0) { /* libuv's: the output */
    cli_say("%s: %s", app->o->output ? app->o->output : "standard output",
            pqs_strerror(done->status));
    return CLI_FAILED;
  }
  if (app->bad_key) {
    cli_say("--order-by: no column '%s' in the result", app->bad_key);
    return CLI_USAGE;
  }
  print_error(app, done->error, done->status);
  return CLI_FAILED;
}

/* A command's tag (UPDATE 3, BEGIN ...) on stderr, as psql says it, but
 * apart from the rows; not for queries, whose output is their rows. */
static void say_tag(app_t *app, const pqs_done_t *done) {
  const char *tag = done->command_tag;
  /* "COPY n" here is the COPY source's, reading a query: no command. */
  if (app->o->quiet || tag == NULL || app->batch_len != 1 || done->rows > 0 ||
      strncmp(tag, "SELECT", 6) == 0 || strncmp(tag, "COPY ", 5) == 0)
    return;
  fprintf(stderr, "%s\n", tag);
}

static void on_written(pqs_sink_t *sink, const pqs_done_t *done, uint64_t bytes,
                       void *data) {
  (void)sink;
  app_t *app = data;
  app->written_before += bytes;
  app->written = 0;
  int code = exit_code_of(app, done);
  if (code != CLI_OK || done->status == UV_EPIPE)
    stop(app, code);
  else
    say_tag(app, done);
  release_batch(app);
  start_batch(app);
}

/* ---- a batch: its contexts, its streams, one sink ---- */

static int count_rows(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  (void)row;
  app_t *app = data;
  app->rows++;
  /* --changes --limit: the last change goes to the sink, then the stream
   * waits, paused, for its line to be written and acknowledged */
  if (app->o->changes && app->o->limit >= 0 &&
      app->rows >= (uint64_t)app->o->limit)
    return PQS_PAUSE;
  return app->bad_key ? PQS_EINVAL : PQS_CONTINUE;
}

/* --changes: what is written is used; the transactions whose changes are
 * all written are acknowledged, and --limit's last ends the stream. */
static void rows_written(pqs_sink_t *sink, uint64_t rows, void *data) {
  (void)sink;
  app_t *app = data;
  if (app->current == NULL)
    return;
  pqs_changes_ack(app->current, rows);
  if (app->o->limit >= 0 && rows >= (uint64_t)app->o->limit)
    pqs_stream_close(app->current);
}

static void stream_gone(void *data) { ((app_t *)data)->current = NULL; }

static int build_stream(app_t *app, pqs_stream_t **out) {
  const cli_opts_t *o = app->o;
  pqs_stream_t *in[CLI_MAX * 4];
  int first = app->next - app->batch_len, rc = 0, made = 0;
  pqs_changes_opts_t co = {.slot = o->changes,
                           .publications = o->publications,
                           .npublications = o->npublications,
                           .create = o->create_slot ? PQS_SLOT_PERSISTENT
                                                    : PQS_SLOT_USE,
                           .manual_ack = 1}; /* acked once written */
  for (; made < app->batch_len && rc == 0; made++)
    rc = o->changes ? pqs_changes(app->jobs[first + made].ctx, &in[made], &co)
         : o->nlisten ? pqs_listen(app->jobs[first + made].ctx, o->listen,
                                   o->nlisten, &in[made])
                      : pqs_query(app->jobs[first + made].ctx, &in[made],
                                  app->jobs[first + made].sql, o->nparams,
                                  o->params, NULL);
  if (rc != 0) {
    for (int i = 0; i < made - 1; i++)
      pqs_stream_close(in[i]);
    return rc;
  }
  if (app->batch_len == 1) {
    *out = in[0];
    return 0;
  }
  pqs_merge_opts_t mo = {
      .mode = app->nkeys ? PQS_MERGE_ORDERED : PQS_MERGE_INTERLEAVE,
      .cmp = app->nkeys ? order_cmp : NULL,
      .cmp_data = app,
      .mixed_columns = !app->nkeys && (o->format == PQS_FORMAT_JSONL ||
                                       (!o->header && !cli_psql_format(o)))};
  rc = pqs_merge(in, app->batch_len, &mo, out);
  if (rc != 0)
    for (int i = 0; i < app->batch_len; i++)
      pqs_stream_close(in[i]);
  return rc;
}

/* ---- --into-table: each batch's stream is one load ---- */

static void on_loaded(pqs_into_t *in, const pqs_done_t *done, pqs_side_t side,
                      void *data) {
  (void)in;
  app_t *app = data;
  app->into = NULL;
  pqs_ctx_close(app->into_ctx, NULL); /* back to its pool */
  app->into_ctx = NULL;
  if (done->status != 0 && done->status != PQS_ECANCELED && !app->o->quiet)
    cli_say("%s", side == PQS_SIDE_TARGET ? "the load into the table failed"
                  : side == PQS_SIDE_SOURCE ? "the query failed: nothing was "
                                              "loaded"
                                            : "nothing was loaded");
  int code = exit_code_of(app, done);
  if (code != CLI_OK)
    stop(app, code);
  else if (!app->o->quiet && done->command_tag != NULL)
    fprintf(stderr, "%s\n", done->command_tag);
  release_batch(app);
  start_batch(app);
}

static void on_target(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                      void *data) {
  app_t *app = data;
  pqs_stream_t *s = app->into_s;
  app->into_s = NULL;
  int rc = status;
  if (rc == 0 && app->phase == APP_RUNNING) {
    pqs_copy_in_opts_t co = {.timeout_ms = (unsigned)(app->o->timeout * 1000)};
    rc = pqs_stream_into(s, ctx, app->o->into_table, &co, on_loaded, app,
                         &app->into);
    if (rc == 0) {
      app->current = s;
      app->into_ctx = ctx;
      return;
    }
  }
  pqs_stream_close(s);
  if (ctx != NULL)
    pqs_ctx_close(ctx, NULL);
  if (status != 0)
    connect_failed(app, status, err);
  else if (rc != 0)
    cli_say("%s", pqs_strerror(rc));
  stop(app, status != 0 ? CLI_CONNECT : CLI_FAILED);
  release_batch(app);
  start_batch(app);
}

static int into_table(app_t *app, pqs_stream_t *s) {
  app->into_s = s;
  int rc = pqs_factory_open_ctx(app->into_f, app->loop, NULL, on_target, app);
  if (rc != 0)
    app->into_s = NULL;
  return rc;
}

/* Where the batch writes: the output, or a \copy's own file (the sink
 * takes a dup of it, so the tool's is closed once the sink has it). */
static int batch_fd(app_t *app, int *opened) {
  const char *to = app->batch_len == 1 ? app->jobs[app->next - 1].to : NULL;
  *opened = -1;
  if (to == NULL)
    return app->outfd;
  if (strcmp(to, "-") == 0)
    return STDOUT_FILENO;
  *opened = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (*opened < 0)
    cli_say("%s: %s", to, strerror(errno));
  return *opened;
}

/* The batch's stream, counted and limited, into the sink. */
static void sink_stream(app_t *app, pqs_stream_t *s, int rc) {
  if (rc == 0 && app->o->limit >= 0 && !app->o->changes)
    rc = pqs_stream_take(s, (uint64_t)app->o->limit - app->rows);
  if (rc == 0)
    rc = pqs_stream_tap(s, count_rows, app, stream_gone);
  pqs_sink_opts_t so = {.format = app->o->format,
                        .header = app->o->header,
                        .header_written = &app->header_written,
                        .written = &app->written,
                        .print = &app->o->print,
                        .on_rows_written =
                            app->o->changes ? rows_written : NULL};
  if (rc == 0 && app->into_f != NULL && (rc = into_table(app, s)) == 0)
    return;
  int opened = -1, fd = app->outfd;
  if (rc == 0 && app->into_f == NULL && (fd = batch_fd(app, &opened)) < 0)
    rc = 1; /* the file's error is said */
  else if (rc == 0 && app->into_f == NULL)
    rc = pqs_sink_fd(s, app->loop, fd, &so, on_written, app);
  if (opened >= 0)
    close(opened); /* the sink writes to its own dup */
  if (rc == 0 && app->into_f == NULL) {
    app->current = s;
    return;
  }
  if (s != NULL)
    pqs_stream_close(s); /* unstarted: freed now, a merge's inputs too */
  if (rc != 1)
    cli_say("%s", pqs_strerror(rc));
  stop(app, CLI_FAILED);
  release_batch(app);
  start_batch(app);
}

static void run_batch(app_t *app) {
  if (app->phase != APP_RUNNING) {
    release_batch(app);
    start_batch(app);
    return;
  }
  pqs_stream_t *s = NULL;
  int rc = build_stream(app, &s);
  sink_stream(app, s, rc);
}

/* ---- --partition-on: one query over key ranges ---- */

static void on_parts(pqs_factory_t *f, int status, const pqs_error_t *err,
                     pqs_stream_t *merged, void *data) {
  (void)f;
  app_t *app = data;
  if (status == 0) {
    sink_stream(app, merged, 0);
    return;
  }
  pqs_done_t done = {.status = status, .error = err};
  stop(app, exit_code_of(app, &done));
  start_batch(app); /* nothing more to run: the end */
}

/* The one job, its contexts the partitioned read's own. */
static void start_partitioned(app_t *app) {
  const cli_opts_t *o = app->o;
  app->batch_len = 1;
  app->next = 1;
  pqs_partition_opts_t po = {.column = o->partition_on,
                             .partitions = o->partitions,
                             .ordered = o->order_by !=
                                        NULL, /* the same column: checked */
                             .nparams = o->nparams,
                             .params = o->params};
  int rc = pqs_partitioned(app->f[0], app->loop, app->jobs[0].sql, &po,
                           on_parts, app);
  if (rc != 0)
    on_parts(app->f[0], rc, NULL, NULL, app);
}

/* A context that could not be had: say why (once), and stop. */
static void connect_failed(app_t *app, int status, const pqs_error_t *err) {
  if (app->exit_code != CLI_OK)
    return;
  stop(app, cli_connect_failed(app->o, status, err));
}

static void on_ctx(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                   void *data) {
  job_t *job = data;
  app_t *app = job->app;
  job->ctx = ctx;
  if (status != 0)
    connect_failed(app, status, err);
  if (++app->acquired == app->batch_len)
    run_batch(app);
}

/* \echo's text on standard output (not -o's file: as psql's \echo),
 * after what ran before it was written. The sinks leave a pipe
 * non-blocking: a full one is waited for, as a terminal would be. */
static int echo(const char *text) {
  for (size_t len = strlen(text), done = 0; done < len;) {
    ssize_t n = write(STDOUT_FILENO, text + done, len - done);
    if (n < 0 && errno == EAGAIN) {
      struct pollfd pfd = {.fd = STDOUT_FILENO, .events = POLLOUT};
      poll(&pfd, 1, 1000);
      continue;
    }
    if (n < 0 && errno != EINTR)
      return -1;
    done += n > 0 ? (size_t)n : 0;
  }
  return 0;
}

static void start_batch(app_t *app) {
  const cli_opts_t *o = app->o;
  while (app->phase == APP_RUNNING && app->next < app->njobs &&
         app->jobs[app->next].echo)
    if (echo(app->jobs[app->next++].sql) != 0) {
      cli_say("standard output: %s", strerror(errno));
      stop(app, errno == EPIPE ? CLI_OK : CLI_FAILED);
    }
  if (app->phase != APP_RUNNING || app->next == app->njobs ||
      (o->limit >= 0 && app->rows >= (uint64_t)o->limit)) {
    finish(app);
    return;
  }
  if (o->partition_on != NULL) {
    start_partitioned(app);
    return;
  }
  app->batch_len = app->njobs - app->next < app->batch_size
                       ? app->njobs - app->next
                       : app->batch_size;
  app->acquired = 0;
  int first = app->next;
  app->next += app->batch_len;
  for (int i = first; i < app->next; i++) {
    job_t *job = &app->jobs[i];
    if (app->held != NULL) { /* the previous statement's connection */
      pqs_ctx_t *ctx = app->held;
      app->held = NULL;
      on_ctx(ctx, 0, NULL, job);
      continue;
    }
    int rc =
        pqs_factory_open_ctx(app->f[job->target], app->loop, NULL, on_ctx, job);
    if (rc != 0)
      on_ctx(NULL, rc, NULL, job);
  }
}

/* ---- describe first: several queries into one CSV/TSV with a header ---- */

static void on_planned(pqs_ctx_t *ctx, int status, int first_rows, void *data) {
  (void)first_rows; /* the first sink to get columns writes the header */
  app_t *app = data;
  if (status != CLI_OK)
    stop(app, status);
  if (one_at_a_time(app) && status == CLI_OK)
    app->held = ctx; /* the statements run on it next */
  else
    pqs_ctx_close(ctx, NULL);
  start_batch(app);
}

static void on_plan_ctx(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                        void *data) {
  app_t *app = data;
  if (status != 0) {
    connect_failed(app, status, err);
    start_batch(app); /* stopped: it finishes */
    return;
  }
  int rc = cli_describe_all(app->o, ctx, on_planned, app);
  if (rc != 0) {
    cli_say("%s", pqs_strerror(rc));
    stop(app, CLI_FAILED);
    pqs_ctx_close(ctx, NULL);
    start_batch(app);
  }
}

/* The first step: describe when several queries share one header. */
static void begin(app_t *app) {
  const cli_opts_t *o = app->o;
  int shared = o->format == PQS_FORMAT_TSV || o->format == PQS_FORMAT_CSV;
  if (!o->header || !shared || o->ncommands < 2) {
    start_batch(app);
    return;
  }
  int rc = pqs_factory_open_ctx(app->f[0], app->loop, NULL, on_plan_ctx, app);
  if (rc != 0)
    on_plan_ctx(NULL, rc, NULL, app);
}

/* ---- signals: cancel on the server, then leave ---- */

static void on_signal(void *data, int signum) {
  app_t *app = data;
  stop(app, cli_signal_code(signum));
  if (app->into != NULL)
    pqs_into_stop(app->into); /* the load rolled back, the query cancelled */
  else if (app->current != NULL)
    pqs_stream_close(app->current); /* cancels every query of it */
}

/* ---- setting up ---- */

static int open_output(const cli_opts_t *o) {
  if (o->output == NULL)
    return STDOUT_FILENO;
  int fd = open(o->output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (fd < 0)
    cli_say("%s: %s", o->output, strerror(errno));
  return fd;
}


/* --into-table: the target's pool, a context per batch's load. */
static int make_into_factory(app_t *app) {
  const cli_opts_t *o = app->o;
  char *conninfo = cli_conninfo(o, o->into_db ? o->into_db : o->dbname);
  if (conninfo == NULL)
    return PQS_ENOMEM;
  unsigned ms = (unsigned)(o->timeout * 1000);
  pqs_factory_opts_t fo = {.conninfo = conninfo,
                           .max_size = 1,
                           .connect_timeout_ms = ms,
                           .acquire_timeout_ms = 3600 * 1000,
                           .on_notice = cli_notice_fn(o)};
  int rc = pqs_factory_new(&app->into_f, &fo);
  free(conninfo);
  return rc;
}

static int make_factories(app_t *app) {
  const cli_opts_t *o = app->o;
  int n = o->nshards ? o->nshards : 1;
  unsigned ms = (unsigned)(o->timeout * 1000);
  for (int t = 0; t < n; t++) {
    char *conninfo = cli_conninfo(o, o->nshards ? o->shards[t] : o->dbname);
    if (conninfo == NULL)
      return PQS_ENOMEM;
    pqs_factory_opts_t fo = {
        .conninfo = conninfo,
        .max_size = (unsigned)app->batch_size,
        .connect_timeout_ms = ms,
        .query_timeout_ms = ms,
        .acquire_timeout_ms = 3600 * 1000,
        .source = o->single_row ? PQS_SOURCE_SINGLE_ROW : PQS_SOURCE_COPY,
        .on_notice = cli_notice_fn(o)};
    int rc = pqs_factory_new(&app->f[t], &fo); /* it keeps a copy */
    free(conninfo);
    if (rc != 0)
      return rc;
    app->ntargets = t + 1; /* the ones made, for app_free */
  }
  return o->into_table ? make_into_factory(app) : 0;
}

static int plan(app_t *app) {
  const cli_opts_t *o = app->o;
  int ntargets = o->nshards ? o->nshards : 1;
  int one = o->nlisten || o->changes; /* one stream, of events */
  app->njobs = one ? 1 : o->ncommands * ntargets;
  app->jobs = calloc((size_t)app->njobs, sizeof(*app->jobs));
  if (app->jobs == NULL) {
    cli_say("%s", "out of memory");
    return CLI_FAILED;
  }
  if (one) /* one stream: the notifications, or the changes */
    app->jobs[0] = (job_t){app, 0, NULL, NULL, 0, NULL};
  for (int c = 0, j = 0; c < o->ncommands && !one; c++)
    for (int t = 0; t < ntargets; t++, j++)
      app->jobs[j] = (job_t){app, t, o->commands[c], NULL,
                             o->stmt_echo ? o->stmt_echo[c] : 0,
                             o->stmt_to ? o->stmt_to[c] : NULL};
  app->batch_size = o->jobs ? o->jobs : o->nshards ? app->njobs : 1;
  if (o->partition_on) /* K ranges and the NULL keys, a context each */
    app->batch_size = o->partitions + 1;
  if (app->batch_size > CLI_MAX * 4)
    app->batch_size = CLI_MAX * 4;
  for (int c = 0; c < o->ncommands && o->stmt_echo; c++)
    if (o->stmt_echo[c] && (app->batch_size > 1 || ntargets > 1)) {
      cli_say("%s", "\\echo prints in its turn among statements run one at "
                    "a time: not with -j or --shard");
      return CLI_USAGE;
    }
  if (o->partition_on && o->ncommands != 1) {
    cli_say("%s", "--partition-on reads one query; give exactly one");
    return CLI_USAGE;
  }
  if (o->partition_on && o->order_by &&
      strcmp(o->order_by, o->partition_on) != 0) {
    cli_say("--partition-on %s orders by its own key only: --order-by %s",
            o->partition_on, o->partition_on);
    return CLI_USAGE;
  }
  if (o->partition_on) /* ordered by the ranges, not by a merge's keys */
    return CLI_OK;
  if (o->order_by && parse_order_by(app, o->order_by) != 0) {
    cli_say("--order-by takes COLUMN[:desc],... not '%s'", o->order_by);
    return CLI_USAGE;
  }
  if (app->nkeys && app->batch_size < app->njobs) {
    cli_say("--order-by merges all %d streams at once: give -j %d or more",
            app->njobs, app->njobs);
    return CLI_USAGE;
  }
  return CLI_OK;
}

/* Releases what cli_run set up before the loop ran. */
static void app_free(app_t *app) {
  for (int t = 0; t < app->ntargets; t++)
    pqs_factory_free(app->f[t]);
  if (app->into_f != NULL)
    pqs_factory_free(app->into_f);
  if (app->outfd > STDOUT_FILENO)
    close(app->outfd);
  free(app->jobs);
  free(app);
}

/* Everything before the loop runs; CLI_OK, or an exit code with the
 * reason already said. */
static int set_up(app_t *app) {
  const cli_opts_t *o = app->o;
  int rc = plan(app);
  if (rc != CLI_OK)
    return rc;
  if ((app->outfd = open_output(o)) < 0)
    return CLI_FAILED;
  if ((rc = make_factories(app)) != 0) {
    cli_say("could not set up the connection pools: %s", pqs_strerror(rc));
    return CLI_FAILED;
  }
  int progress = o->quiet ? 0
                 : o->progress >= 0
                     ? o->progress
                     : isatty(STDERR_FILENO) && !isatty(app->outfd);
  if ((rc = cli_watch_start(&app->watch, app->loop, progress, on_signal,
                            progress_line, app)) != 0) {
    cli_say("could not watch for signals: %s", pqs_strerror(rc));
    return CLI_FAILED;
  }
  return CLI_OK;
}

int cli_run(cli_opts_t *o) {
  signal(SIGPIPE, SIG_IGN); /* a reader that leaves is UV_EPIPE instead */
  app_t *app = calloc(1, sizeof(*app));
  uv_loop_t *loop = uv_default_loop();
  if (app == NULL || loop == NULL) {
    free(app);
    cli_say("%s", "out of memory");
    return CLI_FAILED;
  }
  app->o = o;
  app->loop = loop;
  app->outfd = -1;
  int rc = set_up(app);
  if (rc != CLI_OK) {
    uv_run(loop, UV_RUN_DEFAULT); /* closes what set_up began */
    uv_loop_close(loop);
    app_free(app);
    return rc;
  }
  begin(app);
  uv_run(app->loop, UV_RUN_DEFAULT);
  rc = app->exit_code;
  if (app->outfd != STDOUT_FILENO && close(app->outfd) != 0 && rc == CLI_OK) {
    cli_say("%s: %s", o->output, strerror(errno));
    rc = CLI_FAILED;
  }
  app->outfd = -1;
  uv_loop_close(app->loop);
  app_free(app);
  return rc;
}
