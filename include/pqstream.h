/* pqstream: stream PostgreSQL query results asynchronously on a libuv loop.
 *
 * This header is the manual. Every public name is declared here, and every
 * function says what it does, the errors it returns, what the caller owns and
 * what is only borrowed (and for how long).
 *
 * The contract in a few lines:
 *  - A context (pqs_ctx_t) owns one connection and runs one operation at a
 *    time. Starting a second one while the first has not completed fails with
 *    PQS_EBUSY, whatever the timing.
 *  - A context belongs to the thread of the loop it was opened on. Calls from
 *    any other thread fail with PQS_ETHREAD.
 *  - A function that fails returns a negative error and never calls its
 *    callback. One that succeeds calls its callback exactly once, and never
 *    from inside itself.
 *  - Every started stream ends with exactly one on_done.
 *  - Rows are borrowed: valid during the callback that received them only.
 *    pqs_row_dup() keeps one.
 *  - Every operation ends in bounded time, whatever the network does: a
 *    connect within connect_timeout_ms; a query within its timeout plus
 *    cancel_grace_ms; a stopped stream within cancel_grace_ms; a context
 *    closes at once, or within cancel_grace_ms while a cancel of its query
 *    is on its way (the close callback comes when nothing of it is left).
 *    Where an operation could not be ended cleanly, the connection is given
 *    up and the context reports broken. A query with no timeout runs as
 *    long as the server runs it; a peer that vanished is found by TCP
 *    keepalives (on by default, see pqs_ctx_open).
 *  - Running out of memory is an error like any other (PQS_ENOMEM); a
 *    partial result is never reported as success.
 *
 * What may be called from inside a callback:
 *
 *   callback     stream pause/resume/close  pqs_query/exec  pqs_ctx_close
 *   on_open      -                          yes             yes
 *   on_columns   yes (own stream)           no: PQS_EBUSY   yes
 *   on_row       yes (own stream)           no: PQS_EBUSY   yes
 *   on_done      no: stream is ending       yes             yes
 *   exec cb      -                          yes             yes
 */
#ifndef PQSTREAM_H
#define PQSTREAM_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(PQS_BUILDING) && defined(__GNUC__)
#define PQS_EXTERN __attribute__((visibility("default")))
#else
#define PQS_EXTERN /* nothing */
#endif

#define PQS_VERSION_MAJOR 0
#define PQS_VERSION_MINOR 1
#define PQS_VERSION_PATCH 0
#define PQS_VERSION_STRING "0.1.0"

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */
/* ------------------------------------------------------------------------ */

/* Error codes are negative ints in a range of their own (-30000 and below),
 * so they never collide with libuv's negated errno values, which pqstream
 * passes through unchanged where libuv itself fails. */
#define PQS_ERRNO_MAP(XX)                                                      \
  XX(EBUSY, -30001,                                                            \
     "a second operation was started on this context before the previous "     \
     "one completed; open one context per concurrent operation "               \
     "(see pqs_factory)")                                                      \
  XX(ETHREAD, -30002, "context used from a thread other than its loop's")      \
  XX(ESAMECTX, -30003,                                                         \
     "each parallel stream needs its own context: open one per stream")        \
  XX(ECANCELED, -30004, "operation cancelled")                                 \
  XX(ETIMEDOUT, -30005, "operation timed out")                                 \
  XX(ECONNLOST, -30006, "connection to the server lost")                       \
  XX(ESQL, -30007, "the server reported an error")                             \
  XX(ETYPE, -30008, "column is not of the requested type")                     \
  XX(ERANGE, -30009, "value out of range for the requested type")              \
  XX(EINVAL, -30010, "invalid argument")                                       \
  XX(ENOMEM, -30011, "out of memory")                                          \
  XX(ECONNECT, -30012, "could not connect to the server")                      \
  XX(ENULL, -30013, "column is SQL NULL")                                      \
  XX(ESTATE, -30014, "object is not in a state that allows this call")         \
  XX(EBROKEN, -30015, "context is broken: its connection was lost; close it")  \
  XX(ESCHEMA, -30016, "streams have different columns")                        \
  XX(ELIMIT, -30017, "a configured limit on rows or bytes was reached")        \
  XX(EORDER, -30018, "an input of an ordered merge is not in order")         \
  XX(EFORMAT, -30019,                                                          \
     "the value's text is not in the form the getter reads (a DateStyle "     \
     "other than ISO, an IntervalStyle other than postgres or iso_8601)")   \
  XX(EABORTED, -30020,                                                         \
     "not run, or undone: another query of the same all-or-nothing "           \
     "pipeline failed")

typedef enum {
#define PQS__ERR_ENUM(name, val, msg) PQS_##name = (val),
  PQS_ERRNO_MAP(PQS__ERR_ENUM)
#undef PQS__ERR_ENUM
      PQS_OK = 0
} pqs_errno_t;

/* The library's version at run time: (major << 16) | (minor << 8) | patch,
 * and "major.minor.patch" (static), as uv_version() does for libuv. */
PQS_EXTERN unsigned pqs_version(void);
PQS_EXTERN const char *pqs_version_string(void);

/* A static English message for `err` (a PQS_ code, a libuv code, or 0).
 * Never NULL; unknown codes give "unknown error". */
PQS_EXTERN const char *pqs_strerror(int err);

/* The code's name without prefix ("EBUSY"), or "UNKNOWN". Never NULL. */
PQS_EXTERN const char *pqs_err_name(int err);

/* An error reported by the server or by libpq. All strings are borrowed from
 * the object that reported it (the pqs_done_t, or the context for open
 * errors) and live as long as the callback that received it. Fields the
 * server did not send are NULL, except `message`, which is never NULL. */
typedef struct pqs_error_s {
  const char *severity; /* "ERROR", "FATAL", ... */
  const char *sqlstate; /* five characters, e.g. "22012" */
  const char *message;  /* primary message, never NULL */
  const char *detail;
  const char *hint;
  /* Where in the query the error is: a 1-based character index into the
   * query text, 0 if the server did not say. */
  int position;
  const char *context; /* the call stack: "PL/pgSQL function f() line 3" */
  /* The object the error concerns, when the server names it. */
  const char *schema, *table, *column, *constraint;
  /* The whole error as libpq renders it, which is what psql prints:
   * "ERROR:  message", then "LINE n: ..." with a caret under the position,
   * DETAIL, HINT and CONTEXT lines, each ending in a newline. NULL for an
   * error that did not come from a server result. */
  const char *text;
} pqs_error_t;

/* ------------------------------------------------------------------------ */
/* Rows                                                                     */
/* ------------------------------------------------------------------------ */

typedef struct pqs_row_s pqs_row_t;

/* Type OIDs of the types pqstream reads itself (PostgreSQL's pg_type.dat;
 * stable across server versions), as pqs_row_type() returns them. */
enum {
  PQS_OID_BOOL = 16,
  PQS_OID_BYTEA = 17,
  PQS_OID_INT8 = 20,
  PQS_OID_INT2 = 21,
  PQS_OID_INT4 = 23,
  PQS_OID_TEXT = 25,
  PQS_OID_JSON = 114,
  PQS_OID_FLOAT4 = 700,
  PQS_OID_FLOAT8 = 701,
  PQS_OID_DATE = 1082,
  PQS_OID_TIMESTAMP = 1114,
  PQS_OID_TIMESTAMPTZ = 1184,
  PQS_OID_NUMERIC = 1700,
  PQS_OID_JSONB = 3802,
  PQS_OID_OID = 26,
  PQS_OID_VARCHAR = 1043,
  PQS_OID_TIME = 1083,
  PQS_OID_INTERVAL = 1186,
  PQS_OID_UUID = 2950,
  PQS_OID_NAME = 19,
  PQS_OID_BPCHAR = 1042,
  /* One-dimensional arrays of these, read with pqs_row_array(). */
  PQS_OID_BOOL_ARRAY = 1000,
  PQS_OID_BYTEA_ARRAY = 1001,
  PQS_OID_INT2_ARRAY = 1005,
  PQS_OID_INT4_ARRAY = 1007,
  PQS_OID_TEXT_ARRAY = 1009,
  PQS_OID_BPCHAR_ARRAY = 1014,
  PQS_OID_VARCHAR_ARRAY = 1015,
  PQS_OID_INT8_ARRAY = 1016,
  PQS_OID_FLOAT4_ARRAY = 1021,
  PQS_OID_FLOAT8_ARRAY = 1022,
  PQS_OID_OID_ARRAY = 1028,
  PQS_OID_TIMESTAMP_ARRAY = 1115,
  PQS_OID_DATE_ARRAY = 1182,
  PQS_OID_TIME_ARRAY = 1183,
  PQS_OID_TIMESTAMPTZ_ARRAY = 1185,
  PQS_OID_INTERVAL_ARRAY = 1187,
  PQS_OID_NUMERIC_ARRAY = 1231,
  PQS_OID_UUID_ARRAY = 2951,
  PQS_OID_JSON_ARRAY = 199,
  PQS_OID_JSONB_ARRAY = 3807
};

/* How a result's values travel (pqs_query_opts_t, pqs_ctx_opts_t).
 * In binary the server skips its output functions (float8out above all),
 * and the typed getters decode the bytes without parsing text: the
 * cheapest way to numbers. The rows read the same through every getter;
 * only pqs_row_text differs (see there). */
typedef enum {
  PQS_RESULT_DEFAULT = 0, /* the context's (or factory's) default */
  PQS_RESULT_TEXT = 1,
  PQS_RESULT_BINARY = 2
} pqs_result_format_t;

/* 1 if `row` holds its values in binary (PQS_RESULT_BINARY), 0 if text. */
PQS_EXTERN int pqs_row_is_binary(const pqs_row_t *row);

/* Number of columns of `row`. */
PQS_EXTERN int pqs_row_ncols(const pqs_row_t *row);

/* Name of column `col`, borrowed for as long as the row. NULL if `col` is out
 * of range. */
PQS_EXTERN const char *pqs_row_name(const pqs_row_t *row, int col);

/* PostgreSQL type OID of column `col` (PQS_OID_INT4 ...), 0 if out of
 * range. */
PQS_EXTERN uint32_t pqs_row_type(const pqs_row_t *row, int col);

/* The number of the column called `name`, or -1 if there is none, with
 * libpq's PQfnumber rules: an unquoted name is folded to lower case, a
 * double-quoted one ("MyCol", with "" for a quote) is taken as it is. */
PQS_EXTERN int pqs_row_col(const pqs_row_t *row, const char *name);

/* 1 if column `col` is SQL NULL, 0 if not, PQS_EINVAL if out of range. */
PQS_EXTERN int pqs_row_is_null(const pqs_row_t *row, int col);

/* Text of column `col` (PostgreSQL's text output format), NUL-terminated.
 * If `len` is not NULL it receives the length in bytes without the NUL.
 * Borrowed: valid as long as the row. NULL for SQL NULL (len set to 0), for
 * a column out of range, and for a binary value that has no exact text
 * (pqs_row_get_text tells these apart).
 * A binary row gives the very bytes the server's text output would, for
 * the types whose text is exact and follows no setting but those the
 * context learns: int2, int4, int8, oid, bool, uuid, bytea (hex or
 * escape, as the session's bytea_output), numeric, float4 and float8 (as
 * float4out and float8out print them at the session's
 * extra_float_digits), text, varchar, bpchar, name, json and jsonb. The
 * context learns those two settings with one query before its first
 * binary result, and again after a SET, RESET or DISCARD, or the end of
 * a transaction block they were learned in (a set_config() call in a
 * query is not seen). The others (dates and times follow DateStyle and TimeZone,
 * intervals IntervalStyle; arrays) have none: NULL, never wrong bytes.
 * The text is made on first use and kept with the row. */
PQS_EXTERN const char *pqs_row_text(const pqs_row_t *row, int col, size_t *len);

/* pqs_row_text with its errors: 0 and *text set (NUL-terminated; *len if
 * `len` is not NULL), or PQS_EINVAL (col out of range, text NULL),
 * PQS_ENULL (SQL NULL), PQS_ETYPE (a binary value of a type without exact
 * text, see pqs_row_text), PQS_ENOMEM. */
PQS_EXTERN int pqs_row_get_text(const pqs_row_t *row, int col,
                                const char **text, size_t *len);

