/* Partitioned parallel reads: one query split over ranges of a key, each
 * range on a context of its own from a factory, merged into one stream.
 * Built on the public factory, query and merge calls; its one tie inside
 * is the merged stream's free hook, which gives the contexts back.
 *
 *   ACQUIRING --K + 1 contexts--> DESCRIBING (the key's type)
 *   DESCRIBING --the type--> BOUNDING (the server computes the bounds)
 *   ACQUIRING (K = 1) | BOUNDING --bounds--> ENDED: the streams, merged,
 *     the callback, then freed
 *   ACQUIRING | DESCRIBING | BOUNDING --failure--> ENDED: the contexts
 *     back, the callback with it, freed
 *
 * The bounds are the server's arithmetic in the key's own type, chosen so
 * that nothing overflows at a type's ends: integers in numeric, floats
 * as a weighted mean, dates as day offsets in bigint, timestamps through
 * their epoch. The lowest and highest keys are the finite ones: an
 * infinity (or NaN) falls in the first or last range, which are open. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core.h"
#include "../stream/stream_int.h"

#define MAX_PARTS 64

typedef struct part_s part_t;

typedef enum { P_ACQUIRING, P_DESCRIBING, P_BOUNDING, P_ENDED } part_state_t;

/* How the bounds are computed for the key's type. */
typedef enum {
  KEY_OTHER, /* lo + (hi - lo) / K * i, in the type's own arithmetic */
  KEY_INT,
  KEY_NUMERIC,
  KEY_FLOAT,
  KEY_DATE,
  KEY_TIMESTAMP,
  KEY_TIMESTAMPTZ
} key_kind_t;

typedef struct {
  part_t *p;
  int i;
} slot_t;

/* The contexts, kept until the merged stream is freed. */
typedef struct {
  int n;
  pqs_ctx_t *ctx[MAX_PARTS + 1];
} held_t;

struct part_s {
  part_state_t state;
  key_kind_t kind;
  pqs_factory_t *f;
  uv_loop_t *loop;
  char *sql, *key; /* the query without its final semicolon; "key" quoted */
  pqs_partition_opts_t opts;
  char **params; /* the query's, then room for two bounds */
  int k;
  held_t *held;
  slot_t slots[MAX_PARTS + 1];
  int answered, status;
  pqs_error_t err;
  char *err_strings;
  char *lo, *hi; /* the given range, copied */
  char **bounds; /* the server's, K - 1 of them; NULL where there are none */
  int nbounds;
  pqs_partition_cb cb;
  void *data;
};

static void give_back(void *data) {
  held_t *h = data;
  for (int i = 0; i < h->n; i++)
    pqs_ctx_close(h->ctx[i], NULL);
  pqs__free(h);
}

static void part_free(part_t *p) {
  for (int i = 0; i < p->nbounds; i++)
    pqs__free(p->bounds[i]);
  pqs__free(p->bounds);
  for (int i = 0; i < p->opts.nparams; i++)
    pqs__free(p->params[i]);
  pqs__free(p->params);
  pqs__free(p->sql);
  pqs__free(p->key);
  pqs__free(p->lo);
  pqs__free(p->hi);
  pqs__free(p->err_strings);
  pqs__free(p);
}

/* -> the end, failed: the contexts back, the callback, freed. */
static void fail(part_t *p, int status, const pqs_error_t *err) {
  assert(p->state == P_ACQUIRING || p->state == P_DESCRIBING ||
         p->state == P_BOUNDING);
  p->state = P_ENDED;
  pqs_error_t copy;
  char *store = NULL;
  const pqs_error_t *e = NULL;
  if (err != NULL && pqs__error_copy(&copy, &store, err, NULL) == 0)
    e = &copy;
  give_back(p->held);
  p->cb(p->f, status, e, NULL, p->data);
  pqs__free(store);
  part_free(p);
}

/* ---- the streams ---- */

static int append(pqs__buf_t *b, const char *s) {
  return pqs__buf_append(b, s, strlen(s));
}

/* Range `j` of nbounds + 1 (or the NULL keys, j < 0) as SQL, its bounds
 * taking the parameters after the query's own. */
static char *range_sql(const part_t *p, int j, int *nbound_params) {
  pqs__buf_t b = {0};
  char num[32];
  int n = p->opts.nparams, rc = 0;
  *nbound_params = 0;
  rc = append(&b, "SELECT * FROM (\n") || append(&b, p->sql) ||
       append(&b, "\n) AS pqs_partition WHERE ") || append(&b, p->key);
  if (j < 0) {
    rc = rc || append(&b, " IS NULL");
  } else if (p->nbounds == 0) {
    rc = rc || append(&b, " IS NOT NULL");
  } else {
    if (j > 0) {
      snprintf(num, sizeof(num), " >= $%d", n + ++*nbound_params);
      rc = rc || append(&b, num);
    }
    if (j > 0 && j < p->nbounds)
      rc = rc || append(&b, " AND ") || append(&b, p->key);
    if (j < p->nbounds) {
      snprintf(num, sizeof(num), " < $%d", n + ++*nbound_params);
      rc = rc || append(&b, num);
    }
  }
  if (p->opts.ordered)
    rc = rc || append(&b, " ORDER BY ") || append(&b, p->key);
  rc = rc || pqs__buf_append(&b, "", 1);
  if (rc) {
    pqs__buf_free(&b);
    return NULL;
  }
  return b.data;
}

