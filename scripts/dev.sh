#!/usr/bin/env bash
# The one entry point for people and CI. On a fresh Debian 12 machine it
# installs what is missing, builds, starts a throwaway PostgreSQL 15 (removed
# again on exit, also on failure or Ctrl-C), and then:
#
#   scripts/dev.sh demo              loads sample data and runs the demos
#   scripts/dev.sh test              runs every Check suite through CTest
#   scripts/dev.sh test --sanitize   built with ASan + UBSan: every suite
#                                    in one mode, the parsers, mutation
#                                    and allocation-failure tests
#   scripts/dev.sh test --tsan       built with ThreadSanitizer: the
#                                    suites whose code has threads
#   scripts/dev.sh test --oom        the whole-process allocation-failure
#                                    harness, every k (CI runs a sample)
#   scripts/dev.sh bench             the benchmark (see benchmarks/run.sh)
#
# Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

mode=${1:-}
variant=${2:-}
case "$variant" in
"" | --sanitize | --tsan | --oom) ;;
*) echo "unknown option: $variant" >&2; exit 2 ;;
esac
case "$mode" in
demo | test | bench) ;;
*) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac

say() { printf '\n== %s\n' "$*" >&2; }

packages=(build-essential cmake pkg-config libpq-dev libuv1-dev check
  libsubunit-dev postgresql-15 postgresql-client-15 man-db pgbouncer)

# A hot standby of the first server, for the replica tests.
start_standby() {
  say "starting a hot standby of it"
  pgstandby=$(mktemp -d -u /tmp/pqstream-standby.XXXXXX)
  "$root/tests/pg.sh" standby "$pgstandby" "$pgdir"
  # shellcheck disable=SC1091
  . "$pgstandby/env"
  export PQS_TEST_STANDBY_DIR PQS_TEST_STANDBY_PORT PQS_TEST_STANDBY_CONNINFO
}

# PgBouncer in transaction mode in front of the first server, for the
# prepared statements' test with the cache off.
start_pgbouncer() {
  say "starting PgBouncer (transaction mode) in front of it"
  pgbouncer=$(mktemp -d -u /tmp/pqstream-pgbouncer.XXXXXX)
  "$root/tests/pg.sh" pgbouncer "$pgbouncer" "$pgdir"
  # shellcheck disable=SC1091
  . "$pgbouncer/env"
  export PQS_TEST_PGBOUNCER_CONNINFO
}

install_missing() {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
      missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing: ${missing[*]}"
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    </dev/null >/dev/null
}

# Every option is given each time: the build directories are shared
# between commands, and CMake's cache would keep the last command's.
build() {
  local dir=$1
  shift
  say "building in $dir"
  cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPQS_WERROR=ON \
    "$@" >/dev/null
  cmake --build "$dir" -j "$(nproc)" >/dev/null
}

pgdir=""
pgdir2=""
pgstandby=""
pgbouncer=""
cleanup() {
  for d in "$pgbouncer" "$pgstandby" "$pgdir" "$pgdir2"; do
    [ -n "$d" ] && "$root/tests/pg.sh" stop "$d" || true
  done
  pgdir=""
  pgdir2=""
  pgstandby=""
  pgbouncer=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

start_server() {
  say "starting a throwaway PostgreSQL"
  pgdir=$(mktemp -d -u /tmp/pqstream-pg.XXXXXX)
  "$root/tests/pg.sh" start "$pgdir"
  # shellcheck disable=SC1091
  . "$pgdir/env"
}

# A second cluster, for the scatter-gather tests (a table split by key
# between two servers) and the change streams' (wal_level=logical).
start_second_server() {
  say "starting a second throwaway PostgreSQL"
  pgdir2=$(mktemp -d -u /tmp/pqstream-pg2.XXXXXX)
  "$root/tests/pg.sh" start "$pgdir2" logical # change streams read it too
  PQS_TEST_CONNINFO2=$(. "$pgdir2/env" && echo "$PQS_TEST_CONNINFO")
  export PQS_TEST_CONNINFO2
}

install_missing
case "$mode" in
demo)
  build build -DPQS_SANITIZE=OFF -DPQS_TSAN=OFF -DPQS_BUILD_TESTS=OFF \
    -DPQS_BUILD_EXAMPLES=ON -DPQS_BUILD_TOOLS=ON -DPQS_ASSERTS=OFF
  start_server
  psql -q -v ON_ERROR_STOP=1 "$PQS_TEST_CONNINFO" -f examples/sample.sql
  say "running examples/stream_demo"
  build/examples/stream_demo "$PQS_TEST_CONNINFO"
  say "running examples/dashboard"
  build/examples/dashboard "$PQS_TEST_CONNINFO"
  ;;
test)
  case "$variant" in
  --sanitize)
    dir=build-asan
    build $dir -DPQS_SANITIZE=ON -DPQS_TSAN=OFF -DPQS_BUILD_TESTS=ON \
      -DPQS_BUILD_EXAMPLES=ON -DPQS_BUILD_TOOLS=ON -DPQS_ASSERTS=ON
    # A small quarantine: the memory-bound tests measure RSS, and the
    # default 256 MB of freed blocks held back would be ASan's, not ours.
    export ASAN_OPTIONS=detect_leaks=1:quarantine_size_mb=16
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    # The same code again over another source or format finds nothing
    # new under ASan: the plain pass runs every mode (tests/CMakeLists.txt).
    select=(-LE modes)
    ;;
  --tsan)
    dir=build-tsan
    build $dir -DPQS_TSAN=ON -DPQS_SANITIZE=OFF -DPQS_BUILD_TESTS=ON \
      -DPQS_BUILD_EXAMPLES=ON -DPQS_BUILD_TOOLS=ON -DPQS_ASSERTS=ON
    # tests/tsan.supp: only the false reports of libuv's raw close(2)
    export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/tsan.supp"
    select=(-L threads)
    ;;
  *)
    dir=build
    build $dir -DPQS_SANITIZE=OFF -DPQS_TSAN=OFF -DPQS_BUILD_TESTS=ON \
      -DPQS_BUILD_EXAMPLES=ON -DPQS_BUILD_TOOLS=ON -DPQS_ASSERTS=ON
    select=()
    ;;
  esac
  if [ "$variant" = --oom ]; then
    start_server
    say "allocation failure at every k ($dir)"
    PQS_OOM_FULL=1 ctest --test-dir "$dir" --output-on-failure \
      --timeout 7200 --no-tests=error -R '^oom'
    exit 0
  fi
  start_server
  start_second_server
  start_standby
  start_pgbouncer
  say "running the suites ($dir)"
  # --no-tests=error: a build without the suites must not pass
  # One suite a core: the suites wait on the server more than they
  # compute, and none may depend on having the machine to itself.
  ctest --test-dir "$dir" --output-on-failure --timeout 900 --no-tests=error \
    -j "$(nproc)" "${select[@]}"
  ;;
bench)
  build build-bench -DPQS_BUILD_BENCHMARKS=ON -DPQS_BUILD_TESTS=OFF \
    -DCMAKE_BUILD_TYPE=Release
  start_server
  benchmarks/run.sh build-bench
  ;;
esac
