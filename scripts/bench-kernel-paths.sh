#!/usr/bin/env bash
# The kernel paths side by side in one lab, interleaved round by round:
#
#  1. Round trips, 64-byte UDP, client on CPU 0 and server on CPU 1, both ends
#     of the same kind: plain UDP (spinning, blocking), io_uring (waiting, and
#     spinning with multishot receive, each with and without SQPOLL), and
#     AF_PACKET rings (V2 spinning, V3 spinning, V2 blocking), and AF_XDP
#     (both ends, and an AF_XDP responder with a kernel-socket client).
#     Median over the rounds of each row's p50 and p99.
#  2. System calls per round trip for each of those rows: the
#     raw_syscalls:sys_enter tracepoint counted by `perf stat` over each whole
#     process (set-up included, spread over the round trips of the run; the
#     server's count includes its idle time after the client stopped) during
#     a separate pass.
#  3. Packets per second at 64 bytes received by the sink, on the same veth:
#     `hftnet blast`/`sink` with batch=1 and batch=32 (recvmmsg/sendmmsg),
#     AF_PACKET rings, an AF_XDP receiver (kernel sender with batch=32), and
#     `iperf3 -u -l 64 -b 0`.
#
# Usage: scripts/bench-kernel-paths.sh [SECONDS_PER_RUN] [ROUNDS]   (default 3 3)
# Needs root, perf and iperf3 (apt-get install linux-perf iperf3).
set -euo pipefail

SECS=${1:-3}
ROUNDS=${2:-3}
NAME="kp$$"
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN="$HERE/target/release/hftnet"
TR="hft-$NAME-trader"
EX="hft-$NAME-exchange"
IP=198.18.0.2
OUT=$(mktemp -d)
PIDS=()

for c in perf iperf3; do
  command -v $c >/dev/null || { echo "$c missing: apt-get install $c" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  "$BIN" lab down --name "$NAME" >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT

(cd "$HERE" && cargo build --release -q)
"$BIN" lab up --name "$NAME" >/dev/null

# name | server URI | client URI (PORT is replaced per run)
ROWS=(
  "udp-spin|udp://$IP:PORT?rx=spin|udp://$IP:PORT?rx=spin"
  "udp-block|udp://$IP:PORT?rx=block|udp://$IP:PORT?rx=block"
  "uring-wait|uring://$IP:PORT?mode=wait|uring://$IP:PORT?mode=wait"
  "uring-wait-sqpoll|uring://$IP:PORT?mode=wait&sqpoll=1|uring://$IP:PORT?mode=wait&sqpoll=1"
  "uring-spin-multishot|uring://$IP:PORT?mode=spin&multishot=1|uring://$IP:PORT?mode=spin&multishot=1"
  "uring-spin-multishot-sqpoll|uring://$IP:PORT?mode=spin&multishot=1&sqpoll=1|uring://$IP:PORT?mode=spin&multishot=1&sqpoll=1"
  "packet-v2-spin|packet://veth0?port=PORT&rx=spin|packet://veth0?port=PORT&peer=$IP:PORT&rx=spin"
  "packet-v3-spin|packet://veth0?port=PORT&rx=spin&version=3|packet://veth0?port=PORT&peer=$IP:PORT&rx=spin&version=3"
  "packet-v2-block|packet://veth0?port=PORT&rx=block|packet://veth0?port=PORT&peer=$IP:PORT&rx=block"
  "xdp-spin|xdp://veth0/0?port=PORT&rx=spin|xdp://veth0/0?port=PORT&peer=$IP:PORT&rx=spin"
  "xdp-server-udp-client|xdp://veth0/0?port=PORT&rx=spin|udp://$IP:PORT?rx=spin"
)
# Each run gets its own port (the functions run in subshells, so the number
# comes from a file).
echo 12000 >"$OUT/port"
next_port() {
  local p; p=$(cat "$OUT/port"); echo $((p + 1)) >"$OUT/port"; echo "$p"
}

# rtt NAME SERVER CLIENT -> "p50 p99"
rtt() {
  local PORT; PORT=$(next_port)
  local s=${2//PORT/$PORT} c=${3//PORT/$PORT}
  ip netns exec "$EX" "$BIN" pong "$s" --cpu 1 >/dev/null 2>&1 &
  PIDS+=($!); local spid=$!
  sleep 0.5
  ip netns exec "$TR" "$BIN" ping "$c" --cpu 0 --size 64 --duration "${SECS}s" \
      --warmup 200 --json >"$OUT/p.json"
  kill -INT "$spid"; wait "$spid" 2>/dev/null || true
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["rtt_ns"]; print(r["p50"], r["p99"])' "$OUT/p.json"
}

# syscalls NAME SERVER CLIENT -> "client_per_rt server_per_rt"
syscalls() {
  local PORT; PORT=$(next_port)
  local s=${2//PORT/$PORT} c=${3//PORT/$PORT}
  ip netns exec "$EX" perf stat -e raw_syscalls:sys_enter -x, -o "$OUT/s.perf" \
      "$BIN" pong "$s" --cpu 1 --duration "$((SECS + 2))s" >/dev/null 2>&1 &
  PIDS+=($!); local spid=$!
  sleep 0.5
  ip netns exec "$TR" perf stat -e raw_syscalls:sys_enter -x, -o "$OUT/c.perf" \
      "$BIN" ping "$c" --cpu 0 --size 64 --duration "${SECS}s" --warmup 0 --json >"$OUT/c.json" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  python3 - "$OUT/c.perf" "$OUT/s.perf" "$OUT/c.json" <<'EOF'
import json, sys
def total(path):
    for line in open(path):
        f = line.split(",")
        if len(f) > 2 and f[2] == "raw_syscalls:sys_enter":
            return int(f[0])
    return float("nan")
n = max(json.load(open(sys.argv[3]))["sent"], 1)
print(f"{total(sys.argv[1]) / n:.2f} {total(sys.argv[2]) / n:.2f}")
EOF
}

# pps MODE -> packets per second received
pps() {
  local mode=$1 port; port=$(next_port)
  case $mode in
    iperf3)
      ip netns exec "$EX" taskset -c 1 iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
      PIDS+=($!); local spid=$!
      sleep 0.5
      ip netns exec "$TR" taskset -c 0 iperf3 -c "$IP" -p "$port" -u -l 64 -b 0 -t "$SECS" -J >"$OUT/i.json" 2>/dev/null || true
      wait "$spid" 2>/dev/null || true
      python3 -c '
import json,sys
j=json.load(open(sys.argv[1]))["end"]["sum"]
print(round((j["packets"]-j["lost_packets"])/j["seconds"]))' "$OUT/i.json"
      return
      ;;
    batch1) s="udp://$IP:$port?rcvbuf=8M"; c="udp://$IP:$port" ;;
    batch32) s="udp://$IP:$port?batch=32&rcvbuf=8M"; c="udp://$IP:$port?batch=32" ;;
    packet) s="packet://veth0?port=$port&rx=spin&frames=4096"; c="packet://veth0?port=$port&peer=$IP:$port" ;;
    xdp-rx) s="xdp://veth0/0?port=$port&rx=spin"; c="udp://$IP:$port?batch=32" ;;
  esac
  ip netns exec "$EX" "$BIN" sink "$s" --cpu 1 --duration "$((SECS + 3))s" --idle 1s --json >"$OUT/s.json" 2>/dev/null &
  PIDS+=($!); local spid=$!
  sleep 0.5
  ip netns exec "$TR" "$BIN" blast "$c" --cpu 0 --size 64 --duration "${SECS}s" --json >/dev/null
  wait "$spid" 2>/dev/null || true
  python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(round(j["packets"]/j["active_s"]))' "$OUT/s.json"
}

