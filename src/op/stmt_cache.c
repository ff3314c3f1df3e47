/* Automatic prepared statements (stmt_cache.h): a table of at most `cap`
 * statements, each with its use count and the tick of its last use; the
 * least recently used goes when a new one needs its place, closed on the
 * server first if it was prepared there. Linear scans over a hundred
 * entries, each compared by hash first: a plan costs far less than the
 * round trip it is for. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "pqstream.h"
#include "stmt_cache.h"

typedef struct {
  char *sql;        /* NULL: a free place */
  uint32_t *types;  /* NULL: inferred */
  int n;
  uint64_t hash;
  unsigned uses;
  uint64_t last;    /* tick of the last use */
  int prepared;     /* fact: the server has it under `name` */
  int stale;        /* fact: the server has it, but its plan is stale */
  char name[PQS__STMT_NAME];
} entry_t;

/* Statements the server still has that no entry names any more: a
 * DEALLOCATE of them that failed or never ran (an aborted transaction).
 * Each is the victim of a later plan; past this many the oldest is let go
 * (it lives until the session ends or is reset). */
#define ORPHANS 8

struct pqs__stmts_s {
  entry_t *e;
  unsigned cap, threshold;
  uint64_t tick, next_name;
  uint64_t nonce; /* names differ from any other cache's on a session */
  char orphans[ORPHANS][PQS__STMT_NAME];
  unsigned norphans;
};

pqs__stmts_t *pqs__stmts_new(unsigned cap, unsigned threshold) {
  pqs__stmts_t *c = pqs__calloc(1, sizeof(*c));
  if (c == NULL)
    return NULL;
  c->cap = cap ? cap : 100;
  c->threshold = threshold ? threshold : 1;
  c->e = pqs__calloc(c->cap, sizeof(entry_t));
  if (c->e == NULL) {
    pqs__free(c);
    return NULL;
  }
  c->nonce = (uint64_t)uv_hrtime() ^ (uint64_t)(uintptr_t)c;
  return c;
}

static void entry_clear(entry_t *e) {
  pqs__free(e->sql);
  pqs__free(e->types);
  *e = (entry_t){0};
}

void pqs__stmts_free(pqs__stmts_t *c) {
  if (c == NULL)
    return;
  for (unsigned i = 0; i < c->cap; i++)
    entry_clear(&c->e[i]);
  pqs__free(c->e);
  pqs__free(c);
}

/* FNV-1a over the text and the types. */
static uint64_t hash_of(const char *sql, int n, const uint32_t *types) {
  uint64_t h = 1469598103934665603ull;
  for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
    h = (h ^ *p) * 1099511628211ull;
  for (int i = 0; types && i < n; i++)
    h = (h ^ types[i]) * 1099511628211ull;
  return h ^ (uint64_t)n;
}

static int same(const entry_t *e, uint64_t h, const char *sql, int n,
                const uint32_t *types) {
  if (e->sql == NULL || e->hash != h || e->n != n || strcmp(e->sql, sql))
    return 0;
  if ((e->types == NULL) != (types == NULL))
    return 0;
  return types == NULL || memcmp(e->types, types, n * sizeof(*types)) == 0;
}

/* A place for a new statement: a free one, else the least recently
 * used, whose name (if the server has it) goes in `victim`. */
static entry_t *place(pqs__stmts_t *c, char *victim) {
  entry_t *lru = &c->e[0];
  for (unsigned i = 0; i < c->cap; i++) {
    if (c->e[i].sql == NULL)
      return &c->e[i];
    if (c->e[i].last < lru->last)
      lru = &c->e[i];
  }
  if (lru->prepared || lru->stale)
    snprintf(victim, PQS__STMT_NAME, "%s", lru->name);
  entry_clear(lru);
  return lru;
}

