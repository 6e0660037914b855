#!/usr/bin/env bash
# Inference on one GPU, in one go (docs/PERFORMANCE.md, "Inference"): builds what it needs
# (CUDA for sm_90), shows ds_report's transformer_inference row, runs the inference GPU test,
# then inference_bench and the transformers peer (bench/peers/hf_generate_peer.py, eager and
# torch.compile) back to back, and prints one markdown table. Logs and JSON lines go to the
# folder given (default build/inference_gpu).
#
#   DS_INFERENCE_SIZES="1.3B 6.7B"      GPT sizes, in order (default 1.3B, then 6.7B if time remains)
#   DS_INFERENCE_BATCHES="1 8 32"       batch sizes
#   DS_INFERENCE_COMPILE_BATCHES="1"    batch sizes of the torch.compile rows (each compiles again)
#   DS_INFERENCE_PROMPT=512 DS_INFERENCE_NEW=256
#   DS_INFERENCE_BUDGET=550             seconds for the whole run; a size starts only if
#                                       about 150 s remain
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${1:-$root/build/inference_gpu}"
mkdir -p "$out"
cd "$root"
start=$(date +%s)
budget="${DS_INFERENCE_BUDGET:-550}"
left() { echo $(( budget - ($(date +%s) - start) )); }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/device.txt"
export DS_BUILD_TARGETS="${DS_BUILD_TARGETS:-inference_bench inference_gpu_test ds_report}"
export DS_JOBS="${DS_JOBS:-$(nproc)}"
# The CUDA ops this run does not use are left out to keep the build short.
# shellcheck disable=SC2086
if ! timeout 360 scripts/build.sh -DCMAKE_CUDA_ARCHITECTURES=90 -DDS_BUILD_BENCH=ON \
    ${DS_INFERENCE_CMAKE_ARGS:--DDS_BUILD_SPARSE_ATTN=OFF -DDS_BUILD_STOCHASTIC_TRANSFORMER=OFF -DDS_BUILD_TRANSFORMER=OFF} \
    > "$out/build.log" 2>&1; then
  tail -60 "$out/build.log"
  exit 1
fi
echo "build: $(( $(date +%s) - start )) s"
build/bin/ds_report 2>&1 | grep -E "transformer_inference|op name" | tee "$out/ds_report.txt"

timeout 120 build/bin/inference_gpu_test 2>&1 | tee "$out/gpu_test.log" |
  grep -E "OK|FAILED|Failure|error|PASSED|SKIPPED|forward:|decode:" | cut -c1-300 | head -40

prompt="${DS_INFERENCE_PROMPT:-512}"
new="${DS_INFERENCE_NEW:-256}"
batches="${DS_INFERENCE_BATCHES:-1 8 32}"
: > "$out/bench.jsonl"
for size in ${DS_INFERENCE_SIZES:-1.3B 6.7B}; do
  if (( $(left) < 150 )); then
    echo "skipping $size: $(left) s left"
    continue
  fi
  # shellcheck disable=SC2086
  timeout $(( $(left) - 20 )) build/bin/inference_bench --model "$size" --batch $batches --prompt "$prompt" \
    --new "$new" 2>&1 | tee -a "$out/bench.jsonl"
  (( $(left) < 60 )) && break
  # shellcheck disable=SC2086
  timeout $(( $(left) - 10 )) python3 bench/peers/hf_generate_peer.py --model "$size" --batch $batches \
    --compile_batches ${DS_INFERENCE_COMPILE_BATCHES:-1} --prompt "$prompt" --new "$new" 2>&1 |
    grep -v Warning | tee -a "$out/bench.jsonl"
done

python3 - "$out/bench.jsonl" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{") and '"implementation"' in line:
        rows.append(json.loads(line))
print("| model | batch | implementation | mode | TTFT ms | decode tokens/s | step ms | % of bandwidth limit |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for r in rows:
    if "error" in r:
        print(f"| {r['model']} | {r['batch']} | {r['implementation']} | {r['mode']} | error: {r['error'][:80]} | | | |")
        continue
    print(f"| {r['model']} | {r['batch']} | {r['implementation']} | {r['mode']} | {r['ttft_ms']:.1f} | "
          f"{r['decode_tokens_per_s']:.0f} | {r['step_ms']:.2f} | {r['pct_of_bandwidth_limit']:.0f} |")
PY
echo "total: $(( $(date +%s) - start )) s"
