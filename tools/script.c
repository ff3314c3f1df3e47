/* Scripts as psql runs them with ON_ERROR_STOP=1: one statement after
 * another, variables interpolated as each is read, and the meta-commands
 * that need no server run as they are read: \set, \unset, \if, \elif,
 * \else, \endif, \i and \ir. \echo becomes an item of its own, printed in
 * its turn among the statements, and \copy ... TO a COPY statement whose
 * bytes go where it says. Any other meta-command is refused
 * before anything runs, naming it. A -c text is a script too, except that
 * (as in psql) one that begins with a backslash is one meta-command and
 * one that does not is SQL only. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

#define MAX_IF 64
#define MAX_INCLUDE 16

/* One open \if: which of its branches runs. */
typedef struct {
  int active; /* fact: the branch being read runs */
  int taken;  /* fact: a branch of this \if ran (or the \if is skipped) */
  int in_else;
} branch_t;

typedef struct {
  cli_opts_t *o;
  int cap;                   /* room in o's statement arrays */
  char **names, **values;    /* -v's, then \set's; NULL value: unset */
  int nvars, vcap;
  branch_t ifs[MAX_IF];
  int depth;   /* open \if blocks */
  int nested;  /* files \i'd into one another */
  const char *file; /* where we read: a -f path, or NULL for -c */
  int line;
} script_t;

static int running(const script_t *sc) {
  return sc->depth == 0 || sc->ifs[sc->depth - 1].active;
}

/* ---- saying what is wrong, as psql says it ---- */

static int script_error(script_t *sc, const char *fmt, const char *arg) {
  if (sc->file != NULL)
    fprintf(stderr, "pqstream:%s:%d: ", sc->file, sc->line);
  else
    fputs("pqstream: ", stderr);
  fprintf(stderr, fmt, arg);
  fputc('\n', stderr);
  return sc->file != NULL ? CLI_SCRIPT : CLI_USAGE;
}

static int no_memory(void) {
  cli_say("%s", "out of memory");
  return CLI_FAILED;
}

/* ---- variables ---- */

static const char *lookup(const char *name, void *data) {
  const script_t *sc = data;
  for (int i = sc->nvars - 1; i >= 0; i--) /* the last one set wins */
    if (strcmp(sc->names[i], name) == 0)
      return sc->values[i];
  return NULL;
}

static int set_var(script_t *sc, const char *name, size_t nlen,
                   const char *value) {
  if (sc->nvars == sc->vcap) {
    int want = sc->vcap ? sc->vcap * 2 : 16;
    char **n = realloc(sc->names, (size_t)want * sizeof(*n));
    if (n != NULL)
      sc->names = n;
    char **v = n ? realloc(sc->values, (size_t)want * sizeof(*v)) : NULL;
    if (v == NULL)
      return -1;
    sc->values = v;
    sc->vcap = want;
  }
  char *copy = strndup(name, nlen), *val = value ? strdup(value) : NULL;
  if (copy == NULL || (value != NULL && val == NULL)) {
    free(copy);
    free(val);
    return -1;
  }
  sc->names[sc->nvars] = copy;
  sc->values[sc->nvars++] = val;
  return 0;
}

/* ---- the items to run ---- */

/* Room for one more item in each of o's arrays. */
static int grow(script_t *sc) {
  cli_opts_t *o = sc->o;
  if (o->ncommands < sc->cap)
    return 0;
  int want = sc->cap ? sc->cap * 2 : 16;
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
  int *echo = realloc(o->stmt_echo, (size_t)want * sizeof(*echo));
  if (echo == NULL)
    return -1;
  o->stmt_echo = echo;
  const char **to = realloc(o->stmt_to, (size_t)want * sizeof(*to));
  if (to == NULL)
    return -1;
  o->stmt_to = to;
  sc->cap = want;
  return 0;
}

/* Takes `text` (malloc'd) as the next item (echo: a CLI_ITEM_*). */
static int add_item(script_t *sc, char *text, int echo) {
  cli_opts_t *o = sc->o;
  if (text == NULL || grow(sc) != 0) {
    free(text);
    return -1;
  }
  o->stmt_file[o->ncommands] = sc->file;
  o->stmt_line[o->ncommands] = sc->line;
  o->stmt_echo[o->ncommands] = echo;
  o->stmt_to[o->ncommands] = NULL;
  o->statements[o->ncommands++] = text;
  return 0;
}

/* A statement read whole: interpolated with the variables as they are
 * now, leading white space off (psql sends it from its first character,
 * so LINE numbers count from there). */