static int fill(entry_t *e, uint64_t h, const char *sql, int n,
                const uint32_t *types) {
  e->sql = pqs__strdup(sql);
  if (types != NULL && n > 0 &&
      (e->types = pqs__malloc(n * sizeof(*types))) != NULL)
    memcpy(e->types, types, n * sizeof(*types));
  if (e->sql == NULL || (types != NULL && n > 0 && e->types == NULL)) {
    entry_clear(e);
    return PQS_ENOMEM;
  }
  e->n = n;
  e->hash = h;
  return 0;
}

/* A plan with no victim of its own closes an orphan. */
static void adopt_orphan(pqs__stmts_t *c, pqs__stmt_plan_t *plan) {
  if (plan->victim[0] != '\0' || c->norphans == 0)
    return;
  c->norphans--;
  memcpy(plan->victim, c->orphans[c->norphans], PQS__STMT_NAME);
}

void pqs__stmts_orphan(pqs__stmts_t *c, const char *name) {
  if (c->norphans == ORPHANS) { /* the oldest is let go */
    memmove(c->orphans[0], c->orphans[1],
            (ORPHANS - 1) * sizeof(c->orphans[0]));
    c->norphans--;
  }
  snprintf(c->orphans[c->norphans++], PQS__STMT_NAME, "%s", name);
}

static void plan_entry(pqs__stmts_t *c, const char *sql, int n,
                       const uint32_t *types, pqs__stmt_plan_t *plan);

void pqs__stmts_plan(pqs__stmts_t *c, const char *sql, int n,
                     const uint32_t *types, pqs__stmt_plan_t *plan) {
  plan_entry(c, sql, n, types, plan);
  adopt_orphan(c, plan);
}

static void plan_entry(pqs__stmts_t *c, const char *sql, int n,
                       const uint32_t *types, pqs__stmt_plan_t *plan) {
  *plan = (pqs__stmt_plan_t){PQS__STMT_UNNAMED, "", ""};
  uint64_t h = hash_of(sql, n, types);
  entry_t *e = NULL;
  for (unsigned i = 0; i < c->cap && e == NULL; i++)
    if (same(&c->e[i], h, sql, n, types))
      e = &c->e[i];
  if (e == NULL && ((e = place(c, plan->victim)) == NULL ||
                    fill(e, h, sql, n, types) != 0))
    return; /* unnamed; a victim named is still closed */
  e->last = ++c->tick;
  e->uses++;
  if (e->prepared) {
    plan->action = PQS__STMT_PREPARED;
    snprintf(plan->name, sizeof(plan->name), "%s", e->name);
    return;
  }
  if (e->uses < c->threshold)
    return;
  if (e->stale) /* the server still has it: closed, then prepared again */
    snprintf(plan->victim, sizeof(plan->victim), "%s", e->name);
  else
    snprintf(e->name, sizeof(e->name), "pqs_%llx_%llu",
             (unsigned long long)(c->nonce & 0xffffffffffull),
             (unsigned long long)++c->next_name);
  e->stale = 0;
  plan->action = PQS__STMT_PREPARE;
  snprintf(plan->name, sizeof(plan->name), "%s", e->name);
}

static entry_t *named(pqs__stmts_t *c, const char *name) {
  for (unsigned i = 0; i < c->cap; i++)
    if (c->e[i].sql != NULL && strcmp(c->e[i].name, name) == 0)
      return &c->e[i];
  return NULL;
}

void pqs__stmts_prepared(pqs__stmts_t *c, const char *name) {
  entry_t *e = named(c, name);
  if (e != NULL) {
    e->prepared = 1;
    e->stale = 0;
  }
}

void pqs__stmts_unprepared(pqs__stmts_t *c, const char *name) {
  entry_t *e = named(c, name);
  if (e != NULL)
    e->prepared = 0;
}

void pqs__stmts_stale(pqs__stmts_t *c, const char *name) {
  entry_t *e = named(c, name);
  if (e != NULL && e->prepared) {
    e->prepared = 0;
    e->stale = 1;
  }
}

void pqs__stmts_forget(pqs__stmts_t *c) {
  if (c == NULL)
    return;
  for (unsigned i = 0; i < c->cap; i++)
    c->e[i].prepared = c->e[i].stale = 0;
  c->norphans = 0;
}
