// SPDX-License-Identifier: (GPL-2.0 OR BSD-2-Clause)
/*
 * xdp_steer: steer chosen UDP/IPv4 flows to AF_XDP sockets, give the kernel
 * everything else.
 *
 * Layer: the in-kernel half of the xdp:// transport. The loader is
 * crates/hftnet-io/src/xdp/steer.rs (aya); it fills `flows` and `xsks` and
 * reads `stats`. Build with bpf/build.sh (clang -O2 -g -target bpf); the
 * object is committed as bpf/xdp_steer.o.
 *
 * For each frame:
 *   Ethernet, then at most one 802.1Q tag (0x8100): a tagged frame is steered
 *   by its inner IPv4/UDP headers like an untagged one, and also counted
 *   under VLAN_TAGGED. An 802.1ad S-tag (0x88a8) or a second tag is passed
 *   (PASS_VLAN): the user-space UDP layer (hftnet_wire::udp::parse_frame)
 *   reads a single 802.1Q tag only, so steering those would lose them.
 *   IPv4 only (version 4, IHL >= 5, total length within the frame).
 *   IPv4 options (IHL > 5): PASSED to the kernel and counted
 *   (PASS_IP_OPTIONS), not steered: the user-space layer refuses headers
 *   with options, so the kernel must have them. This also keeps the UDP
 *   header at a constant offset, which the verifier likes.
 *   Fragments (MF set or offset != 0): passed, the kernel reassembles.
 *   UDP: (destination address, destination port) looked up in `flows`;
 *   multicast groups work since the key is the destination address.
 *   On a hit: bpf_redirect_map(&xsks, rx_queue_index, XDP_PASS), so a queue
 *   without a socket falls back to the kernel (REDIRECT_FAILED), and the
 *   flow's packet and byte counters are bumped either way.
 *   Receive stamp (stamp_rx, .rodata, set by the loader before the load):
 *   on a frame the redirect will hand to a socket, 8 bytes of XDP metadata
 *   are reserved in front of the packet (bpf_xdp_adjust_meta(ctx, -8)) and
 *   bpf_ktime_get_ns() (CLOCK_MONOTONIC) written there (RX_STAMPED); the
 *   redirect itself happens after the program returns, so the stamp is
 *   taken before it. AF_XDP copies the metadata into the UMEM frame just
 *   before the packet. A driver that refuses metadata gets no stamp
 *   (RX_STAMP_REFUSED), the frame is still steered.
 *
 * Invariants: every header read is bounds-checked against data_end first; a
 * check that fails means PASS_MALFORMED, never a guess. The program never
 * returns XDP_DROP or XDP_ABORTED and never writes to the frame's bytes:
 * the only write is the stamp, into the metadata area before the frame,
 * and only on a frame being redirected to a socket; whatever is not
 * steered (a flow's frame falling back to the kernel included) reaches the
 * kernel unchanged, without metadata. Checksums are not verified here (the
 * user-space side does it).
 *
 * Stats slot layout (per-CPU u64, summed by the loader) is ABI with the
 * loader: keep STAT_* and the Rust VERDICTS table in the same order.
 */

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define MAX_FLOWS 64
#define MAX_QUEUES 64

#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define IP_MF_ 0x2000
#define IP_OFFSET_ 0x1FFF

enum stat_slot {
	STAT_PASS_NOT_IPV4 = 0,
	STAT_PASS_NOT_UDP = 1,
	STAT_PASS_NO_FLOW = 2,
	STAT_PASS_FRAGMENT = 3,
	STAT_PASS_IP_OPTIONS = 4,
	STAT_PASS_MALFORMED = 5,
	STAT_PASS_VLAN = 6,
	STAT_REDIRECT = 7,
	STAT_REDIRECT_FAILED = 8,
	/* Not a verdict: frames with one 802.1Q tag, whatever became of them. */
	STAT_VLAN_TAGGED = 9,
	/* Not verdicts: redirected frames stamped, and stamps the driver
	 * refused (no room for metadata, or no metadata support). */
	STAT_RX_STAMPED = 10,
	STAT_RX_STAMP_REFUSED = 11,
	/* Per flow: packets at FLOW_BASE + 2 * id, bytes at FLOW_BASE + 2 * id + 1. */
	STAT_FLOW_BASE = 16,
	STAT_SLOTS = STAT_FLOW_BASE + 2 * MAX_FLOWS,
};

