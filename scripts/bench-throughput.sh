#!/usr/bin/env bash
# 64-byte one-way throughput over the lab's veth, received at the sink:
# iperf3 (`-u -l 64 -b 0`) against `hftnet blast` -> `hftnet sink` over
#   udp     udp://…?batch=32          (sendmmsg / recvmmsg, 32 per call)
#   packet  packet://veth0?…          (TPACKET_V3 receive blocks, TX ring, one send per burst,
#                                       tx_copy=1: each frame copied, not its ring page
#                                       attached, which veth's peer would copy again)
#   xdp     xdp://veth0/0?…           (AF_XDP both ends, copy mode on veth)
# Sender on CPU 0 in the trader namespace, receiver on CPU 1 in the exchange
# namespace, every run bounded in time; the rows are interleaved round by
# round so the drift of a loaded machine spreads over all of them. Prints per
# row the median received Mpps over the rounds, the ratio to iperf3's median,
# the goal and whether it holds, and the loss accounting: every message the
# sender sent is either received, or counted lost by the sink (a sequence
# gap, or the kernel's drop counters of the sink's socket — AF_XDP's, and
# AF_PACKET's PACKET_STATISTICS — which also see a loss after the last
# message received), or "uncounted": the last column must be 0 for a goal
# to hold.
#
# Usage: scripts/bench-throughput.sh [SECONDS_PER_RUN] [ROUNDS]   (default 3 3)
#   PERF=DIR  also record `perf` on both ends of one extra run per row and
#             write the top symbols of each end to DIR/ROW-{sender,sink}.txt
#   NO_BUILD=1  use target/release/hftnet as it is
#   NAPI=cpu1|softirq  where the receiving veth's NAPI runs (see below;
#             default cpu1, as a NIC whose IRQ is on the receiver's CPU)
#   QDISC=pfifo_fast|noqueue  the sending veth's queue (see below)
#   RT=0      run the ends SCHED_OTHER. The machine is shared: by default
#             the ends run SCHED_FIFO so that each has its CPU rather than a
#             share of it: the sender at 10; with NAPI=cpu1 the NAPI thread at
#             11 and the sink at 12, waiting in the kernel (rx=block, as
#             iperf3's server does), so each batch the NAPI thread delivers
#             wakes the sink at once and the NAPI thread runs while the sink
#             sleeps (a spinning sink at FIFO would starve it, or be starved);
#             with NAPI=softirq the sink at 10, spinning (rx=spin)
# Needs root (network namespaces), iperf3 (apt-get install iperf3) and, for
# PERF=, perf (apt-get install linux-perf). Cleans up (processes, lab) on
# exit and on Ctrl-C.
set -euo pipefail

SECS=${1:-3}
ROUNDS=${2:-3}
case $SECS in '' | *[!0-9]* | 0) echo "SECONDS_PER_RUN must be a whole number >= 1, got '$SECS'" >&2; exit 2 ;; esac
case $ROUNDS in '' | *[!0-9]* | 0) echo "ROUNDS must be a whole number >= 1, got '$ROUNDS'" >&2; exit 2 ;; esac
NAME="tp$$"
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN="$HERE/target/release/hftnet"
TR="hft-$NAME-trader"
EX="hft-$NAME-exchange"
IP=198.18.0.2
OUT=$(mktemp -d)
PIDS=()

command -v iperf3 >/dev/null || { echo "iperf3 missing: apt-get install iperf3" >&2; exit 2; }
if [ -n "${PERF:-}" ]; then
  command -v perf >/dev/null || { echo "perf missing: apt-get install linux-perf" >&2; exit 2; }
  mkdir -p "$PERF"
fi
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
[ "$(nproc)" -ge 2 ] || { echo "needs 2 CPUs (sender on 0, receiver on 1)" >&2; exit 2; }

