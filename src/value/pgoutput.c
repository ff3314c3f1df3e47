/* Decoding pgoutput's messages (pgoutput.h). A reader walks the message
 * with bounds checked at every field: a short or malformed message is an
 * error, never a read past its end. */
#include <string.h>

#include "alloc.h"
#include "bigendian.h"
#include "pgoutput.h"
#include "pqstream.h"

struct pqs__pgo_s {
  pqs__pgo_relation_t *rels; /* described so far; replaced when redescribed */
  int nrels, cap;
  pqs__pgo_value_t *vals[2]; /* new and old values, reused */
  int vcap[2];
  uint32_t *relids; /* TRUNCATE's, reused */
  int rcap;
};

typedef struct {
  const char *p, *end;
  int bad; /* fact: a field ran past the end */
} reader_t;

static int left(reader_t *r, size_t n) {
  if (r->bad || (size_t)(r->end - r->p) < n)
    r->bad = 1;
  return !r->bad;
}

static unsigned u8(reader_t *r) {
  return left(r, 1) ? (unsigned char)*r->p++ : 0;
}

static uint32_t u16(reader_t *r) {
  uint32_t v = left(r, 2) ? pqs__be16(r->p) : 0;
  r->p += r->bad ? 0 : 2;
  return v;
}

static uint32_t u32(reader_t *r) {
  uint32_t v = left(r, 4) ? pqs__be32(r->p) : 0;
  r->p += r->bad ? 0 : 4;
  return v;
}

static uint64_t u64(reader_t *r) {
  uint64_t v = left(r, 8) ? pqs__be64(r->p) : 0;
  r->p += r->bad ? 0 : 8;
  return v;
}

/* A NUL-terminated string of the message (pointing into it). */
static const char *str(reader_t *r) {
  if (r->bad)
    return "";
  const char *nul = memchr(r->p, '\0', (size_t)(r->end - r->p));
  if (nul == NULL) {
    r->bad = 1;
    return "";
  }
  const char *s = r->p;
  r->p = nul + 1;
  return s;
}

/* ---- relations ---- */

static void relation_free(pqs__pgo_relation_t *rel) {
  pqs__free(rel->mem);
  memset(rel, 0, sizeof(*rel));
}

const pqs__pgo_relation_t *pqs__pgo_relation(const pqs__pgo_t *d,
                                             uint32_t relid) {
  for (int i = 0; i < d->nrels; i++)
    if (d->rels[i].relid == relid)
      return &d->rels[i];
  return NULL;
}

/* The slot for `relid`: its old one (freed), or a new one. */
static pqs__pgo_relation_t *relation_slot(pqs__pgo_t *d, uint32_t relid) {
  pqs__pgo_relation_t *rel = (pqs__pgo_relation_t *)pqs__pgo_relation(d, relid);
  if (rel != NULL) {
    relation_free(rel);
    return rel;
  }
  if (d->nrels == d->cap) {
    int want = d->cap ? d->cap * 2 : 8;
    pqs__pgo_relation_t *grown =
        pqs__realloc(d->rels, (size_t)want * sizeof(*grown));
    if (grown == NULL)
      return NULL;
    d->rels = grown;
    d->cap = want;
  }
  rel = &d->rels[d->nrels++];
  memset(rel, 0, sizeof(*rel));
  return rel;
}

/* 'R': relid, namespace, name, replica identity, then each column's
 * flags, name, type and typmod. Kept in one allocation. */
