/* Passwords out of messages. libpq's PQpass() knows the password only once
 * the conninfo has parsed; an error about a conninfo that did not parse
 * may quote it, so the passwords are found here, lexically, in every
 * spelling a message could echo: as written, percent-decoded (URIs) and
 * unquoted (key = 'value'). */
#include <ctype.h>
#include <string.h>

#include "alloc.h"
#include "error_int.h"

/* ---- a list of strings: each NUL-terminated, an empty one ends it ---- */

static int add(pqs__buf_list_t *l, const char *s, size_t n) {
  if (n == 0)
    return 0;
  char *grown = pqs__realloc(l->data, l->len + n + 2);
  if (grown == NULL)
    return PQS_ENOMEM;
  l->data = grown;
  memcpy(l->data + l->len, s, n);
  l->len += n;
  l->data[l->len++] = '\0';
  l->data[l->len] = '\0';
  return 0;
}

static int hex(int c) {
  return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* `s` as written, and percent-decoded where that differs. */
static int add_uri_value(pqs__buf_list_t *l, const char *s, size_t n) {
  char decoded[1024];
  size_t m = 0;
  for (size_t i = 0; i < n && m < sizeof(decoded); i++) {
    int hi, lo;
    if (s[i] == '%' && i + 2 < n && (hi = hex(s[i + 1])) >= 0 &&
        (lo = hex(s[i + 2])) >= 0) {
      decoded[m++] = (char)(hi * 16 + lo);
      i += 2;
    } else {
      decoded[m++] = s[i];
    }
  }
  int rc = add(l, s, n);
  return rc == 0 && (m != n || memcmp(s, decoded, n) != 0)
             ? add(l, decoded, m)
             : rc;
}

static int uri_secrets(pqs__buf_list_t *l, const char *uri) {
  const char *start = strstr(uri, "://") + 3;
  const char *query = strchr(start, '?');
  const char *end = query ? query : start + strlen(start);
  const char *at = NULL;
  for (const char *p = start; p < end; p++)
    if (*p == '@')
      at = p; /* hosts never hold an '@'; the last one ends the user */
  const char *colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
  int rc = 0;
  if (colon)
    rc = add_uri_value(l, colon + 1, (size_t)(at - colon - 1));
  for (const char *p = query; rc == 0 && p && *p; p = strchr(p, '&')) {
    p++; /* past '?' or '&' */
    size_t n = strcspn(p, "&");
    if (strncmp(p, "password=", 9) == 0)
      rc = add_uri_value(l, p + 9, n - 9);
  }
  return rc;
}

/* key = value pairs; a value may be 'quoted', with \' and \\ inside. */
static int pair_secrets(pqs__buf_list_t *l, const char *s) {
  while (*s) {
    while (isspace((unsigned char)*s))
      s++;
    const char *key = s;
    while (*s && *s != '=' && !isspace((unsigned char)*s))
      s++;
    size_t klen = (size_t)(s - key);
    while (isspace((unsigned char)*s))
      s++;
    if (*s != '=')
      return 0; /* not a conninfo libpq could read: nothing more to find */
    s++;
    while (isspace((unsigned char)*s))
      s++;
    int quoted = *s == '\'';
    const char *raw = s += quoted;
    char plain[1024];
    size_t m = 0;
    while (*s && (quoted ? *s != '\'' : !isspace((unsigned char)*s))) {
      if (*s == '\\' && s[1])
        s++;
      if (m < sizeof(plain))
        plain[m++] = *s;
      s++;
    }
    if (klen == 8 && strncmp(key, "password", 8) == 0) {
      int rc = add(l, raw, (size_t)(s - raw));
      if (rc == 0 && (m != (size_t)(s - raw) || memcmp(raw, plain, m) != 0))
        rc = add(l, plain, m);
      if (rc != 0)
        return rc;
    }
    s += quoted && *s;
  }
  return 0;
}

int pqs__secrets_of(const char *conninfo, char **out) {
  pqs__buf_list_t l = {pqs__calloc(1, 1), 0}; /* the empty list */
  if (l.data == NULL)
    return PQS_ENOMEM;
  int rc = strncmp(conninfo, "postgresql://", 13) == 0 ||
                 strncmp(conninfo, "postgres://", 11) == 0
             ? uri_secrets(&l, conninfo)
             : pair_secrets(&l, conninfo);
  if (rc != 0) {
    pqs__free(l.data);
    return rc;
  }
  *out = l.data;
  return 0;
}

/* ---- masking ---- */

static void mask_all(char *msg, const char *s, size_t n) {
  for (char *p = strstr(msg, s); p != NULL; p = strstr(p + n, s))
    memset(p, '*', n);
}

/* `s` where it stands between `before` and `after` in msg. */
static void mask_between(char *msg, char before, const char *s, size_t n,
                         char after) {
  for (char *p = strstr(msg, s); p != NULL; p = strstr(p + 1, s))
    if (p > msg && p[-1] == before && p[n] == after)
      memset(p, '*', n);
}

/* A short password would mangle ordinary words if masked everywhere:
 * those are masked only where a conninfo or a quote puts them. */
void pqs__scrub(char *msg, const char *secret) {
  size_t n = secret ? strlen(secret) : 0;
  if (n == 0)
    return;
  if (n >= 3) {
    mask_all(msg, secret, n);
    return;
  }
  mask_between(msg, ':', secret, n, '@');
  mask_between(msg, '"', secret, n, '"');
  mask_between(msg, '\'', secret, n, '\'');
  mask_between(msg, '=', secret, n, ' ');
  mask_between(msg, '=', secret, n, '\0');
}

void pqs__scrub_all(char *msg, const char *secrets) {
  for (const char *s = secrets; s && *s; s += strlen(s) + 1)
    pqs__scrub(msg, s);
}
