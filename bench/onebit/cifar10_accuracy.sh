#!/usr/bin/env bash
# The CIFAR-10 tutorial example (examples/cifar10, Fashion-MNIST by default) on 2 CPU ranks
# with Adam and with each 1-bit optimizer: the same config (examples/cifar10/ds_config.json)
# with only the optimizer's type and its freeze step changed. Prints each run's test accuracy
# and its difference from Adam's (docs/PERFORMANCE.md, "1-bit optimizers: accuracy").
#   bench/onebit/cifar10_accuracy.sh [freeze step, default 1000] [-- example arguments]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${DS_BUILD_DIR:-$root/build}"
freeze="${1:-1000}"
shift || true
[[ "${1:-}" == "--" ]] && shift
for t in deepspeed cifar10_deepspeed; do
  [[ -x "$build/bin/$t" ]] || { echo "cifar10_accuracy.sh: $build/bin/$t not built" >&2; exit 1; }
done
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

accuracy_of() {  # optimizer type, example arguments
  local type=$1
  shift
  python3 - "$root/examples/cifar10/ds_config.json" "$type" "$freeze" > "$work/$type.json" << 'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
cfg["optimizer"]["type"] = sys.argv[2]
key = {"Adam": None, "ZeroOneAdam": "var_freeze_step"}.get(sys.argv[2], "freeze_step")
if key:
    cfg["optimizer"]["params"][key] = int(sys.argv[3])
print(json.dumps(cfg))
PY
  "$build/bin/deepspeed" --num_gpus 2 --master_port $((29700 + RANDOM % 1000)) "$build/bin/cifar10_deepspeed" \
    --deepspeed_config "$work/$type.json" -e "${DS_EPOCHS:-3}" --log_interval 100000 "$@" > "$work/$type.log" 2>&1 ||
    { cat "$work/$type.log" >&2; return 1; }
  sed -n 's/.*Accuracy of the network on the [0-9]* test images: \([0-9]*\) %.*/\1/p' "$work/$type.log"
}

adam=$(accuracy_of Adam "$@")
echo "| optimizer | test accuracy (%) | vs Adam (points) |"
echo "| --- | --- | --- |"
echo "| Adam | $adam | |"
for opt in OneBitAdam ZeroOneAdam OneBitLamb; do
  a=$(accuracy_of "$opt" "$@")
  echo "| $opt | $a | $((a - adam)) |"
done
