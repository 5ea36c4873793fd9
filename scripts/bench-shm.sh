#!/usr/bin/env bash
# Shared memory against the machine's floor, in one run on CPUs 0 and 1:
#
#  1. Round trips: `hftnet lab --transports shm,mem` (loopback mode, no
#     root needed) runs the bare cache-line ping-pong (the floor row), shm
#     ping-pong spinning and blocking, and the in-process mem:// pair,
#     interleaved round by round; prints each p50 and shm/spin's p50 as a
#     ratio to the floor's (goal: <= 1.5).
#  2. One-way throughput, 64-byte messages, writer on CPU 0 and reader on
#     CPU 1 in two processes: `hftnet blast` at a fixed --rate into
#     `hftnet sink` (goal: 20M messages/s with nothing missed), then flat
#     out (the writer never waits for readers: what the reader takes, and
#     what it was lapped by, exactly counted).
#
# Usage: scripts/bench-shm.sh [SECONDS_PER_ROW] [ROUNDS] [RATE]   (default 4 4 20000000)
set -euo pipefail

SECS=${1:-4}
ROUNDS=${2:-4}
RATE=${3:-20000000}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN="$HERE/target/release/hftnet"
OUT=$(mktemp -d)
NAME="bench-shm-$$"
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$BIN" shm rm "$NAME" --force >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT

(cd "$HERE" && cargo build --release -q)

echo "== round trips: lab --loopback --transports shm,mem --duration ${SECS}s --rounds $ROUNDS"
"$BIN" lab --loopback --transports shm,mem --duration "${SECS}s" --rounds "$ROUNDS" \
  --json "$OUT/lab.json" | grep -E '^(transport|floor|shm|mem) '
python3 - "$OUT/lab.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rows = {(r["rung"]["transport"], r["rung"]["strategy"]): r for r in d["results"]}
floor = d.get("floor_p50_ns")
spin = rows.get(("shm", "spin"), {}).get("rtt_ns") or {}
if not floor or not spin:
    sys.exit("no floor or shm/spin figures: " + json.dumps([r.get("note") for r in d["results"]]))
print(f"floor p50 {floor} ns, shm/spin p50 {spin['p50']} ns: ratio {spin['p50'] / floor:.2f} (goal <= 1.5)")
PY

sink() { # URI_PARAMS SECONDS -> JSON in $OUT/sink.json
  "$BIN" sink "shm://$NAME?rx=spin" --cpu 1 --duration "$2" --idle 1s --json >"$OUT/sink.json" &
  PIDS+=($!)
  for _ in $(seq 100); do [ -e "/dev/shm/hftnet-shm.$NAME.s2c" ] && break; sleep 0.05; done
}

report() { # LABEL
  python3 - "$1" "$OUT/blast.json" "$OUT/sink.json" <<'PY'
import json, sys
b, s = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
r = s["capabilities"]["backend"]["reader"]
print(f"{sys.argv[1]}: sent {b['sent']} at {b['pps']/1e6:.1f}M/s; received {s['packets']} at "
      f"{s['pps']/1e6:.1f}M/s; lapped {r['lapped']} times, missed {r['missed']} (sink's gap count {s['drops']})")
PY
}

# A ring of 2^20 slots (128 MiB) gives the reader 50 ms of slack at 20M/s:
# a hypervisor stall shorter than that costs nothing.
echo "== one way, 64 B, blast --rate $RATE -> sink (ring of 1048576 slots)"
sink x $((SECS + 4))s
"$BIN" blast "shm://$NAME?slots=1048576&size=64" --cpu 0 --duration "${SECS}s" --size 64 \
  --rate "$RATE" --json >"$OUT/blast.json"
wait "${PIDS[-1]}" || true
report "fixed rate"

echo "== one way, 64 B, blast flat out -> sink"
sink x $((SECS + 4))s
"$BIN" blast "shm://$NAME?slots=65536&size=64" --cpu 0 --duration "${SECS}s" --size 64 \
  --json >"$OUT/blast.json"
wait "${PIDS[-1]}" || true
report "flat out"
