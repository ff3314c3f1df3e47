/* pqstream bench: stream throughput side by side with raw libpq.
 *
 * Every way runs in a child process of its own, so that each peak RSS is
 * its own, and the ways alternate over the runs, so that a noisy machine
 * hurts them alike. Ratios to the baselines are the point. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ways.h"

/* One way's run (in its child: bench_in_child). */
static int run_way(const bench_t *b, int way, sample_t *s) {
  int pqs_way = way == W_PQSTREAM || way == W_PQS_COPY || way == W_PQS_BIN ||
                way == W_PQS_COPY_BIN;
  return pqs_way          ? bench_run_pqstream(b, way, s)
         : way == W_PARTS ? bench_run_partitioned(b, s)
                          : bench_run_libpq(b, way, s);
}

/* Every way, every run, a different way first each run. */
static int measure_all(const bench_t *b, sample_t (*samples)[50]) {
  int on[NWAYS], n = 0;
  for (int w = 0; w < NWAYS; w++)
    if (bench_way_on(b, w))
      on[n++] = w;
  for (int r = 0; r < b->runs; r++)
    for (int k = 0; k < n; k++) {
      int w = on[(k + r) % n];
      if (bench_in_child(b, w, run_way, &samples[w][r]) != 0) {
        fprintf(stderr, "pqstream: bench: the %s run failed\n", bench_way_names[w]);
        return -1;
      }
      if (!b->json && isatty(STDERR_FILENO))
        fprintf(stderr, "\rrun %d/%d: %s done\033[K", r + 1, b->runs,
                bench_way_names[w]);
    }
  if (!b->json && isatty(STDERR_FILENO))
    fputs("\r\033[K", stderr);
  return 0;
}

/* ---- options ---- */

static const char bench_usage[] =
    "Usage: pqstream bench [OPTION]...\n"
    "Measure how fast a query streams through pqstream, side by side with raw\n"
    "libpq on the same query and server: PQexec (the whole result at once),\n"
    "single-row mode (a blocking loop), and COPY (query) TO STDOUT (whole\n"
    "lines, and split into fields). pqstream runs over its single-row source\n"
    "(pqstream) and its COPY source (pqstream_copy).\n"
    "\n"
    "  -d, --dbname=CONNINFO  the server (default: libpq's environment)\n"
    "  -c, --command=SQL      your own query (default: a generated one)\n"
    "      --rows=N           generated: rows (default 1000000)\n"
    "      --cols=N           generated: text columns besides id (default 3)\n"
    "      --width=N          generated: characters per column (default 32)\n"
    "      --runs=N           runs of each way (default 5)\n"
    "  -j, --jobs=K           pqstream: K parallel streams, merged (both\n"
    "                         sources)\n"
    "                         (generated query only; default 1)\n"
    "      --stages           pqstream: through a filter stage\n"
    "      --partitions=K     also the query read as K ranges of a key on K\n"
    "                         connections (pqstream_parts, over COPY), with\n"
    "                         the server's CPU count beside it\n"
    "      --partition-on=COL that key (default id)\n"
    "      --binary           also the binary ways: pqstream with binary\n"
    "                         results over both sources (pqstream_binary,\n"
    "                         pqstream_copy_bin), and raw libpq's binary\n"
    "                         single-row loop and binary COPY, decoded by "
    "hand\n"
    "                         (single_row_bin, copy_binary); every pqstream "
    "way\n"
    "                         then reads each field through the getter of its\n"
    "                         type; the generated query gets int4 and float8\n"
    "                         columns\n"
    "      --sink             pqstream's ways write TSV into /dev/null through\n"
    "                         a sink instead of reading fields (with --binary:\n"
    "                         each binary value's text made on the client)\n"
    "      --into             instead: the generated rows written into a\n"
    "                         table (bench_into) by pqs_copy_in, raw libpq's\n"
    "                         PQputCopyData loop, batches of INSERTs, a query\n"
    "                         piped by pqs_stream_into, and psql | psql\n"
    "      --into-db=CONNINFO where that table is (default: -d)\n"
    "      --changes          instead: --rows changes (inserts in 10\n"
    "                         transactions, then in one) read from a logical\n"
    "                         slot by pqstream --changes and by pg_recvlogical\n"
    "                         (pgoutput, the same publication); -d must have\n"
    "                         wal_level=logical\n"
    "      --small            instead: 20,000 small queries (a value, a key\n"
    "                         lookup in --rows rows, a three-table join) by\n"
    "                         raw libpq one at a time and pipelined (16,\n"
    "                         100), and by pqstream unnamed, prepared and\n"
    "                         pipelined (16, 100 a sync; 100 a sync each)\n"
    "      --json             machine-readable output\n"
    "The server's CPU per way is read from the backend's /proc/PID/stat when\n"
    "the server runs on this machine, and shown as n/a otherwise.\n";

