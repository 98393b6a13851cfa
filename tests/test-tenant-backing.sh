#!/usr/bin/env bash
# A tenant's image naming a root-only file as its backing file: every
# mode that reads backing data (copy, --flatten, --verify, in place,
# --inspect, --inspect --map) refuses it with one clear line and exit 1,
# the image is unchanged, and the secret's bytes appear in no output
# file nor on stdout/stderr.  The rule is the owner's permission (as the
# kernel judges it: owner, group, others, search permission on every
# directory), shown by the cases that must work.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x
source "$abs_top_srcdir/tests/tenant-lib.sh"
tenant_setup

qemu-img create -f qed -b "$d/vault/secret" -F raw t/abs.qed 1M >/dev/null
qemu-img create -f qed -b ../vault/secret -F raw t/rel.qed 1M >/dev/null
# No format recorded (features = backing file only, the no-probe bit
# cleared): the backing file would be probed, that is read, too.
qemu-img create -f qed -b ../vault/secret -F raw t/probe.qed 1M >/dev/null
printf '\001' | dd of=t/probe.qed bs=1 seek=16 conv=notrunc status=none
chown "$TUID:$TGID" t/*.qed

n=0
# refused IMG REGEX: each mode exits 1 with one error line matching REGEX.
refused ()
{
    local img=$1 re=$2 before rc args
    before=$(sha256sum < "$img")
    for args in "--file $img --copy --flatten" \
                "--file $img --output $d/t/out.qcow2 --flatten" \
                "--file $img --copy --verify" \
                "--file $img --copy" \
                "--file $img --verify" \
                "--file $img --verify=full" \
                "--file $img" \
                "--inspect $img --map" \
                "--inspect $img --map --json" \
                "--inspect $img"; do
        n=$((n + 1))
        refused_once "$n" "$args" "$re"
    done
    test "$(sha256sum < "$img")" = "$before" || fail "$img was modified"
    test -z "$(find t -name '*.qcow2' -o -name '.*')" ||
        fail "output left behind: $(find t)"
    no_marker
}

unreadable="backing file '.*' of '.*' is refused: uid $TUID may not read '$d/vault/secret' \\(owner 0, group 0, mode 0600\\)"
refused t/abs.qed "$unreadable"
refused t/rel.qed "$unreadable"
refused t/probe.qed "$unreadable"

# Group class before others, as the kernel does: the tenant's group may
# not read, others may: refused.
chgrp "$TGID" vault/secret
chmod 604 vault/secret
refused t/abs.qed "uid $TUID may not read .*mode 0604"
# Its group may read: followed.
chmod 640 vault/secret
virt-qed-migrate --file t/abs.qed --flatten --output ok-group.qcow2
grep -q -F -- "$marker" ok-group.qcow2 ||
    fail "the positive case did not copy the backing data"
rm ok-group.qcow2

# Readable, but in a directory the tenant cannot search: refused.
chgrp 0 vault/secret
chmod 644 vault/secret
chmod 700 vault
refused t/rel.qed "uid $TUID cannot search directory '$d/vault'"
chmod 755 vault

# Readable by everyone: followed in every mode (the marker is found in
# the copy, so the checks above would have seen a leak).
virt-qed-migrate --file t/rel.qed --flatten --verify \
    --output ok-all.qcow2
grep -q -F -- "$marker" ok-all.qcow2 || fail "ok-all.qcow2 lacks the data"
rm ok-all.qcow2
virt-qed-migrate --inspect t/rel.qed --map --json > map.json
qemu-img map --output=json t/rel.qed | diff -u - map.json
rm map.json

# Root's own image may follow a root-only backing file (the rest of the
# policy still applies).
chmod 600 vault/secret
qemu-img create -f qed -b vault/secret -F raw root.qed 1M >/dev/null
virt-qed-migrate --file root.qed --flatten --output ok-root.qcow2
grep -q -F -- "$marker" ok-root.qcow2 || fail "ok-root.qcow2 lacks the data"
rm ok-root.qcow2

# A tenant's image over a backing file the tenant owns converts as
# before, in place, keeping its relative backing name.
as_tenant qemu-img create -f raw t/base.raw 1M >/dev/null
as_tenant qemu-img create -f qed -b base.raw -F raw t/own.qed 1M >/dev/null
virt-qed-migrate --file t/own.qed --verify
info=$(qemu-img info --output=json t/own.qed)
test "$(jq -r .format <<< "$info")" = qcow2
test "$(jq -r '."backing-filename"' <<< "$info")" = base.raw
test "$(stat -c %u t/own.qed)" = "$TUID"
no_marker