static int relation(pqs__pgo_t *d, reader_t *r, pqs__pgo_msg_t *out) {
  uint32_t relid = u32(r);
  const char *schema = str(r), *table = str(r);
  char identity = (char)u8(r);
  int ncols = (int)u16(r);
  const char *cols = r->p;
  size_t names = 0;
  for (int i = 0; i < ncols && !r->bad; i++) {
    u8(r);
    names += strlen(str(r)) + 1;
    u32(r);
    u32(r);
  }
  if (r->bad)
    return PQS_EFORMAT;
  size_t n = (size_t)ncols;
  size_t size = n * (sizeof(char *) + sizeof(uint32_t) + sizeof(int32_t) + 1) +
                strlen(schema) + strlen(table) + 2 + names;
  char *block = pqs__malloc(size);
  pqs__pgo_relation_t *rel = block ? relation_slot(d, relid) : NULL;
  if (rel == NULL) {
    pqs__free(block);
    return PQS_ENOMEM;
  }
  rel->names = (char **)block;
  rel->types = (uint32_t *)(rel->names + n);
  rel->typmods = (int32_t *)(rel->types + n);
  rel->key = (unsigned char *)(rel->typmods + n);
  char *p = (char *)(rel->key + n);
  rel->mem = block;
  rel->schema = strcpy(p, schema);
  p += strlen(schema) + 1;
  rel->table = strcpy(p, table);
  p += strlen(table) + 1;
  reader_t again = {cols, r->end, 0};
  for (int i = 0; i < ncols; i++) {
    rel->key[i] = (unsigned char)(u8(&again) & 1);
    const char *name = str(&again);
    rel->names[i] = strcpy(p, name);
    p += strlen(name) + 1;
    rel->types[i] = u32(&again);
    rel->typmods[i] = (int32_t)u32(&again);
  }
  rel->relid = relid;
  rel->replica_identity = identity;
  rel->ncols = ncols;
  out->rel = rel;
  return 0;
}

/* ---- changes ---- */

/* TupleData into the decoder's values array `which` (0 new, 1 old). */
static int tuple(pqs__pgo_t *d, reader_t *r, int which, int *n,
                 const pqs__pgo_value_t **out) {
  int ncols = (int)u16(r);
  if (r->bad)
    return PQS_EFORMAT;
  if (ncols > d->vcap[which]) {
    pqs__pgo_value_t *grown =
        pqs__realloc(d->vals[which], (size_t)ncols * sizeof(*grown));
    if (grown == NULL)
      return PQS_ENOMEM;
    d->vals[which] = grown;
    d->vcap[which] = ncols;
  }
  pqs__pgo_value_t *v = d->vals[which];
  for (int i = 0; i < ncols; i++) {
    unsigned kind = u8(r);
    v[i] = (pqs__pgo_value_t){.kind = (pqs__pgo_value_kind_t)kind};
    if (kind == PQS__PGO_TEXT) {
      uint32_t len = u32(r);
      if (!left(r, len) || len > INT32_MAX)
        return PQS_EFORMAT;
      v[i].ptr = r->p;
      v[i].len = (int)len;
      r->p += len;
    } else if (kind != PQS__PGO_NULL && kind != PQS__PGO_UNCHANGED) {
      return PQS_EFORMAT; /* 'b' (binary) is protocol 2's, not asked for */
    }
  }
  *n = ncols;
  *out = v;
  return r->bad ? PQS_EFORMAT : 0;
}

/* The relation a change names; it must have been described. */
static int changed_relation(pqs__pgo_t *d, reader_t *r, pqs__pgo_msg_t *out,
                            const char **why) {
  uint32_t relid = u32(r);
  out->rel = pqs__pgo_relation(d, relid);
  if (out->rel == NULL && !r->bad) {
    *why = "pgoutput: a change of a relation not described first";
    return PQS_EFORMAT;
  }
  return 0;
}

/* I: relid 'N' new. U: relid ['K'|'O' old] 'N' new. D: relid 'K'|'O' old.
 * A tuple's width must be its relation's. */
