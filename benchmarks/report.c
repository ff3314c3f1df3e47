/* Samples into medians [min .. max] per way, and the ratios of the
 * medians of each way to its baselines: text, or JSON with --json. */
#include <stdio.h>
#include <stdlib.h>

#include "ways.h"

/* The ratios reported: way against baseline. */
static const int pairs[][2] = {
    {W_PQSTREAM, W_SINGLE},       {W_PQSTREAM, W_EXEC},
    {W_PQSTREAM, W_COPY},         {W_PQS_COPY, W_COPY_SPLIT},
    {W_PQS_COPY, W_PQSTREAM},     {W_PQS_COPY, W_COPY},
    {W_PQS_BIN, W_PQSTREAM},      {W_PQS_BIN, W_SINGLE},
    {W_PQS_COPY_BIN, W_COPY_BIN}, {W_PQS_COPY_BIN, W_PQS_COPY},
    {W_PQS_COPY_BIN, W_PQSTREAM}, {W_PQS_BIN, W_SINGLE_BIN},
    {W_SINGLE_BIN, W_SINGLE},     {W_PARTS, W_PQS_COPY}};
#define NPAIRS ((int)(sizeof(pairs) / sizeof(pairs[0])))

typedef struct {
  double median, min, max;
} stat_t;

static stat_t stat_of(double *v, int n) {
  double median = bench_median(v, n); /* sorts v */
  return (stat_t){median, v[0], v[n - 1]};
}

enum { M_ROWS_S, M_MB_S, M_FIRST, M_RSS, M_CPU, M_SERVER_CPU, NMETRICS };
static const char *metric_names[NMETRICS] = {"rows_per_s",   "mb_per_s",
                                             "first_row_ms", "peak_rss_kb",
                                             "cpu_s",        "server_cpu_s"};

static double metric(const sample_t *s, int m) {
  switch (m) {
  case M_ROWS_S:
    return s->rows / s->secs;
  case M_MB_S:
    return s->bytes / s->secs / 1e6;
  case M_FIRST:
    return s->first_ms;
  case M_CPU:
    return s->cpu_s;
  case M_SERVER_CPU:
    return s->server_cpu_s;
  default:
    return s->rss_kb;
  }
}

void bench_report(const bench_t *b, sample_t (*samples)[50]) {
  stat_t st[NWAYS][NMETRICS];
  for (int w = 0; w < NWAYS; w++)
    for (int m = 0; m < NMETRICS && bench_way_on(b, w); m++) {
      double v[50];
      for (int r = 0; r < b->runs; r++)
        v[r] = metric(&samples[w][r], m);
      st[w][m] = stat_of(v, b->runs);
    }
  if (b->json) {
    printf("{\"query\": \"");
    for (const char *p = b->query; *p; p++)
      printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
    printf("\", \"runs\": %d, \"jobs\": %d, \"stages\": %s, \"rows\": %.0f, "
           "\"ways\": {",
           b->runs, b->jobs, b->stages ? "true" : "false",
           samples[W_PQSTREAM][0].rows);
    for (int w = 0, first = 1; w < NWAYS; w++) {
      if (!bench_way_on(b, w))
        continue;
      printf("%s\"%s\": {", first ? "" : ", ", bench_way_names[w]);
      first = 0;
      for (int m = 0; m < NMETRICS; m++)
        printf("%s\"%s\": {\"median\": %.3f, \"min\": %.3f, \"max\": %.3f}",
               m ? ", " : "", metric_names[m], st[w][m].median, st[w][m].min,
               st[w][m].max);
      printf("}");
    }
    printf("}, \"server_cpus\": %d, \"ratios\": {", b->server_cpus);
    for (int i = 0, first = 1; i < NPAIRS; i++) {
      int a = pairs[i][0], w = pairs[i][1];
      if (!bench_way_on(b, a) || !bench_way_on(b, w))
        continue;
      printf("%s\"%s_vs_%s\": {\"rows_per_s\": %.3f, \"mb_per_s\": "
             "%.3f, \"first_row_ms\": %.3f, \"peak_rss_kb\": %.3f, "
             "\"cpu_s\": %.3f",
             first ? "" : ", ", bench_way_names[a], bench_way_names[w],
             st[a][M_ROWS_S].median / st[w][M_ROWS_S].median,
             st[a][M_MB_S].median / st[w][M_MB_S].median,
             st[a][M_FIRST].median / st[w][M_FIRST].median,
             st[a][M_RSS].median / st[w][M_RSS].median,
             st[a][M_CPU].median / st[w][M_CPU].median);
      if (st[a][M_SERVER_CPU].min >= 0 && st[w][M_SERVER_CPU].min > 0)
        printf(", \"server_cpu_s\": %.3f",
               st[a][M_SERVER_CPU].median / st[w][M_SERVER_CPU].median);
      printf("}");
      first = 0;
    }
    printf("}}\n");
    return;
  }
  printf("%.0f rows, %d runs each, median [min .. max]\n\n",
         samples[W_PQSTREAM][0].rows, b->runs);
  printf("%-17s %28s %21s %21s %21s %21s %21s\n", "way", "rows/s", "MB/s",
         "first row ms", "peak RSS MB", "client CPU s", "server CPU s");
  for (int w = 0; w < NWAYS; w++) {
    if (!bench_way_on(b, w))
      continue;
    printf("%-17s", bench_way_names[w]);
    for (int m = 0; m < NMETRICS; m++) {
      double k = m == M_RSS ? 1024 : 1;
      if (m == M_SERVER_CPU && st[w][m].min < 0) {
        printf(" %21s", "n/a");
        continue;
      }
      printf(m == M_ROWS_S                     ? " %9.0f [%7.0f..%7.0f]"
             : m == M_CPU || m == M_SERVER_CPU ? " %6.2f [%5.2f..%5.2f]"
                                               : " %6.1f [%5.1f..%5.1f]",
             st[w][m].median / k, st[w][m].min / k, st[w][m].max / k);
    }
    printf("\n");
  }
  printf("\nratios of the medians:\n");
  for (int i = 0; i < NPAIRS; i++) {
    int a = pairs[i][0], w = pairs[i][1];
    if (!bench_way_on(b, a) || !bench_way_on(b, w))
      continue;
    printf("  %-17s vs %-17s %6.3fx rows/s  %6.3fx client CPU  %6.3fx "
           "memory",
           bench_way_names[a], bench_way_names[w],
           st[a][M_ROWS_S].median / st[w][M_ROWS_S].median,
           st[a][M_CPU].median / st[w][M_CPU].median,
           st[a][M_RSS].median / st[w][M_RSS].median);
    if (st[a][M_SERVER_CPU].min >= 0 && st[w][M_SERVER_CPU].min > 0)
      printf("  %6.3fx server CPU",
             st[a][M_SERVER_CPU].median / st[w][M_SERVER_CPU].median);
    printf("\n");
  }
  if (!(st[W_SINGLE][M_SERVER_CPU].min >= 0))
    printf("\nserver CPU: n/a (read from the backend's /proc/PID/stat, so "
           "only when the server runs on this machine)\n");
  else
    printf("\nserver CPU: the backend's user+system time over the way, from "
           "its /proc/PID/stat\n");
  if (b->binary)
    printf("--binary: every pqstream way reads each field through the getter "
           "of its type\n");
  if (b->partitions) {
    if (b->server_cpus > 0)
      printf("\nthe server has %d CPUs; %d partitions can use at most that "
             "many\n",
             b->server_cpus, b->partitions);
    else
      printf("\nthe server's CPU count is unknown (read from its "
             "/proc/cpuinfo, which needs a superuser and Linux)\n");
  }
}