static int add_statement(script_t *sc, const char *s, size_t n) {
  if (!running(sc) || pqs_sql_is_blank(s, n))
    return 0;
  while (n > 0 && isspace((unsigned char)*s))
    s++, n--;
  char *raw = strndup(s, n), *text = NULL;
  int rc = raw ? pqs_sql_interpolate(raw, lookup, sc, &text) : PQS_ENOMEM;
  free(raw);
  if (rc != 0)
    return -1;
  rc = add_item(sc, strdup(text), CLI_ITEM_SQL);
  pqs_free(text);
  return rc;
}

/* ---- meta-commands ---- */

static int run_text(script_t *sc, const char *text, const char *file);

/* The arguments of a meta-command as psql reads them: words split by
 * white space; 'quoted' with '' and \n \t \\ inside; "quoted" kept with
 * its quotes; :name, :'name', :"name" and :{?name} replaced. Each
 * argument ends with a NUL in `out` (cap bytes); the count, or -1. */
static int arguments(script_t *sc, const char *p, const char *end, char *out,
                     size_t cap, const char **argv, int max) {
  int argc = 0;
  size_t w = 0;
#define PUT(c) do { if (w + 1 >= cap) return -1; out[w++] = (c); } while (0)
  while (p < end) {
    while (p < end && isspace((unsigned char)*p))
      p++;
    if (p == end)
      break;
    if (argc == max)
      return -1;
    argv[argc++] = out + w;
    while (p < end && !isspace((unsigned char)*p)) {
      if (*p == '\'') {
        for (p++; p < end && !(*p == '\'' && (p + 1 == end || p[1] != '\''));
             p++) {
          if (*p == '\'')
            p++; /* '' is one quote */
          else if (*p == '\\' && p + 1 < end) {
            p++;
            PUT(*p == 'n' ? '\n' : *p == 't' ? '\t' : *p);
            continue;
          }
          PUT(*p);
        }
        p++;
      } else if (*p == '"') {
        const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
        const char *stop = q ? q + 1 : end;
        for (; p < stop; p++)
          PUT(*p);
      } else if (*p == ':' && p + 1 < end && p[1] != ':') {
        /* a variable: its text made by the library's own interpolation */
        const char *v = p + 1;
        char quote = *v == '\'' || *v == '"' ? *v : 0;
        int defined = *v == '{' && v + 1 < end && v[1] == '?';
        const char *name = v + (quote ? 1 : defined ? 2 : 0), *e = name;
        while (e < end && (isalnum((unsigned char)*e) || *e == '_'))
          e++;
        int closed = quote ? e < end && *e == quote
                           : defined ? e < end && *e == '}' : 1;
        if (e == name || !closed) {
          PUT(*p++);
          continue;
        }
        char nm[128];
        snprintf(nm, sizeof(nm), "%.*s", (int)(e - name), name);
        const char *val = lookup(nm, sc);
        const char *put = defined ? (val ? "TRUE" : "FALSE") : val;
        char *quoted = NULL;
        if (!defined && quote && val != NULL) {
          char src[160];
          snprintf(src, sizeof(src), ":%c%s%c", quote, nm, quote);
          if (pqs_sql_interpolate(src, lookup, sc, &quoted) != 0)
            return -1;
          put = quoted;
        }
        if (put == NULL) { /* undefined: left as written, as psql does */
          PUT(*p++);
          continue;
        }
        for (const char *c = put; *c; c++)
          PUT(*c);
        pqs_free(quoted);
        p = e + (quote || defined ? 1 : 0);
      } else if (*p == '`') {
        return -2;
      } else {
        PUT(*p++);
      }
    }
    PUT('\0');
  }
#undef PUT
  return argc;
}

/* psql's booleans: true/false, yes/no, on/off, 1/0, or a start of one. */
static int boolean(const char *v) {
  static const char *const t[] = {"true", "yes", "on", "1"};
  static const char *const f[] = {"false", "no", "off", "0"};
  size_t n = strlen(v);
  for (int i = 0; i < 4 && n > 0; i++) {
    size_t need = i == 2 ? 2 : 1; /* "o" alone is on or off */
    if (n >= need && strncasecmp(v, t[i], n) == 0 && n <= strlen(t[i]))
      return 1;
    if (n >= need && strncasecmp(v, f[i], n) == 0 && n <= strlen(f[i]))
      return 0;
  }
  return -1;
}

/* \if and its friends: the value of EXPR, or an error said. */
static int condition(script_t *sc, int argc, const char **argv,
                     const char *cmd, int *out) {
  if (argc != 1 || (*out = boolean(argv[0])) < 0)
    return script_error(sc, "\\%s: the expression is not a boolean "
                            "(true, false, on, off, yes, no, 1, 0)", cmd);
  return CLI_OK;
}

