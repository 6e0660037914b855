#!/usr/bin/env bash
# The sparse attention op on one GPU, in one go (docs/PERFORMANCE.md, "Sparse attention"):
# builds what it needs (CUDA for sm_90), runs its GPU tests, times it against
# dense scaled_dot_product_attention at seq 4096, 8192 and 16384 (16 heads of 64, bf16), and
# trains the GPT example (124M) at seq 8192 with sparse attention (DS_GPT_MODES="sparse dense"
# adds the same run with dense attention; DS_GPT_MODES="" none, and then
# DS_BUILD_TARGETS="sparse_attention_gpu_test sparse_attention_bench" builds no more than the op).
# Logs and results go to the folder given (default build/sparse_attention_gpu).
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/build/sparse_attention_gpu}"
mkdir -p "$out"
cd "$root"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
export DS_BUILD_TARGETS="${DS_BUILD_TARGETS:-sparse_attention_gpu_test sparse_attention_bench gpt_train}"
export DS_JOBS="${DS_JOBS:-$(nproc)}"
start=$(date +%s)
if ! timeout 420 scripts/build.sh -DCMAKE_CUDA_ARCHITECTURES=90 -DDS_BUILD_BENCH=ON > "$out/build.log" 2>&1; then
  tail -60 "$out/build.log"
  exit 1
fi
echo "build: $(( $(date +%s) - start )) s"
grep -E "ops built" "$out/build.log"

timeout 120 build/bin/sparse_attention_gpu_test 2>&1 | tee "$out/gpu_test.log" |
  grep -E "OK|FAILED|Failure|error|PASSED|SKIPPED|dense" | cut -c1-300 | head -60

timeout 120 build/bin/sparse_attention_bench --seq 4096 8192 16384 2>&1 | tee "$out/bench.jsonl"
timeout 120 python3 bench/peers/sparse_attention_peer.py --seq 4096 8192 16384 2>&1 | tee -a "$out/bench.jsonl"

# A token file with a period of 977 tokens: the next token is predictable, so the loss falls.
# The dense run takes the same config without its sparse_attention section.
work="$(mktemp -d)"
python3 -c "import numpy as np; (np.arange(1 << 22) % 977).astype(np.uint16).tofile('$work/tokens.bin')"
python3 -c "import json; c = json.load(open('bench/sparse_attention/ds_config_gpt_sparse.json')); \
c.pop('sparse_attention'); json.dump(c, open('$work/dense.json', 'w'))"
for mode in ${DS_GPT_MODES-sparse}; do
  config=bench/sparse_attention/ds_config_gpt_sparse.json
  [[ $mode == dense ]] && config="$work/dense.json"
  timeout 150 build/bin/gpt_train --model 124M --seq_len 8192 --steps 30 --warmup_steps 5 --log_interval 5 \
    --data "$work/tokens.bin" --deepspeed_config "$config" > "$out/gpt_$mode.log" 2>&1
  grep -E "^step|tokens_per_s|error" "$out/gpt_$mode.log" | cut -c1-400
done
