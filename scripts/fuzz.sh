#!/usr/bin/env bash
# Short, bounded libFuzzer runs of the targets in tests/fuzz/ (built into build-san/ by
# tests/sanitize; this script builds them if needed), each starting from its checked-in seed
# corpus tests/fuzz/corpus/<target>/, which it never modifies: new inputs go to
# build-san/fuzz/corpus/<target>/. A crash, sanitizer report, leak, slow input or excessive
# memory fails the script and leaves the reproducer in build-san/fuzz/artifacts/; replay it
# with `build-san/bin/<target> <file>`.
#   scripts/fuzz.sh                      every target, DS_FUZZ_SECONDS (default 10) each
#   DS_FUZZ_SECONDS=600 scripts/fuzz.sh fuzz_config
# Two targets run at a time (DS_FUZZ_JOBS).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${DS_SAN_BUILD_DIR:-$root/build-san}"
seconds="${DS_FUZZ_SECONDS:-10}"
parallel="${DS_FUZZ_JOBS:-2}"
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(fuzz_config fuzz_hostfile fuzz_resource_filter fuzz_world_info fuzz_manifest)
fi
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  generator=()
  if command -v ninja > /dev/null 2>&1; then generator=(-G Ninja); fi
  CXX="${DS_SAN_CXX:-clang++-14}" CCACHE_DIR="${CCACHE_DIR:-$root/.cache/ccache}" \
    cmake -S "$root/tests/sanitize" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=
fi
CCACHE_DIR="${CCACHE_DIR:-$root/.cache/ccache}" cmake --build "$build" -j "${DS_JOBS:-$(nproc)}" --target "${targets[@]}"

# Symbolized reports (Debian's llvm-14 puts llvm-symbolizer outside PATH).
if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" && -x /usr/lib/llvm-14/bin/llvm-symbolizer ]]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi
mkdir -p "$build/fuzz/artifacts" "$build/fuzz/logs"
run_one() {
  local t="$1" corpus="$build/fuzz/corpus/$1"
  mkdir -p "$corpus"
  # -timeout: one input taking this long is a finding (a hang); -rss_limit_mb: so is memory.
  # -entropic=0: in runs this short its bookkeeping costs more than its scheduling gains
  # (62 % of fuzz_config's time in a profile; half the executions per second).
  "$build/bin/$t" "$corpus" "$root/tests/fuzz/corpus/$t" -max_total_time="$seconds" -timeout=10 -entropic=0 \
    -rss_limit_mb=2048 -artifact_prefix="$build/fuzz/artifacts/$t-" -print_final_stats=1 \
    >"$build/fuzz/logs/$t.log" 2>&1
}
failed=()
declare -A pid_of
for t in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= parallel)); do wait -n || true; done
  run_one "$t" &
  pid_of[$t]=$!
done
for t in "${targets[@]}"; do
  if wait "${pid_of[$t]}"; then
    echo "fuzz: $t: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second' "$build/fuzz/logs/$t.log" || echo done), no findings"
  else
    failed+=("$t")
    echo "fuzz: $t FAILED; its log ($build/fuzz/logs/$t.log) ends:"
    tail -n 40 "$build/fuzz/logs/$t.log"
  fi
done
if ((${#failed[@]} > 0)); then
  echo "fuzz: findings in ${failed[*]}; reproducers in $build/fuzz/artifacts/" >&2
  exit 1
fi
