#!/usr/bin/env bash
# The exchange flat out into the feed handler, in one lab (two network
# namespaces joined by a veth pair), the exchange pinned to CPU 0 and the
# feed handler to CPU 1, rounds interleaved:
#
#  clean   `hftnet exchange --rate 0` (a generated day, packets packed up to
#          --max-payload 1400) on feeds A and B (unicast UDP to the trader
#          namespace) with its re-request server; `hftnet feed` on both feeds
#          with recovery. Goals: the exchange publishes >= 5M messages/s, the
#          feed handler receives >= 3M messages/s, 0 lost, both exit 0.
#  loss    the same with 1% of the packets of each of A and B dropped by the
#          exchange's fault middleware (--loss-a 0.01 --loss-b 0.01). Goal:
#          the feed recovers everything (0 lost, exit 0) at >= 1M messages/s.
#  book    `clean` with the exchange also building its reference books
#          (--book): what they cost (no goal).
#  file    `clean` with the same day replayed from a file (`--file`, written
#          once by `hftnet exchange --write` with the same seed) instead of
#          generated: the generator's cost is the difference (reading the
#          mapped file stays; no goal).
#  base    (only with BASE=/path/to/an/older/hftnet) `clean` with that
#          binary's exchange, for the side-by-side ratio.
#
# Per run it prints the exchange's rate (wall clock) and its rate per second
# of CPU it got (perf stat's task-clock: the one-core figure whatever else
# ran), messages per packet, the feed handler's sustained rate (delivered
# messages over the time from its first datagram to its last), lost,
# re-requests, its per-packet handling time p50/p99/p99.9 (ns) and both exit
# codes; then the medians and whether the goals hold.
#
# The machine is shared: by default both ends run SCHED_FIFO (chrt -f 10,
# RT=0 to turn off) so that each has its CPU rather than a share of it. The
# kernel still leaves other tasks 5% of each CPU (sched_rt_runtime_us; not
# changed here) and throttles a real-time task that used up 95% of a second:
# a run is kept well under a second of work (MESSAGES: 2M messages take
# ~0.4 s on a host that reaches the 5M/s goal, ~0.7 s on one whose kernel
# runs at half that speed; the run line warns when a run took longer than
# 0.9 s), and the feed handler
# waits with rx=adaptive (spins, then sleeps in epoll) so that it does not
# spend its budget before the exchange starts.
#
# The feed handler runs with its default reorder window (65,536 messages):
# the answer to a re-request queues behind the live packets already in the
# sending CPU's backlog, all of which the window must hold until it comes
# (`buffered` in the run line is the most it held; with a 16,384-message
# window 3 runs in 15 lost one packet's worth of a 1% loss run this way).
#
# Usage: scripts/bench-exchange.sh [MESSAGES] [ROUNDS]   (default 2000000 3)
#        BASE=/tmp/hftnet-old scripts/bench-exchange.sh   adds the `base` case
#        NO_BUILD=1 ...                                   uses target/release as is
# Needs root (network namespaces), python3; perf (apt-get install linux-perf)
# for the CPU time.
set -euo pipefail

MESSAGES=${1:-2000000}
ROUNDS=${2:-3}
RT=${RT:-1}
BASE=${BASE:-}
NAME="bx$$"
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN="$HERE/target/release/hftnet"
TR="hft-$NAME-trader"
EX="hft-$NAME-exchange"
TRADER=198.18.0.1
EXCHANGE=198.18.0.2
OUT=$(mktemp -d)
PIDS=()

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 missing" >&2; exit 2; }
PERF=1
command -v perf >/dev/null || { PERF=0; echo "# perf missing (apt-get install linux-perf): no CPU time" >&2; }
[ -z "$BASE" ] || [ -x "$BASE" ] || { echo "BASE=$BASE is not an executable" >&2; exit 2; }

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  "$BIN" lab down --name "$NAME" >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT

[ -n "${NO_BUILD:-}" ] || (cd "$HERE" && cargo build --release -q -p hftnet)
"$BIN" lab up --name "$NAME" >/dev/null

