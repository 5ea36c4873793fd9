//! Without the feature `dpdk`: nothing (the crate is empty).
//!
//! With it: finds DPDK with pkg-config, generates bindings for the EAL,
//! ethdev, mbuf and mempool headers with bindgen, and builds the C shim of
//! the static inline hot-path calls with cc — both with exactly the flags of
//! `pkg-config --cflags libdpdk` (Debian's carry `-include rte_config.h
//! -march=corei7`; a shim built with another -march fails to inline).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "dpdk")]
    dpdk::build();
}

#[cfg(feature = "dpdk")]
mod dpdk {
    use std::env;
    use std::path::PathBuf;
    use std::process::Command;

    const INSTALL: &str = "install DPDK's development files and the tools the build uses: \
                           `apt-get install -y libdpdk-dev pkg-config libclang-dev` (Debian 12: \
                           DPDK 22.11), or build without `--features dpdk`";

    /// `pkg-config --cflags libdpdk`, split into arguments.
    fn cflags() -> Vec<String> {
        let out = Command::new("pkg-config")
            .args(["--cflags", "libdpdk"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run pkg-config ({e}): {INSTALL}"));
        if !out.status.success() {
            panic!(
                "pkg-config does not know libdpdk ({}): {INSTALL}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        // `-include rte_config.h` is two words that belong together: split
        // on whitespace and keep the pairs in order.
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .map(str::to_owned)
            .collect()
    }

    pub fn build() {
        println!("cargo:rerun-if-changed=src/shim.c");
        println!("cargo:rerun-if-changed=src/wrapper.h");
        println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
        let lib = pkg_config::Config::new()
            .atleast_version("22.11")
            .cargo_metadata(true)
            .probe("libdpdk")
            .unwrap_or_else(|e| panic!("DPDK 22.11 or later not found ({e}): {INSTALL}"));
        let flags = cflags();

        let mut shim = cc::Build::new();
        shim.file("src/shim.c").warnings(true).opt_level(2);
        for f in &flags {
            shim.flag(f);
        }
        shim.compile("hftnet_dpdk_shim");

        let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
        let bindings = bindgen::Builder::default()
            .header("src/wrapper.h")
            .header("src/shim.c")
            .clang_args(&flags)
            .allowlist_function("rte_eal_init|rte_eal_cleanup|rte_eal_hotplug_remove")
            .allowlist_function("rte_dev_probe|rte_version")
            .allowlist_function("rte_eth_dev_(configure|start|stop|close|info_get|socket_id)")
            .allowlist_function(
                "rte_eth_dev_(get_port_by_name|count_avail|set_link_(up|down)|is_valid_port)",
            )
            .allowlist_function("rte_eth_(rx|tx)_queue_setup|rte_eth_macaddr_get")
            .allowlist_function("rte_eth_(stats_get|stats_reset|xstats_get|xstats_get_names)")
            .allowlist_function("rte_eth_promiscuous_enable|rte_eth_dev_adjust_nb_rx_tx_desc")
            .allowlist_function("rte_pktmbuf_pool_create|rte_mempool_free")
            .allowlist_function("rte_mempool_(in_use|avail)_count|rte_strerror")
            .allowlist_function("rte_socket_id|rte_lcore_count|rte_thread_(un)?register")
            .allowlist_function("hftnet_rte_.*")
            .allowlist_type("rte_eth_conf|rte_eth_dev_info|rte_eth_stats")
            .allowlist_type("rte_eth_xstat|rte_eth_xstat_name|rte_ether_addr")
            .allowlist_var("RTE_ETHDEV_QUEUE_STAT_CNTRS|RTE_ETH_XSTATS_NAME_SIZE")
            .allowlist_var("RTE_MBUF_DEFAULT_BUF_SIZE|RTE_PKTMBUF_HEADROOM")
            // The mbuf is used through the shim's accessors only: its
            // layout (unions, bit-fields, cache-line markers) stays C's.
            .opaque_type("rte_mbuf|rte_mempool")
            // Packed types holding aligned members, which Rust cannot
            // express; none is needed.
            .blocklist_type("rte_arp_hdr|rte_arp_ipv4|rte_l2tpv2_combined_msg_hdr")
            .blocklist_type("rte_gtp_psc_.*|rte_ipv6_routing_ext|rte_flow_item_.*")
            .derive_default(true)
            .layout_tests(false)
            .generate_comments(false)
            .generate()
            .unwrap_or_else(|e| panic!("bindgen over DPDK's headers failed ({e}): {INSTALL}"));
        bindings
            .write_to_file(out.join("bindings.rs"))
            .expect("writing bindings.rs");
        // The plugin directory of this DPDK (its drivers are loaded from
        // there): LIBDIR/dpdk/pmds-ABI on Debian.
        let pmd = lib
            .link_paths
            .iter()
            .chain(std::iter::once(&PathBuf::from("/usr/lib/x86_64-linux-gnu")))
            .filter_map(|d| std::fs::read_dir(d.join("dpdk")).ok())
            .flatten()
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("pmds-"))
            })
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        println!("cargo:rustc-env=HFTNET_DPDK_VERSION={}", lib.version);
        println!("cargo:rustc-env=HFTNET_DPDK_PMD_DIR={pmd}");
    }
}
