/* COPY's text format, a line split into its fields in place: the
 * escapes undone, \N read as NULL, nothing allocated. */
#include <string.h>

#include "copy_text.h"

static int octal(char c) { return c >= '0' && c <= '7' ? c - '0' : -1; }

static int hex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = (char)(c | 0x20);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* COPY's escape at p[1..] (p[0] is the backslash, end is the field's
 * end): writes the byte to *w and returns the bytes read. */
static size_t unescape_one(const char *p, const char *end, char *w) {
  if (p + 1 >= end) {
    *w = '\\';
    return 1;
  }
  int v, d;
  size_t n = 2;
  switch (p[1]) {
  case 'b':
    *w = '\b';
    return 2;
  case 'f':
    *w = '\f';
    return 2;
  case 'n':
    *w = '\n';
    return 2;
  case 'r':
    *w = '\r';
    return 2;
  case 't':
    *w = '\t';
    return 2;
  case 'v':
    *w = '\v';
    return 2;
  case 'x':
    if (p + 2 >= end || (v = hex(p[2])) < 0)
      break;
    n = 3;
    if (p + 3 < end && (d = hex(p[3])) >= 0)
      v = v * 16 + d, n = 4;
    *w = (char)v;
    return n;
  default:
    if ((v = octal(p[1])) < 0)
      break;
    while (n < 4 && p + n < end && (d = octal(p[n])) >= 0)
      v = v * 8 + d, n++;
    *w = (char)v;
    return n;
  }
  *w = p[1]; /* \\ and any other: the byte itself */
  return 2;
}

/* The field [f, end) without its escapes, in place, NUL-terminated; its
 * new length. `bs` is its first backslash. */
static size_t unescape(char *f, char *end, char *bs) {
  char *w = bs;
  for (char *r = bs; r < end;) {
    if (*r == '\\')
      r += unescape_one(r, end, w++);
    else
      *w++ = *r++;
  }
  *w = '\0';
  return (size_t)(w - f);
}

/* Hot path: memchr finds the tabs, and only fields holding a backslash
 * are rewritten. */
int pqs__copy_split(char *text, size_t n, pqs__cell_t *cells, int ncols) {
  int i = 0;
  if (n == 0 || text[n - 1] != '\n')
    return PQS_EINVAL;
  char *end = text + n - 1, *f = text;
  for (;;) {
    char *t = memchr(f, '\t', (size_t)(end - f));
    if (t == NULL)
      t = end;
    if (i == ncols)
      return PQS_EINVAL;
    if (t - f == 2 && f[0] == '\\' && f[1] == 'N') {
      cells[i].ptr = NULL;
      cells[i].len = -1;
    } else {
      char *bs = memchr(f, '\\', (size_t)(t - f));
      size_t len = bs ? unescape(f, t, bs) : (size_t)(t - f);
      f[len] = '\0';
      cells[i].ptr = f;
      cells[i].len = (int)len;
    }
    i++;
    if (t == end)
      break;
    f = t + 1;
  }
  return i == ncols ? 0 : PQS_EINVAL;
}
