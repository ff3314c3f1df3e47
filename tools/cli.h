/* The pqstream command-line tool: a thin layer over the public API. */
#ifndef PQS_CLI_H
#define PQS_CLI_H

#include <pqstream.h>

/* Exit codes, psql's, then the tool's own; the man page lists them. */
enum {
  CLI_OK = 0,
  CLI_SQL = 1,     /* the server reported an error (-c) */
  CLI_USAGE = 1,   /* bad options or arguments */
  CLI_FAILED = 1,  /* anything else: output not writable, out of memory */
  CLI_CONNECT = 2, /* could not connect, or the connection was lost */
  CLI_SCRIPT = 3,  /* the server reported an error in a -f script */
  CLI_TIMEOUT = 4, /* --timeout passed */
  CLI_SIGINT = 130,
  CLI_SIGTERM = 143
};

#define CLI_MAX 64 /* commands, params, shards */

enum { CLI_ITEM_SQL = 0, CLI_ITEM_ECHO = 1 };

/* After SIGINT or SIGTERM: time for the cancel and the last output, then
 * the tool leaves whatever is still unwritten. */
#define CLI_SIGNAL_DEADLINE_MS 3000

typedef struct {
  const char *dbname; /* a name, a conninfo or a URI; "": libpq's
                         environment (PGHOST ...) */
  const char *host, *port, *user; /* -h -p -U; NULL: not given */
  char *password;                 /* -W's or a prompt's, owned */
  int no_password;                /* -w: never prompt */
  int force_password;             /* -W: prompt before connecting */
  int may_prompt;     /* a terminal to ask on, and -w not given */
  int wants_password; /* set by cli_run: the server asked for one */
  /* -c and -f as given, in order (file texts owned) */
  const char *texts[CLI_MAX];
  char *owned[CLI_MAX];
  const char *text_file[CLI_MAX]; /* -f's path, "<stdin>"; NULL for -c */
  int ntexts;
  const char *var_names[CLI_MAX], *var_values[CLI_MAX]; /* -v NAME=VALUE */
  int nvars;
  int single_transaction; /* -1 */
  /* The statements to run, from cli_prepare (or set directly) */
  const char *const *commands;
  int ncommands;
  char **statements; /* cli_prepare's, owned */
  /* Where each statement is: -f's file (NULL: -c, or -1's own
   * BEGIN/COMMIT) and the line it ends on, for psql's "FILE:LINE:". */
  const char **stmt_file;
  int *stmt_line;
  int *stmt_echo; /* CLI_ITEM_ECHO: the item is \echo's text, printed in
                     its turn; CLI_ITEM_SQL: a statement */
  const char **stmt_to; /* \copy ... TO: its file ("-": psql's stdout);
                           NULL: the query output */
  char **kept;    /* what cli_prepare read (\i files, their paths) */
  int nkept;
  const char *params[CLI_MAX]; /* NULL: SQL NULL */
  int nparams;
  pqs_format_t format;
  int header;
  pqs_print_opts_t print; /* -A and --csv: -t -F -R -z -0 -P */
  int single_row; /* --single-row: not through COPY */
  int format_given;
  const char *partition_on; /* --partition-on key */
  int partitions;
  const char *listen[CLI_MAX]; /* --listen channels */
  int nlisten;
  const char *changes;              /* --changes SLOT */
  const char *publications[CLI_MAX]; /* --publication names */
  int npublications;
  int create_slot; /* --create-slot */
  const char *output;
  int jobs;
  const char *shards[CLI_MAX];
  int nshards;
  const char *order_by;
  long long limit; /* -1: none */
  double timeout;  /* seconds; 0: none */
  int progress;    /* -1: when stderr is a terminal and the output not */
  int quiet;
  const char *into_table; /* --into-table: "T" or "T (cols)" */
  const char *into_db;    /* --into-db: its server; NULL: -d's */
  const char *from_file;  /* --from-file: loaded into --into-table */
} cli_opts_t;

/* run.c: 0 or an exit code; o->wants_password is set when the server
 * asked for a password that was not given (and may_prompt held back the
 * message: main prompts and runs again). */
int cli_run(cli_opts_t *o);

/* load.c: --from-file FILE --into-table T: the file (or standard
 * input) loaded with COPY FROM, as psql's \copy T FROM FILE. An exit
 * code, as cli_run's. */
