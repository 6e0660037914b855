#!/usr/bin/env bash
# The GPT tables of docs/PERFORMANCE.md on this machine's GPUs (1, 2 and 4 when there are 4):
# 124M (micro batch 16) and 1.3B (micro batch 8), ours against DDP, and at 1.3B on 2 and 4
# GPUs ZeRO-3 against FSDP2 and ZeRO-1/2 against DDP. Expects a CUDA build in $DS_BUILD_DIR (default build/) with gpt_train and deepspeed.
# Logs and the tables go to $1 (default /tmp/gpt_bench).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${DS_BUILD_DIR:-$root/build}"
out="${1:-/tmp/gpt_bench}"
mkdir -p "$out"
gpus=$(nvidia-smi -L | grep -c '^GPU ')
counts=1
((gpus >= 2)) && counts=1,2
((gpus >= 4)) && counts=1,2,4
export PYTHONUNBUFFERED=1
python3 "$root/bench/gpt/run_gpt_bench.py" --build "$build" --model 124M --gpus "$counts" --stages 0,2 --peers ddp \
  --steps 30 --warmup_steps 10 --log_dir "$out" --out "$out/tables.md"
python3 "$root/bench/gpt/run_gpt_bench.py" --build "$build" --model 1.3B --micro_batch 8 --gpus "$counts" --stages 0 \
  --peers ddp --steps 16 --warmup_steps 6 --log_dir "$out" --out "$out/tables.md"
python3 "$root/bench/gpt/run_gpt_bench.py" --build "$build" --model 1.3B --micro_batch 8 --gpus "${counts#1,}" --stages 3,1,2 \
  --peers fsdp2,ddp --steps 12 --warmup_steps 4 --log_dir "$out" --out "$out/tables.md"