cleanup() {
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  "$BIN" lab down --name "$NAME" >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT
trap 'echo "interrupted" >&2; exit 130' INT TERM

if [ -z "${NO_BUILD:-}" ]; then
  (cd "$HERE" && cargo build --release -q -p hftnet)
fi
"$BIN" lab up --name "$NAME" >/dev/null

# Where the receiving veth's NAPI runs. The lab's veth delivers through NAPI
# (GRO on, TSO off: as a NIC does). By default that NAPI runs in the
# softirq of the CPU that scheduled it — the sender's, CPU 0 — so the
# sender's CPU also does all of the receive path (XDP, the copy into the
# socket, the UDP stack) and the sink's CPU only reads. A real NIC raises its
# receive interrupt on the CPU its IRQ affinity names, usually the
# receiver's: NAPI=cpu1 (the default) emulates that with threaded NAPI on the
# exchange's veth (its own lab namespace only), the NAPI thread pinned to
# CPU 1 beside the sink. NAPI=softirq leaves the kernel's default.
RT=${RT:-1}
case $RT in 0 | 1) ;; *) echo "RT must be 0 or 1, got '$RT'" >&2; exit 2 ;; esac
NAPI=${NAPI:-cpu1}
NAPI_PIDS=""
case $NAPI in
  cpu1)
    napi_threads() { ps -eo pid=,comm= | awk '$2 ~ /^napi\/veth0-/ {print $1}' | sort; }
    before=$(napi_threads)
    ip netns exec "$EX" sh -c 'echo 1 >/sys/class/net/veth0/threaded'
    NAPI_PIDS=$(comm -13 <(echo "$before") <(napi_threads))
    [ -n "$NAPI_PIDS" ] || { echo "threaded NAPI on the exchange veth made no napi/veth0-* thread" >&2; exit 1; }
    # The lab's veth has one receive queue: one thread. More means another
    # lab made one at the same moment; touch none of them.
    [ "$(echo "$NAPI_PIDS" | wc -w)" = 1 ] || {
      echo "more than one new napi/veth0-* thread ($(echo $NAPI_PIDS)): another lab is starting; run again" >&2
      exit 1
    }
    for p in $NAPI_PIDS; do
      taskset -p -c 1 "$p" >/dev/null
      if [ "$RT" = 1 ]; then chrt -f -p 11 "$p"; fi
    done
    SINK_RX=block SINK_PRIO=12
    NAPI_DESC="threaded NAPI on the receiving veth, pinned to CPU 1 (threads $(echo $NAPI_PIDS))"
    ;;
  softirq) NAPI_DESC="receiving veth NAPI in the sender's softirq (CPU 0)"; SINK_RX=spin SINK_PRIO=10 ;;
  *) echo "NAPI must be cpu1 or softirq, got '$NAPI'" >&2; exit 2 ;;
esac
if [ "$RT" = 1 ]; then
  SPRIO=(chrt -f "$SINK_PRIO") CPRIO=(chrt -f 10)
else
  SPRIO=() CPRIO=()
fi

# The sending veth's queue. veth has none by default (noqueue): when the
# receiving side falls behind, its 256-slot ring overflows and veth drops the
# frame, counted only on the sender's veth (tx_dropped), so a sink sees the
# loss as a gap at best, and not at all after its last message. A NIC has a
# queue and pushes back instead; QDISC=pfifo_fast (the default) gives the
# sending veth one, so a full ring stops the queue and the senders wait
# (AF_XDP's kick and the sockets get EAGAIN / block; AF_PACKET, which must
# then not bypass the queue, is sent with qdisc_bypass=0). QDISC=noqueue
# leaves veth's default.
QDISC=${QDISC:-pfifo_fast}
case $QDISC in
  pfifo_fast) ip netns exec "$TR" tc qdisc replace dev veth0 root pfifo_fast; PACKET_TX="&qdisc_bypass=0" ;;
  noqueue) PACKET_TX="" ;;
  *) echo "QDISC must be pfifo_fast or noqueue, got '$QDISC'" >&2; exit 2 ;;
esac

echo 20000 >"$OUT/port"
next_port() {
  local p; p=$(cat "$OUT/port"); echo $((p + 1)) >"$OUT/port"; echo "$p"
}

# Waits (bounded) for the sink to say it receives.
wait_ready() {
  local f=$1 i
  for i in $(seq 1 100); do
    grep -q "receiving on" "$f" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "the sink did not start: $(cat "$f")" >&2
  return 1
}

# Nanoseconds the given threads have been on a CPU (schedstat).
cpu_ns() {
  local t=0 p v
  for p in "$@"; do
    v=$(cut -d' ' -f1 "/proc/$p/schedstat" 2>/dev/null) || v=0
    t=$((t + v))
  done
  echo "$t"
}

# The "user system" seconds /usr/bin/time wrote to $1, summed ("nan" if none).
cpu_s() { awk 'NF == 2 { print $1 + $2; f = 1 } END { if (!f) print "nan" }' "$1" 2>/dev/null || echo nan; }

