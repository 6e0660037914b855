#!/usr/bin/env bash
# The pipeline bubble table of docs/PERFORMANCE.md: for S stages (one CPU rank each) and M
# micro batches, the median train_batch time against the 1F1B ideal (M + S - 1) x one stage's
# forward+backward of one micro batch.
#   bench/pipe/run_bubble.sh [BUILD_DIR] [WORK] [extra bench_pipe_bubble arguments]
# WORK: sleep (default; each stage waits as for an accelerator) or compute.
set -euo pipefail
build=${1:-build}
work=${2:-sleep}
shift $(( $# > 2 ? 2 : $# )) || true
bin="$build/bin/bench_pipe_bubble"
[[ -x "$bin" ]] || { echo "run_bubble.sh: $bin is not built (cmake --build $build --target bench_pipe_bubble)" >&2; exit 1; }
stages_list=${DS_BUBBLE_STAGES:-"2 4"}
micro_list=${DS_BUBBLE_MICRO_BATCHES:-"4 8 16"}
echo "| S | M | stage fwd+bwd (ms) | ideal (M+S-1)·t (ms) | step (ms) | step / ideal |"
echo "| --- | --- | --- | --- | --- | --- |"
for S in $stages_list; do
  for M in $micro_list; do
    port=$((21000 + RANDOM % 9000))
    out=$(mktemp)
    pids=()
    for ((r = 0; r < S; r++)); do
      RANK=$r LOCAL_RANK=$r WORLD_SIZE=$S LOCAL_SIZE=$S MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
        "$bin" --micro_batches "$M" --work "$work" "$@" > "$out.$r" 2>&1 &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || { echo "run_bubble.sh: a rank failed:" >&2; cat "$out".* >&2; exit 1; }; done
    line=$(grep '^{"stages"' "$out.0")
    rm -f "$out" "$out".*
    python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(f\"| {d['stages']} | {d['micro_batches']} | {d['stage_ms']:.2f} | {d['ideal_ms']:.1f} | {d['step_ms']:.1f} | {d['ratio']:.3f} |\")" "$line"
  done
done
