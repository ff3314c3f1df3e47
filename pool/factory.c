/* The factory: connections shared by every thread, behind one lock.
 *
 * The pool holds bare connections, never contexts: a context belongs to a
 * loop, so each request gets a new context on its own loop, over an idle
 * connection (adopted), a new one (opened there), or, when max_size are
 * open, the next connection given back (handed over with uv_async_send).
 * open = idle + in_use + opening, and never exceeds max_size. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/core.h"
#include "pool_int.h"

#define NS_PER_MS (1000000ULL)

typedef struct {
  PGconn *conn;
  uint64_t born_ns, idle_ns;
} idle_t;

struct pqs_factory_s {
  void *data; /* the user's; set before sharing */
  uv_mutex_t lock;
  uv_cond_t wake; /* the reaper's sleep */
  uv_thread_t reaper;
  int stopping;
  pqs_factory_opts_t opts;
  char *conninfo;
  /* lock: */
  idle_t *idle; /* a stack: the most recently used is reused first */
  unsigned nidle, in_use, opening;
  pqs__lease_t leases; /* circular list of the leases out */
  pqs_acquire_t *qhead, *qtail;
  unsigned waiting;
  uint64_t total_opened, total_discarded, total_waits, longest_wait_ns;
};

/* ---- leases ---- */

static void link_lease(pqs_factory_t *f, pqs__lease_t *l, uint64_t born) {
  l->f = f;
  l->born_ns = born;
  l->since_ns = uv_hrtime();
  l->next = f->leases.next;
  l->prev = &f->leases;
  l->next->prev = l;
  f->leases.next = l;
  f->in_use++;
}

static void unlink_lease(pqs_factory_t *f, pqs__lease_t *l) {
  l->prev->next = l->next;
  l->next->prev = l->prev;
  f->in_use--;
}

/* ---- health ---- */

static int expired(const pqs_factory_t *f, const idle_t *c, uint64_t now) {
  uint64_t idle_ms = f->opts.idle_timeout_ms, life_ms = f->opts.max_lifetime_ms;
  return (idle_ms && now - c->idle_ns >= idle_ms * NS_PER_MS) ||
         (life_ms && now - c->born_ns >= life_ms * NS_PER_MS);
}

static void note_fatal(void *arg, const PGresult *res) {
  const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
    *(int *)arg = 1;
}

/* A connection whose server went away while it sat idle has a readable
 * socket: the FATAL message saying why, then end of file, which may come a
 * little later. Either one condemns it. Reads without waiting. */
static int alive(PGconn *conn) {
  struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
  if (p.fd < 0)
    return 0;
  int fatal = 0;
  /* libpq hands an error that arrives while idle to the notice receiver;
   * ours only listens during this check (the default takes NULL). */
  PQnoticeReceiver prev = PQsetNoticeReceiver(conn, note_fatal, &fatal);
  int ok = 1;
  for (int i = 0; ok && !fatal && i < 4 && poll(&p, 1, 0) > 0; i++) {
    ok = PQconsumeInput(conn);
    PQisBusy(conn); /* parses what was read: notices, parameter changes */
  }
  PQsetNoticeReceiver(conn, prev, NULL);
  return ok && !fatal && PQstatus(conn) == CONNECTION_OK &&
         PQtransactionStatus(conn) == PQTRANS_IDLE;
}

static void drop(pqs_factory_t *f, PGconn *conn) {
  PQfinish(conn); /* non-blocking socket: never waits */
  f->total_discarded++;
}

/* ---- granting ---- */

static void grant(pqs_factory_t *f, pqs_acquire_t *req, PGconn *conn,
                  uint64_t born) {
  link_lease(f, req->lease, born);
  req->conn = conn;
  req->state = PQS__REQ_GRANTED;
}

/* The head of the queue gets `conn` (or, if NULL, a slot to open one). */
static void grant_next(pqs_factory_t *f, PGconn *conn, uint64_t born) {
  pqs_acquire_t *req = f->qhead;
  f->qhead = req->next;
  if (f->qhead == NULL)
    f->qtail = NULL;
  f->waiting--;
  uint64_t waited = uv_hrtime() - req->queued_ns;
  if (waited > f->longest_wait_ns)
    f->longest_wait_ns = waited;
  grant(f, req, conn, born);
  pqs__acquire_granted(req); /* wakes its loop */
}

