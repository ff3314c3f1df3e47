#!/usr/bin/env bash
# Every manual page's EXAMPLES program compiles (-Wall -Wextra -Werror)
# against the installed library, runs against the test server, and prints
# what the page says it prints. The program and its output are read back
# out of the page's roff (\e is a backslash, \- a minus, \& a guard).
#   tests/man_examples.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1 build=$2
conn=${PQS_TEST_CONNINFO:?PQS_TEST_CONNINFO is not set: run through scripts/dev.sh test}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
libdir=$(dirname "$(ls -d "$tmp"/prefix/lib*/pkgconfig "$tmp"/prefix/lib/*/pkgconfig 2>/dev/null | head -1)")
export PKG_CONFIG_PATH=$libdir/pkgconfig
# block N PAGE: the N-th .nf/.fi block after .SH EXAMPLES, as plain text.
block() {
  awk -v want="$1" '
    /^\.SH / { inex = ($2 == "EXAMPLES") }
    inex && /^\.nf$/ { n++; if (n == want) { on = 1; next } }
    on && /^\.fi$/ { exit }
    on { print }' "$2" |
    sed -e 's/^\\&//' -e 's/\\-/-/g' -e 's/\\e/\\/g'
}
pages=0
for page in "$src"/man/*.3; do
  grep -q '^\.SH EXAMPLES' "$page" || continue
  name=$(basename "$page" .3)
  block 1 "$page" >"$tmp/$name.c"
  [ -s "$tmp/$name.c" ] || { echo "$name: EXAMPLES has no program" >&2; exit 1; }
  cc -Wall -Wextra -Werror "$tmp/$name.c" -o "$tmp/$name" \
    $(pkg-config --cflags --libs pqstream) ||
    { echo "$name: the EXAMPLES program does not compile" >&2; exit 1; }
  # change streams need the second server, whose wal_level is logical
  run_on=$conn
  if [ "$name" = pqstream_changes ]; then
    run_on=${PQS_TEST_CONNINFO2:?PQS_TEST_CONNINFO2 is not set: the changes page runs on the logical server}
  fi
  LD_LIBRARY_PATH=$libdir timeout 60 "$tmp/$name" "$run_on" >"$tmp/$name.out" ||
    { echo "$name: the EXAMPLES program failed (exit $?)" >&2; exit 1; }
  if grep -q '^It prints:' "$page"; then
    block 2 "$page" >"$tmp/$name.want"
    diff -u "$tmp/$name.want" "$tmp/$name.out" ||
      { echo "$name: the program does not print what the page says" >&2; exit 1; }
  fi
  pages=$((pages + 1))
done
# The README's first program, as its first screen shows it.
awk '/^```c$/ { on = 1; next } on && /^```$/ { exit } on { print }' \
  "$src/README.md" >"$tmp/readme.c"
cc -Wall -Wextra -Werror "$tmp/readme.c" -o "$tmp/readme" \
  $(pkg-config --cflags --libs pqstream) ||
  { echo "README: its first program does not compile" >&2; exit 1; }
LD_LIBRARY_PATH=$libdir timeout 60 "$tmp/readme" "$conn" >"$tmp/readme.out" ||
  { echo "README: its first program failed" >&2; exit 1; }
[ "$(head -1 "$tmp/readme.out")" = EBUSY ] && [ "$(wc -l <"$tmp/readme.out")" = 5 ] &&
  [ "$(tail -1 "$tmp/readme.out")" = "SELECT 3" ] ||
  { echo "README: its first program does not print what the README says:" >&2
    cat "$tmp/readme.out" >&2; exit 1; }
echo "README: its first program compiles and prints what it says"
# Every group page has one (the overview pqstream(3) points to them).
groups=$(ls "$src"/man/pqstream_*.3 | wc -l)
[ "$pages" = "$groups" ] ||
  { echo "$pages of $groups group pages have an EXAMPLES program" >&2; exit 1; }
echo "man examples: $pages programs compile, run and print what their pages say"
