#!/usr/bin/env bash
# Allocation failure anywhere in the process: libpq's, libuv's and the
# tool's, not only pqstream's own. Each scenario runs once under the shim
# (tests/support/oomshim.c) to count its allocations, then again with the
# k-th failing, in both modes (only the k-th; every one from the k-th on).
# Every run must end in one of:
#   - exit 0 with the right output (what the run without failures printed);
#   - a non-zero exit with a message on stderr (never a success: a
#     scenario whose right answer is an error may not exit 0);
#   - a crash inside libpq or libuv on its own failed allocation, in the
#     same call: theirs, listed apart.
# A contract the scenario checks itself (exit 3), any other crash, a hang
# (30 s) or a silent failure is a failure, printed with the failed
# allocation's call stack.
#
#   tests/oom_harness.sh BUILD_DIR [--full]
# Without --full (CI): every k of the first and last 50 (setting up and
# tearing down, where most paths differ), and 30 spread between (the
# per-row path, which repeats itself); 30 and 20 for the change streams.
# The change streams' scenarios need PQS_TEST_CONNINFO2, the logical
# server.
# Needs PQS_TEST_CONNINFO (scripts/dev.sh test starts the server).
set -uo pipefail
build=$(cd "${1:?usage: $0 BUILD_DIR [--full]}" && pwd)
full=${2:-}
[ "${PQS_OOM_FULL:-}" = 1 ] && full=--full
conn=${PQS_TEST_CONNINFO:?PQS_TEST_CONNINFO is not set: run through scripts/dev.sh test}
shim=$build/tests/liboomshim.so
scen=$build/tests/oom_scenario
cli=$build/tools/pqstream
for f in "$shim" "$scen" "$cli"; do
  [ -x "$f" ] || [ -f "$f" ] || { echo "missing $f: build with tests and tools" >&2; exit 1; }
done
work=$(mktemp -d /tmp/pqs-oom.XXXXXX)
trap 'rm -rf "$work"' EXIT

rows="SELECT g, md5(g::text) FROM generate_series(1, 300) g"
q() { echo "SELECT g FROM generate_series($1, 300, 3) g ORDER BY g"; }

