#!/usr/bin/env bash
# --rollback after an interrupted copy-mode migration, against a private
# libvirtd: the restored definition must stay restored.  The hook must
# not see the domain as "being migrated" any more, and the next run must
# not "finish" the rolled-back migration with the stale copy: it has to
# refuse the stale copy target (exit 3) until the admin removes it, then
# migrate from the current QED, whatever was written to it since.
source "$abs_top_builddir/tests/functions.sh"
requires_fault_injection
set -e
set -x

requires xmllint --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup
p=$(lv_pool p)
qed_image "$p/c.qed" 16M
lv_virsh pool-refresh p >/dev/null
define_domain dom "$(vol_disk p c.qed qed vda)"
uuid=$(lv_virsh domuuid dom | head -1)
dumpxml dom > "$d/before.xml"

# Kill the run once the copy is done (journal record 5 or so: find the
# first kill point after which a copy exists).
n=1
while :; do
    rc=0
    VQM_TEST_KILL_AT_STEP=$n virt-qed-migrate -q --state-dir "$state" \
        --domain dom --copy || rc=$?
    [ $rc = 137 ] || fail "no kill point leaves a copy behind (n=$n rc=$rc)"
    [ -e "$p/c.qcow2" ] && break
    n=$((n + 1))
done
test -e "$state/active/$uuid"

virt-qed-migrate --state-dir "$state" --rollback dom > "$d/rollback.out"
cat "$d/rollback.out"
grep -q "stale" "$d/rollback.out"
dumpxml dom > "$d/after-rollback.xml"
diff -u "$d/before.xml" "$d/after-rollback.xml"
# The migration is closed: no active marker is left for the hook.
test ! -e "$state/active/$uuid"

# The guest writes to its QED after the rollback.
lv_run qemu-io -f qed -c 'write -P 0x77 2M 64k' "$p/c.qed" >/dev/null
cp --sparse=always "$p/c.qed" "$d/c.pristine"

# The stale copy is not taken for a finished conversion.
must_fail 3 virt-qed-migrate --state-dir "$state" --domain dom --copy \
    > "$d/rerun.out" 2>&1
cat "$d/rerun.out"
grep -q "exists already" "$d/rerun.out"
grep -qi "interrupted migration" "$d/rerun.out" && fail "rolled-back run resumed"
[ "$(disk_attr dom vda driver/@type)" = qed ]

# Once removed, the migration starts afresh from the current data.
rm -f "$p/c.qcow2"
virt-qed-migrate -q --state-dir "$state" --domain dom --copy
[ "$(disk_attr dom vda driver/@type)" = qcow2 ]
[ "$(disk_attr dom vda source/@volume)" = c.qcow2 ]
qemu-img compare -q "$d/c.pristine" "$p/c.qcow2"
qemu-img check -q "$p/c.qcow2"
