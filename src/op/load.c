/* pqs_copy_in: a load the caller feeds, over the COPY FROM kind.
 *
 *   OPEN --pqs_copy_in_end()--> ENDED --the op ends--> (on_done, freed)
 *   OPEN --pqs_copy_in_abort()--> ABORTED --the op ends--> (on_done, freed)
 *   OPEN --the op ends first (an error, a timeout)--> (on_done, freed) */
#include <string.h>

#include "alloc.h"
#include "kind.h"

#define PQS__DEFAULT_MAX_PENDING (1024 * 1024)

typedef enum { L_OPEN, L_ENDED, L_ABORTED } load_state_t;

struct pqs_copy_in_s {
  load_state_t state;
  pqs_ctx_t *ctx;
  pqs__op_t *op;
  pqs_copy_in_cbs_t cbs;
  void *data;
  int binary; /* tuples are put, not lines */
};

static int load_row(void *self, const pqs_row_t *row) {
  (void)self;
  (void)row;
  return PQS__CONTINUE;
}

static void load_end(void *self, const pqs_done_t *done) {
  pqs_copy_in_t *ci = self;
  ci->op = NULL;
  ci->cbs.on_done(ci, done, ci->data);
  pqs__free(ci);
}

static void load_ready(void *self) {
  pqs_copy_in_t *ci = self;
  if (ci->state == L_OPEN && ci->cbs.on_ready != NULL)
    ci->cbs.on_ready(ci, ci->data);
}

static const pqs__consumer_vt_t load_consumer = {
    .row = load_row,
    .end = load_end,
};

int pqs_copy_in(pqs_ctx_t *ctx, pqs_copy_in_t **out, const char *target,
                const pqs_copy_in_opts_t *opts, const pqs_copy_in_cbs_t *cbs,
                void *data) {
  pqs_copy_in_opts_t o = opts ? *opts : (pqs_copy_in_opts_t){0};
  if (ctx == NULL || out == NULL || target == NULL || cbs == NULL ||
      cbs->on_done == NULL ||
      (o.format != PQS_FORMAT_TSV && o.format != PQS_FORMAT_CSV))
    return PQS_EINVAL;
  int rc = pqs__ctx_check_ready(ctx);
  if (rc != 0)
    return rc;
  pqs_copy_in_t *ci = pqs__calloc(1, sizeof(*ci));
  if (ci == NULL)
    return PQS_ENOMEM;
  pqs__op_t *op;
  int format = o.binary                     ? PQS__COPY_IN_BINARY
               : o.format == PQS_FORMAT_CSV ? PQS__COPY_IN_CSV
                                            : PQS__COPY_IN_TEXT;
  rc = pqs__copy_in_begin(ctx, target, format, o.header,
                          o.timeout_ms,
                          o.max_pending ? o.max_pending
                                        : PQS__DEFAULT_MAX_PENDING,
                          &op);
  if (rc != 0) {
    pqs__free(ci);
    return rc;
  }
  *ci = (pqs_copy_in_t){L_OPEN, ctx, op, *cbs, data, o.binary};
  op->k.copy_in.ready = load_ready;
  pqs__op_bind(op, &load_consumer, ci);
  pqs__op_source.start(op);
  *out = ci;
  return 0;
}

/* 0 if the caller may act on `ci` now. */
static int check(const pqs_copy_in_t *ci) {
  if (ci == NULL)
    return PQS_EINVAL;
  if (!pqs__ctx_on_thread(ci->ctx))
    return PQS_ETHREAD;
  return ci->state == L_OPEN && ci->op != NULL ? 0 : PQS_ESTATE;
}

/* 1 if [p, p + len) is whole binary COPY tuples: a 16-bit field count,
 * then each field's 32-bit length (-1: NULL) and bytes. */
static int whole_tuples(const unsigned char *p, size_t len) {
  size_t i = 0;
  while (i < len) {
    if (len - i < 2)
      return 0;
    int n = (int16_t)(p[i] << 8 | p[i + 1]);
    i += 2;
    if (n < 0)
      return 0; /* the trailer is pqstream's to write */
    for (int f = 0; f < n; f++) {
      if (len - i < 4)
        return 0;
      int32_t flen = (int32_t)((uint32_t)p[i] << 24 | (uint32_t)p[i + 1] << 16 |
                               (uint32_t)p[i + 2] << 8 | p[i + 3]);
      i += 4;
      if (flen < -1 || (flen > 0 && (size_t)flen > len - i))
        return 0;
      i += flen > 0 ? (size_t)flen : 0;
    }
  }
  return 1;
}

int pqs_copy_in_put(pqs_copy_in_t *ci, const char *data, size_t len) {
  int rc = check(ci);
  if (rc != 0)
    return rc;
  if (data == NULL || len == 0)
    return PQS_EINVAL;
  if (ci->binary ? !whole_tuples((const unsigned char *)data, len)
                 : data[len - 1] != '\n')
    return PQS_EINVAL;
  return pqs__copy_in_put(ci->op, data, len);
}

int pqs_copy_in_end(pqs_copy_in_t *ci) {
  int rc = check(ci);
  if (rc != 0)
    return rc;
  ci->state = L_ENDED;
  pqs__copy_in_end(ci->op);
  return 0;
}

int pqs_copy_in_abort(pqs_copy_in_t *ci) {
  if (ci == NULL)
    return PQS_EINVAL;
  if (!pqs__ctx_on_thread(ci->ctx))
    return PQS_ETHREAD;
  if (ci->op == NULL || ci->state == L_ABORTED) /* an end may be undone */
    return PQS_ESTATE;
  ci->state = L_ABORTED;
  pqs__op_stop(ci->op, PQS_ECANCELED);
  return 0;
}
