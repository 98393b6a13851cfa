#!/usr/bin/env bash
# Saved state and what cannot be carried over, against a private
# libvirtd: a running TCG domain with a QED volume disk is saved
# (virsh managedsave), migrated (the disk converted in place, the saved
# definition rewritten) and resumed by 'virsh start' from its saved state,
# running on the qcow2 volume.  A domain with checkpoints is refused
# before anything changes.  A transient domain is reported without
# --live and converted with it.
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

# 1. Managed save.
qed_image "$p/m.qed" 16M
cp --sparse=always "$p/m.qed" "$d/m.orig"
lv_virsh pool-refresh p >/dev/null
define_domain dm "$(vol_disk p m.qed qed vda)"
dumpxml dm > "$d/dm.before.xml"
start_dom dm
lv_virsh managedsave dm
lv_virsh managedsave-dumpxml --security-info dm > "$d/dm.saved.before.xml"
grep -q "volume='m.qed'" "$d/dm.saved.before.xml"

run_vqm "$d/dry" 0 --state-dir "$state" --domain dm --dry-run
grep -q "domain dm (shut off, managed save): definition will be rewritten" "$d/dry"
grep -q "its managed-save image will be rewritten" "$d/dry"
cmp "$d/m.orig" "$p/m.qed"

run_vqm "$d/out" 0 --state-dir "$state" --domain dm --report "$d/r.xml"
validate_report "$d/r.xml"
[ "$(file_format "$p/m.qcow2")" = qcow2 ]
qemu-img compare -f qed -F qcow2 "$d/m.orig" "$p/m.qcow2"
sed -e "s|volume='m.qed'|volume='m.qcow2'|; s|type='qed'|type='qcow2'|" \
    "$d/dm.before.xml" | diff -u - <(dumpxml dm)
sed -e "s|volume='m.qed'|volume='m.qcow2'|; s|type='qed'|type='qcow2'|" \
    "$d/dm.saved.before.xml" |
    diff -u - <(lv_virsh managedsave-dumpxml --security-info dm)
grep -q "	managedsave	" "$state"/history/*

# virsh start resumes from the saved state, on the qcow2 volume.
start_dom dm
lv_virsh domstate --reason dm | grep -q "running (restored)"
lv_virsh dumpxml dm | grep -q "<driver name='qemu' type='qcow2'/>"
lv_virsh dumpxml dm | grep -q "<source pool='p' volume='m.qcow2'"
! lv_virsh dominfo dm | grep -q "Managed save: *yes"
lv_virsh destroy dm
qemu-img check "$p/m.qcow2"

# 2. Checkpoints: refused, nothing changes.  QED disks cannot have
#    checkpoints, so the checkpoint covers the domain's qcow2 disk only.
lv_run qemu-img create -q -f qcow2 "$p/q.qcow2" 16M
qed_image "$p/c.qed" 16M
lv_virsh pool-refresh p >/dev/null
define_domain dc "$(file_disk "$p/q.qcow2" qcow2 vda)" \
    "$(file_disk "$p/c.qed" qed vdb)"
start_dom dc
if lv_virsh checkpoint-create-as dc ck1 --diskspec vdb,checkpoint=no \
    2> "$d/ck.err"; then
    lv_virsh destroy dc
    dumpxml dc > "$d/dc.before.xml"
    sums "$p/c.qed" "$p/q.qcow2" > "$d/dc.sums"
    run_vqm "$d/out2" 3 --state-dir "$state" --domain dc
    grep -q "domain dc (shut off): SKIPPED: has 1 checkpoint(s), which cannot be carried over" "$d/out2"
    grep -q "$p/c.qed: SKIPPED: used by domain 'dc', which has checkpoints" "$d/out2"
    md5sum -c "$d/dc.sums"
    dumpxml dc | diff -u "$d/dc.before.xml" -
    [ ! -e "$p/c.qcow2" ]
else
    cat "$d/ck.err"
    lv_virsh destroy dc
    echo "checkpoints unavailable here: that part is not run"
fi

# 3. A transient domain: reported without --live, copied with it.
qed_image "$p/t.qed" 16M
cp --sparse=always "$p/t.qed" "$d/t.orig"
lv_domain_xml dt "$(file_disk "$p/t.qed" qed vda)" > "$d/dt.xml"
lv_virsh create "$d/dt.xml"
run_vqm "$d/out3" 3 --state-dir "$state" --domain dt
grep -q "domain dt (running, transient): SKIPPED: transient domain: only a live conversion can migrate it (use --live)" "$d/out3"
cmp "$d/t.orig" "$p/t.qed"
run_vqm "$d/out4" 0 --state-dir "$state" --domain dt --live
grep -q "domain dt (running, transient): converted, disks copied live" "$d/out4"
lv_virsh dumpxml dt | grep -q "<source file='$p/t.qcow2'"
qemu-img compare -U -f qed -F qcow2 "$d/t.orig" "$p/t.qcow2"
! lv_virsh list --all --persistent --name | grep -qx dt
lv_virsh destroy dt
