#!/usr/bin/env bash
# Corrupt and hostile QED images are refused, in place and by copy, with
# one clear line and the file unchanged.  --repair converts what the
# valid tables describe, like `qemu-img check -r all` would read it.
source "$abs_top_builddir/tests/functions.sh"
source "$abs_top_srcdir/tests/convert-lib.sh"
source "$abs_top_srcdir/tests/qed-functions.sh"
set -e
set -x

convert_setup

# Layout (64k clusters, table_size 4): header 0, L1 0x10000, data 0x50000
# and 0x60000, L2 0x70000, data 0xb0000 (guest 4M).
mkqed good.qed 8M -- 'write -P 0x61 0 128k' 'write -P 0x62 4M 64k'
test "$(qed_get_u64 good.qed $((0x70000)))" = $((0x50000))
test "$(qed_get_u64 good.qed $((0x70200)))" = $((0xb0000))

# refused IMG PATTERN: fails with PATTERN both ways, IMG unchanged.
refused ()
{
    local img=$1 pat=$2 sha rc mode
    sha=$(sha256sum < "$img")
    for mode in "" "--output out.qcow2" "--copy" "--allow-copy"; do
        rc=0
        # shellcheck disable=SC2086
        virt-qed-migrate --file "$img" $mode 2> err || rc=$?
        cat err
        test "$rc" = 1 || fail "$img $mode: exit $rc"
        test "$(wc -l < err)" = 1
        grep -E -- "$pat" err || fail "$img: message does not match '$pat'"
        test ! -e out.qcow2
        test ! -e "${img%.qed}.qcow2"
        test "$(sha256sum < "$img")" = "$sha"
    done
}

cp good.qed unaligned.qed
qed_set_u64 unaligned.qed $((0x70008)) $((0x60100))
refused unaligned.qed "is corrupt"

cp good.qed pasteof.qed
qed_set_u64 pasteof.qed $((0x70008)) $((0x10000000))
refused pasteof.qed "is corrupt"

cp good.qed dup.qed
qed_set_u64 dup.qed $((0x70200)) $((0x50000))
refused dup.qed "is corrupt"

cp good.qed dup-table.qed
qed_set_u64 dup-table.qed $((0x70200)) $((0x10000))
refused dup-table.qed "is corrupt"

cp good.qed l1bad.qed
qed_set_u64 l1bad.qed $((0x10000)) $((0x40000000))
refused l1bad.qed "is corrupt"

cp good.qed feature.qed
qed_set_u64 feature.qed 16 $((0x10))
refused feature.qed "feature"

cp good.qed dirty-dup.qed
qed_set_u64 dirty-dup.qed $((0x70200)) $((0x50000))
qed_set_u64 dirty-dup.qed 16 2
refused dirty-dup.qed "is corrupt"

head -c 100 good.qed > short.qed
refused short.qed "short.qed"

qemu-img create -q -f raw notqed.img 1M
refused notqed.img "not a QED image"

# Unknown compat features: readable, but not in place; copy works.
cp good.qed compat.qed
qed_set_u64 compat.qed 24 1
sha=$(sha256sum < compat.qed)
rc=0
virt-qed-migrate --file compat.qed 2> err || rc=$?
test "$rc" = 1
grep "in place: unknown QED compat features" err
# --dry-run says why, writes nothing; the fallback needs --allow-copy.
rc=0
virt-qed-migrate --file compat.qed --dry-run 2> err || rc=$?
test "$rc" = 1
grep "in place: unknown QED compat features.*--allow-copy" err
virt-qed-migrate --file compat.qed --allow-copy --dry-run > out
cat out
grep "would convert 'compat.qed' to qcow2 by copy into 'compat.qcow2'.*: unknown QED compat features" out
test ! -e compat.qcow2
test "$(sha256sum < compat.qed)" = "$sha"
virt-qed-migrate --file compat.qed --allow-copy | grep "compat.qcow2"
test "$(sha256sum < compat.qed)" = "$sha"
judge compat.qcow2 good.qed

# --repair: invalid entries read as unallocated, as after QEMU's repair;
# it says what it dropped, one line for each problem.
declare -A what=(
    [unaligned]='dropped: L2 table at 0x70000 entry 1 \(guest offset 0x10000\): .*not cluster aligned'
    [pasteof]='dropped: L2 table at 0x70000 entry 1 \(guest offset 0x10000\): .*past the end'
    [l1bad]='dropped: L1 entry 0: L2 table offset 0x40000000 is invalid'
)
for img in unaligned pasteof l1bad; do
    cp "$img.qed" "$img.qemu-repaired.qed"
    qemu-img check -q -r all "$img.qemu-repaired.qed" >/dev/null 2>&1 || :
    sha=$(sha256sum < "$img.qed")
    virt-qed-migrate --file "$img.qed" --output "$img.repaired.qcow2" \
        --repair > out
    cat out
    grep -E -- "${what[$img]}" out
    test "$(grep -c 'dropped: ' out)" = 1
    test "$(sha256sum < "$img.qed")" = "$sha"
    judge "$img.repaired.qcow2" "$img.qemu-repaired.qed"
done
# --repair without --output: in place is impossible; repaired by copy
# only with --allow-copy.
sha=$(sha256sum < unaligned.qed)
rc=0
virt-qed-migrate --file unaligned.qed --repair 2> err || rc=$?
cat err
test "$rc" = 1
grep "in place: it is corrupt (1 problem) and --repair works by copy (add --allow-copy" err
test ! -e unaligned.qcow2
virt-qed-migrate --file unaligned.qed --repair --allow-copy --dry-run > out
grep "would convert 'unaligned.qed' to qcow2 by copy.*repaired by copy" out
grep "would drop: L2 table at 0x70000 entry 1" out
test ! -e unaligned.qcow2
test "$(sha256sum < unaligned.qed)" = "$sha"
virt-qed-migrate --file unaligned.qed --repair --allow-copy | grep "repaired by copy"
qcheck_clean unaligned.qcow2
