#define _GNU_SOURCE /* setns */
#include "faultproxy.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <uv.h>

#define HIGH_WATER (256 * 1024) /* bytes queued to one side: stop reading */

typedef struct pair_s pair_t;

struct pt_proxy_s {
  uv_loop_t loop;
  uv_thread_t thread;
  uv_tcp_t listener;
  uv_async_t command;
  uv_timer_t lifetime, trickle;
  uv_mutex_t lock;
  uv_cond_t applied;
  /* lock: */
  pt_fault_t fault, wanted;
  int reset_wanted, stop_wanted, generation, done_generation, accepted;
  int stopped; /* its loop has closed everything: commands are moot */
  /* the loop's: */
  int port, upstream_port;
  char conninfo[512];
  pair_t *pairs;
};

/* One proxied connection: the client's side and the server's. */
struct pair_s {
  pt_proxy_t *p;
  uv_tcp_t down, up;
  uv_connect_t connecting;
  int up_connected, closing, handles;
  pair_t *next;
};

static void pair_closed(uv_handle_t *h) {
  pair_t *c = h->data;
  if (--c->handles > 0)
    return;
  pair_t **pp = &c->p->pairs;
  while (*pp != c)
    pp = &(*pp)->next;
  *pp = c->next;
  free(c);
}

static void pair_close(pair_t *c, int reset) {
  if (c->closing)
    return;
  c->closing = 1;
  if (reset)
    uv_tcp_close_reset(&c->down, pair_closed);
  else
    uv_close((uv_handle_t *)&c->down, pair_closed);
  uv_close((uv_handle_t *)&c->up, pair_closed);
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(size);
  buf->len = buf->base ? size : 0;
}

typedef struct {
  uv_write_t req;
  pair_t *c;
  char *base;
} wr_t;

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* Whether bytes may flow from `from` now. */
static int may_read(pair_t *c, uv_stream_t *from) {
  pt_fault_t f = c->p->fault;
  int downstream = from == (uv_stream_t *)&c->up; /* server -> client */
  uv_stream_t *to = downstream ? (uv_stream_t *)&c->down
                               : (uv_stream_t *)&c->up;
  if (c->closing || !c->up_connected ||
      uv_stream_get_write_queue_size(to) > HIGH_WATER)
    return 0;
  if (f == PT_STALL_BOTH)
    return 0;
  if (downstream)
    return f != PT_STALL_DOWN && f != PT_TRICKLE;
  return f != PT_STALL_UP && f != PT_SLOW_UP;
}

static void apply(pair_t *c) {
  uv_stream_t *sides[] = {(uv_stream_t *)&c->down, (uv_stream_t *)&c->up};
  for (int i = 0; i < 2 && !c->closing; i++) {
    if (may_read(c, sides[i]))
      uv_read_start(sides[i], on_alloc, on_read);
    else if (c->up_connected)
      uv_read_stop(sides[i]);
  }
}

static void on_written(uv_write_t *req, int status) {
  wr_t *w = (wr_t *)req;
  pair_t *c = w->c;
  free(w->base);
  free(w);
  if (status < 0)
    pair_close(c, 0);
  else
    apply(c);
}

static void forward(pair_t *c, uv_stream_t *to, char *base, size_t n) {
  wr_t *w = malloc(sizeof(*w));
  ck_assert_ptr_nonnull(w);
  w->c = c;
  w->base = base;
  uv_buf_t b = uv_buf_init(base, (unsigned)n);
  if (uv_write(&w->req, to, &b, 1, on_written) != 0) {
    free(base);
    free(w);
    pair_close(c, 0);
  }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  pair_t *c = s->data;
  if (n < 0) {
    free(buf->base);
    pair_close(c, 0);
    return;
  }
  if (n == 0) {
    free(buf->base);
    return;
  }
  uv_stream_t *to = s == (uv_stream_t *)&c->up ? (uv_stream_t *)&c->down
                                               : (uv_stream_t *)&c->up;
  forward(c, to, buf->base, (size_t)n);
  apply(c);
}

/* TRICKLE: one byte from the server every tick; SLOW_UP: 4 KB from the
 * client every tick; read without libuv. */
