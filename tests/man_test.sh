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
missing=0
for n in $names; do
  if ! grep -qw -- "$n" "$src"/man/*.3; then
    echo "not in any man page: $n" >&2
    missing=$((missing + 1))
  fi
done
[ "$missing" = 0 ] || { echo "$missing public functions have no man page" >&2; exit 1; }
echo "man pages: all $(wc -w <<<"$names") public functions appear"
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
fi