PRIO=()
[ "$RT" = 1 ] && PRIO=(chrt -f 10)
echo 31000 >"$OUT/port"

# run LABEL BINARY EXCHANGE_ARGS... : one exchange -> feed run.
run() {
  local label=$1 bin=$2; shift 2
  local port; port=$(cat "$OUT/port"); echo $((port + 3)) >"$OUT/port"
  local a="udp://$TRADER:$port" b="udp://$TRADER:$((port + 1))" rr="udp://$EXCHANGE:$((port + 2))"
  local d="$OUT/$label.$(date +%s%N)"; mkdir -p "$d"
  ip netns exec "$TR" taskset -c 1 "${PRIO[@]}" timeout 120 "$bin" feed \
    --feed-a "$a?rx=adaptive&rcvbuf=8M" --feed-b "$b?rx=adaptive&rcvbuf=8M" --retransmit "$rr" \
    --cpu 1 --idle-timeout 10s --duration 60s --json >"$d/feed.json" 2>"$d/feed.err" &
  local f=$!; PIDS+=("$f")
  sleep 1 # the feed's sockets bound; and a second of real-time budget
  local stat=()
  [ "$PERF" = 1 ] && stat=(perf stat -x, -e task-clock -o "$d/stat")
  set +e
  ip netns exec "$EX" taskset -c 0 "${PRIO[@]}" timeout 120 "${stat[@]}" "$bin" exchange \
    --feed-a "$a" --feed-b "$b" --retransmit "$rr" --rate 0 \
    --linger 1s --json "$@" >"$d/ex.json" 2>"$d/ex.err"
  echo $? >"$d/ex.rc"
  wait "$f"; echo $? >"$d/feed.rc"
  set -e
  echo "$label" >"$d/label"
  python3 - "$d" <<'PY'
import json, sys, os
d = sys.argv[1]
label = open(f"{d}/label").read().strip()
try:
    e, f = json.load(open(f"{d}/ex.json")), json.load(open(f"{d}/feed.json"))
except Exception as err:
    print(f"{label:6} run failed: {err}; exchange: {open(d + '/ex.err').read()!r} feed: {open(d + '/feed.err').read()!r}")
    sys.exit(0)
cpu = None
if os.path.exists(f"{d}/stat"):
    for line in open(f"{d}/stat"):
        if "task-clock" in line:
            cpu = float(line.split(",")[0]) / 1e3
h = f.get("handle_packet_ns") or {}
row = {
    "label": label,
    "ex_rate": e["messages_per_sec"],
    "ex_cpu_rate": round(e["messages"] / cpu) if cpu else None,
    "per_packet": e["messages"] / max(e["packets"], 1),
    # (a feed of before messages_per_sec: the same figure from its seconds)
    "feed_rate": f.get("messages_per_sec", round(f["delivered"] / max(f["seconds"], 1e-9))),
    "delivered": f["delivered"], "messages": e["messages"],
    "lost": f["lost"], "requests": f["requests"],
    "p50": h.get("p50"), "p99": h.get("p99"), "p99_9": h.get("p99_9"),
    "ex_rc": int(open(f"{d}/ex.rc").read()), "feed_rc": int(open(f"{d}/feed.rc").read()),
    "dropped": e["faults"]["a"]["dropped"] + e["faults"]["b"]["dropped"],
    "buffered": f.get("buffered_high_water"), "seconds": e["seconds"],
}
json.dump(row, open(f"{d}/row.json", "w"))
fmt = lambda v: "-" if v is None else f"{v/1e6:.2f}M"
print(f"{label:6} exchange {fmt(row['ex_rate'])}/s ({fmt(row['ex_cpu_rate'])} per CPU-s, "
      f"{row['per_packet']:.1f} msg/packet, {row['dropped']} packets dropped) -> feed "
      f"{fmt(row['feed_rate'])}/s, {row['delivered']}/{row['messages']} delivered, lost {row['lost']}, "
      f"{row['requests']} re-requests, buffered <= {row['buffered']}, "
      f"per packet p50/p99/p99.9 {row['p50']}/{row['p99']}/{row['p99_9']} ns; "
      f"exit {row['ex_rc']}/{row['feed_rc']}"
      + (f"  [warning: {row['seconds']:.2f} s: past 0.9 s a SCHED_FIFO end can be throttled"
         " for 50 ms; use fewer MESSAGES]" if row['seconds'] > 0.9 else ""))
PY
  sleep 1
}

