#include "memsource.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../stream/stream_int.h"

typedef struct {
  uv_timer_t timer;
  const pt_table_t *t;
  pqs_stream_t *s;
  pqs__schema_t schema;
  pqs__cell_t *cells;
  int next;
  int paused;
  int stop_reason;
  int stopping;
  uint64_t pushed;
  char tag[32];
} memsrc_t;

static int stops;
int pt_mem_stops(void) { return stops; }

static void closed(uv_handle_t *h) {
  memsrc_t *m = h->data;
  free(m->cells);
  free(m);
}

static void finish(memsrc_t *m, int status) {
  snprintf(m->tag, sizeof(m->tag), "SELECT %d", m->next);
  pqs_done_t done = {.status = status,
                     .rows = m->pushed,
                     .command_tag =
                         status == 0 && !m->stopping ? m->tag : NULL};
  pqs__stream_consumer.end(m->s, &done);
  uv_close((uv_handle_t *)&m->timer, closed);
}

static void push(uv_timer_t *timer) {
  memsrc_t *m = timer->data;
  if (m->stopping) {
    finish(m, m->stop_reason == PQS__DONE ? 0 : m->stop_reason);
    return;
  }
  if (m->next == 0 && m->t->nrows == 0) {
    pqs_row_t cols = {.schema = &m->schema};
    pqs__stream_consumer.columns(m->s, &cols);
  }
  while (!m->paused && !m->stopping && m->next < m->t->nrows) {
    if (m->next == 0) {
      pqs_row_t cols = {.schema = &m->schema};
      pqs__stream_consumer.columns(m->s, &cols);
    }
    const char *const *v = m->t->values + m->next * m->t->ncols;
    for (int i = 0; i < m->t->ncols; i++)
      m->cells[i] = (pqs__cell_t){v[i], v[i] ? (int)strlen(v[i]) : -1};
    pqs_row_t row = {.schema = &m->schema, .cells = m->cells};
    m->next++;
    m->pushed++;
    int rc = pqs__stream_consumer.row(m->s, &row);
    if (rc == PQS_PAUSE) {
      m->paused = 1;
    } else if (rc != PQS_CONTINUE) {
      m->stopping = 1;
      m->stop_reason = rc == PQS_STOP ? PQS_ECANCELED : rc;
      stops++;
    }
  }
  if (m->stopping)
    finish(m, m->stop_reason == PQS__DONE ? 0 : m->stop_reason);
  else if (m->next == m->t->nrows && !m->paused)
    finish(m, 0);
}

static void m_start(void *src) {
  memsrc_t *m = src;
  uv_timer_start(&m->timer, push, 0, 0);
}

static void m_pause(void *src) { ((memsrc_t *)src)->paused = 1; }

static void m_resume(void *src) {
  memsrc_t *m = src;
  m->paused = 0;
  uv_timer_start(&m->timer, push, 0, 0);
}

static void m_stop(void *src, int reason) {
  memsrc_t *m = src;
  if (m->stopping)
    return;
  m->stopping = 1;
  m->stop_reason = reason;
  stops++;
  uv_timer_start(&m->timer, push, 0, 0);
}

static void m_discard(void *src) {
  memsrc_t *m = src;
  uv_close((uv_handle_t *)&m->timer, closed);
}

static const pqs__source_vt_t mem_source = {
    .start = m_start,
    .pause = m_pause,
    .resume = m_resume,
    .stop = m_stop,
    .discard = m_discard,
};

pqs_stream_t *pt_mem_stream(uv_loop_t *loop, const pt_table_t *t) {
  memsrc_t *m = calloc(1, sizeof(*m));
  ck_assert_ptr_nonnull(m);
  m->t = t;
  m->schema = (pqs__schema_t){.ncols = t->ncols, .names = t->names,
                              .types = t->types,
                              .text = PQS__TEXT_SETTINGS_DEFAULT,
                              .nfields = t->ncols};
  m->cells = calloc(t->ncols ? t->ncols : 1, sizeof(*m->cells));
  uv_timer_init(loop, &m->timer);
  m->timer.data = m;
  m->s = pqs__stream_new(NULL, &mem_source, m);
  ck_assert_ptr_nonnull(m->s);
  return m->s;
}
