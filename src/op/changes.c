/* The changes kind: logical replication as a row stream, on a context
 * opened with replication=database, through the built-in pgoutput plugin
 * (protocol version 1). Each insert, update, delete and truncate is a row
 * (value/changes_row.h); Begin, Commit and Relation messages shape the
 * rows and the acknowledgements but are not rows themselves.
 *
 *   CHECK (SET ...; one SELECT of wal_level, the slot, the publications)
 *     --all is well--> START
 *     --the slot is missing and may be created--> CREATE --ok--> START
 *     --anything is wrong--> done, with its error: nothing streamed
 *   START (START_REPLICATION) --PGRES_COPY_BOTH--> STREAMING
 *   STREAMING: XLogData ('w') and keepalives ('k'), not results. A status
 *     update goes out on every tick (running or paused), when the server
 *     asks, and before the end.
 *   STREAMING --stop--> ENDING (the last status and CopyDone sent; what
 *     still comes is dropped) --the server's CopyDone--> RESULTS
 *   STREAMING --the server ends or fails the COPY--> RESULTS
 *   RESULTS --START_REPLICATION's result--> done, the context reusable
 *
 * What is reported as flushed (the slot's confirmed position) only ever
 * covers changes the consumer has taken: a transaction's end once every
 * change of it was delivered (its on_row returned; with manual acks, once
 * pqs_changes_ack counts past it), and a keepalive's WAL end only when no
 * transaction is open or waits for an ack. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>

#include "alloc.h"
#include "bigendian.h"
#include "buf.h"
#include "changes_row.h"
#include "error_int.h"
#include "kind.h"
#include "pgoutput.h"

enum { CHECK, CREATE, START, STREAMING, ENDING, RESULTS };

/* Transactions delivered whole but not yet acknowledged (manual acks):
 * past this many the stream pauses itself until an ack. */
#define PQS__ACK_RING 4096
/* A running stream that hears nothing for this long, after asking for a
 * reply on every tick, has lost its server. */
#define PQS__SILENCE_MIN_MS 15000
/* A running stream that emptied its socket rests this long before it
 * reads again (rest_or_wait). */
#define PQS__REST_MS 2
/* What one wake-up reads at most before the loop gets its turn (other
 * handles on it must not starve behind a fast server). */
#define PQS__BURST_MAX (4u << 20)

typedef struct {
  uint64_t rows_end; /* op->rows after its last change */
  uint64_t end_lsn;
} done_tx_t;

struct pqs__changes_s {
  char *check_sql, *create_sql, *start_sql;
  char slot[64];
  pqs_slot_create_t create;
  int manual;
  unsigned interval_ms;
  pqs__pgo_t *dec;
  pqs__chg_row_t row;
  pqs__chg_tx_t tx;
  int in_tx;          /* fact: a Begin came, its Commit not yet */
  uint64_t flushed;   /* what the next status update reports */
  uint64_t heard_at;  /* loop time the server was last heard */
  uint64_t status_at; /* loop time the next status update is due */
  size_t burst;       /* bytes read since the stream last waited */
  uint64_t ending_at; /* loop time ENDING began */
  done_tx_t *ring;    /* manual acks: transactions waiting for one */
  size_t head, count;
  uint64_t acked_rows;
  int self_paused; /* fact: paused by a full ring, not by the consumer */
  /* A TRUNCATE's tables, delivered one row each (the consumer may pause
   * between them): the message (libpq's buffer), decoded, and the next. */
  char *held;
  pqs__pgo_msg_t held_msg;
  uint64_t held_lsn;
  int held_next;
};

/* ---- the statements ---- */

/* Slot names are lower-case letters, digits and underscores (the server's
 * rule), so they need no quoting. */
int pqs__slot_name_ok(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n >= 64)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
          s[i] == '_'))
      return 0;
  return 1;
}

/* publication_names: each name as a quoted identifier, comma-separated,
 * the whole a string literal. */
static int pub_list(pqs__buf_t *b, const char *const *pubs, int n) {
  int rc = pqs__buf_append(b, "'", 1);
  for (int i = 0; i < n && rc == 0; i++) {
    rc = pqs__buf_append(b, i ? ",\"" : "\"", i ? 2 : 1);
    for (const char *p = pubs[i]; *p && rc == 0; p++)
      rc = *p == '"'    ? pqs__buf_append(b, "\"\"", 2)
           : *p == '\'' ? pqs__buf_append(b, "''", 2)
                        : pqs__buf_append(b, p, 1);
    rc = rc ? rc : pqs__buf_append(b, "\"", 1);
  }
  return rc ? rc : pqs__buf_append(b, "'", 1);
}