/* Typed getters. Each stores the value in *out and returns 0, or returns:
 *   PQS_EINVAL  `col` out of range or `out` NULL;
 *   PQS_ENULL   the value is SQL NULL (*out untouched);
 *   PQS_ETYPE   the column's type is not one the getter reads;
 *   PQS_ERANGE  the value does not fit in *out;
 *   PQS_EFORMAT bytes that are not the type's format (not from a server).
 * Every getter reads text and binary rows alike, to the same value (a
 * float4 as the float it is, both ways).
 * Types read: the integer getters from int2, int4, int8 and oid (PQS_ERANGE
 * if the value does not fit the getter's width); double from float4, float8,
 * int2, int4, and int8 within +-2^53 (where it is exact; PQS_ERANGE
 * beyond); bool from bool. NaN and infinities are read as such. */
PQS_EXTERN int pqs_row_int16(const pqs_row_t *row, int col, int16_t *out);
PQS_EXTERN int pqs_row_int32(const pqs_row_t *row, int col, int32_t *out);
PQS_EXTERN int pqs_row_int64(const pqs_row_t *row, int col, int64_t *out);
PQS_EXTERN int pqs_row_double(const pqs_row_t *row, int col, double *out);
PQS_EXTERN int pqs_row_bool(const pqs_row_t *row, int col, int *out);

/* Bytes of a bytea column (decoded from the server's hex or escape format,
 * whatever bytea_output says; binary rows carry the bytes) into `buf`
 * of `cap` bytes; *len receives the decoded length. Pass buf NULL (or a cap
 * too small) to learn the length: the call then returns PQS_ERANGE with
 * *len set. Errors as for the typed getters; PQS_ETYPE unless bytea. */
PQS_EXTERN int pqs_row_bytea(const pqs_row_t *row, int col, void *buf,
                             size_t cap, size_t *len);

/* numeric (and the integer types) as the exact decimal text the server
 * wrote, borrowed as pqs_row_text's: "-12345678901234567890.000001",
 * "NaN", "Infinity", "-Infinity". For programs with a decimal type of
 * their own. Errors as for the typed getters. */
PQS_EXTERN int pqs_row_decimal(const pqs_row_t *row, int col,
                               const char **text, size_t *len);

/* numeric (also float4, float8 and the integers) as the nearest double,
 * rounded as strtod rounds (so as the server's numeric::float8), NaN and
 * the infinities included. PQS_ERANGE where the server's cast fails too:
 * a finite value beyond a double, or a non-zero one that would become 0
 * (a subnormal is kept). */
PQS_EXTERN int pqs_row_numeric_double(const pqs_row_t *row, int col,
                                      double *out);

/* numeric (and the integer types) as an int64 when the value is integral
 * ("42.000" is 42) and fits; PQS_ERANGE otherwise (a fraction, NaN, the
 * infinities, beyond int64). */
PQS_EXTERN int pqs_row_numeric_int64(const pqs_row_t *row, int col,
                                     int64_t *out);

/* date, timestamp and timestamptz as microseconds since
 * 1970-01-01 00:00:00 UTC: a timestamptz at its instant (the offset the
 * server wrote is applied), a timestamp as if it were UTC, a date at its
 * midnight. BC dates are proleptic Gregorian (1 BC is year 0), as the
 * server counts them; 'infinity' is INT64_MAX and '-infinity' INT64_MIN.
 * The getter reads the server's ISO output (DateStyle ISO, the default,
 * in either day order); other DateStyles give PQS_EFORMAT, never a guess.
 * Errors as for the typed getters, and PQS_EFORMAT. */
PQS_EXTERN int pqs_row_timestamp_us(const pqs_row_t *row, int col,
                                    int64_t *out);

/* time (without time zone) as microseconds since midnight, 0 to
 * 86400000000 (24:00:00 is allowed, as by the server). */
PQS_EXTERN int pqs_row_time_us(const pqs_row_t *row, int col, int64_t *out);

/* A uuid's 16 bytes, in the order the server stores and sends them. */
PQS_EXTERN int pqs_row_uuid(const pqs_row_t *row, int col, uint8_t out[16]);

/* An interval as PostgreSQL keeps it: months, days and microseconds, each
 * with its own sign ('1 mon -2 days 03:00' is 1, -2, 10800000000). Reads
 * IntervalStyle postgres (the default) and iso_8601; the others give
 * PQS_EFORMAT. */
typedef struct pqs_interval_s {
  int32_t months;
  int32_t days;
  int64_t usec;
} pqs_interval_t;
PQS_EXTERN int pqs_row_interval(const pqs_row_t *row, int col,
                                pqs_interval_t *out);

/* A one-dimensional array value (an element iterator), filled by
 * pqs_row_array(). The public fields may be read; the rest is private and
 * points into itself: use it where pqs_row_array filled it, never a copy
 * of the struct. */
typedef struct pqs_array_s {
  uint32_t elem_type; /* the elements' type OID (PQS_OID_INT4 ...) */
  int lower;          /* the index of the first element: 1 unless said */
  int len;            /* the number of elements; 0 for '{}' */
  uint64_t private_[40];
} pqs_array_t;

/* Column `col`, an array of one of the types the getters read (the
 * PQS_OID_*_ARRAY types), as an iterator over its elements, in text and
 * binary rows alike. `*out` borrows from the row: use it while the row
 * lives. Errors as for the typed getters; PQS_EFORMAT for an array of more
 * than one dimension, or a malformed one. */
PQS_EXTERN int pqs_row_array(const pqs_row_t *row, int col, pqs_array_t *out);

/* The next element of `a` as a row of one column (named as the array's
 * column, of type a->elem_type), read with the getters at column 0 (an
 * SQL NULL element is NULL there). 1 and *elem set, 0 at the end, or
 * PQS_EFORMAT (a malformed array), PQS_ENOMEM. *elem is valid until the
 * next call; the texts read from it live as long as the array's row. */
PQS_EXTERN int pqs_array_next(pqs_array_t *a, const pqs_row_t **elem);

/* An owned copy of `row` in one allocation (names and types included), which
 * outlives the stream. NULL if out of memory. Free with pqs_row_free(). */
PQS_EXTERN pqs_row_t *pqs_row_dup(const pqs_row_t *row);

/* Frees a row from pqs_row_dup(). NULL is allowed. Never pass a borrowed
 * row. */
PQS_EXTERN void pqs_row_free(pqs_row_t *row);

/* ------------------------------------------------------------------------ */
/* Completion                                                               */
/* ------------------------------------------------------------------------ */

/* How an operation ended. Borrowed: valid during the callback only.
 *   status 0           success; command_tag set ("SELECT 1000", "INSERT 0 3")
 *   PQS_ESQL           the server raised an error: `error` set
 *   PQS_ECONNLOST      connection lost; `error` set; the context is broken
 *   PQS_ECANCELED      stopped by the consumer (PQS_STOP, pqs_stream_close)
 *   PQS_ETIMEDOUT      the query's timeout passed; the query was cancelled
 *   other negative     a user callback's own error, returned from on_row
 * `rows` counts the rows delivered to the consumer, in every case. */
typedef struct pqs_done_s {
  int status;
  uint64_t rows;
  uint64_t affected;        /* rows affected by a command (PQcmdTuples) */
  const char *command_tag;  /* NULL unless status is 0 */
  const pqs_error_t *error; /* NULL unless the server or libpq said why */
} pqs_done_t;

/* ------------------------------------------------------------------------ */
/* Contexts                                                                 */
/* ------------------------------------------------------------------------ */

typedef struct pqs_ctx_s pqs_ctx_t;

/* Called once when the connection is up (status 0) or failed (status
 * PQS_ECONNECT, PQS_ETIMEDOUT, PQS_ENOMEM, or PQS_ECANCELED if closed
 * first). On failure
 * `error` says why in libpq's words, with any password removed; the context
 * must still be closed with pqs_ctx_close(). */
typedef void (*pqs_open_cb)(pqs_ctx_t *ctx, int status,
                            const pqs_error_t *error, void *data);

/* Called once when a closed context's memory is about to be released. */
typedef void (*pqs_close_cb)(pqs_ctx_t *ctx, void *data);

/* A notice or warning from the server (RAISE NOTICE ...): `notice` is
 * borrowed for the call. Runs on the loop, from inside pqstream's reading
 * of the socket: it may not start or close anything. */
typedef void (*pqs_notice_cb)(pqs_ctx_t *ctx, const pqs_error_t *notice,
                              void *data);

/* Where a query's rows come from (pqs_query_opts_t.source, and the
 * context's default in pqs_ctx_opts_t.source).
 *
 * PQS_SOURCE_SINGLE_ROW: libpq's single-row mode, one result per row. Any
 *   statement; the completion's command_tag is the server's ("SELECT 3").
 * PQS_SOURCE_COPY: the statement runs as COPY (statement) TO STDOUT and
 *   its lines are split and unescaped in place: the same rows (text
 *   values, names and types from a Describe sent first), at about half
 *   the client CPU per row, because libpq builds no result per row.
 *   It applies to a statement that begins with SELECT, VALUES, TABLE,
 *   WITH, INSERT, UPDATE or DELETE (the last three with RETURNING) and
 *   that returns columns; any other statement (SHOW, EXPLAIN, an UPDATE
 *   without RETURNING, SELECT ... INTO) falls back to single-row mode by
 *   itself, so a query never fails for asking. Parameters are bound into
 *   the COPY's text as literals escaped by libpq (PQescapeLiteral), cast
 *   to the type the server inferred for each $n; $n is found only
 *   outside literals, quoted identifiers, comments and dollar quotes (the
 *   scanner of pqs_sql_statement). A value libpq will not escape for the
 *   connection's encoding sends the statement to single-row mode too, so
 *   that the server judges it as it always does (SQLSTATE 22021).
 *   What differs, all documented here: it costs two more round trips
 *   before the first row (the statement is prepared, as the unnamed
 *   statement, and described); command_tag is "COPY n" (n rows) and
 *   affected is n; an error in a bound value carries no position (as in
 *   single-row mode, where it is a bind error). Stages, pause,
 *   take, cancel, timeouts, merges and sinks work as over single-row
 *   mode. A TSV sink (or a CSV one, then through COPY's own csv format)
 *   fed by a COPY stream writes the server's bytes through untouched when
 *   no stage changes rows (filter, tap, take and skip do not).
 * PQS_SOURCE_DEFAULT: the context's default; for a context, SINGLE_ROW. */
typedef enum {
  PQS_SOURCE_DEFAULT = 0,
  PQS_SOURCE_SINGLE_ROW = 1,
  PQS_SOURCE_COPY = 2
} pqs_source_t;

typedef struct pqs_ctx_opts_s {
  /* Milliseconds allowed for the whole connection, timed by the loop (libpq
   * ignores connect_timeout when driven asynchronously). 0: the
   * conninfo's connect_timeout, else PGCONNECT_TIMEOUT's, by libpq's
   * rules (seconds, under 2 is 2); 10000 when neither sets a positive
   * number (libpq would wait forever). */
  unsigned connect_timeout_ms;
  /* Default timeout of each query and command in milliseconds; 0: none. */
  unsigned query_timeout_ms;
  /* Server notices; NULL: libpq's default, which prints them on stderr. */
  pqs_notice_cb on_notice;
  void *notice_data;
  /* Milliseconds a stopped operation (timeout, pqs_stream_close, PQS_STOP,
   * an error from a callback) may take to end on the server once it has
   * been cancelled. Past it the connection is given up: closed, the
   * context broken, and on_done comes with the reason it was stopped.
   * A query timeout therefore ends within timeout + grace, whatever the
   * network does. The grace also covers dropping the rows already on
   * their way (the sockets' buffers: a few MB of a big result, read in a
   * fraction of a second by an optimised build; seconds under a sanitizer
   * or on a loop busy with other work, where a larger grace keeps the
   * connection). 0: 5000. */
  unsigned cancel_grace_ms;
  /* Where pqs_query reads rows from unless a query says (pqs_source_t);
   * 0: PQS_SOURCE_SINGLE_ROW. */
  pqs_source_t source;
  /* How query results travel unless a query says; 0: PQS_RESULT_TEXT. */
  pqs_result_format_t result_format;
  /* Automatic prepared statements. A statement with parameters
   * (pqs_query or pqs_query_typed read in single-row mode, pqs_exec and
   * pqs_exec_typed, a batch's statements) is prepared on the server as a
   * named statement from
   * its prepare_threshold-th run on, and later runs skip parsing and
   * planning (one more round trip, once). The context keeps at most
   * statement_cache_size of them (0: 100), the least recently used
   * closed (DEALLOCATE) to make room. A statement whose result type
   * changed since it was prepared (an ALTER TABLE: SQLSTATE 0A000 from
   * RevalidateCachedQuery) is prepared again and run again, once, when
   * no row was delivered yet; after a row it is the stream's error (a
   * batch, rolled back, runs again once: pqs_batch_done_t.attempts
   * counts it). A
   * session's DISCARD ALL or DEALLOCATE ALL (a pooled context's reset)
   * empties the cache. Leave it off behind a pooler in transaction mode
   * (PgBouncer), where a session's statements do not follow it. The
   * COPY source, JSON Lines consumers and pipelines use the unnamed
   * statement. A DEALLOCATE that fails (the session in a failed
   * transaction block) is sent again with a later statement's run (up to
   * 8 such wait; past that, the oldest stays until the session ends or is
   * reset). prepare_threshold 0: 5 runs;
   * PQS_PREPARE_NEVER: off. */
  unsigned prepare_threshold;
  unsigned statement_cache_size;
} pqs_ctx_opts_t;

