#!/usr/bin/env bash
# dpdk:// against the other paths, in one run on the lab's veth:
#
# 1. Round trips (64-byte UDP, client CPU 0, server CPU 1, rows interleaved):
#      hftnet lab --transports dpdk,xdp/spin,packet/spin,udp/spin
#    the dpdk rows over net_af_packet and net_af_xdp, p50 and p99 beside
#    AF_XDP, AF_PACKET and spinning kernel sockets.
# 2. 64-byte throughput, sender (trader namespace) on CPU 0, receiver
#    (exchange namespace) on CPU 1, rows interleaved round by round:
#      dpdk/af_packet, dpdk/af_xdp   hftnet blast -> hftnet sink over dpdk://
#      xdp                          hftnet blast -> hftnet sink over xdp://
#      iperf3                       iperf3 -u -l 64 -b 0
#      testpmd/af_packet, testpmd/af_xdp
#                                   dpdk-testpmd --forward-mode=txonly ->
#                                   --forward-mode=rxonly over the same vdev
#                                   on the same veth, frames of the same size
#                                   as ours (--txpkts=106: 64 bytes of UDP
#                                   payload) and addressed as ours, to the
#                                   receiving veth's MAC (--eth-peer), --no-huge
#                                   -m 512. (testpmd's default destination,
#                                   02:00:00:00:00:00, is no host's: on the
#                                   receiving side the kernel drops such frames
#                                   at once, while frames for the host also go
#                                   through its IP and UDP receive path — on veth
#                                   on the sending CPU. Measured here: our
#                                   net_af_packet sender 1.25-1.28x faster with
#                                   testpmd's destination than with the right
#                                   one; comparing the two unlike addressings
#                                   made testpmd look ~1.3x faster.)
#    Prints per row the median sent and received Mpps over the rounds and
#    the ratios: each dpdk row's received rate to iperf3's and to testpmd's
#    over the same vdev (the anchor).
#
# Usage: scripts/bench-dpdk.sh [SECONDS_PER_RUN] [ROUNDS]   (default 3 3)
#   NO_BUILD=1  use target/release/hftnet as it is (built with --features dpdk)
# Needs root, python3, iperf3 and DPDK's testpmd (apt-get install iperf3
# dpdk-dev librte-net-af-packet23 librte-net-af-xdp23). Cleans up
# (processes, lab, DPDK runtime directories of its testpmd runs) on exit and
# on Ctrl-C.
set -euo pipefail

SECS=${1:-3}
ROUNDS=${2:-3}
case $SECS in '' | *[!0-9]* | 0) echo "SECONDS_PER_RUN must be a whole number >= 1, got '$SECS'" >&2; exit 2 ;; esac
case $ROUNDS in '' | *[!0-9]* | 0) echo "ROUNDS must be a whole number >= 1, got '$ROUNDS'" >&2; exit 2 ;; esac
NAME="dk$$"
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN="$HERE/target/release/hftnet"
TR="hft-$NAME-trader"
EX="hft-$NAME-exchange"
IP=198.18.0.2
OUT=$(mktemp -d)
PIDS=()

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs (sender on 0, receiver on 1)" >&2; exit 2; }
for t in python3 iperf3 dpdk-testpmd; do
  command -v "$t" >/dev/null || { echo "$t missing: apt-get install iperf3 dpdk-dev python3" >&2; exit 2; }
done
# libxdp finds its default program here when there is no bpffs.
export LIBXDP_OBJECT_PATH=${LIBXDP_OBJECT_PATH:-/usr/lib/x86_64-linux-gnu/bpf}

