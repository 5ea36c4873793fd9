#!/usr/bin/env bash
# Two builds of hftnet side by side in one lab, interleaved: the same 64-byte
# round trips (client on CPU 0, server on CPU 1, both ends of the same
# build) over every kernel and bypass path, the two builds alternating run
# by run (A then B in odd rounds, B then A in even ones) so the drift of a
# noisy machine falls on both alike. Prints the median over the rounds of
# each row's p50 and p99 for A and B, and B/A.
#
# Usage: scripts/bench-compare.sh BIN_A BIN_B [SECONDS_PER_RUN] [ROUNDS]   (default 2 5)
#   ROWS_MATCH=REGEX runs only the rows whose name matches (e.g. ROWS_MATCH='packet|xdp').
#   e.g. keep a build before a change:  cp target/release/hftnet /tmp/hftnet-before
#        then after it:                 scripts/bench-compare.sh /tmp/hftnet-before target/release/hftnet
# Needs root (network namespaces). The lab is built by BIN_B.
set -euo pipefail

A=${1:?usage: bench-compare.sh BIN_A BIN_B [SECONDS] [ROUNDS]}
B=${2:?usage: bench-compare.sh BIN_A BIN_B [SECONDS] [ROUNDS]}
SECS=${3:-2}
ROUNDS=${4:-5}
NAME="cmp$$"
TR="hft-$NAME-trader"
EX="hft-$NAME-exchange"
IP=198.18.0.2
OUT=$(mktemp -d)
SPID=

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 1; }
for b in "$A" "$B"; do
  [ -x "$b" ] || { echo "$b: not an executable" >&2; exit 1; }
done

cleanup() {
  if [ -n "$SPID" ]; then kill "$SPID" 2>/dev/null || true; wait "$SPID" 2>/dev/null || true; fi
  "$B" lab down --name "$NAME" >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT

"$B" lab up --name "$NAME" >/dev/null

# name | server URI | client URI (PORT is replaced per run)
ROWS=(
  "udp-spin|udp://$IP:PORT?rx=spin|udp://$IP:PORT?rx=spin"
  "udp-block|udp://$IP:PORT?rx=block|udp://$IP:PORT?rx=block"
  "udp-spin-batch32|udp://$IP:PORT?rx=spin&batch=32|udp://$IP:PORT?rx=spin&batch=32"
  "tcp-spin|tcp://$IP:PORT?rx=spin|tcp://$IP:PORT?rx=spin"
  "mcast-spin|mcast://239.1.1.1:PORT?rx=spin&iface=veth0|mcast://239.1.1.1:PORT?rx=spin&iface=veth0"
  "uring-wait|uring://$IP:PORT?mode=wait|uring://$IP:PORT?mode=wait"
  "uring-spin-multishot|uring://$IP:PORT?mode=spin&multishot=1|uring://$IP:PORT?mode=spin&multishot=1"
  "packet-v2-spin|packet://veth0?port=PORT&rx=spin|packet://veth0?port=PORT&peer=$IP:PORT&rx=spin"
  "packet-v2-block|packet://veth0?port=PORT&rx=block|packet://veth0?port=PORT&peer=$IP:PORT&rx=block"
  "xdp-spin|xdp://veth0/0?port=PORT&rx=spin|xdp://veth0/0?port=PORT&peer=$IP:PORT&rx=spin"
  "xdp-block|xdp://veth0/0?port=PORT&rx=block|xdp://veth0/0?port=PORT&peer=$IP:PORT&rx=block"
  "xdp-server-udp-client|xdp://veth0/0?port=PORT&rx=spin|udp://$IP:PORT?rx=spin"
)
# Each run gets its own port (rtt runs in a subshell, so the number lives in
# a file).
echo 13000 >"$OUT/port"
if [ -n "${ROWS_MATCH:-}" ]; then
  kept=()
  for row in "${ROWS[@]}"; do
    [[ ${row%%|*} =~ $ROWS_MATCH ]] && kept+=("$row")
  done
  ROWS=("${kept[@]}")
fi

# rtt BIN SERVER CLIENT -> "p50 p99" (ns), or "- -" when the run failed
rtt() {
  local PORT; PORT=$(cat "$OUT/port"); echo $((PORT + 1)) >"$OUT/port"
  local s=${2//PORT/$PORT} c=${3//PORT/$PORT}
  ip netns exec "$EX" "$1" pong "$s" --cpu 1 >/dev/null 2>&1 &
  SPID=$!
  sleep 0.5
  if ip netns exec "$TR" "$1" ping "$c" --cpu 0 --size 64 --duration "${SECS}s" \
      --warmup 500 --json >"$OUT/p.json" 2>"$OUT/p.err"; then
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["rtt_ns"]; print(r["p50"], r["p99"])' "$OUT/p.json"
  else
    echo "- -"
    echo "  $1 ping $c failed:" >&2
    sed 's/^/    /' "$OUT/p.err" >&2
  fi
  kill -INT "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  SPID=
}

: >"$OUT/rtt"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then order="A B"; else order="B A"; fi
  for row in "${ROWS[@]}"; do
    IFS='|' read -r name s c <<<"$row"
    for which in $order; do
      if [ "$which" = A ]; then bin=$A; else bin=$B; fi
      echo "$name $which $(rtt "$bin" "$s" "$c")" >>"$OUT/rtt"
    done
  done
  echo "round $r of $ROUNDS done" >&2
done

python3 - "$OUT/rtt" "$A" "$B" <<'EOF'
import sys, statistics as st
rows = {}
for line in open(sys.argv[1]):
    name, which, p50, p99 = line.split()
    if p50 == "-":
        continue
    rows.setdefault(name, {"A": [], "B": []})[which].append((int(p50), int(p99)))
print(f"A = {sys.argv[2]}\nB = {sys.argv[3]}")
print(f"{'round trip (64 B)':24} {'A p50 µs':>9} {'B p50 µs':>9} {'B/A p50':>8} {'A p99 µs':>9} {'B p99 µs':>9} {'B/A p99':>8}")
for name, v in rows.items():
    if not v["A"] or not v["B"]:
        print(f"{name:24} failed for {'A' if not v['A'] else 'B'}")
        continue
    a50 = st.median(p for p, _ in v["A"]); b50 = st.median(p for p, _ in v["B"])
    a99 = st.median(q for _, q in v["A"]); b99 = st.median(q for _, q in v["B"])
    print(f"{name:24} {a50/1000:9.2f} {b50/1000:9.2f} {b50/a50:8.3f} {a99/1000:9.2f} {b99/1000:9.2f} {b99/a99:8.3f}")
EOF
