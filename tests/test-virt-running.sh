#!/usr/bin/env bash
# Running domains and images that cannot be converted, against a private
# libvirtd: a running domain is skipped (exit 3); --shutdown gives up after
# its timeout on a guest that ignores ACPI; --force-shutdown stops it,
# converts, redefines and starts it again.  An image held by another QEMU
# is refused, a corrupt QED is refused, and the rest proceeds.  Copy mode,
# --rollback, --remove-source.  A run killed while it waits for a guest
# it asked to shut down owes that guest a restart: the next command,
# whatever its scope, starts it again.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires xmllint --version
requires qemu-system-x86_64 --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup
p=$(lv_pool p)

for n in r h bad ok k; do
    qed_image "$p/$n.qed" 16M
done
# Corrupt: the first L1 entry points far past the end of the file.
l1=$(od -An -tu8 -j 40 -N 8 "$p/bad.qed" | tr -d ' ')
printf '\x00\x00\x00\x00\x10\x00\x00\x00' |
    dd of="$p/bad.qed" bs=1 seek="$l1" conv=notrunc status=none
lv_virsh pool-refresh p >/dev/null
for n in r h bad ok k; do
    cp --sparse=always "$p/$n.qed" "$d/$n.orig"
    define_domain d$n "$(file_disk "$p/$n.qed" qed vda)"
    dumpxml d$n > "$d/d$n.before.xml"
done

# Another QEMU, outside libvirt, holds h.qed.
qemu-system-x86_64 -M none -nodefaults -display none -S \
    -drive if=none,id=d0,file="$p/h.qed",format=qed &
qpid=$!
cleanup_fn kill $qpid
# Wait for its locks (/proc/locks names the inode) without competing
# for them.
ino=$(stat -c %i "$p/h.qed")
for i in $(seq 100); do
    grep -q ":$ino " /proc/locks && break
    sleep 0.1
done
grep -q ":$ino " /proc/locks
lv_virsh start dr

# 1. Without --shutdown: dr skipped, h refused (in use), bad refused
#    (corrupt), ok and k converted.
run_vqm "$d/out1" 3 --state-dir "$state" --pool p \
    --report "$d/r1.xml"
validate_report "$d/r1.xml"
grep -q "running: not converted under QEMU (use --shutdown)" "$d/out1"
grep -q "$p/h.qed: SKIPPED: .*in use" "$d/out1"
grep -q "$p/bad.qed: SKIPPED: " "$d/out1"
for n in r h bad; do
    cmp "$d/$n.orig" "$p/$n.qed"
    dumpxml d$n | diff -u "$d/d$n.before.xml" -
done
for n in ok k; do
    qemu-img compare -f qed -F qcow2 "$d/$n.orig" "$p/$n.qcow2"
    [ "$(disk_attr d$n vda source/@file)" = "$p/$n.qcow2" ]
done
[ "$(lv_virsh domstate dr)" = running ]

# 2. --shutdown with a short timeout: a guest without an OS never
#    answers ACPI, so dr is skipped again and keeps running.
kill $qpid; wait $qpid || true
run_vqm "$d/out2" 3 --state-dir "$state" --pool p --shutdown=1
grep -q "did not shut down within 1 seconds" "$d/out2"
[ "$(lv_virsh domstate dr)" = running ]
cmp "$d/r.orig" "$p/r.qed"
[ "$(file_format "$p/h.qcow2")" = qcow2 ]
[ -z "$(ls "$state/active")" ]

# 3. --force-shutdown: stopped, converted, redefined, started again.
run_vqm "$d/out3" 3 --state-dir "$state" --pool p --shutdown=1 \
    --force-shutdown --report "$d/r3.xml"
validate_report "$d/r3.xml"
grep -q 'restarted="yes"' "$d/r3.xml"
[ "$(lv_virsh domstate dr)" = running ]
lv_virsh dumpxml dr | grep -q "<source file='$p/r.qcow2'"
qemu-img compare -U -f qed -F qcow2 "$d/r.orig" "$p/r.qcow2"
lv_virsh destroy dr
qemu-img check -f qcow2 "$p/r.qcow2"
cmp "$d/bad.orig" "$p/bad.qed"
[ -z "$(ls "$state/active")" ]

# 4. A transient domain is reported and left alone (no --live); a domain
#    with a managed save image is migrated, its saved definition too
#    (tests/test-snapshot-managedsave.sh resumes such a domain).
for n in t s; do
    qed_image "$p/$n.qed" 16M
    cp --sparse=always "$p/$n.qed" "$d/$n.orig"
