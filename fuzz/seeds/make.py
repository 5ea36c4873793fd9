#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: a few small inputs of valid
shape per target, so the CI's short runs start from inputs that get past
the first checks. Run from the repository root: python3 fuzz/seeds/make.py.
The byte layouts are the ones the targets and codecs document (host byte
order is little-endian here, as on every machine the CI runs on)."""

import gzip
import json
import os
import re
import struct

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(ROOT))


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def rust_bytes(path, name):
    """The elements of `static NAME: [u8; N] = [ ... ];` in a Rust file."""
    text = open(os.path.join(REPO, path)).read()
    body = text[text.index(name + ": [u8"):]
    body = body[body.index("= [") + 3: body.index("];")]
    body = re.sub(r"//[^\n]*", "", body)
    out = []
    for tok in (t.strip() for t in body.split(",")):
        if not tok:
            continue
        if tok.startswith("b'"):
            out.append(ord(tok[2]))
        else:
            out.append(int(tok.replace("_", ""), 0))
    return bytes(out)


# ---- ITCH 5.0 messages and files ----
def itch_system_event(code=b"O", ts=1):
    return b"S" + struct.pack(">HH", 0, 0) + ts.to_bytes(6, "big") + code


def itch_add(ref, side, shares, stock, price, locate=1, ts=2):
    return (b"A" + struct.pack(">HH", locate, 0) + ts.to_bytes(6, "big")
            + struct.pack(">Q", ref) + side + struct.pack(">I", shares)
            + stock.ljust(8) + struct.pack(">I", price))


def itch_exec(ref, shares, match, locate=1, ts=3):
    return (b"E" + struct.pack(">HH", locate, 0) + ts.to_bytes(6, "big")
            + struct.pack(">QIQ", ref, shares, match))


def itch_delete(ref, locate=1, ts=4):
    return b"D" + struct.pack(">HH", locate, 0) + ts.to_bytes(6, "big") + struct.pack(">Q", ref)


def itch_file(msgs):
    return b"".join(struct.pack(">H", len(m)) + m for m in msgs)


DAY = [itch_system_event(b"O"), itch_add(1, b"B", 100, b"AAPL", 1852600),
       itch_add(2, b"S", 50, b"AAPL", 1852700), itch_exec(1, 40, 9),
       itch_delete(2), itch_system_event(b"C", 99)]

put("itch50", "system_event", itch_system_event())
put("itch50", "add_order", DAY[1])
put("itch50", "day_file", itch_file(DAY))
put("itch_file", "day.itch", itch_file(DAY))
put("itch_file", "day.itch.gz", gzip.compress(itch_file(DAY), mtime=0))
put("itch_file", "truncated.itch", itch_file(DAY)[:-3])
put("itch_file", "zero_length.itch", itch_file(DAY[:2]) + b"\0\0S")

# ---- OUCH 5.0 (the codec's spec tables; see crates/hftnet-wire/src/ouch50) ----
OUCH_TS = (34_200_000_000_001).to_bytes(8, "big")


def ouch_enter(ref, side, qty, sym, price, tif=b"0", cl=b"1", opts=b""):
    return (b"O" + struct.pack(">I", ref) + side + struct.pack(">I", qty) + sym.ljust(8)
            + struct.pack(">Q", price) + tif + b"YANN" + cl.ljust(14)
            + struct.pack(">H", len(opts)) + opts)


def ouch_executed(ref, qty, price, match, flag=b"R"):
    return (b"E" + OUCH_TS + struct.pack(">IIQ", ref, qty, price) + flag
            + struct.pack(">Q", match) + b"\0\0")


def ouch_accepted(ref, side, qty, sym, price, order_ref, opts=b""):
    return (b"A" + OUCH_TS + struct.pack(">I", ref) + side + struct.pack(">I", qty)
            + sym.ljust(8) + struct.pack(">Q", price) + b"3Y" + struct.pack(">Q", order_ref)
            + b"ANNL" + b"123456".ljust(14) + struct.pack(">H", len(opts)) + opts)


OUCH_OPTS = (bytes([5, 3, 0, 0, 0, 100]) + bytes([2, 12]) + b"P" + bytes([5, 2]) + b"FIRM"
             + bytes([5, 7]) + struct.pack(">i", -100) + bytes([2, 8]) + b"Y")
put("ouch50", "enter_order", ouch_enter(7, b"B", 100, b"AAPL", 1852500, tif=b"3", cl=b"123456"))
put("ouch50", "enter_order_options", ouch_enter(8, b"S", 200, b"MSFT", 4000000, opts=OUCH_OPTS))
put("ouch50", "replace_order", b"U" + struct.pack(">IIIQ", 7, 8, 200, 1852600) + b"0NY"
    + b"R8".ljust(14) + b"\0\0")
put("ouch50", "cancel_order", b"X" + struct.pack(">II", 7, 0))
put("ouch50", "modify_order", b"M" + struct.pack(">I", 9) + b"T" + struct.pack(">I", 500))
put("ouch50", "account_query", b"Q")
put("ouch50", "system_event", b"S" + OUCH_TS + b"S")
put("ouch50", "order_accepted", ouch_accepted(7, b"B", 100, b"AAPL", 1852500, 42, OUCH_OPTS))
put("ouch50", "order_canceled", b"C" + OUCH_TS + struct.pack(">II", 7, 60) + b"U")
put("ouch50", "order_executed", ouch_executed(7, 40, 1852500, 9))
put("ouch50", "rejected", b"J" + OUCH_TS + struct.pack(">IH", 7, 0x17) + b"123456".ljust(14))
put("ouch50", "order_restated", b"R" + OUCH_TS + struct.pack(">I", 7) + b"P" + struct.pack(">H", 6)
    + bytes([5, 22, 0, 0, 0, 100]))
put("ouch50", "appendage", OUCH_OPTS)

# ---- MoldUDP64 ----
SESSION = b"FUZZ      "


def mold(seq, msgs, session=SESSION, count=None):
    n = len(msgs) if count is None else count
    return session + struct.pack(">QH", seq, n) + b"".join(struct.pack(">H", len(m)) + m for m in msgs)


put("moldudp64", "two_messages", mold(1, DAY[:2]))
put("moldudp64", "heartbeat", mold(7, []))
put("moldudp64", "end_of_session", mold(7, [], count=0xFFFF))
put("moldudp64", "request", SESSION + struct.pack(">QH", 3, 10))

# ---- SoupBinTCP (frames as the spec's tables lay them out) ----
def soup(kind, payload=b""):
    return struct.pack(">H", 1 + len(payload)) + kind + payload


SOUP_LOGIN = b"alice " + b"Secret    " + b"SESS1     " + b"1".rjust(20)
SOUP = [soup(b"L", SOUP_LOGIN), soup(b"A", b"SESS1".rjust(10) + b"42".rjust(20)), soup(b"J", b"A"),
        soup(b"S", DAY[1]), soup(b"U", b"hello"), soup(b"H"), soup(b"R"), soup(b"+", b"host"), soup(b"Z"), soup(b"O")]
put("soupbintcp", "login_request", SOUP[0])
put("soupbintcp", "login_request_41", soup(b"L", SOUP_LOGIN + b"15000".rjust(5)))
put("soupbintcp", "login_accepted", SOUP[1])
put("soupbintcp", "sequenced", SOUP[3])
# The target's first two bytes choose the splitter's limit (x4) and chunk size.
put("soupbintcp", "stream", bytes([64, 5]) + b"".join(SOUP))
put("soupbintcp", "stream_zero_length", bytes([64, 2]) + b"".join(SOUP[:3]) + b"\0\0H")
put("soupbintcp", "stream_too_long", bytes([4, 9]) + SOUP[5] + SOUP[0])
# soupbin sessions (op-encoded, see the target): 5 client->server, 3 publish,
# 4 server->client, 2 time x100 ms, 7 unsequenced, 6 end, 8 logout, 0/1 raw.
put("soupbin", "login_publish_end", bytes([5, 3, 3]) + b"abc" + bytes([4, 3, 1]) + b"d" + bytes([4, 2, 15, 4, 5, 7, 2]) + b"hi"
    + bytes([6, 4, 4]))
put("soupbin", "bad_login_and_raw", bytes([0, len(SOUP[0])]) + SOUP[0].replace(b"Secret", b"wrong!") + bytes([4, 1, 3]) + b"\0\x01H"
    + bytes([2, 200, 4]))
put("soupbin", "timeouts", bytes([5, 4, 2, 100, 2, 60, 4, 5, 8, 5]))

# ---- feed handler and market (op-encoded, see the targets) ----
# feed: 4 config bytes, then [op, step] + op's bytes; op & 4: synthesized.
put("feed", "in_order", bytes([0, 0x11, 0x22, 0x07]) + bytes([4, 1, 0, 3, 4, 1, 3, 3, 5, 1, 0, 2]))
put("feed", "gap_and_recovery", bytes([0, 0x31, 0x42, 0x05]) + bytes([4, 1, 0, 2, 4, 1, 5, 2, 3, 50, 7, 1, 4, 1, 2, 1, 255, 0]))
put("feed", "raw_and_end", bytes([6, 1, 2, 3]) + bytes([8, 1, 20]) + mold(1000, DAY[:1])[10:] + bytes([4, 1, 0, 255]))
# market: tag < 0x80 raw message of tag bytes; tag >= 0x80 then 12 bytes synthesized.
put("market", "raw_day", b"".join(bytes([len(m)]) + m for m in DAY))
put("market", "synth", bytes([0x80, 0, 1, 2, 0, 100, 3, 0, 0, 0, 0, 0, 0,
                              0x80, 1, 1, 2, 0, 0, 50, 0, 0, 0, 0, 0, 0,
                              0x80, 4, 1, 2, 5, 0, 60, 2, 0, 0, 0, 0, 0]))

# ---- probe ----
put("probe", "probe", b"HFTP" + struct.pack(">QQ", 42, 123456789) + bytes(44))
put("probe", "header_only", b"HFTP" + struct.pack(">QQ", 1, 2))

# ---- sockperf header (u64 seq, u16 flags, u32 length of the whole message) ----
put("sockperf", "ping_pong", struct.pack(">QHI", 7, 3, 64) + bytes(50))
put("sockperf", "reply", struct.pack(">QHI", 7, 2, 64) + bytes(50))
put("sockperf", "warmup", struct.pack(">QHI", 0, 7, 14))
put("sockperf", "two_in_a_stream", struct.pack(">QHI", 1, 1, 14) + struct.pack(">QHI", 2, 3, 16) + b"xy")

# ---- md records (the codec's own byte literals) ----
for n in ["TOP_BYTES", "TRADE_BYTES", "END_BYTES"]:
    put("md", n.lower(), rust_bytes("crates/hftnet-wire/src/md.rs", n))

# ---- shared-memory ring identity + file size (see shm_header.rs) ----
def shm(slots, slot_size):
    stride = ((16 + (slot_size + 7) // 8 * 8) + 63) // 64 * 64
    ident = (b"HFTNSHM\0" + struct.pack("<IIIIIIII", 1, 8192, slots, slot_size, stride, 64, 1234, 0)
             + struct.pack("<Q", 1_700_000_000_000_000_000)).ljust(64, b"\0")
    return ident + struct.pack("<Q", 8192 + slots * stride)


put("shm_header", "ring_1024x64", shm(1024, 64))
put("shm_header", "ring_2x4096", shm(2, 4096))

# ---- layer 2 frames ----
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def udp_frame(payload, vlan=None, sport=9001, dport=9000):
    src, dst = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
    udp_len = 8 + len(payload)
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 1, 0x4000, 64, 17, 0, src, dst))
    ip[10:12] = struct.pack("!H", csum(bytes(ip)))
    pseudo = src + dst + struct.pack("!BBH", 0, 17, udp_len)
    udp = bytearray(struct.pack("!HHHH", sport, dport, udp_len, 0) + payload)
    c = csum(pseudo + bytes(udp)) or 0xFFFF
    udp[6:8] = struct.pack("!H", c)
    eth = bytes([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1])
    if vlan is not None:
        eth += struct.pack("!HH", 0x8100, vlan)
    return eth + struct.pack("!H", 0x0800) + bytes(ip) + bytes(udp)


put("l2", "udp", udp_frame(b"HFTP" + bytes(16)))
put("l2", "udp_vlan", udp_frame(b"hello", vlan=7))
put("l2", "arp", bytes([255] * 6 + [2, 0, 0, 0, 0, 1]) + struct.pack("!HHHBBH", 0x0806, 1, 0x0800, 6, 4, 1)
    + bytes([2, 0, 0, 0, 0, 1, 198, 18, 0, 1]) + bytes(6) + bytes([198, 18, 0, 2]))

# ---- netlink ----
def nla(t, payload):
    b = struct.pack("<HH", 4 + len(payload), t) + payload
    return b + bytes((4 - len(b) % 4) % 4)


def nlmsg(t, body, seq=1):
    return struct.pack("<IHHII", 16 + len(body), t, 2, seq, 0) + body


link = nlmsg(16, struct.pack("<BxHiII", 0, 1, 2, 0x11043, 0) + nla(3, b"veth0\0") + nla(1, bytes([2, 0, 0, 0, 0, 2])) + nla(4, struct.pack("<I", 1500))
             + nla(43 | 0x8000, nla(2, b"\x01") + nla(6, struct.pack("<I", 11))))
route = nlmsg(24, struct.pack("<BBBBBBBBI", 2, 32, 0, 0, 254, 2, 0, 1, 0) + nla(1, bytes([198, 18, 0, 2])) + nla(4, struct.pack("<I", 2)) + nla(7, bytes([198, 18, 0, 1])))
neigh = nlmsg(28, struct.pack("<BxxxiHBB", 2, 2, 2, 0, 1) + nla(1, bytes([198, 18, 0, 2])) + nla(2, bytes([2, 0, 0, 0, 0, 2])))
addr = nlmsg(20, struct.pack("<BBBBI", 2, 24, 0, 0, 2) + nla(2, bytes([198, 18, 0, 1])) + nla(1, bytes([198, 18, 0, 1])))
err = nlmsg(2, struct.pack("<i", -19) + nlmsg(18, b"")[:16])
put("netlink", "link", link)
put("netlink", "dump", route + neigh + addr)
put("netlink", "error", err)
put("netlink", "built", bytes([0x41, 2, 5, 3, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 1, 0, 1, 2, 3, 4, 5, 0x80, 0, 0, 0]))
put("xdp_state", "drv_and_skb", link[16:])
put("xdp_state", "built", bytes([7, 3, 4, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]))

# ---- cmsg (first byte odd: messages built from a description) ----
def cmsg(level, kind, data):
    b = struct.pack("<Qii", 16 + len(data), level, kind) + data
    return b + bytes((8 - len(b) % 8) % 8)


ts = lambda s, n: struct.pack("<qq", s, n)
put("cmsg", "rx_timestampns", b"\0" + cmsg(1, 35, ts(1_700_000_000, 5)))
put("cmsg", "tx_stamp_errqueue", b"\0" + cmsg(1, 37, ts(1_700_000_000, 5) + ts(0, 0) + ts(0, 0))
    + cmsg(0, 11, struct.pack("<IBBBBII", 42, 4, 0, 0, 0, 0, 7) + bytes(16)))
put("cmsg", "zerocopy", b"\0" + cmsg(0, 11, struct.pack("<IBBBBII", 0, 5, 0, 1, 0, 0, 2)))
put("cmsg", "built", bytes([1, 0]) + struct.pack("<Q", 4 * 1_700_000_000_000_000_001) + bytes([1]) + struct.pack("<QQQ", 5, 0, 9) + bytes([2]) + struct.pack("<II", 0, 3) + bytes([4]) + struct.pack("<IIB", 0, 2, 1))

# ---- publisher (op-encoded, see the target) ----
pub = bytes([40, 0x40, 0x45, 8])
for i in range(6):
    pub += bytes([0, 8]) + struct.pack(">Q", i)
pub += bytes([2, 6, 0, 0xFC, 3]) + bytes([6, 0, 0xFA, 10]) + bytes([5, 20]) + SESSION + struct.pack(">QH", 2, 2)
put("publisher", "publish_and_request", pub)
put("publisher", "ended", bytes([10, 1, 2, 3]) + bytes([0, 3, 1, 2, 3, 4, 6, 1, 0xFF, 1]))

# ---- CPU lists and masks, kernel command lines ----
for name, text in [("list", "0-3,5"), ("stride", "0-15:2/4"), ("mask", "ff,ffffffff"),
                   ("isolcpus", "managed_irq,domain,2-3"),
                   ("cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 isolcpus=nohz,2-3 nohz_full=2-3 rcu_nocbs=2-3 irqaffinity=0-1 quiet")]:
    put("cpus", name, text)

# ---- URIs ----
for i, u in enumerate([
    "udp://198.18.0.2:9000?rx=spin&cpu=1",
    "mcast://239.1.1.1:30001?iface=veth0",
    "tcp://[::1]:9001?loss=0.01&seed=7",
    "uring://198.18.0.2:9000?mode=spin",
    "packet://veth0?port=9000&peer=198.18.0.2:9000&version=3",
    "xdp://veth0/0?port=9000&mode=copy&pcap=/tmp/cap.pcap",
    "shm://md?as=pub",
    "mem://pair",
]):
    put("uri", "uri%d" % i, u)

# ---- tuning profiles and snapshots ----
for p in ["latency", "throughput"]:
    put("profile", p + ".toml", open(os.path.join(REPO, "crates/hftnet-tune/profiles/%s.toml" % p)).read())
put("profile", "small.toml", 'name = "t"\n[sysctl]\n"net.core.busy_poll" = "50"\n[nic]\n"feature.gro" = { value = "off", why = "x" }\n'
    '[irq]\naffinity = "{others}"\n[cpu]\nisolate = "on"\n[thp]\nenabled = "never"\n[cmdline]\nparams = ["nohz_full={cpus}"]\n')

MACHINE = "0123456789abcdef0123456789abcdef"


def snapshot(entries, machine=MACHINE):
    return json.dumps({"format": "hftnet-tune-snapshot-1", "host": {"machine_id": machine, "hostname": "box"},
                       "created_unix": 1700000000, "profile": "latency", "entries": entries}, indent=1)


put("snapshot", "sysctl_and_file", snapshot([
    {"target": {"kind": "sysctl", "name": "net.core.busy_poll"}, "old": "0", "new": "50", "state": "applied"},
    {"target": {"kind": "file", "path": "sys/kernel/mm/transparent_hugepage/enabled"}, "old": "always", "new": "never", "state": "pending"},
    {"target": {"kind": "nic", "iface": "veth0", "key": "feature.gro"}, "old": "on", "new": "off", "state": "rollback_failed"},
    {"target": {"kind": "service", "name": "irqbalance"}, "old": "active", "new": "inactive", "state": "rolled_back"},
    {"target": {"kind": "host_op", "op": {"op": "create_dir", "path": "sys/fs/cgroup/hftnet"}}, "old": "", "new": "", "state": "applied"},
]))
put("snapshot", "other_host", snapshot([
    {"target": {"kind": "sysctl", "name": "vm.swappiness"}, "old": "60", "new": "10", "state": "applied"}], machine="zzz"))
put("snapshot", "empty", snapshot([]))
