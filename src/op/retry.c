/* Retrying a transaction: its BEGIN, the errors that call for another
 * try, and the jittered pause before it. */
#include <string.h>
#include <uv.h>

#include "retry.h"

void pqs__begin_sql(pqs_isolation_t isolation, int read_only, char *out) {
  static const char *const levels[] = {"", " ISOLATION LEVEL READ COMMITTED",
                                       " ISOLATION LEVEL REPEATABLE READ",
                                       " ISOLATION LEVEL SERIALIZABLE"};
  out[0] = '\0';
  if (isolation == PQS_ISOLATION_DEFAULT && !read_only)
    return;
  strcpy(out, "BEGIN");
  strcat(out, levels[isolation]);
  if (read_only)
    strcat(out, " READ ONLY");
}

int pqs__is_conflict(const pqs_error_t *err) {
  const char *s = err ? err->sqlstate : NULL;
  return s && (strcmp(s, "40001") == 0 || strcmp(s, "40P01") == 0);
}

unsigned pqs__backoff_ms(unsigned base_ms, unsigned retry, uint64_t *rng) {
  unsigned base = base_ms ? base_ms : 10;
  for (unsigned i = 1; i < retry && base < 1000; i++)
    base *= 2;
  base = base > 1000 ? 1000 : base;
  uint64_t x = *rng; /* xorshift64: jitter, not secrets */
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  *rng = x;
  unsigned ms = base / 2 + (unsigned)(x % (base + 1));
  return ms > 1000 ? 1000 : ms;
}

uint64_t pqs__jitter_seed(const void *obj) {
  return (uv_hrtime() ^ (uint64_t)(uintptr_t)obj) | 1;
}
