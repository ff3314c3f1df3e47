/* The COPY FROM kind: what a producer puts goes into a table with COPY
 * ... FROM STDIN, all of it or none.
 *
 *   START --COPY_IN--> DATA --all sent, PQputCopyEnd--> SEGMENT
 *   SEGMENT --ok, more to come--> AGAIN --COPY_IN--> DATA
 *   SEGMENT --ok, the last--> COMMIT --ok--> (done)
 *   DATA --stop, timeout, the producer gave up: PQputCopyEnd(why)--> FAIL
 *   START | AGAIN | SEGMENT | FAIL | COMMIT --failed--> ROLLBACK --> (done)
 *
 * The load runs in a transaction (BEGIN sent with the first COPY, unless
 * the session is in one of the caller's: then that one holds it, and
 * COMMIT and ROLLBACK are the caller's), so it can be cut into segments,
 * each a COPY of its own: libpq 15 reads nothing the server says during
 * COPY IN (an error waits unread behind its COPY_IN state until
 * PQputCopyEnd), so when the server speaks mid-COPY (an error, or only a
 * notice) the segment is ended where the data put so far ends, and its
 * result says which. The socket turning readable is not enough to know:
 * libpq reads what arrived itself while a send would block. So on TCP the
 * kernel's count of bytes received is watched (the server sends nothing
 * during COPY IN unless it speaks); elsewhere (a Unix socket) a segment
 * is ended once PQS__PROBE_BYTES went in it (a server that failed the
 * COPY drops what follows as fast as it comes, so this is soon), or once
 * it is PQS__PROBE_MS old if its sending blocked (a slow producer). An
 * error then ends the load without the rest of the source; a notice
 * costs one more COPY. At most one segment ends per PQS__SEGMENT_MS,
 * unless PQS__PROBE_BYTES went in it, so a trigger's notices cannot turn
 * every row into a round trip, nor keep the rest flowing for long.
 *
 * Bounded memory: `pending` holds what was put and not yet given to libpq
 * (a put past max_pending is told to wait, and `ready` comes when half is
 * gone), and libpq is given at most PQS__INFLIGHT bytes it has not yet
 * sent: non-blocking PQputCopyData would grow its buffer without end. */
#include <linux/tcp.h> /* tcp_info with tcpi_bytes_received */
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alloc.h"
#include "kind.h"

enum { START, DATA, SEGMENT, AGAIN, FAIL, COMMIT, ROLLBACK };

#define NO_CUT ((size_t)-1)
#define PQS__INFLIGHT (1024 * 1024)
#define PQS__PIECE (64 * 1024)
#define PQS__SEGMENT_MS 100
#define PQS__PROBE_MS 1000
#define PQS__PROBE_BYTES (4 * 1024 * 1024)
#define PQS__TAG_ROOM 32 /* "COPY " and a 64-bit count */

static const char *why_stopped(const pqs__op_t *op) {
  switch (op->status) {
  case PQS_ETIMEDOUT:
    return "pqstream: the load timed out";
  case PQS_ECANCELED:
  case 0:
    return "pqstream: the load was stopped";
  default:
    return "pqstream: the load's producer failed";
  }
}

/* ---- sending ---- */

static int send_sql(pqs__op_t *op, const char *sql) {
  return PQsendQuery(op->ctx->conn, sql);
}

static int copy_in_send(pqs__op_t *op) {
  pqs__copy_in_t *k = &op->k.copy_in;
  switch (op->step) {
  case START:
    k->segment_at = uv_now(op->ctx->loop);
    k->segment_bytes = 0;
    return send_sql(op, k->command);
  case AGAIN:
    k->segment_at = uv_now(op->ctx->loop);
    k->segment_bytes = 0;
    k->suspect = 0;
    k->header_sent = 0;
    return send_sql(op, k->again);
  case COMMIT:
    return send_sql(op, "COMMIT");
  default: /* ROLLBACK */
    return send_sql(op, "ROLLBACK");
  }
}

