/* The factory's shared state and the requests that wait on it. Everything
 * in struct pqs_factory_s is guarded by its lock; requests and contexts
 * belong to their own loop's thread, except the fields marked "lock". */
#ifndef PQS_POOL_INT_H
#define PQS_POOL_INT_H

#include <libpq-fe.h>

#include "../src/core.h"
#include "pqstream.h"

/* A connection out of the pool: where and when it was asked for, so that
 * pqs_factory_free can say who still holds one. */
typedef struct pqs__lease_s {
  pqs_factory_t *f;
  const char *file;
  int line;
  uint64_t since_ns;
  uint64_t born_ns; /* when its connection was opened */
  struct pqs__lease_s *prev, *next;
} pqs__lease_t;

/* Request states: QUEUED --grant--> GRANTED --async on its loop-->
 * OPENING (slot) | done (connection adopted); QUEUED --timeout/cancel-->
 * done. */
typedef enum {
  PQS__REQ_NEW,
  PQS__REQ_QUEUED,
  PQS__REQ_GRANTED,
  PQS__REQ_OPENING,
  PQS__REQ_DONE
} pqs__req_state_t;

/* The loop side of a request, on its own loop's thread (acquire.c):
 *   WAITING --grant claimed--> OPENING (a context adopted or opened here)
 *   WAITING --timeout, or the grant could not be used--> DONE
 *   WAITING --pqs_acquire_cancel()--> WITHDRAWN --async--> DONE
 *   OPENING --the context opened or failed--> DONE
 *   OPENING --pqs_acquire_cancel()--> ABANDONED --the context opened-->
 *     DONE (the context closed, or given back)
 * The callback runs once, on the way to DONE; WITHDRAWN and ABANDONED end
 * with PQS_ECANCELED. */
typedef enum {
  PQS__AREQ_WAITING,
  PQS__AREQ_WITHDRAWN,
  PQS__AREQ_OPENING,
  PQS__AREQ_ABANDONED,
  PQS__AREQ_DONE
} pqs__areq_state_t;

struct pqs_acquire_s {
  pqs_factory_t *f;
  uv_loop_t *loop;
  uv_thread_t thread;
  uv_async_t async; /* the grant, sent from whichever thread gave it */
  uv_timer_t timer; /* acquire timeout */
  int handles;
  pqs_open_cb cb;
  void *data;
  const char *file;
  int line;
  pqs__areq_state_t side; /* the loop side's state */
  /* lock: */
  pqs__req_state_t state;
  PGconn *conn; /* granted connection, or NULL for a granted slot */
  pqs__lease_t *lease;
  uint64_t queued_ns;
  pqs_acquire_t *next;
};

/* factory.c: the pool. Each takes the lock itself. */
/* Grants `req` a connection or a slot at once (returns 1), or queues it
 * (returns 0); PQS_ESTATE if the factory is being freed, PQS_ENOMEM. */
int pqs__factory_acquire(pqs_factory_t *f, pqs_acquire_t *req);
/* Takes `req` out of the queue: 1 if it was there. */
int pqs__factory_dequeue(pqs_factory_t *f, pqs_acquire_t *req);
/* Takes what was granted to `req` (a connection, or NULL for a slot to
 * open one, and the lease): 1, or 0 if nothing was granted. */
int pqs__factory_claim(pqs_factory_t *f, pqs_acquire_t *req, PGconn **conn,
                       pqs__lease_t **lease);
/* A new connection was opened for a lease. */
void pqs__factory_opened(pqs_factory_t *f);
/* A connection comes back from a lease, healthy and reset. */
void pqs__factory_put(pqs__lease_t *lease, PGconn *conn);
/* A lease ends without a connection to give back (broken, or failed to
 * open): its place goes to the next in line. */
void pqs__factory_discard(pqs__lease_t *lease);
const char *pqs__factory_conninfo(const pqs_factory_t *f);
unsigned pqs__factory_acquire_timeout(const pqs_factory_t *f);
void pqs__factory_ctx_opts(const pqs_factory_t *f, pqs_ctx_opts_t *opts);

/* acquire.c: the loop side. */
void pqs__acquire_granted(pqs_acquire_t *req); /* any thread */

/* acquire.c: the owner of a leased context's connection (src/owner.h):
 * a healthy connection goes back to the pool, reset; a NULL frees its
 * place for the next in line. */
extern const pqs__owner_vt_t pqs__lease_owner;

#endif
