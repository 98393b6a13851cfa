#!/usr/bin/env bash
# A tenant racing the tool: while a loop (run as the tenant) exchanges a
# middle directory of the names with a symlink to a root-only directory
# (renameat2 RENAME_EXCHANGE), the tool converts by copy, again and
# again: a tenant image whose backing name goes through that directory
# (--flatten), and a name the admin gave that goes through it.  Every
# run either converts the tenant's own data or refuses; the secret's
# bytes never appear in an output, root's image is never changed.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x
source "$abs_top_srcdir/tests/tenant-lib.sh"
swapper="$abs_top_builddir/tests/unit/vqm-swapper"
requires test -x "$swapper"
tenant_setup

# vault/base.raw and vault/disk.qed: root-only, full of the marker.
cp vault/secret vault/base.raw
qemu-img convert -O qed vault/secret vault/disk.qed
chmod 600 vault/base.raw vault/disk.qed
sha=$(sha256sum < vault/disk.qed)
# The tenant's own files under t/a, and t/evil -> ../vault.
as_tenant mkdir t/a
as_tenant qemu-img create -f raw t/a/base.raw 128K >/dev/null
as_tenant qemu-io -f raw -c 'write -P 0x61 0 128K' t/a/base.raw >/dev/null
as_tenant qemu-img create -f qed t/a/disk.qed 128K >/dev/null
as_tenant qemu-io -f qed -c 'write -P 0x62 0 128K' t/a/disk.qed >/dev/null
as_tenant qemu-img create -f qed -b a/base.raw -F raw t/top.qed 128K \
    >/dev/null
as_tenant ln -s ../vault t/evil
mkdir out

tries=${VQM_RACE_TRIES:-90}
# setpriv execs the swapper: $! is the swapper itself.
setpriv --reuid="$TUID" --regid="$TGID" --clear-groups \
    "$swapper" "$d/t/a" "$d/t/evil" 120 > swaps.out &
swapper_pid=$!
cleanup_fn "kill $swapper_pid 2>/dev/null"

ok=0
refused=0
# race ARGS...: one run, judged.
race ()
{
    local rc=0 i=$((ok + refused))
    timeout 20 virt-qed-migrate -q "$@" --output "out/o$i.qcow2" \
        > "out/stdout.$i" 2> "out/stderr.$i" || rc=$?
    case $rc in
        0) ok=$((ok + 1))
           if grep -q -F -- "$marker" "out/o$i.qcow2"; then
               fail "$*: the secret was copied into out/o$i.qcow2"
           fi
           rm "out/o$i.qcow2" ;;
        1) refused=$((refused + 1))
           grep -E "is refused: " "out/stderr.$i" ||
               fail "$*: failed without a refusal: $(cat "out/stderr.$i")"
           test ! -e "out/o$i.qcow2" || fail "$*: output left behind" ;;
        *) cat "out/stderr.$i"
           fail "$*: exit $rc" ;;
    esac
}

for (( k = 0; k < tries; k++ )); do
    race --file t/top.qed --flatten
    VQM_OPEN_WALK=$((k % 2)) race --file t/a/disk.qed
done
kill "$swapper_pid" 2>/dev/null || :
wait "$swapper_pid" || :
echo "converted: $ok, refused: $refused"
# Both states were met: the race really happened.
test "$ok" -gt 0 || fail "no run converted"
test "$refused" -gt 0 || fail "no run met the symlink"
test "$(sha256sum < vault/disk.qed)" = "$sha" || fail "vault/disk.qed changed"
no_marker
