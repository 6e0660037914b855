#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (CTest), then the
# sanitizer job (scripts/sanitize.sh) and short fuzzing runs (scripts/fuzz.sh); it fails if
# any of the three fails. Tests that need a GPU carry the label `gpu` and skip visibly where
# none is present. Extra arguments go to ctest (e.g. -R config, -L unit) and make it a quick
# run: the sanitizer job and fuzzing then run only with DS_SANITIZE=1. DS_SKIP_SANITIZE=1
# leaves them out of a full run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
status=0
(cd "${DS_BUILD_DIR:-$root/build}" && ctest --output-on-failure -j "${DS_TEST_JOBS:-2}" --timeout 600 "$@") || status=1
if [[ "${DS_SKIP_SANITIZE:-0}" != 1 && ($# -eq 0 || "${DS_SANITIZE:-0}" == 1) ]]; then
  if command -v "${DS_SAN_CXX:-clang++-14}" > /dev/null 2>&1; then
    "$root/scripts/sanitize.sh" || status=1
    "$root/scripts/fuzz.sh" || status=1
  else
    # The GPU machines have no clang and no package registry (setup.sh installs it on Debian).
    echo "test: ${DS_SAN_CXX:-clang++-14} not found: the sanitizer job and fuzzing are skipped" >&2
  fi
fi
exit $status