# Each scenario runs its program with "$@" before it (the shim's
# environment), writes what it produced to $work/out and returns the
# program's exit status.
s_lib() { "$@" "$scen" lib "$conn" >"$work/out"; }
s_lib_copy() { "$@" "$scen" lib-copy "$conn" >"$work/out"; }
s_lib_binary() { "$@" "$scen" lib-binary "$conn" >"$work/out"; }
s_batch() { "$@" "$scen" batch "$conn" >"$work/out"; }
s_pipeline() { "$@" "$scen" pipeline "$conn" >"$work/out"; }
s_copy_in() { "$@" "$scen" copy-in "$conn" >"$work/out"; }
s_factory() { "$@" "$scen" factory "$conn" >"$work/out"; }
s_merge() { "$@" "$scen" merge "$conn" >"$work/out"; }
s_tool_tsv() {
  rm -f "$work/file.tsv"
  "$@" "$cli" -q -d "$conn" -c "$rows" -o "$work/file.tsv" >/dev/null
  local rc=$?
  cp "$work/file.tsv" "$work/out" 2>/dev/null || : >"$work/out"
  return $rc
}
s_tool_csv_pipe() {
  "$@" "$cli" -q -d "$conn" --format csv --header -c "$rows" | cat >"$work/out"
  return "${PIPESTATUS[0]}"
}
s_tool_error() {
  "$@" "$cli" -q -d "$conn" \
    -c "SELECT 1 / (150 - g) FROM generate_series(1, 300) g" >"$work/out"
}
s_tool_merge() {
  "$@" "$cli" -q -d "$conn" -j 3 --order-by g -c "$(q 1)" -c "$(q 2)" \
    -c "$(q 3)" >"$work/out"
}
# A file loaded into a table: the output is what the table holds, and a
# failed load that left rows behind breaks the contract (all or none).
s_tool_from_file() {
  if [ ! -f "$work/in.tsv" ]; then
    seq 1 300 | sed 's/$/\tline/' >"$work/in.tsv"
    psql -X -q -d "$conn" -c "DROP TABLE IF EXISTS oom_in" \
      -c "CREATE TABLE oom_in (g int, s text)" || return 1
  fi
  "$@" "$cli" -q -d "$conn" --into-table oom_in --from-file "$work/in.tsv"
  local rc=$?
  # What the run left, and the table emptied for the next one.
  psql -X -qAt -d "$conn" -c "SELECT count(*), sum(g) FROM oom_in" \
    -c "TRUNCATE oom_in" >"$work/out"
  # A COMMIT whose answer was lost is said to be unknown: either is right.
  if [ $rc -ne 0 ] && [ "$(cat "$work/out")" != "0|" ] &&
    ! grep -q "whether it committed is unknown" "$work/err" 2>/dev/null; then
    echo "a failed load left rows: $(cat "$work/out")" >&2
    return 3
  fi
  return $rc
}
# A script with meta-commands, psql's unaligned output, a COPY of the
# user's own and a \copy into a file: the output is stdout and the file.
s_tool_script() {
  [ -f "$work/script.sql" ] || cat >"$work/script.sql" <<SQL
\\set n 120
\\echo first :n
\\if :{?n}
SELECT g, md5(g::text) FROM generate_series(1, :n) g;
\\endif
COPY (SELECT g, 'x;y' FROM generate_series(1, 100) g) TO STDOUT (FORMAT csv, HEADER);
\\copy (SELECT g FROM generate_series(1, 50) g) TO '$work/copied.txt'
SQL
  rm -f "$work/copied.txt"
  "$@" "$cli" -q -d "$conn" -A -f "$work/script.sql" >"$work/out"
  local rc=$?
  cat "$work/copied.txt" >>"$work/out" 2>/dev/null
  return $rc
}
# Change streams on the logical server: a fresh slot SLOT before each run,
# then the same changes to oom_chg (120, and a truncate at the end if
# asked); outputs leave out what differs between runs (the positions,
# ids and times of the WAL written for them).
fresh_changes() {
  local c2=${PQS_TEST_CONNINFO2:?PQS_TEST_CONNINFO2 is not set: the logical server}
  local slot=$1 truncate=${2:-}
  if [ ! -f "$work/chg_ready" ]; then
    psql -X -q -d "$c2" -c "SET client_min_messages = warning" \
      -c "DROP PUBLICATION IF EXISTS oom_pub" -c "DROP TABLE IF EXISTS oom_chg" \
      -c "CREATE TABLE oom_chg (g int PRIMARY KEY, t text)" \
      -c "CREATE PUBLICATION oom_pub FOR TABLE oom_chg" >/dev/null || return 1
    touch "$work/chg_ready"
  fi
  # one psql, unless a run that died left its walsender on the slot
  local tries=0
  until psql -X -q -v ON_ERROR_STOP=1 -d "$c2" -c "SELECT \
      pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE \
      slot_name = '$slot'" -c "TRUNCATE oom_chg" \
      -c "SELECT pg_create_logical_replication_slot('$slot', 'pgoutput')" \
      -c "INSERT INTO oom_chg SELECT g, md5(g::text) FROM generate_series(1, 100) g" \
      -c "UPDATE oom_chg SET t = 'x' WHERE g <= 10" \
      -c "DELETE FROM oom_chg WHERE g > 90" \
      ${truncate:+-c "TRUNCATE oom_chg"} >/dev/null 2>&1; do
    tries=$((tries + 1))
    [ $tries -lt 20 ] || return 1
    psql -X -qAt -d "$c2" -c "SELECT pg_terminate_backend(active_pid) FROM \
      pg_replication_slots WHERE slot_name = '$slot' AND active" >/dev/null
    sleep 0.2
  done
}
s_lib_changes() {
  fresh_changes oom_lslot truncate || return 1
  "$@" "$scen" changes "$PQS_TEST_CONNINFO2 replication=database" >"$work/out"
}
s_tool_changes() {
  local c2=${PQS_TEST_CONNINFO2:?PQS_TEST_CONNINFO2 is not set: the logical server}
  fresh_changes oom_slot || return 1
  "$@" "$cli" -q -d "$c2" --changes oom_slot --publication oom_pub \
    --limit 120 | sed 's/"lsn":"[^"]*","commit_lsn":"[^"]*","xid":[0-9]*,"commit_time":"[^"]*",//' >"$work/out"
  return "${PIPESTATUS[0]}"
}
# The tool reads through the COPY source, so its scenarios cover COPY too.
scenarios=${PQS_OOM_ONLY:-"lib lib_copy lib_binary batch pipeline copy_in factory merge tool_tsv tool_csv_pipe tool_error tool_merge tool_from_file tool_script lib_changes tool_changes"}

# The library a frame of a report belongs to ("libpq", "libuv", ...).
lib_of() { sed -n 's|.*/\(lib[a-z0-9_]*\)[.-].*|\1|p' | head -1; }