"$BIN" exchange --write "$OUT/day.itch" --messages "$MESSAGES" >/dev/null
echo "# $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# $MESSAGES messages per run, $ROUNDS rounds, exchange on CPU 0, feed on CPU 1, $([ "$RT" = 1 ] && echo 'SCHED_FIFO 10' || echo 'SCHED_OTHER')"
for r in $(seq "$ROUNDS"); do
  echo "## round $r"
  [ -z "$BASE" ] || run base "$BASE" --messages "$MESSAGES"
  run clean "$BIN" --messages "$MESSAGES"
  run loss "$BIN" --messages "$MESSAGES" --loss-a 0.01 --loss-b 0.01
  run book "$BIN" --messages "$MESSAGES" --book
  # The whole file: the same day, its end events included (--messages
  # counts a file's records, 100 000 by default: past the day's, so all).
  run file "$BIN" --file "$OUT/day.itch" --messages "$((MESSAGES + 1000))"
done

python3 - "$OUT" <<'PY'
import json, sys, glob, statistics
rows = [json.load(open(p)) for p in glob.glob(f"{sys.argv[1]}/*/row.json")]
by = {}
for r in rows:
    by.setdefault(r["label"], []).append(r)
med = lambda label, k: statistics.median([r[k] for r in by.get(label, []) if r[k] is not None] or [0])
print("\n# medians")
for label in ["base", "clean", "loss", "book", "file"]:
    if label in by:
        print(f"{label:6} exchange {med(label, 'ex_rate')/1e6:.2f}M/s ({med(label, 'ex_cpu_rate')/1e6:.2f}M per CPU-s, "
              f"{med(label, 'per_packet'):.1f} msg/packet), feed {med(label, 'feed_rate')/1e6:.2f}M/s, "
              f"per packet p50 {med(label, 'p50'):.0f} p99 {med(label, 'p99'):.0f} p99.9 {med(label, 'p99_9'):.0f} ns")
if "base" in by:
    print(f"ratio clean/base: exchange {med('clean', 'ex_rate')/max(med('base', 'ex_rate'), 1):.2f}x wall, "
          f"{med('clean', 'ex_cpu_rate')/max(med('base', 'ex_cpu_rate'), 1):.2f}x per CPU-s")
if "book" in by:
    print(f"ratio book/clean (cost of --book): exchange {med('book', 'ex_rate')/max(med('clean', 'ex_rate'), 1):.2f}x")
if "file" in by:
    print(f"ratio file/clean (the day replayed, not generated): exchange "
          f"{med('file', 'ex_rate')/max(med('clean', 'ex_rate'), 1):.2f}x")
whole = lambda label: all(r["lost"] == 0 and r["feed_rc"] == 0 and r["ex_rc"] == 0 and r["delivered"] == r["messages"] for r in by.get(label, [])) and label in by
goals = [
    ("exchange >= 5M messages/s at --rate 0 (median, clean)", med("clean", "ex_rate") >= 5e6),
    ("feed >= 3M messages/s, 0 lost, exit 0 (median rate; every clean run whole)", med("clean", "feed_rate") >= 3e6 and whole("clean")),
    ("1% loss on A and B: everything recovered at >= 1M messages/s (median; every loss run whole)", med("loss", "feed_rate") >= 1e6 and whole("loss")),
]
print("\n# goals")
for text, ok in goals:
    print(f"{'met    ' if ok else 'NOT MET'} {text}")
sys.exit(0 if all(ok for _, ok in goals) else 1)
PY
