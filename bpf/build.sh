#!/bin/sh
# Rebuilds bpf/xdp_steer.o from bpf/xdp_steer.c.
#
#   bpf/build.sh           regenerate the committed object
#   bpf/build.sh --check   build into a temporary file and fail if it differs
#                          from the committed object (CI runs this)
#   bpf/build.sh --out F   build into F (an absolute path); what
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
        -c xdp_steer.c -o "$1"
}

case "${1:-}" in
"")
    compile xdp_steer.o
    echo "bpf/build.sh: wrote bpf/xdp_steer.o ($("$CLANG" --version | head -n 1))"
    ;;
--out)
    [ $# -eq 2 ] || { echo "usage: bpf/build.sh --out ABSOLUTE_PATH" >&2; exit 2; }
    compile "$2"
    ;;
--check)
    tmp=$(mktemp "${TMPDIR:-/tmp}/xdp_steer.XXXXXX.o")
    trap 'rm -f "$tmp"' EXIT
    compile "$tmp"
    if [ ! -f xdp_steer.o ]; then
        echo "bpf/build.sh --check: bpf/xdp_steer.o is missing; run bpf/build.sh and commit it" >&2
        exit 1
    fi
    if ! cmp -s "$tmp" xdp_steer.o; then
        echo "bpf/build.sh --check: bpf/xdp_steer.o is stale: it differs from what bpf/xdp_steer.c compiles to" >&2
        echo "  with $("$CLANG" --version | head -n 1)." >&2
        echo "  Run bpf/build.sh and commit bpf/xdp_steer.o (the committed object was built with Debian clang 14)." >&2
        exit 1
    fi
    echo "bpf/build.sh --check: bpf/xdp_steer.o is up to date"
    ;;
*)
    echo "usage: bpf/build.sh [--check | --out ABSOLUTE_PATH]" >&2
    exit 2
    ;;
esac
