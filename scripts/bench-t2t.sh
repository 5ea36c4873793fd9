#!/usr/bin/env bash
# Tick-to-trade against the wire, in one lab run:
#
#   hftnet lab --transports udp/spin,udp/spin+timestamps,xdp/spin,tcp/spin
#
# The ping-pong rows of those (64-byte round trips, client on CPU 0,
# server on CPU 1) and, after each round of them, one tick-to-trade slice
# per market-data row (udp/spin, udp/spin+timestamps, xdp/spin: the
# exchange with a spinning order entry, tcp://IP:0?rx=spin, on CPU 1
# publishing a generated day — its gateway spins like the tcp/spin
# ping-pong server it is compared with — and a taker on CPU 0 sending its
# orders over tcp; each row twice, side by side: the trader's heartbeat
# every 100 us keeping its send path warm, and every 1 s (SoupBinTCP's own)
# leaving it cold — HEARTBEAT=LIST changes that, the first one is the one
# the goals hold), so both tables share the machine's
# drift. Prints both tables and the issue's goals with holds/NO:
#
#   internal t2t p50 over udp/spin (the kernel spin path)  <= 1.5 us
#   internal t2t p50 over AF_XDP  <  over the kernel path, from the same kind
#     of start: xdp/spin+timestamps vs udp/spin+timestamps (where software
#     first saw the packet: the XDP program's stamp, the kernel's receive
#     stamp) when this build's xdp has the row, else xdp/spin vs udp/spin
#     (both from the receive's return)
# and, marked "info" (printed with holds/NO, not in the exit status): the
# same 1.5 us against udp/spin+timestamps, which also holds the kernel's
# receive path, and the other xdp comparison.
#   external t2t p50 over MD         <= 1.3 x mean(MD ping-pong RTT p50,
#                                                  tcp ping-pong RTT p50)
#
# Internal: the trigger packet's receive to the kernel's software transmit
# stamp of the order (SCM_TSTAMP_SND: the trader's orders URI carries
# timestamps=tx; the return of the send is printed beside it);
# the receive is the kernel's software stamp on udp/spin+timestamps (the
# kernel's receive path and the socket queue included), else the clock when
# the packet's handling starts (udp/spin; xdp/spin, whose frames carry no
# stamp: the XDP redirect is the whole kernel path there). External: at the exchange, the return of the trigger
# packet's send to the order's receive — one way out over MD plus one way
# back over tcp plus the trader's work, hence the comparison with the mean
# of the two round trips.
#
# Exit status 0 when every goal holds, 1 when one does not, 2 on error.
# Usage: scripts/bench-t2t.sh [DURATION_PER_ROW] [ROUNDS]   (default 5s 5)
# Needs root (network namespaces, AF_XDP) and python3.
set -euo pipefail

DURATION=${1:-5s}
ROUNDS=${2:-5}
HERE=$(cd "$(dirname "$0")/.." && pwd)
BIN="$HERE/target/release/hftnet"
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces)" >&2; exit 2; }
command -v python3 >/dev/null || { echo "python3 missing" >&2; exit 2; }
(cd "$HERE" && cargo build --release -q -p hftnet)

ROWS="udp/spin,udp/spin+timestamps,xdp/spin,tcp/spin"
# The xdp row with the XDP program's receive stamps, when this build has it
# (asked with --rounds 0: the row is checked before the rounds are).
XDP_TS=$("$BIN" lab --transports xdp/spin+timestamps --rounds 0 2>&1 || true)
if grep -q -- "--rounds must be" <<<"$XDP_TS"; then
  ROWS="udp/spin,udp/spin+timestamps,xdp/spin,xdp/spin+timestamps,tcp/spin"
fi
HEARTBEAT=${HEARTBEAT:-100us,1s}
echo "# command: hftnet lab --transports $ROWS --duration $DURATION --rounds $ROUNDS --t2t-heartbeat $HEARTBEAT"
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared: compare within this run)"
"$BIN" lab --transports "$ROWS" --duration "$DURATION" --rounds "$ROUNDS" \
  --t2t-heartbeat "$HEARTBEAT" --json "$OUT/lab.json" | grep -v '^# '
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

python3 - "$OUT/lab.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
rtt = {f'{r["rung"]["transport"]}/{r["rung"]["strategy"]}': r for r in j["results"]}
rows_all = j["tick_to_trade"] or []
if not rows_all:
    sys.exit("bench-t2t: no tick-to-trade rows")
# The goals hold the first heartbeat's rows; the others are compared with them.
hb0 = rows_all[0]["row"]["trader_heartbeat_us"]
t2t = {f'{r["row"]["transport"]}/{r["row"]["strategy"]}': r for r in rows_all
       if r["row"]["trader_heartbeat_us"] == hb0}
others = [r for r in rows_all if r["row"]["trader_heartbeat_us"] != hb0]

def rtt_p50(name):
    r = rtt.get(name)
    if r is None or not r.get("rtt_ns"):
        sys.exit(f"bench-t2t: ping-pong row {name} has no round trips: {r and r.get('note')}")
    return r["rtt_ns"]["p50"]