# run ROW [PERF_PREFIX] -> "received_pps sent received drops uncounted
#                           sender_cpu_s sink_cpu_s napi_cpu_ns"
# The CPU times say where the time goes: user + system of each end's process
# over its whole run (getrusage, through /usr/bin/time), and the NAPI
# thread's (schedstat) from the sink's start to its end.
run() {
  local row=$1 pp=${2:-} port; port=$(next_port)
  local sperf=() cperf=()
  if [ -n "$pp" ]; then
    sperf=(perf record -q -g -o "$pp-sink.data" --)
    cperf=(perf record -q -g -o "$pp-sender.data" --)
  fi
  local stime=(/usr/bin/time -f "%U %S" -o "$OUT/s.time") ctime=(/usr/bin/time -f "%U %S" -o "$OUT/c.time")
  : >"$OUT/s.time"
  : >"$OUT/c.time"
  local napi0 napi
  napi0=$(cpu_ns $NAPI_PIDS)
  if [ "$row" = iperf3 ]; then
    ip netns exec "$EX" "${stime[@]}" "${sperf[@]}" "${SPRIO[@]}" taskset -c 1 iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
    PIDS+=($!); local spid=$!
    sleep 0.5
    ip netns exec "$TR" "${ctime[@]}" "${cperf[@]}" "${CPRIO[@]}" taskset -c 0 timeout $((SECS + 10)) \
      iperf3 -c "$IP" -p "$port" -u -l 64 -b 0 -t "$SECS" -J >"$OUT/i.json" 2>/dev/null || true
    timeout 10 tail --pid="$spid" -f /dev/null || kill "$spid" 2>/dev/null || true
    wait "$spid" 2>/dev/null || true
    napi=$(($(cpu_ns $NAPI_PIDS) - napi0))
    python3 - "$OUT/i.json" "$(cpu_s "$OUT/c.time") $(cpu_s "$OUT/s.time") $napi" <<'EOF'
import json, sys
cpu = sys.argv[2].split()
try:
    s = json.load(open(sys.argv[1]))["end"]["sum"]
    got = s["packets"] - s["lost_packets"]
    # iperf3's server counts the loss it sees as sequence gaps.
    print(round(got / s["seconds"]), s["packets"], got, s["lost_packets"], 0, *cpu)
except Exception as e:
    print("nan 0 0 0 0", *cpu)
EOF
    return
  fi
  local s c
  case $row in
    udp) s="udp://$IP:$port?batch=32&rcvbuf=8M&rx=$SINK_RX"; c="udp://$IP:$port?batch=32" ;;
    packet) s="packet://veth0?port=$port&rx=$SINK_RX&version=3"; c="packet://veth0?port=$port&peer=$IP:$port&tx_copy=1$PACKET_TX" ;;
    xdp) s="xdp://veth0/0?port=$port&rx=$SINK_RX&ring=8192&frames=16384"; c="xdp://veth0/0?port=$port&peer=$IP:$port" ;;
  esac
  : >"$OUT/s.err"
  ip netns exec "$EX" "${stime[@]}" "${sperf[@]}" "${SPRIO[@]}" "$BIN" sink "$s" --cpu 1 --duration "$((SECS + 5))s" --idle 1s \
    --json >"$OUT/s.json" 2>"$OUT/s.err" &
  PIDS+=($!); local spid=$!
  wait_ready "$OUT/s.err" || { kill "$spid" 2>/dev/null; echo "nan 0 0 0 0 nan nan 0"; return; }
  ip netns exec "$TR" "${ctime[@]}" "${cperf[@]}" "${CPRIO[@]}" "$BIN" blast "$c" --cpu 0 --size 64 --duration "${SECS}s" \
    --json >"$OUT/b.json" 2>"$OUT/b.err" || true
  timeout $((SECS + 15)) tail --pid="$spid" -f /dev/null || kill -INT "$spid" 2>/dev/null || true
  wait "$spid" 2>/dev/null || true
  napi=$(($(cpu_ns $NAPI_PIDS) - napi0))
  python3 - "$OUT/s.json" "$OUT/b.json" "$(cpu_s "$OUT/c.time") $(cpu_s "$OUT/s.time") $napi" <<'EOF'
import json, sys
cpu = sys.argv[3].split()
try:
    s = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
    sent, got, drops = b["sent"], s["packets"], s["drops"]
    # Losses the sink counted: the sequence gaps, or the kernel's drop
    # counters of its socket (AF_XDP: dropped, ring full, fill queue empty;
    # AF_PACKET: PACKET_STATISTICS drops), which also see a loss at the end.
    be = s["capabilities"].get("backend") or {}
    k = be.get("socket") or {}
    kernel = sum(k.get(f, 0) for f in ("kernel_rx_dropped", "kernel_rx_ring_full", "kernel_rx_fill_empty"))
    kernel += be.get("ring_drops", 0)
    lost = max(0, sent - got)
    counted = min(lost, max(drops, kernel))
    print(round(got / s["active_s"]), sent, got, counted, lost - counted, *cpu)
