/* The table of ways: their names, and which of them a run measures. */
#include "ways.h"

const char *const bench_way_names[NWAYS] = {
    "pqstream",    "pqstream_copy",  "single_row",      "exec",
    "copy",        "copy_split",     "pqstream_binary", "pqstream_copy_bin",
    "copy_binary", "single_row_bin", "pqstream_parts"};

int bench_way_on(const bench_t *b, int w) {
  if (w >= W_PQS_BIN && w <= W_SINGLE_BIN)
    return b->binary;
  return w != W_PARTS || b->partitions;
}