/* pqs_ctx_opts_t.prepare_threshold: no automatic prepared statements. */
#define PQS_PREPARE_NEVER 0xffffffffu

/* Starts connecting to `conninfo` (a libpq connection string or URI) on
 * `loop`, without blocking. On success *out is the new context and `cb`
 * runs later, on the loop. `opts` may be NULL and is copied; `conninfo` is
 * copied by libpq. A malformed conninfo is reported through `cb`.
 * Unless the conninfo says otherwise, TCP connections get keepalives
 * (keepalives_idle=15, keepalives_interval=5, keepalives_count=3) and
 * tcp_user_timeout=30000, so that a peer that vanished is found within
 * about 30 s even by an operation that has no timeout. Name these keys in
 * the conninfo to change them (keepalives=0 turns keepalives off).
 * Host names (host=, PGHOST; lists too) are resolved on libuv's thread
 * pool, never on the loop, and given to libpq as hostaddr= with host= kept
 * for TLS verification and .pgpass; a name with several addresses is tried
 * address by address. The wait counts against connect_timeout_ms. A
 * hostaddr= of the user's own is used as it is.
 * Cancel requests run on short-lived threads of pqstream's own, never on
 * the loop or libuv's thread pool, and give up at cancel_grace_ms (libpq
 * 15's PQcancel has no timeout; pqstream sends the request itself): a
 * cancel's thread and socket are gone within cancel_grace_ms of its
 * request, whatever the network does, and a context's close waits for
 * them. At most 8 such threads are in flight per process; past that a
 * stop sends no cancel, and its grace period alone ends it (the
 * connection is given up). (With a libpq whose PGcancel pqstream cannot
 * read, 17 and later, PQcancel sends the request: one that cannot get
 * through is let go of at close and keeps its thread until PQcancel
 * returns.)
 * Errors: PQS_EINVAL (NULL out, loop, conninfo or cb), PQS_ENOMEM.
 * The caller owns the context and releases it with pqs_ctx_close(). */
PQS_EXTERN int pqs_ctx_open(pqs_ctx_t **out, uv_loop_t *loop,
                            const char *conninfo, const pqs_ctx_opts_t *opts,
                            pqs_open_cb cb, void *data);

/* Joins connection settings as psql does: the `n` pairs `keys`/`vals`
 * first (a NULL or empty value is left out), then `target`, a database
 * name or a conninfo string or URI (it holds '=' or begins with
 * postgresql:// or postgres://) whose keys win over the pairs. NULL or ""
 * adds nothing. On success *out is a conninfo for pqs_ctx_open, values
 * quoted as libpq reads them; the caller frees it with pqs_free().
 * Errors: PQS_EINVAL (NULL out, a NULL key, n < 0, or a target libpq
 * cannot parse), PQS_ENOMEM. *out is untouched on error. */
PQS_EXTERN int pqs_conninfo_join(char **out, const char *const *keys,
                                 const char *const *vals, int n,
                                 const char *target);

/* The version of the libpq pqstream runs with (PQlibVersion: 150018 for
 * 15.18). */
PQS_EXTERN int pqs_libpq_version(void);

/* Closes the context: an operation under way ends first (its on_done comes
 * with PQS_ECANCELED), a connect under way ends with PQS_ECANCELED, the
 * connection is closed, and `cb` (may be NULL) runs once before the memory
 * is released, when nothing of the context is left: a cancel of its query
 * still on its way is waited for, never past cancel_grace_ms (the request
 * gives up then). Callable from any of the context's callbacks.
 * A context from a factory gives its connection back instead: an idle one
 * is reset first (ROLLBACK of an open transaction, then DISCARD ALL) and
 * returned to the pool; a broken or busy one is closed and its place
 * freed.
 * NULL is allowed: nothing happens, 0 is returned.
 * Errors: PQS_ETHREAD, PQS_ESTATE if already closing. */
PQS_EXTERN int pqs_ctx_close(pqs_ctx_t *ctx, pqs_close_cb cb);

/* 1 if the connection was lost or never made (every new operation fails
 * with PQS_EBROKEN), else 0. */
PQS_EXTERN int pqs_ctx_is_broken(const pqs_ctx_t *ctx);

/* 1 while an operation is running (new ones get PQS_EBUSY), else 0. */
PQS_EXTERN int pqs_ctx_is_busy(const pqs_ctx_t *ctx);

/* The server process id of the connection, 0 if not connected. */
PQS_EXTERN int pqs_ctx_backend_pid(const pqs_ctx_t *ctx);

/* The loop the context runs on. */
PQS_EXTERN uv_loop_t *pqs_ctx_loop(const pqs_ctx_t *ctx);

/* User data, for the caller to use freely. */
PQS_EXTERN void *pqs_ctx_get_data(const pqs_ctx_t *ctx);
PQS_EXTERN void pqs_ctx_set_data(pqs_ctx_t *ctx, void *data);

/* ------------------------------------------------------------------------ */
/* Streams                                                                  */
/* ------------------------------------------------------------------------ */

typedef struct pqs_stream_s pqs_stream_t;

/* What a row callback (and a stage's function) returns. Any negative value
 * is an error: the stream stops, the query is cancelled and on_done reports
 * that value. */
enum {
  PQS_CONTINUE = 0, /* keep the rows coming */
  PQS_PAUSE = 1,    /* pass this row on, then stop reading until resumed */
  PQS_STOP = 2,     /* end now: cancel the query; on_done: PQS_ECANCELED */
  PQS_SKIP = 3      /* from a map function: drop this row */
};

typedef struct pqs_stream_cbs_s {
  /* Optional. Once, when the columns are known, before the first row (also
   * for a result of no rows). The row has no values: only names and types
   * are meaningful. Return as on_row. */
  int (*on_columns)(pqs_stream_t *s, const pqs_row_t *columns, void *data);
  /* Each row, borrowed for the call. Returns PQS_CONTINUE, PQS_PAUSE,
   * PQS_STOP or a negative error. Optional: without it rows are counted and
   * dropped. */
  int (*on_row)(pqs_stream_t *s, const pqs_row_t *row, void *data);
  /* Required. Exactly once. The stream is freed when it returns; the
   * context is free for a new operation during the call already. */
  void (*on_done)(pqs_stream_t *s, const pqs_done_t *done, void *data);
  /* Required with pqs_stream_batch(), ignored without: up to n rows at a
   * time, the last batch possibly shorter, always before on_done. Rows
   * borrowed for the call. Returns as on_row. */
  int (*on_batch)(pqs_stream_t *s, const pqs_row_t *const *rows, size_t n,
                  void *data);
} pqs_stream_cbs_t;

/* Per-query options. */
typedef struct pqs_query_opts_s {
  /* Milliseconds before the query is cancelled and ends with
   * PQS_ETIMEDOUT. 0: the context's query_timeout_ms. */
  unsigned timeout_ms;
  /* pqs_exec of several statements: called as each one completes, with
   * its command tag ("UPDATE 3", borrowed for the call) and the rows it
   * affected. From the loop; it may not start or close anything. NULL:
   * only on_done hears, of the last statement. */
  void (*on_statement)(pqs_ctx_t *ctx, const char *tag, uint64_t affected,
                       void *data);
  void *statement_data;
  /* pqs_query: where the rows come from (pqs_source_t); 0: the context's
   * default. Ignored by pqs_exec. */
  pqs_source_t source;
  /* pqs_query: text or binary values (the COPY source then runs COPY ...
   * (FORMAT binary)); 0: the context's default. Ignored by pqs_exec. */
  pqs_result_format_t result_format;
} pqs_query_opts_t;

/* Prepares a stream of the rows of `sql` on `ctx`, with `nparams` text
 * parameters bound to $1..$n (an element NULL is SQL NULL; `params` may be
 * NULL when nparams is 0). Nothing is sent yet: the stream starts with
 * pqs_stream_start(). From this call on the context is busy. `sql` and the
 * parameters are copied; `opts` may be NULL.
 * Errors: PQS_EINVAL, PQS_ETHREAD, PQS_EBUSY (an operation is under way or
 * the context is still connecting), PQS_EBROKEN, PQS_ESTATE (closing),
 * PQS_ENOMEM. On error *out is untouched.
 * The stream belongs to the library: it lives until its on_done returns, or
 * until pqs_stream_close() if it never started.
 * A COPY ... TO STDOUT statement of the caller's own streams its data as
 * the server sends it: each message (a line, in the text and CSV formats)
 * is a row of one text column, copy_data, holding its bytes, and every
 * sink writes those rows as they are, with no header or footer of its
 * own; command_tag is "COPY n". A COPY ... FROM STDIN ends with
 * PQS_EINVAL (rolled back; pqs_copy_in loads). */
PQS_EXTERN int pqs_query(pqs_ctx_t *ctx, pqs_stream_t **out, const char *sql,
                         int nparams, const char *const *params,
                         const pqs_query_opts_t *opts);

/* Sends the query and starts delivering rows to `cbs` (copied). Rows come
 * from the loop, never from inside this call.
 * Errors: PQS_EINVAL (cbs or on_done NULL), PQS_ETHREAD, PQS_ESTATE
 * (already started). */
PQS_EXTERN int pqs_stream_start(pqs_stream_t *s, const pqs_stream_cbs_t *cbs,
                                void *data);

/* Stops reading: no row is delivered until pqs_stream_resume(). The socket
 * is not watched, so memory stays bounded whatever the result's size.
 * Pausing a paused stream does nothing. Errors: PQS_ETHREAD, PQS_ESTATE. */
PQS_EXTERN int pqs_stream_pause(pqs_stream_t *s);

/* Resumes a paused stream: rows libpq already holds come first, from the
 * loop, then the socket is watched again. Resuming a running stream does
 * nothing. Errors: PQS_ETHREAD, PQS_ESTATE (ending). */
PQS_EXTERN int pqs_stream_resume(pqs_stream_t *s);

/* Ends the stream early. Never started: it is freed now, no callback runs,
 * and the context is free at once. Running or paused: the query is
 * cancelled on the server (without blocking the loop), what still arrives
 * is dropped, and on_done follows with PQS_ECANCELED once the server has
 * finished with the query; only then is the context free again.
 * Closing a stream that is already ending, or NULL, does nothing.
 * Errors: PQS_ETHREAD. */
PQS_EXTERN int pqs_stream_close(pqs_stream_t *s);

/* ---- Stages ----
 *
 * Stages are added to a stream before it starts (after: PQS_ESTATE) and run
 * in the order added, as one flat loop per row, inside the loop wake-up that
 * read the row: no allocation, no recursion, no loop round trip per row.
 * A stage's function gets the stream first and may call pqs_stream_pause()
 * or pqs_stream_close() on it. A negative return is an error: it ends the
 * stream with that value and cancels the query. `data` is the stage's own;
 * `free_data` (may be NULL) is called on it exactly once: when the stream
 * is freed, or at once if adding the stage fails.
 * Errors of every pqs_stream_<stage>: PQS_EINVAL (NULL function, or a stage
 * after pqs_stream_batch), PQS_ESTATE (stream started), PQS_ETHREAD,
 * PQS_ENOMEM. */

typedef void (*pqs_free_cb)(void *data);
typedef int (*pqs_row_fn)(pqs_stream_t *s, const pqs_row_t *row, void *data);

/* Keeps the rows for which `pred` returns 1 and drops those for which it
 * returns 0 (Where). A boolean, unlike the other stages' codes. */
PQS_EXTERN int pqs_stream_filter(pqs_stream_t *s, pqs_row_fn pred, void *data,
                                 pqs_free_cb free_data);

/* Calls `fn` on each row and passes the row on unchanged. `fn` returns
 * PQS_CONTINUE, PQS_PAUSE, PQS_STOP or a negative error, as on_row. */
PQS_EXTERN int pqs_stream_tap(pqs_stream_t *s, pqs_row_fn fn, void *data,
                              pqs_free_cb free_data);

