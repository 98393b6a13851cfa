#!/usr/bin/env bash
# --live against a private libvirtd: running TCG domains (no guest OS, so
# the guest writes nothing) with a QED file disk, a QED overlay over a raw
# base (shallow copy, the base is kept) and a QED volume disk are copied
# to qcow2 while they run.  They keep running, their live and inactive
# definitions name the qcow2 files in the original form (a volume disk
# stays a volume disk), only the intended attributes change, the copies
# hold the same guest data as pristine copies of the QED files, and the
# journal and the report say what happened.
source "$abs_top_builddir/tests/functions.sh"
requires_fault_injection
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

qed_image "$p/f.qed" 16M
lv_run qemu-img create -q -f raw "$p/base.raw" 16M
lv_run qemu-io -f raw -c "write -P 0x5a 0 1M" "$p/base.raw" >/dev/null
qed_image "$p/ov.qed" 16M base.raw raw
qed_image "$p/v.qed" 16M
lv_virsh pool-refresh p >/dev/null
for n in f ov v; do
    cp --sparse=always "$p/$n.qed" "$d/$n.orig"
done
ln -s "$p/base.raw" "$d/base.raw"     # for the pristine overlay
cmp_base=$(md5sum < "$p/base.raw")

define_domain lf "$(file_disk "$p/f.qed" qed vda)" \
    "$(file_disk "$p/ov.qed" qed vdb)"
define_domain lv "$(vol_disk p v.qed qed vda)"
for dom in lf lv; do
    dumpxml $dom > "$d/$dom.before.xml"
    start_dom $dom
done

# Dry run: the plan says live copy, nothing changes.
run_vqm "$d/dry" 0 --state-dir "$state" --domain lf --domain lv --live --dry-run
grep -q "disks copied live while it runs" "$d/dry"
grep -q "$p/f.qed: qed -> qcow2 live copy, new name $p/f.qcow2" "$d/dry"
grep -q "$p/v.qed: qed -> qcow2 live copy, new name $p/v.qcow2" "$d/dry"
[ ! -e "$p/f.qcow2" ] && [ ! -e "$p/v.qcow2" ] && [ ! -e "$p/ov.qcow2" ]
for dom in lf lv; do
    dumpxml $dom | diff -u "$d/$dom.before.xml" -
done

# Without --live a running domain is skipped.
must_fail 3 virt-qed-migrate --state-dir "$state" --domain lv > "$d/out0"
grep -q "running: not converted under QEMU" "$d/out0"

# The live conversion.
run_vqm "$d/out" 0 --state-dir "$state" --domain lf --domain lv --live \
    --bandwidth 64 --report "$d/r.xml" --progress=3 3> "$d/progress"
grep -qx "100/100" "$d/progress"
validate_report "$d/r.xml"
grep -q "Summary: 3 image(s) converted, 0 skipped, 0 failed; [0-9]* disk(s) rewritten, 0 skipped, 0 failed, [0-9]* left alone; 2 domain definition(s) rewritten, 0 skipped, 0 failed; everything in scope is qcow2" "$d/out"
for n in f ov v; do
    xmllint --xpath "string(//image[@path='$p/$n.qed']/@action)" "$d/r.xml" |
        grep -qx live-copy
    xmllint --xpath "string(//image[@path='$p/$n.qed']/@outcome)" "$d/r.xml" |
        grep -qx done
done

# Still running, now from the qcow2 files.
for dom in lf lv; do
    [ "$(lv_virsh domstate $dom)" = running ]
done
lv_virsh dumpxml lf > "$d/lf.live.xml"
lv_virsh dumpxml lv > "$d/lv.live.xml"
for t in "vda $p/f.qcow2" "vdb $p/ov.qcow2"; do
    set -- $t
    [ "$(xmllint --xpath "string(/domain/devices/disk[target/@dev='$1']/source/@file)" "$d/lf.live.xml")" = "$2" ]
    [ "$(xmllint --xpath "string(/domain/devices/disk[target/@dev='$1']/driver/@type)" "$d/lf.live.xml")" = qcow2 ]
done
# libvirt 9.0 cannot block-copy to a volume: until the next start the
# running definition names the volume's file.
[ "$(xmllint --xpath "string(/domain/devices/disk/source/@file)" "$d/lv.live.xml")" = "$p/v.qcow2" ]
[ "$(xmllint --xpath "string(/domain/devices/disk/driver/@type)" "$d/lv.live.xml")" = qcow2 ]
! grep -q "<mirror" "$d/lf.live.xml" "$d/lv.live.xml"