static void on_trickle(uv_timer_t *t) {
  pt_proxy_t *p = t->data;
  if (p->fault != PT_TRICKLE && p->fault != PT_SLOW_UP)
    return;
  int up = p->fault == PT_SLOW_UP;
  size_t size = up ? 4096 : 1;
  for (pair_t *c = p->pairs; c; c = c->next) {
    uv_stream_t *from = up ? (uv_stream_t *)&c->down : (uv_stream_t *)&c->up;
    uv_stream_t *to = up ? (uv_stream_t *)&c->up : (uv_stream_t *)&c->down;
    if (c->closing || !c->up_connected ||
        uv_stream_get_write_queue_size(to) > 0)
      continue;
    uv_os_fd_t fd;
    uv_fileno((uv_handle_t *)from, &fd);
    char *b = malloc(size);
    ck_assert_ptr_nonnull(b);
    ssize_t n = recv(fd, b, size, MSG_DONTWAIT);
    if (n > 0)
      forward(c, to, b, (size_t)n);
    else
      free(b);
  }
}

static void on_up(uv_connect_t *req, int status) {
  pair_t *c = req->data;
  if (c->closing)
    return;
  if (status < 0) {
    pair_close(c, 0);
    return;
  }
  c->up_connected = 1;
  apply(c);
}

static void on_connection(uv_stream_t *server, int status) {
  pt_proxy_t *p = server->data;
  if (status < 0)
    return;
  pair_t *c = calloc(1, sizeof(*c));
  ck_assert_ptr_nonnull(c);
  c->p = p;
  uv_tcp_init(&p->loop, &c->down);
  uv_tcp_init(&p->loop, &c->up);
  c->down.data = c->up.data = c->connecting.data = c;
  c->handles = 2;
  c->next = p->pairs;
  p->pairs = c;
  if (uv_accept(server, (uv_stream_t *)&c->down) != 0) {
    pair_close(c, 0);
    return;
  }
  uv_mutex_lock(&p->lock);
  p->accepted++;
  uv_mutex_unlock(&p->lock);
  if (p->fault == PT_SILENT || p->fault == PT_STALL_BOTH)
    return; /* accepted, and never answered: nothing is read or sent */
  struct sockaddr_in to;
  uv_ip4_addr("127.0.0.1", p->upstream_port, &to);
  if (uv_tcp_connect(&c->connecting, &c->up, (struct sockaddr *)&to, on_up))
    pair_close(c, 0);
}

static void stop_all(pt_proxy_t *p) {
  uv_mutex_lock(&p->lock);
  p->stopped = 1;
  uv_cond_broadcast(&p->applied);
  uv_mutex_unlock(&p->lock);
  for (pair_t *c = p->pairs; c; c = c->next)
    pair_close(c, 0);
  uv_close((uv_handle_t *)&p->listener, NULL);
  uv_close((uv_handle_t *)&p->command, NULL);
  uv_close((uv_handle_t *)&p->lifetime, NULL);
  uv_close((uv_handle_t *)&p->trickle, NULL);
}

static void on_command(uv_async_t *a) {
  pt_proxy_t *p = a->data;
  uv_mutex_lock(&p->lock);
  p->fault = p->wanted;
  int reset = p->reset_wanted, stop = p->stop_wanted;
  p->reset_wanted = 0;
  int gen = p->generation;
  uv_mutex_unlock(&p->lock);
  for (pair_t *c = p->pairs; c; c = c->next)
    if (reset)
      pair_close(c, 1);
    else
      apply(c);
  if (stop)
    stop_all(p);
  uv_mutex_lock(&p->lock);
  p->done_generation = gen;
  uv_cond_broadcast(&p->applied);
  uv_mutex_unlock(&p->lock);
}

static void on_lifetime(uv_timer_t *t) {
  fprintf(stderr, "fault proxy: lifetime over, stopping by itself\n");
  stop_all(t->data);
}

static void proxy_main(void *arg) {
  pt_proxy_t *p = arg;
  uv_run(&p->loop, UV_RUN_DEFAULT);
}

/* Runs the calling thread in namespace `path` (NULL: leaves it); returns
 * a descriptor of the namespace it was in, for pt_netns_leave. */
int pt_netns_enter(const char *path) {
  int home = open("/proc/thread-self/ns/net", O_RDONLY);
  ck_assert_msg(home >= 0, "cannot read this thread's network namespace");
  if (path != NULL) {
    int fd = open(path, O_RDONLY);
    ck_assert_msg(fd >= 0, "no network namespace %s", path);
    ck_assert_msg(setns(fd, CLONE_NEWNET) == 0, "setns %s failed", path);
    close(fd);
  }
  return home;
}

