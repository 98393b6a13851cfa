#!/usr/bin/env bash
# virt-qed-migrate quick start, for a fresh Debian 12 machine as root.
#
#   bash tests/quickstart.sh demo    install what is missing, build, start a
#                                    throwaway libvirtd with a sample pool
#                                    'default' and sample domains, and run
#                                    virt-qed-migrate --pool default
#                                    (with --progress) against it
#   bash tests/quickstart.sh check   install what is missing, build and run
#                                    the whole test suite (make check)
#   bash tests/quickstart.sh deps    only install the packages
#
# The build goes to ./build-quickstart (out of tree), the tool is not
# installed and the host's own libvirt (if any) is never touched; the demo
# keeps its journal in the default state directory (see tests/demo.sh).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
builddir=${VQM_BUILDDIR:-$top/build-quickstart}

packages=(
    build-essential autoconf automake pkg-config
    libvirt-dev libglib2.0-dev libxml2-dev zlib1g-dev libzstd-dev libxxhash-dev
    qemu-utils qemu-system-x86 qemu-block-extra
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
    libxml2-utils perl strace util-linux procps time
    clang libclang-rt-14-dev
    xfsprogs btrfs-progs
    ansible
    bash-completion
)

install_deps ()
{
    local missing=() p
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
            grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "quickstart: all packages present"
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "quickstart: run as root to install: ${missing[*]}" >&2
        exit 1
    fi
    echo "quickstart: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build ()
{
    if [ ! -x "$top/configure" ]; then
        (cd "$top" && NOCONFIGURE=1 ./autogen.sh)
    fi
    mkdir -p "$builddir"
    cd "$builddir"
    if [ ! -f Makefile ]; then
        "$top/configure" --enable-werror --enable-fault-injection ${VQM_CONFIGURE_ARGS:-}
    fi
    make -j"$(nproc)"
}

case "${1:-}" in
deps)
    install_deps
    ;;
check)
    install_deps
    build
    make -j"$(nproc)" check
    ;;
demo)
    install_deps
    build
    exec bash "$top/tests/demo.sh" "$builddir"
    ;;
*)
    echo "usage: $0 demo|check|deps" >&2
    exit 2
    ;;
esac
