/* Host names resolved off the loop. libpq resolves a host name inside
 * PQconnectStartParams with a blocking getaddrinfo; a context instead
 * resolves each name with uv_getaddrinfo (libuv's thread pool) and hands
 * libpq the addresses as hostaddr, keeping host for TLS verification and
 * .pgpass. A name with several addresses becomes one host entry per
 * address, so that libpq still tries them in turn.
 *
 * The job outlives the context if need be: a close lets go of it, and the
 * last answer frees it. getaddrinfo is bounded by the resolver's own
 * timeouts; the context's connect timeout covers the wait. */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "buf.h"
#include "ctx_int.h"

#define PQS__MAX_ADDRS 8 /* per name */

typedef struct entry_s {
  char *host, *port;
  int needs; /* a name, not a socket path or an address */
  int status;
  struct addrinfo *res;
  uv_getaddrinfo_t req;
  struct pqs__dns_s *job;
} entry_t;

struct pqs__dns_s {
  pqs_ctx_t *ctx; /* NULL once the context let go */
  int n, pending;
  entry_t *e;
  char *text; /* host and port lists, split in place */
  char why[256];
};

static int is_address(const char *s) {
  unsigned char buf[16];
  return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static void job_free(pqs__dns_t *job) {
  for (int i = 0; i < job->n; i++)
    if (job->e[i].res)
      uv_freeaddrinfo(job->e[i].res);
  pqs__free(job->e);
  pqs__free(job->text);
  pqs__free(job);
}

/* The value of `key` in the conninfo, or the environment's default. */
static const char *value_of(PQconninfoOption *opts, const char *key,
                            const char *env) {
  for (PQconninfoOption *o = opts; o && o->keyword; o++)
    if (strcmp(o->keyword, key) == 0 && o->val && *o->val)
      return o->val;
  const char *v = getenv(env);
  return v && *v ? v : NULL;
}

static int count_items(const char *s) {
  int n = 1;
  for (; *s; s++)
    n += *s == ',';
  return n;
}

/* Splits "a,b" in place into up to n items. */
static void split(char *s, char **items, int n) {
  for (int i = 0; i < n; i++) {
    items[i] = s;
    char *comma = s ? strchr(s, ',') : NULL;
    if (comma != NULL) {
      *comma = '\0';
      s = comma + 1;
    } else {
      s = NULL;
    }
  }
}

/* ---- the answers ---- */

static int put(pqs__buf_t *b, const char *s) {
  return pqs__buf_append(b, s, strlen(s));
}

/* host, hostaddr and port lists for libpq: one entry per address. */
static int build(pqs__dns_t *job, pqs__buf_t *host, pqs__buf_t *addr,
                 pqs__buf_t *port) {
  int rc = 0, any = 0;
  for (int i = 0; i < job->n && rc == 0; i++) {
    entry_t *e = &job->e[i];
    char seen[PQS__MAX_ADDRS][INET6_ADDRSTRLEN];
    int nseen = 0;
    for (struct addrinfo *a = e->needs ? e->res : NULL;
         a != NULL && nseen < PQS__MAX_ADDRS && rc == 0; a = a->ai_next) {
      char text[INET6_ADDRSTRLEN];
      const void *bytes =
          a->ai_family == AF_INET
              ? (const void *)&((struct sockaddr_in *)a->ai_addr)->sin_addr
              : (const void *)&((struct sockaddr_in6 *)a->ai_addr)->sin6_addr;
      if (inet_ntop(a->ai_family, bytes, text, sizeof(text)) == NULL)
        continue;
      int dup = 0;
      for (int k = 0; k < nseen; k++)
        dup |= strcmp(seen[k], text) == 0;
      if (dup)
        continue;
      strcpy(seen[nseen++], text);
      rc = put(host, any ? "," : "") || put(host, e->host) ||
           put(addr, any ? "," : "") || put(addr, text) ||
           put(port, any ? "," : "") || put(port, e->port ? e->port : "");
      any = 1;
    }
    if (!e->needs && rc == 0) { /* a socket or an address: as it is */
      rc = put(host, any ? "," : "") || put(host, e->host) ||
           put(addr, any ? "," : "") || put(port, any ? "," : "") ||
           put(port, e->port ? e->port : "");
      any = 1;
    }
  }
  if (rc == 0)
    rc = pqs__buf_append(host, "", 1) || pqs__buf_append(addr, "", 1) ||
         pqs__buf_append(port, "", 1);
  return rc ? PQS_ENOMEM : any ? 0 : PQS_ECONNECT;
}

static void all_answered(pqs__dns_t *job) {
  pqs_ctx_t *ctx = job->ctx;
  if (ctx == NULL) { /* the context has gone */
    job_free(job);
    return;
  }
  ctx->dns = NULL;
  pqs__buf_t host = {0}, addr = {0}, port = {0};
  int rc = build(job, &host, &addr, &port);
  if (rc == 0)
    pqs__ctx_connect_resolved(ctx, host.data, addr.data, port.data);
  else
    pqs__ctx_resolve_failed(ctx, rc, rc == PQS_ENOMEM ? NULL : job->why);
  pqs__buf_free(&host);
  pqs__buf_free(&addr);
  pqs__buf_free(&port);
  job_free(job);
}

static void on_answer(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  entry_t *e = req->data;
  pqs__dns_t *job = e->job;
  e->status = status;
  e->res = res;
  if (status != 0 && job->why[0] == '\0')
    snprintf(job->why, sizeof(job->why),
             "could not translate host name \"%s\" to address: %s", e->host,
             uv_strerror(status));
  if (--job->pending == 0)
    all_answered(job);
}

/* ---- the start ---- */

int pqs__resolve_start(pqs_ctx_t *ctx, const char *conninfo, int *started) {
  *started = 0;
  PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
  const char *hosts = value_of(opts, "host", "PGHOST");
  const char *ports = value_of(opts, "port", "PGPORT");
  int rc = 0;
  if (hosts == NULL || value_of(opts, "hostaddr", "PGHOSTADDR") != NULL)
    goto done; /* a socket, or addresses given: nothing to resolve */
  int n = count_items(hosts), np = ports ? count_items(ports) : 0;
  if (np > 1 && np != n)
    goto done; /* libpq will refuse it, and say why */
  size_t hl = strlen(hosts), pl = ports ? strlen(ports) : 0;
  pqs__dns_t *job = pqs__calloc(1, sizeof(*job));
  char *text = pqs__malloc(hl + pl + 2);
  entry_t *e = pqs__calloc((size_t)n, sizeof(*e));
  char **hv = pqs__calloc((size_t)n * 2, sizeof(char *));
  if (job == NULL || text == NULL || e == NULL || hv == NULL) {
    pqs__free(job), pqs__free(text), pqs__free(e), pqs__free(hv);
    rc = PQS_ENOMEM;
    goto done;
  }
  memcpy(text, hosts, hl + 1);
  if (ports)
    memcpy(text + hl + 1, ports, pl + 1);
  split(text, hv, n);
  split(ports ? text + hl + 1 : NULL, hv + n, np ? np : 0);
  *job = (pqs__dns_t){.n = n, .e = e, .text = text};
  int needs = 0;
  for (int i = 0; i < n; i++) {
    e[i].host = hv[i];
    e[i].port = np == 0 ? NULL : hv[n + (np == 1 ? 0 : i)];
    e[i].job = job;
    e[i].needs = hv[i][0] != '\0' && hv[i][0] != '/' && hv[i][0] != '@' &&
                 !is_address(hv[i]);
    needs |= e[i].needs;
  }
  pqs__free(hv);
  if (!needs) {
    job_free(job);
    goto done;
  }
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  job->pending = 1; /* held until every request is out */
  for (int i = 0; i < n && rc == 0; i++) {
    if (!e[i].needs)
      continue;
    e[i].req.data = &e[i];
    job->pending++;
    rc = uv_getaddrinfo(ctx->loop, &e[i].req, on_answer, e[i].host, NULL,
                        &hints);
    if (rc != 0)
      job->pending--;
  }
  job->ctx = ctx;
  ctx->dns = job;
  *started = 1;
  if (rc != 0 && job->why[0] == '\0')
    snprintf(job->why, sizeof(job->why), "could not resolve host names: %s",
             uv_strerror(rc));
  if (--job->pending == 0) /* every answer came already, or none went */
    pqs__ctx_defer(ctx);   /* reported from the loop: see pqs__resolve_kick */
  rc = 0;
done:
  PQconninfoFree(opts);
  return rc;
}

/* From the loop: a job whose requests all failed to start ends now. */
void pqs__resolve_kick(pqs_ctx_t *ctx) {
  if (ctx->dns != NULL && ctx->dns->pending == 0)
    all_answered(ctx->dns);
}

void pqs__resolve_let_go(pqs_ctx_t *ctx) {
  pqs__dns_t *job = ctx->dns;
  if (job == NULL)
    return;
  ctx->dns = NULL;
  job->ctx = NULL;
  if (job->pending == 0)
    job_free(job);
}
