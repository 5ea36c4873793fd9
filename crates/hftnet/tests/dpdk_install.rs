//! The DPDK install line of README.md and the packages `.ci/run` installs
//! are the same list, and it holds a driver package for each virtual-device
//! driver `dpdk://` takes: a fresh machine set up from the README builds
//! and runs everything CI does. Needs nothing installed.

use std::collections::BTreeSet;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The packages of README's `apt-get install -y libdpdk-dev ...` line.
fn readme_packages() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let start = readme
        .find("`apt-get install -y libdpdk-dev")
        .expect("README has the DPDK install line");
    let line = &readme[start + 1..];
    let line = &line[..line.find('`').unwrap()];
    line.split_whitespace()
        .skip(3) // apt-get install -y
        .map(str::to_owned)
        .collect()
}

/// The packages of `.ci/run`'s `DPDK_PKGS="..."`.
fn ci_packages() -> BTreeSet<String> {
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    let start = ci.find("DPDK_PKGS=\"").expect(".ci/run sets DPDK_PKGS") + 11;
    let list = &ci[start..];
    list[..list.find('"').unwrap()]
        .replace("\\\n", " ")
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[test]
fn readme_and_ci_install_the_same_dpdk_packages() {
    let (readme, ci) = (readme_packages(), ci_packages());
    assert_eq!(
        readme, ci,
        "README's DPDK install line and .ci/run's DPDK_PKGS differ"
    );
    for drv in ["af-packet", "af-xdp", "tap", "null", "ring"] {
        let p = format!("librte-net-{drv}23");
        assert!(readme.contains(&p), "{p} missing from {readme:?}");
    }
    for p in ["libdpdk-dev", "pkg-config", "libclang-dev"] {
        assert!(readme.contains(p), "{p} missing from {readme:?}");
    }
}
