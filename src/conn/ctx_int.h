/* The context: one connection on one loop, one operation at a time. */
#ifndef PQS_CTX_INT_H
#define PQS_CTX_INT_H

#include <libpq-fe.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "core.h"

/* Context states and the transitions between them (one function each):
 *
 *  RESOLVING --connect_resolved()--> CONNECTING   (host names, off the loop;
 *      |                                 |           pqs_ctx_open starts in
 *  resolve_failed(), connect_failed()    |           RESOLVING when a host
 *      |                                 |           needs resolving)
 *      |   CONNECTING --connected()--> READY --op_begin()--> BUSY
 *      |       |                       ^  |  <--op_finish()--  |
 *      |   connect_failed()            |  |                    | op_finish():
 *      |       |                       |  |                    | lost, or
 *      v       v                       |  |                    v given up
 *    BROKEN <------------------------+--+--------------------+
 *
 *  READY, owner wants a reset --pqs_ctx_close()--> pqs__ctx_reset():
 *    RESET_ROLLBACK (a transaction was open) --ok--> RESET_DISCARD
 *    RESET_DISCARD --ok, session idle--> RELEASING
 *    either, on failure ---------------> CLOSING
 *  READY with an owner that wants no reset --pqs_ctx_close()--> RELEASING
 *  any other state --pqs_ctx_close()--> CLOSING
 *
 *  CLOSING   --handles closed--> freed, connection closed (a cancel still
 *            on its way is waited for, within cancel_grace_ms, if it has
 *            a deadline; let go of if PQcancel sends it)
 *  RELEASING --handles closed--> freed, connection given to its owner
 *
 * A reset step runs as an ordinary operation while the context stays in
 * its RESET_* state (not BUSY), so the busy rule and the bounded-time rule
 * hold for it too: it has a timeout, and a stop's grace period. */
typedef enum {
  PQS__CTX_RESOLVING,
  PQS__CTX_CONNECTING,
  PQS__CTX_READY,
  PQS__CTX_BUSY,
  PQS__CTX_BROKEN,
  PQS__CTX_RESET_ROLLBACK,
  PQS__CTX_RESET_DISCARD,
  PQS__CTX_RELEASING,
  PQS__CTX_CLOSING
} pqs__ctx_state_t;

/* The poll handle watches a dup() of libpq's socket, so that libpq closing
 * its descriptor (connection lost, or a retry during connect) can never
 * leave a closed or reused descriptor inside the loop's epoll set. */
typedef struct pqs__io_s {
  uv_poll_t handle;
  int fd;
  ino_t ino; /* identity of the socket, to notice libpq replacing it */
  int events;
  pqs_ctx_t *ctx;
} pqs__io_t;

/* A cancel request on a thread of its own (cancel.c), sent by pqstream
 * with a deadline (cancel_send.c) when the backend's key can be read, or
 * by PQcancel, which has none, when it cannot:
 *   IDLE --pqs__cancel_request()--> SENDING --the thread is done--> IDLE
 *   SENDING --pqs__cancel_let_go()--> IDLE (PQcancel's thread goes on
 *     alone; one with a deadline is kept)
 *   IDLE --pqs__cancel_close()--> CLOSED
 *   SENDING --pqs__cancel_close()--> ENDING --the thread is done--> CLOSED
 *     (with a deadline; PQcancel's thread is let go of, then CLOSED)
 * CLOSED: the async handle is closed, or being closed. */
typedef enum {
  PQS__CANCEL_IDLE,
  PQS__CANCEL_SENDING,
  PQS__CANCEL_ENDING,
  PQS__CANCEL_CLOSED
} pqs__cancel_state_t;

typedef struct pqs__cancel_job_s pqs__cancel_job_t;

/* What a context knows of its session's text settings: UNKNOWN until a
 * binary result asks (op/settings.c), KNOWN, or KNOWN_IN_TX when learned
 * inside a transaction block, whose end may undo a SET LOCAL; a tag that
 * may change them makes them UNKNOWN (op/results.c, pqs__ctx_tag_seen). */
typedef enum {
  PQS__TEXT_UNKNOWN,
  PQS__TEXT_KNOWN,
  PQS__TEXT_KNOWN_IN_TX
} pqs__text_known_t;

typedef struct pqs__cancel_s {
  pqs__cancel_state_t state;
  pqs__cancel_job_t *job; /* while SENDING or ENDING */
  uv_async_t async;       /* the thread's wake-up; referenced when ENDING */
} pqs__cancel_t;

/* What a cancel request needs: where the server is, and the backend's
 * pid and secret key. */
typedef struct pqs__cancel_key_s {
  struct sockaddr_storage addr;
  socklen_t salen;
  uint32_t pid;
  uint32_t secret;
} pqs__cancel_key_t;