/* Passes the first n rows on, then ends the stream by cancelling the query
 * (Take): on_done reports success (status 0, command_tag NULL if the query
 * had not ended by itself). take(0) ends at the first row, passing none. */
PQS_EXTERN int pqs_stream_take(pqs_stream_t *s, uint64_t n);

/* Drops the first n rows, passes the rest on (Skip). */
PQS_EXTERN int pqs_stream_skip(pqs_stream_t *s, uint64_t n);

/* A column of a map stage's output. `name` is copied when the stage is
 * added. */
typedef struct pqs_column_s {
  const char *name;
  uint32_t type; /* PostgreSQL type OID of the text the map writes */
} pqs_column_t;

/* The output row a map function fills. Columns it does not set are NULL. */
typedef struct pqs_out_s pqs_out_t;
typedef int (*pqs_map_fn)(pqs_stream_t *s, const pqs_row_t *in, pqs_out_t *out,
                          void *data);

/* Replaces each row by the row `fn` fills in `out`, whose columns are
 * `cols` (Select). Downstream stages, the consumer and sinks see ordinary
 * rows with these names and types; on_columns gets them too. `fn` returns
 * PQS_CONTINUE (pass the output on), PQS_SKIP (drop the row), PQS_PAUSE,
 * PQS_STOP or a negative error. The output row's memory is the stage's,
 * reused row after row. */
PQS_EXTERN int pqs_stream_map(pqs_stream_t *s, const pqs_column_t *cols,
                              int ncols, pqs_map_fn fn, void *data,
                              pqs_free_cb free_data);

/* Sets output column `col` to a copy of `text` (`len` bytes; the value's
 * text form, as the server would write it for the column's type).
 * Errors: PQS_EINVAL (col out of range, text NULL), PQS_ENOMEM. */
PQS_EXTERN int pqs_out_set(pqs_out_t *out, int col, const char *text,
                           size_t len);
/* Sets output column `col` to the decimal text of `v`. */
PQS_EXTERN int pqs_out_set_int64(pqs_out_t *out, int col, int64_t v);
/* Sets output column `col` to SQL NULL. Errors: PQS_EINVAL. */
PQS_EXTERN int pqs_out_set_null(pqs_out_t *out, int col);
/* Passes column `in_col` of the input row through to `col` without copying
 * it. The output is text: a binary input value goes as its text
 * (pqs_row_text). Errors: PQS_EINVAL, and for a binary input PQS_ETYPE (a
 * value without exact text) or PQS_ENOMEM. */
PQS_EXTERN int pqs_out_pass(pqs_out_t *out, int col, const pqs_row_t *in,
                            int in_col);

/* Hands the consumer arrays of up to n rows through cbs.on_batch instead of
 * one row at a time (on_row is not called). Must be the last stage. The
 * rows are copied into memory the stage reuses batch after batch. */
PQS_EXTERN int pqs_stream_batch(pqs_stream_t *s, size_t n);

/* ---- Sinks ----
 *
 * A sink is the consumer of a stream: it writes every row, formatted, to a
 * file descriptor or a libuv stream, and starts the stream itself (do not
 * call pqs_stream_start). Rows delivered in one loop wake-up leave in one
 * write. When more than `max_queued` bytes wait for the reader, the stream
 * pauses, and it resumes when half of them are gone: memory stays bounded
 * however slow the reader. A write error (a reader that went away: UV_EPIPE)
 * stops the stream and cancels the query.
 * Writing to a pipe whose reader has gone raises SIGPIPE: ignore it
 * (signal(SIGPIPE, SIG_IGN)), as every libuv program writing to pipes must,
 * and the sink reports UV_EPIPE instead. */

typedef enum {
  PQS_FORMAT_TSV = 0,   /* COPY's text format, as COPY ... TO STDOUT writes */
  PQS_FORMAT_CSV = 1,   /* as COPY ... TO STDOUT (FORMAT csv) writes */
  PQS_FORMAT_JSONL = 2, /* one object per row, as row_to_json() writes it */
  /* For people, as psql prints a query's result (sinks only; settings in
   * pqs_sink_opts_t.print): */
  PQS_FORMAT_UNALIGNED = 3, /* psql -A: header, rows, "(N rows)" */
  PQS_FORMAT_PSQL_CSV = 4   /* psql --csv: header and rows; NULL and ''
                               alike, as the null string */
} pqs_format_t;

/* The psql formats' settings, named as psql's \pset names them; zero is
 * psql's default for each. Values are written as they are (unaligned
 * escapes nothing), so a separator inside a value is not told apart:
 * these formats are for reading, not for loading back (use TSV or CSV).
 * A query's footer and last newline are written when it succeeds; a
 * failed one leaves the rows it wrote, unterminated. */
typedef struct pqs_print_opts_s {
  const char *fieldsep;  /* unaligned; NULL: "|" (-F) */
  const char *recordsep; /* unaligned; NULL: "\n" (-R) */
  int fieldsep_zero;     /* unaligned: a zero byte between fields (-z) */
  int recordsep_zero;    /* unaligned: a zero byte between records (-0) */
  const char *null;      /* a NULL's text; NULL: "" (-P null=) */
  char csv_fieldsep;     /* CSV; 0: ','; not '"', '\n' nor '\r' */
  int tuples_only;       /* no header, no footer (-t) */
  int no_footer;         /* no "(N rows)" (-P footer=off) */
} pqs_print_opts_t;
/* JSON Lines from a sink are byte for byte what
 * SELECT row_to_json(q) FROM (statement) q writes, for every type and
 * under any session settings, when the stream is a query on a context
 * (either source, text or binary) with no map or batch stage: the
 * statement is described first (one more round trip on the single-row
 * source), and the columns only the server can render exactly
 * (composites, domains over them, enums and other types a user made,
 * dates and timestamps under a DateStyle other than ISO, arrays of
 * those; in binary, every type whose text follows a setting) are sent
 * as to_json() of them beside their values, which stay what a stage
 * reads. A merge (and a partitioned read) asks each input so, and keeps
 * the server's JSON with the rows it queues. A statement with a
 * data-modifying WITH inside a SELECT cannot be wrapped so, and fails;
 * run it without JSON Lines. Rows from a map, a batch or pqs_format_row
 * of copied rows are rendered by the client:
 * the built-in types exactly, dates as if DateStyle were ISO, other
 * types as strings of their text. */

/* A sink at work: it exists from pqs_sink_fd / pqs_sink_uv until its
 * callback returns. */
typedef struct pqs_sink_s pqs_sink_t;

typedef struct pqs_sink_opts_s {
  pqs_format_t format;
  int header;        /* csv and tsv: first a line of column names (HEADER) */
  size_t max_queued; /* bytes waiting for the reader before pausing; 0: 1 MiB */
  /* If not NULL, kept up to date with the bytes written so far (for
   * progress reports); read it on the loop's thread. */
  uint64_t *written;
  /* Several streams written one after another into one output: if not
   * NULL, the header line is written only while *header_written is 0, and
   * the sink sets it to 1 when it writes it. Share one flag between them. */
  int *header_written;
  /* PQS_FORMAT_UNALIGNED and PQS_FORMAT_PSQL_CSV: their settings (NULL:
   * psql's defaults), copied; `header` and `header_written` are not read
   * (each stream is a table of its own, its header as tuples_only says). */
  const pqs_print_opts_t *print;
  /* If not NULL: called, on the loop, each time more of the stream's rows
   * have all their bytes written (`rows` counts from the first row the
   * sink got, as pqs_stream_rows would after its stages), with the sink's
   * callback `data`. While the stream runs it may act on the stream (a
   * change stream's pqs_changes_ack); after its end, the stream is gone.
   * Not called for bytes that failed. */
  void (*on_rows_written)(pqs_sink_t *sink, uint64_t rows, void *data);
} pqs_sink_opts_t;


/* Called once, when the stream has ended and every byte has been written
 * (or writing failed). `done` is the stream's completion, borrowed for the
 * call, except that a write error replaces its status (UV_EPIPE,
 * UV_ENOSPC ...) and clears its `error` (the server's report of the cancel
 * the failure caused is not the story). `bytes` counts what was written. The stream no longer exists, and the
 * sink is freed when the callback returns. */
typedef void (*pqs_sink_cb)(pqs_sink_t *sink, const pqs_done_t *done,
                            uint64_t bytes, void *data);

/* Writes stream `s` to `fd` (a pipe, socket, TTY, regular file or device
 * such as /dev/null; the sink
 * works on its own dup of it, so `fd` stays the caller's, though a pipe or
 * socket is left in non-blocking mode) on `loop`, and starts the stream.
 * `opts` may be NULL (TSV, no header) and is copied.
 * Errors: PQS_EINVAL (NULL s or cb, an fd of another kind, a csv_fieldsep
 * psql refuses), PQS_ETHREAD,
 * PQS_ESTATE (started), PQS_ENOMEM, or libuv's error; on error the stream
 * is left unstarted and still the caller's.
 * A binary stream (PQS_RESULT_BINARY) with a column whose type has no
 * exact text (see pqs_row_text) ends before its first row is written: the
 * callback gets PQS_ETYPE and a message naming the column. */
PQS_EXTERN int pqs_sink_fd(pqs_stream_t *s, uv_loop_t *loop, int fd,
                           const pqs_sink_opts_t *opts, pqs_sink_cb cb,
                           void *data);

/* As pqs_sink_fd, writing to a libuv stream the caller owns (and closes,
 * after `cb`). */
PQS_EXTERN int pqs_sink_uv(pqs_stream_t *s, uv_stream_t *out,
                           const pqs_sink_opts_t *opts, pqs_sink_cb cb,
                           void *data);

/* A row formatter: one row rendered as a sink writes it, for programs
 * that frame rows themselves (HTTP chunked encoding, server-sent events, a
 * message queue). The bytes are the sinks' own, by construction: the
 * sinks call the same code. TSV and CSV lines end in a newline; JSON Lines
 * objects too. A row from the COPY source in the formatter's format is
 * its line as the server sent it. Not tied to a thread; not locked. */
typedef struct pqs_formatter_s pqs_formatter_t;

/* Errors: PQS_EINVAL (NULL out, an unknown format or a psql one: those
 * are tables, written by sinks), PQS_ENOMEM. */
PQS_EXTERN int pqs_formatter_new(pqs_formatter_t **out, pqs_format_t format);

/* Renders `row` (a borrowed row, from any callback) into the formatter's
 * buffer: *out and *len are borrowed until the next call on `f` or its
 * free. The buffer grows to the longest row and is reused, so formatting
 * row after row does not allocate. Errors: PQS_EINVAL, PQS_ENOMEM, and
 * PQS_ETYPE for a binary row with a value that has no exact text. */
PQS_EXTERN int pqs_format_row(pqs_formatter_t *f, const pqs_row_t *row,
                              const char **out, size_t *len);

/* The header line of csv and tsv (column names, as COPY's HEADER); empty
 * for JSON Lines. `cols` as on_columns gets it. Errors as above. */
PQS_EXTERN int pqs_format_header(pqs_formatter_t *f, const pqs_row_t *cols,
                                 const char **out, size_t *len);

/* NULL is allowed. */
PQS_EXTERN void pqs_formatter_free(pqs_formatter_t *f);

/* The context the stream runs on (NULL for a stream that reads no
 * context). */
PQS_EXTERN pqs_ctx_t *pqs_stream_ctx(const pqs_stream_t *s);

/* Rows delivered to the consumer so far. */
PQS_EXTERN uint64_t pqs_stream_rows(const pqs_stream_t *s);

/* User data, for the caller to use freely (callbacks also get their own
 * `data` argument). */
PQS_EXTERN void *pqs_stream_get_data(const pqs_stream_t *s);
PQS_EXTERN void pqs_stream_set_data(pqs_stream_t *s, void *data);

/* ------------------------------------------------------------------------ */
/* Commands                                                                 */
/* ------------------------------------------------------------------------ */

/* Called once when a command ends. `done` is borrowed for the call;
 * done->affected holds the affected row count. */
typedef void (*pqs_exec_cb)(pqs_ctx_t *ctx, const pqs_done_t *done, void *data);

/* Runs `sql` (statements that return no rows: INSERT, UPDATE, BEGIN ...;
 * rows a statement does return are counted in done->rows and dropped) with
 * parameters as in pqs_query(). `opts` may be NULL.
 * Without parameters `sql` may hold several statements separated by
 * semicolons ("BEGIN; UPDATE ...; COMMIT"): they run in order in one round
 * trip (libpq's simple query protocol; as one implicit transaction unless
 * they say BEGIN/COMMIT themselves), the first error ends them, and
 * opts->on_statement hears each one's tag. done->command_tag and affected
 * are the last statement's.
 * Errors: as pqs_query(); PQS_EINVAL if cb is NULL. */