/* ARRAY['a','b'] of the publication names, each escaped by libpq. */
static int pub_array(PGconn *conn, pqs__buf_t *b, const char *const *pubs,
                     int n) {
  int rc = pqs__buf_append(b, "ARRAY[", 6);
  for (int i = 0; i < n && rc == 0; i++) {
    char *lit = PQescapeLiteral(conn, pubs[i], strlen(pubs[i]));
    if (lit == NULL)
      return PQS_EINVAL; /* not valid in the connection's encoding */
    rc = pqs__buf_append(b, i ? "," : "", i ? 1 : 0);
    rc = rc ? rc : pqs__buf_append(b, lit, strlen(lit));
    PQfreemem(lit);
  }
  return rc ? rc : pqs__buf_append(b, "]::text[]", 10); /* with its NUL */
}

static char *sql_of(pqs__buf_t *b, int rc) {
  if (rc == 0)
    return b->data;
  pqs__buf_free(b);
  return NULL;
}

/* The values render as row_to_json expects them (ISO dates), then one row:
 * wal_level, whether the slot exists, its plugin, whether it is this
 * database's, the pid using it, the publications missing, and
 * wal_sender_timeout in milliseconds. */
static char *check_sql(PGconn *conn, const char *slot,
                       const char *const *pubs, int n) {
  pqs__buf_t b = {0};
  char head[768];
  snprintf(head, sizeof(head),
           "SET DateStyle = ISO; SET IntervalStyle = postgres; "
           "SET extra_float_digits = 1; SET bytea_output = hex; "
           "SELECT current_setting('wal_level'), s.slot_name IS NOT NULL, "
           "s.plugin, s.database = current_database(), s.active_pid, "
           "(SELECT setting FROM pg_settings WHERE name = "
           "'wal_sender_timeout'), (SELECT string_agg(p, ', ') FROM "
           "unnest(");
  int rc = pqs__buf_append(&b, head, strlen(head));
  rc = rc ? rc : pub_array(conn, &b, pubs, n);
  b.len--; /* its NUL */
  snprintf(head, sizeof(head),
           ") p WHERE p NOT IN (SELECT pubname FROM pg_publication)) FROM "
           "(SELECT 1) one LEFT JOIN pg_replication_slots s ON "
           "s.slot_name = '%s'",
           slot);
  rc = rc ? rc : pqs__buf_append(&b, head, strlen(head) + 1);
  return sql_of(&b, rc);
}

static char *start_sql(const char *slot, const char *const *pubs, int n) {
  pqs__buf_t b = {0};
  char head[160];
  snprintf(head, sizeof(head),
           "START_REPLICATION SLOT %s LOGICAL 0/0 (proto_version '1', "
           "publication_names ",
           slot);
  int rc = pqs__buf_append(&b, head, strlen(head));
  rc = rc ? rc : pub_list(&b, pubs, n);
  rc = rc ? rc : pqs__buf_append(&b, ")", 2);
  return sql_of(&b, rc);
}

static char *create_sql(const char *slot, int temporary) {
  char sql[160];
  snprintf(sql, sizeof(sql),
           "CREATE_REPLICATION_SLOT %s %sLOGICAL pgoutput NOEXPORT_SNAPSHOT",
           slot, temporary ? "TEMPORARY " : "");
  return pqs__strdup(sql);
}

/* ---- errors found before streaming ---- */

