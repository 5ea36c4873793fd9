#!/usr/bin/env bash
# The seeds' internal pipeline over shared memory, hop by hop, over loopback
# (no root needed): `hftnet exchange` → UDP → `hftnet feed --publish
# shm://NAME` → `md_subscriber` in a third process. Once with a spinning
# subscriber alone on CPU 1 (the feed and the exchange share CPU 0), once
# with a blocking one (rx=block, the default). Prints, per run, the latency
# each hop adds as percentiles (ns): feed receive → publish (decode, book,
# record), publish → subscriber receive (the shm:// hop), and end to end;
# plus records published and received, and missed.
#
# Usage: scripts/bench-md-pipeline.sh [MESSAGES] [RATE]   (default 200000 20000)
set -euo pipefail

MESSAGES=${1:-200000}
RATE=${2:-20000}
HERE=$(cd "$(dirname "$0")/.." && pwd)
B="$HERE/target/release"
OUT=$(mktemp -d)
NAME="bench-md-$$"
PORT=$((31300 + $$ % 500 * 3))
PIDS=()

cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$B/hftnet" shm rm "$NAME" --force >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT

(cd "$HERE" && cargo build --release -q -p hftnet && \
  cargo build --release -q -p hftnet-apps --example md_subscriber)

run() { # LABEL SUBSCRIBER_URI
  local d="$OUT/$1"; mkdir -p "$d"
  taskset -c 1 "$B/examples/md_subscriber" "$2" --json --idle-timeout 30s >"$d/sub.json" &
  PIDS+=($!); local s=$!
  "$B/hftnet" feed --feed-a "udp://127.0.0.1:$PORT" --feed-b "udp://127.0.0.1:$((PORT + 1))" \
    --retransmit "udp://127.0.0.1:$((PORT + 2))" --publish "shm://$NAME" --cpu 0 --json >"$d/feed.json" &
  PIDS+=($!); local f=$!
  sleep 0.5
  taskset -c 0 "$B/hftnet" exchange --feed-a "udp://127.0.0.1:$PORT" \
    --feed-b "udp://127.0.0.1:$((PORT + 1))" --retransmit "udp://127.0.0.1:$((PORT + 2))" \
    --messages "$MESSAGES" --rate "$RATE" --linger 1s --json >"$d/ex.json"
  wait "$f" || true
  wait "$s" || true
  python3 - "$1" "$d" <<'PY'
import json, sys
label, d = sys.argv[1], sys.argv[2]
f, s = json.load(open(f"{d}/feed.json")), json.load(open(f"{d}/sub.json"))
p = f["publish"]
print(f"{label}: {p['records']} records published ({p['top_of_book']} tops, {p['trades']} trades), "
      f"{s['received']} received, {s['missed']} missed; receive stamp: {p['rx_stamp']}")
for name, key in [("feed receive -> publish", "feed_receive_to_publish_ns"),
                  ("shm hop (publish -> receive)", "publish_to_receive_ns"),
                  ("end to end", "end_to_end_ns")]:
    h = s[key]
    print(f"  {name:30} p50 {h['p50']:>8}  p90 {h['p90']:>8}  p99 {h['p99']:>9}  p99.9 {h['p99_9']:>9}  max {h['max']:>9}")
PY
}

run "spinning subscriber" "shm://$NAME?rx=spin"
run "blocking subscriber" "shm://$NAME?rx=block"
