#!/usr/bin/env bash
# virt-qed-migrate demo: bash tests/demo.sh BUILDDIR
# (bash tests/quickstart.sh demo runs it after building).
#
# Starts a throwaway private libvirtd (an unprivileged session daemon,
# nothing of the host's libvirt is used or touched), creates a dir pool
# 'default' holding QED volumes made by qemu-img and qemu-io, defines the
# sample domains of tests/demo/, shows the plan, runs
#   virt-qed-migrate --pool default
# and shows the result.  The daemon and its files (the journal included:
# --state-dir points into the daemon's directory) go away at the end
# (VQM_TEST_KEEP=1 keeps them).
set -eu

builddir=$(cd "${1:?usage: $0 BUILDDIR}" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
abs_top_builddir=$builddir
abs_top_srcdir=$top

if [ "$(id -u)" != 0 ]; then
    echo "demo: run as root (the private libvirtd runs as an unprivileged uid" \
         "started with setpriv)" >&2
    exit 1
fi
for t in qemu-img qemu-io virsh libvirtd qemu-system-x86_64; do
    command -v "$t" >/dev/null ||
        { echo "demo: $t is missing (bash tests/quickstart.sh deps)" >&2; exit 1; }
done

source "$builddir/tests/functions.sh"
source "$top/tests/libvirtd.sh"
set +x

# say TEXT: a heading.  run CMD...: print the command, then run it.
say () { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run ()
{
    printf '\033[36m$ %s\033[0m\n' "$*"
    "$@"
}

say "Starting a throwaway libvirtd"
start_private_libvirtd
echo "daemon pid $LVPID, files under $LVROOT"
echo "LIBVIRT_DEFAULT_URI=$LIBVIRT_DEFAULT_URI"
export LIBVIRT_DEFAULT_URI
PATH="$builddir:$PATH"

say "A pool 'default' with QED volumes"
pooldir=$(lv_pool default)
lv_run qemu-img create -q -f qed "$pooldir/web1-root.qed" 256M
lv_run qemu-io -f qed \
    -c 'write -P 0x11 0 4M' -c 'write -z 8M 4M' -c 'write -P 0x22 100M 2M' \
    -c 'write -P 0x33 255M 1M' "$pooldir/web1-root.qed" >/dev/null
lv_run qemu-img create -q -f qed "$pooldir/web1-data.qed" 1G
lv_run qemu-io -f qed -c 'write -P 0x44 0 8M' -c 'write -P 0x55 900M 3M' \
    "$pooldir/web1-data.qed" >/dev/null
lv_run qemu-img create -q -f raw "$pooldir/golden.img" 128M
lv_run qemu-io -f raw -c 'write -P 0x66 0 16M' "$pooldir/golden.img" >/dev/null
lv_run qemu-img create -q -f qed -b "$pooldir/golden.img" -F raw \
    "$pooldir/app1.qed"
lv_run qemu-io -f qed -c 'write -P 0x77 1M 2M' "$pooldir/app1.qed" >/dev/null
lv_run qemu-img create -q -f qcow2 "$pooldir/modern.qcow2" 64M
# Pristine copies, to prove afterwards that the guest data is unchanged.
pristine="$LVROOT/pristine"
mkdir -p "$pristine"
for f in web1-root.qed web1-data.qed app1.qed; do
    cp --sparse=always "$pooldir/$f" "$pristine/$f"
done
lv_virsh pool-refresh default >/dev/null
run virsh vol-list default --details

say "Sample domains (definitions in tests/demo/)"
for x in web1 app1 modern; do
    sed "s|@POOLDIR@|$pooldir|g" "$top/tests/demo/demo-$x.xml" \
        > "$LVROOT/$x.xml"
    lv_virsh define "$LVROOT/$x.xml" >/dev/null
done
run virsh list --all
for x in web1 app1 modern; do
    run virsh domblklist "$x" --details
done

# The journal of this throwaway host goes with it, not into the real
# /var/lib/virt-qed-migrate.
state="$LVROOT/state"

say "The plan"
run virt-qed-migrate --pool default --dry-run --state-dir "$state" ||
    echo "(exit status $?)"

say "The migration"
rc=0
run virt-qed-migrate --pool default --progress --state-dir "$state" || rc=$?
echo "(exit status $rc)"

say "The result"
run virsh vol-list default --details
for x in web1 app1 modern; do
    run virsh domblklist "$x" --details
done
run virsh dumpxml web1 --xpath '//disk' 2>/dev/null ||
    virsh dumpxml web1 | sed -n '/<disk/,/<\/disk>/p'
for x in web1-root web1-data app1; do
    f=$pooldir/$x.qcow2
    [ -e "$f" ] || f=$pooldir/$x.qed
    run qemu-img info "$f"
    run qemu-img check "$f"
    run qemu-img compare "$pristine/$x.qed" "$f"
done

say "A migrated domain starts"
if run virsh start web1; then
    run virsh domblklist web1
    run virsh destroy web1
else
    rc=1
fi

say "Stopping the daemon"
trap - ERR
if [ "$rc" = 0 ]; then
    echo "demo: done, every QED disk of pool 'default' is qcow2 now"
else
    echo "demo: virt-qed-migrate did not finish the job (exit status $rc)" >&2
fi
exit "$rc"
