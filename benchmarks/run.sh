#!/usr/bin/env bash
# Runs the three ways of bench_stream side by side over the same table and
# server, alternating them, and prints the medians with pqstream's ratio to
# the raw single-row loop. Ratios, not absolute numbers, are what carries
# from one noisy machine to another.
#
#   benchmarks/run.sh BUILD_DIR   (built with -DPQS_BUILD_BENCHMARKS=ON)
# Uses the server PQS_TEST_CONNINFO names, or else starts a throwaway one
# with tests/pg.sh and removes it at the end.
# Environment: BENCH_ROWS (5000000), BENCH_RUNS (5).
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
bin="$build/benchmarks/bench_stream"
rows=${BENCH_ROWS:-5000000}
runs=${BENCH_RUNS:-5}
out=$(mktemp)
pgdir=""
trap 'rm -f "$out"; [ -z "$pgdir" ] || "$(dirname "$0")/../tests/pg.sh" stop "$pgdir"' EXIT
if [ -z "${PQS_TEST_CONNINFO:-}" ]; then # run alone: a server of our own
  pgdir=$(mktemp -d -u /tmp/pqstream-bench.XXXXXX)
  "$(dirname "$0")/../tests/pg.sh" start "$pgdir"
  # shellcheck disable=SC1091
  . "$pgdir/env"
fi
conn=$PQS_TEST_CONNINFO

echo "loading $rows rows (id bigint, a int, b float8, s text of 32 chars)" >&2
psql -q -v ON_ERROR_STOP=1 "$conn" <<SQL
DROP TABLE IF EXISTS bench;
CREATE TABLE bench AS
SELECT g::bigint AS id, (g % 100000)::int AS a, g / 7.0::float8 AS b,
       md5(g::text) AS s
FROM generate_series(1, $rows) g;
VACUUM ANALYZE bench;
SQL
query="SELECT id, a, b, s FROM bench"
"$bin" single "$conn" "$query" >/dev/null # warm the server's cache

for i in $(seq 1 "$runs"); do
  # Rotate the order each run so no way always goes first.
  case $((i % 3)) in
  0) order="pqstream single exec" ;;
  1) order="single exec pqstream" ;;
  2) order="exec pqstream single" ;;
  esac
  for way in $order; do
    "$bin" "$way" "$conn" "$query" >>"$out"
  done
  echo "run $i/$runs done" >&2
done

# Medians per way, then ratios to the raw single-row loop.
awk -v runs="$runs" '
function median(way, key,   n, i, j, t, a) {
  n = 0
  for (i = 1; i <= cnt[way]; i++) a[++n] = val[way, i, key]
  for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
    if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
  split($1, w, "="); way = w[2]; k = ++cnt[way]
  for (f = 2; f <= NF; f++) { split($f, kv, "="); val[way, k, kv[1]] = kv[2] }
}
END {
  printf "\n%d runs each, medians (ratio to raw single-row loop)\n\n", runs
  printf "%-10s %10s %12s %9s %9s %10s %9s\n", "way", "wall s", "rows/s",
         "MB/s", "cpu s", "1st row ms", "peak RSS"
  for (wi = 1; wi <= 3; wi++) {
    way = (wi == 1 ? "pqstream" : wi == 2 ? "single" : "exec")
    wall[way] = median(way, "wall"); cpu[way] = median(way, "cpu")
    rows = val[way, 1, "rows"]; bytes = val[way, 1, "bytes"]
    printf "%-10s %10.3f %12.0f %9.1f %9.3f %10.2f %7.1fMB\n", way, wall[way],
           rows / wall[way], bytes / wall[way] / 1e6, cpu[way],
           median(way, "ttfr_ms"), median(way, "rss_kb") / 1024
    rss[way] = median(way, "rss_kb")
  }
  tp = wall["single"] / wall["pqstream"]
  cr = cpu["pqstream"] / cpu["single"]
  printf "\npqstream vs raw single-row loop: throughput %.3fx (target >= 0.95), " \
         "client CPU %.3fx (target <= 1.10), peak RSS %.1f MB (target < 16)\n",
         tp, cr, rss["pqstream"] / 1024
  printf "pqstream vs PQexec whole result: throughput %.3fx, peak RSS %.2fx\n",
         wall["exec"] / wall["pqstream"], rss["pqstream"] / rss["exec"]
}' "$out"

# The merge's per-row cost: K streams merged against the same K consumed
# separately, alternating in one process.
echo
echo "merge: K streams merged vs the same K streams consumed separately"
"$(dirname "$bin")/bench_merge" "$conn" "$runs"
