#!/usr/bin/env bash
# Two ranks on this machine: deepspeed-cpp (through build/bin/deepspeed) against PyTorch's
# DistributedDataParallel on Gloo (Debian's python3-torch), same model, batch 64 per rank,
# data, optimizer and steps; alternating, ROUNDS times each; prints medians and the ratio.
# DDP runs twice a round: as shipped, and with glibc's malloc set by GLIBC_TUNABLES the way
# our engine sets it on the CPU (src/runtime/host_malloc_settings.h), which separates what the
# allocator setting gives from the rest.
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
same_malloc="glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
ddp_round() {  # $1: GLIBC_TUNABLES for the peer ("" for glibc's defaults)
  local port=$((29700 + RANDOM % 200)) out pids=()
  out="$(mktemp)"
  for rank in 0 1; do
    GLIBC_TUNABLES="$1" RANK=$rank WORLD_SIZE=2 LOCAL_RANK=$rank MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$python" -u "$root/bench/engine/ddp_peer.py" "$steps" >> "$out" 2>&1 &
    pids+=($!)
  done
  wait "${pids[@]}"
  sed -n 's/^samples_per_sec \([0-9.e+-]*\)$/\1/p' "$out" | head -1
  rm -f "$out"
}
ours=(); theirs=(); theirs_malloc=()
for ((r = 0; r < rounds; r++)); do
  port=$((29700 + RANDOM % 200))
  ours+=("$("$bin/deepspeed" --num_gpus 2 --master_port "$port" "$bin/bench_engine" --mode train --steps "$steps" \
            --deepspeed_config "$cfg" 2>&1 | sed -n 's/.*samples_per_sec \([0-9.e+-]*\).*/\1/p' | head -1)")
  theirs+=("$(ddp_round "")")
  theirs_malloc+=("$(ddp_round "$same_malloc")")
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
m_ours=$(median "${ours[@]}"); m_theirs=$(median "${theirs[@]}"); m_theirs_malloc=$(median "${theirs_malloc[@]}")
echo "deepspeed-cpp, 2 ranks (Gloo):          ${m_ours} samples/s   (rounds: ${ours[*]})"
echo "PyTorch DDP, 2 ranks (Gloo, torch $("$python" -c 'import torch;print(torch.__version__)')): ${m_theirs} samples/s   (rounds: ${theirs[*]})"
awk -v a="$m_ours" -v b="$m_theirs" 'BEGIN {printf "ratio deepspeed-cpp / DDP: %.2fx\n", a / b}'
echo "PyTorch DDP, same malloc settings:       ${m_theirs_malloc} samples/s   (rounds: ${theirs_malloc[*]})"
awk -v a="$m_ours" -v b="$m_theirs_malloc" 'BEGIN {printf "ratio deepspeed-cpp / DDP with the same malloc settings: %.2fx\n", a / b}'
