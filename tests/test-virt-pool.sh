#!/usr/bin/env bash
# --pool against a private libvirtd: file and volume disks, several disks
# in one domain, an image shared by two domains, a cdrom and a raw disk
# left alone, another pool and its domain untouched, --dry-run changes
# nothing, wrong names, the report validates, the domain starts.
source "$abs_top_builddir/tests/functions.sh"
requires_fault_injection
set -e
set -x

requires xmllint --version
requires qemu-system-x86_64 --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup
p1=$(lv_pool p1)
p2=$(lv_pool p2)

qed_image "$p1/a.qed" 32M
qed_image "$p1/b.qed" 16M
lv_run qemu-img create -q -f raw "$p1/c.raw" 8M
qed_image "$p2/x.qed" 16M
for f in "$p1/a.qed" "$p1/b.qed" "$p2/x.qed"; do
    cp --sparse=always "$f" "$d/$(basename "$f").orig"
done
lv_virsh pool-refresh p1 >/dev/null
lv_virsh pool-refresh p2 >/dev/null

define_domain d1 "$(file_disk "$p1/a.qed" qed vda)" \
    "$(vol_disk p1 b.qed qed vdb)" "$(file_disk "$p1/c.raw" raw vdc)" \
    "$(cdrom_disk hdc)"
