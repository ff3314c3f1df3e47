/* pgoutput's messages (protocol version 1), decoded: what a change
 * stream reads out of each XLogData of a logical replication slot with
 * the built-in pgoutput plugin. The decoder keeps the relations the
 * stream has described (a Relation message comes before a table's first
 * change, and again after its columns change), so that a change's values
 * have names and types.
 *
 * Nothing is copied that need not be: strings and values point into the
 * message, which the caller keeps until it is done with the change. A
 * relation is the decoder's (it outlives messages). */
#ifndef PQS_PGOUTPUT_H
#define PQS_PGOUTPUT_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
  PQS__PGO_BEGIN = 'B',
  PQS__PGO_COMMIT = 'C',
  PQS__PGO_ORIGIN = 'O',
  PQS__PGO_RELATION = 'R',
  PQS__PGO_TYPE = 'Y',
  PQS__PGO_INSERT = 'I',
  PQS__PGO_UPDATE = 'U',
  PQS__PGO_DELETE = 'D',
  PQS__PGO_TRUNCATE = 'T',
  PQS__PGO_MESSAGE = 'M'
} pqs__pgo_kind_t;

/* A column's value in a change. */
typedef enum {
  PQS__PGO_NULL = 'n',
  PQS__PGO_UNCHANGED = 'u', /* a TOASTed value the server did not send */
  PQS__PGO_TEXT = 't'       /* ptr/len: its text (not NUL-terminated) */
} pqs__pgo_value_kind_t;

typedef struct {
  pqs__pgo_value_kind_t kind;
  const char *ptr;
  int len;
} pqs__pgo_value_t;

/* A table as its Relation message describes it. */
typedef struct {
  uint32_t relid;
  char *schema, *table;
  char replica_identity; /* 'd' default, 'n' nothing, 'f' full, 'i' index */
  int ncols;
  char **names;
  uint32_t *types;
  int32_t *typmods;
  unsigned char *key; /* 1: part of the replica identity */
  void *mem;          /* the one allocation the above point into */
} pqs__pgo_relation_t;

/* One message, decoded. Which fields mean something depends on kind. */
typedef struct {
  pqs__pgo_kind_t kind;
  uint64_t lsn;         /* BEGIN: the final LSN; COMMIT: the commit's */
  uint64_t end_lsn;     /* COMMIT: the end of the transaction */
  int64_t time_us;      /* BEGIN, COMMIT: since 2000-01-01 00:00 UTC */
  uint32_t xid;         /* BEGIN */
  const pqs__pgo_relation_t *rel; /* INSERT, UPDATE, DELETE, RELATION */
  /* INSERT, UPDATE: the new row; UPDATE, DELETE: the old key ('K') or
   * the whole old row ('O', REPLICA IDENTITY FULL), or none (0). */
  int nnew, nold;
  const pqs__pgo_value_t *new_values, *old_values;
  char old_kind;
  /* TRUNCATE: the tables (their relids) and options (1 CASCADE, 2
   * RESTART IDENTITY). */
  int nrels;
  const uint32_t *relids;
  int options;
  /* ORIGIN, TYPE: a name; TYPE: its schema and oid too. MESSAGE: its
   * prefix (name) and content. */
  const char *name, *schema;
  uint32_t type_oid;
  const char *content;
  int content_len;
  int transactional; /* MESSAGE */
} pqs__pgo_msg_t;

typedef struct pqs__pgo_s pqs__pgo_t;

pqs__pgo_t *pqs__pgo_new(void);
void pqs__pgo_free(pqs__pgo_t *d);

/* Decodes the `len` bytes of `msg` into *out (valid until the next call
 * and while `msg` lives). 0, or PQS_EFORMAT (a malformed message, or a
 * change of a relation never described: *why says which), PQS_ENOMEM. */
int pqs__pgo_decode(pqs__pgo_t *d, const char *msg, size_t len,
                    pqs__pgo_msg_t *out, const char **why);

/* The relation described with `relid`, or NULL. */
const pqs__pgo_relation_t *pqs__pgo_relation(const pqs__pgo_t *d,
                                             uint32_t relid);

#endif