static void refuse(pqs__op_t *op, const char *sqlstate, const char *hint,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void refuse(pqs__op_t *op, const char *sqlstate, const char *hint,
                   const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  pqs_error_t e = {.severity = "ERROR", .sqlstate = sqlstate,
                   .message = msg, .hint = hint};
  if (op->err.message == NULL)
    pqs__op_keep(op, pqs__error_copy(&op->err, &op->err_strings, &e, NULL));
}

/* CHECK's row: anything that would fail the stream, or fail it late (a
 * missing publication fails only at the first change), said now. */
static void check_row(pqs__op_t *op, const PGresult *res) {
  pqs__changes_t *c = op->k.changes;
  const char *slot = c->slot;
  if (PQntuples(res) != 1 || PQnfields(res) != 7) {
    refuse(op, "XX000", NULL, "unexpected answer to the slot check");
    return;
  }
  const char *level = PQgetvalue(res, 0, 0), *pid = PQgetvalue(res, 0, 4);
  unsigned long wst = strtoul(PQgetvalue(res, 0, 5), NULL, 10);
  if (wst > 0 && wst / 3 < c->interval_ms)
    c->interval_ms = wst / 3 ? (unsigned)(wst / 3) : 1;
  if (strcmp(level, "logical") != 0)
    refuse(op, "55000", "Set wal_level = logical and restart the server.",
           "logical decoding requires wal_level \"logical\"; the server's is "
           "\"%s\"",
           level);
  else if (strcmp(PQgetvalue(res, 0, 1), "t") != 0 &&
           c->create == PQS_SLOT_USE)
    refuse(op, "42704",
           "Create it, or ask for it to be created "
           "(pqs_changes_opts_t.create, the tool's --create-slot).",
           "replication slot \"%s\" does not exist", slot);
  else if (strcmp(PQgetvalue(res, 0, 1), "t") == 0 &&
           strcmp(PQgetvalue(res, 0, 2), "pgoutput") != 0)
    refuse(op, "55000", NULL,
           "replication slot \"%s\" is not a logical slot of the pgoutput "
           "plugin (it is \"%s\")",
           slot, PQgetvalue(res, 0, 2));
  else if (strcmp(PQgetvalue(res, 0, 1), "t") == 0 &&
           strcmp(PQgetvalue(res, 0, 3), "t") != 0)
    refuse(op, "55000", NULL,
           "replication slot \"%s\" was created in another database", slot);
  else if (*pid != '\0')
    refuse(op, "55006", "One stream at a time reads a slot.",
           "replication slot \"%s\" is in use by the process with PID %s",
           slot, pid);
  else if (!PQgetisnull(res, 0, 6))
    refuse(op, "42704", "Create it with CREATE PUBLICATION.",
           "publication %s does not exist", PQgetvalue(res, 0, 6));
  if (strcmp(PQgetvalue(res, 0, 1), "t") == 0)
    c->create = PQS_SLOT_USE; /* it exists: nothing to create */
}

/* ---- status updates ---- */

static void put_be64(char *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8)
    p[i] = (char)(v & 0xff);
}

/* Microseconds since 2000-01-01 00:00 UTC, the protocol's clock. */
static uint64_t pg_now_us(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  return ((uint64_t)tv.tv_sec - 946684800u) * 1000000u + (uint64_t)tv.tv_usec;
}

/* A standby status update: written, flushed and applied are all what the
 * consumer has taken. `reply`: the server is asked to answer at once. */
static void send_status(pqs__op_t *op, int reply) {
  pqs__changes_t *c = op->k.changes;
  char m[34];
  m[0] = 'r';
  put_be64(m + 1, c->flushed);
  put_be64(m + 9, c->flushed);
  put_be64(m + 17, c->flushed);
  put_be64(m + 25, pg_now_us());
  m[33] = (char)(reply != 0);
  if (op->lost || PQputCopyData(op->ctx->conn, m, (int)sizeof(m)) != 1) {
    pqs__ctx_defer(op->ctx); /* the pump hears why */
    return;
  }
  pqs__op_flush(op);
}

/* The tick comes at the next status update, or sooner to end a rest. */
static void schedule(pqs__op_t *op) {
  pqs__changes_t *c = op->k.changes;
  uint64_t now = uv_now(op->ctx->loop);
  uint64_t at = op->resting ? now + PQS__REST_MS : c->status_at;
  pqs__op_tick_in(op, at > now ? (unsigned)(at - now) : 0);
}

/* Every tick, running or paused: the end of a rest; when due, a status
 * update, asking for an answer if the server has been quiet; a server
 * quiet for three intervals (at least PQS__SILENCE_MIN_MS) while the
 * stream reads is gone. A paused stream does not read, so it hears
 * nothing and judges nothing. */
