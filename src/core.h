/* The core as the layers above it see it: stream/, pool/, helpers/ and
 * the tests reach the library's internals through this one header, never
 * through a wing's own.
 *
 * The core's wings, by the row's trip:
 *   conn/   the connection: context, I/O, cancel, name resolution, reset,
 *           conninfo, secrets, the owner seam (owner.h)
 *   op/     the operation: the engine, its kinds (kind.h), commands,
 *           parameters, retries, the row-source seam (source.h)
 *   value/  values: rows, getters, binary decoding, COPY's formats, arena
 *   util/   allocator, buffer, errors, SQL text
 * What the layers above may call of them is declared here or in the
 * headers this one includes. */
#ifndef PQS_CORE_H
#define PQS_CORE_H

#include "alloc.h"
#include "answer.h"
#include "binary.h"
#include "buf.h"
#include "conninfo.h"
#include "error_int.h"
#include "owner.h"
#include "params.h"
#include "retry.h"
#include "row_int.h"
#include "source.h"
#include "sqltext.h"

typedef struct pqs__op_s pqs__op_t;

/* conn/ctx.c */
int pqs__ctx_on_thread(const pqs_ctx_t *ctx);
/* Whether a user's call may start an operation: 0, PQS_ETHREAD, PQS_EBUSY,
 * PQS_EBROKEN or PQS_ESTATE. */
int pqs__ctx_check_ready(const pqs_ctx_t *ctx);
/* READY -> BROKEN if the session is inside a transaction. */
void pqs__ctx_break_in_transaction(pqs_ctx_t *ctx);
/* A helper running on the context hears of its close through a hook:
 * `fn(data)` runs once, when pqs_ctx_close is called outside a reset,
 * before the context changes state. One per context: 0, or PQS_EBUSY if
 * another is set. fn NULL clears it. */
int pqs__ctx_set_close_hook(pqs_ctx_t *ctx, void (*fn)(void *), void *data);

/* op/: an operation as a row source (source.h), not yet started. */
extern const pqs__source_vt_t pqs__op_source;
/* A statement's op, read by the source the options ask for (`rows`), or
 * run as a command: 0, PQS_EINVAL, PQS_ENOMEM (op/query.c). */
int pqs__query_begin(pqs_ctx_t *ctx, const char *sql, int nparams,
                     const char *const *params, const pqs_query_opts_t *opts,
                     int rows, pqs__op_t **out);
/* A new op sends `typed` (owned from now) as its parameters. */
void pqs__op_set_typed(pqs__op_t *op, pqs__params_t *typed);
/* A new op whose first step LISTENs on the `n` channels (op/listen.c).
 * Errors: PQS_EINVAL (no channel, an empty or unquotable name),
 * PQS_ENOMEM. */
int pqs__listen_begin(pqs_ctx_t *ctx, const char *const *channels, int n,
                      pqs__op_t **out);
/* A new op streaming the changes `opts` asks for (op/changes.c).
 * Errors: PQS_EINVAL (bad options; a context not opened with
 * replication=database), PQS_ENOMEM. */
int pqs__changes_begin(pqs_ctx_t *ctx, const pqs_changes_opts_t *opts,
                       pqs__op_t **out);
/* A replication slot's name as the server allows it (a-z, 0-9, '_', under
 * 64 bytes): 1 or 0. */
int pqs__slot_name_ok(const char *slot);
/* pqs_changes_ack on the op: 0, PQS_ESTATE (not a change stream with
 * manual acks), PQS_EINVAL (more than were delivered). */
int pqs__changes_ack(pqs__op_t *op, uint64_t n);
/* op/pipeline.c: a pipeline's query (a member), the row source of its
 * stream through pqs__member_source. pqs__pipeline_add: 0, or as
 * pqs_pipeline_query says. pqs__member_bind gives it its consumer and its
 * typed parameters (owned from then on; may be NULL), before it starts. */
typedef struct pqs__member_s pqs__member_t;
extern const pqs__source_vt_t pqs__member_source;
int pqs__pipeline_add(pqs_pipeline_t *pl, const char *sql, int nparams,
                      const char *const *params, pqs__member_t **out);
void pqs__member_bind(pqs__member_t *m, const pqs__consumer_vt_t *vt,
                      void *consumer, pqs__params_t *typed);
pqs_ctx_t *pqs__pipeline_ctx(const pqs_pipeline_t *pl);
/* Its consumer, before it starts. */
void pqs__op_bind(pqs__op_t *op, const pqs__consumer_vt_t *vt, void *consumer);

#endif