int pqs__factory_acquire(pqs_factory_t *f, pqs_acquire_t *req) {
  uv_mutex_lock(&f->lock);
  int rc = 1;
  uint64_t now = uv_hrtime();
  if (f->stopping) {
    rc = PQS_ESTATE;
  } else {
    while (f->nidle > 0 && f->qhead == NULL) {
      idle_t c = f->idle[--f->nidle];
      if (!expired(f, &c, now) && alive(c.conn)) {
        grant(f, req, c.conn, c.born_ns);
        goto out;
      }
      drop(f, c.conn);
    }
    if (f->qhead == NULL &&
        f->nidle + f->in_use + f->opening < f->opts.max_size) {
      grant(f, req, NULL, now);
    } else { /* wait in line: first come, first served */
      req->state = PQS__REQ_QUEUED;
      req->queued_ns = now;
      req->next = NULL;
      if (f->qtail)
        f->qtail->next = req;
      else
        f->qhead = req;
      f->qtail = req;
      f->waiting++;
      f->total_waits++;
      rc = 0;
    }
  }
out:
  uv_mutex_unlock(&f->lock);
  return rc;
}

int pqs__factory_dequeue(pqs_factory_t *f, pqs_acquire_t *req) {
  uv_mutex_lock(&f->lock);
  int found = 0;
  if (req->state == PQS__REQ_QUEUED) {
    pqs_acquire_t **p = &f->qhead, *prev = NULL;
    while (*p != req) {
      prev = *p;
      p = &(*p)->next;
    }
    *p = req->next;
    if (f->qtail == req)
      f->qtail = prev;
    f->waiting--;
    req->state = PQS__REQ_DONE;
    found = 1;
  }
  uv_mutex_unlock(&f->lock);
  return found;
}

int pqs__factory_claim(pqs_factory_t *f, pqs_acquire_t *req, PGconn **conn,
                       pqs__lease_t **lease) {
  uv_mutex_lock(&f->lock);
  int granted = req->state == PQS__REQ_GRANTED;
  if (granted) {
    *conn = req->conn;
    *lease = req->lease;
    req->conn = NULL;
    req->lease = NULL;
    req->state = *conn ? PQS__REQ_DONE : PQS__REQ_OPENING;
  }
  uv_mutex_unlock(&f->lock);
  return granted;
}

void pqs__factory_opened(pqs_factory_t *f) {
  uv_mutex_lock(&f->lock);
  f->total_opened++;
  uv_mutex_unlock(&f->lock);
}

/* ---- giving back ---- */

void pqs__factory_put(pqs__lease_t *lease, PGconn *conn) {
  pqs_factory_t *f = lease->f;
  uv_mutex_lock(&f->lock);
  unlink_lease(f, lease);
  idle_t c = {conn, lease->born_ns, uv_hrtime()};
  if (f->opts.max_lifetime_ms &&
      c.idle_ns - c.born_ns >= f->opts.max_lifetime_ms * NS_PER_MS) {
    drop(f, conn);
    if (f->qhead)
      grant_next(f, NULL, c.idle_ns);
  } else if (f->qhead) {
    grant_next(f, conn, c.born_ns);
  } else {
    f->idle[f->nidle++] = c;
  }
  uv_mutex_unlock(&f->lock);
  pqs__free(lease);
}

void pqs__factory_discard(pqs__lease_t *lease) {
  pqs_factory_t *f = lease->f;
  uv_mutex_lock(&f->lock);
  unlink_lease(f, lease);
  f->total_discarded++;
  if (f->qhead)
    grant_next(f, NULL, uv_hrtime());
  uv_mutex_unlock(&f->lock);
  pqs__free(lease);
}

/* ---- the reaper: idle timeout, lifetime, min_idle ---- */

