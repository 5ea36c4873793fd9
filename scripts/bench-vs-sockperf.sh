#!/usr/bin/env bash
# hftnet ping/pong against sockperf on the same path, interleaved in one run.
#
# Builds a two-host lab (namespaces hft-<name>-trader / -exchange joined by a
# veth pair), then for each round runs, back to back, 64-byte UDP round trips
# with both ends spinning and with both ends blocking, once with sockperf and
# once with hftnet, and mixed through `--protocol sockperf`: sockperf's client
# against hftnet's pong (sp>hf) and hftnet's ping against sockperf's server
# (hf>sp), so each end is compared with the other end held the same. Clients
# on CPU 0, servers on CPU 1. sockperf is asked for full round trips
# (--full-rtt), so no halving or doubling is involved.
#
# Usage: scripts/bench-vs-sockperf.sh [SECONDS_PER_RUN] [ROUNDS]   (default 5 3)
# Needs root and the Debian package sockperf. Prints one table: median over the
# rounds of each tool's p50 and p99, and hftnet/sockperf ratios.
set -euo pipefail

SECS=${1:-5}
ROUNDS=${2:-3}
SIZE=64
# sockperf I/O multiplexer: r = plain recvfrom on the one socket (its fastest
# for a single socket, and what hftnet does); e = its default, epoll.
# -F needs a feed file naming the socket.
IOMUX=${IOMUX:-r}
NAME="cmp$$"
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN="$HERE/target/release/hftnet"
TR="hft-$NAME-trader"
EX="hft-$NAME-exchange"
SERVER_IP=198.18.0.2
OUT=$(mktemp -d)
PIDS=()

