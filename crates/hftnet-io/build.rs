//! Build script of `hftnet-io`.
//!
//! By default it does nothing but declare when to rerun: the XDP steering
//! program is embedded from the committed object `bpf/xdp_steer.o`, and no
//! compiler for it is needed.
//!
//! With the `xdp-build` feature it compiles `bpf/xdp_steer.c` into
//! `$OUT_DIR/xdp_steer.o` by running `bpf/build.sh --out` (clang and
//! libbpf-dev required; `CLANG` picks the compiler), and the crate embeds that
//! object instead. CI builds with the feature to prove the source still
//! compiles; `bpf/build.sh --check` proves the committed object matches it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_XDP_BUILD").is_none() {
        return;
    }
    let manifest =
        PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let bpf = manifest.join("../../bpf");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("xdp_steer.o");
    println!(
        "cargo:rerun-if-changed={}",
        bpf.join("xdp_steer.c").display()
    );
    println!("cargo:rerun-if-changed={}", bpf.join("build.sh").display());
    println!("cargo:rerun-if-env-changed=CLANG");
    let script = bpf.join("build.sh");
    let status = Command::new("sh")
        .arg(&script)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap_or_else(|e| panic!("feature xdp-build: cannot run {}: {e}", script.display()));
    assert!(
        status.success(),
        "feature xdp-build: {} --out {} failed ({status}); it needs clang and libbpf-dev \
         (apt-get install -y clang libbpf-dev), or build without the feature to use the \
         committed bpf/xdp_steer.o",
        script.display(),
        out.display()
    );
}