/* ACQUIRING (K = 1) | BOUNDING -> ENDED: the K ranges and the NULL one,
 * merged; the callback. */
static void start_streams(part_t *p) {
  assert(p->state == P_ACQUIRING || p->state == P_BOUNDING);
  int nranges = p->nbounds + 1, nstreams = nranges + 1, rc = 0, made = 0;
  pqs_stream_t *in[MAX_PARTS + 1] = {NULL};
  while (made < nstreams && rc == 0) {
    int j = made < nranges ? made : -1, nb;
    char *sql = range_sql(p, j, &nb);
    const char **params = (const char **)p->params;
    if (j > 0)
      params[p->opts.nparams] = p->bounds[j - 1];
    if (j >= 0 && j < p->nbounds)
      params[p->opts.nparams + (j > 0)] = p->bounds[j];
    rc = sql == NULL ? PQS_ENOMEM
                     : pqs_query(p->held->ctx[made], &in[made], sql,
                                 p->opts.nparams + nb, params, NULL);
    pqs__free(sql);
    made += rc == 0;
  }
  pqs_stream_t *merged = NULL;
  if (rc == 0) {
    pqs_merge_opts_t mo = {.mode = p->opts.ordered ? PQS_MERGE_CONCAT
                                                   : PQS_MERGE_INTERLEAVE};
    rc = pqs_merge(in, nstreams, &mo, &merged);
  }
  if (rc != 0) { /* unstarted: closing them frees them at once */
    for (int i = 0; i < made; i++)
      pqs_stream_close(in[i]);
    fail(p, rc, NULL);
    return;
  }
  /* Contexts left unused (fewer ranges than asked: no bounds) go back now. */
  held_t *h = p->held;
  for (int i = nstreams; i < h->n; i++)
    pqs_ctx_close(h->ctx[i], NULL);
  h->n = nstreams;
  pqs__stream_on_free(merged, give_back, h);
  p->state = P_ENDED;
  p->cb(p->f, 0, NULL, merged, p->data);
  part_free(p);
}

/* ---- the bounds ---- */

static int bound_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  part_t *p = data;
  const char *v = pqs_row_text(row, 0, NULL);
  if (v == NULL) /* no keys at all: one range, and the NULLs */
    return PQS_CONTINUE;
  char *copy = pqs__strdup(v);
  if (copy == NULL)
    return PQS_ENOMEM;
  p->bounds[p->nbounds++] = copy;
  return PQS_CONTINUE;
}

static void bounds_done(pqs_stream_t *s, const pqs_done_t *done, void *data) {
  (void)s;
  part_t *p = data;
  assert(p->state == P_BOUNDING);
  if (done->status != 0) {
    fail(p, done->status, done->error);
    return;
  }
  if (p->nbounds != p->k - 1) { /* some NULL: none of them count */
    for (int i = 0; i < p->nbounds; i++)
      pqs__free(p->bounds[i]);
    p->nbounds = 0;
  }
  start_streams(p);
}

static key_kind_t kind_of(uint32_t type) {
  switch (type) {
  case PQS_OID_INT2:
  case PQS_OID_INT4:
  case PQS_OID_INT8:
  case PQS_OID_OID:
    return KEY_INT;
  case PQS_OID_NUMERIC:
    return KEY_NUMERIC;
  case PQS_OID_FLOAT4:
  case PQS_OID_FLOAT8:
    return KEY_FLOAT;
  case PQS_OID_DATE:
    return KEY_DATE;
  case PQS_OID_TIMESTAMP:
    return KEY_TIMESTAMP;
  case PQS_OID_TIMESTAMPTZ:
    return KEY_TIMESTAMPTZ;
  default:
    return KEY_OTHER;
  }
}