static int branch(script_t *sc, const char *cmd, int argc, const char **argv) {
  int v = 0, rc;
  if (strcmp(cmd, "if") == 0) {
    if (sc->depth == MAX_IF)
      return script_error(sc, "\\if: nested deeper than %s", "64");
    int outer = running(sc);
    if (outer && (rc = condition(sc, argc, argv, cmd, &v)) != CLI_OK)
      return rc;
    sc->ifs[sc->depth++] = (branch_t){outer && v, !outer || v, 0};
    return CLI_OK;
  }
  if (sc->depth == 0)
    return script_error(sc, "\\%s: no matching \\if", cmd);
  branch_t *b = &sc->ifs[sc->depth - 1];
  if (strcmp(cmd, "endif") == 0) {
    sc->depth--;
    return CLI_OK;
  }
  if (b->in_else)
    return script_error(sc, "\\%s: after \\else", cmd);
  if (strcmp(cmd, "else") == 0) {
    b->in_else = 1;
    b->active = !b->taken;
    b->taken = 1;
    return CLI_OK;
  }
  /* elif */
  if (!b->taken && (rc = condition(sc, argc, argv, cmd, &v)) != CLI_OK)
    return rc;
  b->active = !b->taken && v;
  b->taken |= v;
  return CLI_OK;
}

/* \i FILE (from where we run) or \ir FILE (beside the file it is in). */
static int include(script_t *sc, const char *cmd, int argc, const char **argv) {
  if (argc != 1)
    return script_error(sc, "\\%s: give one file", cmd);
  if (sc->nested == MAX_INCLUDE)
    return script_error(sc, "\\%s: files included deeper than 16", cmd);
  const char *dir_end = sc->file ? strrchr(sc->file, '/') : NULL;
  int relative = cmd[1] == 'r' || strcmp(cmd, "include_relative") == 0;
  char *path;
  if (relative && dir_end != NULL && argv[0][0] != '/') {
    size_t d = (size_t)(dir_end - sc->file) + 1;
    path = malloc(d + strlen(argv[0]) + 1);
    if (path != NULL) {
      memcpy(path, sc->file, d);
      strcpy(path + d, argv[0]);
    }
  } else {
    path = strdup(argv[0]);
  }
  if (path == NULL || cli_keep(sc->o, path) != 0) {
    free(path);
    return no_memory();
  }
  char *text = cli_read_file(path); /* says why it could not */
  if (text == NULL)
    return sc->file ? CLI_SCRIPT : CLI_FAILED;
  if (cli_keep(sc->o, text) != 0) {
    free(text);
    return no_memory();
  }
  const char *file = sc->file;
  int line = sc->line;
  sc->nested++;
  int rc = run_text(sc, text, path);
  sc->nested--;
  sc->file = file;
  sc->line = line;
  return rc;
}

/* The end of \copy's table (with its columns) or (query) at `p`: the
 * first white space outside parentheses and quotes. */
static const char *copy_object_end(const char *p, const char *end) {
  int depth = 0;
  for (; p < end; p++) {
    if (*p == '\'' || *p == '"') {
      const char *q = memchr(p + 1, *p, (size_t)(end - p - 1));
      p = q ? q : end - 1;
    } else if (*p == '(') {
      depth++;
    } else if (*p == ')') {
      depth--;
    } else if (depth == 0 && isspace((unsigned char)*p)) {
      /* "t (a, b)": the column list belongs to the table */
      const char *n = p;
      while (n < end && isspace((unsigned char)*n))
        n++;
      if (n == end || *n != '(')
        return p;
      p = n - 1;
    }
  }
  return end;
}

/* \copy OBJECT TO {STDOUT | PSTDOUT | FILE} [[WITH] (options)]: COPY
 * ... TO STDOUT run on the server, its bytes written to the query output
 * (stdout, or -o's file), psql's own standard output (pstdout), or FILE
 * on this machine, as psql's \copy does. FROM is --from-file's. */
