#!/usr/bin/env bash
# A QED image on a block device (a loop device here), used by a
# type='block' disk: converted in place (no rename is possible), the
# definition keeps the device and only changes the driver type, and the
# domain starts.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-system-x86_64 --version
requires losetup --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup

img="$LVROOT/blk.img"
qemu-img create -q -f qed "$img" 16M
qemu-io -f qed -c "write -P 0x42 0 256k" -c "write -z 1M 64k" "$img" >/dev/null
# Room after the QED data for the new qcow2 tables.
truncate -s 8M "$img"
cp --sparse=always "$img" "$d/orig.qed"
dev=$(losetup -f --show "$img" 2>/dev/null) || {
    echo "$0: test skipped: no loop device available"
    exit 77
}
cleanup_fn losetup -d "$dev"
chown "$LVUID" "$dev"

define_domain db "<disk type='block' device='disk'><driver name='qemu' type='qed'/><source dev='$dev'/><target dev='vda' bus='virtio'/></disk>"
dumpxml db > "$d/db.before.xml"

run_vqm "$d/plan" 0 --dry-run --state-dir "$d/state" --domain db
grep -q "$dev: qed -> qcow2 in place (block device)" "$d/plan"
cmp "$d/orig.qed" "$img"

run_vqm "$d/out" 0 --state-dir "$d/state" --domain db --report "$d/r.xml"
validate_report "$d/r.xml"
[ "$(file_format "$dev")" = qcow2 ]
qemu-img check -f qcow2 "$dev"
qemu-img compare -f qed -F qcow2 "$d/orig.qed" "$dev"
sed -e "s|type='qed'|type='qcow2'|" "$d/db.before.xml" |
    diff -u - <(dumpxml db)
lv_virsh start db
lv_virsh destroy db
