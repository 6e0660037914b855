#!/usr/bin/env bash
# The GPT example through the pipeline engine on 2 GPUs (NCCL point to point between the
# stages): 124M in 2 stages, 8 micro batches a step, once in bf16 (ZeRO 0) and once in fp16
# with the dynamic loss scale (ZeRO-1). Prints each run's last lines: the loss every 10 steps
# and the result line (tokens/s, MFU, memory).
#   bench/pipe/run_gpu_check.sh [BUILD_DIR]   (needs deepspeed_cli and gpt_train built)
set -euo pipefail
build=${1:-build}
for b in deepspeed gpt_train; do
  [[ -x "$build/bin/$b" ]] || { echo "run_gpu_check.sh: $build/bin/$b is not built" >&2; exit 1; }
done
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
common='"train_micro_batch_size_per_gpu": 4, "gradient_accumulation_steps": 8, "steps_per_print": 10,
  "gradient_clipping": 1.0, "optimizer": {"type": "AdamW", "params": {"lr": 3e-4}}'
echo "{$common, \"bf16\": {\"enabled\": true}, \"zero_optimization\": {\"stage\": 0}}" > "$dir/bf16.json"
echo "{$common, \"fp16\": {\"enabled\": true}, \"zero_optimization\": {\"stage\": 1}}" > "$dir/fp16.json"
for precision in bf16 fp16; do
  echo "== pipe 2, $precision"
  "$build/bin/deepspeed" --num_gpus 2 "$build/bin/gpt_train" --model 124M --pipeline_stages 2 --steps 40 \
    --warmup_steps 5 --log_interval 10 --deepspeed_config "$dir/$precision.json" 2>&1 | tail -8
done
