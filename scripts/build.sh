#!/usr/bin/env bash
# Configures (once) and builds deepspeed-cpp into build/ (binaries in build/bin/), with Ninja
# where it is installed. Extra arguments are passed to the CMake configure step, e.g.
# -DDS_BUILD_BENCH=OFF. DS_BUILD_TARGETS="a b" builds only those targets (and what they
# need) instead of everything.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DS_BUILD_DIR:-$root/build}"
jobs="${DS_JOBS:-$(nproc)}"
export CCACHE_DIR="${CCACHE_DIR:-$root/.cache/ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
# Precompiled headers and ccache: let ccache reuse objects built with a PCH.
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"
# shellcheck source=torch_source.sh
source "$root/scripts/torch_source.sh"
torch_args=()
if [[ -n "$ds_torch_prefix" ]]; then
  echo "build: LibTorch from $ds_torch_prefix"
  torch_args=(-DCMAKE_PREFIX_PATH="$ds_torch_prefix")
fi
generator=()
if [[ ! -f "$build/CMakeCache.txt" ]] && command -v ninja > /dev/null 2>&1; then
  # Ninja starts a target's files as soon as their own inputs are there (Make waits for every
  # library the target links), which keeps both cores busy through the whole build.
  generator=(-G Ninja)
fi
if [[ ! -f "$build/CMakeCache.txt" || $# -gt 0 ]]; then
  cmake -S "$root" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE="${DS_BUILD_TYPE:-RelWithDebInfo}" \
    "${torch_args[@]}" "$@"
fi
targets=()
for t in ${DS_BUILD_TARGETS:-}; do targets+=(--target "$t"); done
cmake --build "$build" -j "$jobs" "${targets[@]}"
