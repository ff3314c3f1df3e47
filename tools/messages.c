/* What the tool says on stderr, as psql says it; and reading a file of
 * SQL. Shared by the tool's commands. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("pqstream: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

void cli_print_error(const pqs_error_t *err, int status) {
  if (err == NULL) {
    fprintf(stderr, "ERROR:  %s\n", pqs_strerror(status));
    return;
  }
  const char *sev = err->severity ? err->severity : "ERROR";
  fprintf(stderr, "%s:  %s", sev, err->message);
  if (err->sqlstate)
    fprintf(stderr, " (SQLSTATE %s)", err->sqlstate);
  fputc('\n', stderr);
  /* The rest as psql prints it: libpq's rendering after its first line
   * (LINE n: with the caret, DETAIL, HINT, CONTEXT). */
  size_t sl = strlen(sev), ml = strlen(err->message);
  const char *t = err->text;
  if (t && strncmp(t, sev, sl) == 0 && strncmp(t + sl, ":  ", 3) == 0 &&
      strncmp(t + sl + 3, err->message, ml) == 0 && t[sl + 3 + ml] == '\n') {
    fputs(t + sl + 3 + ml + 1, stderr);
    return;
  }
  if (err->detail)
    fprintf(stderr, "DETAIL:  %s\n", err->detail);
  if (err->hint)
    fprintf(stderr, "HINT:  %s\n", err->hint);
  if (err->context)
    fprintf(stderr, "CONTEXT:  %s\n", err->context);
}

char *cli_read_file(const char *path) {
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
  if (f == NULL) {
    cli_say("%s: %s", path, strerror(errno));
    return NULL;
  }
  size_t len = 0, cap = 4096;
  char *text = malloc(cap);
  size_t n;
  while (text && (n = fread(text + len, 1, cap - len - 1, f)) > 0) {
    len += n;
    if (cap - len < 2) {
      char *grown = realloc(text, cap *= 2);
      if (grown == NULL)
        free(text);
      text = grown;
    }
  }
  if (f != stdin)
    fclose(f);
  if (text == NULL) {
    cli_say("%s: out of memory", path);
    return NULL;
  }
  text[len] = '\0';
  return text;
}

static void print_notice(pqs_ctx_t *ctx, const pqs_error_t *n, void *data) {
  (void)ctx;
  (void)data;
  fprintf(stderr, "%s:  %s\n", n->severity ? n->severity : "NOTICE",
          n->message);
}

static void drop_notice(pqs_ctx_t *ctx, const pqs_error_t *n, void *data) {
  (void)ctx;
  (void)n;
  (void)data;
}

pqs_notice_cb cli_notice_fn(const cli_opts_t *o) {
  return o->quiet ? drop_notice : print_notice;
}
