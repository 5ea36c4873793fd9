#!/bin/sh
# Rebuilds bpf/xdp_steer.o from bpf/xdp_steer.c (and bpf/dpdk_udp.o, the
# program of dpdk:// over net_af_xdp, from bpf/dpdk_udp.c).
#
#   bpf/build.sh           regenerate the committed objects
#   bpf/build.sh --check   build into temporary files and fail if one differs
#                          from its committed object (CI runs this)
#   bpf/build.sh --out F   build xdp_steer into F (an absolute path); what
#                          crates/hftnet-io/build.rs runs with --features xdp-build
#
# Needs clang (Debian's clang 14 built the committed object; another major
# version emits different bytes, so --check compares only like with like)
# and libbpf's headers (apt-get install -y clang libbpf-dev).
#
# The output is reproducible: the compiler runs inside bpf/ on relative file
# names, and the debug info records "." as the compilation directory, so the
# checkout's location does not end up in the object.
set -eu

here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
cd "$here"

CLANG=${CLANG:-clang}
if ! command -v "$CLANG" >/dev/null 2>&1; then
    echo "bpf/build.sh: '$CLANG' not found; install it (apt-get install -y clang libbpf-dev) or set CLANG" >&2
    exit 2
fi
if [ ! -f /usr/include/bpf/bpf_helpers.h ]; then
    echo "bpf/build.sh: libbpf headers (bpf/bpf_helpers.h) not found; apt-get install -y libbpf-dev" >&2
    exit 2
fi

# linux/bpf.h includes asm/types.h, which Debian keeps in the multiarch
# directory that -target bpf does not search.
multiarch=$(gcc -dumpmachine 2>/dev/null || echo "$(uname -m)-linux-gnu")

compile() {
    "$CLANG" -O2 -g -target bpf \
        -Wall -Wextra -Werror \
        -I"/usr/include/$multiarch" \
        -fdebug-compilation-dir=. \
        -fdebug-prefix-map="$here"=. \
        -c "${2:-xdp_steer}.c" -o "$1"
}

# check OBJECT_STEM: fails if bpf/STEM.o differs from what bpf/STEM.c compiles to.
check() {
    tmp=$(mktemp "${TMPDIR:-/tmp}/$1.XXXXXX.o")
    compile "$tmp" "$1"
    if [ ! -f "$1.o" ]; then
        rm -f "$tmp"
        echo "bpf/build.sh --check: bpf/$1.o is missing; run bpf/build.sh and commit it" >&2
        exit 1
    fi
    if ! cmp -s "$tmp" "$1.o"; then
        rm -f "$tmp"
        echo "bpf/build.sh --check: bpf/$1.o is stale: it differs from what bpf/$1.c compiles to" >&2
        echo "  with $("$CLANG" --version | head -n 1)." >&2
        echo "  Run bpf/build.sh and commit bpf/$1.o (the committed object was built with Debian clang 14)." >&2
        exit 1
    fi
    rm -f "$tmp"
    echo "bpf/build.sh --check: bpf/$1.o is up to date"
}

case "${1:-}" in
"")
    compile xdp_steer.o
    compile dpdk_udp.o dpdk_udp
    echo "bpf/build.sh: wrote bpf/xdp_steer.o and bpf/dpdk_udp.o ($("$CLANG" --version | head -n 1))"
    ;;
--out)
    [ $# -eq 2 ] || { echo "usage: bpf/build.sh --out ABSOLUTE_PATH" >&2; exit 2; }
    compile "$2"
    ;;
--check)
    check xdp_steer
    check dpdk_udp
    ;;
*)
    echo "usage: bpf/build.sh [--check | --out ABSOLUTE_PATH]" >&2
    exit 2
    ;;
esac