/* The bytes the server has sent on the connection (TCP), or -1. */
static int64_t bytes_received(PGconn *conn) {
  struct tcp_info info;
  socklen_t len = sizeof(info);
  memset(&info, 0, sizeof(info));
  if (getsockopt(PQsocket(conn), IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
      len < offsetof(struct tcp_info, tcpi_bytes_received) +
                sizeof(info.tcpi_bytes_received))
    return -1;
  return (int64_t)info.tcpi_bytes_received;
}

/* What libpq holds goes out; 0, or PQS__WAIT with the op watching the
 * socket for writing, or PQS__RESULTS if the connection failed. */
static int flush(pqs__op_t *op) {
  int rc = PQflush(op->ctx->conn);
  if (rc < 0)
    return PQS__RESULTS; /* PQgetResult says what went */
  op->flushing = rc == 1;
  if (rc == 1)
    op->k.copy_in.blocked = 1;
  pqs__op_watch(op);
  if (rc == 0)
    op->k.copy_in.inflight = 0;
  return rc == 1 ? PQS__WAIT : 0;
}

/* Binary COPY: each segment is a file of its own, between a header
 * (signature, no flags, no extension) and a trailer (a field count of
 * -1) that pqstream writes around the tuples put. */
static const char binary_header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
static const char binary_trailer[2] = "\377\377";

/* A binary segment's trailer, after its header (not yet sent by a
 * segment of no tuples). */
static int binary_end(pqs__op_t *op) {
  pqs__copy_in_t *k = &op->k.copy_in;
  PGconn *conn = op->ctx->conn;
  if (!k->header_sent && PQputCopyData(conn, binary_header, 19) != 1)
    return -1;
  k->header_sent = 1;
  return PQputCopyData(conn, binary_trailer, 2) == 1 ? 0 : -1;
}

/* DATA -> SEGMENT (why NULL: all of it is sent) or FAIL (why: the server
 * rolls the COPY back). Its results are read next; a PQputCopyEnd that
 * found no memory leaves libpq in COPY_IN, whose result is then refused
 * as any unasked COPY is (engine.c), which fails it too. */
static int end_copy(pqs__op_t *op, const char *why) {
  op->step = why ? FAIL : SEGMENT;
  op->final = 0;
  /* A failed trailer leaves the server a COPY it refuses: rolled back. */
  if (why == NULL && op->k.copy_in.binary && binary_end(op) != 0)
    pqs__op_note(op, PQS_ENOMEM);
  if (PQputCopyEnd(op->ctx->conn, why) == 0)
    pqs__op_note(op, PQS_ENOMEM);
  flush(op);
  return PQS__RESULTS;
}

/* Drops what libpq has taken, once it is most of the buffer. */
static void compact(pqs__copy_in_t *k) {
  if (k->sent == 0 || (k->sent < k->pending.len / 2 && k->sent < PQS__PIECE))
    return;
  memmove(k->pending.data, k->pending.data + k->sent, k->pending.len - k->sent);
  k->pending.len -= k->sent;
  if (k->cut != NO_CUT)
    k->cut -= k->sent;
  k->sent = 0;
}

/* Whether the producer has ended and libpq has all it put: the segment
 * being ended is the last. */
static int all_sent(const pqs__copy_in_t *k) {
  return k->producer == PQS__PRODUCER_ENDED && k->sent == k->pending.len;
}

/* The producer may put again once half of what it may hold is gone. */
static void maybe_ready(pqs__op_t *op) {
  pqs__copy_in_t *k = &op->k.copy_in;
  if (k->producer != PQS__PRODUCER_WAITING ||
      k->pending.len - k->sent > k->max_pending / 2)
    return;
  k->producer = PQS__PRODUCER_PUTTING;
  if (k->ready != NULL)
    k->ready(op->consumer);
}

/* The server spoke: this segment ends where the data put so far ends, as
 * soon as the last one is PQS__SEGMENT_MS old. */
static void heard(pqs__op_t *op) {
  pqs__copy_in_t *k = &op->k.copy_in;
  op->heard = 0;
  PQisBusy(op->ctx->conn); /* notices are parsed (and handed on) */
  k->suspect = 1;
}

/* Whether the server may have spoken though the socket did not say so
 * (libpq read it while sending). */
static void listen_harder(pqs__op_t *op) {
  pqs__copy_in_t *k = &op->k.copy_in;
  if (k->suspect)
    return;
  if (k->rx >= 0) {
    k->suspect = bytes_received(op->ctx->conn) != k->rx;
    return;
  }
  k->suspect = k->segment_bytes >= PQS__PROBE_BYTES ||
               (k->blocked &&
                uv_now(op->ctx->loop) >= k->segment_at + PQS__PROBE_MS);
}

static int cut_now(pqs__op_t *op) {
  pqs__copy_in_t *k = &op->k.copy_in;
  if (!k->suspect || k->cut != NO_CUT)
    return 0;
  uint64_t now = uv_now(op->ctx->loop);
  if (now < k->segment_at + PQS__SEGMENT_MS &&
      k->segment_bytes < PQS__PROBE_BYTES) {
    pqs__ctx_defer_ms(op->ctx,
                      (unsigned)(k->segment_at + PQS__SEGMENT_MS - now));
    return 0;
  }
  k->cut = k->pending.len;
  return 1;
}

/* DATA: what was put goes to libpq, a piece at a time. */
static int write_data(pqs__op_t *op) {
  pqs__copy_in_t *k = &op->k.copy_in;
  PGconn *conn = op->ctx->conn;
  if (op->lost)
    return PQS__RESULTS;
  if (op->heard)
    heard(op);
  listen_harder(op);
  cut_now(op);
  compact(k);
  for (;;) {
    size_t end = k->cut != NO_CUT ? k->cut : k->pending.len;
    while (k->sent < end) {
      /* A server that failed the COPY drops what follows as fast as it
       * comes: without looking again between pieces, one wake-up could
       * send the rest of the source. */
      if (k->cut == NO_CUT) {
        listen_harder(op);
        if (cut_now(op))
          end = k->cut;
      }
      /* libpq gets more only once what it has is out. */
      int rc = op->flushing ? PQS__WAIT
               : k->inflight >= PQS__INFLIGHT ? flush(op)
                                               : 0;
      if (rc != 0)
        return rc;
      if (k->binary && !k->header_sent) {
        if ((rc = PQputCopyData(conn, binary_header, 19)) != 1)
          return rc < 0 ? PQS__RESULTS
                        : (flush(op) == 0 ? PQS__CONTINUE : PQS__WAIT);
        k->header_sent = 1;
      }
      size_t n = end - k->sent < PQS__PIECE ? end - k->sent : PQS__PIECE;
      rc = PQputCopyData(conn, k->pending.data + k->sent, (int)n);
      if (rc < 0)
        return PQS__RESULTS;
      if (rc == 0) /* libpq could not grow its buffer: let it drain */
        return flush(op) == 0 ? PQS__CONTINUE : PQS__WAIT;
      k->sent += n;
      k->inflight += n;
      k->segment_bytes += n;
    }
    compact(k);
    int at_cut = k->cut != NO_CUT && k->sent == k->cut;
    if (at_cut || all_sent(k)) {
      int rc = flush(op); /* the segment's data out before its end */
      if (rc != 0)
        return rc;
      return end_copy(op, NULL);
    }
    size_t before = k->pending.len;
    maybe_ready(op); /* the producer may put more, end or stop right here */
    if (op->state != PQS__OP_RUNNING || op->step != DATA)
      return PQS__CONTINUE;
    if (k->pending.len == before && k->producer != PQS__PRODUCER_ENDED)
      break;
  }
  int rc = flush(op);
  return rc == 0 ? PQS__WAIT : rc;
}

static int copy_in_pump(pqs__op_t *op) {
  if (op->step != DATA)
    return PQS__RESULTS;
  return write_data(op);
}

/* ---- results ---- */

/* COPY_IN: DATA begins, unless the op is being stopped. */
static int copy_started(pqs__op_t *op) {
  op->final = 1;
  if (op->state == PQS__OP_STOPPING) {
    end_copy(op, why_stopped(op));
    return PQS__CONTINUE;
  }
  op->step = DATA;
  op->heard = 0; /* what brought the COPY_IN was not said during it */
  op->k.copy_in.rx = bytes_received(op->ctx->conn);
  op->k.copy_in.blocked = 0;
  return PQS__CONTINUE;
}

static int copy_in_take(pqs__op_t *op, PGresult *res) {
  pqs__copy_in_t *k = &op->k.copy_in;
  ExecStatusType st = PQresultStatus(res);
  if (st == PGRES_COPY_IN && (op->step == START || op->step == AGAIN))
    return copy_started(op);
  if (st == PGRES_COMMAND_OK && op->step == START)
    return PQS__CONTINUE; /* the BEGIN; the COPY's result follows */
  if (st == PGRES_COMMAND_OK && op->step == SEGMENT) {
    k->rows += strtoull(PQcmdTuples(res), NULL, 10);
    op->final = 1;
    return PQS__CONTINUE;
  }
  return pqs__op_take_common(op, res, 0);
}

/* The load's own tag and count, once it is committed: into the tag's
 * room, taken when it began, for a committed load must not end in a
 * failure to allocate. */
static void done_ok(pqs__op_t *op) {
  pqs__copy_in_t *k = &op->k.copy_in;
  snprintf(k->tag, PQS__TAG_ROOM, "COPY %llu", (unsigned long long)k->rows);
  pqs__free(op->tag);
  op->tag = k->tag;
  k->tag = NULL;
  op->rows = op->affected = k->rows;
}

/* A COMMIT the server got whose answer did not come (the connection
 * lost, or libpq out of memory for the result): the load may be in. */
static void commit_unknown(pqs__op_t *op) {
  if (op->err.sqlstate != NULL && op->err.sqlstate[0] != '\0')
    return; /* the server's own error: it did not commit */
  op->err.message = "the load's COMMIT was sent but its answer was lost: "
                    "whether it committed is unknown";
}

static pqs__next_t copy_in_next(pqs__op_t *op) {
  pqs__copy_in_t *k = &op->k.copy_in;
  int ok = pqs__op_step_ok(op) && op->state == PQS__OP_RUNNING;
  int alive = !pqs__op_broken(op);
  if (op->step == COMMIT || op->step == ROLLBACK) {
    if (op->step == COMMIT && ok)
      done_ok(op);
    else if (op->step == COMMIT && op->state == PQS__OP_RUNNING)
      commit_unknown(op);
    return PQS__NEXT_END;
  }
  if (ok && op->step == SEGMENT) {
    k->cut = NO_CUT;
    if (!all_sent(k)) {
      op->step = AGAIN;
      return PQS__NEXT_SEND;
    }
    if (!k->began) {
      done_ok(op);
      return PQS__NEXT_END;
    }
    op->step = COMMIT;
    return PQS__NEXT_SEND;
  }
  /* Failed, or stopped: nothing of it stays. */
  if (k->began && alive) {
    op->step = ROLLBACK;
    return PQS__NEXT_SEND;
  }
  return PQS__NEXT_END;
}

/* ---- stopping ---- */

/* DATA ends its own way: the COPY fails with why, and is rolled back. */
static int copy_in_stop(pqs__op_t *op) {
  if (op->step != DATA || op->lost)
    return 0;
  end_copy(op, why_stopped(op));
  pqs__ctx_defer(op->ctx);
  return 1;
}

/* A cancel helps while the server runs a statement of ours; a COPY that
 * failed, or a ROLLBACK, ends by itself. */
static int copy_in_cancellable(const pqs__op_t *op) {
  return op->step != FAIL && op->step != ROLLBACK;
}

/* libpq 15, out of memory for the CopyInResponse, says it is busy. */
static pqs__busy_t copy_in_busy(pqs__op_t *op) {
  return op->step == START || op->step == AGAIN ? PQS__BUSY_PROBE
                                                : PQS__BUSY_WAIT;
}

static void copy_in_free(pqs__op_t *op) {
  pqs__copy_in_t *k = &op->k.copy_in;
  pqs__free(k->command);
  pqs__free(k->again);
  pqs__free(k->tag);
  pqs__buf_free(&k->pending);
}

const pqs__kind_t pqs__kind_copy_in = {
    .name = "copy_in",
    .send = copy_in_send,
    .pump = copy_in_pump,
    .take = copy_in_take,
    .next = copy_in_next,
    .busy = copy_in_busy,
    .stop = copy_in_stop,
    .cancellable = copy_in_cancellable,
    .free = copy_in_free,
};

/* ---- the producer's side ---- */

/* "COPY target FROM STDIN" and its options; the first with HEADER. */
static int commands(pqs__copy_in_t *k, const char *target, int format,
                    int header, int begin) {
  const char *opts = format == PQS__COPY_IN_BINARY ? " (FORMAT binary)"
                     : format != PQS__COPY_IN_CSV  ? ""
                     : header ? " (FORMAT csv, HEADER true)"
                              : " (FORMAT csv)";
  const char *again = format == PQS__COPY_IN_CSV ? " (FORMAT csv)" : opts;
  size_t n = strlen(target) + 64;
  k->command = pqs__malloc(n);
  k->again = pqs__malloc(n);
  k->tag = pqs__malloc(PQS__TAG_ROOM);
  if (k->command == NULL || k->again == NULL || k->tag == NULL)
    return PQS_ENOMEM;
  snprintf(k->command, n, "%sCOPY %s FROM STDIN%s", begin ? "BEGIN;" : "",
           target, opts);
  snprintf(k->again, n, "COPY %s FROM STDIN%s", target, again);
  return 0;
}

int pqs__copy_in_begin(pqs_ctx_t *ctx, const char *target, int format,
                       int header, unsigned timeout_ms, size_t max_pending,
                       pqs__op_t **out) {
  pqs_query_opts_t qo = {.timeout_ms = timeout_ms};
  pqs__op_t *op;
  int rc = pqs__op_begin(ctx, &pqs__kind_copy_in, "", 0, NULL, &qo, 0, &op);
  if (rc != 0)
    return rc;
  pqs__copy_in_t *k = &op->k.copy_in;
  k->cut = NO_CUT;
  k->max_pending = max_pending;
  k->began = PQtransactionStatus(ctx->conn) == PQTRANS_IDLE;
  k->binary = format == PQS__COPY_IN_BINARY;
  if ((rc = commands(k, target, format, header, k->began)) != 0) {
    pqs__op_source.discard(op);
    return rc;
  }
  *out = op;
  return 0;
}

int pqs__copy_in_put(pqs__op_t *op, const char *data, size_t len) {
  pqs__copy_in_t *k = &op->k.copy_in;
  if (k->producer == PQS__PRODUCER_ENDED)
    return PQS_ESTATE;
  compact(k); /* what libpq took makes room */
  int rc = pqs__buf_append(&k->pending, data, len);
  if (rc != 0)
    return rc;
  if (op->step == DATA)
    pqs__ctx_defer(op->ctx);
  if (k->pending.len - k->sent <= k->max_pending)
    return 0;
  k->producer = PQS__PRODUCER_WAITING;
  return 1;
}

void pqs__copy_in_end(pqs__op_t *op) {
  op->k.copy_in.producer = PQS__PRODUCER_ENDED; /* no ready owed now */
  if (op->step == DATA)
    pqs__ctx_defer(op->ctx);
}