/* Bound i of K, from lo and hi, without overflow in the key's type. */
static const char *const bound_expr[] = {
    [KEY_OTHER] = "lo + (hi - lo) / %d * i",
    [KEY_INT] = "floor(lo::numeric + (hi::numeric - lo::numeric) * i / %d)",
    [KEY_NUMERIC] = "lo + (hi - lo) * i / %d",
    [KEY_FLOAT] = "lo / %1$d * (%1$d - i) + hi / %1$d * i",
    [KEY_DATE] = "lo + (((hi - date '2000-01-01')::bigint - "
                 "(lo - date '2000-01-01')::bigint) * i / %d)::int",
    [KEY_TIMESTAMP] = "to_timestamp(extract(epoch FROM lo) + "
                      "(extract(epoch FROM hi) - extract(epoch FROM lo)) * i "
                      "/ %d) AT TIME ZONE 'UTC'",
    [KEY_TIMESTAMPTZ] = "to_timestamp(extract(epoch FROM lo) + "
                        "(extract(epoch FROM hi) - extract(epoch FROM lo)) * "
                        "i / %d)",
};

/* The keys that bound the ranges: the finite ones. */
static const char *const finite_only[] = {
    [KEY_OTHER] = "",
    [KEY_INT] = "",
    [KEY_NUMERIC] = " WHERE %1$s > '-Infinity' AND %1$s < 'Infinity'",
    [KEY_FLOAT] = " WHERE %1$s > '-Infinity' AND %1$s < 'Infinity'",
    [KEY_DATE] = " WHERE isfinite(%1$s)",
    [KEY_TIMESTAMP] = " WHERE isfinite(%1$s)",
    [KEY_TIMESTAMPTZ] = " WHERE isfinite(%1$s)",
};

/* SELECT bound_i::text ... for i in 1 .. K - 1, lo and hi the lowest and
 * highest finite keys, or the given range typed as the key by COALESCE
 * with a typed NULL of it. */
static char *bounds_sql(const part_t *p) {
  pqs__buf_t b = {0};
  char num[512];
  int n = p->opts.nparams;
  int rc = append(&b, "SELECT (");
  snprintf(num, sizeof(num), bound_expr[p->kind], p->k);
  rc = rc || append(&b, num) || append(&b, ")::text FROM (SELECT ");
  if (p->opts.lo == NULL) {
    rc = rc || append(&b, "min(") || append(&b, p->key) ||
         append(&b, ") AS lo, max(") || append(&b, p->key) ||
         append(&b, ") AS hi FROM (\n") || append(&b, p->sql) ||
         append(&b, "\n) AS pqs_q");
    snprintf(num, sizeof(num), finite_only[p->kind], p->key);
    rc = rc || append(&b, num);
  } else {
    for (int end = 0; end < 2 && rc == 0; end++) {
      snprintf(num, sizeof(num), "%sCOALESCE((SELECT ", end ? ", " : "");
      rc = append(&b, num) || append(&b, p->key) || append(&b, " FROM (\n") ||
           append(&b, p->sql) || append(&b, "\n) AS pqs_q LIMIT 0), ");
      snprintf(num, sizeof(num), "$%d) AS %s", n + 1 + end, end ? "hi" : "lo");
      rc = rc || append(&b, num);
    }
  }
  snprintf(num, sizeof(num), ") AS r, generate_series(1, %d) AS i ORDER BY i",
           p->k - 1);
  rc = rc || append(&b, num) || pqs__buf_append(&b, "", 1);
  if (rc) {
    pqs__buf_free(&b);
    return NULL;
  }
  return b.data;
}

/* DESCRIBING -> BOUNDING. */
static void find_bounds(part_t *p) {
  assert(p->state == P_DESCRIBING);
  p->state = P_BOUNDING;
  char *sql = bounds_sql(p);
  const char **params = (const char **)p->params;
  int n = p->opts.nparams;
  if (p->opts.lo != NULL) {
    params[n] = p->opts.lo;
    params[n + 1] = p->opts.hi;
  }
  pqs_stream_t *s;
  /* The bounds are read as text, to be sent back as parameters. */
  pqs_query_opts_t text = {.result_format = PQS_RESULT_TEXT};
  int rc = sql == NULL ? PQS_ENOMEM
                       : pqs_query(p->held->ctx[0], &s, sql,
                                   n + (p->opts.lo ? 2 : 0), params, &text);
  pqs__free(sql);
  pqs_stream_cbs_t cbs = {.on_row = bound_row, .on_done = bounds_done};
  if (rc == 0)
    rc = pqs_stream_start(s, &cbs, p);
  if (rc != 0)
    fail(p, rc, NULL);
}

static void on_described(pqs_ctx_t *ctx, int status, const pqs_row_t *columns,
                         const pqs_error_t *error, void *data) {
  (void)ctx;
  part_t *p = data;
  assert(p->state == P_DESCRIBING);
  if (status != 0) {
    fail(p, status, error);
    return;
  }
  p->kind = kind_of(pqs_row_type(columns, 0));
  find_bounds(p);
}

/* ACQUIRING -> DESCRIBING (the key's type), or straight to the streams
 * for one range. */