define_domain d2 "$(file_disk "$p2/x.qed" qed vda)"
define_domain d3 "$(file_disk "$p1/a.qed" qed vdb)"
for dom in d1 d2 d3; do dumpxml $dom > "$d/$dom.before.xml"; done
sums "$p1"/* "$p2"/* > "$d/sums.before"

# Wrong names: a clear one-line error, exit 1, nothing created.
must_fail 1 virt-qed-migrate --state-dir "$state" --pool nope 2> "$d/err"
grep -q "error: pool 'nope' not found" "$d/err"
must_fail 1 virt-qed-migrate --state-dir "$state" --domain nope 2> "$d/err"
grep -q "error: domain 'nope' not found" "$d/err"
[ "$(grep -c '^virt-qed-migrate:' "$d/err")" = 1 ]

# Dry run: the plan names both disks and what is left alone; nothing
# changes (checksums, definitions), no state directory is created.
virt-qed-migrate --dry-run --state-dir "$state" --pool p1 \
    --report "$d/dry.xml" > "$d/plan"
cat "$d/plan"
grep -q "$p1/a.qed: qed -> qcow2 in place, new name $p1/a.qcow2" "$d/plan"
grep -q "$p1/b.qed: qed -> qcow2 in place, new name $p1/b.qcow2" "$d/plan"
grep -q "disk vdc .*raw" "$d/plan"
grep -q "not QED (raw): left alone" "$d/plan"
grep -q "cdrom: left alone" "$d/plan"
grep -q "^domain d3 " "$d/plan"
if grep -q "^domain d2 " "$d/plan"; then fail "d2 is not in scope"; fi
validate_report "$d/dry.xml"
sums "$p1"/* "$p2"/* | diff -u "$d/sums.before" -
for dom in d1 d2 d3; do dumpxml $dom | diff -u "$d/$dom.before.xml" -; done
[ ! -e "$state" ]

# The migration.
run_vqm "$d/out" 0 --state-dir "$state" --pool p1 --report "$d/report.xml"
validate_report "$d/report.xml"
grep -q 'exit-status="0"' "$d/report.xml"
grep -q 'images-converted="2"' "$d/report.xml"

# Files: renamed, qcow2, same guest data, clean.
[ ! -e "$p1/a.qed" ] && [ ! -e "$p1/b.qed" ]
for n in a b; do
    [ "$(file_format "$p1/$n.qcow2")" = qcow2 ]
    qemu-img check -f qcow2 "$p1/$n.qcow2"
    qemu-img compare -f qed -F qcow2 "$d/$n.qed.orig" "$p1/$n.qcow2"
    [ "$(stat -c %u "$p1/$n.qcow2")" = "$LVUID" ]
done

# Definitions: exactly the intended changes.
[ "$(disk_attr d1 vda driver/@type)" = qcow2 ]
[ "$(disk_attr d1 vda source/@file)" = "$p1/a.qcow2" ]
[ "$(disk_attr d1 vdb driver/@type)" = qcow2 ]
[ "$(disk_attr d1 vdb source/@volume)" = b.qcow2 ]
[ "$(disk_attr d1 vdb source/@pool)" = p1 ]
[ "$(disk_attr d1 vdb @type)" = volume ]
[ "$(disk_attr d3 vdb source/@file)" = "$p1/a.qcow2" ]
sed -e "/target dev='vd[ab]'/!b" "$d/d1.before.xml" > /dev/null
sed -e "s|<driver name='qemu' type='qed'/>|<driver name='qemu' type='qcow2'/>|" \
    -e "s|$p1/a.qed|$p1/a.qcow2|" -e "s|volume='b.qed'|volume='b.qcow2'|" \
    "$d/d1.before.xml" > "$d/d1.expected.xml"
dumpxml d1 | diff -u "$d/d1.expected.xml" -
sed -e "s|type='qed'|type='qcow2'|" -e "s|$p1/a.qed|$p1/a.qcow2|" \
    "$d/d3.before.xml" | diff -u - <(dumpxml d3)
dumpxml d1 | grep -q "passwd='s3cret'"

# Pool: refreshed, the volumes are qcow2 now.
lv_virsh vol-dumpxml --pool p1 a.qcow2 | grep -q "<format type='qcow2'/>"
lv_virsh vol-dumpxml --pool p1 b.qcow2 | grep -q "<format type='qcow2'/>"

# Untouched: the other pool, its domain, the raw disk.
dumpxml d2 | diff -u "$d/d2.before.xml" -
grep -e "$p2/" -e c.raw "$d/sums.before" | md5sum -c -

# Journal gone to history, no active markers, saved definitions 0600.
[ ! -e "$state/journal" ]
[ -z "$(ls "$state/active")" ]
[ "$(stat -c %a "$state")" = 700 ]
for f in "$state"/domains/*/*.xml; do [ "$(stat -c %a "$f")" = 600 ]; done
grep -q "s3cret" "$state"/domains/*/*.xml

# The migrated domain starts (TCG) with its qcow2 disks.
lv_virsh start d1
[ "$(lv_virsh domstate d1)" = running ]
lv_virsh destroy d1

# A second run has nothing left to do.
run_vqm "$d/out2" 0 --state-dir "$state" --pool p1
grep -q "0 image(s) converted" "$d/out2"

# One run at a time per state directory.
requires flock --version
(
    flock 9
    must_fail 1 virt-qed-migrate --state-dir "$state" --pool p2 2> "$d/err"
) 9> "$state/lock"
grep -q "another virt-qed-migrate is using the state directory" "$d/err"
cmp "$d/x.qed.orig" "$p2/x.qed"

# Failures change nothing (no space left, injected with VQM_FAULT): the
# state directory cannot be written (first write: the journal's record
# of the run), or the conversion itself fails (the eighth write: after the
# run record, the marker, the saved definition, its two "save" records
# and two more journal records).  The image and
# the definition stay as they were, the domain is not left marked active,
# and the next run does the job.
VQM_FAULT=write:1:enospc must_fail 1 virt-qed-migrate --state-dir "$state" \
    --pool p2 > "$d/out3" 2> "$d/err"
cat "$d/out3" "$d/err"
grep -q "error: state directory '$state': .*No space left on device" "$d/err"
grep -q "SKIPPED: not done: the run stopped" "$d/out3"
VQM_FAULT=write:8:enospc run_vqm "$d/out4" 1 --state-dir "$state" --pool p2
grep -q "$p2/x.qed: FAILED: .*No space left on device" "$d/out4"
for f in "$d/out3" "$d/out4"; do
    cmp "$d/x.qed.orig" "$p2/x.qed"
    dumpxml d2 | diff -u "$d/d2.before.xml" -
    [ -z "$(ls "$state/active")" ]
done
run_vqm "$d/out5" 0 --state-dir "$state" --pool p2
qemu-img compare -f qed -F qcow2 "$d/x.qed.orig" "$p2/x.qcow2"
[ "$(disk_attr d2 vda source/@file)" = "$p2/x.qcow2" ]
