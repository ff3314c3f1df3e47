/* Connecting as psql does: the connection string the options make, and
 * the password prompt. */
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cli.h"

/* psql's order: -h, -p, -U and the password first, then what `target`
 * says (a database name, or a conninfo or URI whose keys win, as in
 * psql); fallback_application_name unless the target names one. A target
 * libpq cannot parse is passed on untouched, so that the library reports
 * it (without its password). */
char *cli_conninfo(const cli_opts_t *o, const char *target) {
  const char *keys[] = {"fallback_application_name", "host", "port", "user",
                        "password", "replication"};
  /* --changes reads a replication slot: a walsender's connection */
  const char *vals[] = {"pqstream", o->host,     o->port,
                        o->user,    o->password, o->changes ? "database" : NULL};
  char *joined = NULL;
  int rc = pqs_conninfo_join(&joined, keys, vals, 6, target);
  if (rc == PQS_EINVAL)
    return strdup(target);
  if (rc != 0)
    return NULL;
  char *copy = strdup(joined); /* the tool's strings go to free() */
  pqs_free(joined);
  return copy;
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