struct pqs_ctx_s {
  void *data;
  uv_loop_t *loop;
  uv_thread_t thread;
  PGconn *conn;
  pqs__ctx_state_t state;
  pqs_ctx_opts_t opts;
  pqs__io_t *io;
  uv_timer_t timer;    /* connect timeout, then each query's timeout */
  uv_timer_t defer;    /* runs work on the next loop turn: never re-enter */
  uv_timer_t tick;     /* the operation's own time (kind.h, tick) */
  pqs_open_cb open_cb; /* NULL once called: the open callback is owed */
  void *open_data;
  pqs_close_cb close_cb;
  int handles; /* handles not yet through their close callback */
  pqs__op_t *op;
  /* The session's settings a binary value's text follows (learned by
   * op/settings.c), and what is known of them. */
  pqs__text_settings_t text;
  pqs__text_known_t text_known;
  const pqs__owner_vt_t *owner_vt; /* NULL: the context owns conn */
  void *owner;
  PQnoticeReceiver prev_notice; /* restored when the connection leaves */
  char *secrets; /* the conninfo's passwords, masked in open errors */
  pqs__cancel_t cancel;
  void (*close_hook)(void *); /* see pqs__ctx_set_close_hook (core.h) */
  void *close_hook_data;
  struct pqs__dns_s *dns; /* CONNECTING: host names being resolved */
  char *conninfo;         /* kept while they are */
  int streamed_changes;   /* fact: a change stream ran (op/changes.c) */
  /* Automatic prepared statements (op/stmt_cache.c); NULL: off. */
  struct pqs__stmts_s *stmts;
};

typedef struct pqs__dns_s pqs__dns_t;

/* ctx.c */
void pqs__ctx_defer(pqs_ctx_t *ctx);
void pqs__ctx_defer_ms(pqs_ctx_t *ctx, unsigned ms);
void pqs__ctx_connect_step(pqs_ctx_t *ctx);
void pqs__ctx_maybe_free(pqs_ctx_t *ctx);
void pqs__ctx_handle_closed(uv_handle_t *handle); /* one fewer to wait for */
/* How long a stop may take once cancelled, and a cancel request with it. */
unsigned pqs__ctx_grace_ms(const pqs_ctx_t *ctx);
/* Any state -> CLOSING, or RELEASING if `keep` (the connection goes back
 * to its owner). */
void pqs__ctx_close_now(pqs_ctx_t *ctx, int keep);
int pqs__ctx_closing(const pqs_ctx_t *ctx); /* CLOSING or RELEASING */

/* reset.c: READY -> RESET_* -> RELEASING | CLOSING. */
void pqs__ctx_reset(pqs_ctx_t *ctx);

/* io.c */
int pqs__io_attach(pqs_ctx_t *ctx);
void pqs__io_watch(pqs_ctx_t *ctx, int events);
void pqs__io_detach(pqs_ctx_t *ctx);

/* The engine (op/engine.c), as the connection core calls it. */
void pqs__op_io(pqs_ctx_t *ctx, int status, int events);
void pqs__op_kick(pqs_ctx_t *ctx);
void pqs__op_abandon(pqs_ctx_t *ctx);
void pqs__op_end_abandoned(pqs_ctx_t *ctx);
void pqs__op_maybe_finish(pqs_ctx_t *ctx);

/* op/exec.c: a command, started at once; for reset.c as for pqs_exec. */
int pqs__exec_start(pqs_ctx_t *ctx, const char *sql, int nparams,
                    const char *const *params, const pqs_query_opts_t *opts,
                    pqs_exec_cb cb, void *data);

/* resolve.c: host names resolved on libuv's thread pool before libpq
 * connects (CONNECTING, before a connection exists). *started is 1 if
 * names are being resolved: the answer comes through
 * pqs__ctx_connect_resolved or pqs__ctx_resolve_failed. */
int pqs__resolve_start(pqs_ctx_t *ctx, const char *conninfo, int *started);
void pqs__resolve_kick(pqs_ctx_t *ctx);
void pqs__resolve_let_go(pqs_ctx_t *ctx);
/* ctx.c: the answers. */
void pqs__ctx_connect_resolved(pqs_ctx_t *ctx, const char *host,
                               const char *hostaddr, const char *port);
void pqs__ctx_resolve_failed(pqs_ctx_t *ctx, int status, const char *why);

/* cancel.c */
int pqs__cancel_init(pqs_ctx_t *ctx); /* the async handle; 0 or libuv's */
void pqs__cancel_request(pqs_ctx_t *ctx);
void pqs__cancel_let_go(pqs_ctx_t *ctx);
/* The context closes: its handle closes once no bounded request is on its
 * way, through pqs__ctx_handle_closed. */
void pqs__cancel_close(pqs_ctx_t *ctx);

/* cancel_send.c: the key from a PGcancel, checked against the connection
 * (0, or -1 if this libpq's PGcancel cannot be read); the request sent
 * within timeout_ms (0 delivered, -1 not). Thread-safe, no allocation. */
int pqs__cancel_key_read(PGconn *conn, const PGcancel *handle,
                         pqs__cancel_key_t *key);
int pqs__cancel_send(const pqs__cancel_key_t *key, unsigned timeout_ms);

#endif