command -v sockperf >/dev/null || { echo "sockperf missing: apt-get install sockperf" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  "$BIN" lab down --name "$NAME" >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT

(cd "$HERE" && cargo build --release -q)
"$BIN" lab up --name "$NAME" >/dev/null
echo "U:$SERVER_IP:11111" >"$OUT/feed"
echo "U:$SERVER_IP:11113" >"$OUT/feed-hf"

# run_sockperf MODE ROUND -> "p50 p99" in ns
run_sockperf() {
  local mode=$1 nb=""
  [ "$mode" = spin ] && nb="--nonblocked"
  ip netns exec "$EX" taskset -c 1 sockperf server -f "$OUT/feed" -F "$IOMUX" $nb >/dev/null 2>&1 &
  PIDS+=($!); local spid=$!
  sleep 0.5
  ip netns exec "$TR" taskset -c 0 sockperf ping-pong -f "$OUT/feed" -m "$SIZE" -t "$SECS" \
      --full-rtt -F "$IOMUX" $nb >"$OUT/sp.txt" 2>&1
  kill "$spid"; wait "$spid" 2>/dev/null || true
  awk '/percentile 50.000 =/ {p50=$NF} /percentile 99.000 =/ {p99=$NF}
       END {printf "%d %d\n", p50*1000, p99*1000}' "$OUT/sp.txt"
}

# run_sp_hf MODE -> "p50 p99" in ns: sockperf's client, hftnet's pong
run_sp_hf() {
  local mode=$1 nb="" rx=block
  [ "$mode" = spin ] && nb="--nonblocked" && rx=spin
  ip netns exec "$EX" "$BIN" pong "udp://$SERVER_IP:11113?rx=$rx" --cpu 1 --protocol sockperf \
      >/dev/null 2>&1 &
  PIDS+=($!); local spid=$!
  sleep 0.5
  ip netns exec "$TR" taskset -c 0 sockperf ping-pong -f "$OUT/feed-hf" -m "$SIZE" -t "$SECS" \
      --full-rtt -F "$IOMUX" $nb >"$OUT/sp.txt" 2>&1
  kill -INT "$spid"; wait "$spid" 2>/dev/null || true
  awk '/percentile 50.000 =/ {p50=$NF} /percentile 99.000 =/ {p99=$NF}
       END {printf "%d %d\n", p50*1000, p99*1000}' "$OUT/sp.txt"
}

# run_hf_sp MODE -> "p50 p99" in ns: hftnet's ping, sockperf's server
run_hf_sp() {
  local mode=$1 nb="" rx=block
  [ "$mode" = spin ] && nb="--nonblocked" && rx=spin
  ip netns exec "$EX" taskset -c 1 sockperf server -f "$OUT/feed" -F "$IOMUX" $nb >/dev/null 2>&1 &
  PIDS+=($!); local spid=$!
  sleep 0.5
  ip netns exec "$TR" "$BIN" ping "udp://$SERVER_IP:11111?rx=$rx" --cpu 0 --size "$SIZE" \
      --protocol sockperf --duration "${SECS}s" --warmup 10000 --json >"$OUT/hf.json"
  kill "$spid"; wait "$spid" 2>/dev/null || true
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["rtt_ns"]; print(r["p50"], r["p99"])' "$OUT/hf.json"
}

# run_hftnet MODE -> "p50 p99" in ns
run_hftnet() {
  local rx=$1
  [ "$rx" = spin ] || rx=block
  ip netns exec "$EX" "$BIN" pong "udp://$SERVER_IP:11112?rx=$rx" --cpu 1 >/dev/null 2>&1 &
  PIDS+=($!); local spid=$!
  sleep 0.5
  ip netns exec "$TR" "$BIN" ping "udp://$SERVER_IP:11112?rx=$rx" --cpu 0 --size "$SIZE" \
      --duration "${SECS}s" --warmup 10000 --json >"$OUT/hf.json"
  kill -INT "$spid"; wait "$spid" 2>/dev/null || true
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["rtt_ns"]; print(r["p50"], r["p99"])' "$OUT/hf.json"
}

: >"$OUT/results"
for r in $(seq 1 "$ROUNDS"); do
  for mode in spin block; do
    echo "sockperf $mode $(run_sockperf "$mode")" >>"$OUT/results"
    echo "hftnet $mode $(run_hftnet "$mode")" >>"$OUT/results"
    echo "sp>hf $mode $(run_sp_hf "$mode")" >>"$OUT/results"
    echo "hf>sp $mode $(run_hf_sp "$mode")" >>"$OUT/results"
    echo "round $r $mode done" >&2
  done
done

echo "# every run (tool mode p50 p99, ns), in the order they ran:"
sed 's/^/#   /' "$OUT/results"
echo "# kernel: $(uname -r)  cpus: $(nproc)  message: ${SIZE} B UDP  ${SECS}s x ${ROUNDS} interleaved rounds"
echo "# full round trips, medians over rounds (ns); sp>hf = sockperf client, hftnet pong;"
echo "# hf>sp = hftnet ping, sockperf server (both through --protocol sockperf)"
printf "%-6s %-9s %10s %10s\n" mode tool p50 p99
for mode in spin block; do
  for tool in sockperf hftnet "sp>hf" "hf>sp"; do
    med() { grep "^$tool $mode " "$OUT/results" | awk -v c="$1" '{print $c}' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
    printf "%-6s %-9s %10s %10s\n" "$mode" "$tool" "$(med 3)" "$(med 4)"
    var=$(echo "$tool" | tr -d '>')
    eval "${var}_${mode}_p50=$(med 3) ${var}_${mode}_p99=$(med 4)"
  done
done
for mode in spin block; do
  eval "a=\$hftnet_${mode}_p50 b=\$sockperf_${mode}_p50 c=\$hftnet_${mode}_p99 d=\$sockperf_${mode}_p99"
  awk -v m="$mode" -v a="$a" -v b="$b" -v c="$c" -v d="$d" \
    'BEGIN {printf "%s: hftnet/sockperf p50 %.2fx, p99 %.2fx\n", m, a/b, c/d}'
  # One end swapped, the other held: sockperf's client facing hftnet's pong
  # against facing sockperf's server; hftnet's ping facing sockperf's server
  # against facing hftnet's pong.
  eval "a=\$sphf_${mode}_p50 b=\$sockperf_${mode}_p50 c=\$hfsp_${mode}_p50 d=\$hftnet_${mode}_p50"
  awk -v m="$mode" -v a="$a" -v b="$b" -v c="$c" -v d="$d" \
    'BEGIN {printf "%s: server swapped, p50 hftnet pong/sockperf server %.2fx (sockperf client), %.2fx (hftnet client)\n", m, a/b, d/c}'
done