# theirs REPORT: the failed allocation's caller and the crash are in the
# same one of libpq, libuv (or what libpq calls into for TLS and GSS).
theirs() {
  local report=$1 caller crash
  caller=$(sed -n '/^failed allocation:/,/^crash:/p' "$report" |
    grep -v -e oomshim -e 'libc\.so' -e '^failed' -e '^crash' | lib_of)
  case "$caller" in libpq | libuv | libssl | libcrypto | libgssapi_krb5 | libkrb5) ;;
  *) return 1 ;;
  esac
  sed -n '/^crash:/,$p' "$report" | grep -q "/$caller[.-]"
}

failures=0
for s in $scenarios; do
  # The reference: a run that counts and fails nothing.
  PQS_OOM_COUNT=$work/count timeout 60 bash -c "$(declare -f "s_$s"); \
    $(declare -p work conn scen cli rows); $(declare -f q fresh_changes); \
    s_$s env LD_PRELOAD=$shim" 2>"$work/err"
  ref=$?
  if [ $ref -ne 0 ] && [ "$s" != tool_error ]; then
    echo "oom: $s fails without any failure injected (exit $ref):" >&2
    cat "$work/err" >&2
    failures=$((failures + 1))
    continue
  fi
  cp "$work/out" "$work/ref"
  n=$(cat "$work/count")
  # A scenario whose every run costs a server round of setting up (a
  # change stream's slot) samples more thinly.
  edge=50 mid=30
  case "$s" in *changes) edge=30 mid=20 ;; esac
  ks=$(if [ "$full" = --full ] || [ "$n" -le $((2 * edge + mid)) ]; then
    seq 1 "$n"
  else
    seq 1 $edge
    seq $((n - edge + 1)) "$n"
    seq $((edge + 1)) $(((n - 2 * edge) / mid + 1)) $((n - edge))
  fi | sort -n | uniq)
  runs=0 ok=0 nomem=0 them=0 bad=0
  for sticky in 0 1; do
    for k in $ks; do
      runs=$((runs + 1))
      rm -f "$work/report"
      PQS_OOM_COUNT= timeout 30 bash -c "$(declare -f "s_$s"); \
        $(declare -p work conn scen cli rows); $(declare -f q fresh_changes); \
        s_$s env LD_PRELOAD=$shim PQS_OOM_AT=$k PQS_OOM_STICKY=$sticky \
        PQS_OOM_REPORT=$work/report" 2>"$work/err"
      rc=$?
      why=""
      if [ $rc -eq 124 ]; then
        why="hung (30 s)"
      elif [ -s "$work/report" ]; then
        if theirs "$work/report"; then
          them=$((them + 1))
          echo "oom: $s k=$k sticky=$sticky: crash inside $(sed -n '/^failed/,/^crash/p' "$work/report" | grep -v -e oomshim -e 'libc\.so' -e '^failed' -e '^crash' | lib_of) on its own failed allocation (theirs)"
          continue
        fi
        why="crashed"
      elif [ $rc -eq 3 ]; then
        why="broke the contract"
      elif [ $rc -eq 0 ] && [ $ref -ne 0 ]; then
        why="exited 0 where the right answer is an error"
      elif [ $rc -eq 0 ] && ! cmp -s "$work/out" "$work/ref"; then
        why="exited 0 with the wrong output"
      elif [ $rc -ne 0 ] && [ ! -s "$work/err" ]; then
        why="exited $rc without a word on stderr"
      fi
      if [ -n "$why" ]; then
        bad=$((bad + 1))
        echo "oom: FAIL $s k=$k sticky=$sticky: $why (exit $rc)" >&2
        sed 's/^/  stderr: /' "$work/err" | head -5 >&2
        [ -f "$work/report" ] && sed 's/^/  /' "$work/report" | head -40 >&2
      elif [ $rc -eq 0 ]; then
        ok=$((ok + 1))
      else
        nomem=$((nomem + 1))
      fi
    done
  done
  echo "oom: $s: $n allocations; $runs runs: $ok right, $nomem failed with a message, $them crashes of libpq/libuv's own, $bad failures"
  failures=$((failures + bad))
done

# Apart from the loop: libpq abandons a result mid-stream.
LD_PRELOAD=$shim timeout 60 "$scen" abandon "$conn" >"$work/out" 2>"$work/err"
rc=$?
if [ $rc -ne 0 ]; then
  echo "oom: FAIL abandon (exit $rc):" >&2
  cat "$work/err" >&2
  failures=$((failures + 1))
else
  echo "oom: abandon: $(cat "$work/out")"
fi

if [ $failures -ne 0 ]; then
  echo "$failures failed" >&2
  exit 1
fi
echo "oom: every scenario passed"