done
lv_domain_xml dt "$(file_disk "$p/t.qed" qed vda)" > "$d/dt.xml"
lv_virsh create "$d/dt.xml" >/dev/null
define_domain ds "$(file_disk "$p/s.qed" qed vda)"
lv_virsh start ds >/dev/null
lv_virsh managedsave ds >/dev/null
lv_virsh pool-refresh p >/dev/null
dumpxml ds > "$d/ds.before.xml"
run_vqm "$d/out4" 3 --state-dir "$state" --domain dt --domain ds \
    --shutdown=0 --force-shutdown --report "$d/r4.xml"
validate_report "$d/r4.xml"
grep -q "domain dt (running, transient): SKIPPED: transient domain" "$d/out4"
grep -q "domain ds (shut off, managed save): definition rewritten" \
    "$d/out4"
cmp "$d/t.orig" "$p/t.qed"
qemu-img compare -f qed -F qcow2 "$d/s.orig" "$p/s.qcow2"
sed -e "s|$p/s.qed|$p/s.qcow2|; s|type='qed'|type='qcow2'|" \
    "$d/ds.before.xml" | diff -u - <(dumpxml ds)
lv_virsh managedsave-dumpxml ds | grep -q "<source file='$p/s.qcow2'"
[ "$(lv_virsh domstate dt)" = running ]
lv_virsh destroy dt >/dev/null
lv_virsh managedsave-remove ds >/dev/null

# 5. --rollback: refused after an in-place conversion (the QED is gone);
#    after a copy conversion the saved definition comes back.
must_fail 1 virt-qed-migrate --state-dir "$state" --rollback dok 2> "$d/err"
grep -q "cannot roll back domain 'dok'" "$d/err"
qed_image "$p/c.qed" 16M
cp --sparse=always "$p/c.qed" "$d/c.orig"
lv_virsh pool-refresh p >/dev/null
define_domain dcp "$(vol_disk p c.qed qed vda)"
dumpxml dcp > "$d/dcp.before.xml"
run_vqm "$d/out5" 0 --state-dir "$state" --domain dcp --copy
cmp "$d/c.orig" "$p/c.qed"
qemu-img compare -f qed -F qcow2 "$p/c.qed" "$p/c.qcow2"
[ "$(disk_attr dcp vda source/@volume)" = c.qcow2 ]
[ "$(stat -c %u "$p/c.qcow2")" = "$LVUID" ]
virt-qed-migrate --state-dir "$state" --rollback dcp
dumpxml dcp | diff -u "$d/dcp.before.xml" -
lv_virsh start dcp
lv_virsh destroy dcp

# 6. --copy --remove-source: the QED goes after a verified copy.
rm -f "$p/c.qcow2"
virt-qed-migrate --state-dir "$state" --domain dcp --copy --remove-source
[ ! -e "$p/c.qed" ]
qemu-img compare -f qed -F qcow2 "$d/c.orig" "$p/c.qcow2"
lv_virsh start dcp
lv_virsh destroy dcp

# 7. Killed while it waits for a shutdown it asked for: the guest then
#    stops by itself (destroy stands for the guest's own power-off), and
#    the next command, about another domain, finishes that migration and
#    starts the guest again.
qed_image "$p/g.qed" 16M
cp --sparse=always "$p/g.qed" "$d/g.orig"
lv_virsh pool-refresh p >/dev/null
define_domain dg "$(file_disk "$p/g.qed" qed vda)"
lv_virsh start dg >/dev/null
virt-qed-migrate --state-dir "$state" --domain dg --shutdown=120 \
    > "$d/out7" 2>&1 &
vpid=$!
for i in $(seq 300); do
    awk -F'\t' '$1 == "B" && $3 == "shutdown" { f = 1 } END { exit !f }' \
        "$state/journal" 2>/dev/null && break
    sleep 0.1
done
awk -F'\t' '$1 == "B" && $3 == "shutdown" { f = 1 } END { exit !f }' \
    "$state/journal"
kill -9 $vpid
wait $vpid || true
[ "$(lv_virsh domstate dg)" = running ]
lv_virsh destroy dg >/dev/null
run_vqm "$d/out7b" 0 --state-dir "$state" --domain dok
cat "$d/out7b"
[ "$(lv_virsh domstate dg)" = running ] ||
    fail "dg was shut down by an interrupted run and not started again"
f=$(disk_attr dg vda source/@file)
[ -f "$f" ]
[ "$(file_format "$f")" = "$(disk_attr dg vda driver/@type)" ]
qemu-img compare -U -f qed -F "$(file_format "$f")" "$d/g.orig" "$f"
[ ! -e "$state/journal" ] || fail "the journal was not archived"
[ -z "$(ls "$state/active")" ]
lv_virsh destroy dg >/dev/null