PQS_EXTERN int pqs_exec(pqs_ctx_t *ctx, const char *sql, int nparams,
                        const char *const *params, const pqs_query_opts_t *opts,
                        pqs_exec_cb cb, void *data);

/* Called once when a describe ends: with status 0 and the statement's
 * columns (a row without values, as on_columns gets; no columns for a
 * statement that returns no rows), borrowed for the call; or with a
 * failure (PQS_ESQL: the statement does not prepare, `error` says why). */
typedef void (*pqs_describe_cb)(pqs_ctx_t *ctx, int status,
                                const pqs_row_t *columns,
                                const pqs_error_t *error, void *data);

/* The columns `sql` would return, without running it: the server prepares
 * and describes it (as the unnamed prepared statement, which this
 * replaces), in one operation that obeys the busy rule like any other.
 * `nparams` counts its $n parameters; their types are the server's guess.
 * Errors: as pqs_exec(). */
PQS_EXTERN int pqs_describe(pqs_ctx_t *ctx, const char *sql, int nparams,
                            pqs_describe_cb cb, void *data);

/* ------------------------------------------------------------------------ */
/* COPY FROM: rows into a table                                             */
/* ------------------------------------------------------------------------ */

/* A load: lines written into a table with COPY ... FROM STDIN, all of them
 * or none. It runs in a transaction of its own (or in the caller's, if
 * the session is in one: then COMMIT and ROLLBACK are the caller's), and
 * ends with exactly one on_done. Memory is bounded: what is put and not
 * yet sent is at most max_pending (and one put) in pqstream and 1 MB in
 * libpq. */
typedef struct pqs_copy_in_s pqs_copy_in_t;

typedef struct pqs_copy_in_opts_s {
  /* PQS_FORMAT_TSV (0: COPY's text format) or PQS_FORMAT_CSV. */
  pqs_format_t format;
  /* CSV: the first line is a header, which the server skips. */
  int header;
  /* COPY's binary format instead (format is not read): what is put is
   * tuples, each a 16-bit field count, then every field's 32-bit length
   * (-1 for NULL) and bytes, all big-endian; pqstream writes the header
   * and the trailer. Not for pqs_stream_into. */
  int binary;
  /* Milliseconds the whole load may take before it is rolled back and
   * ends with PQS_ETIMEDOUT; 0: the context's query_timeout_ms. */
  unsigned timeout_ms;
  /* Bytes put and not yet sent past which pqs_copy_in_put says 1; 0:
   * 1 MiB. */
  size_t max_pending;
} pqs_copy_in_opts_t;

typedef struct pqs_copy_in_cbs_s {
  /* May be NULL. After pqs_copy_in_put said 1: half of what waited is
   * sent, and put may go on. From the loop; it may put, end or abort. */
  void (*on_ready)(pqs_copy_in_t *ci, void *data);
  /* Once, when the load is over: committed (status 0; done->rows and
   * done->affected count the rows written, command_tag "COPY n"), or
   * rolled back, with the server's error (PQS_ESQL; its context names the
   * line, counted from where the last COPY of the load began: see
   * pqs_copy_in), PQS_ECANCELED (pqs_copy_in_abort), PQS_ETIMEDOUT,
   * PQS_ECONNLOST, PQS_ENOMEM. One case is neither: a COMMIT the server
   * got whose answer was lost (the connection, or libpq out of memory
   * for the result) ends with that error and the message "... whether it
   * committed is unknown", as for any transaction. The context is free
   * again (or broken) before the call, and `ci` is freed when it
   * returns. */
  void (*on_done)(pqs_copy_in_t *ci, const pqs_done_t *done, void *data);
} pqs_copy_in_cbs_t;

/* Starts a load into `target`: a table, with its columns if not all of
 * them ("sales", "public.sales (id, amount)"), as written in SQL after
 * COPY. The caller then puts lines, ends, and hears on_done. While the
 * server is silent the load is one COPY; if it speaks mid-COPY (an error,
 * or only a notice: libpq 15 reads neither until the COPY ends), the COPY
 * is ended where the lines put so far end and its result read: an error
 * ends the load at once, without the rest; otherwise the next lines go in
 * a COPY of their own, in the same transaction (at most one such cut per
 * 100 ms).
 * Errors: PQS_EINVAL (NULL arguments, a format other than TSV or CSV),
 * PQS_ETHREAD, PQS_EBUSY, PQS_EBROKEN, PQS_ESTATE, PQS_ENOMEM; then
 * nothing started and *out is untouched. From this call on the context is
 * busy. `target` and `opts` are copied. */
PQS_EXTERN int pqs_copy_in(pqs_ctx_t *ctx, pqs_copy_in_t **out,
                           const char *target, const pqs_copy_in_opts_t *opts,
                           const pqs_copy_in_cbs_t *cbs, void *data);

/* Puts `len` bytes of whole lines (in CSV whole records; the last byte a
 * newline; in binary whole tuples), copied. Returns 0; 1 when they were
 * taken but more than max_pending now wait: put no more until on_ready;
 * or PQS_EINVAL (not ending in a newline, or not whole tuples),
 * PQS_ESTATE (after pqs_copy_in_end or
 * pqs_copy_in_abort), PQS_ETHREAD, PQS_ENOMEM (nothing taken). */
PQS_EXTERN int pqs_copy_in_put(pqs_copy_in_t *ci, const char *data,
                               size_t len);

/* Everything is put: once it is sent the load commits, and on_done
 * follows. 0, PQS_ESTATE (already ended or aborted), PQS_ETHREAD. */
PQS_EXTERN int pqs_copy_in_end(pqs_copy_in_t *ci);

/* Gives the load up, even after pqs_copy_in_end if it is not over yet:
 * the COPY is failed (the server rolls it back), and on_done follows with
 * PQS_ECANCELED. 0, PQS_ESTATE (already over or aborted), PQS_ETHREAD. */
PQS_EXTERN int pqs_copy_in_abort(pqs_copy_in_t *ci);

/* A stream written into a table on another context: the stream's rows go
 * into a load (pqs_copy_in) as COPY's text lines. */
typedef struct pqs_into_s pqs_into_t;

/* Which side ended a pipe early. */
typedef enum {
  PQS_SIDE_NONE = 0,   /* neither: it committed, or pqs_into_stop */
  PQS_SIDE_SOURCE = 1, /* the stream failed: the load was rolled back */
  PQS_SIDE_TARGET = 2  /* the load failed: the stream's query cancelled */
} pqs_side_t;

/* Called once, when both sides are over: `done` is the load's on
 * success (rows written, command_tag "COPY n"), else the first failure,
 * from `side` (the other side's ending because of it is not reported).
 * `in` is freed when it returns. */
typedef void (*pqs_into_cb)(pqs_into_t *in, const pqs_done_t *done,
                            pqs_side_t side, void *data);

/* Starts unstarted stream `s` (a query, after any stages, a merge, a
 * partitioned read) and writes its rows into `table` on `target` ("t"
 * or "t (a, b)", as for pqs_copy_in), at the slower side's pace: the
 * stream pauses while the load holds max_pending bytes it could not
 * send. The lines are the server's own where a COPY source sends them
 * and no stage changes rows, else formatted as COPY's text format
 * writes them; a binary stream needs exact text for every column (see
 * pqs_row_text), or it ends before the first row with PQS_ETYPE. `opts`
 * as for pqs_copy_in (format must be TSV; header is not read); may be
 * NULL. `*out`, if `out` is not NULL, may be passed to pqs_into_stop
 * until the callback. Errors: PQS_EINVAL, PQS_ESTATE (the stream
 * started or held), PQS_ESAMECTX (the stream's own context), the errors
 * of pqs_copy_in on `target`; then nothing started. */
PQS_EXTERN int pqs_stream_into(pqs_stream_t *s, pqs_ctx_t *target,
                               const char *table,
                               const pqs_copy_in_opts_t *opts,
                               pqs_into_cb cb, void *data, pqs_into_t **out);

/* Ends a pipe early: the stream's query is cancelled, the load rolled
 * back, and the callback says PQS_ECANCELED (side PQS_SIDE_NONE). 0, or
 * PQS_ESTATE if its end is already decided. */
PQS_EXTERN int pqs_into_stop(pqs_into_t *in);

/* ------------------------------------------------------------------------ */
/* Typed parameters                                                         */
/* ------------------------------------------------------------------------ */

/* A parameter with its type, for pqs_exec_typed, pqs_query_typed and
 * batches, next to the text parameters of pqs_exec and pqs_query. Each
 * kind is sent as the type named, in binary where noted (no text
 * round trip, no hex doubling):
 *   PQS_PARAM_NULL         SQL NULL, of the type the server infers
 *   PQS_PARAM_TEXT         text form, of the type the server infers (as a
 *                          text parameter of pqs_exec)
 *   PQS_PARAM_INT64        int8, binary
 *   PQS_PARAM_DOUBLE       float8, binary (NaN and infinities included)
 *   PQS_PARAM_BOOL         bool, binary (0 false, anything else true)
 *   PQS_PARAM_BYTEA        bytea, binary: `len` raw bytes, NULs included
 *   PQS_PARAM_INT64_ARRAY  int8[] of `n` elements, binary (one dimension)
 *   PQS_PARAM_TEXT_ARRAY   text[] of `n` elements, binary; an element NULL
 *                          is SQL NULL; no quoting or escaping by anyone
 * Values are borrowed for the call that takes them, which copies them.
 * Make them with the pqs_p_* helpers below. */
typedef enum {
  PQS_PARAM_NULL = 0,
  PQS_PARAM_TEXT,
  PQS_PARAM_INT64,
  PQS_PARAM_DOUBLE,
  PQS_PARAM_BOOL,
  PQS_PARAM_BYTEA,
  PQS_PARAM_INT64_ARRAY,
  PQS_PARAM_TEXT_ARRAY
} pqs_param_kind_t;

typedef struct pqs_param_s {
  pqs_param_kind_t kind;
  union {
    const char *text;
    int64_t i64;
    double f64;
    int b;
    struct {
      const void *data;
      size_t len;
    } bytes;
    struct {
      const int64_t *v;
      size_t n;
    } i64s;
    struct {
      const char *const *v;
      size_t n;
    } texts;
  } u;
} pqs_param_t;

static inline pqs_param_t pqs_p_null(void) {
  pqs_param_t p = {PQS_PARAM_NULL, {0}};
  return p;
}
static inline pqs_param_t pqs_p_text(const char *text) {
  pqs_param_t p = {text ? PQS_PARAM_TEXT : PQS_PARAM_NULL, {0}};
  p.u.text = text;
  return p;
}
static inline pqs_param_t pqs_p_int64(int64_t v) {
  pqs_param_t p = {PQS_PARAM_INT64, {0}};
  p.u.i64 = v;
  return p;
}
static inline pqs_param_t pqs_p_double(double v) {
  pqs_param_t p = {PQS_PARAM_DOUBLE, {0}};
  p.u.f64 = v;
  return p;
}
static inline pqs_param_t pqs_p_bool(int v) {
  pqs_param_t p = {PQS_PARAM_BOOL, {0}};
  p.u.b = v;
  return p;
}
static inline pqs_param_t pqs_p_bytea(const void *data, size_t len) {
  pqs_param_t p = {PQS_PARAM_BYTEA, {0}};
  p.u.bytes.data = data;
  p.u.bytes.len = len;
  return p;
}
static inline pqs_param_t pqs_p_int64_array(const int64_t *v, size_t n) {
  pqs_param_t p = {PQS_PARAM_INT64_ARRAY, {0}};
  p.u.i64s.v = v;
  p.u.i64s.n = n;
  return p;
}
static inline pqs_param_t pqs_p_text_array(const char *const *v, size_t n) {
  pqs_param_t p = {PQS_PARAM_TEXT_ARRAY, {0}};
  p.u.texts.v = v;
  p.u.texts.n = n;
  return p;
}

/* pqs_exec and pqs_query with typed parameters (one statement; a stream
 * reads in single-row mode whatever the source asked for). Errors: as
 * theirs; PQS_EINVAL also for an unknown kind, a bytea or array of more
 * than 1 GB, or an array element NULL where the kind has none. */
PQS_EXTERN int pqs_exec_typed(pqs_ctx_t *ctx, const char *sql, int nparams,
                              const pqs_param_t *params,
                              const pqs_query_opts_t *opts, pqs_exec_cb cb,
                              void *data);
