#!/usr/bin/env bash
# 1-bit Adam against Adam where the network is what a step waits for: 2 CPU ranks in two
# network namespaces joined by a veth pair, each end shaped with tc to 1 Gbit/s (traffic flows
# only between the two). Also times Adam on one rank (no communication), so that the share of
# Adam's 2-rank step spent communicating is 1 - t(1 rank) / t(2 ranks). Needs root, ip and tc;
# removes the namespaces (and with them the veth pair) on exit. Prints a Markdown table.
#   bench/onebit/run_netns.sh [-- onebit_bench arguments, e.g. --width 2048 --layers 4]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${DS_BUILD_DIR:-$root/build}/bin/onebit_bench"
[[ "${1:-}" == "--" ]] && shift
args=("$@")
[[ -x "$bin" ]] || { echo "run_netns.sh: $bin not built (cmake --build build --target onebit_bench)" >&2; exit 1; }
[[ $(id -u) -eq 0 ]] || { echo "run_netns.sh: needs root (ip netns, tc)" >&2; exit 1; }
command -v tc > /dev/null || { echo "run_netns.sh: tc (iproute2) is not installed" >&2; exit 1; }

a=ds1bit_a b=ds1bit_b
cleanup() {
  ip netns del "$a" 2> /dev/null || true
  ip netns del "$b" 2> /dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add "$a"
ip netns add "$b"
ip link add ds1bit_va type veth peer name ds1bit_vb
ip link set ds1bit_va netns "$a"
ip link set ds1bit_vb netns "$b"
ip -n "$a" addr add 10.77.0.1/24 dev ds1bit_va
ip -n "$b" addr add 10.77.0.2/24 dev ds1bit_vb
for side in a b; do
  ns="ds1bit_$side" dev="ds1bit_v$side"
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "$dev" up
  # A token bucket at 1 Gbit/s on each sending end.
  ip netns exec "$ns" tc qdisc add dev "$dev" root tbf rate 1gbit burst 256kb latency 100ms
done

# One rank per namespace, one core each.
run_pair() {
  local port=$((29600 + RANDOM % 2000)) out
  out=$(mktemp)
  local env=(WORLD_SIZE=2 LOCAL_RANK=0 LOCAL_SIZE=1 MASTER_ADDR=10.77.0.1 MASTER_PORT=$port OMP_NUM_THREADS=1)
  ip netns exec "$b" env "${env[@]}" RANK=1 GLOO_SOCKET_IFNAME=ds1bit_vb taskset -c 1 "$bin" "$@" > "$out" 2>&1 &
  local peer=$!
  ip netns exec "$a" env "${env[@]}" RANK=0 GLOO_SOCKET_IFNAME=ds1bit_va taskset -c 0 "$bin" "$@"
  wait "$peer" || { cat "$out" >&2; rm -f "$out"; return 1; }
  rm -f "$out"
}
field() { sed -n "s/.* $1 \([0-9.e+-]*\).*/\1/p" <<< "$2"; }

single=$(OMP_NUM_THREADS=1 taskset -c 0 "$bin" --optimizer Adam "${args[@]}")
adam=$(run_pair --optimizer Adam "${args[@]}")
adam_bytes=$(run_pair --optimizer Adam --log_bytes --steps 3 "${args[@]}")
echo "| optimizer | ranks | parameters | step (ms) | bytes per step (comms logger) | vs Adam on 2 ranks |"
echo "| --- | --- | --- | --- | --- | --- |"
t1=$(field step_ms "$single")
t2=$(field step_ms "$adam")
echo "| Adam | 1 | $(field parameters "$single") | $t1 | 0 | |"
echo "| Adam | 2 | $(field parameters "$adam") | $t2 | $(field bytes_per_step "$adam_bytes") | 1.00x |"
for opt in OneBitAdam ZeroOneAdam OneBitLamb; do
  r=$(run_pair --optimizer "$opt" "${args[@]}")
  rb=$(run_pair --optimizer "$opt" --log_bytes --steps 3 "${args[@]}")
  t=$(field step_ms "$r")
  echo "| $opt | 2 | $(field parameters "$r") | $t | $(field bytes_per_step "$rb") | $(awk -v a="$t2" -v b="$t" 'BEGIN{printf "%.2fx", a/b}') |"
done
awk -v a="$t1" -v b="$t2" 'BEGIN{printf "Adam on 2 ranks spends %.0f %% of its step communicating (1 - %s/%s)\n", 100*(1-a/b), a, b}'
