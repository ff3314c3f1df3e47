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
echo "examples: ok"