static void changes_tick(pqs__op_t *op) {
  pqs__changes_t *c = op->k.changes;
  if (op->step != STREAMING)
    return;
  uint64_t now = uv_now(op->ctx->loop);
  if (op->resting) { /* read again */
    op->resting = 0;
    pqs__op_watch(op);
  }
  if (now < c->status_at) {
    schedule(op);
    return;
  }
  c->status_at = now + c->interval_ms;
  if (op->heard || op->state != PQS__OP_RUNNING)
    c->heard_at = now;
  op->heard = 0;
  uint64_t quiet = now - c->heard_at, limit = 3ull * c->interval_ms;
  if (limit < PQS__SILENCE_MIN_MS)
    limit = PQS__SILENCE_MIN_MS;
  if (quiet >= limit) {
    refuse(op, "08006", NULL,
           "the server sent nothing for %llu ms, though asked to answer",
           (unsigned long long)quiet);
    pqs__op_stop(op, PQS_ETIMEDOUT);
    return;
  }
  send_status(op, quiet >= c->interval_ms);
  schedule(op);
}

/* ---- acknowledgements ---- */

/* A transaction's Commit: every change of it was delivered. */
static void tx_done(pqs__changes_t *c, uint64_t rows_end, uint64_t end_lsn) {
  c->in_tx = 0;
  if (!c->manual || (c->count == 0 && c->acked_rows >= rows_end)) {
    c->flushed = end_lsn;
    return;
  }
  c->ring[(c->head + c->count++) % PQS__ACK_RING] =
      (done_tx_t){rows_end, end_lsn};
}

/* A keepalive's WAL end is safe to report when nothing is in flight. */
static void keepalive(pqs__changes_t *c, uint64_t wal_end) {
  if (!c->in_tx && c->count == 0 && c->held == NULL && wal_end > c->flushed)
    c->flushed = wal_end;
}

int pqs__changes_ack(pqs__op_t *op, uint64_t n) {
  if (op->kind != &pqs__kind_changes || !op->k.changes->manual)
    return PQS_ESTATE;
  pqs__changes_t *c = op->k.changes;
  if (n > op->rows)
    return PQS_EINVAL;
  if (n > c->acked_rows)
    c->acked_rows = n;
  while (c->count > 0 && c->ring[c->head].rows_end <= c->acked_rows) {
    c->flushed = c->ring[c->head].end_lsn;
    c->head = (c->head + 1) % PQS__ACK_RING;
    c->count--;
  }
  if (c->self_paused && c->count < PQS__ACK_RING) {
    c->self_paused = 0;
    pqs__op_source.resume(op);
  }
  return 0;
}

/* ---- streaming ---- */

static int deliver(pqs__op_t *op, uint64_t lsn, const pqs__pgo_msg_t *m,
                   const pqs__pgo_relation_t *rel) {
  pqs__changes_t *c = op->k.changes;
  int rc = pqs__chg_row(&c->row, &c->tx, lsn, m, rel);
  if (rc != 0)
    return rc;
  pqs__arena_reset(&op->arena);
  pqs_row_t row = {.schema = op->schema, .cells = c->row.cells,
                   .arena = &op->arena};
  op->rows++;
  return op->consumer_vt->row(op->consumer, &row);
}

/* The held TRUNCATE's next table, as a row; the message goes after its
 * last. */
static int truncate_next(pqs__op_t *op) {
  pqs__changes_t *c = op->k.changes;
  const pqs__pgo_msg_t *m = &c->held_msg;
  int rc = PQS__CONTINUE;
  if (op->state != PQS__OP_STOPPING && c->held_next < m->nrels) {
    const pqs__pgo_relation_t *rel =
        pqs__pgo_relation(c->dec, m->relids[c->held_next++]);
    rc = rel != NULL ? deliver(op, c->held_lsn, m, rel) : PQS_EFORMAT;
    if (c->held_next < m->nrels && op->state != PQS__OP_STOPPING)
      return rc;
  }
  PQfreemem(c->held);
  c->held = NULL;
  return rc;
}

static void bad_message(pqs__op_t *op, const char *why) {
  refuse(op, "XX000", NULL, "a replication message could not be read: %s",
         why);
}

/* One XLogData message: its pgoutput message decoded and acted on. 1 if
 * the buffer is held (a TRUNCATE), else an answer code. */
