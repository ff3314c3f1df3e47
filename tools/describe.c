/* Several queries into one CSV or TSV with --header: every query must
 * have the same columns, and a mismatch is found before the first byte is
 * written. Each statement is described on the server (prepared, not run),
 * one after another on one context; the first that returns rows gives the
 * header. A statement that cannot be described before the ones before it
 * have run (it reads a table they create) is left to run as it is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

typedef struct {
  const cli_opts_t *o;
  pqs_ctx_t *ctx;
  int next, first_rows, status, done;
  char first_cols[1024];
  cli_described_cb cb;
  void *data;
} plan_t;

/* "name type, name type" of a columns row. */
static void describe_cols(const pqs_row_t *cols, char *out, size_t cap) {
  out[0] = '\0';
  for (int i = 0; i < pqs_row_ncols(cols); i++) {
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%s%s (type %u)", i ? ", " : "",
             pqs_row_name(cols, i), (unsigned)pqs_row_type(cols, i));
  }
}

static void end(plan_t *p) {
  p->cb(p->ctx, p->status, p->first_rows, p->data);
  free(p);
}

static void next(plan_t *p);

static void on_described(pqs_ctx_t *ctx, int status, const pqs_row_t *cols,
                         const pqs_error_t *err, void *data) {
  (void)ctx;
  (void)err; /* a statement that will fail says so when it runs */
  plan_t *p = data;
  int at = p->next++;
  if (status == 0 && pqs_row_ncols(cols) > 0) {
    char mine[1024];
    describe_cols(cols, mine, sizeof(mine));
    if (p->first_rows < 0) {
      p->first_rows = at;
      snprintf(p->first_cols, sizeof(p->first_cols), "%s", mine);
    } else if (strcmp(mine, p->first_cols) != 0) {
      cli_say("query %d: its columns (%s) differ from query %d's (%s): "
              "with --header, every query must have the same columns",
              at + 1, mine, p->first_rows + 1, p->first_cols);
      p->status = CLI_USAGE;
      end(p);
      return;
    }
  }
  next(p);
}

static void next(plan_t *p) {
  while (p->next < p->o->ncommands && p->o->stmt_echo &&
         p->o->stmt_echo[p->next])
    p->next++; /* \echo's text: nothing to describe */
  if (p->next == p->o->ncommands) {
    end(p);
    return;
  }
  int rc = pqs_describe(p->ctx, p->o->commands[p->next], p->o->nparams,
                        on_described, p);
  if (rc != 0) {
    cli_say("%s", pqs_strerror(rc));
    p->status = CLI_FAILED;
    end(p);
  }
}

int cli_describe_all(const cli_opts_t *o, pqs_ctx_t *ctx, cli_described_cb cb,
                     void *data) {
  plan_t *p = calloc(1, sizeof(*p));
  if (p == NULL)
    return PQS_ENOMEM;
  *p = (plan_t){.o = o, .ctx = ctx, .first_rows = -1, .cb = cb, .data = data};
  next(p);
  return 0;
}

/* "input 2: message" of a merged batch, as "query 5: message". */
void cli_name_input(const pqs_error_t *err, int first_job, int ntargets,
                    char *out, size_t cap, pqs_error_t *named) {
  int k, used = 0;
  *named = *err;
  if (sscanf(err->message, "input %d: %n", &k, &used) != 1 || used == 0)
    return;
  int job = first_job + k;
  if (ntargets > 1)
    snprintf(out, cap, "query %d on shard %d: %s", job / ntargets + 1,
             job % ntargets + 1, err->message + used);
  else
    snprintf(out, cap, "query %d: %s", job + 1, err->message + used);
  named->message = out;
  named->text = NULL; /* libpq's rendering names no query */
}