# The persistent definitions: only the converted attributes changed, the
# volume disk is still a volume disk.
sed -e "s|$p/f.qed|$p/f.qcow2|; s|$p/ov.qed|$p/ov.qcow2|; s|type='qed'|type='qcow2'|" \
    "$d/lf.before.xml" | diff -u - <(dumpxml lf)
sed -e "s|volume='v.qed'|volume='v.qcow2'|; s|type='qed'|type='qcow2'|" \
    "$d/lv.before.xml" | diff -u - <(dumpxml lv)
[ "$(disk_attr lv vda @type)" = volume ]
lv_virsh vol-dumpxml --pool p v.qcow2 | grep -q "<format type='qcow2'/>"

# Same guest data; the overlay's copy keeps the raw base.
for n in f ov v; do
    qemu-img compare -U -f qed -F qcow2 "$d/$n.orig" "$p/$n.qcow2"
    [ "$(file_format "$p/$n.qcow2")" = qcow2 ]
    qemu-img compare -f qed -F qed "$d/$n.orig" "$p/$n.qed"   # source kept
    [ "$(stat -c %a:%u:%g "$p/$n.qed")" = "$(stat -c %a:%u:%g "$p/$n.qcow2")" ]
done
qemu-img info -U "$p/ov.qcow2" | grep -q "^backing file: .*base.raw"
qemu-img info -U "$p/ov.qcow2" | grep -q "^backing file format: raw"
[ "$(qemu-img info -U "$p/f.qcow2" | grep -c '^backing file')" = 0 ]
[ "$(md5sum < "$p/base.raw")" = "$cmp_base" ]

# The journal: one begun and one done record per copy, then archived.
[ ! -e "$state/journal" ]
j="$d/journal"
cat "$state"/history/* > "$j"
[ "$(grep -c "	blockcopy	" $j)" = 3 ]
for n in f ov v; do
    seq=$(awk -F'\t' -v f="$p/$n.qcow2" '$1 == "B" && $3 == "blockcopy" && $6 == f { print $2 }' $j)
    [ -n "$seq" ]
    grep -q "^D	$seq\$" $j
done
[ -z "$(ls "$state/active")" ]

# The domains start again from their new definitions.
for dom in lf lv; do
    lv_virsh destroy $dom
    start_dom $dom
done
lv_virsh dumpxml lv | grep -q "<source pool='p' volume='v.qcow2'"
for dom in lf lv; do
    lv_virsh destroy $dom
done
for n in f ov v; do
    qemu-img check -f qcow2 "$p/$n.qcow2"
done

# --remove-source: the QED goes once the copy is in place.
qed_image "$p/rs.qed" 16M
cp --sparse=always "$p/rs.qed" "$d/rs.orig"
lv_virsh pool-refresh p >/dev/null
define_domain lr "$(vol_disk p rs.qed qed vda)"
start_dom lr
virt-qed-migrate --state-dir "$state" --domain lr --live --remove-source
[ ! -e "$p/rs.qed" ]
[ "$(lv_virsh domstate lr)" = running ]
qemu-img compare -U -f qed -F qcow2 "$d/rs.orig" "$p/rs.qcow2"
[ "$(disk_attr lr vda source/@volume)" = rs.qcow2 ]
! lv_virsh vol-list p | grep -q "rs.qed"
lv_virsh destroy lr

# Killed right after the definition was given its final form (journal
# records: run, save begun and done, migrate, blockcopy begun and done,
# define begun and done): the volume disk is already a volume disk
# again; the rerun finishes.
qed_image "$p/k.qed" 16M
lv_virsh pool-refresh p >/dev/null
define_domain lk "$(vol_disk p k.qed qed vda)"
start_dom lk
rc=0
VQM_TEST_KILL_AT_STEP=8 virt-qed-migrate --state-dir "$state" --domain lk \
    --live || rc=$?
[ $rc = 137 ]
grep -q "	define	" "$state/journal"
[ "$(disk_attr lk vda @type)" = volume ]
[ "$(disk_attr lk vda source/@volume)" = k.qcow2 ]
[ -n "$(ls "$state/active")" ]
run_vqm "$d/out-k" 0 --state-dir "$state" --domain lk --live
[ ! -e "$state/journal" ]
[ -z "$(ls "$state/active")" ]
[ "$(disk_attr lk vda source/@volume)" = k.qcow2 ]
lv_virsh destroy lk
