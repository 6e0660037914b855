#!/usr/bin/env bash
# ZeRO++ against plain ZeRO stage 3 on the GPT example (examples/gpt, the "tiny" preset) on 4 CPU
# ranks presented as 2 nodes of 2 (LOCAL_SIZE=2, so that qgZ's all-to-all crosses "nodes"):
# the same STEPS (default 200) with stage 3 and with qwZ + hpZ (h = 2) + qgZ, on a token file
# with a learnable but noisy next token (the loss levels off near ln 4), then the largest
# relative difference of the per-step losses and that of the mean of the last 50. Parameters
# under 1000 elements (layer norms, biases) stay whole, as DeepSpeed's persistence threshold keeps
# them (quantized in one int8 group with the matrices they would lose most of their precision).
# Needs build/bin/gpt_train (DS_BUILD_TARGETS=gpt_train scripts/build.sh). Numbers: docs/PERFORMANCE.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${DS_BUILD_DIR:-$root/build}/bin/gpt_train"
steps="${STEPS:-200}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 - "$work/tokens.bin" <<'PY'
import random, struct, sys
random.seed(7)
t, out = 0, []
for _ in range(65536):
    t = (t * 5 + 1 + random.randrange(4)) % 64
    out.append(t)
open(sys.argv[1], "wb").write(struct.pack(f"<{len(out)}H", *out))
PY

config() {  # $1: extra zero_optimization keys
  cat <<JSON
{"train_batch_size": 16, "steps_per_print": 1000, "gradient_clipping": 1.0,
 "optimizer": {"type": "AdamW", "params": {"lr": 0.003, "betas": [0.9, 0.95], "weight_decay": 0.1}},
 "zero_optimization": {"stage": 3, "reduce_bucket_size": 20000, "stage3_param_persistence_threshold": 1000,
                       "stage3_max_live_parameters": 40000$1}}
JSON
}
config "" > "$work/stage3.json"
config ', "zero_quantized_weights": true, "zero_hpz_partition_size": 2, "zero_quantized_gradients": true' \
  > "$work/zeropp.json"

run() {  # $1: name
  local port=$((29700 + RANDOM % 200)) pids=()
  for r in 0 1 2 3; do
    RANK=$r WORLD_SIZE=4 LOCAL_RANK=$((r % 2)) LOCAL_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      "$bin" --model tiny --seq_len 32 --steps "$steps" --warmup_steps 0 --log_interval 1 \
      --data "$work/tokens.bin" --deepspeed_config "$work/$1.json" > "$work/$1.$r.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || { cat "$work/$1.0.log"; exit 1; }; done
}
start=$(date +%s); run stage3; mid=$(date +%s); run zeropp; end=$(date +%s)
echo "stage 3: $((mid - start)) s, ZeRO++: $((end - mid)) s for $steps steps each"

python3 - "$work/stage3.0.log" "$work/zeropp.0.log" <<'PY'
import re, sys
def losses(path):
    return [float(m.group(1)) for m in re.finditer(r"step \d+ loss ([0-9.]+)", open(path).read())]
a, b = losses(sys.argv[1]), losses(sys.argv[2])
assert len(a) == len(b) and a, (len(a), len(b))
worst = max(abs(y - x) / x for x, y in zip(a, b))
tail = lambda v: sum(v[-50:]) / len(v[-50:])
print(f"steps {len(a)}: stage 3 first {a[0]:.4f} last {a[-1]:.4f}; ZeRO++ first {b[0]:.4f} last {b[-1]:.4f}")
print(f"largest per-step relative difference {worst:.4%}; mean of the last 50: stage 3 {tail(a):.4f}, "
      f"ZeRO++ {tail(b):.4f} ({abs(tail(b) - tail(a)) / tail(a):.4%})")
PY
