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
int main(void) { return strcmp(pqs_err_name(PQS_EBUSY), "EBUSY") != 0; }
C
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
if [ -f "$build/tools/pqstream" ]; then
  "$tmp/prefix/bin/pqstream" --version | grep -q '^pqstream '
  [ -f "$tmp/prefix/share/man/man1/pqstream.1" ]
  echo "pqstream tool and man page: ok"
fi