int bench_main(int argc, char **argv) {
  bench_t b = {.conninfo = "",
               .rows = 1000000,
               .cols = 3,
               .width = 32,
               .runs = 5,
               .jobs = 1};
  static const struct option lo[] = {
      {"dbname", required_argument, NULL, 'd'},
      {"command", required_argument, NULL, 'c'},
      {"rows", required_argument, NULL, 'r'},
      {"cols", required_argument, NULL, 'C'},
      {"width", required_argument, NULL, 'w'},
      {"runs", required_argument, NULL, 'n'},
      {"jobs", required_argument, NULL, 'j'},
      {"stages", no_argument, NULL, 's'},
      {"json", no_argument, NULL, 'J'},
      {"binary", no_argument, NULL, 'B'},
      {"sink", no_argument, NULL, 'S'},
      {"into", no_argument, NULL, 'I'},
      {"into-db", required_argument, NULL, 'D'},
      {"changes", no_argument, NULL, 'G'},
      {"small", no_argument, NULL, 'Q'},
      {"partitions", required_argument, NULL, 'P'},
      {"partition-on", required_argument, NULL, 'O'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "d:c:j:h", lo, NULL)) != -1) {
    switch (c) {
    case 'd':
      b.conninfo = optarg;
      break;
    case 'c':
      b.query = optarg;
      break;
    case 'r':
      b.rows = atoll(optarg);
      break;
    case 'C':
      b.cols = atoi(optarg);
      break;
    case 'w':
      b.width = atoi(optarg);
      break;
    case 'n':
      b.runs = atoi(optarg);
      break;
    case 'j':
      b.jobs = atoi(optarg);
      break;
    case 's':
      b.stages = 1;
      break;
    case 'J':
      b.json = 1;
      break;
    case 'B':
      b.binary = 1;
      break;
    case 'S':
      b.sink = 1;
      break;
    case 'I':
      b.into = 1;
      break;
    case 'D':
      b.into_db = optarg;
      break;
    case 'G':
      b.changes = 1;
      break;
    case 'Q':
      b.small = 1;
      break;
    case 'P':
      b.partitions = atoi(optarg);
      break;
    case 'O':
      b.partition_on = optarg;
      break;
    case 'h':
      fputs(bench_usage, stdout);
      return BENCH_OK;
    default:
      fputs("Try 'pqstream bench --help' for more information.\n", stderr);
      return BENCH_USAGE;
    }
  }
  if (b.rows < 1 || b.cols < 0 || b.cols > 100 || b.width < 1 ||
      b.width > 100000 || b.runs < 1 || b.runs > 50 || b.jobs < 1 ||
      b.jobs > 16 || (b.query && b.jobs > 1) || optind < argc ||
      b.partitions < 0 || b.partitions > 64) {
    fputs("pqstream: bench: bad option value (see pqstream bench --help)\n",
          stderr);
    return BENCH_USAGE;
  }
  if (b.changes)
    return bench_changes(&b);
  if (b.small)
    return bench_small(&b);
  if (b.query == NULL) { /* streams from the server as it is generated */
    size_t size = 256 + (size_t)b.cols * 64;
    char *q = malloc(size), *gen = malloc(size);
    int n = sprintf(gen, b.binary ? "SELECT id, (id %%%% 100000)::int4 AS a, "
                                    "id * 1.37::float8 / 3 AS b"
                                  : "SELECT id");
    for (int i = 1; i <= b.cols; i++)
      n += sprintf(gen + n, ", lpad(id::text, %d, 'x') AS c%d", b.width, i);
    sprintf(gen + n, " FROM (SELECT generate_series(%%lld, %%lld)::int8 "
                     "AS id) g");
    sprintf(q, gen, 1LL, b.rows);
    b.query = q;
    b.generated = gen;
  }
  if (b.into) { /* its lines are the generated query's: no -c */
    if (b.generated == NULL) {
      fputs("pqstream: bench: --into writes the generated rows: no -c\n",
            stderr);
      return BENCH_USAGE;
    }
    int rc = bench_into(&b);
    free((char *)b.query);
    free(b.generated);
    return rc;
  }
  if (b.partition_on == NULL)
    b.partition_on = "id";
  b.server_cpus = bench_server_cpus(b.conninfo);
  static sample_t samples[NWAYS][50];
  int failed = measure_all(&b, samples) != 0;
  if (!failed)
    bench_report(&b, samples);
  if (b.generated) {
    free((char *)b.query);
    free(b.generated);
  }
  return failed ? BENCH_FAILED : BENCH_OK;
}