static int xlog_data(pqs__op_t *op, char *msg, int n, int *held) {
  pqs__changes_t *c = op->k.changes;
  const char *why = "too short";
  pqs__pgo_msg_t m;
  uint64_t lsn = n >= 25 ? pqs__be64(msg + 1) : 0;
  int rc = n >= 25 ? pqs__pgo_decode(c->dec, msg + 25, (size_t)n - 25, &m, &why)
                   : PQS_EFORMAT;
  if (rc != 0) {
    if (rc == PQS_EFORMAT)
      bad_message(op, why);
    return rc;
  }
  switch (m.kind) {
  case PQS__PGO_BEGIN:
    c->in_tx = 1;
    pqs__chg_tx_begin(&c->tx, m.lsn, m.time_us, m.xid);
    return PQS__CONTINUE;
  case PQS__PGO_COMMIT:
    tx_done(c, op->rows, m.end_lsn);
    return PQS__CONTINUE;
  case PQS__PGO_INSERT:
  case PQS__PGO_UPDATE:
  case PQS__PGO_DELETE:
    return deliver(op, lsn, &m, NULL);
  case PQS__PGO_TRUNCATE:
    c->held = msg;
    c->held_msg = m;
    c->held_lsn = lsn;
    c->held_next = 0;
    *held = 1;
    return truncate_next(op);
  default: /* relations and types are the decoder's; origins, messages */
    return PQS__CONTINUE;
  }
}

/* Nothing more is buffered. The walsender sends each message with a
 * send() of its own while the socket takes it, which, read as it comes,
 * costs it a system call (and on loopback the reader's TCP work) per
 * change and the reader a wake-up per few: the stream reads all its
 * socket holds, then rests PQS__REST_MS (the socket unwatched, the op
 * still RUNNING; a consumer's pause is its own), so that what the server
 * sends meanwhile arrives in large pieces. Measured against
 * pg_recvlogical, this halves the client's CPU per change and cuts the
 * walsender's by a quarter; a change waits at most that much longer. */
static int rest_or_wait(pqs__op_t *op) {
  pqs__changes_t *c = op->k.changes;
  int pending = 0;
  if (c->burst < PQS__BURST_MAX && !op->lost &&
      op->state == PQS__OP_RUNNING &&
      ioctl(PQsocket(op->ctx->conn), FIONREAD, &pending) == 0 &&
      pending > 0) { /* the socket holds more: all of it first */
    if (!PQconsumeInput(op->ctx->conn))
      return PQS__WAIT; /* the loop's read hears why */
    op->heard = 1;
    return PQS__CONTINUE;
  }
  size_t burst = c->burst;
  c->burst = 0;
  /* past PQS__BURST_MAX the loop gets its turn, and the socket, still
   * readable, wakes the stream at once */
  if (burst == 0 || burst >= PQS__BURST_MAX ||
      op->state != PQS__OP_RUNNING || op->step != STREAMING)
    return PQS__WAIT;
  op->resting = 1; /* the socket is not read until the tick */
  pqs__op_watch(op);
  schedule(op);
  return PQS__WAIT;
}

/* Hot path: the next message libpq holds, as an answer code. */
static int changes_pump(pqs__op_t *op) {
  pqs__changes_t *c = op->k.changes;
  if (op->step != STREAMING && op->step != ENDING)
    return PQS__RESULTS;
  if (c->held != NULL)
    return truncate_next(op);
  if (c->manual && c->count == PQS__ACK_RING &&
      op->state == PQS__OP_RUNNING) {
    c->self_paused = 1; /* pqs_changes_ack resumes it */
    return PQS__PAUSE;
  }
  char *msg;
  int n = op->lost ? -2 : PQgetCopyData(op->ctx->conn, &msg, 1);
  if (n == 0)
    return rest_or_wait(op);
  if (n < 0) {
    op->step = RESULTS; /* the COPY is over: its result follows */
    return pqs__op_copy_data_end(op, n);
  }
  c->burst += (size_t)n;
  int rc = PQS__CONTINUE, held = 0;
  if (op->state == PQS__OP_STOPPING || op->step == ENDING)
    ; /* dropped: nothing after a stop is delivered or acknowledged */
  else if (msg[0] == 'w')
    rc = xlog_data(op, msg, n, &held);
  else if (msg[0] == 'k' && n >= 18) {
    keepalive(c, pqs__be64(msg + 1));
    if (msg[17])
      send_status(op, 0);
  }
  if (!held)
    PQfreemem(msg);
  return rc;
}

/* START's COPY BOTH began: the columns, and the first tick. The op's
 * timeout was for the steps before; the stream runs until stopped. */
