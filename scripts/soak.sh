#!/usr/bin/env bash
# Soak: a fixed-rate ping-pong between two processes (`hftnet pong` and
# `hftnet ping --rate`) on every transport that runs as two processes, one
# transport after the other, each for MINUTES. It checks two things:
#
#  1. No memory growth. The resident set size (VmRSS of /proc/PID/status) of
#     both processes is sampled every second: at the start, after the
#     warm-up (WARMUP_S, default 10% of the run, between 5 and 60 s), and at
#     the end. A transport fails when either process's end RSS exceeds its
#     after-warm-up RSS by more than MARGIN_KB (default 2048 KiB).
#  2. Balanced accounting at the end, from both processes' JSON
#     (`ping --json`, `pong --json`): pong echoed every message it received
#     without a send or receive error, ping's replies are no more than pong
#     echoed and pong got no more than ping sent; xdp: every UMEM frame
#     accounted for (free + fill + in flight == total, none lost, no bad
#     descriptor); packet: no ring frame stray (rx_stray, tx_stray 0, no
#     more frames with the kernel than committed, none left with user
#     space); xdp and packet: every frame taken off the ring delivered or
#     counted as dropped; shm: what each end published is what the other end
#     read (nothing missed); uring: no failed send completion, every receive
#     slot armed, ready or waiting to be armed again.
#
# udp, tcp, uring, packet and xdp run between the two namespaces of a lab
# (root; without it udp, tcp and uring run over loopback and packet and xdp
# are skipped, said so), shm in this namespace. mem is not soaked here: its
# two ends live in one process (its loops are checked allocation-free by
# crates/hftnet-bench/tests/alloc.rs). Bounded: each transport runs MINUTES
# (plus at most 10 s of start and drain), probes at RATE/s. Everything it
# starts (its processes by PID, its lab, its shm rings) is removed on exit,
# also on Ctrl-C.
#
# Usage: scripts/soak.sh [MINUTES] [RATE]      (default 10 1000)
#   MINUTES  per transport, a positive number (0.5 = 30 s), at most 1440
#   RATE     probes per second, 1 to 100000
# Environment: TRANSPORTS (default "udp tcp uring packet xdp shm"),
#   MARGIN_KB, WARMUP_S, SAMPLE_S (progress line period, default 60),
#   BIN (default: target/release/hftnet, built first).
# Exit: 0 when every transport run passed, 1 when one failed, 2 on bad input.
set -euo pipefail

MINUTES=${1:-10}
RATE=${2:-1000}
die() { echo "soak.sh: $*" >&2; exit 2; }
[[ $MINUTES =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "MINUTES must be a positive number, not '$MINUTES'"
[[ $RATE =~ ^[0-9]+$ ]] || die "RATE must be a whole number of probes per second, not '$RATE'"
SECS=$(awk -v m="$MINUTES" 'BEGIN { printf "%d", m * 60 + 0.5 }')
((SECS >= 1 && SECS <= 86400)) || die "MINUTES must give 1 s to 1440 min, not '$MINUTES'"
((RATE >= 1 && RATE <= 100000)) || die "RATE must be 1 to 100000 probes/s, not $RATE"
MARGIN_KB=${MARGIN_KB:-2048}
[[ $MARGIN_KB =~ ^[0-9]+$ ]] || die "MARGIN_KB must be a whole number of KiB, not '$MARGIN_KB'"
if [[ -z ${WARMUP_S:-} ]]; then
  WARMUP_S=$((SECS / 10))
  ((WARMUP_S < 5)) && WARMUP_S=5
  ((WARMUP_S > 60)) && WARMUP_S=60
fi
[[ $WARMUP_S =~ ^[0-9]+$ ]] || die "WARMUP_S must be whole seconds, not '$WARMUP_S'"
((WARMUP_S < SECS)) || die "the warm-up (${WARMUP_S} s) must be shorter than the run (${SECS} s)"
SAMPLE_S=${SAMPLE_S:-60}
[[ $SAMPLE_S =~ ^[1-9][0-9]*$ ]] || die "SAMPLE_S must be whole seconds, at least 1, not '$SAMPLE_S'"
TRANSPORTS=${TRANSPORTS:-udp tcp uring packet xdp shm}
for t in $TRANSPORTS; do
  case $t in
    udp | tcp | uring | packet | xdp | shm) ;;
    mem) die "mem cannot be soaked as two processes (both ends live in one process)" ;;
    *) die "unknown transport '$t' (udp tcp uring packet xdp shm)" ;;
  esac
done
command -v python3 >/dev/null || die "python3 is needed to read the JSON reports"

HERE=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${BIN:-} ]]; then
  BIN="$HERE/target/release/hftnet"
  (cd "$HERE" && cargo build --release -q -p hftnet)
fi
[[ -x $BIN ]] || die "no hftnet binary at $BIN"