/* Network byte order for both, as on the wire; pad is always 0. */
struct flow_key {
	__u32 daddr;
	__u16 dport;
	__u16 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_FLOWS);
	__type(key, struct flow_key);
	__type(value, __u32); /* flow id, < MAX_FLOWS */
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, STAT_SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* Set by the loader before the load (aya's override_global; the verifier
 * sees it as a constant, so with 0 the stamping code is dead and removed). */
volatile const __u32 stamp_rx = 0;

static __always_inline void count(__u32 slot, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &slot);

	if (v)
		*v += n; /* per-CPU slot: no other writer */
}

static __always_inline int pass(__u32 slot)
{
	count(slot, 1);
	return XDP_PASS;
}

/* Reserves 8 bytes of metadata before the packet and writes the
 * CLOCK_MONOTONIC time there. Invalidates every packet pointer. */
static __always_inline void stamp(struct xdp_md *ctx)
{
	void *data, *meta;
	__u64 *ts;

	if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(__u64)) != 0) {
		count(STAT_RX_STAMP_REFUSED, 1);
		return;
	}
	data = (void *)(long)ctx->data;
	meta = (void *)(long)ctx->data_meta;
	ts = meta;
	if ((void *)(ts + 1) > data) {
		count(STAT_RX_STAMP_REFUSED, 1);
		return;
	}
	*ts = bpf_ktime_get_ns();
	count(STAT_RX_STAMPED, 1);
}

SEC("xdp")
int xdp_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	struct flow_key key = {};
	__u16 proto, tot_len, udp_len;
	__u32 *flow_id, id, slot;
	__u64 bytes = data_end - data;
	long verdict;

	if ((void *)(eth + 1) > data_end)
		return pass(STAT_PASS_MALFORMED);
	proto = eth->h_proto;
	ip = (void *)(eth + 1);
	if (proto == bpf_htons(ETH_P_8021Q_)) {
		/* TCI (2 bytes), then the inner EtherType (2 bytes). */
		__be16 *inner = (void *)(eth + 1) + 2;

		if ((void *)(inner + 1) > data_end)
			return pass(STAT_PASS_MALFORMED);
		count(STAT_VLAN_TAGGED, 1);
		proto = *inner;
		ip = (void *)(inner + 1);
		if (proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_))
			return pass(STAT_PASS_VLAN);
	} else if (proto == bpf_htons(ETH_P_8021AD_)) {
		return pass(STAT_PASS_VLAN);
	}
	if (proto != bpf_htons(ETH_P_IP))
		return pass(STAT_PASS_NOT_IPV4);

	if ((void *)(ip + 1) > data_end)
		return pass(STAT_PASS_MALFORMED);
	if (ip->version != 4 || ip->ihl < 5)
		return pass(STAT_PASS_MALFORMED);
	tot_len = bpf_ntohs(ip->tot_len);
	if (tot_len < ip->ihl * 4 || (void *)ip + tot_len > data_end)
		return pass(STAT_PASS_MALFORMED); /* truncated, or a lying length */
	if (ip->ihl != 5)
		return pass(STAT_PASS_IP_OPTIONS);
	if (ip->frag_off & bpf_htons(IP_MF_ | IP_OFFSET_))
		return pass(STAT_PASS_FRAGMENT);
	if (ip->protocol != IPPROTO_UDP)
		return pass(STAT_PASS_NOT_UDP);

	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return pass(STAT_PASS_MALFORMED);
	udp_len = bpf_ntohs(udp->len);
	if (udp_len < sizeof(*udp) || udp_len > tot_len - sizeof(*ip))
		return pass(STAT_PASS_MALFORMED);

	key.daddr = ip->daddr;
	key.dport = udp->dest;
	flow_id = bpf_map_lookup_elem(&flows, &key);
	if (!flow_id)
		return pass(STAT_PASS_NO_FLOW);
	id = *flow_id;
	if (id < MAX_FLOWS) {
		slot = STAT_FLOW_BASE + 2 * id;
		count(slot, 1);
		count(slot + 1, bytes);
	}

	/* The low bits of flags are the action when xsks has no socket for
	 * this queue: hand the frame to the kernel rather than dropping it. */
	verdict = bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
	if (verdict == XDP_REDIRECT) {
		count(STAT_REDIRECT, 1);
		/* bpf_redirect_map only looked the socket up: the frame moves
		 * after the return, metadata included. */
		if (stamp_rx)
			stamp(ctx);
	} else {
		count(STAT_REDIRECT_FAILED, 1);
	}
	return verdict;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
