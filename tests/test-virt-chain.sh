#!/usr/bin/env bash
# --domain and --all against a private libvirtd: a chain raw <- QED <- QED
# across two pools (libvirt cannot describe the top volume), a qcow2
# overlay of the middle image rebased, an explicit <backingStore> in the
# XML rewritten, --keep-name, a domain whose XML claims the wrong format
# (reported, not changed).
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires xmllint --version
requires qemu-system-x86_64 --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup
pa=$(lv_pool pa)
pb=$(lv_pool pb)
pc=$(lv_pool pc)

# raw <- QED (pool pa, relative name, -F raw) <- QED (pool pb, absolute).
lv_run qemu-img create -q -f raw "$pa/base.raw" 32M
lv_run qemu-io -f raw -c "write -P 0x11 0 1M" "$pa/base.raw" >/dev/null
(cd "$pa" && qed_image mid.qed 32M base.raw raw)
qed_image "$pb/top.qed" 32M "$pa/mid.qed" qed
lv_run qemu-io -f qed -c "write -P 0x33 512k 64k" "$pb/top.qed" >/dev/null
# An external-snapshot style qcow2 overlay of mid, used by no domain.
lv_run qemu-img create -q -f qcow2 -b "$pa/mid.qed" -F qed "$pb/snap.qcow2"
qemu-img convert -O raw "$pb/top.qed" "$d/top.flat"
qemu-img convert -O raw "$pb/snap.qcow2" "$d/snap.flat"
lv_virsh pool-refresh pa >/dev/null
lv_virsh pool-refresh pb >/dev/null
# libvirt cannot describe a QED overlay over a non-raw file.
if lv_virsh vol-dumpxml --pool pb top.qed >/dev/null 2>&1; then
    echo "note: this libvirt describes QED over QED"
fi

define_domain dc "$(file_disk "$pb/top.qed" qed vda)"
# The same chain with an explicit <backingStore> in the definition.
lv_run qemu-img create -q -f qed -b "$pa/mid.qed" -F qed "$pb/top2.qed" 32M
define_domain dx "<disk type='file' device='disk'><driver name='qemu' type='qed'/><source file='$pb/top2.qed'/><backingStore type='file'><format type='qed'/><source file='$pa/mid.qed'/><backingStore type='file'><format type='raw'/><source file='$pa/base.raw'/><backingStore/></backingStore></backingStore><target dev='vda' bus='virtio'/></disk>"
for dom in dc dx; do dumpxml $dom > "$d/$dom.before.xml"; done
base_sum=$(md5sum < "$pa/base.raw")

# --domain dc takes the whole chain of dc.  dx shares mid: its definition
# follows (backingStore format), its own top stays QED (not in scope),
# and since that QED overlay names mid.qed and is not rewritten, mid is
# converted but keeps its name.
run_vqm "$d/out1" 0 --state-dir "$state" --domain dc --report "$d/r1.xml"
validate_report "$d/r1.xml"
grep -q "name kept: '$pb/top2.qed' names it" "$d/out1"
[ "$(file_format "$pa/mid.qed")" = qcow2 ]
[ "$(file_format "$pb/top.qcow2")" = qcow2 ]
[ "$(file_format "$pb/top2.qed")" = qed ]
[ ! -e "$pb/top.qed" ]
[ "$(md5sum < "$pa/base.raw")" = "$base_sum" ]
# Backing references: top names mid (absolute, as before) with format
# qcow2; mid keeps its relative raw base; the qcow2 overlay is rebased.
qemu-img info --output=json "$pb/top.qcow2" > "$d/top.json"
grep -q "\"backing-filename\": \"$pa/mid.qed\"" "$d/top.json"
grep -q '"backing-filename-format": "qcow2"' "$d/top.json"
qemu-img info --output=json "$pa/mid.qed" > "$d/mid.json"
grep -q '"backing-filename": "base.raw"' "$d/mid.json"
grep -q '"backing-filename-format": "raw"' "$d/mid.json"
qemu-img info --output=json "$pb/snap.qcow2" > "$d/snap.json"
grep -q '"backing-filename-format": "qcow2"' "$d/snap.json"
for f in "$pa/mid.qed" "$pb/top.qcow2" "$pb/snap.qcow2"; do
    qemu-img check -f qcow2 "$f"
done
qemu-img compare -F qcow2 "$d/top.flat" "$pb/top.qcow2"
qemu-img compare -F qcow2 "$d/snap.flat" "$pb/snap.qcow2"
[ "$(disk_attr dc vda source/@file)" = "$pb/top.qcow2" ]
[ "$(disk_attr dc vda driver/@type)" = qcow2 ]
sed -e "s|type='qed'|type='qcow2'|" -e "s|$pb/top.qed|$pb/top.qcow2|" \
    "$d/dc.before.xml" | diff -u - <(dumpxml dc)
# dx: only the format of the mid layer changed.
sed -e "/<format type='qed'\/>/s/qed/qcow2/" "$d/dx.before.xml" |
    diff -u - <(dumpxml dx)
lv_virsh vol-dumpxml --pool pa mid.qed | grep -q "<format type='qcow2'/>"
lv_virsh vol-dumpxml --pool pb top.qcow2 | grep -q "<format type='qcow2'/>"
lv_virsh start dc
lv_virsh destroy dc
lv_virsh start dx
lv_virsh destroy dx

# --all --keep-name: the rest, and a domain whose XML says raw for a QED
# volume: reported and left as it is (exit 3).
qed_image "$pc/m.qed" 16M
lv_virsh pool-refresh pc >/dev/null
define_domain dm "$(vol_disk pc m.qed raw vda)"
dumpxml dm > "$d/dm.before.xml"
# ... and one whose XML says qed for a qcow2 file.
lv_run qemu-img create -q -f qcow2 "$pc/q.qcow2" 16M
lv_virsh pool-refresh pc >/dev/null
define_domain dq "$(vol_disk pc q.qcow2 qed vda)"
dumpxml dq > "$d/dq.before.xml"
dumpxml dx > "$d/dx.before2.xml"
m_sum=$(md5sum < "$pc/m.qed")
qemu-img convert -O raw "$pb/top2.qed" "$d/top2.flat"
run_vqm "$d/out2" 3 --state-dir "$state" --all --keep-name \
    --report "$d/r2.xml"
validate_report "$d/r2.xml"
grep -q 'exit-status="3"' "$d/r2.xml"
grep -q "format mismatch: the domain XML says 'raw', '$pc/m.qed' is qed" \
    "$d/out2"
[ "$(md5sum < "$pc/m.qed")" = "$m_sum" ]
dumpxml dm | diff -u "$d/dm.before.xml" -
grep -q "format mismatch: the domain XML says 'qed', '$pc/q.qcow2' is qcow2" \
    "$d/out2"
dumpxml dq | diff -u "$d/dq.before.xml" -
[ "$(file_format "$pb/top2.qed")" = qcow2 ]
qemu-img check -f qcow2 "$pb/top2.qed"
qemu-img compare -F qcow2 "$d/top2.flat" "$pb/top2.qed"
sed -e "s|<driver name='qemu' type='qed'/>|<driver name='qemu' type='qcow2'/>|" \
    "$d/dx.before2.xml" | diff -u - <(dumpxml dx)
lv_virsh start dx
lv_virsh destroy dx
