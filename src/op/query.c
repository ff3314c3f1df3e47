/* A statement's rows: which kind reads them. The COPY source where it was
 * asked for and the statement can be a COPY's; the caller's own COPY as
 * its data; single-row mode otherwise, and for commands. */
#include <string.h>

#include "kind.h"
#include "sqltext.h"

int pqs__query_begin(pqs_ctx_t *ctx, const char *sql, int nparams,
                     const char *const *params, const pqs_query_opts_t *opts,
                     int rows, pqs__op_t **out) {
  pqs_source_t source = opts && opts->source ? opts->source : ctx->opts.source;
  int copy = rows && source == PQS_SOURCE_COPY && sql != NULL &&
             pqs__copy_qualifies(sql);
  char word[8];
  pqs__sql_first_word(sql ? sql : "", word, sizeof(word));
  const pqs__kind_t *kind = copy ? &pqs__kind_copy_out
                            : rows && strcmp(word, "copy") == 0
                                ? &pqs__kind_copy_to /* the caller's COPY */
                                : &pqs__kind_rows;
  return pqs__op_begin(ctx, kind, sql, nparams, params, opts, rows, out);
}

void pqs__op_set_typed(pqs__op_t *op, pqs__params_t *typed) {
  op->typed = typed;
  /* The COPY source binds text: typed values go by single-row mode. */
  if (op->kind != &pqs__kind_rows)
    pqs__op_become(op, &pqs__kind_rows, 0);
}