cleanup() {
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  "$BIN" lab down --name "$NAME" >/dev/null 2>&1 || true
  rm -rf /var/run/dpdk/"$NAME"-* 2>/dev/null || true
  rmdir /var/run/dpdk 2>/dev/null || true
  rm -rf "$OUT"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

if [ -z "${NO_BUILD:-}" ]; then
  (cd "$HERE" && cargo build --release -q -p hftnet --features dpdk)
fi

echo "# command: scripts/bench-dpdk.sh $SECS $ROUNDS"
echo "# kernel: $(uname -r); cpus: $(nproc); DPDK $(pkg-config --modversion libdpdk 2>/dev/null || echo '?'); load average: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: compare ratios, not figures)"

# --- 1. round trips -------------------------------------------------------
ROWS="dpdk,xdp/spin,packet/spin,udp/spin"
echo "# round trips: hftnet lab --transports $ROWS --duration ${SECS}s --rounds $ROUNDS"
"$BIN" lab --transports "$ROWS" --duration "${SECS}s" --rounds "$ROUNDS" --json "$OUT/lab.json" \
  >"$OUT/lab.txt" 2>"$OUT/lab.err" || true
python3 - "$OUT/lab.json" <<'PY'
import json, sys
try:
    j = json.load(open(sys.argv[1]))
except Exception as e:
    sys.exit(f"bench-dpdk: the lab run gave no report ({e})")
rows = {f'{r["rung"]["transport"]}/{r["rung"]["strategy"]}': r for r in j["results"]}
print(f"{'row':20} {'samples':>8} {'p50 us':>8} {'p99 us':>9} {'p50 / xdp/spin':>15}")
base = (rows.get("xdp/spin") or {}).get("rtt_ns") or {}
for name in ["dpdk/af_packet", "dpdk/af_xdp", "xdp/spin", "packet/spin", "udp/spin"]:
    r = rows.get(name) or {}
    rtt = r.get("rtt_ns")
    if not rtt:
        print(f"{name:20} {'-':>8}  no figures: {r.get('note')}")
        continue
    ratio = rtt["p50"] / base["p50"] if base.get("p50") else float("nan")
    print(f"{name:20} {r.get('samples', 0):8d} {rtt['p50']/1000:8.2f} {rtt['p99']/1000:9.2f} {ratio:14.2f}x")
PY

# --- 2. throughput --------------------------------------------------------
"$BIN" lab up --name "$NAME" >/dev/null
# The receiving veth's MAC: where testpmd's frames go, as ours do.
RX_MAC=$(ip netns exec "$EX" cat /sys/class/net/veth0/address)
echo 21000 >"$OUT/port"
next_port() {
  local p; p=$(cat "$OUT/port"); echo $((p + 2)) >"$OUT/port"; echo "$p"
}

wait_ready() {
  local f=$1 i
  for i in $(seq 1 200); do
    grep -q "receiving on" "$f" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "the sink did not start: $(cat "$f")" >&2
  return 1
}

# testpmd ROLE(tx|rx) NS VDEV CPU_FWD CPU_MAIN SECONDS -> its log
testpmd() {
  local role=$1 ns=$2 vdev=$3 fwd=$4 main=$5 secs=$6 mode peer=()
  [ "$role" = tx ] && mode=txonly || mode=rxonly
  [ "$role" = tx ] && peer=(--eth-peer="0,$RX_MAC")
  ip netns exec "$ns" timeout -s INT "$secs" dpdk-testpmd -l "$fwd,$main" --main-lcore "$main" \
    --no-huge --no-shconf -m 512 --no-pci --file-prefix "$NAME-$role" --log-level 4 \
    --vdev "$vdev" -- --forward-mode="$mode" --txpkts=106 --total-num-mbufs=16384 \
    --stats-period 1 --nb-cores=1 --rxq=1 --txq=1 "${peer[@]}"
}

# run ROW -> "sent_pps received_pps"
run() {
  local row=$1 port; port=$(next_port)
  case $row in
  iperf3)
    ip netns exec "$EX" taskset -c 1 iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
    PIDS+=($!); local spid=$!
    sleep 0.5
    ip netns exec "$TR" taskset -c 0 timeout $((SECS + 10)) \
      iperf3 -c "$IP" -p "$port" -u -l 64 -b 0 -t "$SECS" -J >"$OUT/i.json" 2>/dev/null || true
    timeout 10 tail --pid="$spid" -f /dev/null || kill "$spid" 2>/dev/null || true
    python3 - "$OUT/i.json" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1]))["end"]["sum"]
    print(round(s["packets"] / s["seconds"]), round((s["packets"] - s["lost_packets"]) / s["seconds"]))
except Exception:
    print("nan nan")
