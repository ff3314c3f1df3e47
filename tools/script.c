/* Scripts as psql runs them with ON_ERROR_STOP=1: one statement after
 * another, variables interpolated first. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *lookup(const char *name, void *data) {
  const cli_opts_t *o = data;
  for (int i = o->nvars - 1; i >= 0; i--) /* the last -v wins */
    if (strcmp(o->var_names[i], name) == 0)
      return o->var_values[i];
  return NULL;
}

/* Room for one more statement in each of the three arrays. */
static int grow(cli_opts_t *o, int *cap) {
  if (o->ncommands < *cap)
    return 0;
  int want = *cap ? *cap * 2 : 16;
  char **grown = realloc(o->statements, (size_t)want * sizeof(*grown));
  if (grown == NULL)
    return -1;
  o->statements = grown;
  o->commands = (const char *const *)grown;
  const char **files = realloc(o->stmt_file, (size_t)want * sizeof(*files));
  if (files == NULL)
    return -1;
  o->stmt_file = files;
  int *lines = realloc(o->stmt_line, (size_t)want * sizeof(*lines));
  if (lines == NULL)
    return -1;
  o->stmt_line = lines;
  *cap = want;
  return 0;
}

static int add(cli_opts_t *o, int *cap, const char *s, size_t n,
               const char *file, int line) {
  if (grow(o, cap) != 0)
    return -1;
  o->stmt_file[o->ncommands] = file;
  o->stmt_line[o->ncommands] = line;
  char *copy = malloc(n + 1);
  if (copy == NULL)
    return -1;
  memcpy(copy, s, n);
  copy[n] = '\0';
  o->statements[o->ncommands++] = copy;
  return 0;
}

/* The statements of one text, leading white space off (psql sends each
 * from its first character, so LINE numbers count from there), each
 * with the line of `file` it ends on: where psql's input stood when it
 * sent the statement, which is the line its "psql:FILE:LINE:" names. */
static int split(cli_opts_t *o, int *cap, const char *text,
                 const char *file) {
  size_t len = strlen(text);
  int line = 1;
  const char *counted = text;
  for (size_t at = 0; at < len;) {
    size_t n = pqs_sql_statement(text + at, len - at);
    const char *s = text + at;
    at += n;
    if (pqs_sql_is_blank(s, n))
      continue;
    while (isspace((unsigned char)*s))
      s++, n--;
    for (; counted < s + n - 1; counted++)
      line += *counted == '\n';
    if (add(o, cap, s, n, file, line) != 0)
      return -1;
  }
  return 0;
}

int cli_prepare(cli_opts_t *o) {
  int cap = 0, rc = 0;
  if (o->single_transaction)
    rc = add(o, &cap, "BEGIN", 5, NULL, 0);
  for (int i = 0; rc == 0 && i < o->ntexts; i++) {
    char *text;
    if (pqs_sql_interpolate(o->texts[i], lookup, o, &text) != 0) {
      rc = -1;
      break;
    }
    rc = split(o, &cap, text, o->text_file[i]);
    pqs_free(text);
  }
  if (rc == 0 && o->single_transaction)
    rc = add(o, &cap, "COMMIT", 6, NULL, 0);
  if (rc != 0) {
    cli_say("%s", "out of memory");
    return CLI_FAILED;
  }
  if (o->ncommands == (o->single_transaction ? 2 : 0)) {
    cli_say("%s", "nothing to run: the queries hold only comments");
    return CLI_USAGE;
  }
  return CLI_OK;
}

void cli_opts_free(cli_opts_t *o) {
  for (int i = 0; i < o->ntexts; i++)
    free(o->owned[i]);
  if (o->statements != NULL)
    for (int i = 0; i < o->ncommands; i++)
      free(o->statements[i]);
  free(o->statements);
  free(o->stmt_file);
  free(o->stmt_line);
  if (o->password)
    memset(o->password, 0, strlen(o->password));
  free(o->password);
}
