#!/usr/bin/env bash
# The sanitizer job. Builds the parts of deepspeed-cpp that need no LibTorch (the config
# reader, the launcher, the checkpoint manifest) with clang 14 under AddressSanitizer and
# UndefinedBehaviorSanitizer into build-san/ (tests/sanitize/CMakeLists.txt, which also builds
# the fuzz targets of scripts/fuzz.sh), then runs their unit tests and the launcher's
# multi-process tests there. Any sanitizer report, leak included, fails the run.
# DS_SAN_BUILD_DIR, DS_JOBS, DS_TEST_JOBS override the defaults; extra arguments go to ctest;
# DS_SAN_BUILD_ONLY=1 stops after the build (scripts/test.sh builds it beside the main build).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DS_SAN_BUILD_DIR:-$root/build-san}"
jobs="${DS_JOBS:-$(nproc)}"
export CCACHE_DIR="${CCACHE_DIR:-$root/.cache/ccache}"
# Symbolized reports (Debian's llvm-14 puts llvm-symbolizer outside PATH).
if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" && -x /usr/lib/llvm-14/bin/llvm-symbolizer ]]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  generator=()
  if command -v ninja > /dev/null 2>&1; then generator=(-G Ninja); fi
  # No build type: the project's own flags only (-O0, line tables, the sanitizers).
  CXX="${DS_SAN_CXX:-clang++-14}" cmake -S "$root/tests/sanitize" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=
fi
cmake --build "$build" -j "$jobs"
if [[ "${DS_SAN_BUILD_ONLY:-0}" == 1 ]]; then
  exit 0
fi
# abort_on_error: a report ends the process with SIGABRT, so no test can pass after one.
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1:check_initialization_order=1:strict_init_order=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
cd "$build"
ctest --output-on-failure -j "${DS_TEST_JOBS:-2}" --timeout 300 "$@"