int cli_load_file(cli_opts_t *o);

/* script.c */
/* Turns the -c and -f texts into the items to run, in order: statements
 * (variables interpolated as psql does, split where statements end,
 * blank ones dropped) and \echo texts; \set, \unset, \if ... \endif,
 * \i and \ir are done here. -1 adds BEGIN and COMMIT around them. CLI_OK,
 * or an exit code with the reason said (a meta-command it does not run,
 * before anything runs). */
int cli_prepare(cli_opts_t *o);
/* Keeps `p` (malloc'd) until cli_opts_free; 0, or -1 (p not kept). */
int cli_keep(cli_opts_t *o, char *p);
/* Frees what parsing and cli_prepare allocated. */
void cli_opts_free(cli_opts_t *o);

/* describe.c */
/* Called once: CLI_OK, and the index of the first statement that returns
 * rows (-1: none), or an exit code with the reason said. */
typedef void (*cli_described_cb)(pqs_ctx_t *ctx, int status, int first_rows,
                                 void *data);
/* Describes every statement of `o` on `ctx`, in order, and checks that
 * the ones that return rows all have the same columns. */
int cli_describe_all(const cli_opts_t *o, pqs_ctx_t *ctx, cli_described_cb cb,
                     void *data);
/* The error of merge input "input K: ..." of a batch whose first job is
 * `first_job`, renamed "query N: ..." as the user typed them. */
void cli_name_input(const pqs_error_t *err, int first_job, int ntargets,
                    char *out, size_t cap, pqs_error_t *named);

/* pset.c */
/* Whether the output is one of psql's formats (-A, --csv): a table per
 * statement, its header and footer as psql prints them. */
static inline int cli_psql_format(const cli_opts_t *o) {
  return o->format == PQS_FORMAT_UNALIGNED || o->format == PQS_FORMAT_PSQL_CSV;
}
/* One -P NAME[=VALUE] (`arg` is cut at its '=') into o->print or
 * o->format; CLI_OK, or CLI_USAGE with the reason said. */
int cli_pset(cli_opts_t *o, char *arg);

/* watch.c */
/* Asked once, at the first SIGINT or SIGTERM: stop the work. */
typedef void (*cli_stop_fn)(void *data, int signum);
/* Writes the progress line (no newline) into line[cap]. */
typedef void (*cli_line_fn)(void *data, double secs, char *line, size_t cap);
typedef struct {
  uv_signal_t sigint, sigterm;
  uv_timer_t deadline, progress;
  int signal;  /* the first signal, 0 if none came */
  int started, shown;
  uint64_t t0;
  cli_stop_fn stop;
  cli_line_fn line;
  void *data;
} cli_watch_t;
/* Starts watching the signals and, if `progress`, writing the progress
 * line every 250 ms; 0 or libuv's error (nothing then to close). */
int cli_watch_start(cli_watch_t *w, uv_loop_t *loop, int progress,
                    cli_stop_fn stop, cli_line_fn line, void *data);
/* Clears the progress line and closes the handles (the loop ends them). */
void cli_watch_close(cli_watch_t *w);
/* 130 for SIGINT, 143 for SIGTERM. */
int cli_signal_code(int signum);
/* Says why a connection could not be had, or notes that the server wants
 * a password main may prompt for (o->wants_password); CLI_CONNECT. */
int cli_connect_failed(cli_opts_t *o, int status, const pqs_error_t *err);

/* connect.c */
/* The conninfo for `target` (-d or a shard) with -h -p -U and the
 * password, as psql builds it; malloc'd, NULL if out of memory. */
char *cli_conninfo(const cli_opts_t *o, const char *target);
/* A password read from the terminal without echo; malloc'd, or NULL. */
char *cli_prompt_password(const cli_opts_t *o);


/* Server notices on stderr as psql prints them; none with -q. */
pqs_notice_cb cli_notice_fn(const cli_opts_t *o);
/* Prints "pqstream: " and the message to stderr. */
void cli_say(const char *fmt, ...);
/* Prints a server error as psql does: ERROR: message (SQLSTATE x) ... */
void cli_print_error(const pqs_error_t *err, int status);
/* Reads a whole file ("-": standard input); NULL and a message on error. */
char *cli_read_file(const char *path);

#endif
