/* What the tool watches besides its work: SIGINT and SIGTERM, and the
 * progress line on stderr. The first signal asks the work to stop (a
 * cancel, a rollback) and gives it CLI_SIGNAL_DEADLINE_MS to end
 * cleanly; a second signal, or the deadline, leaves at once with the
 * signal's status: output a reader does not take must not keep us. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

int cli_signal_code(int signum) {
  return signum == SIGINT ? CLI_SIGINT : CLI_SIGTERM;
}

static void on_deadline(uv_timer_t *t) {
  cli_watch_t *w = t->data;
  _exit(cli_signal_code(w->signal));
}

static void on_signal(uv_signal_t *h, int signum) {
  cli_watch_t *w = h->data;
  if (w->signal)
    _exit(cli_signal_code(signum));
  w->signal = signum;
  w->stop(w->data, signum);
  /* Never what keeps the loop: a clean end comes first when it can. */
  uv_timer_start(&w->deadline, on_deadline, CLI_SIGNAL_DEADLINE_MS, 0);
  uv_unref((uv_handle_t *)&w->deadline);
}

static void on_progress(uv_timer_t *t) {
  cli_watch_t *w = t->data;
  char line[160];
  w->line(w->data, (uv_hrtime() - w->t0) / 1e9, line, sizeof(line));
  fprintf(stderr, "\r%s\033[K", line);
  w->shown = 1;
}

int cli_watch_start(cli_watch_t *w, uv_loop_t *loop, int progress,
                    cli_stop_fn stop, cli_line_fn line, void *data) {
  int rc;
  *w = (cli_watch_t){.stop = stop, .line = line, .data = data,
                     .t0 = uv_hrtime()};
  if ((rc = uv_signal_init(loop, &w->sigint)) != 0)
    return rc;
  if ((rc = uv_signal_init(loop, &w->sigterm)) != 0) {
    uv_close((uv_handle_t *)&w->sigint, NULL);
    return rc;
  }
  uv_timer_init(loop, &w->progress); /* timers cannot fail */
  uv_timer_init(loop, &w->deadline);
  w->sigint.data = w->sigterm.data = w->progress.data = w->deadline.data = w;
  w->started = 1;
  if ((rc = uv_signal_start(&w->sigint, on_signal, SIGINT)) != 0 ||
      (rc = uv_signal_start(&w->sigterm, on_signal, SIGTERM)) != 0) {
    cli_watch_close(w);
    return rc;
  }
  if (progress)
    uv_timer_start(&w->progress, on_progress, 250, 250);
  return 0;
}

void cli_watch_close(cli_watch_t *w) {
  if (!w->started)
    return;
  w->started = 0;
  if (w->shown)
    fputs("\r\033[K", stderr); /* the progress line goes */
  uv_close((uv_handle_t *)&w->sigint, NULL);
  uv_close((uv_handle_t *)&w->sigterm, NULL);
  uv_close((uv_handle_t *)&w->progress, NULL);
  uv_close((uv_handle_t *)&w->deadline, NULL);
}

int cli_connect_failed(cli_opts_t *o, int status, const pqs_error_t *err) {
  const char *why = err ? err->message : pqs_strerror(status);
  /* As psql: a server that asks for a password gets a prompt, not an
   * error, when there is a terminal to ask on. */
  if (o->may_prompt && o->password == NULL &&
      strstr(why, "no password supplied") != NULL)
    o->wants_password = 1;
  else
    cli_say("could not connect: %s", why);
  return CLI_CONNECT; /* a timeout too, as psql */
}
