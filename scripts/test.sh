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

sanitize=0
if [[ "${DS_SKIP_SANITIZE:-0}" != 1 && ($# -eq 0 || "${DS_SANITIZE:-0}" == 1) ]]; then
  if command -v "${DS_SAN_CXX:-clang++-14}" > /dev/null 2>&1; then
    sanitize=1
  else
    # The GPU machines have no clang and no package registry (setup.sh installs it on Debian).
    echo "test: ${DS_SAN_CXX:-clang++-14} not found: the sanitizer job and fuzzing are skipped" >&2
  fi
fi

san_pid=""
if ((sanitize)); then
  # The sanitizer job's build (clang, build-san/) needs nothing from build/, so it runs beside
  # the main build and CTest at the lowest CPU priority: it takes the time they leave a core
  # idle (links, a target's last file, tests waiting on other processes) and little else.
  # Its own session, so that an early exit of this script can stop all of it. A new session is
  # a new scheduling autogroup where Linux has them (sched_autogroup_enabled), and autogroups
  # share the CPU equally whatever their processes' nice values: the group gets nice 19 too
  # (set from inside the new session, /proc/self/autogroup).
  san_dir="${DS_SAN_BUILD_DIR:-$root/build-san}"
  mkdir -p "$san_dir"
  san_log="$san_dir/background-build.log"
  echo "test: building the sanitizer job in the background (log: $san_log)"
  # shellcheck disable=SC2016
  DS_SAN_BUILD_ONLY=1 setsid sh -c '(echo 19 > /proc/self/autogroup) 2> /dev/null; exec nice -n 19 "$0"' \
    "$root/scripts/sanitize.sh" > "$san_log" 2>&1 &
  san_pid=$!
  trap 'if [[ -n "$san_pid" ]]; then kill -- -"$san_pid" 2> /dev/null || true; fi' EXIT
fi

"$root/scripts/build.sh"
status=0
(cd "${DS_BUILD_DIR:-$root/build}" && ctest --output-on-failure -j "${DS_TEST_JOBS:-2}" --timeout 600 "$@") || status=1

if ((sanitize)); then
  san_status=0
  wait "$san_pid" || san_status=$?
  san_pid=""
  if ((san_status != 0)); then
    echo "test: the sanitizer build failed (exit $san_status); its log ($san_log) ends:" >&2
    tail -n 60 "$san_log" >&2
    status=1
  else
    "$root/scripts/sanitize.sh" || status=1
    "$root/scripts/fuzz.sh" || status=1
  fi
fi
exit $status
