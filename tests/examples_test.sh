#!/usr/bin/env bash
# The examples run against the test server and say what they should.
#   tests/examples_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
conn=${PQS_TEST_CONNINFO:?PQS_TEST_CONNINFO is not set: run through scripts/dev.sh test}
psql -q -v ON_ERROR_STOP=1 "$conn" -f "$src/examples/sample.sql" 2>/dev/null
out=$("$build/examples/stream_demo" "$conn")
echo "$out"
grep -q "second query on the same context: EBUSY" <<<"$out"
grep -q "200 rows (SELECT 200)" <<<"$out"
out=$("$build/examples/dashboard" "$conn")
echo "$out"
[ "$(grep -c ': EBUSY: ' <<<"$out")" = 2 ]
grep -q "invoices  17 rows" <<<"$out"
grep -q "parallel took" <<<"$out"
conn2=${PQS_TEST_CONNINFO2:?PQS_TEST_CONNINFO2 is not set: the test command starts a second server}
for i in 1 2; do
  c=$conn; [ $i = 2 ] && c=$conn2
  psql -q -v ON_ERROR_STOP=1 "$c" -c "DROP TABLE IF EXISTS ex_shard;
    CREATE TABLE ex_shard AS SELECT g AS k, md5(g::text) AS v
    FROM generate_series(1, 20000) g WHERE g % 2 = $((i - 1))" 2>/dev/null
done
got=$("$build/examples/scatter_gather" "SELECT k, v FROM ex_shard ORDER BY k" 0 "$conn" "$conn2" | md5sum)
want=$(psql -qAt -F $'\t' "$conn" -c "SELECT g, md5(g::text) FROM generate_series(1, 20000) g" | md5sum)
[ "$got" = "$want" ] || { echo "scatter_gather output differs from one server's ORDER BY" >&2; exit 1; }
echo "scatter_gather: same bytes as one server's ORDER BY"
# worker: woken by a NOTIFY, it does every job with a payload, in atomic
# batches, and stops when told to.
log=$(mktemp)
"$build/examples/worker" "$conn" >"$log" 2>&1 &
worker=$!
for _ in $(seq 1 100); do grep -q "listening on jobs" "$log" && break; sleep 0.1; done
sleep 1.2 # a round of nothing first: the next one is the NOTIFY's
psql -q -v ON_ERROR_STOP=1 "$conn" -c "INSERT INTO jobs (payload)
  SELECT CASE WHEN g % 10 = 0 THEN '' ELSE repeat('x', 1 + g % 7) END
  FROM generate_series(1, 250) g; NOTIFY jobs"
for _ in $(seq 1 100); do
  n=$(psql -qAt "$conn" -c "SELECT count(*) FROM results")
  [ "$n" = 225 ] && break
  sleep 0.1
done
psql -q "$conn" -c "NOTIFY jobs, 'stop'"
wait "$worker"
cat "$log"
[ "$n" = 225 ] || { echo "worker: $n results, want 225" >&2; exit 1; }
[ "$(psql -qAt "$conn" -c "SELECT count(*) FROM results r JOIN jobs j ON j.id = r.job_id WHERE r.len <> length(j.payload) OR NOT j.done")" = 0 ]
grep -q "woken by NOTIFY" "$log"
grep -q "stopped after" "$log"
rm -f "$log"

echo "examples: ok"
