#!/usr/bin/env bash
# --live when the copy does not finish: cancelled by a signal, aborted by
# someone else (virsh blockjob --abort), or the tool killed outright.
# Each time the domain keeps running on its QED disk, the partial copy is
# removed (or, after a kill, removed by the next run, which finishes the
# job), and the journal says what happened.  Then writes during a copy
# (through QEMU's monitor, as a guest would) end up in the qcow2 file.
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


# wait_copy DOMAIN TARGET: until a block job on TARGET has copied a bit.
wait_copy ()
{
    local i
    for i in $(seq 200); do
        lv_virsh blockjob "$1" "$2" --info > "$d/bj.info" 2>&1 || true
        grep -q "Block Copy" "$d/bj.info" && return 0
        sleep 0.1
    done
    return 1
}

# still_on_qed DOMAIN PATH: running from PATH (QED), no block job left.
still_on_qed ()
{
    [ "$(lv_virsh domstate "$1")" = running ]
    lv_virsh dumpxml "$1" > "$d/live.xml"
    [ "$(xmllint --xpath 'string(/domain/devices/disk/source/@file)' "$d/live.xml")" = "$2" ]
    [ "$(xmllint --xpath 'string(/domain/devices/disk/driver/@type)' "$d/live.xml")" = qed ]
    ! grep -q "<mirror" "$d/live.xml"
    ! lv_virsh blockjob "$1" vda --info 2>&1 | grep -q "Block Copy"
}

d=$(vqm_tmpdir)
state="$d/state"
start_private_libvirtd
p=$(lv_pool p)

# 24 MiB of data: at 1 MiB/s the copy takes long enough to interrupt it.
lv_run qemu-img create -q -f qed "$p/c.qed" 32M
lv_run qemu-io -f qed -c "write -P 0x3c 0 24M" "$p/c.qed" >/dev/null
cp --sparse=always "$p/c.qed" "$d/c.orig"
lv_virsh pool-refresh p >/dev/null
define_domain lc "$(file_disk "$p/c.qed" qed vda)"
dumpxml lc > "$d/before.xml"
start_dom lc

# 1. SIGINT during the copy.
virt-qed-migrate --state-dir "$state" --domain lc --live --bandwidth 1 \
    > "$d/out1" 2> "$d/err1" &
pid=$!
wait_copy lc vda || { cat "$d"/out* "$d"/err* >&2; false; }
[ -e "$p/c.qcow2" ]
grep -q "Bandwidth limit: 1048576 bytes/s" "$d/bj.info"
kill -INT $pid
rc=0; wait $pid || rc=$?
cat "$d/out1" "$d/err1"
[ $rc = 1 ]
grep -q "block copy of disk vda cancelled (signal 2): the domain keeps running on '$p/c.qed', the partial copy was removed" "$d/err1"
still_on_qed lc "$p/c.qed"
[ ! -e "$p/c.qcow2" ]
dumpxml lc | diff -u "$d/before.xml" -
# A clean cancel: the journal (with the cancel) is archived, the marker
# is gone (the hook lets the domain start), and it does not count as a
# rewritten definition.
[ ! -e "$state/journal" ]
grep -q "^F	[0-9]*	.*cancelled" $(ls -t "$state"/history/journal-* | head -1)
[ -z "$(ls "$state/active")" ]
grep -q "^Summary: .* 0 domain definition(s) rewritten" "$d/out1"

# 2. The job aborted by someone else (and the limit given in bytes).
virt-qed-migrate --state-dir "$state" --domain lc --live --bandwidth 512K \
    --report "$d/r2.xml" > "$d/out2" 2>&1 &
pid=$!
wait_copy lc vda || { cat "$d"/out* "$d"/err* >&2; false; }
grep -q "Bandwidth limit: 524288 bytes/s" "$d/bj.info"
lv_virsh blockjob lc vda --abort
rc=0; wait $pid || rc=$?
cat "$d/out2"
[ $rc = 1 ]
grep -q "$p/c.qed: FAILED: the block copy of disk vda ended before it was ready" "$d/out2"
validate_report "$d/r2.xml"
[ "$(xmllint --xpath 'string(//image[@path="'"$p/c.qed"'"]/@outcome)' "$d/r2.xml")" = failed ]
still_on_qed lc "$p/c.qed"
[ ! -e "$p/c.qcow2" ]
dumpxml lc | diff -u "$d/before.xml" -

# 3. SIGKILL: the job and its copy stay behind; the next run aborts that
#    job, removes the copy and does it again.
virt-qed-migrate --state-dir "$state" --domain lc --live --bandwidth 1 \
    > "$d/out3" 2>&1 &
pid=$!
wait_copy lc vda || { cat "$d"/out* "$d"/err* >&2; false; }
kill -KILL $pid
wait $pid || true
lv_virsh dumpxml lc | grep -q "<mirror type='file' file='$p/c.qcow2'"
virt-qed-migrate --state-dir "$state" --domain lc --live --dry-run > "$d/out4"
cat "$d/out4"
grep -q "a block job left by an interrupted run is aborted" "$d/out4"
virt-qed-migrate --state-dir "$state" --domain lc --live > "$d/out5"
cat "$d/out5"
[ "$(lv_virsh domstate lc)" = running ]
[ "$(disk_attr lc vda source/@file)" = "$p/c.qcow2" ]
[ "$(disk_attr lc vda driver/@type)" = qcow2 ]
qemu-img compare -U -f qed -F qcow2 "$d/c.orig" "$p/c.qcow2"
[ ! -e "$state/journal" ]
[ -z "$(ls "$state/active")" ]
lv_virsh destroy lc
qemu-img check -f qcow2 "$p/c.qcow2"

# 4. Writes during the copy reach the copy.
lv_run qemu-img create -q -f qed "$p/w.qed" 32M
lv_run qemu-io -f qed -c "write -P 0x4b 0 24M" "$p/w.qed" >/dev/null
cp --sparse=always "$p/w.qed" "$d/w.expected"
qemu-io -f qed -c "write -P 0x99 28M 1M" -c "write -P 0x11 0 64k" \
    "$d/w.expected" >/dev/null
define_domain lw "$(file_disk "$p/w.qed" qed vda)"
start_dom lw
virt-qed-migrate --state-dir "$state" --domain lw --live --bandwidth 1 \
    > "$d/out6" 2>&1 &
pid=$!
wait_copy lw vda || { cat "$d/out6" >&2; false; }
lv_virsh qemu-monitor-command --hmp lw 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x99 28M 1M"'
lv_virsh qemu-monitor-command --hmp lw 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 0x11 0 64k"'
lv_virsh blockjob lw vda --bandwidth 0         # then let it finish
rc=0; wait $pid || rc=$?
cat "$d/out6"
[ $rc = 0 ]
[ "$(disk_attr lw vda source/@file)" = "$p/w.qcow2" ]
qemu-img compare -U -f qed -F qcow2 "$d/w.expected" "$p/w.qcow2"
lv_virsh destroy lw
qemu-img check -f qcow2 "$p/w.qcow2"