def t2t_p50(name, kind):
    r = t2t.get(name)
    if r is None or not r.get(kind):
        sys.exit(f"bench-t2t: tick-to-trade row {name} has no {kind}: {r and r.get('note')}")
    return r[kind]["p50"]

us = lambda ns: f"{ns / 1000:.2f} us"
rows = []
ok = True
def goal(what, value, target, held, binding=True):
    global ok
    if binding:
        ok &= held
    rows.append((what if binding else f"(info) {what}", value, target,
                 "holds" if held else "NO"))

udp_int = t2t_p50("udp/spin", "internal_ns")
ts_int = t2t_p50("udp/spin+timestamps", "internal_ns")
xdp_int = t2t_p50("xdp/spin", "internal_ns")
xts = "xdp/spin+timestamps" in t2t
goal("internal t2t p50, md udp/spin", us(udp_int), "<= 1.50 us", udp_int <= 1500)
goal("internal t2t p50, md udp/spin+timestamps", us(ts_int), "<= 1.50 us", ts_int <= 1500,
     binding=False)
goal("internal t2t p50, md xdp/spin", us(xdp_int), f"< {us(udp_int)} (udp/spin)",
     xdp_int < udp_int, binding=not xts)
if xts:
    xts_int = t2t_p50("xdp/spin+timestamps", "internal_ns")
    # On a kernel that refuses the XDP program its metadata the xdp stamp
    # is taken at the ring, later than the kernel's: not the same start,
    # so the comparison is printed, not counted.
    ring = "AF_XDP ring" in t2t["xdp/spin+timestamps"].get("internal_start", "")
    goal("internal t2t p50, md xdp/spin+timestamps", us(xts_int),
         f"< {us(ts_int)} (udp/spin+timestamps)"
         + (" [xdp stamped at the ring: not the same start]" if ring else ""),
         xts_int < ts_int, binding=not ring)
tcp = rtt_p50("tcp/spin")
for md in ["udp/spin", "udp/spin+timestamps", "xdp/spin"] + (["xdp/spin+timestamps"] if xts else []):
    ext, ping = t2t_p50(md, "external_ns"), rtt_p50(md)
    bound = 1.3 * (ping + tcp) / 2
    goal(f"external t2t p50, md {md}", us(ext),
         f"<= {us(bound)} (1.3 x mean({us(ping)} {md} RTT, {us(tcp)} tcp RTT))", ext <= bound)
for name, r in t2t.items():
    print(f"# {name}: {r['orders']} orders, {r['accepted']} accepted, {r['rejected']} rejected, "
          f"{r['fills']} fills, {r['internal_samples']} internal / {r['external_samples']} external "
          f"samples, md {r['md_delivered']} delivered {r['md_lost']} lost")
    call, full = r.get("internal_to_send_call_ns"), r.get("internal_ns")
    ret = r.get("internal_to_send_return_ns")
    if call and full:
        what = ("the socket queue, decode, book, strategy, risk, encode" if "timestamps" in name
                else "decode, book, strategy, risk, encode")
        print(f"#   internal p50 {us(full['p50'])} (ends at {r['internal_end']}) = "
              f"{us(call['p50'])} to the send call ({what}) + {us(full['p50'] - call['p50'])} "
              f"in the kernel's TCP transmit path (difference of p50s); {r['internal_stamps_missing']} "
              f"orders without a stamp, {r['internal_stamps_coalesced']} sent in a later send's segment")
    if ret:
        print(f"#   the send returned at p50 {us(ret['p50'])} (on veth the exchange side's TCP "
              f"receive runs inside the trader's send call)")
c_spin = t2t["udp/spin"]["internal_to_send_call_ns"]["p50"]
c_ts = t2t["udp/spin+timestamps"]["internal_to_send_call_ns"]["p50"]
print(f"# from the kernel's receive stamp to the receive's return (udp/spin+timestamps minus "
      f"udp/spin, to the send call, p50s): {us(c_ts - c_spin)} of kernel receive path and "
      f"socket queue; half the udp/spin ping-pong RTT is {us(rtt_p50('udp/spin') / 2)}")
for r in others:
    name = f'{r["row"]["transport"]}/{r["row"]["strategy"]}'
    base = t2t.get(name)
    if base and r.get("internal_ns") and base.get("internal_ns"):
        hb = r["row"]["trader_heartbeat_us"]
        print(f"# {name}, heartbeat {hb} us vs {hb0} us, same run: internal p50 "
              f"{us(r['internal_ns']['p50'])} vs {us(base['internal_ns']['p50'])} "
              f"({r['internal_ns']['p50'] / base['internal_ns']['p50']:.2f}x), external p50 "
              f"{us(r['external_ns']['p50'])} vs {us(base['external_ns']['p50'])} "
              f"({r['external_ns']['p50'] / base['external_ns']['p50']:.2f}x)")
print()
w = max(len(r[0]) for r in rows)
v = max(len(r[1]) for r in rows)
t = max(len(r[2]) for r in rows)
print(f"{'goal':<{w}}  {'p50':>{v}}  {'target':<{t}}  holds")
for a, b, c, d in rows:
    print(f"{a:<{w}}  {b:>{v}}  {c:<{t}}  {d}")
print("goals:", "all hold" if ok else "NOT all hold")
sys.exit(0 if ok else 1)
PY
