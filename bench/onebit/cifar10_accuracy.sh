#!/usr/bin/env bash
# The CIFAR-10 tutorial example (examples/cifar10, Fashion-MNIST by default) on 2 CPU ranks
# with Adam and with each 1-bit optimizer: the same config (examples/cifar10/ds_config.json)
# with only the optimizer's type and its schedule changed. Prints each run's test accuracy and
# its difference from Adam's (docs/PERFORMANCE.md, "1-bit optimizers: accuracy").
#   bench/onebit/cifar10_accuracy.sh [freeze step, default 2250] [-- example arguments]
# The freeze step is OneBitAdam's and OneBitLamb's; 2250 is 20 % of the 11,250 steps of 3
# epochs (DeepSpeed's tutorials: 15-25 % of training). "Lamb" is OneBitLamb whose freeze step
# lies past the run: its full-precision warm-up LAMB throughout, what 1-bit LAMB compresses.
# ZeroOneAdam runs DeepSpeed's tutorial schedule: var_freeze_step at the end of the LR warm-up
# (1000), var_update_scaler 16, local_step_scaler 1000, local_step_clipper 16.
# DS_OPTIMIZERS="OneBitLamb Lamb" runs only those (Adam always runs first); DS_EPOCHS (3).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${DS_BUILD_DIR:-$root/build}"
freeze="${1:-2250}"
shift || true
[[ "${1:-}" == "--" ]] && shift
for t in deepspeed cifar10_deepspeed; do
  [[ -x "$build/bin/$t" ]] || { echo "cifar10_accuracy.sh: $build/bin/$t not built" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

accuracy_of() {  # row name, example arguments
  local row=$1
  shift
  python3 - "$root/examples/cifar10/ds_config.json" "$row" "$freeze" > "$work/$row.json" << 'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
row, freeze = sys.argv[2], int(sys.argv[3])
params = {"Adam": {}, "OneBitAdam": {"freeze_step": freeze}, "OneBitLamb": {"freeze_step": freeze},
          "Lamb": {"freeze_step": 10**9},
          "ZeroOneAdam": {"var_freeze_step": 1000, "var_update_scaler": 16, "local_step_scaler": 1000,
                          "local_step_clipper": 16}}[row]
cfg["optimizer"]["type"] = "OneBitLamb" if row == "Lamb" else row
cfg["optimizer"]["params"].update(params)
print(json.dumps(cfg))
PY
  "$build/bin/deepspeed" --num_gpus 2 --master_port $((29700 + RANDOM % 1000)) "$build/bin/cifar10_deepspeed" \
    --deepspeed_config "$work/$row.json" -e "${DS_EPOCHS:-3}" --log_interval 100000 "$@" > "$work/$row.log" 2>&1 ||
    { cat "$work/$row.log" >&2; return 1; }
  sed -n 's/.*Accuracy of the network on the [0-9]* test images: \([0-9]*\) %.*/\1/p' "$work/$row.log"
}

adam=$(accuracy_of Adam "$@")
echo "| optimizer | test accuracy (%) | vs Adam (points) |"
echo "| --- | --- | --- |"
echo "| Adam | $adam | |"
for row in ${DS_OPTIMIZERS:-OneBitAdam ZeroOneAdam OneBitLamb Lamb}; do
  a=$(accuracy_of "$row" "$@")
  echo "| $row | $a | $((a - adam)) |"
done
