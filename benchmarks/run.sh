#!/usr/bin/env bash
# The benchmark: 5,000,000 rows (id bigint, a int, b float8, s text of 32
# characters) read through pqstream and, in the same run, through raw
# libpq (single-row loop, PQexec, COPY, COPY split into fields), pqstream
# over both its sources, each way in a process of its own,
# alternating; medians with pqstream's ratios to each baseline. Then the
# per-row cost of merging K streams. Ratios, not absolute numbers, are what
# carries from one noisy machine to another.
#
#   benchmarks/run.sh BUILD_DIR   (built with -DPQS_BUILD_BENCHMARKS=ON)
# Uses the server PQS_TEST_CONNINFO names, or else starts a throwaway one
# with tests/pg.sh and removes it at the end.
# Environment: BENCH_ROWS (5000000), BENCH_RUNS (5).
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR}
here=$(cd "$(dirname "$0")" && pwd)
rows=${BENCH_ROWS:-5000000}
runs=${BENCH_RUNS:-5}
pgdir=""
trap '[ -z "$pgdir" ] || "$here/../tests/pg.sh" stop "$pgdir"' EXIT
if [ -z "${PQS_TEST_CONNINFO:-}" ]; then # run alone: a server of our own
  pgdir=$(mktemp -d -u /tmp/pqstream-bench.XXXXXX)
  "$here/../tests/pg.sh" start "$pgdir"
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
"$build/tools/pqstream" -d "$conn" -c "SELECT count(*) FROM bench" \
  >/dev/null # warm the server's cache

echo
echo "targets: pqstream against the single-row loop: rows/s >= 0.95x,"
echo "client CPU <= 1.10x; pqstream_copy against copy_split: client CPU"
echo "<= 1.15x, and against pqstream <= 0.5x; peak RSS under 16 MB"
"$build/tools/pqstream" bench -d "$conn" -c "SELECT id, a, b, s FROM bench" \
  --runs "$runs"

echo
echo "binary results (every pqstream way through the typed getters): server"
echo "CPU <= 0.7x and wall <= 0.8x the text single-row way, client CPU <="
echo "the text way's; pqstream_copy_bin within 1.15x of copy_binary's CPU."
echo "single_row_bin vs single_row: what binary saves the server, any client"
"$build/tools/pqstream" bench -d "$conn" -c "SELECT id, a, b, s FROM bench" \
  --runs "$runs" --binary
echo
echo "float-heavy: 10 float8 columns, 2,000,000 rows (target: binary wall"
echo "<= 0.6x text)"
psql -q -v ON_ERROR_STOP=1 "$conn" <<SQL
DROP TABLE IF EXISTS floats;
CREATE TABLE floats AS
SELECT g * 1.1::float8 AS f1, g * 1.2::float8 / 7 AS f2, g * 1.3::float8 / 11
       AS f3, g * 1.4::float8 / 13 AS f4, g * 1.5::float8 / 17 AS f5,
       g * 1.6::float8 / 19 AS f6, g * 1.7::float8 / 23 AS f7,
       g * 1.8::float8 / 29 AS f8, g * 1.9::float8 / 31 AS f9,
       sqrt(g::float8) AS f10
FROM generate_series(1, 2000000) g;
VACUUM ANALYZE floats;
SQL
"$build/tools/pqstream" bench -d "$conn" -c "SELECT * FROM floats" \
  --runs "$runs" --binary

echo
echo "merge: K streams merged vs the same K streams consumed separately"
"$build/benchmarks/bench_merge" "$conn" "$runs"
echo
echo "the same over the COPY source (target: K=4 merged <= 1.10x one stream)"
"$build/benchmarks/bench_merge" "$conn" "$runs" copy

echo
echo "writes: a batch of 10,000 inserts, against raw libpq's pipeline and"
echo "against one pqs_exec per row"
"$build/benchmarks/bench_batch" "$conn" 10000 "$runs"

echo
echo "the tool against psql, both writing COPY's text to /dev/null"
q="SELECT id, a, b, s FROM bench"
for i in 1 2 3; do
  TIMEFORMAT="pqstream: %R s wall, %U s user, %S s sys"
  time "$build/tools/pqstream" -d "$conn" -c "$q" >/dev/null
  TIMEFORMAT="psql:     %R s wall, %U s user, %S s sys"
  time psql "$conn" -c "COPY ($q) TO STDOUT" >/dev/null
done
