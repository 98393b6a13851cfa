#!/usr/bin/env bash
# Tier 1, no daemon: libvirt's in-memory test driver with a node XML
# (xml/testnode.xml.in) whose domain and pool name real QED files.  The
# domain runs (test driver default): skipped without --shutdown, a dry
# run changes nothing, --shutdown converts, renames and restarts.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
requires xmllint --version
requires virsh -c test:///default list
source "$abs_top_srcdir/tests/virt-lib.sh"

d=$(vqm_tmpdir)
cleanup_fn rm -rf "$d"     # vqm_tmpdir runs in a subshell
sed "s|@DIR@|$d|g" "$abs_top_srcdir/xml/testnode.xml.in" > "$d/node.xml"
uri="test://$d/node.xml"
for n in a b; do
    qemu-img create -q -f qed "$d/$n.qed" 16M
    qemu-io -f qed -c "write -P 0x5$n 0 64k" "$d/$n.qed" >/dev/null
    cp "$d/$n.qed" "$d/$n.orig"
done
sums "$d"/a.qed "$d"/b.qed > "$d/sums"

run_vqm "$d/out1" 3 -c "$uri" --all --state-dir "$d/state"
grep -q "domain t1 (running): SKIPPED: running" "$d/out1"
grep -q "network disk: left alone" "$d/out1"
run_vqm "$d/out2" 3 -c "$uri" --all --dry-run --report "$d/dry.xml"
validate_report "$d/dry.xml"
grep -q 'dry-run="yes"' "$d/dry.xml"
md5sum -c "$d/sums"

run_vqm "$d/out3" 0 -c "$uri" --all --shutdown=5 --state-dir "$d/state" \
    --report "$d/r.xml"
validate_report "$d/r.xml"
grep -q "domain t1 (running): definition rewritten, started again" \
    "$d/out3"
grep -q "cdrom: left alone" "$d/out3"
grep -q "new source: tp/b.qcow2" "$d/out3"
for n in a b; do
    [ ! -e "$d/$n.qed" ]
    qemu-img check -f qcow2 "$d/$n.qcow2"
    qemu-img compare -f qed -F qcow2 "$d/$n.orig" "$d/$n.qcow2"
done
[ "$(stat -c %a "$d/state")" = 700 ]
[ "$(stat -c %a "$d"/state/domains/*/*.xml)" = 600 ]
grep -q "<source file='$d/a.qed'/>" "$d"/state/domains/*/*.xml
