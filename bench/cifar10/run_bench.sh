#!/usr/bin/env bash
# samples/s of the CIFAR-10 tutorial in deepspeed-cpp (build/bin/cifar10_deepspeed through
# the deepspeed launcher) against the same tutorial in PyTorch (cifar10_ddp.py: Debian's
# python3-torch, DistributedDataParallel on Gloo), with the same network, data (Fashion-MNIST),
# global batch, optimizer, schedule, clipping and number of CPU ranks, one thread each.
# Prints both throughputs and the ratio. Needs a build (scripts/build.sh).
#
# Environment: DS_BUILD_DIR (default build/), BENCH_RANKS (2), BENCH_BATCH (global, 16),
# BENCH_SAMPLES (training samples, 30000), BENCH_EPOCHS (1).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${DS_BUILD_DIR:-$root/build}"
ranks="${BENCH_RANKS:-2}"
batch="${BENCH_BATCH:-16}"
samples="${BENCH_SAMPLES:-30000}"
epochs="${BENCH_EPOCHS:-1}"
python="${BENCH_PYTHON:-/usr/bin/python3}"  # Debian's python3-torch, not a pyenv python
export OMP_NUM_THREADS=1
log="$(mktemp -d)"
trap 'rm -rf "$log"' EXIT

throughput() { sed -n 's/.*Training throughput: \([0-9.]*\) samples\/s.*/\1/p' "$1" | tail -1; }

echo "bench: $ranks CPU ranks, global batch $batch, $samples Fashion-MNIST samples, $epochs epoch(s)"
"$build/bin/deepspeed" --num_gpus "$ranks" --master_port 29531 "$build/bin/cifar10_deepspeed" \
  --deepspeed_config "$root/examples/cifar10/ds_config.json" -b "$batch" -e "$epochs" \
  --train_samples "$samples" --test_samples 1000 --log_interval 1000000 > "$log/ds.txt" 2>&1 ||
  { cat "$log/ds.txt"; exit 1; }
pids=()
for ((r = 0; r < ranks; ++r)); do
  RANK=$r LOCAL_RANK=$r WORLD_SIZE=$ranks MASTER_ADDR=127.0.0.1 MASTER_PORT=29532 \
    "$python" "$root/bench/cifar10/cifar10_ddp.py" -b "$batch" -e "$epochs" --train_samples "$samples" \
    > "$log/ddp$r.txt" 2>&1 &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || { cat "$log"/ddp*.txt; exit 1; }; done

ds=$(throughput "$log/ds.txt")
pt=$(throughput "$log/ddp0.txt")
[[ -n "$ds" && -n "$pt" ]] || { echo "bench: no throughput line"; cat "$log/ds.txt" "$log/ddp0.txt"; exit 1; }
echo "deepspeed-cpp (cifar10_deepspeed):    $ds samples/s"
echo "PyTorch DDP (cifar10_ddp.py, Gloo):    $pt samples/s"
awk -v a="$ds" -v b="$pt" 'BEGIN { printf "ratio deepspeed-cpp / PyTorch:       %.2fx\n", a / b }'