static void describe_key(part_t *p) {
  assert(p->state == P_ACQUIRING);
  if (p->k == 1) {
    start_streams(p);
    return;
  }
  p->state = P_DESCRIBING;
  pqs__buf_t b = {0};
  int rc = append(&b, "SELECT ") || append(&b, p->key) ||
           append(&b, " FROM (\n") || append(&b, p->sql) ||
           append(&b, "\n) AS pqs_q") || pqs__buf_append(&b, "", 1);
  rc = rc ? PQS_ENOMEM
          : pqs_describe(p->held->ctx[0], b.data, p->opts.nparams,
                         on_described, p);
  pqs__buf_free(&b);
  if (rc != 0)
    fail(p, rc, NULL);
}

/* ---- acquiring ---- */

static void on_ctx(pqs_ctx_t *ctx, int status, const pqs_error_t *err,
                   void *data) {
  slot_t *slot = data;
  part_t *p = slot->p;
  assert(p->state == P_ACQUIRING);
  if (status == 0) {
    p->held->ctx[slot->i] = ctx;
  } else if (p->status == 0) {
    p->status = status;
    if (err != NULL)
      pqs__error_copy(&p->err, &p->err_strings, err, NULL);
  }
  if (++p->answered < p->k + 1)
    return;
  held_t *h = p->held;
  int n = 0; /* the acquired ones, packed */
  for (int i = 0; i <= p->k; i++)
    if (h->ctx[i] != NULL)
      h->ctx[n++] = h->ctx[i];
  h->n = n;
  if (p->status != 0)
    fail(p, p->status, p->err_strings ? &p->err : NULL);
  else
    describe_key(p);
}

/* "name" as an identifier, its quotes doubled. */
static char *quote_ident(const char *name) {
  char *q = pqs__malloc(2 * strlen(name) + 3), *w = q;
  if (q == NULL)
    return NULL;
  *w++ = '"';
  for (const char *c = name; *c; c++) {
    if (*c == '"')
      *w++ = '"';
    *w++ = *c;
  }
  *w++ = '"';
  *w = '\0';
  return q;
}

int pqs_partitioned(pqs_factory_t *f, uv_loop_t *loop, const char *sql,
                    const pqs_partition_opts_t *opts, pqs_partition_cb cb,
                    void *data) {
  if (f == NULL || loop == NULL || sql == NULL || opts == NULL || cb == NULL ||
      opts->column == NULL || opts->column[0] == '\0' || opts->partitions < 1 ||
      opts->partitions > MAX_PARTS ||
      (opts->lo == NULL) != (opts->hi == NULL) || opts->nparams < 0 ||
      (opts->nparams > 0 && opts->params == NULL))
    return PQS_EINVAL;
  part_t *p = pqs__calloc(1, sizeof(*p));
  if (p == NULL)
    return PQS_ENOMEM;
  int k = opts->partitions;
  size_t len = pqs__sql_trim_end(sql, strlen(sql));
  p->f = f;
  p->loop = loop;
  p->opts = *opts;
  p->k = k;
  p->cb = cb;
  p->data = data;
  p->sql = pqs__malloc(len + 1);
  p->key = quote_ident(opts->column);
  p->params = pqs__calloc((size_t)opts->nparams + 2, sizeof(char *));
  p->opts.lo = p->opts.hi = NULL; /* copies, below */
  p->opts.params = NULL;
  p->bounds = pqs__calloc((size_t)k, sizeof(char *));
  p->held = pqs__calloc(1, sizeof(held_t));
  int rc =
      p->sql && p->key && p->params && p->bounds && p->held ? 0 : PQS_ENOMEM;
  for (int i = 0; rc == 0 && i < opts->nparams; i++)
    if (opts->params[i] && !(p->params[i] = pqs__strdup(opts->params[i])))
      rc = PQS_ENOMEM;
  if (rc == 0 && opts->lo != NULL &&
      ((p->lo = pqs__strdup(opts->lo)) == NULL ||
       (p->hi = pqs__strdup(opts->hi)) == NULL))
    rc = PQS_ENOMEM;
  p->opts.lo = p->lo;
  p->opts.hi = p->hi;
  if (rc != 0) {
    pqs__free(p->held);
    part_free(p);
    return rc;
  }
  memcpy(p->sql, sql, len);
  p->sql[len] = '\0';
  for (int i = 0; i <= k; i++) {
    p->slots[i] = (slot_t){p, i};
    rc = pqs_factory_open_ctx(f, loop, NULL, on_ctx, &p->slots[i]);
    if (rc == 0)
      continue;
    if (i == 0) { /* nothing asked for: a plain failure */
      pqs__free(p->held);
      part_free(p);
      return rc;
    }
    /* Those asked for call back; the rest count as answered, and the
     * failure is reported when the last answer comes. */
    p->status = rc;
    p->answered += k + 1 - i;
    break;
  }
  return 0;
}
