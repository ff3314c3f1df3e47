/* A fault proxy on loopback, for the hardening suite: it forwards TCP
 * between the client and the test server and, on command, misbehaves the
 * way networks do. It runs on a thread and a loop of its own, listens on
 * 127.0.0.1 only, and stops by itself after PT_PROXY_LIFETIME_S seconds
 * whatever the test does. */
#ifndef PQS_FAULTPROXY_H
#define PQS_FAULTPROXY_H

#define PT_PROXY_LIFETIME_S 120

typedef enum {
  PT_FORWARD,     /* both ways, as fast as they go */
  PT_STALL_DOWN,  /* server -> client stops (the server blocks writing) */
  PT_STALL_UP,    /* client -> server stops */
  PT_STALL_BOTH,  /* nothing moves, on open connections and new ones: a
                     new connection is accepted and never answered */
  PT_TRICKLE,     /* server -> client one byte every millisecond */
  PT_SLOW_UP,     /* client -> server 4 KB every millisecond (a slow
                     target: the client's writes back up) */
  PT_SILENT       /* new connections are accepted and never answered;
                     open ones forward */
} pt_fault_t;

typedef struct pt_proxy_s pt_proxy_t;

/* Starts a proxy to 127.0.0.1:`upstream_port`, forwarding. */
pt_proxy_t *pt_proxy_start(int upstream_port);
/* The same, listening on `ip` inside the network namespace `netns` (a
 * path such as /run/netns/NAME): what connects to it from another
 * namespace can be cut off by taking a link down. */
pt_proxy_t *pt_proxy_start_in(const char *netns, const char *ip,
                              int upstream_port);
/* The port it listens on (127.0.0.1). */
int pt_proxy_port(const pt_proxy_t *p);
/* "host=127.0.0.1 port=<proxy> ..." with the test server's other keys. */
const char *pt_proxy_conninfo(const pt_proxy_t *p);
/* Runs the calling thread in the network namespace at `path` (NULL: stays)
 * and returns a handle on the one it was in, for pt_netns_leave. */
int pt_netns_enter(const char *path);
void pt_netns_leave(int home);

/* Changes how it behaves, for open connections and new ones; returns once
 * the proxy's loop has applied it. */
void pt_proxy_set(pt_proxy_t *p, pt_fault_t fault);
/* Resets every open connection (RST to the client). */
void pt_proxy_reset(pt_proxy_t *p);
/* Connections accepted so far. */
int pt_proxy_accepted(pt_proxy_t *p);
/* Closes everything and joins its thread. */
void pt_proxy_stop(pt_proxy_t *p);

#endif