static void reap(pqs_factory_t *f, uint64_t now) {
  unsigned kept = 0;
  for (unsigned i = 0; i < f->nidle; i++) {
    if (expired(f, &f->idle[i], now))
      drop(f, f->idle[i].conn);
    else
      f->idle[kept++] = f->idle[i];
  }
  f->nidle = kept;
}

/* A connection opened by libpq itself, which then honours
 * connect_timeout: the contexts' deadline (the factory's option, else the
 * conninfo's, else 10 s), rounded up to libpq's whole seconds, after the
 * conninfo so that it wins. Without it a server that accepts and never
 * answers would hold the factory's thread, and pqs_factory_free, forever.
 * (A host name is resolved by libpq here, without a deadline of its own.) */
static PGconn *connect_blocking(pqs_factory_t *f) {
  const char *const *defaults;
  const char *vals[PQS__CONNINFO_NPARAMS + 2];
  const char *keys[PQS__CONNINFO_NPARAMS + 2];
  pqs__conninfo_params(f->conninfo, &defaults, vals);
  int n = 0;
  for (; defaults[n] != NULL; n++)
    keys[n] = defaults[n];
  unsigned ms = pqs__connect_deadline_ms(f->opts.connect_timeout_ms,
                                         f->conninfo);
  char secs[16];
  snprintf(secs, sizeof(secs), "%u", (ms + 999) / 1000);
  keys[n] = "connect_timeout";
  vals[n++] = secs;
  keys[n] = vals[n] = NULL;
  return PQconnectdbParams(keys, vals, 1);
}

/* Opens connections (blocking: this is the factory's own thread, never a
 * loop's) until min_idle are idle. Called and returns with the lock held. */
static void fill(pqs_factory_t *f) {
  while (!f->stopping && f->nidle < f->opts.min_idle && f->qhead == NULL &&
         f->nidle + f->in_use + f->opening < f->opts.max_size) {
    f->opening++;
    uv_mutex_unlock(&f->lock);
    PGconn *conn = connect_blocking(f);
    int ok = PQstatus(conn) == CONNECTION_OK && PQsetnonblocking(conn, 1) == 0;
    uv_mutex_lock(&f->lock);
    f->opening--;
    if (!ok) {
      PQfinish(conn);
      return; /* try again at the next round, not in a tight loop */
    }
    f->total_opened++;
    uint64_t now = uv_hrtime();
    if (f->qhead)
      grant_next(f, conn, now);
    else
      f->idle[f->nidle++] = (idle_t){conn, now, now};
  }
}

static void reaper_main(void *arg) {
  pqs_factory_t *f = arg;
  uint64_t period = 1000;
  if (f->opts.idle_timeout_ms && f->opts.idle_timeout_ms / 4 < period)
    period = f->opts.idle_timeout_ms / 4;
  if (f->opts.max_lifetime_ms && f->opts.max_lifetime_ms / 4 < period)
    period = f->opts.max_lifetime_ms / 4;
  period = period < 10 ? 10 : period;
  uv_mutex_lock(&f->lock);
  while (!f->stopping) {
    reap(f, uv_hrtime());
    fill(f);
    if (!f->stopping)
      uv_cond_timedwait(&f->wake, &f->lock, period * NS_PER_MS);
  }
  uv_mutex_unlock(&f->lock);
}

/* ---- the public face ---- */

int pqs_factory_new(pqs_factory_t **out, const pqs_factory_opts_t *opts) {
  if (out == NULL || opts == NULL || opts->conninfo == NULL)
    return PQS_EINVAL;
  pqs_factory_t *f = pqs__calloc(1, sizeof(*f));
  if (f == NULL)
    return PQS_ENOMEM;
  f->opts = *opts;
  if (f->opts.max_size == 0)
    f->opts.max_size = 10;
  if (f->opts.min_idle > f->opts.max_size)
    f->opts.min_idle = f->opts.max_size;
  if (f->opts.acquire_timeout_ms == 0)
    f->opts.acquire_timeout_ms = 30000;
  f->conninfo = pqs__strdup(opts->conninfo);
  f->opts.conninfo = f->conninfo;
  f->idle = pqs__calloc(f->opts.max_size, sizeof(*f->idle));
  f->leases.next = f->leases.prev = &f->leases;
  int rc = f->conninfo && f->idle ? 0 : PQS_ENOMEM;
  if (rc == 0 && (rc = uv_mutex_init(&f->lock)) == 0 &&
      (rc = uv_cond_init(&f->wake)) != 0)
    uv_mutex_destroy(&f->lock);
  if (rc == 0 && (rc = uv_thread_create(&f->reaper, reaper_main, f)) != 0) {
    uv_cond_destroy(&f->wake);
    uv_mutex_destroy(&f->lock);
  }
  if (rc != 0) {
    pqs__free(f->conninfo);
    pqs__free(f->idle);
    pqs__free(f);
    return rc;
  }
  *out = f;
  return 0;
}