static int streaming(pqs__op_t *op) {
  pqs__changes_t *c = op->k.changes;
  op->step = STREAMING;
  op->ctx->streamed_changes = 1;
  pqs__op_untime(op);
  c->heard_at = uv_now(op->ctx->loop);
  c->status_at = c->heard_at + c->interval_ms;
  schedule(op);
  if ((op->schema = pqs__chg_schema()) == NULL)
    return PQS_ENOMEM;
  return op->state == PQS__OP_STOPPING ? PQS__CONTINUE
                                       : pqs__op_deliver_columns(op, NULL);
}

/* ---- the kind ---- */

static int changes_send(pqs__op_t *op) {
  pqs__changes_t *c = op->k.changes;
  const char *sql = op->step == CHECK    ? c->check_sql
                    : op->step == CREATE ? c->create_sql
                                         : c->start_sql;
  return PQsendQuery(op->ctx->conn, sql);
}

static int changes_take(pqs__op_t *op, PGresult *res) {
  ExecStatusType st = PQresultStatus(res);
  if (op->step == START && st == PGRES_COPY_BOTH)
    return streaming(op);
  if ((op->step == CHECK || op->step == CREATE) && st == PGRES_TUPLES_OK) {
    op->final = 1;
    if (op->step == CHECK)
      check_row(op, res);
    return PQS__CONTINUE;
  }
  return pqs__op_take_common(op, res, op->step == RESULTS);
}

static pqs__next_t changes_next(pqs__op_t *op) {
  pqs__changes_t *c = op->k.changes;
  if (!pqs__op_step_ok(op))
    return PQS__NEXT_END;
  if (op->step == CHECK)
    op->step = c->create != PQS_SLOT_USE ? CREATE : START;
  else if (op->step == CREATE)
    op->step = START;
  else
    return PQS__NEXT_END;
  return PQS__NEXT_SEND;
}

/* Stopped right after a transaction's last change (a --limit, a pause
 * then a close), its Commit is often already in libpq's buffer: read what
 * is there, delivering nothing, until that Commit completes the
 * transaction (so that it is acknowledged and never comes again) or a
 * change that was not delivered shows it cannot. 1 if libpq says the
 * COPY is over. */
static int settle_buffered(pqs__op_t *op) {
  pqs__changes_t *c = op->k.changes;
  while (c->in_tx && c->held == NULL && !op->lost) {
    char *msg;
    int n = PQgetCopyData(op->ctx->conn, &msg, 1);
    if (n <= 0)
      return n == -1;
    pqs__pgo_msg_t m;
    const char *why;
    int commit = n > 25 && msg[0] == 'w' && msg[25] == PQS__PGO_COMMIT &&
                 pqs__pgo_decode(c->dec, msg + 25, (size_t)n - 25, &m,
                                 &why) == 0;
    int keepalive = msg[0] == 'k';
    PQfreemem(msg);
    if (commit)
      tx_done(c, op->rows, m.end_lsn);
    else if (!keepalive)
      break; /* a change never delivered: the transaction comes again */
  }
  return 0;
}

/* STREAMING, stopped: the consumer's position reported, then CopyDone; the
 * server ends its side and the context stays usable. Before, the engine's
 * cancel. */
static int changes_stop(pqs__op_t *op) {
  pqs__changes_t *c = op->k.changes;
  if (op->step != STREAMING)
    return 0;
  op->step = ENDING;
  c->ending_at = uv_now(op->ctx->loop);
  int over = settle_buffered(op);
  send_status(op, 0);
  if (over)
    op->step = RESULTS; /* the server ended it first: its result follows */
  else if (!op->lost && PQputCopyEnd(op->ctx->conn, NULL) == 1)
    pqs__op_flush(op);
  /* A CopyDone libpq would not take (no memory) is not needed: the cancel
   * after half the grace period ends the stream, the grace bounds it. */
  pqs__ctx_defer(op->ctx); /* what libpq holds is dropped from the loop */
  return 1;
}

/* ENDING: PostgreSQL 15's walsender finishes sending the transaction it
 * is in before it reads CopyDone; half the grace period is left to it
 * before a cancel cuts it short (a cancel that came before the last
 * status update was read would lose the update). */
static int changes_cancellable(const pqs__op_t *op) {
  const pqs__changes_t *c = op->k.changes;
  return op->step != ENDING ||
         uv_now(op->ctx->loop) - c->ending_at >
             pqs__ctx_grace_ms(op->ctx) / 2;
}