PQS_EXTERN int pqs_query_typed(pqs_ctx_t *ctx, pqs_stream_t **out,
                               const char *sql, int nparams,
                               const pqs_param_t *params,
                               const pqs_query_opts_t *opts);

/* ------------------------------------------------------------------------ */
/* Notifications                                                            */
/* ------------------------------------------------------------------------ */

/* A stream of the notifications (NOTIFY, pg_notify) sent to `channels`
 * (`n` names, copied; each quoted as an identifier, so "Orders" and
 * "orders" differ, as LISTEN "..." makes them). Its rows have three
 * columns: channel (text), payload (text) and pid (int4, the sender's
 * backend), in the order the server sends them. It is a long-lived
 * operation that holds the context (open one for it) and works with the
 * stream API unchanged: stages, pause (the socket is not read, so the
 * server queues them; none is lost), resume, sinks (JSON Lines of
 * notifications). The LISTENs run when the stream starts; on_columns comes
 * once they are in place, so a NOTIFY sent after it is never missed.
 * pqs_stream_close() sends UNLISTEN * and ends it with PQS_ECANCELED, the
 * context reusable. A lost connection ends it with PQS_ECONNLOST, never
 * silently; a stage's PQS_STOP or error ends it as it ends any stream.
 * Errors: as pqs_query; PQS_EINVAL also for no channel, or an empty name.
 * Notifications that arrived earlier on the connection (a LISTEN of the
 * user's own through pqs_exec) are delivered first. */
PQS_EXTERN int pqs_listen(pqs_ctx_t *ctx, const char *const *channels, int n,
                          pqs_stream_t **out);

/* ------------------------------------------------------------------------ */
/* Change streams                                                           */
/* ------------------------------------------------------------------------ */

/* Whether pqs_changes creates its slot. */
typedef enum {
  PQS_SLOT_USE = 0,        /* the slot must exist */
  PQS_SLOT_PERSISTENT = 1, /* created (pgoutput) if it does not exist */
  PQS_SLOT_TEMPORARY = 2   /* created if it does not exist, as a temporary
                              slot: it lives as long as the context's
                              session, and goes with it */
} pqs_slot_create_t;

typedef struct pqs_changes_opts_s {
  /* The logical replication slot (lower-case letters, digits, '_'). */
  const char *slot;
  /* The publications whose tables' changes are streamed (CREATE
   * PUBLICATION); `npublications` names, copied. */
  const char *const *publications;
  int npublications;
  pqs_slot_create_t create;
  /* Milliseconds between status updates (the slot's position reported to
   * the server, which also keeps a paused stream's connection alive);
   * 0: 10000. Never more than a third of the server's wal_sender_timeout. */
  unsigned status_interval_ms;
  /* Milliseconds allowed for what comes before the first change can flow
   * (the checks, creating the slot, which waits for the transactions
   * running to end, START_REPLICATION); 0: 60000. The stream itself has
   * no timeout. */
  unsigned start_timeout_ms;
  /* 0: a change counts as used once the row callback (the stream's
   * consumer: a sink, stages, on_row) has returned for it. 1: only once
   * pqs_changes_ack says so, for a consumer that finishes later. */
  int manual_ack;
} pqs_changes_opts_t;

/* A change stream: every insert, update, delete and truncate committed to
 * the tables of `opts->publications`, in commit order, from a logical
 * replication slot through PostgreSQL's built-in pgoutput plugin (protocol
 * version 1). `ctx` must have been opened with replication=database in
 * its conninfo (as a role with the REPLICATION attribute; the server
 * refuses the connection otherwise) and is held by the stream, which runs
 * until closed. Each change is a row of ten columns, the same for every
 * table:
 *   lsn          pg_lsn       where the change is in the WAL ("0/16B3748")
 *   commit_lsn   pg_lsn       its transaction's commit record
 *   xid          int8         its transaction's id
 *   commit_time  timestamptz  the commit's time, in UTC
 *   op           text         insert, update, delete or truncate
 *   schema       text
 *   table        text
 *   new          json         insert, update: the new row, an object of
 *                             column to value, each value as row_to_json
 *                             writes it (types a user made: the string of
 *                             their text); NULL otherwise
 *   old          json         update, delete: the old key (its columns) or,
 *                             under REPLICA IDENTITY FULL, the old row;
 *                             NULL when the server sent none (an update
 *                             that kept the key)
 *   unchanged    json         an array of the columns whose values the
 *                             server did not send (a TOASTed value an
 *                             update left as it was): they are not in
 *                             `new`, and never NULL there. Under REPLICA
 *                             IDENTITY FULL the value comes from the old
 *                             row and the array is empty.
 * A truncate of several tables is one row per table. Tables and columns
 * added mid-stream (ALTER TABLE) are followed. Stages and sinks work as
 * on any stream; pausing it stops reading (the server keeps the changes).
 *
 * Nothing is lost, and acknowledgement comes after use: the slot's
 * position (which the server reports as flushed, and resumes after) only
 * ever passes a transaction once every change of it was used (see
 * manual_ack), and passes the WAL of unpublished tables only when no
 * transaction is open or unacknowledged. A status update goes out every
 * status interval, whether the stream runs or is paused, and one last at
 * the end. After the consumer's process dies, the next stream on the slot
 * starts from the last position reported: changes since may come again
 * (at least once, never lost). After pqs_stream_close, the next stream
 * starts exactly after the last transaction used whole: a transaction
 * stopped in the middle comes again from its first change.
 * Memory stays bounded whatever the size of a transaction (each change
 * is delivered as it arrives; with manual acks, at most 4096 transactions
 * wait for theirs, then the stream pauses until an ack).
 *
 * Before anything streams, on_done reports with PQS_ESQL and the
 * server's SQLSTATE: wal_level not logical (55000), the slot missing
 * while create is PQS_SLOT_USE (42704), a slot of another plugin or
 * database (55000), a slot in use by another stream (55006), a
 * publication missing (42704). A running stream that hears nothing from
 * its server for three status intervals (at least 15 s), though asking
 * for an answer, ends with PQS_ETIMEDOUT; a lost connection with
 * PQS_ECONNLOST. pqs_stream_close reports the position, ends the
 * replication (the context stays usable) and completes with
 * PQS_ECANCELED.
 * Errors: as pqs_query; PQS_EINVAL also for NULL opts, a bad slot name,
 * no publication or an empty name, a context not opened with
 * replication=database. */
PQS_EXTERN int pqs_changes(pqs_ctx_t *ctx, pqs_stream_t **out,
                           const pqs_changes_opts_t *opts);

/* With manual_ack: the first `n` changes the change stream `s` delivered
 * (counted as its rows were, before any stage) are used. The position
 * advances past every transaction whose changes are all among them, at
 * the next status update. Call on the loop's thread, while the stream
 * runs (from any callback too).
 * Errors: PQS_EINVAL (NULL s, n more than were delivered), PQS_ETHREAD,
 * PQS_ESTATE (not a running change stream with manual_ack). */
PQS_EXTERN int pqs_changes_ack(pqs_stream_t *s, uint64_t n);

/* Where a replication slot stands (pqs_slot_position); strings borrowed
 * for the callback. */
typedef struct pqs_slot_info_s {
  const char *slot, *plugin; /* plugin: "" for a physical slot */
  /* "X/Y": the changes committed before it are acknowledged, and a stream
   * resumes after it; NULL for a physical slot. */
  const char *confirmed_flush;
  const char *restart_lsn; /* the oldest WAL the slot keeps; NULL if none */
  int active;              /* a stream reads it now ... */
  int active_pid;          /* ... from this server process (0 if none) */
  /* WAL written since confirmed_flush (or restart_lsn): what the slot holds
   * back from the server's disk, in bytes; -1 if unknown. */
  int64_t lag_bytes;
} pqs_slot_info_t;

/* `status` 0 with `info`, or an error (PQS_ESQL with SQLSTATE 42704 for a
 * slot that does not exist) and `error`, `info` NULL. */
typedef void (*pqs_slot_cb)(pqs_ctx_t *ctx, int status,
                            const pqs_error_t *error,
                            const pqs_slot_info_t *info, void *data);

/* Reads where `slot` stands from pg_replication_slots, as one operation on
 * `ctx`, a context that is not a replication connection (those take no
 * parameters); `cb` once. `slot` is copied.
 * Errors: PQS_EINVAL (NULL ctx or cb, a name the server would refuse), as
 * pqs_query otherwise. */
PQS_EXTERN int pqs_slot_position(pqs_ctx_t *ctx, const char *slot,
                                 pqs_slot_cb cb, void *data);

/* Drops `slot` (pg_drop_replication_slot), as one operation on `ctx`, any
 * context (a replication connection too); `cb` once, with the server's
 * error for a slot in use (55006) or missing (42704). A slot holds WAL
 * until it is dropped: drop the ones no stream will read again.
 * Errors: PQS_EINVAL (NULL ctx or cb, a bad name), as pqs_exec otherwise. */
PQS_EXTERN int pqs_slot_drop(pqs_ctx_t *ctx, const char *slot, pqs_exec_cb cb,
                             void *data);

/* ------------------------------------------------------------------------ */
/* Atomic batches                                                           */
/* ------------------------------------------------------------------------ */

/* A list of statements with their parameters, run as one operation in one
 * round trip (libpq's pipeline mode) and as one transaction: on failure
 * nothing of it is committed. Build it once, run it any number of times;
 * it is not tied to a context or thread (but is not locked either). */
typedef struct pqs_batch_s pqs_batch_t;

/* A new, empty batch. Errors: PQS_EINVAL, PQS_ENOMEM. Free it with
 * pqs_batch_free(). */
PQS_EXTERN int pqs_batch_new(pqs_batch_t **out);

/* Appends one statement (no semicolon-separated lists; no BEGIN, COMMIT or
 * ROLLBACK: the batch is the transaction) with `nparams` typed
 * parameters; `sql` and the parameters are copied.
 * Errors: PQS_EINVAL (as pqs_exec_typed), PQS_ENOMEM. */
PQS_EXTERN int pqs_batch_add(pqs_batch_t *b, const char *sql, int nparams,
                             const pqs_param_t *params);

/* Statements in the batch. */
PQS_EXTERN size_t pqs_batch_len(const pqs_batch_t *b);

/* Frees the batch; not while a run of it has yet to call back. NULL is
 * allowed. */
PQS_EXTERN void pqs_batch_free(pqs_batch_t *b);

typedef enum {
  PQS_ISOLATION_DEFAULT = 0, /* the session's (READ COMMITTED unless set) */
  PQS_ISOLATION_READ_COMMITTED,
  PQS_ISOLATION_REPEATABLE_READ,
  PQS_ISOLATION_SERIALIZABLE
} pqs_isolation_t;

typedef struct pqs_batch_opts_s {
  /* With either set, the batch runs inside BEGIN ISOLATION LEVEL ...
   * [READ ONLY] ... COMMIT; without, as the one implicit transaction that
   * a pipeline up to its sync is. Atomic either way. */
  pqs_isolation_t isolation;
  int read_only;
  /* A serialization failure (40001) or deadlock (40P01), at any statement
   * or at COMMIT, runs the whole batch again, up to `retries` more times,
   * after a pause on the loop's timer (never a sleep): backoff_ms (0: 10),
   * doubled at each retry, each time a random 50-150 % of it, at most
   * 1000 ms. */
  unsigned retries;
  unsigned backoff_ms;
  /* Milliseconds for the whole run, retries included; 0: the context's
   * query_timeout_ms. */
  unsigned timeout_ms;
} pqs_batch_opts_t;

/* How a run of a batch ended; borrowed for the callback.
 *   status 0: every statement ran and the transaction committed; tags[i]
 *     and affected[i] are statement i's ("INSERT 0 1", 1).
 *   status PQS_ESQL: statement `failed` raised `error` (`failed` is n for
 *     the COMMIT), after the last retry allowed; nothing was committed.
 *   PQS_ECONNLOST, PQS_ETIMEDOUT, PQS_ECANCELED (context closed),
 *   PQS_ENOMEM: as for any operation; nothing was committed, unless the
 *     connection was lost while the COMMIT was on its way (the outcome is
 *     then unknown, as with any client). `failed` is -1.
 * `attempts` counts the runs made: 1 + the retries used. */
typedef struct pqs_batch_done_s {
  int status;
  size_t n;
  const char *const *tags;  /* NULL unless status is 0 */
  const uint64_t *affected; /* NULL unless status is 0 */
  long failed;
  const pqs_error_t *error;
  unsigned attempts;
} pqs_batch_done_t;