void pt_netns_leave(int home) {
  ck_assert_int_eq(setns(home, CLONE_NEWNET), 0);
  close(home);
}

pt_proxy_t *pt_proxy_start(int upstream_port) {
  return pt_proxy_start_in(NULL, "127.0.0.1", upstream_port);
}

pt_proxy_t *pt_proxy_start_in(const char *netns, const char *ip,
                              int upstream_port) {
  /* A side that went away is UV_EPIPE for the proxy, not a signal. */
  signal(SIGPIPE, SIG_IGN);
  pt_proxy_t *p = calloc(1, sizeof(*p));
  ck_assert_ptr_nonnull(p);
  p->upstream_port = upstream_port;
  ck_assert_int_eq(uv_loop_init(&p->loop), 0);
  uv_mutex_init(&p->lock);
  uv_cond_init(&p->applied);
  /* The listening socket is made in `netns`; the proxy's thread, started
   * after leaving it, connects upstream from this thread's own. */
  int home = pt_netns_enter(netns);
  uv_tcp_init(&p->loop, &p->listener);
  struct sockaddr_in a;
  uv_ip4_addr(ip, 0, &a);
  ck_assert_int_eq(uv_tcp_bind(&p->listener, (struct sockaddr *)&a, 0), 0);
  pt_netns_leave(home);
  int len = sizeof(a);
  uv_tcp_getsockname(&p->listener, (struct sockaddr *)&a, &len);
  p->port = ntohs(a.sin_port);
  p->listener.data = p;
  ck_assert_int_eq(uv_listen((uv_stream_t *)&p->listener, 64, on_connection),
                   0);
  uv_async_init(&p->loop, &p->command, on_command);
  p->command.data = p;
  uv_timer_init(&p->loop, &p->lifetime);
  p->lifetime.data = p;
  uv_timer_start(&p->lifetime, on_lifetime, PT_PROXY_LIFETIME_S * 1000, 0);
  uv_timer_init(&p->loop, &p->trickle);
  p->trickle.data = p;
  uv_timer_start(&p->trickle, on_trickle, 1, 1);
  snprintf(p->conninfo, sizeof(p->conninfo),
           "host=%s port=%d dbname=pqstest user=postgres sslmode=disable "
           "gssencmode=disable",
           ip, p->port);
  ck_assert_int_eq(uv_thread_create(&p->thread, proxy_main, p), 0);
  return p;
}

int pt_proxy_port(const pt_proxy_t *p) { return p->port; }
const char *pt_proxy_conninfo(const pt_proxy_t *p) { return p->conninfo; }

/* Hands the proxy's loop a command and waits until it has applied it. */
static void command(pt_proxy_t *p, pt_fault_t fault, int reset, int stop) {
  uv_mutex_lock(&p->lock);
  p->wanted = fault;
  p->reset_wanted |= reset;
  p->stop_wanted |= stop;
  int gen = ++p->generation;
  if (!p->stopped)
    uv_async_send(&p->command);
  while (p->done_generation < gen && !p->stopped)
    uv_cond_wait(&p->applied, &p->lock);
  uv_mutex_unlock(&p->lock);
}

void pt_proxy_set(pt_proxy_t *p, pt_fault_t fault) { command(p, fault, 0, 0); }

void pt_proxy_reset(pt_proxy_t *p) {
  uv_mutex_lock(&p->lock);
  pt_fault_t f = p->wanted;
  uv_mutex_unlock(&p->lock);
  command(p, f, 1, 0);
}

int pt_proxy_accepted(pt_proxy_t *p) {
  uv_mutex_lock(&p->lock);
  int n = p->accepted;
  uv_mutex_unlock(&p->lock);
  return n;
}

void pt_proxy_stop(pt_proxy_t *p) {
  command(p, PT_FORWARD, 0, 1);
  ck_assert_int_eq(uv_thread_join(&p->thread), 0);
  ck_assert_int_eq(uv_loop_close(&p->loop), 0);
  uv_cond_destroy(&p->applied);
  uv_mutex_destroy(&p->lock);
  free(p);
}