static void say(const pqs_factory_t *f, const char *line) {
  if (f->opts.log)
    f->opts.log(line, f->opts.log_data);
  else
    fprintf(stderr, "%s\n", line);
}

/* Called with the lock held: who still holds what. */
static void report(pqs_factory_t *f) {
  char line[512];
  uint64_t now = uv_hrtime();
  for (pqs__lease_t *l = f->leases.next; l != &f->leases; l = l->next) {
    snprintf(line, sizeof(line),
             "pqstream: pqs_factory_free: a context is still out: opened at "
             "%s:%d, %.3f s ago",
             l->file, l->line, (double)(now - l->since_ns) / 1e9);
    say(f, line);
  }
  for (pqs_acquire_t *r = f->qhead; r; r = r->next) {
    snprintf(line, sizeof(line),
             "pqstream: pqs_factory_free: a request is still waiting: made "
             "at %s:%d, %.3f s ago",
             r->file, r->line, (double)(now - r->queued_ns) / 1e9);
    say(f, line);
  }
}

int pqs_factory_free(pqs_factory_t *f) {
  if (f == NULL)
    return 0;
  uv_mutex_lock(&f->lock);
  if (f->in_use > 0 || f->waiting > 0) {
    report(f);
    uv_mutex_unlock(&f->lock);
    return PQS_EBUSY;
  }
  f->stopping = 1;
  uv_cond_signal(&f->wake);
  uv_mutex_unlock(&f->lock);
  uv_thread_join(&f->reaper);
  for (unsigned i = 0; i < f->nidle; i++)
    PQfinish(f->idle[i].conn);
  uv_cond_destroy(&f->wake);
  uv_mutex_destroy(&f->lock);
  pqs__free(f->idle);
  pqs__free(f->conninfo);
  pqs__free(f);
  return 0;
}

void pqs_factory_stats(pqs_factory_t *f, pqs_factory_stats_t *st) {
  uv_mutex_lock(&f->lock);
  st->idle = f->nidle;
  st->in_use = f->in_use;
  st->open = f->nidle + f->in_use + f->opening;
  st->waiting = f->waiting;
  st->total_opened = f->total_opened;
  st->total_discarded = f->total_discarded;
  st->total_waits = f->total_waits;
  st->longest_wait_ms = (double)f->longest_wait_ns / 1e6;
  uv_mutex_unlock(&f->lock);
}

const char *pqs__factory_conninfo(const pqs_factory_t *f) {
  return f->conninfo;
}

unsigned pqs__factory_acquire_timeout(const pqs_factory_t *f) {
  return f->opts.acquire_timeout_ms;
}

void pqs__factory_ctx_opts(const pqs_factory_t *f, pqs_ctx_opts_t *opts) {
  opts->connect_timeout_ms = f->opts.connect_timeout_ms;
  opts->query_timeout_ms = f->opts.query_timeout_ms;
  opts->cancel_grace_ms = f->opts.cancel_grace_ms;
  opts->source = f->opts.source;
  opts->result_format = f->opts.result_format;
  opts->prepare_threshold = f->opts.prepare_threshold;
  opts->statement_cache_size = f->opts.statement_cache_size;
  opts->on_notice = f->opts.on_notice;
  opts->notice_data = f->opts.notice_data;
}

void *pqs_factory_get_data(const pqs_factory_t *f) { return f->data; }
void pqs_factory_set_data(pqs_factory_t *f, void *data) { f->data = data; }
