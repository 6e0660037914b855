#!/usr/bin/env bash
# Two ranks on this machine: deepspeed-cpp (through build/bin/deepspeed) against PyTorch's
# DistributedDataParallel on Gloo (Debian's python3-torch), same model, batch 64 per rank,
# data, optimizer and steps; alternating, ROUNDS times each; prints medians and the ratio.
# Usage: bench/engine/ddp_compare.sh [STEPS] [ROUNDS]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${DS_BUILD_DIR:-$root/build}/bin"
steps="${1:-100}"; rounds="${2:-5}"
python="${DS_PYTHON:-/usr/bin/python3}"
cfg="$(mktemp --suffix=.json)"; trap 'rm -f "$cfg"' EXIT
cat > "$cfg" <<JSON
{"train_micro_batch_size_per_gpu": 64, "steps_per_print": 0,
 "optimizer": {"type": "AdamW", "params": {"lr": 0.001, "weight_decay": 0.0}}}
JSON
export OMP_NUM_THREADS=1
ours=(); theirs=()
for ((r = 0; r < rounds; r++)); do
  port=$((29700 + RANDOM % 200))
  ours+=("$("$bin/deepspeed" --num_gpus 2 --master_port "$port" "$bin/bench_engine" --mode train --steps "$steps" \
            --deepspeed_config "$cfg" 2>&1 | sed -n 's/.*samples_per_sec \([0-9.e+-]*\).*/\1/p' | head -1)")
  port=$((29700 + RANDOM % 200))
  pids=()
  out="$(mktemp)"
  for rank in 0 1; do
    RANK=$rank WORLD_SIZE=2 LOCAL_RANK=$rank MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$python" -u "$root/bench/engine/ddp_peer.py" "$steps" >> "$out" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  theirs+=("$(sed -n 's/^samples_per_sec \([0-9.e+-]*\)$/\1/p' "$out" | head -1)")
  rm -f "$out"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_ours=$(median "${ours[@]}"); m_theirs=$(median "${theirs[@]}")
echo "deepspeed-cpp, 2 ranks (Gloo):          ${m_ours} samples/s   (rounds: ${ours[*]})"
echo "PyTorch DDP, 2 ranks (Gloo, torch $("$python" -c 'import torch;print(torch.__version__)')): ${m_theirs} samples/s   (rounds: ${theirs[*]})"
awk -v a="$m_ours" -v b="$m_theirs" 'BEGIN {printf "ratio deepspeed-cpp / DDP: %.2fx\n", a / b}'
