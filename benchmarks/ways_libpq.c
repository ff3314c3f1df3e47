/* The baselines: raw libpq on the same query and server, as a program
 * that reads rows by hand would (PQexec, the single-row loop, COPY whole
 * and split into fields, binary decoded by hand). */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ways.h"

static PGconn *raw_connect(const bench_t *b) {
  PGconn *c = PQconnectdb(b->conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connect: %s", PQerrorMessage(c));
    return NULL;
  }
  return c;
}

static void touch_result(sample_t *s, double t0, const PGresult *r, int row) {
  for (int i = 0; i < PQnfields(r); i++)
    bench_touch(s, t0, PQgetvalue(r, row, i), (size_t)PQgetlength(r, row, i));
  s->rows++;
}

/* A COPY text line split in place, each field touched: what a program
 * reading COPY by hand does (no field of the bench has an escape, so
 * finding the backslashes is the whole of unescaping). */
static void touch_split(sample_t *s, double t0, char *line, size_t n) {
  char *end = line + n - 1, *f = line;
  for (;;) {
    char *t = memchr(f, '\t', (size_t)(end - f));
    if (t == NULL)
      t = end;
    if (memchr(f, '\\', (size_t)(t - f)) == NULL)
      *t = '\0';
    bench_touch(s, t0, f, (size_t)(t - f));
    if (t == end)
      break;
    f = t + 1;
  }
}

/* One binary field decoded by hand: integers and floats by their type,
 * the rest touched as bytes. */
static void touch_binary_field(sample_t *s, double t0, const char *p, int len,
                               Oid type) {
  uint64_t v = 0;
  for (int k = 0; k < len && k < 8; k++)
    v = v << 8 | (unsigned char)p[k];
  volatile double d;
  if (type == PQS_OID_FLOAT8)
    memcpy((void *)&d, &v, sizeof(d));
  bench_touch(s, t0, p, type == PQS_OID_TEXT ? (size_t)len : 8);
}

/* A binary COPY tuple's fields decoded by hand, as a program reading
 * binary COPY itself would. 0 at the trailer. */
static int touch_binary(sample_t *s, double t0, const char *p, size_t n,
                        const Oid *types, int ncols, int *header) {
  const char *end = p + n;
  if (!*header) {
    if (n < 19)
      return -1;
    p += 19 + ((unsigned)(unsigned char)p[15] << 24 |
               (unsigned char)p[16] << 16 | (unsigned char)p[17] << 8 |
               (unsigned char)p[18]);
    *header = 1;
  }
  if (end - p < 2)
    return -1;
  int count = (int16_t)((unsigned char)p[0] << 8 | (unsigned char)p[1]);
  p += 2;
  if (count == -1)
    return 0;
  for (int i = 0; i < count && i < ncols; i++) {
    int32_t len =
        (int32_t)((uint32_t)(unsigned char)p[0] << 24 |
                  (uint32_t)(unsigned char)p[1] << 16 |
                  (uint32_t)(unsigned char)p[2] << 8 | (unsigned char)p[3]);
    p += 4;
    if (len < 0)
      continue;
    touch_binary_field(s, t0, p, len, types[i]);
    p += len;
  }
  return 1;
}

int bench_run_libpq(const bench_t *b, int way, sample_t *s) {
  PGconn *c = raw_connect(b);
  if (c == NULL)
    return -1;
  Oid types[128] = {0};
  int ncols = 0;
  if (way == W_COPY_BIN) { /* the column types, before the clock starts */
    PGresult *r = PQprepare(c, "", b->query, 0, NULL);
    PQclear(r);
    r = PQdescribePrepared(c, "");
    ncols = PQnfields(r) < 128 ? PQnfields(r) : 128;
    for (int i = 0; i < ncols; i++)
      types[i] = PQftype(r, i);
    PQclear(r);
  }
  int pid = PQbackendPID(c);
  double at = bench_backend_cpu(pid);
  double t0 = bench_now();
  int ok = 1;
  if (way == W_EXEC) {
    PGresult *r = PQexec(c, b->query);
    ok = PQresultStatus(r) == PGRES_TUPLES_OK;
    for (int i = 0; ok && i < PQntuples(r); i++)
      touch_result(s, t0, r, i);
    PQclear(r);
  } else if (way == W_SINGLE || way == W_SINGLE_BIN) {
    int bin = way == W_SINGLE_BIN; /* binary needs the extended protocol */
    ok = (bin ? PQsendQueryParams(c, b->query, 0, NULL, NULL, NULL, NULL, 1)
              : PQsendQuery(c, b->query)) &&
         PQsetSingleRowMode(c);
    PGresult *r;
    while ((r = PQgetResult(c)) != NULL) {
      if (PQresultStatus(r) == PGRES_SINGLE_TUPLE && bin) {
        for (int i = 0; i < PQnfields(r); i++)
          if (!PQgetisnull(r, 0, i))
            touch_binary_field(s, t0, PQgetvalue(r, 0, i), PQgetlength(r, 0, i),
                               PQftype(r, i));
        s->rows++;
      } else if (PQresultStatus(r) == PGRES_SINGLE_TUPLE)
        touch_result(s, t0, r, 0);
      else if (PQresultStatus(r) != PGRES_TUPLES_OK)
        ok = 0;
      PQclear(r);
    }
  } else { /* COPY (query) TO STDOUT: one buffer per row */
    char *q = malloc(strlen(b->query) + 48), *buf;
    sprintf(q, "COPY (%s) TO STDOUT%s", b->query,
            way == W_COPY_BIN ? " (FORMAT binary)" : "");
    int header = 0;
    PGresult *r = PQexec(c, q);
    free(q);
    ok = PQresultStatus(r) == PGRES_COPY_OUT;
    PQclear(r);
    int n;
    while (ok && (n = PQgetCopyData(c, &buf, 0)) > 0) {
      if (way == W_COPY_BIN) {
        int rc = touch_binary(s, t0, buf, (size_t)n, types, ncols, &header);
        ok = rc >= 0;
        s->rows += rc == 1;
      } else {
        if (way == W_COPY_SPLIT)
          touch_split(s, t0, buf, (size_t)n);
        else
          bench_touch(s, t0, buf, (size_t)n);
        s->rows++;
      }
      PQfreemem(buf);
    }
    while ((r = PQgetResult(c)) != NULL) {
      ok &= PQresultStatus(r) == PGRES_COMMAND_OK;
      PQclear(r);
    }
  }
  s->secs = bench_now() - t0;
  bench_server_cpu_since(s, &pid, &at, 1);
  if (!ok)
    fprintf(stderr, "%s: %s", bench_way_names[way], PQerrorMessage(c));
  PQfinish(c);
  return ok ? 0 : -1;
}

