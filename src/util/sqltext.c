/* SQL text as psql reads it: where statements end, and :variables.
 *
 * One scanner knows what is not SQL code: string literals ('...' with ''
 * inside, E'...' with backslash escapes), quoted identifiers ("..."),
 * comments (-- to the end of the line, nested slash-star), and dollar
 * quotes ($tag$ ... $tag$). Semicolons and colons inside those are text. */
#include <ctype.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "pqstream.h"
#include "sqltext.h"

static int ident_char(char c) {
  return isalnum((unsigned char)c) || c == '_' || (unsigned char)c >= 0x80;
}

/* The end of a $tag$ opening at s[i], or 0 if s[i] opens none. */
static size_t dollar_tag(const char *s, size_t len, size_t i) {
  if (i > 0 && ident_char(s[i - 1]))
    return 0; /* part of an identifier such as a$b */
  size_t j = i + 1;
  if (j < len && isdigit((unsigned char)s[j]))
    return 0; /* $1 is a parameter */
  while (j < len && ident_char(s[j]) && s[j] != '$')
    j++;
  return j < len && s[j] == '$' ? j + 1 : 0;
}

/* If what starts at s[i] is not code, the index just past it; else i. An
 * unterminated one runs to the end, as in psql. */
static size_t skip_text(const char *s, size_t len, size_t i) {
  char c = s[i], next = i + 1 < len ? s[i + 1] : '\0';
  if (c == '\'') {
    int escapes = i > 0 && (s[i - 1] == 'E' || s[i - 1] == 'e') &&
                  (i < 2 || !ident_char(s[i - 2]));
    for (size_t j = i + 1; j < len; j++) {
      if (escapes && s[j] == '\\')
        j++;
      else if (s[j] == '\'' && j + 1 < len && s[j + 1] == '\'')
        j++;
      else if (s[j] == '\'')
        return j + 1;
    }
    return len;
  }
  if (c == '"') {
    for (size_t j = i + 1; j < len; j++) {
      if (s[j] == '"' && j + 1 < len && s[j + 1] == '"')
        j++;
      else if (s[j] == '"')
        return j + 1;
    }
    return len;
  }
  if (c == '-' && next == '-') {
    const char *nl = memchr(s + i, '\n', len - i);
    return nl ? (size_t)(nl - s) + 1 : len;
  }
  if (c == '/' && next == '*') {
    int depth = 0;
    for (size_t j = i; j + 1 < len; j++) {
      if (s[j] == '/' && s[j + 1] == '*')
        depth++, j++;
      else if (s[j] == '*' && s[j + 1] == '/' && --depth == 0)
        return j + 2;
      else if (s[j] == '*' && s[j + 1] == '/')
        j++;
    }
    return len;
  }
  size_t tag_end;
  if (c == '$' && (tag_end = dollar_tag(s, len, i)) != 0) {
    size_t tlen = tag_end - i;
    for (size_t j = tag_end; j + tlen <= len; j++)
      if (s[j] == '$' && memcmp(s + j, s + i, tlen) == 0)
        return j + tlen;
    return len;
  }
  return i;
}

size_t pqs_sql_statement(const char *sql, size_t len) {
  int parens = 0;
  for (size_t i = 0; i < len;) {
    size_t j = skip_text(sql, len, i);
    if (j != i) {
      i = j;
      continue;
    }
    if (sql[i] == '(')
      parens++;
    else if (sql[i] == ')' && parens > 0)
      parens--;
    else if (sql[i] == ';' && parens == 0)
      return i + 1;
    i++;
  }
  return len;
}

size_t pqs_sql_meta(const char *sql, size_t len) {
  for (size_t i = 0; i < len;) {
    size_t j = skip_text(sql, len, i);
    if (j != i)
      i = j;
    else if (sql[i] == '\\')
      return i;
    else
      i++;
  }
  return len;
}

int pqs_sql_is_blank(const char *sql, size_t len) {
  for (size_t i = 0; i < len;) {
    if (isspace((unsigned char)sql[i]) || sql[i] == ';') {
      i++;
      continue;
    }
    int comment = sql[i] == '-' || sql[i] == '/';
    size_t j = comment ? skip_text(sql, len, i) : i;
    if (j == i)
      return 0;
    i = j;
  }
  return 1;
}

/* ---- variables ---- */

typedef pqs__buf_t out_t;

/* Appends and keeps a NUL after the text, so that it is a string. */
static int put(out_t *o, const char *p, size_t n) {
  int rc = pqs__buf_reserve(o, n + 1);
  if (rc == 0) {
    pqs__buf_put(o, p, n);
    o->data[o->len] = '\0';
  }
  return rc;
}

/* As libpq's PQescapeLiteral and PQescapeIdentifier write them (with
 * standard_conforming_strings on): quotes doubled; a literal holding a
 * backslash becomes E'...' with the backslashes doubled. */
