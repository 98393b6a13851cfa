#!/usr/bin/env bash
# The qemu hook under a real libvirtd: a private session daemon in a
# private mount namespace whose /etc/libvirt is a copy holding
# hooks/qemu.d/virt-qed-migrate (the host's /etc/libvirt is never
# touched).  deny makes 'virsh start' fail with the hook's message; a
# conversion in progress refuses a start; convert-on-stop converts a
# domain after it stops; the restore filter starts a domain saved with a
# QED disk that was converted meanwhile.
source "$abs_top_builddir/tests/functions.sh"
source "$abs_top_srcdir/tests/libvirtd.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
requires qemu-system-x86_64 --version
requires unshare --version
requires cmp --version

# Everything the daemon (an unprivileged uid) runs or reads lives under a
# directory it can traverse: a copy of the program, the hook script as
# installed, the hook's config and state, the copy of /etc/libvirt.
hb=$(mktemp -d /tmp/vqm-hooktest.XXXXXX)
cleanup_fn rm -rf "$hb"
chmod 755 "$hb"
mkdir -p "$hb/bin" "$hb/conf" "$hb/state" "$hb/etc-libvirt"
# (the hook script runs the helper, virt-qed-migrate-hook, whose
# convert-on-stop worker is the full program, virt-qed-migrate)
cp "$abs_top_builddir/virt-qed-migrate" \
    "$abs_top_builddir/virt-qed-migrate-hook" "$hb/bin/"
if [ -d /etc/libvirt ]; then
    cp -a /etc/libvirt/. "$hb/etc-libvirt/"
fi
mkdir -p "$hb/etc-libvirt/hooks/qemu.d"
vqm_hook_script "$hb/bin" "$hb/conf" \
    > "$hb/etc-libvirt/hooks/qemu.d/virt-qed-migrate"
chmod 755 "$hb/etc-libvirt/hooks/qemu.d/virt-qed-migrate" \
    "$hb/etc-libvirt/hooks/qemu.d" "$hb/etc-libvirt/hooks" "$hb/etc-libvirt"
# The host's /etc/libvirt, to prove it is left alone (not its parent
# "..": /etc itself may change meanwhile).
host_etc ()
{
    { ls -la --time-style=+%s /etc/libvirt 2>&1
      ls -la /etc/libvirt/hooks 2>&1 || true; } | grep -v ' \.\.$'
}
host_before=$(host_etc)

start_private_libvirtd "$hb/etc-libvirt"
chown -R "$LVUID:$LVUID" "$hb/conf" "$hb/state"
# The daemon sees the copy, the host does not.
test ! -e /etc/libvirt/hooks/qemu.d/virt-qed-migrate

conf ()
{
    printf '%s\n' "$@" "uri=$VQM_TEST_LIBVIRT_URI" "state_dir=$hb/state" \
        > "$hb/conf/hook.conf"
    chmod 644 "$hb/conf/hook.conf"
}

pooldir=$(lv_pool "vqmhook$$")
cleanup_fn lv_virsh pool-destroy "vqmhook$$"

# mkdomain NAME IMAGE FORMAT: define a small TCG domain with one disk.
mkdomain ()
{
    # No VNC: private daemons do not share port allocation, and other
    # tests may run domains at the same time.
    lv_domain_xml "$1" "<disk type='file' device='disk'><driver name='qemu' type='$3'/><source file='$2'/><target dev='vda' bus='virtio'/></disk>" |
        sed '/<graphics/d' > "$hb/$1.xml"
    lv_virsh define "$hb/$1.xml" >/dev/null
    cleanup_fn "lv_virsh destroy $1 >/dev/null 2>&1; lv_virsh undefine $1 >/dev/null 2>&1"
}

lv_run qemu-img create -q -f qed "$pooldir/legacy.qed" 16M
lv_run qemu-io -f qed -c 'write -P 0x5a 0 1M' -c 'write -P 0xa5 8M 64k' \
    "$pooldir/legacy.qed" >/dev/null
cp "$pooldir/legacy.qed" "$hb/pristine.qed"
lv_run qemu-img create -q -f qcow2 "$pooldir/modern.qcow2" 16M
mkdomain vqm-legacy "$pooldir/legacy.qed" qed
mkdomain vqm-modern "$pooldir/modern.qcow2" qcow2
legacy_uuid=$(lv_virsh domuuid vqm-legacy)

