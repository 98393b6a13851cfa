#!/usr/bin/env bash
# A remote connection (-c qemu+ext://HOST/..., the transport qemu+ssh
# uses, here reaching the private libvirtd through its socket): discovery
# and --dry-run read the image headers through libvirt, which is proven by
# hiding the pool directories from the tool (private mount namespace);
# a conversion is refused with the command to run on that host; nothing
# changes.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
requires unshare --version
requires nc -h
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"
source "$abs_top_srcdir/tests/live-lib.sh"

d=$(vqm_tmpdir)
start_private_libvirtd
p=$(lv_pool p)
qed_image "$p/v.qed" 16M
lv_run qemu-img create -q -f qcow2 "$p/base.qcow2" 16M
qed_image "$p/ov.qed" 16M base.qcow2 qcow2
qed_image "$p/bad.qed" 16M
printf '\xff\xff' | dd of="$p/bad.qed" bs=1 seek=8 conv=notrunc status=none
mkdir -p "$LVROOT/other" && chown "$LVUID:$LVUID" "$LVROOT/other"
qed_image "$LVROOT/other/f.qed" 16M
lv_virsh pool-refresh p >/dev/null
define_domain dv "$(vol_disk p v.qed qed vda)" "$(vol_disk p ov.qed qed vdb)"
define_domain df "$(file_disk "$LVROOT/other/f.qed" qed vda)"
for dom in dv df; do dumpxml $dom > "$d/$dom.xml"; done
sums "$p"/* "$LVROOT/other/f.qed" > "$d/sums"

printf '#!/bin/sh\nexec nc -U %s\n' "$LVROOT/run/libvirt/libvirt-sock" > "$d/connect"
chmod +x "$d/connect"
uri="qemu+ext://hv1.example/session?command=$d/connect"
unset LIBVIRT_DEFAULT_URI

# hidden CMD...: run CMD where the image directories look empty.
hidden ()
{
    unshare --mount --propagation private sh -c \
        'mount -t tmpfs none "$1"/pools && mount -t tmpfs none "$1"/other && shift && exec "$@"' \
        sh "$LVROOT" "$@"
}
hidden sh -c "[ ! -e '$p/v.qed' ]"

rc=0
hidden virt-qed-migrate -c "$uri" --state-dir "$d/state" --all --dry-run \
    --report "$d/r.xml" > "$d/out" || rc=$?
cat "$d/out"
[ $rc = 3 ]
validate_report "$d/r.xml"
grep -q "^warning: remote connection to 'hv1.example': image headers were read through libvirt" "$d/out"
grep -q "$p/v.qed: qed -> qcow2 in place, new name $p/v.qcow2 (16.0 MiB virtual" "$d/out"
grep -q "$p/ov.qed: qed -> qcow2 in place" "$d/out"
grep -q "$p/base.qcow2: qcow2, left alone" "$d/out"
grep -q "$p/bad.qed: SKIPPED: " "$d/out"
grep -q "'$LVROOT/other/f.qed' is not a storage volume on the remote host" "$d/out"

# No conversion through a remote connection.
rc=0
hidden virt-qed-migrate -c "$uri" --state-dir "$d/state" --pool p \
    2> "$d/err" || rc=$?
cat "$d/err"
[ $rc = 1 ]
grep -q "is a connection to host 'hv1.example': the conversion needs the image files to be local; run on 'hv1.example': virt-qed-migrate -c 'qemu:///session' --pool 'p'" "$d/err"

md5sum -c "$d/sums"
for dom in dv df; do dumpxml $dom | diff -u "$d/$dom.xml" -; done