static int slash_copy(script_t *sc, const char *p, const char *end) {
  while (p < end && isspace((unsigned char)*p))
    p++;
  const char *obj_end = copy_object_end(p, end), *w = obj_end;
  while (w < end && isspace((unsigned char)*w))
    w++;
  if (end - w < 3 || strncasecmp(w, "to", 2) != 0 ||
      !isspace((unsigned char)w[2]))
    return script_error(sc, "%s", "\\copy: pqstream runs \\copy ... TO "
                                  "(to load a file: --into-table with "
                                  "--from-file)");
  const char *argv[2];
  char dest[4096];
  const char *d = w + 3;
  while (d < end && isspace((unsigned char)*d))
    d++;
  const char *d_end = d;
  if (d < end && *d == '\'') { /* 'file name' */
    const char *q = memchr(d + 1, '\'', (size_t)(end - d - 1));
    d_end = q ? q + 1 : end;
  } else {
    while (d_end < end && !isspace((unsigned char)*d_end))
      d_end++;
  }
  if (arguments(sc, d, d_end, dest, sizeof(dest), argv, 1) != 1)
    return script_error(sc, "%s", "\\copy: TO what?");
  if (strcasecmp(argv[0], "program") == 0)
    return script_error(sc, "%s", "\\copy ... TO PROGRAM: pqstream runs "
                                  "no shell commands");
  const char *to = strcasecmp(argv[0], "stdout") == 0    ? NULL
                   : strcasecmp(argv[0], "pstdout") == 0 ? "-"
                                                         : argv[0];
  const char *opts = d_end;
  while (opts < end && isspace((unsigned char)*opts))
    opts++;
  if (end - opts >= 4 && strncasecmp(opts, "with", 4) == 0)
    opts += 4;
  size_t n = (size_t)(obj_end - p) + (size_t)(end - opts) + 32;
  char *sql = malloc(n);
  if (sql == NULL)
    return no_memory();
  snprintf(sql, n, "COPY %.*s TO STDOUT %.*s", (int)(obj_end - p), p,
           (int)(end - opts), opts);
  char *file = to ? strdup(to) : NULL;
  if ((to && file == NULL) || add_item(sc, sql, CLI_ITEM_SQL) != 0 ||
      (file && cli_keep(sc->o, file) != 0)) {
    free(file);
    return no_memory();
  }
  sc->o->stmt_to[sc->o->ncommands - 1] = file;
  return CLI_OK;
}

/* One meta-command: `p` at its backslash, `end` at the end of its line. */
static int meta(script_t *sc, const char *p, const char *end) {
  const char *name = ++p;
  while (p < end && !isspace((unsigned char)*p) && *p != '\\')
    p++;
  char cmd[32];
  snprintf(cmd, sizeof(cmd), "%.*s", (int)(p - name), name);
  int flow = strcmp(cmd, "if") == 0 || strcmp(cmd, "elif") == 0 ||
             strcmp(cmd, "else") == 0 || strcmp(cmd, "endif") == 0;
  if (!flow && !running(sc))
    return CLI_OK; /* skipped with its branch, unread, as in psql */
  char buf[8192];
  const char *argv[64];
  int argc = running(sc) || strcmp(cmd, "elif") == 0
                 ? arguments(sc, p, end, buf, sizeof(buf), argv, 64)
                 : 0;
  if (argc == -2)
    return script_error(sc, "\\%s: backquotes (shell commands) are not run",
                        cmd);
  if (argc < 0)
    return script_error(sc, "\\%s: its arguments are too long", cmd);
  if (flow)
    return branch(sc, cmd, argc, argv);
  if (strcmp(cmd, "set") == 0) {
    if (argc == 0)
      return script_error(sc, "%s", "\\set: give a name (listing the "
                                    "variables is psql's)");
    char value[8192] = "";
    for (int i = 1; i < argc; i++) /* joined, as psql joins them */
      strncat(value, argv[i], sizeof(value) - strlen(value) - 1);
    return set_var(sc, argv[0], strlen(argv[0]), value) ? no_memory() : 0;
  }
  if (strcmp(cmd, "unset") == 0) {
    if (argc != 1)
      return script_error(sc, "%s", "\\unset: give one name");
    return set_var(sc, argv[0], strlen(argv[0]), NULL) ? no_memory() : 0;
  }
  if (strcmp(cmd, "echo") == 0) {
    int i = argc > 0 && strcmp(argv[0], "-n") == 0;
    int newline = !i;
    size_t len = 0;
    char text[8192];
    text[0] = '\0';
    for (; i < argc && len < sizeof(text); i++)
      len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s",
                              len ? " " : "", argv[i]);
    if (len >= sizeof(text))
      return script_error(sc, "%s", "\\echo: its text is too long");
    if (newline && len + 1 < sizeof(text))
      strcat(text, "\n");
    return add_item(sc, strdup(text), CLI_ITEM_ECHO) ? no_memory() : 0;
  }
  if (strcmp(cmd, "copy") == 0)
    return slash_copy(sc, p, end);
  if (strcmp(cmd, "i") == 0 || strcmp(cmd, "ir") == 0 ||
      strcmp(cmd, "include") == 0 || strcmp(cmd, "include_relative") == 0)
    return include(sc, cmd, argc, argv);
  return script_error(sc, "\\%s: a meta-command pqstream does not run (it "
                          "runs \\set, \\unset, \\echo, \\i, \\ir, \\if, "
                          "\\elif, \\else, \\endif and \\copy ... TO)",
                      cmd);
}