static int change(pqs__pgo_t *d, reader_t *r, pqs__pgo_msg_t *out,
                  const char **why) {
  int rc = changed_relation(d, r, out, why);
  if (rc != 0)
    return rc;
  unsigned tag = u8(r);
  if (out->kind != PQS__PGO_INSERT && (tag == 'K' || tag == 'O')) {
    out->old_kind = (char)tag;
    if ((rc = tuple(d, r, 1, &out->nold, &out->old_values)) != 0)
      return rc;
    if (out->kind == PQS__PGO_UPDATE)
      tag = u8(r);
  }
  if (out->kind != PQS__PGO_DELETE) {
    if (tag != 'N')
      return PQS_EFORMAT;
    if ((rc = tuple(d, r, 0, &out->nnew, &out->new_values)) != 0)
      return rc;
  } else if (out->old_kind == 0) {
    return PQS_EFORMAT;
  }
  int width = out->rel->ncols;
  if ((out->nnew && out->nnew != width) || (out->nold && out->nold != width)) {
    *why = "pgoutput: a change's columns differ from its relation's";
    return PQS_EFORMAT;
  }
  return 0;
}

/* T: nrels, options, relids. */
static int truncate_(pqs__pgo_t *d, reader_t *r, pqs__pgo_msg_t *out) {
  uint32_t n = u32(r);
  out->options = (int)u8(r);
  if (r->bad || !left(r, (size_t)n * 4))
    return PQS_EFORMAT;
  if ((int)n > d->rcap) {
    uint32_t *grown = pqs__realloc(d->relids, (size_t)n * sizeof(*grown));
    if (grown == NULL)
      return PQS_ENOMEM;
    d->relids = grown;
    d->rcap = (int)n;
  }
  for (uint32_t i = 0; i < n; i++)
    d->relids[i] = u32(r);
  out->nrels = (int)n;
  out->relids = d->relids;
  return 0;
}

static int message(reader_t *r, pqs__pgo_msg_t *out) {
  out->transactional = (int)(u8(r) & 1);
  out->lsn = u64(r);
  out->name = str(r);
  uint32_t len = u32(r);
  if (!left(r, len) || len > INT32_MAX)
    return PQS_EFORMAT;
  out->content = r->p;
  out->content_len = (int)len;
  r->p += len;
  return 0;
}

int pqs__pgo_decode(pqs__pgo_t *d, const char *msg, size_t len,
                    pqs__pgo_msg_t *out, const char **why) {
  reader_t r = {msg, msg + len, 0};
  *out = (pqs__pgo_msg_t){.kind = (pqs__pgo_kind_t)u8(&r)};
  *why = "pgoutput: a malformed message";
  int rc = 0;
  switch (out->kind) {
  case PQS__PGO_BEGIN:
    out->lsn = u64(&r);
    out->time_us = (int64_t)u64(&r);
    out->xid = u32(&r);
    break;
  case PQS__PGO_COMMIT:
    u8(&r); /* flags: none yet */
    out->lsn = u64(&r);
    out->end_lsn = u64(&r);
    out->time_us = (int64_t)u64(&r);
    break;
  case PQS__PGO_ORIGIN:
    out->lsn = u64(&r);
    out->name = str(&r);
    break;
  case PQS__PGO_RELATION:
    rc = relation(d, &r, out);
    break;
  case PQS__PGO_TYPE:
    out->type_oid = u32(&r);
    out->schema = str(&r);
    out->name = str(&r);
    break;
  case PQS__PGO_INSERT:
  case PQS__PGO_UPDATE:
  case PQS__PGO_DELETE:
    rc = change(d, &r, out, why);
    break;
  case PQS__PGO_TRUNCATE:
    rc = truncate_(d, &r, out);
    break;
  case PQS__PGO_MESSAGE:
    rc = message(&r, out);
    break;
  default:
    *why = "pgoutput: a message of an unknown kind";
    return PQS_EFORMAT;
  }
  if (rc == 0 && r.bad)
    rc = PQS_EFORMAT;
  return rc;
}

pqs__pgo_t *pqs__pgo_new(void) { return pqs__calloc(1, sizeof(pqs__pgo_t)); }

void pqs__pgo_free(pqs__pgo_t *d) {
  if (d == NULL)
    return;
  for (int i = 0; i < d->nrels; i++)
    relation_free(&d->rels[i]);
  pqs__free(d->rels);
  pqs__free(d->vals[0]);
  pqs__free(d->vals[1]);
  pqs__free(d->relids);
  pqs__free(d);
}
