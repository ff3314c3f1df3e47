/* Replication slots beside change streams: where one stands, and its
 * drop. Built on the public API (pqs_query, pqs_exec); creating a slot is
 * the change stream's own (pqs_changes_opts_t.create), since a temporary
 * slot lives in the session that streams it.
 *
 *   QUERYING --the row, then the end--> the callback, then freed */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core.h"

typedef struct {
  pqs_slot_cb cb;
  void *data;
  int found;
  char slot[64], plugin[64], confirmed[24], restart[24];
  pqs_slot_info_t info;
} position_t;

static void copy_text(const pqs_row_t *row, int col, char *out, size_t cap) {
  size_t n;
  const char *t = pqs_row_text(row, col, &n);
  snprintf(out, cap, "%s", t ? t : "");
}

/* The lag is counted to the WAL inserted, not only written: a server with
 * synchronous_commit off writes it a little later. */
static int position_row(pqs_stream_t *s, const pqs_row_t *row, void *data) {
  (void)s;
  position_t *p = data;
  p->found = 1;
  copy_text(row, 0, p->plugin, sizeof(p->plugin));
  copy_text(row, 1, p->confirmed, sizeof(p->confirmed));
  copy_text(row, 2, p->restart, sizeof(p->restart));
  size_t n;
  const char *active = pqs_row_text(row, 3, &n);
  const char *pid = pqs_row_text(row, 4, &n);
  const char *lag = pqs_row_text(row, 5, &n);
  p->info = (pqs_slot_info_t){
      .slot = p->slot,
      .plugin = p->plugin,
      .confirmed_flush = pqs_row_is_null(row, 1) ? NULL : p->confirmed,
      .restart_lsn = pqs_row_is_null(row, 2) ? NULL : p->restart,
      .active = active != NULL && strcmp(active, "t") == 0,
      .active_pid = pid ? atoi(pid) : 0,
      .lag_bytes = lag ? strtoll(lag, NULL, 10) : -1};
  return PQS_CONTINUE;
}

static void position_done(pqs_stream_t *s, const pqs_done_t *done,
                          void *data) {
  position_t *p = data;
  pqs_ctx_t *ctx = pqs_stream_ctx(s);
  int status = done->status;
  if (status == 0 && !p->found) {
    char msg[128];
    snprintf(msg, sizeof(msg), "replication slot \"%s\" does not exist",
             p->slot);
    pqs_error_t e = {.severity = "ERROR", .sqlstate = "42704",
                     .message = msg};
    p->cb(ctx, PQS_ESQL, &e, NULL, p->data);
  } else {
    p->cb(ctx, status, status == 0 ? NULL : done->error,
          status == 0 ? &p->info : NULL, p->data);
  }
  pqs__free(p);
}

int pqs_slot_position(pqs_ctx_t *ctx, const char *slot, pqs_slot_cb cb,
                      void *data) {
  if (ctx == NULL || cb == NULL || !pqs__slot_name_ok(slot))
    return PQS_EINVAL;
  position_t *p = pqs__calloc(1, sizeof(*p));
  if (p == NULL)
    return PQS_ENOMEM;
  snprintf(p->slot, sizeof(p->slot), "%s", slot);
  p->cb = cb;
  p->data = data;
  const char *params[] = {slot};
  pqs_query_opts_t qo = {.source = PQS_SOURCE_SINGLE_ROW,
                         .result_format = PQS_RESULT_TEXT};
  pqs_stream_t *s;
  int rc = pqs_query(
      ctx, &s,
      "SELECT plugin, confirmed_flush_lsn::text, restart_lsn::text, active, "
      "active_pid, pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN "
      "pg_last_wal_replay_lsn() ELSE pg_current_wal_insert_lsn() END, "
      "coalesce(confirmed_flush_lsn, restart_lsn))::int8 FROM "
      "pg_replication_slots WHERE slot_name = $1",
      1, params, &qo);
  pqs_stream_cbs_t cbs = {.on_row = position_row, .on_done = position_done};
  if (rc == 0 && (rc = pqs_stream_start(s, &cbs, p)) != 0)
    pqs_stream_close(s);
  if (rc != 0)
    pqs__free(p);
  return rc;
}

int pqs_slot_drop(pqs_ctx_t *ctx, const char *slot, pqs_exec_cb cb,
                  void *data) {
  if (ctx == NULL || cb == NULL || !pqs__slot_name_ok(slot))
    return PQS_EINVAL;
  char sql[128]; /* the name needs no quoting: letters, digits, '_' */
  snprintf(sql, sizeof(sql), "SELECT pg_drop_replication_slot('%s')", slot);
  return pqs_exec(ctx, sql, 0, NULL, NULL, cb, data);
}
