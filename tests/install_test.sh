#!/usr/bin/env bash
# Installs the build into a temp prefix and builds a consumer two ways:
# CMake's find_package(pqstream) and pkg-config. Proves the package files.
#   tests/install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$1 src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/prefix" >/dev/null
mkdir -p "$tmp/app"
cat >"$tmp/app/main.c" <<'C'
#include <pqstream.h>
#include <string.h>
int main(void) {
  unsigned v = (PQS_VERSION_MAJOR << 16) | (PQS_VERSION_MINOR << 8) |
               PQS_VERSION_PATCH;
  return strcmp(pqs_err_name(PQS_EBUSY), "EBUSY") != 0 ||
         pqs_version() != v ||
         strcmp(pqs_version_string(), PQS_VERSION_STRING) != 0;
}
C
# The SONAME follows the policy: major.minor before 1.0.
so=$(ls "$tmp"/prefix/lib*/libpqstream.so.*.*.* 2>/dev/null ||
  ls "$tmp"/prefix/lib/*/libpqstream.so.*.*.* | head -1)
soname=$(objdump -p "$so" | awk '/SONAME/ {print $2}')
version=$(sed -n 's/^#define PQS_VERSION_STRING "\(.*\)"/\1/p' "$src/include/pqstream.h")
case "$version" in
0.*) want="libpqstream.so.${version%.*}" ;;
*) want="libpqstream.so.${version%%.*}" ;;
esac
[ "$soname" = "$want" ] || { echo "SONAME $soname, want $want" >&2; exit 1; }
echo "SONAME $soname: ok"
cat >"$tmp/app/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.16)
project(app C)
find_package(pqstream REQUIRED)
add_executable(app main.c)
target_link_libraries(app PRIVATE pqstream::pqstream)
CM
cmake -S "$tmp/app" -B "$tmp/app/build" -DCMAKE_PREFIX_PATH="$tmp/prefix" \
  >/dev/null
cmake --build "$tmp/app/build" >/dev/null
LD_LIBRARY_PATH="$tmp/prefix/lib:$tmp/prefix/lib/$(gcc -print-multiarch)" \
  "$tmp/app/build/app"
echo "find_package(pqstream): ok"
libdir=$(ls -d "$tmp"/prefix/lib*/pkgconfig | head -1)
PKG_CONFIG_PATH=$libdir cc "$tmp/app/main.c" -o "$tmp/app/pc" \
  $(PKG_CONFIG_PATH=$libdir pkg-config --cflags --libs pqstream)
LD_LIBRARY_PATH="$(dirname "$libdir")" "$tmp/app/pc"
echo "pkg-config pqstream: ok"
# The installed examples build from where they lie, with find_package and
# with pkg-config, on a pkg-config path that holds libpq and libuv and not
# Check: nothing a user's build reaches needs the test library.
ex=$tmp/prefix/share/doc/pqstream/examples
[ -f "$ex/worker.c" ] && [ -f "$ex/CMakeLists.txt" ] ||
  { echo "examples not installed under share/doc/pqstream/examples" >&2; exit 1; }
pcdir=$tmp/pc
mkdir -p "$pcdir"
for d in $(pkg-config --variable pc_path pkg-config | tr : ' '); do
  for f in "$d"/*.pc; do
    [ -e "$f" ] || continue
    case $(basename "$f") in check.pc | check-*.pc) continue ;; esac
    [ -e "$pcdir/$(basename "$f")" ] || ln -s "$f" "$pcdir/"
  done
done
export PKG_CONFIG_LIBDIR=$libdir:$pcdir
! pkg-config --exists check || { echo "Check is still on the path" >&2; exit 1; }
cmake -S "$ex" -B "$tmp/ex-build" -DCMAKE_PREFIX_PATH="$tmp/prefix" >/dev/null
cmake --build "$tmp/ex-build" >/dev/null
[ -x "$tmp/ex-build/worker" ] && [ -x "$tmp/ex-build/stream_demo" ]
echo "installed examples, find_package: ok"
cc "$ex/stream_demo.c" -o "$tmp/stream_demo_pc" $(pkg-config --cflags --libs pqstream)
[ -x "$tmp/stream_demo_pc" ]
echo "installed examples, pkg-config: ok"
unset PKG_CONFIG_LIBDIR
if [ -f "$build/tools/pqstream" ]; then
  "$tmp/prefix/bin/pqstream" --version | grep -q '^pqstream '
  [ -f "$tmp/prefix/share/man/man1/pqstream.1" ]
  echo "pqstream tool and man page: ok"
fi
# Static: pqstream's archive, with what pkg-config --static says it needs
# (libpq and libuv as Debian ships them: shared). The README's line.
pc() { PKG_CONFIG_PATH=$libdir pkg-config "$@" pqstream; }
cc "$tmp/app/main.c" -o "$tmp/app/static" $(pc --cflags) \
  "$(pc --variable=libdir)/libpqstream.a" $(pc --static --libs)
if ldd "$tmp/app/static" | grep -q libpqstream; then
  echo "the static link still needs libpqstream.so" >&2
  exit 1
fi
"$tmp/app/static"
echo "pkg-config --static pqstream: ok"
