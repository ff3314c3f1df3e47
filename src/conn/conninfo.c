/* The connection parameters pqstream adds to a user's conninfo. */
#include "conninfo.h"

#include <stddef.h>

/* Defaults first, the user's conninfo last: with expand_dbname, libpq
 * lets a later value win, so anything the conninfo names overrides them.
 * Keepalives find a peer that vanished even when no timeout is set. */
static const char *const keys[] = {
    "keepalives_idle", "keepalives_interval", "keepalives_count",
    "tcp_user_timeout", "dbname", NULL};
static const char *const defaults[] = {"15", "5", "3", "30000"};

void pqs__conninfo_params(const char *conninfo, const char *const **k,
                          const char **v) {
  for (int i = 0; i < 4; i++)
    v[i] = defaults[i];
  v[4] = conninfo;
  v[5] = NULL;
  *k = keys;
}