OUT=$(mktemp -d /tmp/hftnet-soak.XXXXXX)
# A lab named t<PID>-... belongs to a running process (this script) for
# `hftnet lab down --all`, which then leaves it alone while the soak runs.
LAB="t$$-soak"
SHM="soak-$$"
PIDS=()
LAB_UP=0
if [[ $(id -u) -eq 0 ]]; then
  TRADER=(ip netns exec "hft-$LAB-trader")
  EXCHANGE=(ip netns exec "hft-$LAB-exchange")
  SERVER_IP=198.18.0.2
else
  TRADER=()
  EXCHANGE=()
  SERVER_IP=127.0.0.1
  echo "# not root: udp, tcp and uring over loopback; packet and xdp skipped"
fi

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  PIDS=()
  if ((LAB_UP)); then "$BIN" lab down --name "$LAB" >/dev/null 2>&1 || true; fi
  "$BIN" shm rm "$SHM" --force >/dev/null 2>&1 || true
  rm -rf "$OUT"
}
trap cleanup EXIT
trap 'echo; echo "soak.sh: interrupted, cleaning up" >&2; exit 130' INT TERM

rss_kb() { # PID -> VmRSS in KiB, or empty when the process is gone
  awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || true
}

if [[ $(id -u) -eq 0 ]] && [[ " $TRANSPORTS " =~ \ (udp|tcp|uring|packet|xdp)\  ]]; then
  "$BIN" lab up --name "$LAB" >/dev/null
  LAB_UP=1
fi

