#!/usr/bin/env bash
# --live on domains that are not running: they are converted offline, and
# the output says so; when the domain's QEMU has no QED driver (as on
# RHEL, where it cannot run from its QED disk at all) the output names
# that reason.  The QEMU without QED is the host's QEMU behind a wrapper
# that leaves qed out of its list of formats.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
requires qemu-system-x86_64 --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"
source "$abs_top_srcdir/tests/live-lib.sh"

d=$(vqm_tmpdir)
state="$d/state"
start_private_libvirtd
p=$(lv_pool p)
real=$(command -v qemu-system-x86_64)
cat > "$LVROOT/qemu-noqed" <<EOS
#!/bin/sh
if [ "\$*" = "-drive format=help" ]; then
    "$real" "\$@" | sed 's/ qed / /'
    exit
fi
exec "$real" "\$@"
EOS
chmod 755 "$LVROOT/qemu-noqed"
"$LVROOT/qemu-noqed" -drive format=help | head -1 | grep -qv " qed "

qed_image "$p/s.qed" 16M
qed_image "$p/n.qed" 16M
define_domain ds "$(file_disk "$p/s.qed" qed vda)"
lv_domain_xml dn "$(file_disk "$p/n.qed" qed vda)" |
    sed "s|<emulator>.*</emulator>|<emulator>$LVROOT/qemu-noqed</emulator>|" > "$d/dn.xml"
lv_virsh define "$d/dn.xml" >/dev/null

run_vqm "$d/out" 0 --state-dir "$state" --domain ds --domain dn --live
grep -q "^warning: domain 'ds' is not running: converted offline" "$d/out"
grep -q "^warning: domain 'dn' is not running (its QEMU '$LVROOT/qemu-noqed' has no QED driver, so it cannot run from its QED disks): converted offline" "$d/out"
for n in s n; do
    [ "$(file_format "$p/$n.qcow2")" = qcow2 ]
    [ "$(disk_attr d$n vda driver/@type)" = qcow2 ]
done
start_dom dn
lv_virsh destroy dn
