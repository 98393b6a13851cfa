#!/usr/bin/env bash
# External disk-only snapshots on top of a QED image (offline, so the
# overlays record backing_fmt=qed and the snapshot metadata embeds the
# QED definition): after the migration the overlays name the qcow2 base
# with backing format qcow2, the snapshot metadata is redefined (same
# tree, same current snapshot) and names the qcow2 file, the guest sees
# the same data, a revert to the first snapshot runs from the qcow2 base,
# and a blockcommit of the whole chain into the converted base works.
# A snapshot with memory state of a running domain: the definition saved
# in its memory file is rewritten too.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
requires xmllint --version
requires qemu-system-x86_64 --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"
source "$abs_top_srcdir/tests/live-lib.sh"


d=$(vqm_tmpdir)
state="$d/state"
start_private_libvirtd
p=$(lv_pool p)

qed_image "$p/b.qed" 16M
define_domain ds "$(file_disk "$p/b.qed" qed vda)"
lv_virsh snapshot-create-as ds sn1 --disk-only --diskspec "vda,file=$p/s1.qcow2"
lv_run qemu-io -f qcow2 -c "write -P 0x71 2M 64k" "$p/s1.qcow2" >/dev/null
lv_virsh snapshot-create-as ds sn2 --disk-only --diskspec "vda,file=$p/s2.qcow2"
lv_run qemu-io -f qcow2 -c "write -P 0x72 3M 64k" "$p/s2.qcow2" >/dev/null
lv_virsh pool-refresh p >/dev/null
qemu-img info "$p/s1.qcow2" | grep -q "^backing file format: qed"
# What the guest sees at each point, for the comparisons below.
qemu-img convert -O raw "$p/b.qed" "$d/at-sn1.raw"
qemu-img convert -O raw "$p/s2.qcow2" "$d/now.raw"
dumpxml ds > "$d/before.xml"
lv_virsh snapshot-dumpxml --security-info ds sn1 > "$d/sn1.before.xml"
lv_virsh snapshot-dumpxml --security-info ds sn2 > "$d/sn2.before.xml"

run_vqm "$d/dry" 0 --state-dir "$state" --domain ds --dry-run
grep -q "domain 'ds': 2 snapshot(s) naming its QED disks will be redefined" "$d/dry"

run_vqm "$d/out" 0 --state-dir "$state" --domain ds --report "$d/r.xml"
validate_report "$d/r.xml"
[ "$(file_format "$p/b.qcow2")" = qcow2 ]
[ ! -e "$p/b.qed" ]

# Overlay: backing reference and format rewritten.
qemu-img info "$p/s1.qcow2" | grep -qx "backing file: b.qcow2\|backing file: $p/b.qcow2"
qemu-img info "$p/s1.qcow2" | grep -qx "backing file format: qcow2"
qemu-img check "$p/s1.qcow2"

# Snapshot metadata: only the embedded disk of sn1 changed.
lv_virsh snapshot-list ds --tree
[ "$(lv_virsh snapshot-current ds --name)" = sn2 ]
[ "$(lv_virsh snapshot-parent ds sn2)" = sn1 ]
sed -e "s|$p/b.qed|$p/b.qcow2|; s|type='qed'|type='qcow2'|" "$d/sn1.before.xml" |
    diff -u - <(lv_virsh snapshot-dumpxml --security-info ds sn1)
lv_virsh snapshot-dumpxml --security-info ds sn2 | diff -u "$d/sn2.before.xml" -
# The current definition had nothing to change (its disk is the top
# overlay, which stays qcow2).
dumpxml ds | diff -u "$d/before.xml" -

# The guest sees the same data through the chain.
qemu-img compare -F qcow2 "$d/now.raw" "$p/s2.qcow2"
qemu-img compare -F qcow2 "$d/at-sn1.raw" "$p/b.qcow2"

# Revert to sn1.  libvirt 9.0 cannot revert external snapshots itself;
# then do what it would: define the domain the snapshot recorded.
if ! lv_virsh snapshot-revert ds sn1 2> "$d/revert.err"; then
    grep -q "revert to external snapshot not supported" "$d/revert.err"
    lv_virsh snapshot-dumpxml --security-info ds sn1 |
        xmllint --xpath '/domainsnapshot/domain' - > "$d/sn1.domain.xml"
    lv_virsh define "$d/sn1.domain.xml" >/dev/null
fi
start_dom ds
lv_virsh dumpxml ds > "$d/reverted.xml"
[ "$(xmllint --xpath 'string(/domain/devices/disk/driver/@type)' "$d/reverted.xml")" = qcow2 ]
xmllint --xpath 'string(/domain/devices/disk/source/@file)' "$d/reverted.xml" | grep -q "/b.qcow2$"
lv_virsh destroy ds

# Back to the current state, then commit the whole chain into the base.
lv_virsh define "$d/before.xml" >/dev/null
start_dom ds
lv_virsh blockcommit ds vda --active --pivot --wait
lv_virsh dumpxml ds | grep -q "<source file='$p/b.qcow2'"
lv_virsh destroy ds
qemu-img check "$p/b.qcow2"
qemu-img compare -F qcow2 "$d/now.raw" "$p/b.qcow2"

# A snapshot of a running domain with its memory state: the definition
# saved in the memory file is rewritten too.  (The domain runs on the
# overlay, so it is stopped for the conversion and started again.)
qed_image "$p/m.qed" 16M
define_domain dmem "$(file_disk "$p/m.qed" qed vda)"
start_dom dmem
lv_virsh snapshot-create-as dmem snm --memspec "file=$p/snm.mem,snapshot=external" \
    --diskspec "vda,snapshot=external,file=$p/mo.qcow2"
lv_virsh save-image-dumpxml --security-info "$p/snm.mem" | grep -q "<driver name='qemu' type='qed'/>"
run_vqm "$d/out2" 0 --state-dir "$state" --domain dmem --shutdown=1 --force-shutdown
[ "$(lv_virsh domstate dmem)" = running ]
lv_virsh save-image-dumpxml --security-info "$p/snm.mem" > "$d/mem.xml"
! grep -q "type='qed'" "$d/mem.xml"
new=$(qemu-img info -U --output=json "$p/mo.qcow2" | sed -n 's/.*"backing-filename": "\(.*\)",*$/\1/p' | head -1)
[ "$(file_format "$new")" = qcow2 ]
xmllint --xpath "string(/domain/devices/disk/source/@file)" "$d/mem.xml" | grep -qx "$new"
lv_virsh snapshot-dumpxml dmem snm | xmllint --xpath "string(/domainsnapshot/domain/devices/disk/driver/@type)" - | grep -qx qcow2
grep -q "	saveimage	$p/snm.mem" "$state"/history/*
lv_virsh destroy dmem
