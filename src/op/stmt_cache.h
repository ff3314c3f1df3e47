/* A context's automatic prepared statements (stmt_cache.c): which of the
 * parameterised statements it runs are prepared on the server, under
 * which names, and which to close when the cache is full. The rows kind
 * asks before each run (rows.c); nothing here talks to the server. */
#ifndef PQS_STMT_CACHE_H
#define PQS_STMT_CACHE_H

#include <stdint.h>

typedef struct pqs__stmts_s pqs__stmts_t;

#define PQS__STMT_NAME 32

/* What a run of a statement does. */
typedef enum {
  PQS__STMT_UNNAMED,  /* as without a cache: the unnamed statement */
  PQS__STMT_PREPARED, /* runs `name`, prepared earlier */
  PQS__STMT_PREPARE   /* prepares as `name` first, then runs it */
} pqs__stmt_action_t;

typedef struct {
  pqs__stmt_action_t action;
  char name[PQS__STMT_NAME];
  /* Not empty: a statement to close first (evicted, or gone stale). */
  char victim[PQS__STMT_NAME];
} pqs__stmt_plan_t;

/* A cache of `cap` statements (0: 100) whose statements are prepared from
 * their `threshold`-th run on; NULL if out of memory. */
pqs__stmts_t *pqs__stmts_new(unsigned cap, unsigned threshold);
void pqs__stmts_free(pqs__stmts_t *c);

/* Plans a run of `sql` with `n` parameters of `types` (NULL: all inferred
 * by the server): counts the use. PQS_ENOMEM leaves the run unnamed. */
void pqs__stmts_plan(pqs__stmts_t *c, const char *sql, int n,
                     const uint32_t *types, pqs__stmt_plan_t *plan);
/* The server has `name` now (its PREPARE succeeded) / no longer (a
 * DEALLOCATE). */
void pqs__stmts_prepared(pqs__stmts_t *c, const char *name);
/* A Parse of `name` counted as done (a batch counts it as it sends it)
 * did not happen: the statement is prepared again on its next plan. */
void pqs__stmts_unprepared(pqs__stmts_t *c, const char *name);
/* `name`'s plan went stale (the server refused it, 0A000 from
 * RevalidateCachedQuery): a new plan of the statement closes and
 * prepares it again. */
void pqs__stmts_stale(pqs__stmts_t *c, const char *name);
/* The session dropped every statement (DISCARD ALL, DEALLOCATE ALL). */
void pqs__stmts_forget(pqs__stmts_t *c);
/* A plan's victim was not closed (its DEALLOCATE failed, or never ran):
 * a later plan closes it. */
void pqs__stmts_orphan(pqs__stmts_t *c, const char *name);

#endif
