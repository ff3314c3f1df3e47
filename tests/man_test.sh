#!/usr/bin/env bash
# The manual pages: every public function of the header appears in one of
# them (the header is the source of truth), and each page renders without
# a warning. With BUILD_DIR, the installed copies are checked too.
#   tests/man_test.sh SOURCE_DIR [BUILD_DIR]
set -euo pipefail
src=$1 build=${2:-}
command -v man >/dev/null || { echo "man is missing: apt-get install man-db" >&2; exit 1; }
pages=("$src"/man/*.3 "$src"/tools/pqstream.1)
# Functions: PQS_EXTERN declarations, the inline pqs_p_* helpers, macros.
names=$( (grep -oE '^PQS_EXTERN [^(]*\(' "$src/include/pqstream.h" |
  grep -oE 'pqs_[a-z0-9_]+\($' | tr -d '('
  grep -oE 'static inline pqs_param_t pqs_p_[a-z0-9_]+' "$src/include/pqstream.h" |
  awk '{print $NF}'
  grep -oE '^#define pqs_[a-z0-9_]+\(' "$src/include/pqstream.h" |
  sed 's/#define //; s/($//') | sort -u)
# Each function is named in exactly one group page's NAME line (its third
# line), which is what man pqs_FUNCTION opens once installed.
named=$(for p in "$src"/man/*.3; do
  sed -n 3p "$p" | sed 's/ \\- .*//' | tr ',' '\n' | tr -d ' '
done)
missing=0
for n in $names; do
  in=$(grep -cx -- "$n" <<<"$named" || true)
  if [ "$in" != 1 ]; then
    echo "named in $in NAME lines, not one: $n" >&2
    missing=$((missing + 1))
  fi
done
[ "$missing" = 0 ] || { echo "$missing public functions lack their man page" >&2; exit 1; }
echo "man pages: all $(wc -w <<<"$names") public functions named once"
for p in "${pages[@]}"; do
  warn=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null || true)
  [ -z "$warn" ] || { echo "$p: $warn" >&2; exit 1; }
done
echo "man pages: ${#pages[@]} render without warnings"
if [ -n "$build" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cmake --install "$build" --prefix "$tmp" >/dev/null
  for p in "$src"/man/*.3; do
    [ -f "$tmp/share/man/man3/$(basename "$p")" ] ||
      { echo "not installed: $(basename "$p")" >&2; exit 1; }
  done
  echo "man pages: installed under share/man/man3"
  for n in $names; do
    page=$(man -M "$tmp/share/man" -w "$n" 2>/dev/null) ||
      { echo "man $n: no page after the install" >&2; exit 1; }
    sed -n 3p "$page" | grep -qw -- "$n" ||
      { echo "man $n opens $page, which does not name it" >&2; exit 1; }
  done
  echo "man pages: man FUNCTION opens its page for every public function"
fi
