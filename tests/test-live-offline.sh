#!/usr/bin/env bash
# --live on domains that are not running: they are converted offline, and
# the output says so.  The tool never runs the <emulator> a definition
# names (it used to ask it for its formats), not with --dry-run and not
# in a real run; a --dry-run changes nothing at all.  The emulator here
# is the host's QEMU behind a wrapper that logs the command name of
# whoever ran it, so the test sees libvirt running it and nobody else.
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
log="$LVROOT/emulator.log"
cat > "$LVROOT/qemu-wrap" <<EOS
#!/bin/sh
echo "\$(cat /proc/\$PPID/comm 2>/dev/null) \$*" >> "$log"
exec "$real" "\$@"
EOS
chmod 755 "$LVROOT/qemu-wrap"
touch "$log"
chmod 666 "$log"

qed_image "$p/s.qed" 16M
qed_image "$p/n.qed" 16M
define_domain ds "$(file_disk "$p/s.qed" qed vda)"
lv_domain_xml dn "$(file_disk "$p/n.qed" qed vda)" |
    sed "s|<emulator>.*</emulator>|<emulator>$LVROOT/qemu-wrap</emulator>|" > "$d/dn.xml"
lv_virsh define "$d/dn.xml" >/dev/null
: > "$log"

# A dry run executes nothing and changes nothing.
dumpxml dn > "$d/dn.before"
sum_before=$(sha256sum "$p/s.qed" "$p/n.qed")
run_vqm "$d/dry" 0 --state-dir "$state" --domain ds --domain dn --live \
    --dry-run
grep -q "converted offline" "$d/dry"
cat "$log"
if grep -q "^virt-qed" "$log"; then fail "--dry-run ran the emulator"; fi
[ ! -e "$state" ] || fail "--dry-run created the state directory"
[ "$(sha256sum "$p/s.qed" "$p/n.qed")" = "$sum_before" ]
dumpxml dn | diff -u "$d/dn.before" -
[ ! -e "$p/n.qcow2" ]

run_vqm "$d/out" 0 --state-dir "$state" --domain ds --domain dn --live
grep -q "^warning: domain 'ds' is not running: converted offline" "$d/out"
grep -q "^warning: domain 'dn' is not running: converted offline" "$d/out"
cat "$log"
if grep -q "^virt-qed" "$log"; then fail "the tool ran the emulator"; fi
for n in s n; do
    [ "$(file_format "$p/$n.qcow2")" = qcow2 ]
    [ "$(disk_attr d$n vda driver/@type)" = qcow2 ]
done
# libvirt itself does run it (the wrapper works and logs).
start_dom dn
lv_virsh destroy dn
grep -q "guest=dn" "$log"
