/* The context's one poll handle over libpq's socket. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "ctx_int.h"

static void on_io(uv_poll_t *handle, int status, int events);

static void io_closed(uv_handle_t *handle) {
  pqs__io_t *io = handle->data;
  pqs_ctx_t *ctx = io->ctx;
  close(io->fd);
  pqs__free(io);
  ctx->handles--;
  pqs__ctx_maybe_free(ctx);
}

void pqs__io_detach(pqs_ctx_t *ctx) {
  pqs__io_t *io = ctx->io;
  if (io == NULL)
    return;
  ctx->io = NULL;
  uv_close((uv_handle_t *)&io->handle, io_closed);
}

static ino_t socket_identity(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? st.st_ino : 0;
}

/* Makes the poll handle watch libpq's current socket. libpq may replace the
 * socket between PQconnectPoll calls (multi-host, SSL or GSS retries), and
 * the new one may reuse the old descriptor number: the inode tells them
 * apart. Returns 0 or a negative error. */
int pqs__io_attach(pqs_ctx_t *ctx) {
  int sock = PQsocket(ctx->conn);
  if (sock < 0)
    return PQS_ECONNLOST;
  ino_t ino = socket_identity(sock);
  if (ctx->io != NULL && ctx->io->ino == ino)
    return 0;
  pqs__io_detach(ctx);

  pqs__io_t *io = pqs__calloc(1, sizeof(*io));
  if (io == NULL)
    return PQS_ENOMEM;
  io->fd = dup(sock);
  if (io->fd < 0) {
    pqs__free(io);
    return uv_translate_sys_error(errno);
  }
  io->ino = ino;
  io->ctx = ctx;
  int rc = uv_poll_init(ctx->loop, &io->handle, io->fd);
  if (rc != 0) {
    close(io->fd);
    pqs__free(io);
    return rc;
  }
  io->handle.data = io;
  ctx->handles++;
  ctx->io = io;
  return 0;
}

/* Sets the events watched; 0 stops watching. Level-triggered: a paused
 * stream must watch nothing, or the loop spins. */
void pqs__io_watch(pqs_ctx_t *ctx, int events) {
  pqs__io_t *io = ctx->io;
  if (io == NULL || io->events == events)
    return;
  io->events = events;
  if (events == 0)
    uv_poll_stop(&io->handle);
  else
    uv_poll_start(&io->handle, events, on_io);
}

static void on_io(uv_poll_t *handle, int status, int events) {
  pqs__io_t *io = handle->data;
  pqs_ctx_t *ctx = io->ctx;
  if (ctx->state == PQS__CTX_CONNECTING) {
    pqs__ctx_connect_step(ctx);
  } else if (ctx->op != NULL) {
    pqs__op_io(ctx, status, events);
  } else {
    /* Idle: nothing to read until the next operation. */
    pqs__io_watch(ctx, 0);
  }
}
