/* A change of a change stream as a row (changes_row.c): the fixed
 * columns every change has, whatever its table, with the table's values
 * as JSON objects, so that one stream can carry every table's changes
 * and every sink writes them. */
#ifndef PQS_CHANGES_ROW_H
#define PQS_CHANGES_ROW_H

#include "buf.h"
#include "pgoutput.h"
#include "row_int.h"

enum {
  PQS__CHG_LSN,         /* pg_lsn: where the change is in the WAL */
  PQS__CHG_COMMIT_LSN,  /* pg_lsn: its transaction's commit */
  PQS__CHG_XID,         /* int8: its transaction's id */
  PQS__CHG_COMMIT_TIME, /* timestamptz, in UTC */
  PQS__CHG_OP,          /* insert, update, delete, truncate */
  PQS__CHG_SCHEMA,
  PQS__CHG_TABLE,
  PQS__CHG_NEW,       /* json: column to value, or NULL */
  PQS__CHG_OLD,       /* json: the old key, or the old row; or NULL */
  PQS__CHG_UNCHANGED, /* json: names of the values not sent (TOAST) */
  PQS__CHG_NCOLS
};

/* The transaction a change belongs to, from its Begin message, with the
 * texts its changes share (made once per transaction). */
typedef struct {
  uint64_t commit_lsn;
  char commit_lsn_text[24], xid_text[16], time_text[48];
  int commit_lsn_len, xid_len, time_len;
} pqs__chg_tx_t;

/* A Begin's final LSN, commit time (microseconds since 2000-01-01 00:00
 * UTC) and xid as the transaction its changes share. */
void pqs__chg_tx_begin(pqs__chg_tx_t *tx, uint64_t commit_lsn,
                       int64_t commit_us, uint32_t xid);

/* A change row's storage, reused change after change. */
typedef struct {
  pqs__cell_t cells[PQS__CHG_NCOLS];
  char lsn[24];
  pqs__buf_t new_json, old_json, unchanged;
} pqs__chg_row_t;

/* The columns, as a schema the caller frees: NULL if out of memory. */
pqs__schema_t *pqs__chg_schema(void);

/* `m` (INSERT, UPDATE or DELETE) at `lsn` as the row's cells; for a
 * TRUNCATE, `rel` is the table truncated (m's rel is not read). 0 or
 * PQS_ENOMEM. The cells point into `r` until the next call. */
int pqs__chg_row(pqs__chg_row_t *r, const pqs__chg_tx_t *tx, uint64_t lsn,
                 const pqs__pgo_msg_t *m, const pqs__pgo_relation_t *rel);
void pqs__chg_row_free(pqs__chg_row_t *r);

/* An LSN as PostgreSQL writes it ("16/B374D848"): NUL-terminated into
 * `out` (at least 18 bytes); its length. */
int pqs__lsn_text(uint64_t lsn, char *out);
/* "X/Y" (hexadecimal halves) into *out: 0, or PQS_EINVAL. */
int pqs__lsn_parse(const char *text, uint64_t *out);

#endif
