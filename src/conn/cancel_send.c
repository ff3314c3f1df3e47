/* A cancel request sent by pqstream itself, with a deadline.
 *
 * libpq 15's PQcancel has no timeout: against a peer that accepts and
 * never answers it waits forever, and so does the thread it runs on. The
 * request itself is small (the protocol's CancelRequest: four 32-bit
 * numbers on a connection of its own, then the server closes it), so this
 * file sends it on a non-blocking socket and gives up at a deadline.
 *
 * What it needs and libpq 15 does not publish is the backend's secret
 * key. It lives in the PGcancel that PQgetCancel makes, whose layout
 * (libpq-int.h, struct pg_cancel) has begun with the server's address,
 * the backend's pid and its key since libpq 9 and up to 16. The copy is
 * trusted only if it agrees with what the connection says in public: the
 * pid is PQbackendPID, the address is the socket's peer. Anything else
 * (another libpq, another layout) reads as "no key", and the caller falls
 * back on PQcancel. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctx_int.h"

/* The head of libpq's struct pg_cancel, as far as it is read; the address
 * is a struct of its own there (SockAddr), padded as one. */
typedef struct {
  struct {
    struct sockaddr_storage addr;
    socklen_t salen;
  } raddr;
  int be_pid;
  int be_key;
} pg_cancel_head_t;

#define CANCEL_REQUEST_CODE ((1234u << 16) | 5678u)

static int same_peer(const struct sockaddr_storage *a,
                     const struct sockaddr_storage *b) {
  if (a->ss_family != b->ss_family)
    return 0;
  switch (a->ss_family) {
  case AF_INET: {
    const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
  }
  case AF_UNIX: {
    const struct sockaddr_un *x = (const void *)a, *y = (const void *)b;
    return strncmp(x->sun_path, y->sun_path, sizeof(x->sun_path)) == 0;
  }
  default:
    return 0;
  }
}

int pqs__cancel_key_read(PGconn *conn, const PGcancel *handle,
                         pqs__cancel_key_t *key) {
  int version = PQlibVersion();
  if (handle == NULL || version < 90000 || version >= 170000)
    return -1;
  pg_cancel_head_t head;
  memcpy(&head, handle, sizeof(head));
  struct sockaddr_storage peer;
  socklen_t len = sizeof(peer);
  memset(&peer, 0, sizeof(peer));
  if (PQsocket(conn) < 0 ||
      getpeername(PQsocket(conn), (struct sockaddr *)&peer, &len) != 0)
    return -1;
  if (head.be_pid == 0 || head.be_pid != PQbackendPID(conn) ||
      head.raddr.salen == 0 || head.raddr.salen > sizeof(head.raddr.addr) ||
      !same_peer(&head.raddr.addr, &peer))
    return -1;
  key->addr = head.raddr.addr;
  key->salen = head.raddr.salen;
  key->pid = (uint32_t)head.be_pid;
  key->secret = (uint32_t)head.be_key;
  return 0;
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for `events` on fd until the deadline: 1 ready, 0 not. */
static int wait_for(int fd, short events, long long deadline) {
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0)
      return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int n = poll(&p, 1, (int)(left > 60000 ? 60000 : left));
    if (n > 0)
      return 1;
    if (n < 0 && errno != EINTR)
      return 0;
  }
}

static int connect_by(int fd, const pqs__cancel_key_t *key,
                      long long deadline) {
  if (connect(fd, (const struct sockaddr *)&key->addr, key->salen) == 0)
    return 0;
  if (errno != EINPROGRESS && errno != EINTR)
    return -1;
  int err = 0;
  socklen_t len = sizeof(err);
  if (!wait_for(fd, POLLOUT, deadline) ||
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
    return -1;
  return 0;
}

static int send_all(int fd, const char *p, size_t n, long long deadline) {
  while (n > 0) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k > 0) {
      p += k;
      n -= (size_t)k;
    } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
      return -1;
    } else if (!wait_for(fd, POLLOUT, deadline)) {
      return -1;
    }
  }
  return 0;
}

/* The server answers nothing: it closes the connection once it has read
 * the request, and waiting for that (as PQcancel does) makes the request
 * as good as delivered before the caller moves on. */
static int wait_closed(int fd, long long deadline) {
  char sink[64];
  for (;;) {
    ssize_t k = recv(fd, sink, sizeof(sink), 0);
    if (k == 0)
      return 0;
    if (k < 0 && errno != EAGAIN && errno != EINTR)
      return errno == ECONNRESET ? 0 : -1;
    if (k < 0 && !wait_for(fd, POLLIN, deadline))
      return -1;
  }
}

int pqs__cancel_send(const pqs__cancel_key_t *key, unsigned timeout_ms) {
  long long deadline = now_ms() + timeout_ms;
  int fd = socket(key->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                  0);
  if (fd < 0)
    return -1;
  uint32_t packet[4] = {htonl(16), htonl(CANCEL_REQUEST_CODE),
                        htonl(key->pid), htonl(key->secret)};
  int rc = connect_by(fd, key, deadline) == 0 &&
                   send_all(fd, (const char *)packet, sizeof(packet),
                            deadline) == 0 &&
                   wait_closed(fd, deadline) == 0
               ? 0
               : -1;
  close(fd);
  return rc;
}
