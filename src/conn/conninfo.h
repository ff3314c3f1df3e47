/* The parameters pqstream connects with: the user's conninfo over
 * pqstream's defaults (TCP keepalives, see pqs_ctx_open in the header). */
#ifndef PQS_CONNINFO_H
#define PQS_CONNINFO_H

/* For PQconnectStartParams or PQconnectdbParams with expand_dbname = 1.
 * `vals` has room for PQS__CONNINFO_NPARAMS + 1 entries and borrows
 * `conninfo`; `*keys` is static. */
#define PQS__CONNINFO_NPARAMS 5
void pqs__conninfo_params(const char *conninfo, const char *const **keys,
                          const char **vals);

/* The connect deadline the conninfo asks for: its connect_timeout, else
 * PGCONNECT_TIMEOUT's, by libpq's rules (seconds; under 2 is 2), in
 * milliseconds; 0 when neither sets a positive number (libpq would then
 * wait forever: the caller uses its own default). */
unsigned pqs__conninfo_connect_timeout_ms(const char *conninfo);

/* A connection's deadline: the caller's `ms`, else the conninfo's (above),
 * else 10 s: never none. */
unsigned pqs__connect_deadline_ms(unsigned ms, const char *conninfo);

#endif
