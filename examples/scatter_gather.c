/* scatter_gather: one query on several servers (shards), merged in key
 * order, as if one server held the whole table.
 *
 *   scatter_gather QUERY KEYCOL CONNINFO1 CONNINFO2 [...]
 *
 * QUERY must end in ORDER BY the column numbered KEYCOL (from 0) on each
 * shard; the ordered merge keeps that order across shards. One factory per
 * server, one context per shard stream. Prints the rows as TSV. */
#include <pqstream.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define MAXSHARDS 16

typedef struct {
  const char *query;
  int nshards, opened, failed;
  pqs_ctx_t *ctx[MAXSHARDS];
  pqs_sort_key_t key;
  uv_loop_t *loop;
} app_t;

static void on_written(pqs_sink_t *sink, const pqs_done_t *done,
                       uint64_t bytes, void *data) {
  (void)sink;
  app_t *app = data;
  if (done->status == UV_EPIPE) { /* the reader had enough: | head */
  } else if (done->status != 0) {
    fprintf(stderr, "scatter_gather: %s\n",
            done->error ? done->error->message : pqs_strerror(done->status));
    app->failed = 1;
  } else {
    fprintf(stderr, "%llu rows, %llu bytes from %d shards\n",
            (unsigned long long)done->rows, (unsigned long long)bytes,
            app->nshards);
  }
  for (int i = 0; i < app->nshards; i++)
    pqs_ctx_close(app->ctx[i], NULL);
}

static void all_open(app_t *app) {
  pqs_stream_t *in[MAXSHARDS], *merged;
  for (int i = 0; i < app->nshards; i++)
    if (pqs_query(app->ctx[i], &in[i], app->query, 0, NULL, NULL) != 0)
      abort();
  pqs_merge_opts_t mo = {
      .mode = PQS_MERGE_ORDERED, .keys = &app->key, .nkeys = 1};
  if (pqs_merge(in, app->nshards, &mo, &merged) != 0)
    abort();
  pqs_sink_fd(merged, app->loop, STDOUT_FILENO, NULL, on_written, app);
}

static void on_ctx(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                   void *data) {
  app_t *app = data;
  if (status != 0) {
    fprintf(stderr, "shard: %s\n", err ? err->message : pqs_strerror(status));
    app->failed = 1;
    app->nshards--; /* what opened is closed below */
  } else {
    app->ctx[app->opened++] = ctx;
  }
  if (app->opened == app->nshards) {
    if (app->failed) {
      for (int i = 0; i < app->opened; i++)
        pqs_ctx_close(app->ctx[i], NULL);
      return;
    }
    all_open(app);
  }
}

int main(int argc, char **argv) {
  if (argc < 5 || argc - 3 > MAXSHARDS) {
    fprintf(stderr, "usage: %s QUERY KEYCOL CONNINFO1 CONNINFO2 [...]\n",
            argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); /* a reader that leaves is UV_EPIPE instead */
  app_t app = {.query = argv[1],
               .nshards = argc - 3,
               .key = {atoi(argv[2]), 0},
               .loop = uv_default_loop()};
  pqs_factory_t *f[MAXSHARDS];
  int n = app.nshards;
  for (int i = 0; i < n; i++) {
    pqs_factory_opts_t o = {.conninfo = argv[3 + i], .max_size = 4};
    if (pqs_factory_new(&f[i], &o) != 0)
      return 1;
    pqs_factory_open_ctx(f[i], app.loop, NULL, on_ctx, &app);
  }
  uv_run(app.loop, UV_RUN_DEFAULT);
  for (int i = 0; i < n; i++)
    pqs_factory_free(f[i]);
  uv_loop_close(app.loop);
  return app.failed ? 1 : 0;
}
