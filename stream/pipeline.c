/* A pipeline's queries as streams: each query added is a stream whose
 * source is its member of the pipeline (src/op/pipeline.c). */
#include "../src/core.h"
#include "stream_int.h"

static int add(pqs_pipeline_t *pl, pqs_stream_t **out, const char *sql,
               int nparams, const char *const *params, pqs__params_t *typed) {
  if (out == NULL)
    return PQS_EINVAL;
  pqs__member_t *m;
  int rc = pqs__pipeline_add(pl, sql, nparams, params, &m);
  if (rc != 0)
    return rc;
  /* The member stays in the pipeline, left out as closed, if this fails. */
  pqs_stream_t *s = pqs__stream_new(pqs__pipeline_ctx(pl), &pqs__member_source, m);
  if (s == NULL) {
    pqs__member_source.discard(m);
    return PQS_ENOMEM;
  }
  pqs__member_bind(m, &pqs__stream_consumer, s, typed);
  *out = s;
  return 0;
}

int pqs_pipeline_query(pqs_pipeline_t *pl, pqs_stream_t **out,
                       const char *sql, int nparams,
                       const char *const *params) {
  return add(pl, out, sql, nparams, params, NULL);
}

int pqs_pipeline_query_typed(pqs_pipeline_t *pl, pqs_stream_t **out,
                             const char *sql, int nparams,
                             const pqs_param_t *params) {
  pqs__params_t *typed = NULL;
  int rc = pqs__params_typed(nparams, params, &typed);
  if (rc == 0 && (rc = add(pl, out, sql, 0, NULL, typed)) != 0)
    pqs__free(typed);
  return rc;
}