/* libpq 15, out of memory for COPY BOTH's start, stays busy: engine.c. */
static pqs__busy_t changes_busy(pqs__op_t *op) {
  return op->step == START ? PQS__BUSY_PROBE : PQS__BUSY_WAIT;
}

static void changes_free(pqs__op_t *op) {
  pqs__changes_t *c = op->k.changes;
  if (c == NULL)
    return;
  pqs__free(c->check_sql);
  pqs__free(c->create_sql);
  pqs__free(c->start_sql);
  pqs__pgo_free(c->dec);
  pqs__chg_row_free(&c->row);
  pqs__free(c->ring);
  if (c->held != NULL)
    PQfreemem(c->held);
  pqs__free(c);
  op->k.changes = NULL;
}

const pqs__kind_t pqs__kind_changes = {
    .name = "changes",
    .send = changes_send,
    .pump = changes_pump,
    .take = changes_take,
    .next = changes_next,
    .busy = changes_busy,
    .stop = changes_stop,
    .cancellable = changes_cancellable,
    .tick = changes_tick,
    .free = changes_free,
};

/* ---- beginning ---- */

/* Whether the connection is a walsender's for a database. */
static int is_replication_conn(PGconn *conn) {
  PQconninfoOption *opts = PQconninfo(conn);
  int yes = 0;
  for (PQconninfoOption *o = opts; o && o->keyword; o++)
    if (strcmp(o->keyword, "replication") == 0 && o->val != NULL)
      yes = strcmp(o->val, "database") == 0;
  PQconninfoFree(opts);
  return yes;
}

static int changes_new(pqs_ctx_t *ctx, const pqs_changes_opts_t *o,
                       pqs__changes_t **out) {
  pqs__changes_t *c = pqs__calloc(1, sizeof(*c));
  if (c == NULL)
    return PQS_ENOMEM;
  snprintf(c->slot, sizeof(c->slot), "%s", o->slot);
  c->create = o->create;
  c->manual = o->manual_ack;
  c->interval_ms = o->status_interval_ms ? o->status_interval_ms : 10000;
  c->check_sql = check_sql(ctx->conn, o->slot, o->publications,
                           o->npublications);
  c->start_sql = start_sql(o->slot, o->publications, o->npublications);
  if (o->create != PQS_SLOT_USE)
    c->create_sql = create_sql(o->slot, o->create == PQS_SLOT_TEMPORARY);
  c->dec = pqs__pgo_new();
  if (c->manual)
    c->ring = pqs__malloc(PQS__ACK_RING * sizeof(done_tx_t));
  *out = c;
  if (c->check_sql == NULL || c->start_sql == NULL || c->dec == NULL ||
      (o->create != PQS_SLOT_USE && c->create_sql == NULL) ||
      (c->manual && c->ring == NULL))
    return PQS_ENOMEM;
  return 0;
}

int pqs__changes_begin(pqs_ctx_t *ctx, const pqs_changes_opts_t *o,
                       pqs__op_t **out) {
  if (o == NULL || !pqs__slot_name_ok(o->slot) || o->npublications < 1 ||
      o->publications == NULL || (unsigned)o->create > PQS_SLOT_TEMPORARY)
    return PQS_EINVAL;
  for (int i = 0; i < o->npublications; i++)
    if (o->publications[i] == NULL || o->publications[i][0] == '\0')
      return PQS_EINVAL;
  if (!is_replication_conn(ctx->conn))
    return PQS_EINVAL;
  /* PostgreSQL 15's walsender ends a second logical START_REPLICATION on
   * its connection at once (what ended the first is still set): one
   * change stream per connection. */
  if (ctx->streamed_changes)
    return PQS_ESTATE;
  pqs__changes_t *c = NULL;
  int rc = changes_new(ctx, o, &c);
  pqs_query_opts_t qo = {.timeout_ms = o->start_timeout_ms ? o->start_timeout_ms
                                                           : 60000};
  if (rc == 0)
    rc = pqs__op_begin(ctx, &pqs__kind_changes, "START_REPLICATION", 0, NULL,
                       &qo, 0, out);
  if (rc != 0) {
    pqs__op_t fake = {.k.changes = c};
    changes_free(&fake);
    return rc;
  }
  (*out)->k.changes = c;
  return 0;
}
