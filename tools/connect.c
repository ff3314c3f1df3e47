/* Connecting as psql does: the connection string the options make, and
 * the password prompt. */
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "cli.h"

typedef struct {
  char *s;
  size_t len, cap;
  int failed;
} str_t;

static void put(str_t *b, const char *p, size_t n) {
  if (b->failed)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *grown = realloc(b->s, cap);
    if (grown == NULL) {
      b->failed = 1;
      return;
    }
    b->s = grown;
    b->cap = cap;
  }
  memcpy(b->s + b->len, p, n);
  b->len += n;
  b->s[b->len] = '\0';
}

/* key='value', quoted as libpq reads it. */
static void put_kv(str_t *b, const char *key, const char *value) {
  if (value == NULL)
    return;
  if (b->len > 0)
    put(b, " ", 1);
  put(b, key, strlen(key));
  put(b, "='", 2);
  for (const char *p = value; *p; p++) {
    if (*p == '\'' || *p == '\\')
      put(b, "\\", 1);
    put(b, p, 1);
  }
  put(b, "'", 1);
}

static int is_conninfo(const char *s) {
  return strchr(s, '=') != NULL || strncmp(s, "postgresql://", 13) == 0 ||
         strncmp(s, "postgres://", 11) == 0;
}

/* psql's order: -h, -p, -U and the password first, then what `target`
 * says (a database name, or a conninfo or URI whose keys win, as in
 * psql), then fallback_application_name. A target libpq cannot parse is
 * passed on untouched, so that the library reports it (without its
 * password). */
char *cli_conninfo(const cli_opts_t *o, const char *target) {
  PQconninfoOption *opts = NULL;
  if (target && is_conninfo(target) &&
      (opts = PQconninfoParse(target, NULL)) == NULL)
    return strdup(target);
  str_t b = {0};
  put_kv(&b, "host", o->host);
  put_kv(&b, "port", o->port);
  put_kv(&b, "user", o->user);
  put_kv(&b, "password", o->password);
  if (opts != NULL) {
    for (PQconninfoOption *opt = opts; opt->keyword; opt++)
      if (opt->val != NULL && *opt->val)
        put_kv(&b, opt->keyword, opt->val);
    PQconninfoFree(opts);
  } else if (target && *target) {
    put_kv(&b, "dbname", target);
  }
  put_kv(&b, "fallback_application_name", "pqstream");
  if (b.failed) {
    free(b.s);
    return NULL;
  }
  return b.s;
}

/* ---- the password prompt ---- */

static const char *user_name(const cli_opts_t *o) {
  if (o->user)
    return o->user;
  const char *env = getenv("PGUSER");
  if (env && *env)
    return env;
  struct passwd *pw = getpwuid(getuid());
  return pw ? pw->pw_name : "?";
}

/* Reads a password from the terminal without echo, as psql does; NULL if
 * there is no terminal or nothing was read. */
char *cli_prompt_password(const cli_opts_t *o) {
  int fd = open("/dev/tty", O_RDWR | O_CLOEXEC);
  if (fd < 0)
    return NULL;
  /* Echo off first, then the prompt: what is typed once the prompt shows
   * must never be flushed away with what was typed before it. */
  struct termios saved, quiet;
  int restore = tcgetattr(fd, &saved) == 0;
  if (restore) {
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)ECHO;
    quiet.c_lflag |= ECHONL;
    tcsetattr(fd, TCSAFLUSH, &quiet);
  }
  dprintf(fd, "Password for user %s: ", user_name(o));
  char line[1024];
  size_t n = 0;
  char c;
  while (n + 1 < sizeof(line) && read(fd, &c, 1) == 1 && c != '\n')
    line[n++] = c;
  line[n] = '\0';
  if (restore)
    tcsetattr(fd, TCSANOW, &saved);
  close(fd);
  char *pw = strdup(line);
  memset(line, 0, sizeof(line));
  return pw;
}