except Exception as e:
    print("nan 0 0 0 0", *cpu)
EOF
}

ROWS=(iperf3 udp packet xdp)
: >"$OUT/res"
for r in $(seq 1 "$ROUNDS"); do
  for row in "${ROWS[@]}"; do
    echo "$row $(run "$row")" >>"$OUT/res"
  done
  echo "round $r of $ROUNDS done" >&2
done

if [ -n "${PERF:-}" ]; then
  for row in "${ROWS[@]}"; do
    run "$row" "$OUT/perf-$row" >/dev/null
    for end in sender sink; do
      [ -f "$OUT/perf-$row-$end.data" ] || continue
      perf report -i "$OUT/perf-$row-$end.data" --no-children --sort sym --stdio 2>/dev/null \
        | grep -v '^#' | grep '%' | head -40 >"$PERF/$row-$end.txt" || true
    done
  done
  echo "perf: top symbols in $PERF/ROW-{sender,sink}.txt" >&2
fi

echo "# command: scripts/bench-throughput.sh $SECS $ROUNDS"
echo "# kernel: $(uname -r); cpus: $(nproc); load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# 64-byte UDP payloads over the lab veth, sender CPU 0, receiver CPU 1, ${SECS}s per run, $ROUNDS rounds interleaved"
echo "# NAPI=$NAPI: $NAPI_DESC; QDISC=$QDISC on the sending veth; sinks rx=$SINK_RX; $([ "$RT" = 1 ] && echo "SCHED_FIFO: sender 10, sink $SINK_PRIO" || echo 'SCHED_OTHER')"
python3 - "$OUT/res" "${NAPI_PIDS:-}" <<'EOF'
import math, sys, statistics as st
napi = bool(sys.argv[2].strip())
res = {}
for line in open(sys.argv[1]):
    n, pps, sent, got, drops, unc, c_snd, c_snk, c_napi = line.split()
    res.setdefault(n, []).append((float(pps), int(sent), int(got), int(drops), int(unc),
                                  float(c_snd), float(c_snk), int(c_napi) / 1e9))
goals = {"udp": 1.2, "packet": 1.5, "xdp": 3.0}
names = {"iperf3": "iperf3 -u -l 64 -b 0", "udp": "udp batch=32", "packet": "packet (V3 rx, TX ring)", "xdp": "xdp (AF_XDP copy)"}
def med(v):
    v = [x for x in v if not math.isnan(x)]
    return st.median(v) if v else float("nan")
base = med([r[0] for r in res.get("iperf3", [])])
print(f"{'row':26} {'Mpps':>6} {'min':>6} {'max':>6} {'/iperf3':>8} {'goal':>6} {'holds':>6} {'sent':>10} {'received':>10} {'lost,counted':>12} {'uncounted':>10}")
ok = True
for n in ["iperf3", "udp", "packet", "xdp"]:
    v = res.get(n, [])
    p = [r[0] for r in v]
    m = med(p)
    ratio = m / base if base and base == base else float("nan")
    sent = sum(r[1] for r in v); got = sum(r[2] for r in v); drops = sum(r[3] for r in v); unc = sum(r[4] for r in v)
    g = goals.get(n)
    holds = "-" if g is None else ("yes" if ratio >= g and unc == 0 else "NO")
    if g is not None and holds != "yes":
        ok = False
    gs = "-" if g is None else f"{g:.1f}x"
    lo = min(p) / 1e6 if p else float("nan"); hi = max(p) / 1e6 if p else float("nan")
    print(f"{names[n]:26} {m/1e6:6.3f} {lo:6.3f} {hi:6.3f} {ratio:7.2f}x {gs:>6} {holds:>6} {sent:10d} {got:10d} {drops:12d} {unc:10d}")
# Where the time goes: CPU time (user + system) per message of each end
# over its whole run — the sender's per message sent, the sink's and the
# NAPI thread's per message received — median over the rounds.
print()
print(f"{'CPU ns per message':26} {'sender':>8} {'sink':>8} {'napi':>8}   (CPU 0: sender; CPU 1: sink, and the NAPI thread with NAPI=cpu1)")
for n in ["iperf3", "udp", "packet", "xdp"]:
    v = res.get(n, [])
    def per(i, by):
        x = [r[i] * 1e9 / r[by] for r in v if r[by] > 0 and r[i] == r[i]]
        return f"{st.median(x):8.0f}" if x else f"{'-':>8}"
    print(f"{names[n]:26} {per(5, 1)} {per(6, 2)} {per(7, 2) if napi else '-':>8}")
print("all goals hold" if ok else "not every goal holds")
EOF
