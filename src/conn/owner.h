/* The seam between a context and whoever owns its connection.
 *
 * A context from pqs_ctx_open owns its connection and closes it. One that
 * a pool hands out gets an owner (pqs__ctx_set_owner, right after
 * pqs_ctx_open or pqs__ctx_adopt succeeds), and the core then calls
 *
 *   release(owner, conn)
 *
 * exactly once, on the context's loop thread, when the context is freed:
 * after its open and done callbacks, just before its close callback, and
 * with nothing of the context left to touch. `conn` is the connection, healthy and
 * idle, for the owner to keep (it is reset first if reset_first is set:
 * ROLLBACK of an open transaction, then DISCARD ALL); or NULL when the
 * core closed it (broken, closed while busy or connecting, or the reset
 * failed), and the owner's place for it is free.
 *
 * This is the only thing the core knows of a pool: no file under src/
 * includes anything from pool/. */
#ifndef PQS_OWNER_H
#define PQS_OWNER_H

#include <libpq-fe.h>

#include "pqstream.h"

typedef struct pqs__owner_vt_s {
  int reset_first;
  void (*release)(void *owner, PGconn *conn);
} pqs__owner_vt_t;

/* A context over a connection that is already open (`conn` is the
 * context's from now on). It goes through CONNECTING -> READY like any
 * other, from the loop, and `cb` runs there. Errors: PQS_ENOMEM (conn
 * untouched, still the caller's). */
int pqs__ctx_adopt(pqs_ctx_t **out, uv_loop_t *loop, PGconn *conn,
                   const pqs_ctx_opts_t *opts, pqs_open_cb cb, void *data);

/* Gives the context's connection an owner (see above). Before any
 * callback of the context has run. */
void pqs__ctx_set_owner(pqs_ctx_t *ctx, const pqs__owner_vt_t *vt,
                        void *owner);

#endif
