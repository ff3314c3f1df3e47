/* pqstream bench: how fast a query streams through pqstream, side by
 * side with raw libpq on the same query and server. `pqstream bench` is
 * this directory's entry point (bench.c); the ways are a table (ways.c)
 * and a file of each kind (ways_pqstream.c over the public API,
 * ways_libpq.c over libpq alone); report.c turns samples into medians
 * and ratios. */
#ifndef PQS_BENCH_WAYS_H
#define PQS_BENCH_WAYS_H

#include <pqstream.h>
#include <stdint.h>
#include <string.h>

/* pqstream over each of its sources, then raw libpq's ways. copy_split
 * is the COPY loop that also splits each line into fields in place, as a
 * program reading COPY by hand must: the baseline of the COPY source. */
enum {
  W_PQSTREAM,
  W_PQS_COPY,
  W_SINGLE,
  W_EXEC,
  W_COPY,
  W_COPY_SPLIT,
  W_PQS_BIN,      /* --binary only: pqstream, binary results */
  W_PQS_COPY_BIN, /* its COPY source, COPY (FORMAT binary) */
  W_COPY_BIN,     /* raw binary COPY, fields decoded by hand */
  W_SINGLE_BIN,   /* raw single-row loop, binary results decoded by hand */
  W_PARTS,        /* --partitions K only */
  NWAYS
};
extern const char *const bench_way_names[NWAYS];

typedef struct {
  double rows, bytes, secs, first_ms, rss_kb, cpu_s;
  double server_cpu_s; /* the backend's, from /proc; -1 if unknown */
} sample_t;

typedef struct {
  const char *conninfo, *query;
  long long rows;
  int cols, width, runs, jobs, stages, json;
  int partitions;           /* --partitions K: the partitioned way too */
  const char *partition_on; /* its key; "id" */
  int server_cpus;          /* -1: unknown */
  int binary; /* --binary: the binary ways, and typed getters throughout */
  int sink;   /* --sink: pqstream's ways write TSV to /dev/null instead */
  int into;            /* --into: the ways that write into a table */
  const char *into_db; /* --into-db: their target; NULL: the -d server */
  int changes;         /* --changes: a slot's changes consumed */
  int small;           /* --small: many small queries */
  char *generated;
} bench_t;


/* Exit codes of bench_main, as the tool's (tools/cli.h). */
enum { BENCH_OK = 0, BENCH_USAGE = 1, BENCH_FAILED = 1 };

/* bench.c: `pqstream bench ARGS...` (argv[0] is "bench"). */
int bench_main(int argc, char **argv);

/* bench_into.c: --into, every way of writing rows into a table. */
int bench_into(const bench_t *b);
/* bench_changes.c: `pqstream bench --changes`. */
int bench_changes(const bench_t *b);
/* bench_small.c: `pqstream bench --small`. */
int bench_small(const bench_t *b);

/* ways.c: whether a run measures way `w`. */
int bench_way_on(const bench_t *b, int w);

/* server_cpu.c: a local backend's CPU seconds (-1: not known), and the
 * server's CPU count (-1: not known). */
double bench_backend_cpu(int pid);
void bench_server_cpu_since(sample_t *s, const int *pids, const double *at,
                            int n);
int bench_server_cpus(const char *conninfo);

/* ways_pqstream.c and ways_libpq.c: one run of a way into *s; 0 or -1. */
int bench_run_pqstream(const bench_t *b, int way, sample_t *s);
int bench_run_partitioned(const bench_t *b, sample_t *s);
int bench_run_libpq(const bench_t *b, int way, sample_t *s);

/* child.c: one run of `way` by `run` in a child process of its own, its
 * CPU and peak RSS (with what it waited for) from the kernel; 0 or -1. */
typedef int (*bench_way_fn)(const bench_t *b, int way, sample_t *s);
int bench_in_child(const bench_t *b, int way, bench_way_fn run, sample_t *s);
/* The median of v[0..n) (sorted in place). */
double bench_median(double *v, int n);

/* report.c: medians, ranges and ratios, as text or JSON. */
void bench_report(const bench_t *b, sample_t (*samples)[50]);

static inline double bench_now(void) { return uv_hrtime() / 1e9; }

/* A value read: its bytes counted, and the first row's time kept. */
static inline void bench_touch(sample_t *s, double t0, const char *v,
                               size_t len) {
  (void)v;
  if (s->rows == 0 && s->first_ms == 0)
    s->first_ms = (bench_now() - t0) * 1000;
  s->bytes += len;
}

#endif