# ---- deny ----
conf policy=deny
must_fail 1 lv_virsh start vqm-legacy 2> "$hb/err"
cat "$hb/err"
grep -q "Hook script execution failed" "$hb/err"
grep -q "domain 'vqm-legacy' was not started: it uses QED disk image (vda $pooldir/legacy.qed), refused by the policy in $hb/conf/hook.conf; convert it with: virt-qed-migrate -c .* --domain 'vqm-legacy'" "$hb/err"
test "$(lv_virsh domstate vqm-legacy)" = "shut off"
# A pool volume disk: libvirt passes only pool and volume names.
lv_run qemu-img create -q -f qed "$pooldir/vol.qed" 16M
lv_virsh pool-refresh "vqmhook$$" >/dev/null
lv_domain_xml vqm-vol "<disk type='volume' device='disk'><driver name='qemu' type='qed'/><source pool='vqmhook$$' volume='vol.qed'/><target dev='vdb' bus='virtio'/></disk>" |
    sed '/<graphics/d' > "$hb/vqm-vol.xml"
lv_virsh define "$hb/vqm-vol.xml" >/dev/null
cleanup_fn "lv_virsh undefine vqm-vol >/dev/null 2>&1"
must_fail 1 lv_virsh start vqm-vol 2> "$hb/err"
grep -q "domain 'vqm-vol' was not started: it uses QED disk image (vdb vqmhook$$/vol.qed)" "$hb/err"
# A domain without QED disks starts as usual under deny.
lv_virsh start vqm-modern
test "$(lv_virsh domstate vqm-modern)" = running
lv_virsh destroy vqm-modern

# ---- a conversion in progress refuses the start, whatever the policy ----
conf policy=warn
mkdir -p "$hb/state/active"
: > "$hb/state/active/$legacy_uuid"
chown -R "$LVUID:$LVUID" "$hb/state"
must_fail 1 lv_virsh start vqm-legacy 2> "$hb/err"
grep -q "domain 'vqm-legacy' cannot start: virt-qed-migrate is converting its disks" "$hb/err"
# A marker names its run (pid, start time) and the command that finishes
# it: while that run lives the start waits for it ...
sleep 300 &
live=$!
cleanup_fn "kill $live 2>/dev/null"
printf '%s %s\ncommand=virt-qed-migrate --pool bulk\nname=vqm-legacy' "$live" \
    "$(awk '{ sub(/.*\) /, ""); print $20 }' /proc/$live/stat)" \
    > "$hb/state/active/$legacy_uuid"
must_fail 1 lv_virsh start vqm-legacy 2> "$hb/err"
grep -q "domain 'vqm-legacy' cannot start: virt-qed-migrate is converting its disks" "$hb/err"
# ... once it is gone (or its pid is another process now), the message
# names the command to run.
kill $live
wait $live || true
must_fail 1 lv_virsh start vqm-legacy 2> "$hb/err"
cat "$hb/err"
grep -q "domain 'vqm-legacy' cannot start: an interrupted virt-qed-migrate left its disks half migrated (.*, its run is gone); finish the migration with: virt-qed-migrate --pool bulk" "$hb/err"
printf '%s 1\ncommand=virt-qed-migrate --pool bulk\nname=vqm-legacy' "$$" > "$hb/state/active/$legacy_uuid"
must_fail 1 lv_virsh start vqm-legacy 2> "$hb/err"
grep -q "its run is gone); finish the migration with: virt-qed-migrate --pool bulk" "$hb/err"
grep -q "its run is gone" "$hb/state/hook.log"
rm "$hb/state/active/$legacy_uuid"

# ---- warn: the QED domain starts, and the warning is in hook.log ----
lv_virsh start vqm-legacy
test "$(lv_virsh domstate vqm-legacy)" = running
grep -q "warning: domain 'vqm-legacy' starts with 1 QED disk image" "$hb/state/hook.log"

# ---- restore filter: saved with QED, converted while saved ----
lv_virsh save vqm-legacy "$LVROOT/legacy.save" >/dev/null
test "$(lv_virsh domstate vqm-legacy)" = "shut off"
lv_run qemu-img convert -f qed -O qcow2 "$pooldir/legacy.qed" \
    "$pooldir/legacy.qcow2"
mv "$pooldir/legacy.qed" "$hb/legacy.qed.saved"
lv_virsh restore "$LVROOT/legacy.save" >/dev/null
test "$(lv_virsh domstate vqm-legacy)" = running
lv_virsh domblklist vqm-legacy > "$hb/blk"
cat "$hb/blk"
grep -q "vda *$pooldir/legacy.qcow2" "$hb/blk"
lv_virsh dumpxml vqm-legacy | grep -q "<driver name='qemu' type='qcow2'/>"
# (the persistent definition still says QED: only the run was rescued)
lv_virsh dumpxml --inactive vqm-legacy | grep -q "legacy.qed"
lv_virsh destroy vqm-legacy >/dev/null
rm "$pooldir/legacy.qcow2"
mv "$hb/legacy.qed.saved" "$pooldir/legacy.qed"
cmp "$pooldir/legacy.qed" "$hb/pristine.qed"

