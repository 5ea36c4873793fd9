// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The XDP program the dpdk:// transport gives DPDK's net_af_xdp driver
 * (devargs xdp_prog=): IPv4/UDP frames of the queue go to its AF_XDP socket
 * (xsks_map, the map name the driver fills), everything else — ARP above
 * all — goes on to the kernel (XDP_PASS). The driver's default program
 * takes every frame, so the kernel would never see an ARP request or reply
 * and neither end could resolve the other's MAC address.
 *
 * Built by bpf/build.sh into the committed bpf/dpdk_udp.o (clang 14).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

/*
 * Who loaded this copy: the loader (crates/hftnet-io/src/dpdk/mod.rs)
 * writes its PID, its start time (field 22 of /proc/PID/stat) and its PID
 * namespace's inode over the zeros of the object it hands the driver, so
 * they are in the program's .rodata map from the load on, before the
 * attach. libbpf binds .rodata to the program (BPF_PROG_BIND_MAP), so the
 * next start finds it among the program's map ids and can tell a copy a
 * dead process left attached from one in use, without /proc/PID/fdinfo.
 * The program never reads it: its instructions, and so its tag and speed,
 * are those of a program without it. The magic marks the record.
 */
struct hftnet_owner {
	__u64 magic; /* "hftowner" */
	__u32 pid;
	__u32 pad;
	__u64 start_time;
	__u64 pid_ns;
};

const volatile struct hftnet_owner hftnet_owner = {
	.magic = 0x72656e776f746668ULL, /* "hftowner" little-endian */
};

SEC("xdp")
int hftnet_dpdk_udp(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > end)
		return XDP_PASS;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP)
		return XDP_PASS;
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
