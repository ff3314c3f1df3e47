/* The connection parameters pqstream adds to a user's conninfo, and
 * conninfo strings joined the way psql joins its options. */
#include "conninfo.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "pqstream.h"

/* Defaults first, the user's conninfo last: with expand_dbname, libpq
 * lets a later value win, so anything the conninfo names overrides them.
 * Keepalives find a peer that vanished even when no timeout is set. */
static const char *const keys[] = {
    "keepalives_idle", "keepalives_interval", "keepalives_count",
    "tcp_user_timeout", "dbname", NULL};
static const char *const defaults[] = {"15", "5", "3", "30000"};

void pqs__conninfo_params(const char *conninfo, const char *const **k,
                          const char **v) {
  for (int i = 0; i < 4; i++)
    v[i] = defaults[i];
  v[4] = conninfo;
  v[5] = NULL;
  *k = keys;
}

/* key='value', quoted as libpq reads it. */
static int put_kv(pqs__buf_t *b, const char *key, const char *value) {
  if (value == NULL || *value == '\0')
    return 0;
  int rc = b->len > 0 ? pqs__buf_append(b, " ", 1) : 0;
  if (rc == 0)
    rc = pqs__buf_append(b, key, strlen(key));
  if (rc == 0)
    rc = pqs__buf_append(b, "='", 2);
  for (const char *p = value; rc == 0 && *p; p++) {
    if (*p == '\'' || *p == '\\')
      rc = pqs__buf_append(b, "\\", 1);
    if (rc == 0)
      rc = pqs__buf_append(b, p, 1);
  }
  return rc == 0 ? pqs__buf_append(b, "'", 1) : rc;
}

static int is_conninfo(const char *s) {
  return strchr(s, '=') != NULL || strncmp(s, "postgresql://", 13) == 0 ||
         strncmp(s, "postgres://", 11) == 0;
}

/* The target's keys, after the pairs, so that they win. */
static int put_target(pqs__buf_t *b, const char *target) {
  if (target == NULL || *target == '\0')
    return 0;
  if (!is_conninfo(target))
    return put_kv(b, "dbname", target);
  PQconninfoOption *opts = PQconninfoParse(target, NULL);
  if (opts == NULL)
    return PQS_EINVAL; /* or out of memory: libpq does not say which */
  int rc = 0;
  for (PQconninfoOption *o = opts; rc == 0 && o->keyword; o++)
    rc = put_kv(b, o->keyword, o->val);
  PQconninfoFree(opts);
  return rc;
}

int pqs_conninfo_join(char **out, const char *const *keys,
                      const char *const *vals, int n, const char *target) {
  if (out == NULL || n < 0 || (n > 0 && (keys == NULL || vals == NULL)))
    return PQS_EINVAL;
  pqs__buf_t b = {0};
  int rc = pqs__buf_append(&b, "", 1); /* "" if nothing is said */
  b.len = 0;
  for (int i = 0; rc == 0 && i < n; i++)
    rc = keys[i] == NULL ? PQS_EINVAL : put_kv(&b, keys[i], vals[i]);
  if (rc == 0)
    rc = put_target(&b, target);
  if (rc == 0)
    rc = pqs__buf_append(&b, "", 1);
  if (rc != 0) {
    pqs__buf_free(&b);
    return rc;
  }
  *out = b.data;
  return 0;
}

int pqs_libpq_version(void) { return PQlibVersion(); }

/* Seconds as libpq reads them: an integer, blanks after it allowed. */
static unsigned seconds_ms(const char *text) {
  if (text == NULL)
    return 0;
  char *end;
  long s = strtol(text, &end, 10);
  while (isspace((unsigned char)*end))
    end++;
  if (end == text || *end != '\0' || s <= 0)
    return 0;
  if (s > 4000000) /* past what a timer's milliseconds hold: a day is plenty */
    s = 4000000;
  return (unsigned)(s < 2 ? 2 : s) * 1000u;
}

unsigned pqs__conninfo_connect_timeout_ms(const char *conninfo) {
  unsigned ms = 0;
  int named = 0;
  PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
  for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
    if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL) {
      ms = seconds_ms(o->val);
      named = 1;
    }
  PQconninfoFree(opts);
  return named ? ms : seconds_ms(getenv("PGCONNECT_TIMEOUT"));
}

unsigned pqs__connect_deadline_ms(unsigned ms, const char *conninfo) {
  if (ms == 0)
    ms = pqs__conninfo_connect_timeout_ms(conninfo);
  return ms ? ms : 10000;
}