/* ---- reading a text ---- */

/* Statements and meta-commands of a -f text, in order. A meta-command
 * runs as it is read, before the statement it interrupts is sent (as in
 * psql); that statement goes on after the meta-command's line. */
static int run_text(script_t *sc, const char *text, const char *file) {
  size_t len = strlen(text), kept = 0;
  char *pending = NULL; /* the statement so far, around meta-commands */
  const char *counted = text;
  sc->file = file;
  sc->line = 1;
  int rc = CLI_OK;
  for (size_t at = 0; at < len && rc == CLI_OK;) {
    size_t n = pqs_sql_statement(text + at, len - at);
    size_t m = pqs_sql_meta(text + at, n);
    size_t take = m < n ? m : n;
    char *grown = realloc(pending, kept + take + 1);
    if (grown == NULL) {
      rc = no_memory();
      break;
    }
    pending = grown;
    memcpy(pending + kept, text + at, take);
    kept += take;
    pending[kept] = '\0';
    const char *stop = text + at + (m < n ? m : n - 1);
    for (; counted < stop; counted++)
      sc->line += *counted == '\n';
    if (m < n) { /* a meta-command, to the end of its line */
      const char *eol = memchr(text + at + m, '\n', len - at - m);
      const char *end = eol ? eol : text + len;
      rc = meta(sc, text + at + m, end);
      at = (size_t)(end - text);
      continue;
    }
    at += n;
    if (add_statement(sc, pending, kept) != 0)
      rc = no_memory();
    kept = 0;
  }
  free(pending);
  return rc;
}

/* A -c text: one meta-command if it begins with a backslash, else SQL. */
static int run_command(script_t *sc, const char *text) {
  sc->file = NULL;
  sc->line = 0;
  if (text[0] == '\\')
    return meta(sc, text, text + strlen(text));
  size_t len = strlen(text);
  for (size_t at = 0, n; at < len; at += n) {
    n = pqs_sql_statement(text + at, len - at);
    if (add_statement(sc, text + at, n) != 0)
      return no_memory();
  }
  return CLI_OK;
}

int cli_prepare(cli_opts_t *o) {
  script_t sc = {.o = o};
  int rc = CLI_OK;
  for (int i = 0; i < o->nvars && rc == CLI_OK; i++)
    if (set_var(&sc, o->var_names[i], strlen(o->var_names[i]),
                o->var_values[i]) != 0)
      rc = no_memory();
  if (rc == CLI_OK && o->single_transaction &&
      add_item(&sc, strdup("BEGIN"), CLI_ITEM_SQL) != 0)
    rc = no_memory();
  for (int i = 0; rc == CLI_OK && i < o->ntexts; i++)
    rc = o->text_file[i] ? run_text(&sc, o->texts[i], o->text_file[i])
                         : run_command(&sc, o->texts[i]);
  if (rc == CLI_OK && sc.depth > 0)
    rc = script_error(&sc, "%s", "\\if without \\endif at the end");
  sc.file = NULL;
  if (rc == CLI_OK && o->single_transaction &&
      add_item(&sc, strdup("COMMIT"), CLI_ITEM_SQL) != 0)
    rc = no_memory();
  for (int i = 0; i < sc.nvars; i++) {
    free(sc.names[i]);
    free(sc.values[i]);
  }
  free(sc.names);
  free(sc.values);
  if (rc == CLI_OK && o->ncommands == (o->single_transaction ? 2 : 0)) {
    cli_say("%s", "nothing to run: the queries hold only comments");
    rc = CLI_USAGE;
  }
  return rc;
}

int cli_keep(cli_opts_t *o, char *p) {
  char **grown = realloc(o->kept, (size_t)(o->nkept + 1) * sizeof(*grown));
  if (grown == NULL)
    return -1;
  o->kept = grown;
  o->kept[o->nkept++] = p;
  return 0;
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
  free(o->stmt_echo);
  free(o->stmt_to);
  for (int i = 0; i < o->nkept; i++)
    free(o->kept[i]);
  free(o->kept);
  if (o->password)
    memset(o->password, 0, strlen(o->password));
  free(o->password);
}