typedef void (*pqs_batch_cb)(pqs_ctx_t *ctx, const pqs_batch_done_t *done,
                             void *data);

/* Runs `b` on `ctx` as one operation (the busy rule holds for it, retries
 * and pauses included) and calls `cb` once. `b` is borrowed until then;
 * `opts` may be NULL and is copied.
 * Errors: as pqs_exec; PQS_EINVAL also for an empty batch. */
PQS_EXTERN int pqs_batch_run(pqs_ctx_t *ctx, const pqs_batch_t *b,
                             const pqs_batch_opts_t *opts, pqs_batch_cb cb,
                             void *data);

/* ------------------------------------------------------------------------ */
/* Pipelined reads                                                          */
/* ------------------------------------------------------------------------ */

/* Several queries sent in one round trip (libpq's pipeline mode), whose
 * results come back as one stream each, in the order the queries were
 * added. The pipeline is one operation on its context: from pqs_pipeline()
 * until its last stream's on_done (or pqs_pipeline_close before it was
 * sent) the context is busy, and a second operation is PQS_EBUSY.
 *
 *   pqs_pipeline(ctx, NULL, &pl);
 *   pqs_pipeline_query(pl, &a, "SELECT ... WHERE id = $1", 1, ids);
 *   pqs_stream_start(a, &cbs, data);     (stages first, or a sink)
 *   pqs_pipeline_query(pl, &b, "SELECT ...", 0, NULL);
 *   pqs_sink_fd(b, loop, 1, &sink_opts, sunk, data);
 *   pqs_pipeline_send(pl);
 *
 * Each stream is an ordinary one: stages, sinks, pause and close work on
 * it, and its on_done comes exactly once, in order: stream i's on_done
 * comes before stream i+1's first row; the context is free again during
 * the last stream's on_done (not during the others'). A paused stream
 * holds the streams after it too. A stream that ends early (closed, a
 * take stage, a sink's write error, an error from on_row) while a later
 * stream of the pipeline still wants its rows is not cancelled on the
 * server (a cancel hits whichever query runs at that moment): the rest of
 * its rows are read and dropped, and its on_done follows its query's end.
 * When no later stream wants rows, what is left is cancelled, as for a
 * single stream.
 *
 * Each query is its own transaction by default (a sync follows each): a
 * query that fails ends its own stream with PQS_ESQL and the others run.
 * With all_or_nothing the queries are one transaction: the first failure
 * rolls everything back; its stream ends with the error, and every other
 * stream with PQS_EABORTED (the queries after it never ran; those before
 * it delivered their rows, but what they did was undone); every on_done
 * then comes once the pipeline has ended.
 * The pipeline's timeout, a lost connection or the context's close end
 * the stream whose rows are coming and every one after it with that
 * status (PQS_ETIMEDOUT, PQS_ECONNLOST, PQS_ECANCELED).
 * A JSON Lines sink on a pipelined stream writes row_to_json()'s bytes as
 * for pqs_query: the statements of such streams are described first, in
 * one more round trip. Pipelined queries go by the unnamed statement
 * (automatic prepared statements do not apply), and COPY is refused. */
typedef struct pqs_pipeline_s pqs_pipeline_t;

typedef struct pqs_pipeline_opts_s {
  /* Milliseconds from pqs_pipeline_send to the last result; 0: the
   * context's query_timeout_ms. */
  unsigned timeout_ms;
  /* 1: the queries are one transaction (see above). */
  int all_or_nothing;
  /* Text or binary values for every stream; 0: the context's default. */
  pqs_result_format_t result_format;
} pqs_pipeline_opts_t;

/* A new, empty pipeline on `ctx`, which is busy from now on. `opts` may
 * be NULL and is copied. The pipeline belongs to the library: it lives
 * until its last stream's on_done returns after pqs_pipeline_send(), or
 * until pqs_pipeline_close().
 * Errors: PQS_EINVAL, PQS_ETHREAD, PQS_EBUSY, PQS_EBROKEN, PQS_ESTATE
 * (closing), PQS_ENOMEM. On error *out is untouched. */
PQS_EXTERN int pqs_pipeline(pqs_ctx_t *ctx, const pqs_pipeline_opts_t *opts,
                            pqs_pipeline_t **out);

/* Adds a query, with `nparams` text parameters as for pqs_query, and
 * gives its stream, not started: add stages, then start it (or give it to
 * a sink); the pipeline is sent once every stream is started and
 * pqs_pipeline_send() was called. `sql` and the parameters are copied.
 * Errors: PQS_EINVAL (NULL arguments, a COPY statement), PQS_ETHREAD,
 * PQS_ESTATE (sent already), PQS_ENOMEM. */
PQS_EXTERN int pqs_pipeline_query(pqs_pipeline_t *pl, pqs_stream_t **out,
                                  const char *sql, int nparams,
                                  const char *const *params);

/* The same with typed parameters, as pqs_query_typed. */
PQS_EXTERN int pqs_pipeline_query_typed(pqs_pipeline_t *pl,
                                        pqs_stream_t **out, const char *sql,
                                        int nparams,
                                        const pqs_param_t *params);

/* Sends every query in one round trip, at once if every stream is
 * started (or closed), else as soon as the last one is; rows come from
 * the loop, never from inside this call. A stream closed before it
 * started leaves its query out (the last one left, the pipeline too:
 * the context is free).
 * Errors: PQS_EINVAL (NULL; no query), PQS_ETHREAD, PQS_ESTATE (called
 * already). */
PQS_EXTERN int pqs_pipeline_send(pqs_pipeline_t *pl);

/* Before the pipeline is sent: drops it; streams not started are
 * freed without a callback (their pointers are invalid then), started
 * ones get on_done with PQS_ECANCELED from the loop, and the context is
 * free from the first of those on; with none started, at once.
 * After: ends the pipeline early, as the context's close would: the
 * query running is cancelled, and the stream whose rows are coming and
 * every one after it end with PQS_ECANCELED, from the loop. NULL, or a
 * pipeline already ending, does nothing. Errors: PQS_ETHREAD. */
PQS_EXTERN int pqs_pipeline_close(pqs_pipeline_t *pl);

/* ------------------------------------------------------------------------ */
/* Transactions with logic between statements                               */
/* ------------------------------------------------------------------------ */

/* A transaction whose body reads and then decides (SELECT ... FOR UPDATE,
 * then UPDATE): pqstream sends BEGIN, calls the body, and the body issues
 * queries on the context as usual and ends each attempt with pqs_tx_end().
 * Ended with status 0 the transaction commits; ended with an error it
 * rolls back; either way a serialization failure or deadlock (40001,
 * 40P01: from a body's query, or from the COMMIT) rolls back and runs the
 * body again, after a jittered pause on the loop's timer, up to `retries`
 * more times.
 *
 * A body may: run any number of queries, commands, batches and streams on
 * `ctx`, one at a time, as always; keep state in `data` (reset it at each
 * attempt: `attempt` counts from 1); end the attempt from any callback,
 * once every operation it started has completed.
 * A body may not: send BEGIN, COMMIT, ROLLBACK or SAVEPOINT releases of its
 * own; end the attempt twice or leave it unended (the context stays in the
 * transaction); use the context for anything else before pqs_tx_end.
 * Closing the context mid-transaction rolls back (the server does, as the
 * connection closes; a pooled context's reset does ROLLBACK first) and
 * `cb` reports PQS_ECANCELED. */
typedef struct pqs_tx_s pqs_tx_t;

typedef void (*pqs_tx_body_fn)(pqs_tx_t *tx, pqs_ctx_t *ctx,
                               unsigned attempt, void *data);

typedef struct pqs_tx_opts_s {
  pqs_isolation_t isolation; /* as for batches */
  int read_only;
  unsigned retries;    /* re-runs on 40001/40P01 */
  unsigned backoff_ms; /* as for batches; 0: 10 */
} pqs_tx_opts_t;

/* How it ended: status 0 (committed), or the body's status and error
 * (rolled back), or that of BEGIN or COMMIT, or PQS_ECANCELED (the context
 * was closed; do not use it). `attempts` counts the bodies run. Borrowed
 * for the call. */
typedef struct pqs_tx_done_s {
  int status;
  const pqs_error_t *error;
  unsigned attempts;
} pqs_tx_done_t;

typedef void (*pqs_tx_cb)(pqs_ctx_t *ctx, const pqs_tx_done_t *done,
                          void *data);

/* Starts the transaction on `ctx` (which must be free) and calls `cb` once
 * when it has committed or given up; `opts` may be NULL and is copied.
 * Errors: as pqs_exec; PQS_EINVAL (NULL body or cb); PQS_EBUSY also while
 * another transaction helper runs on `ctx`. */
PQS_EXTERN int pqs_tx_run(pqs_ctx_t *ctx, const pqs_tx_opts_t *opts,
                          pqs_tx_body_fn body, pqs_tx_cb cb, void *data);

/* Ends the body's attempt: status 0 commits; a negative status (a query's
 * done->status, or the body's own code) rolls back, and with `error` (the
 * failed query's done->error, borrowed for the call) a conflict is
 * retried. Errors: PQS_ESTATE (no attempt is open: ended already),
 * PQS_EBUSY (an operation of the body's is still running). */
PQS_EXTERN int pqs_tx_end(pqs_tx_t *tx, int status, const pqs_error_t *error);

/* ------------------------------------------------------------------------ */
/* SQL text, read as psql reads it                                          */
/* ------------------------------------------------------------------------ */

/* The scanner below never looks inside string literals ('...', E'...'),
 * quoted identifiers ("..."), comments (--, nested slash-star) or dollar
 * quotes ($$...$$, $tag$...$tag$). */

/* The length of the first statement of the `len` bytes at `sql`, through
 * its semicolon (one outside parentheses, as psql splits a script), or
 * `len` if it has none. Step through a script with it. */
PQS_EXTERN size_t pqs_sql_statement(const char *sql, size_t len);

/* The offset of the first backslash that is code in the `len` bytes at
 * `sql` (where psql reads a meta-command, such as \echo, to the end of
 * its line), or `len` if there is none. */
PQS_EXTERN size_t pqs_sql_meta(const char *sql, size_t len);

/* 1 if the `len` bytes at `sql` hold nothing to run: only white space,
 * comments and semicolons. */
PQS_EXTERN int pqs_sql_is_blank(const char *sql, size_t len);

/* The value of variable `name`, or NULL if it is not defined. */
typedef const char *(*pqs_sql_var_fn)(const char *name, void *data);

/* A copy of `sql` with psql's variables replaced, as psql -v does:
 * :name by the value as it is, :'name' by the value as a quoted literal,
 * :"name" by the value as a quoted identifier (quoted as libpq's
 * PQescapeLiteral and PQescapeIdentifier do, for a server with
 * standard_conforming_strings on). Never inside the text the scanner
 * skips, and never a cast (::). A variable `lookup` does not know stays
 * as written. *out is the caller's, freed with pqs_free().
 * Prefer parameters ($1 ... ) for values: :name pastes its value as SQL.
 * Errors: PQS_EINVAL (NULL argument), PQS_ENOMEM (*out untouched). */
PQS_EXTERN int pqs_sql_interpolate(const char *sql, pqs_sql_var_fn lookup,
                                   void *data, char **out);

/* Frees memory pqstream handed the caller (pqs_sql_interpolate,
 * pqs_conninfo_join). NULL is allowed. */
PQS_EXTERN void pqs_free(void *p);

/* ------------------------------------------------------------------------ */
/* Merge and gather: several streams at once                                */
/* ------------------------------------------------------------------------ */

/* Streams of different contexts run at the same time. A merge makes them
 * one stream (which takes stages and sinks like any other); a gather
 * collects each into a row set and calls back once when all are done.
 * Each input needs its own context: inputs of one context, or of contexts
 * on different loops, are refused before anything runs. */

typedef enum {
  PQS_MERGE_INTERLEAVE = 0, /* rows as they arrive, no input starved */
  PQS_MERGE_CONCAT = 1,     /* input order; later inputs run and buffer */
  PQS_MERGE_ORDERED = 2     /* k-way merge of inputs sorted the same way */
} pqs_merge_mode_t;

/* A sort key: column and direction, as ORDER BY col [DESC] with
 * PostgreSQL's default NULL placement (last ascending, first descending).
 * Integers and floats compare as numbers, numeric as decimals (-Infinity,
 * the numbers, Infinity, then NaN, as the server orders them), everything
 * else byte by byte (as COLLATE "C"). */
typedef struct pqs_sort_key_s {
  int col;
  int desc;
} pqs_sort_key_t;

