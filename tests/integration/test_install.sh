#!/usr/bin/env bash
# The library installs like a Debian library: `cmake --install` (what `make install` runs) into a
# scratch prefix puts headers, librsocket.so with its soname, librsocket.a, librsocket.pc, the
# CMake package, the programs and their man pages in place; then every example is built against the
# installed copy three ways (pkg-config shared, pkg-config --static, find_package(rsocket)) and run
# without arguments (a server such as example-rooms prints its usage and exits 2): what it prints
# and its status must match the build's. Examples that speak JSON use jansson, as users would.
set -euo pipefail
build=${RS_BUILD_DIR:-$(cd "$(dirname "$0")/../.." && pwd)/build}
src=${RS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
source "$(dirname "$0")/../lib.sh"

prefix=$work/prefix
DESTDIR= cmake --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 \
  || { cat "$work/install.log"; exit 1; }
libdir=$(ls -d "$prefix"/lib*/ | head -1); libdir=${libdir%/}

exists() { [ -e "$1" ] && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL missing $1"; }; }
for h in "$src"/include/rsocket/*.h; do exists "$prefix/include/rsocket/$(basename "$h")"; done
exists "$libdir/librsocket.a"
exists "$libdir/pkgconfig/librsocket.pc"
exists "$libdir/cmake/rsocket/rsocketConfig.cmake"
exists "$libdir/cmake/rsocket/rsocketConfigVersion.cmake"
for p in "$build"/bin/*; do
  name=$(basename "$p")
  case $name in example-*) continue ;; esac
  exists "$prefix/bin/$name"
  exists "$prefix/share/man/man1/$name.1"
done
check "soname" "librsocket.so.0" \
  "$(objdump -p "$libdir/librsocket.so" | awk '$1 == "SONAME" {print $2}')"
check "library symlink chain" "librsocket.so.0.1.0" "$(basename "$(readlink -f "$libdir/librsocket.so")")"
# Only the public API is exported from the shared library.
internal=$(nm -D --defined-only "$libdir/librsocket.so" | awk '{print $3}' | grep -v '^rs_' || true)
check "only rs_ symbols exported" "" "$internal"

# Sanitized builds need the sanitizer runtime in whatever links their library.
san=
grep -q '^RS_SANITIZE:BOOL=ON' "$build/CMakeCache.txt" && san="-fsanitize=address,undefined"
export PKG_CONFIG_PATH=$libdir/pkgconfig
check "pkg-config version" "$(awk -F'"' '/define RS_VERSION_STRING/ {print $2}' "$src/include/rsocket/common.h")" \
  "$(pkg-config --modversion librsocket)"

cat >"$work/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.20)
project(uses_rsocket C)
find_package(rsocket 0.1 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(JANSSON REQUIRED IMPORTED_TARGET jansson)
file(GLOB examples $src/examples/*.c)
foreach(ex \${examples})
  get_filename_component(name \${ex} NAME_WE)
  add_executable(\${name} \${ex})
  target_link_libraries(\${name} PRIVATE rsocket::rsocket PkgConfig::JANSSON)
  add_executable(\${name}_static \${ex})
  target_link_libraries(\${name}_static PRIVATE rsocket::rsocket_static PkgConfig::JANSSON)
endforeach()
CMAKE
CFLAGS="$san" LDFLAGS="$san" cmake -S "$work" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$work/cm.log" 2>&1 && cmake --build "$work/cm" >>"$work/cm.log" 2>&1 \
  && passes=$((passes + 1)) || { fails=$((fails + 1)); echo "FAIL find_package(rsocket) build"; cat "$work/cm.log"; }

# What an example prints (stdout and stderr) and its exit status.
run_example() { "$@" 2>&1; echo "exit $?"; }
json=$(pkg-config --cflags --libs jansson)
for ex in "$src"/examples/*.c; do
  name=$(basename "$ex" .c)
  want=$(run_example "$build/bin/example-${name//_/-}")
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Werror $san -o "$work/$name-shared" "$ex" $(pkg-config --cflags --libs librsocket) $json \
    && check "$name: pkg-config shared" "$want" "$(LD_LIBRARY_PATH=$libdir run_example "$work/$name-shared")" \
    || { fails=$((fails + 1)); echo "FAIL $name: pkg-config shared build"; }
  # (ldd into a variable: `ldd | grep -q` under pipefail fails when grep exits first: SIGPIPE)
  deps=$(ldd "$work/$name-shared" 2>&1 || true)
  case $deps in
    *"librsocket.so.0 => not found"* | *"librsocket.so.0 => $libdir"*) passes=$((passes + 1)) ;;
    *) fails=$((fails + 1)); echo "FAIL $name: not linked to librsocket.so.0: $deps" ;;
  esac
  # shellcheck disable=SC2046
  cc -std=c11 -Wall -Werror $san -o "$work/$name-static" "$ex" \
    $(pkg-config --static --cflags librsocket) "$libdir/librsocket.a" $(pkg-config --static --libs-only-l librsocket | sed 's/-lrsocket//') $json \
    && check "$name: pkg-config static" "$want" "$(run_example "$work/$name-static")" \
    || { fails=$((fails + 1)); echo "FAIL $name: pkg-config static build"; }
  if [ -x "$work/cm/$name" ]; then
    check "$name: find_package shared" "$want" "$(LD_LIBRARY_PATH=$libdir run_example "$work/cm/$name")"
    check "$name: find_package static" "$want" "$(run_example "$work/cm/${name}_static")"
  fi
done
finish test_install
