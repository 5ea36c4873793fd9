/*
 * The static inline hot-path calls of DPDK as plain functions, so bindgen
 * sees them (the model: demikernel's dpdk_bindings/inlined.c). Built by
 * build.rs with exactly `pkg-config --cflags libdpdk` (it carries
 * `-include rte_config.h -march=corei7`; other -march flags fail to inline).
 * No logic here beyond field access, and one pool constructor
 * (hftnet_rte_pktmbuf_pool_create_packed) that rte_pktmbuf_pool_create
 * cannot be asked for.
 */
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mbuf_pool_ops.h>
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

/* The pool the mbuf goes back to when freed. */
struct rte_mempool *hftnet_rte_mbuf_pool(const struct rte_mbuf *m)
{
	return m->pool;
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

/*
 * rte_pktmbuf_pool_create (22.11: rte_pktmbuf_pool_create_by_ops with the
 * default ops), step for step, with RTE_MEMPOOL_F_NO_IOVA_CONTIG: the
 * objects lie back to back, none skipped to the next page. net_af_xdp
 * registers as its UMEM populated_size x object size bytes from the first
 * object on; without hugepages, rte_pktmbuf_pool_create keeps each object
 * inside a 4 KiB page (one 2.4 KiB mbuf per page), the pool spans far more
 * than that, and every mbuf beyond the UMEM is an invalid descriptor to the
 * kernel (frames sent from it vanish, tx_invalid_descs). For pools no
 * device reads by physical address (AF_XDP copies). NULL with rte_errno set
 * on failure (ENOMEM also when the pool would not fit in one memory chunk).
 */
struct rte_mempool *hftnet_rte_pktmbuf_pool_create_packed(const char *name, unsigned n,
							    unsigned cache, uint16_t data_room,
							    int socket)
{
	struct rte_pktmbuf_pool_private priv = {
		.mbuf_data_room_size = data_room,
		.mbuf_priv_size = 0,
	};
	unsigned elt_size = sizeof(struct rte_mbuf) + (unsigned)data_room;
	struct rte_mempool *mp;
	int ret;

	mp = rte_mempool_create_empty(name, n, elt_size, cache, sizeof(priv), socket,
				      RTE_MEMPOOL_F_NO_IOVA_CONTIG);
	if (mp == NULL)
		return NULL;
	ret = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), NULL);
	if (ret != 0) {
		rte_mempool_free(mp);
		rte_errno = -ret;
		return NULL;
	}
	rte_pktmbuf_pool_init(mp, &priv);
	ret = rte_mempool_populate_default(mp);
	if (ret < 0) {
		rte_mempool_free(mp);
		rte_errno = -ret;
		return NULL;
	}
	/* With no block free for the whole pool, populate_default splits it
	 * into several chunks; net_af_xdp's UMEM covers only the first, so the
	 * mbufs of the others would be invalid descriptors again: refused. */
	if (mp->nb_mem_chunks != 1) {
		rte_mempool_free(mp);
		rte_errno = ENOMEM;
		return NULL;
	}
	rte_mempool_obj_iter(mp, rte_pktmbuf_init, NULL);
	return mp;
}