echo "# soak: ${SECS} s per transport at ${RATE} probes/s; warm-up ${WARMUP_S} s; RSS margin ${MARGIN_KB} KiB"
echo "# binary: $BIN"
FAILED=0
SUMMARY=()
PORT=9700
for t in $TRANSPORTS; do
  PORT=$((PORT + 1))
  where_s=("${EXCHANGE[@]}")
  where_c=("${TRADER[@]}")
  case $t in
    udp | tcp | uring)
      server="$t://$SERVER_IP:$PORT"
      client="$server"
      ;;
    packet)
      server="packet://veth0?port=$PORT"
      client="packet://veth0?port=$PORT&peer=$SERVER_IP:$PORT"
      ;;
    xdp)
      server="xdp://veth0/0?port=$PORT"
      client="xdp://veth0/0?port=$PORT&peer=$SERVER_IP:$PORT"
      ;;
    shm)
      # 1024 slots: the warm-up writes every page of both rings (a ring's
      # pages count in its writer's RSS once written: growth, not a leak).
      server="shm://$SHM?slots=1024"
      client="$server"
      where_s=()
      where_c=()
      ;;
  esac
  if [[ $(id -u) -ne 0 ]] && [[ $t == packet || $t == xdp ]]; then
    echo "== $t: SKIPPED (needs root for the lab, CAP_NET_RAW / CAP_BPF)"
    SUMMARY+=("$(printf '%-7s %s' "$t" "skipped: not root")")
    continue
  fi
  echo "== $t: pong $server / ping $client"
  "${where_s[@]}" "$BIN" pong "$server" --duration "$((SECS + 60))s" --json \
    >"$OUT/$t.pong.json" 2>"$OUT/$t.pong.err" &
  pong=$!
  PIDS+=("$pong")
  for _ in $(seq 100); do
    grep -q '^# command: pong' "$OUT/$t.pong.err" 2>/dev/null && break
    kill -0 "$pong" 2>/dev/null || break
    sleep 0.1
  done
  if ! grep -q '^# command: pong' "$OUT/$t.pong.err" 2>/dev/null; then
    echo "   pong did not start:"; sed 's/^/   /' "$OUT/$t.pong.err"
    FAILED=1
    SUMMARY+=("$(printf '%-7s %s' "$t" "FAILED: pong did not start")")
    continue
  fi
  sleep 0.3
  "${where_c[@]}" "$BIN" ping "$client" --rate "$RATE" --duration "${SECS}s" \
    --warmup "$RATE" --json >"$OUT/$t.ping.json" 2>"$OUT/$t.ping.err" &
  ping=$!
  PIDS+=("$ping")
  ping_start="" pong_start="" ping_base="" pong_base="" ping_end="" pong_end=""
  elapsed=0
  while kill -0 "$ping" 2>/dev/null; do
    a=$(rss_kb "$ping")
    b=$(rss_kb "$pong")
    if [[ -n $a && -n $b ]]; then
      [[ -z $ping_start ]] && ping_start=$a pong_start=$b
      ((elapsed == WARMUP_S)) && ping_base=$a pong_base=$b
      ping_end=$a
      pong_end=$b
      if ((elapsed > 0 && elapsed % SAMPLE_S == 0)); then
        echo "   ${elapsed}s: ping RSS ${a} KiB, pong RSS ${b} KiB"
      fi
    fi
    ((elapsed > SECS + 30)) && { echo "   ping overran its duration; stopping it"; kill -INT "$ping"; }
    sleep 1
    elapsed=$((elapsed + 1))
  done
  set +e
  wait "$ping"
  ping_rc=$?
  set -e
  pong_end=$(rss_kb "$pong")
  kill -INT "$pong" 2>/dev/null || true
  set +e
  wait "$pong"
  pong_rc=$?
  set -e
  PIDS=()
  [[ -z $ping_base ]] && ping_base=$ping_start pong_base=$pong_start
  verdict=$(python3 - "$t" "$OUT/$t.ping.json" "$OUT/$t.pong.json" "$ping_rc" "$pong_rc" \
    "${ping_start:-0}" "${ping_base:-0}" "${ping_end:-0}" \
    "${pong_start:-0}" "${pong_base:-0}" "${pong_end:-0}" "$MARGIN_KB" <<'PY'
import json, sys
t, ping_f, pong_f = sys.argv[1:4]
ping_rc, pong_rc = int(sys.argv[4]), int(sys.argv[5])
c_start, c_base, c_end, s_start, s_base, s_end, margin = map(int, sys.argv[6:13])
bad = []
try:
    c = json.load(open(ping_f))
except Exception as e:
    c = None
    bad.append(f"no ping report ({e})")
try:
    s = json.load(open(pong_f))
except Exception as e:
    s = None
    bad.append(f"no pong report ({e})")
if ping_rc != 0:
    bad.append(f"ping exited {ping_rc}")
if pong_rc != 0:
    bad.append(f"pong exited {pong_rc}")
for who, base, end in (("ping", c_base, c_end), ("pong", s_base, s_end)):
    if base == 0 or end == 0:
        bad.append(f"{who} RSS not sampled")
    elif end - base > margin:
        bad.append(f"{who} RSS grew {end - base} KiB after warm-up (margin {margin})")
lost = "-"
if c and s:
    lost = c["lost"]
    probes = c["sent"] + c["warmup"]
    if c.get("aborted"):
        bad.append(f"ping aborted: {c['aborted']}")
    if s["send_errors"] or s["recv_errors"]:
        bad.append(f"pong send/recv errors {s['send_errors']}/{s['recv_errors']}")
    if s["echoed"] + s["truncated"] != s["received"]:
        bad.append(f"pong echoed {s['echoed']} of {s['received']}")
    if s["received"] > probes:
        bad.append(f"pong received {s['received']} of {probes} probes sent")
    replies = c["sent"] - c["lost"]
    if replies > s["echoed"]:
        bad.append(f"ping got {replies} replies, pong echoed {s['echoed']}")
    for who, r in (("ping", c), ("pong", s)):
        b = r["capabilities"].get("backend") or {}
        if "frames" in b:
            f = b["frames"]
            dropped = sum(f[k] for k in ("oversized", "truncated", "malformed", "ip_checksum",
                                         "udp_checksum", "ip_options", "fragment", "other"))
            if f["rx_frames"] != f["delivered"] + dropped:
                bad.append(f"{who}: {f['rx_frames']} frames taken, {f['delivered']} delivered + {dropped} dropped")
        if "umem" in b:
            u = b["umem"]
            if u["free"] + u["fill"] + u["tx_in_flight"] + u["lost"] != u["total"] or u["lost"]:
                bad.append(f"{who}: UMEM unbalanced {u}")
            if b["socket"]["bad_descriptors"]:
                bad.append(f"{who}: {b['socket']['bad_descriptors']} bad descriptors")
        if "ring" in b:
            g = b["ring"]
            if not g["balanced"] or g["rx_user"]:
                bad.append(f"{who}: ring unbalanced {g}")
        if b.get("kind") == "uring":
            if b.get("tx_errors"):
                bad.append(f"{who}: {b['tx_errors']} failed send completions")
            if b["slots"]["rx_balanced"] is False:
                bad.append(f"{who}: receive slots unbalanced {b['slots']}")
    if t == "shm":
        cb, sb = c["capabilities"]["backend"], s["capabilities"]["backend"]
        for a, b, an, bn in ((cb, sb, "ping", "pong"), (sb, cb, "pong", "ping")):
            got = b["reader"]["received"] + b["reader"]["missed"]
            if a["published"] != got or b["reader"]["missed"]:
                bad.append(f"{an} published {a['published']}, {bn} read {b['reader']['received']}"
                           f" and missed {b['reader']['missed']}")
acct = "balanced" if not bad else "; ".join(bad)
verdict = "ok" if not bad else "FAILED"
print(f"{t:<7} ping RSS KiB {c_start:>6} / {c_base:>6} / {c_end:>6}   pong RSS KiB {s_start:>6} / "
      f"{s_base:>6} / {s_end:>6}   lost {lost}   {verdict}: {acct}")
PY
  ) || verdict="$t FAILED: the reports could not be checked"
  echo "   $verdict"
  [[ $verdict == *" ok: balanced" ]] || FAILED=1
  SUMMARY+=("$verdict")
done

echo
echo "# RSS: start / after ${WARMUP_S} s warm-up / end, per process"
printf '%s\n' "${SUMMARY[@]}"
exit "$FAILED"
