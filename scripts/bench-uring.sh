#!/usr/bin/env bash
# io_uring against kernel sockets, hftnet at both ends, in one lab run:
#
#   hftnet lab --transports udp/spin,udp/block,uring/spin,uring/spin+multishot,uring/wait
#
# 64-byte round trips over the lab's veth, client on CPU 0 and server on
# CPU 1, the rows interleaved round by round (the lab has no SQPOLL row: on
# two CPUs its kernel thread competes with the spinning ends). Prints the
# table, the ring setup flags the kernel granted, and the two ratios of p50s
# with their goals:
#
#   uring/spin p50 / udp/spin p50   <= 1.2
#   uring/wait p50 / udp/block p50  <= 1.1
#
# Exit status 0 when both goals hold, 1 when one does not, 2 on error.
# Usage: scripts/bench-uring.sh [DURATION_PER_ROW] [ROUNDS]   (default 10s 10)
# Needs root (network namespaces) and python3.
set -euo pipefail

DURATION=${1:-10s}
ROUNDS=${2:-10}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN="$HERE/target/release/hftnet"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 missing" >&2; exit 2; }
(cd "$HERE" && cargo build --release -q -p hftnet)

ROWS="udp/spin,udp/block,uring/spin,uring/spin+multishot,uring/wait"
echo "# command: hftnet lab --transports $ROWS --duration $DURATION --rounds $ROUNDS"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: compare ratios, not figures)"
"$BIN" lab --transports "$ROWS" --duration "$DURATION" --rounds "$ROUNDS" \
  --json "$OUT/lab.json" | grep -v '^# '

python3 - "$OUT/lab.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
rows = {f'{r["rung"]["transport"]}/{r["rung"]["strategy"]}': r for r in j["results"]}

def p50(name):
    r = rows.get(name)
    if r is None or not r.get("rtt_ns"):
        sys.exit(f"bench-uring: row {name} has no round trips: {r and r.get('note')}")
    return r["rtt_ns"]["p50"]

def walk(v, key):
    """Every list under `key` anywhere in `v`."""
    if isinstance(v, dict):
        for k, x in v.items():
            if k == key and isinstance(x, list):
                yield x
            yield from walk(x, key)
    elif isinstance(v, list):
        for x in v:
            yield from walk(x, key)

flags = set()
for name, r in rows.items():
    if name.startswith("uring/"):
        for fl in walk(r, "setup_flags"):
            flags.update(fl)
        for notes in walk(r, "notes"):
            for n in notes:
                if isinstance(n, str) and (n.startswith("ring: ") or n.startswith("fallback: ring setup")):
                    flags.add("note: " + n)
print()
print("ring setup granted:", ", ".join(sorted(f for f in flags if not f.startswith("note: "))) or "none")
for f in sorted(f for f in flags if f.startswith("note: ")):
    print("  " + f[6:])
ok = True
for a, b, goal in [("uring/spin", "udp/spin", 1.2), ("uring/wait", "udp/block", 1.1)]:
    pa, pb = p50(a), p50(b)
    ratio = pa / pb
    held = ratio <= goal
    ok &= held
    print(f"{a} p50 {pa/1000:.2f} us / {b} p50 {pb/1000:.2f} us = {ratio:.2f}x "
          f"(goal <= {goal}x): {'met' if held else 'NOT met'}")
print("goals:", "both met" if ok else "NOT met")
sys.exit(0 if ok else 1)
PY
