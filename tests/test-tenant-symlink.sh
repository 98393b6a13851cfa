#!/usr/bin/env bash
# Symlinks, as the man page documents them: a symlink met while an image
# or backing file name is resolved is followed only when root owns it,
# or, for a backing file, when the owner of the image naming it owns it
# (the file found must then still be readable by that owner).  Every
# case runs twice: with openat2 and with the component walk that stands
# in for it on kernels without openat2 (VQM_OPEN_WALK=1).
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x
source "$abs_top_srcdir/tests/tenant-lib.sh"
tenant_setup

qemu-img create -f qed vault/root.qed 1M >/dev/null
chmod 600 vault/root.qed
sha=$(sha256sum < vault/root.qed)
as_tenant qemu-img create -f raw t/base.raw 1M >/dev/null
as_tenant ln -s ../vault/root.qed t/link.qed
as_tenant ln -s ../vault t/sub
ln -s vault/root.qed rootlink.qed
ln -s vault vlink
as_tenant ln -s base.raw t/blink
as_tenant ln -s ../vault/secret t/slink
ln -s base.raw t/other-link
chown -h 12345:12345 t/other-link
for b in blink slink other-link; do
    qemu-img create -f qed -b "$b" -F raw -u "t/over-$b.qed" 1M >/dev/null
    chown "$TUID:$TGID" "t/over-$b.qed"
done
qemu-img create -f qed -b t/blink -F raw -u root-over-blink.qed 1M >/dev/null

n=0
# must_refuse REGEX ARGS...: exit 1 and one error line matching REGEX.
must_refuse ()
{
    local re=$1 rc=0
    shift
    n=$((n + 1))
    timeout 20 virt-qed-migrate "$@" > "out.$n" 2> "err.$n" || rc=$?
    cat "err.$n"
    test "$rc" = 1 || fail "$*: exit $rc, expected 1"
    test "$(wc -l < "err.$n")" = 1 || fail "$*: not one error line"
    grep -E -- "$re" "err.$n" || fail "$*: expected /$re/"
}

for walk in 0 1; do
    export VQM_OPEN_WALK=$walk

    # The tenant's symlinks in a name the admin gave: not followed, as
    # the last component or in the middle.
    for args in "--inspect t/link.qed" "--inspect t/link.qed --map" \
                "--file t/link.qed" "--file t/link.qed --copy"; do
        # shellcheck disable=SC2086
        must_refuse "'t/link.qed' is refused: the symlink '$d/t/link.qed' belongs to uid $TUID \\(only root's symlinks are followed\\)" $args
    done
    must_refuse "'t/sub/root.qed' is refused: the symlink '$d/t/sub' belongs to uid $TUID" \
        --file t/sub/root.qed
    test "$(sha256sum < vault/root.qed)" = "$sha" || fail "root.qed changed"
    test ! -e vault/root.qcow2 || fail "root.qcow2 written"

    # Root's symlinks are followed.
    virt-qed-migrate --inspect rootlink.qed > /dev/null
    virt-qed-migrate --inspect vlink/root.qed --map --json > map.json
    qemu-img map --output=json vault/root.qed | diff -u - map.json

    # A backing file through the image owner's own symlink: followed
    # when the owner can read what it points at, refused otherwise.
    virt-qed-migrate --inspect t/over-blink.qed --map --json > map.json
    qemu-img map --output=json t/over-blink.qed | diff -u - map.json
    must_refuse "backing file 'slink' of 't/over-slink.qed' is refused: uid $TUID may not read '$d/vault/secret'" \
        --file t/over-slink.qed --copy --flatten
    # Someone else's symlink: refused.
    must_refuse "backing file 'other-link' of 't/over-other-link.qed' is refused: the symlink '$d/t/other-link' belongs to uid 12345 \\(only root's symlinks and the image owner's are followed\\)" \
        --inspect t/over-other-link.qed --map
    # Root's image does not follow a tenant's symlink.
    must_refuse "backing file 't/blink' of 'root-over-blink.qed' is refused: the symlink '$d/t/blink' belongs to uid $TUID \\(only root's symlinks are followed\\)" \
        --inspect root-over-blink.qed --map
done
rm -f map.json
test -z "$(find . -name '*.qcow2')" || fail "output left behind"
no_marker
