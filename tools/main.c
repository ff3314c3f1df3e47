/* pqstream: run queries and stream their rows to standard output. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


#include "ways.h"
#include "cli.h"

static const char usage[] =
    "Usage: pqstream [OPTION]... [DBNAME [USERNAME]] -c SQL [-c SQL]...\n"
    "       pqstream bench [OPTION]...   (see pqstream bench --help)\n"
    "Stream the rows of PostgreSQL queries to standard output, as COPY does.\n"
    "\n"
    "Connection options (as psql's; unset ones come from libpq's environment:\n"
    "PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSERVICE, ~/.pgpass):\n"
    "  -h, --host=HOSTNAME     database server host or socket directory\n"
    "  -p, --port=PORT         database server port\n"
    "  -U, --username=USERNAME database user name\n"
    "  -d, --dbname=DBNAME     database name, or a connection string or URI\n"
    "  -w, --no-password       never prompt for a password\n"
    "  -W, --password          prompt for a password before connecting\n"
    "                          (otherwise asked when the server wants one\n"
    "                          and there is a terminal)\n"
    "\n"
    "Queries and output:\n"
    "  -c, --command=SQL       SQL to run (repeatable); several statements "
    "run\n"
    "                          in order, as psql -f with ON_ERROR_STOP=1\n"
    "  -f, --file=FILE         a script read from FILE ('-': standard input)\n"
    "  -v, --set=NAME=VALUE    a psql variable: :NAME, :'NAME', :\"NAME\"\n"
    "  -1, --single-transaction  run the statements as one transaction\n"
    "      --param=VALUE       the next positional parameter $1, $2 ...\n"
    "      --param-null        the next parameter is SQL NULL\n"
    "      --format=FMT        tsv (COPY's text format, the default), csv\n"
    "                          (COPY's) or jsonl (one JSON object per row)\n"
    "      --header            csv and tsv: a first line of column names\n"
    "  -A, --no-align          print as psql -A does: a header line, fields\n"
    "                          split by '|', and a \"(N rows)\" footer\n"
    "      --csv               print as psql --csv does (a header line)\n"
    "  -t, --tuples-only       -A and --csv: no header and no footer\n"
    "  -F, --field-separator=SEP   -A: between fields (default '|')\n"
    "  -R, --record-separator=SEP  -A: between records (default newline)\n"
    "  -z, --field-separator-zero  -A: a zero byte between fields\n"
    "  -0, --record-separator-zero -A: a zero byte between records\n"
    "  -P, --pset=VAR[=ARG]    as psql's: format=unaligned|csv, null=STR,\n"
    "                          fieldsep, recordsep, csv_fieldsep, footer,\n"
    "                          tuples_only, fieldsep_zero, recordsep_zero\n"
    "      --partition-on=COL  read the query as --partitions ranges of the\n"
    "                          key COL (numbers, dates, timestamps) at once,\n"
    "                          NULL keys apart; with --order-by COL in key\n"
    "                          order, else as the rows come\n"
    "      --partitions=K      ranges for --partition-on (default 4)\n"
    "      --listen=CHANNEL    print the notifications sent to CHANNEL\n"
    "                          (repeatable), as JSON Lines unless --format\n"
    "                          says otherwise, until interrupted or --limit\n"
    "      --changes=SLOT      print the changes committed to the tables of\n"
    "                          --publication, read from the logical\n"
    "                          replication slot SLOT, as JSON Lines, each\n"
    "                          transaction acknowledged once its lines are\n"
    "                          written; until interrupted or --limit\n"
    "      --publication=PUB   the publication --changes reads (repeatable)\n"
    "      --create-slot       create the --changes slot if it does not exist\n"
    "      --single-row        read rows in libpq's single-row mode; by\n"
    "                          default a query that COPY can run is read\n"
    "                          through COPY (q) TO STDOUT, at about half the\n"
    "                          client CPU, tsv and csv bytes as COPY writes\n"
    "  -o, --output=FILE       write to FILE instead of standard output\n"
    "  -j, --jobs=N            connections at once: queries run N at a time,\n"
    "                          their rows merged as they arrive (default 1;\n"
    "                          with --shard, one per query and shard)\n"
    "      --shard=CONNINFO    a server that runs every query (repeatable);\n"
    "                          the shards' rows are merged\n"
    "      --order-by=COL[:desc],...\n"
    "                          merge parallel rows in this order (each query\n"
    "                          must already ORDER BY the same)\n"
    "      --limit=N           stop after N rows (the queries are cancelled)\n"
    "      --timeout=SECONDS   cancel a query running longer (exit 4)\n"
    "      --progress          rows, rows/s, MB and time on stderr (default:\n"
    "                          when stderr is a terminal and the output not)\n"
    "      --no-progress       never\n"
    "  -q, --quiet             no progress, no server notices\n"
    "\n"
    "Into a table (COPY FROM, all rows or none):\n"
    "      --into-table=T      write the queries' rows into table T, or\n"
    "                          'T (col, ...)', instead of the output; each\n"
    "                          query's rows are one load, on the --into-db\n"
    "                          server (default: the -d server)\n"
    "      --into-db=DBNAME    the target's database name, connection string\n"
    "                          or URI, with -h -p -U as for -d\n"
    "      --from-file=FILE    load FILE ('-': standard input) into\n"
    "                          --into-table instead of running a query, in\n"
    "                          --format tsv (default) or csv; --header: its\n"
    "                          first line is a header (as psql's \\copy ...\n"
    "                          FROM FILE)\n"
    "  -X, --no-psqlrc         accepted, as psql's; pqstream reads no rc file\n"
    "  -?, --help              this help, then exit\n"
    "  -V, --version           the version, then exit\n"
    "\n"
    "Exit status, as psql's: 0 success, 1 an error of the tool's own (a bad\n"
    "option, a file it cannot read or write) or an SQL error in -c, 2 a\n"
    "connection that failed or was lost, 3 an SQL error in a -f script; and\n"
    "the tool's own: 4 --timeout, 130 interrupted (SIGINT), 143 terminated\n"
    "(SIGTERM). A reader that stops early (| head) is success.\n";

static int bad_usage(const char *fmt, const char *arg) {
  fputs("pqstream: ", stderr);
  fprintf(stderr, fmt, arg);
  fputs("\nTry 'pqstream --help' for more information.\n", stderr);
  return CLI_USAGE;
}

static int parse_number(const char *s, double min, double max, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

enum {
  OPT_FORMAT = 256,
  OPT_HEADER,
  OPT_SINGLE_ROW,
  OPT_LISTEN,
  OPT_CHANGES,
  OPT_PUBLICATION,
  OPT_CREATE_SLOT,
  OPT_PARTITION_ON,
  OPT_PARTITIONS,
  OPT_SHARD,
  OPT_ORDER_BY,
  OPT_LIMIT,
  OPT_TIMEOUT,
  OPT_PROGRESS,
  OPT_NO_PROGRESS,
  OPT_PARAM_NULL,
  OPT_PARAM,
  OPT_CSV,
  OPT_INTO_TABLE,
  OPT_INTO_DB,
  OPT_FROM_FILE,
  OPT_HELP
};

static const struct option longopts[] = {
    {"dbname", required_argument, NULL, 'd'},
    {"host", required_argument, NULL, 'h'},
    {"port", required_argument, NULL, 'p'},
    {"username", required_argument, NULL, 'U'},
    {"no-password", no_argument, NULL, 'w'},
    {"password", no_argument, NULL, 'W'},
    {"no-psqlrc", no_argument, NULL, 'X'},
    {"set", required_argument, NULL, 'v'},
    {"variable", required_argument, NULL, 'v'},
    {"single-transaction", no_argument, NULL, '1'},
    {"csv", no_argument, NULL, OPT_CSV},
    {"no-align", no_argument, NULL, 'A'},
    {"tuples-only", no_argument, NULL, 't'},
    {"field-separator", required_argument, NULL, 'F'},
    {"record-separator", required_argument, NULL, 'R'},
    {"field-separator-zero", no_argument, NULL, 'z'},
    {"record-separator-zero", no_argument, NULL, '0'},
    {"pset", required_argument, NULL, 'P'},
    {"command", required_argument, NULL, 'c'},
    {"file", required_argument, NULL, 'f'},
    {"param", required_argument, NULL, OPT_PARAM},
    {"param-null", no_argument, NULL, OPT_PARAM_NULL},
    {"format", required_argument, NULL, OPT_FORMAT},
    {"header", no_argument, NULL, OPT_HEADER},
    {"single-row", no_argument, NULL, OPT_SINGLE_ROW},
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"changes", required_argument, NULL, OPT_CHANGES},
    {"publication", required_argument, NULL, OPT_PUBLICATION},
    {"create-slot", no_argument, NULL, OPT_CREATE_SLOT},
    {"partition-on", required_argument, NULL, OPT_PARTITION_ON},
    {"partitions", required_argument, NULL, OPT_PARTITIONS},
    {"output", required_argument, NULL, 'o'},
    {"jobs", required_argument, NULL, 'j'},
    {"shard", required_argument, NULL, OPT_SHARD},
    {"order-by", required_argument, NULL, OPT_ORDER_BY},
    {"limit", required_argument, NULL, OPT_LIMIT},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"progress", no_argument, NULL, OPT_PROGRESS},
    {"no-progress", no_argument, NULL, OPT_NO_PROGRESS},
    {"quiet", no_argument, NULL, 'q'},
    {"into-table", required_argument, NULL, OPT_INTO_TABLE},
    {"into-db", required_argument, NULL, OPT_INTO_DB},
    {"from-file", required_argument, NULL, OPT_FROM_FILE},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0}};

static int parse(int argc, char **argv, cli_opts_t *o) {
  *o = (cli_opts_t){.dbname = NULL, .limit = -1, .progress = -1};
  for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
    if (strcmp(argv[i], "-?") ==
        0) { /* psql's help; getopt's '?' is an error */
      fputs(usage, stdout);
      exit(CLI_OK);
    }
  int c;
  double v;
  while ((c = getopt_long(argc, argv, "d:c:f:h:p:U:wWXv:1o:j:qVAtF:R:z0P:", longopts,
                          NULL)) != -1) {
    switch (c) {
    case 'd':
      o->dbname = optarg;
      break;
    case 'h':
      o->host = optarg;
      break;
    case 'p':
      o->port = optarg;
      break;
    case 'U':
      o->user = optarg;
      break;
    case 'w':
      o->no_password = 1;
      break;
    case 'W':
      o->force_password = 1;
      break;
    case 'X':
      break;
    case OPT_CSV: /* psql's (COPY's csv, for loading: see below) */
    case 'A':
      o->format = c == 'A' ? PQS_FORMAT_UNALIGNED : PQS_FORMAT_PSQL_CSV;
      o->format_given = 1;
      break;
    case 't':
      o->print.tuples_only = 1;
      break;
    case 'F':
      o->print.fieldsep = optarg;
      o->print.fieldsep_zero = 0;
      break;
    case 'R':
      o->print.recordsep = optarg;
      o->print.recordsep_zero = 0;
      break;
    case 'z':
      o->print.fieldsep_zero = 1;
      break;
    case '0':
      o->print.recordsep_zero = 1;
      break;
    case 'P':
      if (cli_pset(o, optarg) != CLI_OK)
        return CLI_USAGE;
      break;
    case 'c':
    case 'f':
      if (o->ntexts == CLI_MAX)
        return bad_usage("too many -c and -f (at most %s)", "64");
      if (c == 'f') {
        o->owned[o->ntexts] = cli_read_file(optarg);
        o->text_file[o->ntexts] =
            strcmp(optarg, "-") == 0 ? "<stdin>" : optarg;
      }
      o->texts[o->ntexts] = c == 'c' ? optarg : o->owned[o->ntexts];
      if (o->texts[o->ntexts++] == NULL)
        return CLI_USAGE;
      break;
    case 'v': {
      char *eq = strchr(optarg, '=');
      if (eq == NULL || eq == optarg)
        return bad_usage("-v takes NAME=VALUE, not '%s'", optarg);
      if (o->nvars == CLI_MAX)
        return bad_usage("too many variables (at most %s)", "64");
      *eq = '\0';
      o->var_names[o->nvars] = optarg;
      o->var_values[o->nvars++] = eq + 1;
      break;
    }
    case '1':
      o->single_transaction = 1;
      break;
    case OPT_PARAM:
    case OPT_PARAM_NULL:
      if (o->nparams == CLI_MAX)
        return bad_usage("too many parameters (at most %s)", "64");
      o->params[o->nparams++] = c == OPT_PARAM ? optarg : NULL;
      break;
    case OPT_FORMAT:
      if (strcmp(optarg, "tsv") == 0 || strcmp(optarg, "text") == 0)
        o->format = PQS_FORMAT_TSV;
      else if (strcmp(optarg, "csv") == 0)
        o->format = PQS_FORMAT_CSV;
      else if (strcmp(optarg, "jsonl") == 0)
        o->format = PQS_FORMAT_JSONL;
      else
        return bad_usage("unknown format '%s' (csv, tsv or jsonl)", optarg);
      o->format_given = 1;
      break;
    case OPT_SINGLE_ROW:
      o->single_row = 1;
      break;
    case OPT_PARTITION_ON:
      o->partition_on = optarg;
      break;
    case OPT_PARTITIONS: {
      char *end;
      long k = strtol(optarg, &end, 10);
      if (*end != '\0' || k < 1 || k > 64)
        return bad_usage("--partitions takes 1 to 64, not '%s'", optarg);
      o->partitions = (int)k;
      break;
    }
    case OPT_LISTEN:
      if (o->nlisten == CLI_MAX)
        return bad_usage("too many channels (at most %s)", "64");
      o->listen[o->nlisten++] = optarg;
      break;
    case OPT_CHANGES:
      o->changes = optarg;
      break;
    case OPT_PUBLICATION:
      if (o->npublications == CLI_MAX)
        return bad_usage("too many publications (at most %s)", "64");
      o->publications[o->npublications++] = optarg;
      break;
    case OPT_CREATE_SLOT:
      o->create_slot = 1;
      break;
    case OPT_HEADER:
      o->header = 1;
      break;
    case 'o':
      o->output = optarg;
      break;
    case 'j':
      if (parse_number(optarg, 1, 256, &v) != 0 || v != (int)v)
        return bad_usage("--jobs takes a whole number from 1 to 256, not '%s'",
                         optarg);
      o->jobs = (int)v;
      break;
    case OPT_SHARD:
      if (o->nshards == CLI_MAX)
        return bad_usage("too many shards (at most %s)", "64");
      o->shards[o->nshards++] = optarg;
      break;
    case OPT_ORDER_BY:
      o->order_by = optarg;
      break;
    case OPT_LIMIT:
      if (parse_number(optarg, 0, 9e18, &v) != 0 || v != (long long)v)
        return bad_usage("--limit takes a whole number, not '%s'", optarg);
      o->limit = (long long)v;
      break;
    case OPT_TIMEOUT:
      if (parse_number(optarg, 0.001, 4e6, &v) != 0)
        return bad_usage("--timeout takes seconds, not '%s'", optarg);
      o->timeout = v;
      break;
    case OPT_PROGRESS:
      o->progress = 1;
      break;
    case OPT_NO_PROGRESS:
      o->progress = 0;
      break;
    case 'q':
      o->quiet = 1;
      break;
    case OPT_INTO_TABLE:
      o->into_table = optarg;
      break;
    case OPT_INTO_DB:
      o->into_db = optarg;
      break;
    case OPT_FROM_FILE:
      o->from_file = optarg;
      break;
    case OPT_HELP:
      fputs(usage, stdout);
      exit(CLI_OK);
    case 'V':
      printf("pqstream %s (libpq %d, libuv %s)\n", PQS_VERSION_STRING,
             pqs_libpq_version(), uv_version_string());
      exit(CLI_OK);
    default: /* getopt said what was wrong */
      fputs("Try 'pqstream --help' for more information.\n", stderr);
      return CLI_USAGE;
    }
  }
  /* psql's positional [DBNAME [USERNAME]], where the options left them */
  if (optind < argc && o->dbname == NULL)
    o->dbname = argv[optind++];
  if (optind < argc && o->user == NULL)
    o->user = argv[optind++];
  if (optind < argc)
    return bad_usage("unexpected argument '%s'", argv[optind]);
  if (o->dbname == NULL)
    o->dbname = "";
  if ((o->into_db || o->from_file) && !o->into_table)
    return bad_usage("%s", "--into-db and --from-file need --into-table");
  if (o->into_table && o->format == PQS_FORMAT_PSQL_CSV)
    o->format = PQS_FORMAT_CSV; /* as \copy ... csv: COPY's */
  if (o->into_table && (o->nlisten > 0 || o->output != NULL))
    return bad_usage("%s", "--into-table writes into a table: it takes "
                           "neither --listen nor -o");
  if (o->into_table && (o->format != PQS_FORMAT_TSV &&
                        o->format != PQS_FORMAT_CSV))
    return bad_usage("%s", "--into-table reads and writes tsv or csv");
  if (o->from_file) {
    if (o->ntexts > 0 || o->nshards > 0 || o->partition_on || o->jobs > 1)
      return bad_usage("%s", "--from-file loads a file: it takes no query, "
                             "--shard, --partition-on or -j");
    return CLI_OK;
  }
  if ((o->npublications > 0 || o->create_slot) && o->changes == NULL)
    return bad_usage("%s", "--publication and --create-slot go with "
                           "--changes SLOT");
  if (o->changes != NULL) {
    if (o->ntexts > 0 || o->nshards > 0 || o->jobs > 1 ||
        o->single_transaction || o->nlisten > 0 || o->into_table ||
        o->partition_on)
      return bad_usage("%s", "--changes takes no query, -j, --shard, -1, "
                             "--listen, --into-table or --partition-on");
    if (o->npublications == 0)
      return bad_usage("%s", "--changes needs --publication PUB: the "
                             "tables whose changes it reads");
    if (!o->format_given)
      o->format = PQS_FORMAT_JSONL; /* changes as JSON Lines */
    return CLI_OK;
  }
  if (o->nlisten > 0) {
    if (o->ntexts > 0 || o->nshards > 0 || o->jobs > 1 || o->single_transaction)
      return bad_usage("%s", "--listen takes no query, -j, --shard or -1");
    if (!o->format_given)
      o->format = PQS_FORMAT_JSONL; /* notifications as JSON Lines */
    return CLI_OK;
  }
  if (o->ntexts == 0)
    return bad_usage("%s", "no query: give one with -c SQL or -f FILE");
  if (o->partitions && !o->partition_on)
    return bad_usage("%s", "--partitions needs --partition-on COLUMN");
  if (o->partition_on && !o->partitions)
    o->partitions = 4;
  if (o->partition_on &&
      (o->nshards > 0 || o->jobs > 1 || o->single_transaction))
    return bad_usage("%s", "--partition-on takes no --shard, -j or -1: it "
                           "opens a connection per range itself");
  if (o->single_transaction && (o->jobs > 1 || o->nshards > 0))
    return bad_usage("%s", "-1 runs one transaction: it takes neither -j "
                           "nor --shard");
  return cli_prepare(o);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "bench") == 0)
    return bench_main(argc - 1, argv + 1);
  cli_opts_t o;
  int rc = parse(argc, argv, &o);
  if (rc == CLI_OK) {
    o.may_prompt = !o.no_password && isatty(STDIN_FILENO);
    if (o.force_password && !o.no_password &&
        (o.password = cli_prompt_password(&o)) == NULL) {
      cli_say("%s", "-W: no terminal to read the password from");
      rc = CLI_USAGE;
    }
  }
  if (rc == CLI_OK)
    rc = o.from_file ? cli_load_file(&o) : cli_run(&o);
  /* As psql: the server wanted a password; ask once, and try again. */
  if (rc == CLI_CONNECT && o.wants_password &&
      (o.password = cli_prompt_password(&o)) != NULL) {
    o.may_prompt = 0;
    rc = o.from_file ? cli_load_file(&o) : cli_run(&o);
  }
  cli_opts_free(&o);
  return rc;
}