/* Negative, zero or positive as a sorts before, with or after b. */
typedef int (*pqs_row_cmp_fn)(const pqs_row_t *a, const pqs_row_t *b,
                              void *data);

/* Compares two rows by `nkeys` sort keys, as the ordered merge does: the
 * building block of a comparator that finds its columns by name. A key's
 * column must exist in both rows. */
PQS_EXTERN int pqs_row_compare(const pqs_row_t *a, const pqs_row_t *b,
                               const pqs_sort_key_t *keys, int nkeys);

typedef struct pqs_merge_opts_s {
  pqs_merge_mode_t mode;
  /* ORDERED: by `keys` (nkeys of them), or by `cmp` if set. An input found
   * out of order ends the stream with PQS_EORDER, naming it. */
  const pqs_sort_key_t *keys;
  int nkeys;
  pqs_row_cmp_fn cmp;
  void *cmp_data;
  /* CONCAT and ORDERED: rows one input may hold waiting before that input
   * alone is paused; 0: 1000. */
  size_t buffer_rows;
  /* 0: the first input to fail cancels the others and the merged stream
   * ends with its error, named "input N: ...". 1: the others run to their
   * end; the merged stream still ends with the first error. */
  int keep_going;
  /* INTERLEAVE and CONCAT: inputs may have different columns; each row
   * keeps its own (fine for JSON Lines, not for a CSV header). */
  int mixed_columns;
  /* Optional: each input's own completion, as it comes, with the merged
   * stream first (borrowed). */
  void (*on_input_done)(pqs_stream_t *merged, int input,
                        const pqs_done_t *done, void *data);
  void *data;
} pqs_merge_opts_t;

/* Makes one stream of the `n` unstarted streams `inputs` (the array is
 * copied; the streams now belong to the merge, and every call on them,
 * start, pause, resume, close, stages, sinks, merge, gather, is
 * PQS_ESTATE). Starting the merged stream
 * starts them all; pausing it pauses them all; closing it closes them all.
 * Every merged row tells its input through pqs_row_input(). The columns
 * of the first input to describe them are the merged stream's; an input
 * whose columns differ in count or type ends it with PQS_ESCHEMA, unless
 * opts->mixed_columns.
 * on_done's status is 0, the first input's failure (its error message
 * prefixed "input N: "), or why the merged stream was stopped.
 * Errors: PQS_EINVAL (n < 1, NULL, bad opts, inputs on different loops or
 * none on a context), PQS_ESAMECTX (two inputs of one context: "each
 * parallel stream needs its own context"), PQS_ESTATE (an input started),
 * PQS_ETHREAD, PQS_ENOMEM. On error nothing changes hands. */
PQS_EXTERN int pqs_merge(pqs_stream_t *const *inputs, int n,
                         const pqs_merge_opts_t *opts, pqs_stream_t **out);

/* The merge input `row` came from (0 ... n-1), or -1 outside a merge. */
PQS_EXTERN int pqs_row_input(const pqs_row_t *row);

/* Rows collected by a gather: owned copies. */
typedef struct pqs_rowset_s {
  size_t nrows;
  pqs_row_t **rows;
  int status; /* the input's own completion status */
} pqs_rowset_t;

/* Frees a row set and its rows. NULL is allowed. */
PQS_EXTERN void pqs_rowset_free(pqs_rowset_t *set);

typedef struct pqs_gather_opts_s {
  uint64_t max_rows;  /* over all inputs; 0: no cap */
  uint64_t max_bytes; /* of values, over all inputs; 0: no cap */
  int keep_going;     /* as for merge */
} pqs_gather_opts_t;

/* A gather at work, from pqs_gather until its callback returns. */
typedef struct pqs_gather_s pqs_gather_t;

/* Called once when every input has ended. `sets[i]` holds input i's rows
 * and belongs to the caller (pqs_rowset_free); the array is borrowed.
 * done->status: 0, the first failure ("input N: ..."), or PQS_ELIMIT when
 * a cap was reached (the inputs are cancelled; rows so far are kept).
 * The gather is freed after the callback returns. */
typedef void (*pqs_gather_cb)(pqs_gather_t *g, pqs_rowset_t **sets, int n,
                              const pqs_done_t *done, void *data);

/* Starts the `n` unstarted `inputs` and collects each into its own row
 * set; the inputs belong to the gather, as a merge's to the merge. `opts`
 * may be NULL. Errors as pqs_merge; on error nothing starts. */
PQS_EXTERN int pqs_gather(pqs_stream_t *const *inputs, int n,
                          const pqs_gather_opts_t *opts, pqs_gather_cb cb,
                          void *data);

/* ------------------------------------------------------------------------ */
/* Factory                                                                  */
/* ------------------------------------------------------------------------ */

/* The factory is configured once, shared by any number of threads, and
 * hands out contexts on each caller's own loop from a bounded pool of
 * connections (the counterpart of IDbContextFactory / NpgsqlDataSource).
 * It is the one pqstream object meant to be used from several threads. */
typedef struct pqs_factory_s pqs_factory_t;

/* A request for a context, valid until its callback has run. */
typedef struct pqs_acquire_s pqs_acquire_t;

typedef struct pqs_factory_opts_s {
  const char *conninfo;        /* libpq connection string or URI; copied */
  unsigned max_size;           /* most connections open at once; 0: 10 */
  unsigned min_idle;           /* idle connections kept ready; 0: none */
  unsigned acquire_timeout_ms; /* longest wait for a context; 0: 30000 */
  unsigned idle_timeout_ms;    /* idle longer: closed; 0: never */
  unsigned max_lifetime_ms;    /* older: closed when idle; 0: never */
  unsigned connect_timeout_ms; /* per new connection; 0: 10000 */
  unsigned query_timeout_ms;   /* default of the contexts' queries; 0: none */
  pqs_notice_cb on_notice;     /* the contexts' notices; NULL: on stderr */
  void *notice_data;
  /* Where pqs_factory_free reports contexts still out; NULL: stderr. */
  void (*log)(const char *line, void *data);
  void *log_data;
  unsigned cancel_grace_ms; /* the contexts' (see pqs_ctx_opts_t); 0: 5000 */
  pqs_source_t source;      /* the contexts' default source */
  pqs_result_format_t result_format; /* the contexts' default format */
  /* The contexts' automatic prepared statements (see pqs_ctx_opts_t: 0
   * is 5 runs, PQS_PREPARE_NEVER off). A connection's reset before it
   * goes back to the pool empties its statements with its cache. */
  unsigned prepare_threshold;
  unsigned statement_cache_size;
} pqs_factory_opts_t;

typedef struct pqs_factory_stats_s {
  unsigned open;    /* connections open (idle, in use or being opened) */
  unsigned idle;    /* open and waiting in the pool */
  unsigned in_use;  /* handed out as contexts, or being opened for one */
  unsigned waiting; /* requests queued for a connection */
  uint64_t total_opened, total_discarded, total_waits;
  double longest_wait_ms;
} pqs_factory_stats_t;

/* Creates a factory. `opts` is copied; opts->conninfo is required. Starts
 * one maintenance thread (idle timeout, lifetime, min_idle); nothing
 * connects until asked, except for min_idle, whose connections that
 * thread opens with libpq's blocking connect (and its name lookup),
 * within connect_timeout_ms as a context's: pqs_factory_free waits for
 * one under way.
 * Errors: PQS_EINVAL, PQS_ENOMEM, or libuv's error. */
PQS_EXTERN int pqs_factory_new(pqs_factory_t **out,
                               const pqs_factory_opts_t *opts);

/* Frees the factory and closes every pooled connection (after a min_idle
 * connect under way, bounded by connect_timeout_ms). With contexts
 * still out, or requests waiting, it frees nothing: it reports each one
 * through opts->log (where it was opened, for how long) and returns
 * PQS_EBUSY. Any thread; NULL is allowed. */
PQS_EXTERN int pqs_factory_free(pqs_factory_t *f);

/* Asks for a context on `loop` (the caller's: call from its thread). `cb`
 * runs once, on that loop, never from inside this call: with a context
 * (status 0), bound to `loop`, reset to a fresh session, which the caller
 * returns to the pool with pqs_ctx_close(); or with ctx NULL and
 * PQS_ETIMEDOUT (acquire timeout), PQS_ECANCELED (pqs_acquire_cancel),
 * PQS_ECONNECT (a new connection failed; `error` says why). An idle
 * connection is reused, else a new one opened while fewer than max_size
 * are, else the request waits its turn, first come first served. *req (if
 * `req` is not NULL) can cancel the wait.
 * Errors: PQS_EINVAL, PQS_ENOMEM, PQS_ESTATE (factory being freed). */
#define pqs_factory_open_ctx(f, loop, req, cb, data)                           \
  pqs_factory_open_ctx_at((f), (loop), (req), (cb), (data), __FILE__, __LINE__)
PQS_EXTERN int pqs_factory_open_ctx_at(pqs_factory_t *f, uv_loop_t *loop,
                                       pqs_acquire_t **req, pqs_open_cb cb,
                                       void *data, const char *file, int line);

/* Gives up a request: its callback runs with PQS_ECANCELED (from the loop),
 * and a connection granted meanwhile goes back to the pool. From the
 * request's loop thread, before its callback ran.
 * Errors: PQS_EINVAL, PQS_ETHREAD, PQS_ESTATE (already cancelled). */
PQS_EXTERN int pqs_acquire_cancel(pqs_acquire_t *req);

/* A snapshot of the factory's counters. Any thread. */
PQS_EXTERN void pqs_factory_stats(pqs_factory_t *f, pqs_factory_stats_t *st);

/* User data, for the caller to use freely. Not locked: set it before
 * sharing the factory between threads. */
PQS_EXTERN void *pqs_factory_get_data(const pqs_factory_t *f);
PQS_EXTERN void pqs_factory_set_data(pqs_factory_t *f, void *data);

/* ------------------------------------------------------------------------ */
/* Partitioned parallel reads                                               */
/* ------------------------------------------------------------------------ */

/* One query read as K ranges of a key, each on its own context from a
 * factory (one server, or as many as the factory's conninfo names), merged
 * into one stream: what ConnectorX calls partition_on. The query runs as
 *   SELECT * FROM (query) AS pqs_partition WHERE "key" >= b[i] AND "key" < b[i+1]
 * for K half-open ranges whose bounds the server computes from the key's
 * range, so every row with a key comes exactly once whatever the bounds'
 * precision, and once more as WHERE "key" IS NULL: the NULL keys are a
 * partition of their own. The first and last ranges are open, and the
 * bounds are computed from the lowest and highest finite keys without
 * overflow at any type's ends (integers in numeric, dates and timestamps
 * by offsets), so infinities and NaN, keys spanning a whole type, a
 * single key, only NULL keys and no rows at all are read as any other.
 * A describe of the key comes first (one round trip). The query must not
 * LIMIT or OFFSET (each range would). */
typedef struct pqs_partition_opts_s {
  /* The key: a column of the query's result (its exact name, quoted by
   * pqstream), of a type with + - * / and order: an integer, numeric,
   * float, date, timestamp or timestamptz. */
  const char *column;
  int partitions; /* K, 1 to 64 */
  /* The key's range as text; both NULL: found first, with min() and max()
   * of its finite values in one query. Rows outside a given range still
   * come, in the first and last ranges. */
  const char *lo, *hi;
  /* 1: the rows in key order, NULL keys last (each range sorted by the key
   * on its server, the ranges one after the other); 0: as they come. */
  int ordered;
  /* The query's own text parameters, $1..$nparams (copied). */
  int nparams;
  const char *const *params;
} pqs_partition_opts_t;

/* Called once, with the factory the read was started on first: with
 * status 0 and the merged stream, unstarted (add stages or a sink and
 * start it, or close it), whose K + 1 contexts go back to the factory when
 * it is freed; or with a failure (a context not acquired, the range
 * query's error) and no stream. */
typedef void (*pqs_partition_cb)(pqs_factory_t *f, int status,
                                 const pqs_error_t *error,
                                 pqs_stream_t *merged, void *data);

/* Starts a partitioned read of `sql` on `loop` (the caller's thread) with
 * contexts from `f`. Errors: PQS_EINVAL (NULL arguments, no column,
 * partitions out of range, only one of lo and hi), PQS_ENOMEM, or
 * pqs_factory_open_ctx's. */
PQS_EXTERN int pqs_partitioned(pqs_factory_t *f, uv_loop_t *loop,
                               const char *sql,
                               const pqs_partition_opts_t *opts,
                               pqs_partition_cb cb, void *data);

#ifdef __cplusplus
}
#endif
#endif /* PQSTREAM_H */