: >"$OUT/rtt"; : >"$OUT/pps"
for r in $(seq 1 "$ROUNDS"); do
  for row in "${ROWS[@]}"; do
    IFS='|' read -r name s c <<<"$row"
    echo "$name $(rtt "$name" "$s" "$c")" >>"$OUT/rtt"
  done
  for mode in batch1 batch32 packet xdp-rx iperf3; do
    echo "$mode $(pps "$mode")" >>"$OUT/pps"
  done
  echo "round $r done" >&2
done
: >"$OUT/sys"
for row in "${ROWS[@]}"; do
  IFS='|' read -r name s c <<<"$row"
  echo "$name $(syscalls "$name" "$s" "$c")" >>"$OUT/sys"
done

python3 - "$OUT/rtt" "$OUT/pps" "$OUT/sys" <<'EOF'
import sys, statistics as st
rtt, pps, sysc = {}, {}, {}
for line in open(sys.argv[1]):
    n, a, b = line.split(); rtt.setdefault(n, []).append((int(a), int(b)))
for line in open(sys.argv[2]):
    n, a = line.split(); pps.setdefault(n, []).append(int(a))
for line in open(sys.argv[3]):
    n, a, b = line.split(); sysc[n] = (float(a), float(b))
base = st.median(p for p, _ in rtt["udp-spin"])
print(f"{'round trip (64 B)':30} {'p50 µs':>8} {'p99 µs':>8} {'p50/udp':>8} {'sys/rt client':>14} {'sys/rt server':>14}")
for n, v in rtt.items():
    p50 = st.median(p for p, _ in v); p99 = st.median(q for _, q in v)
    c, s = sysc.get(n, (float("nan"),) * 2)
    print(f"{n:30} {p50/1000:8.2f} {p99/1000:8.2f} {p50/base:8.2f} {c:14.2f} {s:14.2f}")
print()
ib = st.median(pps["iperf3"])
print(f"{'received packets/s (64 B)':30} {'median':>10} {'/iperf3':>8}")
for n, v in pps.items():
    m = st.median(v)
    print(f"{n:30} {m:10.0f} {m/ib:8.2f}")
EOF
