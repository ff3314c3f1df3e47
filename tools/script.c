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

static int add(cli_opts_t *o, int *cap, const char *s, size_t n) {
  if (o->ncommands == *cap) {
    *cap = *cap ? *cap * 2 : 16;
    char **grown = realloc(o->statements, (size_t)*cap * sizeof(*grown));
    if (grown == NULL)
      return -1;
    o->statements = grown;
    o->commands = (const char *const *)grown;
  }
  char *copy = malloc(n + 1);
  if (copy == NULL)
    return -1;
  memcpy(copy, s, n);
  copy[n] = '\0';
  o->statements[o->ncommands++] = copy;
  return 0;
}

/* The statements of one text, leading white space off (psql sends each
 * from its first character, so LINE numbers count from there). */
static int split(cli_opts_t *o, int *cap, const char *text) {
  size_t len = strlen(text);
  for (size_t at = 0; at < len;) {
    size_t n = pqs_sql_statement(text + at, len - at);
    const char *s = text + at;
    at += n;
    if (pqs_sql_is_blank(s, n))
      continue;
    while (isspace((unsigned char)*s))
      s++, n--;
    if (add(o, cap, s, n) != 0)
      return -1;
  }
  return 0;
}

int cli_prepare(cli_opts_t *o) {
  int cap = 0, rc = 0;
  if (o->single_transaction)
    rc = add(o, &cap, "BEGIN", 5);
  for (int i = 0; rc == 0 && i < o->ntexts; i++) {
    char *text;
    if (pqs_sql_interpolate(o->texts[i], lookup, o, &text) != 0) {
      rc = -1;
      break;
    }
    rc = split(o, &cap, text);
    pqs_free(text);
  }
  if (rc == 0 && o->single_transaction)
    rc = add(o, &cap, "COMMIT", 6);
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
  if (o->password)
    memset(o->password, 0, strlen(o->password));
  free(o->password);
}