PY
    return ;;
  testpmd/*)
    local drv=${row#testpmd/} extra=""
    [ "$drv" = af_xdp ] && extra=",start_queue=0,queue_count=1"
    # testpmd takes about 2 s to start with --no-huge -m 512: the receiver
    # first, the sender for SECONDS after its start-up.
    testpmd rx "$EX" "net_${drv}0,iface=veth0$extra" 1 0 $((SECS + 9)) >"$OUT/rx.log" 2>&1 &
    PIDS+=($!); local rpid=$!
    sleep 3
    testpmd tx "$TR" "net_${drv}0,iface=veth0$extra" 0 1 $((SECS + 3)) >"$OUT/tx.log" 2>&1 || true
    wait "$rpid" 2>/dev/null || true
    python3 - "$OUT/tx.log" "$OUT/rx.log" <<'PY'
import re, statistics, sys
def rate(path, key):
    # The per-second rates testpmd printed while traffic flowed, without
    # the first and last second (ramp up, ramp down).
    v = [int(x) for x in re.findall(key + r"-pps:\s+(\d+)", open(path, errors="replace").read())]
    v = [x for x in v if x > 0]
    if len(v) >= 3:
        v = v[1:-1]
    return round(statistics.median(v)) if v else float("nan")
print(rate(sys.argv[1], "Tx"), rate(sys.argv[2], "Rx"))
PY
    return ;;
  esac
  local s c
  case $row in
  dpdk/af_packet) s="dpdk://net_af_packet0?iface=veth0&port=$port"; c="dpdk://net_af_packet0?iface=veth0&port=$((port + 1))&peer=$IP:$port" ;;
  dpdk/af_xdp) s="dpdk://net_af_xdp0?iface=veth0&port=$port"; c="dpdk://net_af_xdp0?iface=veth0&port=$((port + 1))&peer=$IP:$port" ;;
  xdp) s="xdp://veth0/0?port=$port&rx=spin&ring=8192&frames=16384"; c="xdp://veth0/0?port=$((port + 1))&peer=$IP:$port" ;;
  esac
  : >"$OUT/s.err"
  ip netns exec "$EX" "$BIN" sink "$s" --cpu 1 --duration "$((SECS + 8))s" --idle 1s \
    --json >"$OUT/s.json" 2>"$OUT/s.err" &
  PIDS+=($!); local spid=$!
  wait_ready "$OUT/s.err" || { kill "$spid" 2>/dev/null; echo "nan nan"; return; }
  ip netns exec "$TR" "$BIN" blast "$c" --cpu 0 --size 64 --duration "${SECS}s" \
    --json >"$OUT/b.json" 2>"$OUT/b.err" || true
  timeout $((SECS + 15)) tail --pid="$spid" -f /dev/null || kill -INT "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  python3 - "$OUT/s.json" "$OUT/b.json" <<'PY'
import json, sys
try:
    s = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
    print(b["pps"], round(s["packets"] / s["active_s"]) if s["active_s"] else "nan")
except Exception:
    print("nan nan")
PY
}

TROWS=(dpdk/af_packet testpmd/af_packet dpdk/af_xdp testpmd/af_xdp xdp iperf3)
: >"$OUT/res"
for r in $(seq 1 "$ROUNDS"); do
  for row in "${TROWS[@]}"; do
    echo "$row $(run "$row")" >>"$OUT/res"
  done
  echo "round $r of $ROUNDS done" >&2
done

echo "# 64-byte UDP payloads (106-byte frames) over the lab veth, sender CPU 0, receiver CPU 1, ${SECS}s per run, $ROUNDS rounds interleaved"
python3 - "$OUT/res" <<'PY'
import math, sys, statistics as st
res = {}
for line in open(sys.argv[1]):
    n, tx, rx = line.split()
    res.setdefault(n, []).append((float(tx), float(rx)))
def med(v):
    v = [x for x in v if not math.isnan(x)]
    return st.median(v) if v else float("nan")
names = {
    "dpdk/af_packet": "hftnet dpdk net_af_packet", "testpmd/af_packet": "testpmd net_af_packet",
    "dpdk/af_xdp": "hftnet dpdk net_af_xdp", "testpmd/af_xdp": "testpmd net_af_xdp",
    "xdp": "hftnet xdp (AF_XDP copy)", "iperf3": "iperf3 -u -l 64 -b 0",
}
rx = {n: med([r[1] for r in v]) for n, v in res.items()}
tx = {n: med([r[0] for r in v]) for n, v in res.items()}
print(f"{'row':28} {'sent Mpps':>10} {'recv Mpps':>10} {'recv/iperf3':>12} {'sent/testpmd':>13} {'recv/testpmd':>13}")
for n in names:
    if n not in res:
        continue
    ip = rx[n] / rx["iperf3"] if rx.get("iperf3") else float("nan")
    a = n.replace("dpdk/", "testpmd/") if n.startswith("dpdk/") else None
    st_ = f"{tx[n] / tx[a]:12.2f}x" if a and tx.get(a) else f"{'-':>13}"
    sr_ = f"{rx[n] / rx[a]:12.2f}x" if a and rx.get(a) else f"{'-':>13}"
    print(f"{names[n]:28} {tx[n]/1e6:10.3f} {rx[n]/1e6:10.3f} {ip:11.2f}x {st_} {sr_}")
PY
