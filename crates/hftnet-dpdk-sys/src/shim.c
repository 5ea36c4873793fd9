/*
 * The static inline hot-path calls of DPDK as plain functions, so bindgen
 * sees them (the model: demikernel's dpdk_bindings/inlined.c). Built by
 * build.rs with exactly `pkg-config --cflags libdpdk` (it carries
 * `-include rte_config.h -march=corei7`; other -march flags fail to inline).
 * No logic here beyond field access.
 */
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

/* The flag values hard-coded in src/lib.rs, checked against the headers. */
_Static_assert(RTE_ETH_TX_OFFLOAD_IPV4_CKSUM == (1ULL << 1), "tx ipv4 cksum bit");
_Static_assert(RTE_ETH_TX_OFFLOAD_UDP_CKSUM == (1ULL << 2), "tx udp cksum bit");
_Static_assert(RTE_ETH_RX_OFFLOAD_IPV4_CKSUM == (1ULL << 1), "rx ipv4 cksum bit");
_Static_assert(RTE_ETH_RX_OFFLOAD_UDP_CKSUM == (1ULL << 2), "rx udp cksum bit");
_Static_assert(RTE_ETH_LINK_UP == 1, "link up");
_Static_assert(RTE_MEMPOOL_NAMESIZE == 26, "mempool name: 25 bytes and the NUL");

uint16_t hftnet_rte_rx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_rx_burst(port, queue, pkts, n);
}

uint16_t hftnet_rte_tx_burst(uint16_t port, uint16_t queue, struct rte_mbuf **pkts, uint16_t n)
{
	return rte_eth_tx_burst(port, queue, pkts, n);
}

struct rte_mbuf *hftnet_rte_pktmbuf_alloc(struct rte_mempool *mp)
{
	return rte_pktmbuf_alloc(mp);
}

void hftnet_rte_pktmbuf_free(struct rte_mbuf *m)
{
	rte_pktmbuf_free(m);
}

/* rte_pktmbuf_mtod: the first byte of the packet data. */
uint8_t *hftnet_rte_pktmbuf_mtod(struct rte_mbuf *m)
{
	return rte_pktmbuf_mtod(m, uint8_t *);
}

uint16_t hftnet_rte_mbuf_data_len(const struct rte_mbuf *m)
{
	return m->data_len;
}

uint32_t hftnet_rte_mbuf_pkt_len(const struct rte_mbuf *m)
{
	return m->pkt_len;
}

uint16_t hftnet_rte_mbuf_nb_segs(const struct rte_mbuf *m)
{
	return m->nb_segs;
}

/* Room from the data start to the end of the first segment's buffer. */
uint16_t hftnet_rte_mbuf_room(const struct rte_mbuf *m)
{
	return (uint16_t)(m->buf_len - m->data_off);
}

/* A one-segment packet of len bytes. */
void hftnet_rte_mbuf_set_len(struct rte_mbuf *m, uint16_t len)
{
	m->data_len = len;
	m->pkt_len = len;
}

/* Asks the device to compute the IPv4 header and UDP checksums (the UDP
 * field must hold the pseudo-header sum, rte_ipv4_phdr_cksum). */
void hftnet_rte_mbuf_tx_cksum(struct rte_mbuf *m, uint16_t l2_len, uint16_t l3_len)
{
	m->l2_len = l2_len;
	m->l3_len = l3_len;
	m->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM | RTE_MBUF_F_TX_UDP_CKSUM;
}

/* The device's verdict on the L4 checksum: 0 unknown, 1 good, 2 bad, 3 none
 * (the device left it partial, e.g. a local sender over a virtual link). */
int hftnet_rte_mbuf_rx_l4_cksum(const struct rte_mbuf *m)
{
	switch (m->ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK) {
	case RTE_MBUF_F_RX_L4_CKSUM_GOOD:
		return 1;
	case RTE_MBUF_F_RX_L4_CKSUM_BAD:
		return 2;
	case RTE_MBUF_F_RX_L4_CKSUM_NONE:
		return 3;
	default:
		return 0;
	}
}

/* The device's verdict on the IPv4 header checksum, as above. */
int hftnet_rte_mbuf_rx_ip_cksum(const struct rte_mbuf *m)
{
	switch (m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK) {
	case RTE_MBUF_F_RX_IP_CKSUM_GOOD:
		return 1;
	case RTE_MBUF_F_RX_IP_CKSUM_BAD:
		return 2;
	case RTE_MBUF_F_RX_IP_CKSUM_NONE:
		return 3;
	default:
		return 0;
	}
}

int hftnet_rte_errno(void)
{
	return rte_errno;
}

unsigned hftnet_rte_lcore_id(void)
{
	return rte_lcore_id();
}

/* The link status, without the bit-fields bindgen would have to lay out. */
int hftnet_rte_link(uint16_t port, uint32_t *speed_mbps, int *up, int *full_duplex)
{
	struct rte_eth_link link;
	int rc = rte_eth_link_get_nowait(port, &link);
	if (rc != 0)
		return rc;
	*speed_mbps = link.link_speed;
	*up = link.link_status == RTE_ETH_LINK_UP;
	*full_duplex = link.link_duplex == RTE_ETH_LINK_FULL_DUPLEX;
	return 0;
}
