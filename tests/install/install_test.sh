#!/usr/bin/env bash
# Installs the build into a temporary prefix, builds tests/fixtures/install_consumer against it with
# find_package(DeepSpeed), and runs it. $3: more of CMAKE_PREFIX_PATH (the LibTorch of a wheel).
set -euo pipefail
build_dir="$1"; source_dir="$2"; prefix_path="${3:-}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/include/deepspeed/deepspeed.h"
test -f "$work/prefix/include/deepspeed/version.h"
cmake -S "$source_dir/tests/fixtures/install_consumer" -B "$work/build" -DCMAKE_PREFIX_PATH="$work/prefix${prefix_path:+;$prefix_path}" \
  ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} > "$work/configure.log"
cmake --build "$work/build" -j 2 > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/build/consumer"
