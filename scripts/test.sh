#!/usr/bin/env bash
# The test command: installs what is missing, builds, and runs every test (CTest).
# Tests that need a GPU carry the label `gpu` and skip visibly where none is present.
# Extra arguments go to ctest (e.g. -R config, -L unit).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/setup.sh"
"$root/scripts/build.sh"
cd "${DS_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "${DS_TEST_JOBS:-2}" --timeout 600 "$@"