static int put_quoted(out_t *o, const char *v, char quote) {
  int rc = 0;
  if (quote == '\'' && strchr(v, '\\') != NULL)
    rc = put(o, " E", 2);
  rc = rc ? rc : put(o, &quote, 1);
  for (const char *p = v; rc == 0 && *p; p++) {
    if (*p == quote || (quote == '\'' && *p == '\\'))
      rc = put(o, p, 1);
    rc = rc ? rc : put(o, p, 1);
  }
  return rc ? rc : put(o, &quote, 1);
}

/* A variable reference at sql[i] (a ':' not part of '::'): writes its
 * value and returns the index past it, or returns i if there is none. */
static size_t variable(const char *sql, size_t len, size_t i,
                       pqs_sql_var_fn lookup, void *data, out_t *o, int *rc) {
  char quote = i + 1 < len ? sql[i + 1] : '\0';
  size_t start = quote == '\'' || quote == '"' ? i + 2 : i + 1, end = start;
  while (end < len && ident_char(sql[end]))
    end++;
  if (end == start)
    return i;
  if (quote == '\'' || quote == '"') {
    if (end >= len || sql[end] != quote)
      return i;
  } else {
    quote = '\0';
  }
  char name[256];
  size_t n = end - start < sizeof(name) - 1 ? end - start : sizeof(name) - 1;
  memcpy(name, sql + start, n);
  name[n] = '\0';
  const char *value = lookup(name, data);
  if (value == NULL)
    return i; /* not defined: left as written, as psql does */
  *rc = quote ? put_quoted(o, value, quote) : put(o, value, strlen(value));
  return quote ? end + 1 : end;
}

int pqs_sql_interpolate(const char *sql, pqs_sql_var_fn lookup, void *data,
                        char **out) {
  if (sql == NULL || lookup == NULL || out == NULL)
    return PQS_EINVAL;
  size_t len = strlen(sql);
  out_t o = {0};
  int rc = put(&o, "", 0);
  for (size_t i = 0; rc == 0 && i < len;) {
    size_t j = skip_text(sql, len, i);
    if (j == i && sql[i] == ':' && i + 1 < len && sql[i + 1] == ':')
      j = i + 2; /* a cast */
    else if (j == i && sql[i] == ':')
      j = variable(sql, len, i, lookup, data, &o, &rc);
    if (j == i) {
      rc = put(&o, sql + i, 1);
      i++;
    } else {
      if (sql[i] != ':') /* text skipped as it is */
        rc = rc ? rc : put(&o, sql + i, j - i);
      else if (sql[i + 1] == ':')
        rc = rc ? rc : put(&o, "::", 2);
      i = j;
    }
  }
  if (rc != 0) {
    pqs__buf_free(&o);
    return rc;
  }
  *out = o.data;
  return 0;
}

/* ---- parameters, for the COPY source ---- */

int pqs__sql_bind(const char *sql, size_t len, pqs__param_fn put, void *data,
                  pqs__buf_t *out) {
  size_t run = 0; /* start of the bytes not yet copied */
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < len;) {
    size_t j = skip_text(sql, len, i);
    if (j != i) {
      i = j;
      continue;
    }
    int param = sql[i] == '$' && i + 1 < len &&
                isdigit((unsigned char)sql[i + 1]) &&
                (i == 0 || !ident_char(sql[i - 1]));
    if (!param) {
      i++;
      continue;
    }
    int n = 0;
    for (j = i + 1; j < len && isdigit((unsigned char)sql[j]); j++)
      n = n < 100000 ? n * 10 + (sql[j] - '0') : n;
    rc = pqs__buf_append(out, sql + run, i - run);
    rc = rc ? rc : put(n, out, data);
    run = i = j;
  }
  return rc ? rc : pqs__buf_append(out, sql + run, len - run);
}

void pqs__sql_first_word(const char *sql, char *out, size_t cap) {
  size_t len = strlen(sql), i = 0, n = 0;
  out[0] = '\0';
  while (i < len) {
    size_t j = sql[i] == '-' || sql[i] == '/' ? skip_text(sql, len, i) : i;
    if (j != i)
      i = j;
    else if (isspace((unsigned char)sql[i]) || sql[i] == '(')
      i++;
    else
      break;
  }
  while (i < len && isalpha((unsigned char)sql[i]) && n + 1 < cap)
    out[n++] = (char)tolower((unsigned char)sql[i++]);
  out[i < len && isalpha((unsigned char)sql[i]) ? 0 : n] = '\0';
}

int pqs__copy_qualifies(const char *sql) {
  static const char *const words[] = {"select", "values", "table", "with",
                                      "insert", "update", "delete"};
  char word[8];
  pqs__sql_first_word(sql, word, sizeof(word));
  for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
    if (strcmp(word, words[i]) == 0)
      return 1;
  return 0;
}

size_t pqs__sql_trim_end(const char *sql, size_t len) {
  size_t end = pqs_sql_statement(sql, len);
  if (end > 0 && sql[end - 1] == ';' && pqs_sql_is_blank(sql + end, len - end))
    return end - 1;
  return len;
}

void pqs_free(void *p) { pqs__free(p); }