# ---- convert-on-stop ----
conf policy=convert-on-stop
lv_virsh start vqm-legacy
t0=$(date +%s)
lv_virsh destroy vqm-legacy
t1=$(date +%s)
# The hook returned at once: the conversion runs detached.
test $((t1 - t0)) -lt 5
for i in $(seq 1 600); do
    grep -q "conversion finished\|conversion failed\|conversion incomplete\|not converted\|killed" \
        "$hb/state/hook.log" 2>/dev/null && break
    sleep 0.2
done
cat "$hb/state/hook.log"
grep -q "domain 'vqm-legacy' ($legacy_uuid) stopped: converting" \
    "$hb/state/hook.log"
grep -q "domain 'vqm-legacy' ($legacy_uuid): conversion finished" \
    "$hb/state/hook.log"
# The definition points at a qcow2 image holding the same guest data.
lv_virsh dumpxml --inactive vqm-legacy > "$hb/after.xml"
cat "$hb/after.xml"
grep -q "<driver name='qemu' type='qcow2'/>" "$hb/after.xml"
new=$(sed -n "s|.*<source file='\([^']*\)'.*|\1|p" "$hb/after.xml")
test -n "$new"
qemu-img info -U --output=json "$new" | grep -q '"format": "qcow2"'
qemu-img check -U -f qcow2 "$new"
qemu-img compare -U -f qed -F qcow2 "$hb/pristine.qed" "$new"
# And it starts again, with no QED left to complain about.
lv_virsh start vqm-legacy
lv_virsh destroy vqm-legacy
# The untouched domain's disk is still what it was.
qemu-img info -U --output=json "$pooldir/modern.qcow2" | grep -q '"format": "qcow2"'

# ---- convert-on-stop: four domains stop at once while another run holds
# the state directory; their workers wait for it, and the one started
# again meanwhile is skipped ----
for k in 1 2 3 4; do
    lv_run qemu-img create -q -f qed "$pooldir/m$k.qed" 16M
    lv_run qemu-io -f qed -c "write -P 0x4$k 0 256k" "$pooldir/m$k.qed" >/dev/null
    cp "$pooldir/m$k.qed" "$hb/m$k.orig"
    mkdomain vqm-m$k "$pooldir/m$k.qed" qed
    lv_virsh start vqm-m$k >/dev/null
done
( flock 9; : > "$hb/locked"
  for i in $(seq 1 600); do [ -e "$hb/release" ] && break; sleep 0.2; done
) 9< "$hb/state/lock" &
holder=$!
for i in $(seq 1 100); do [ -e "$hb/locked" ] && break; sleep 0.1; done
[ -e "$hb/locked" ]
: > "$hb/state/hook.log"
pids=
for k in 1 2 3 4; do
    lv_virsh destroy vqm-m$k >/dev/null &
    pids="$pids $!"
done
wait $pids
waiting=0
for i in $(seq 1 300); do
    waiting=$(grep -c "another virt-qed-migrate is using the state directory .*: waiting for it" "$hb/state/hook.log" || true)
    [ "$waiting" = 4 ] && break
    sleep 0.2
done
cat "$hb/state/hook.log"
[ "$waiting" = 4 ]
lv_virsh start vqm-m4 >/dev/null
: > "$hb/release"
wait $holder
for i in $(seq 1 600); do
    [ "$(grep -c "conversion finished\|started again before its conversion ran" "$hb/state/hook.log")" = 4 ] && break
    sleep 0.2
done
cat "$hb/state/hook.log"
for k in 1 2 3; do
    grep -q "domain 'vqm-m$k' (.*): conversion finished" "$hb/state/hook.log"
    lv_virsh dumpxml --inactive vqm-m$k | grep -q "<driver name='qemu' type='qcow2'/>"
    qemu-img compare -U -f qed -F qcow2 "$hb/m$k.orig" "$pooldir/m$k.qcow2"
done
grep -q "domain 'vqm-m4' (.*) was started again before its conversion ran: skipped" "$hb/state/hook.log"
test "$(lv_virsh domstate vqm-m4)" = running
lv_virsh dumpxml --inactive vqm-m4 | grep -q "<driver name='qemu' type='qed'/>"
conf policy=warn
lv_virsh destroy vqm-m4 >/dev/null

host_after=$(host_etc)
test "$host_before" = "$host_after"
