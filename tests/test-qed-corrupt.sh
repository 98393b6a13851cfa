#!/usr/bin/env bash
# Corrupt and hostile QED images, made by patching real ones: every one
# gives a clear one-line error and exit 1 (or a check report and exit 1),
# never a crash or a hang, and the file is left byte-for-byte unchanged;
# conversion (in place and by copy) refuses every one of them the same way.
# Where QEMU can judge (qemu-img check), it must agree.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
requires timeout --version
source "$abs_top_srcdir/tests/qed-functions.sh"

d=$(vqm_tmpdir)
cleanup_fn rm -rf "$d"
cd "$d"

# Base image: 64 KiB clusters, table size 4.  QEMU lays it out as
# header 0x0, L1 0x10000, data 0x50000, L2 0x60000, data 0xa0000...
qemu-img create -f qed base.qed 64M >/dev/null
qemu-io -f qed -c "write -P 1 0 64k" -c "write -P 2 1M 64k" \
    -c "write -P 3 2M 64k" base.qed >/dev/null
qemu-img check -f qed base.qed
l1=$(qed_get_u64 base.qed 40)
l2=$(qed_get_u64 base.qed "$l1")
data0=$(qed_get_u64 base.qed "$l2")
data16=$(qed_get_u64 base.qed $((l2 + 16 * 8)))
data32=$(qed_get_u64 base.qed $((l2 + 32 * 8)))
len=$(stat -c %s base.qed)
test "$l1" = 65536

n=0
# run_inspect FILE WANT_RC: --inspect must exit WANT_RC within the
# timeout, leave FILE unchanged; on failure stderr is one line naming
# the file.
run_inspect ()
{
    local f=$1 want=$2 before after rc=0
    before=$(sha256sum < "$f")
    timeout 60 virt-qed-migrate --inspect "$f" > "$f.out" 2> "$f.err" || rc=$?
    after=$(sha256sum < "$f")
    cat "$f.out" "$f.err"
    test "$before" = "$after" || fail "$f was modified"
    test "$rc" = "$want" || fail "--inspect $f exited $rc, expected $want"
    if [ "$want" = 1 ]; then
        test "$(wc -l < "$f.err")" = 1 || fail "$f: not one error line"
        grep -q "^virt-qed-migrate: error: .*$(basename "$f")" "$f.err" ||
            fail "$f: error does not name the file"
    fi
    # Conversion refuses it too, in place and by copy: one line, exit 1,
    # the file unchanged, no output left.
    if [ "$want" = 1 ]; then
        for mode in "" "--output $f.qcow2"; do
            rc=0
            # shellcheck disable=SC2086
            timeout 60 virt-qed-migrate --file "$f" $mode 2> "$f.cerr" ||
                rc=$?
            cat "$f.cerr"
            test "$rc" = 1 || fail "--file $f $mode exited $rc"
            test "$(wc -l < "$f.cerr")" = 1 || fail "$f: not one error line"
            test ! -e "$f.qcow2" || fail "$f: output left behind"
            test "$(sha256sum < "$f")" = "$before" ||
                fail "$f was modified by --file $mode"
        done
    fi
    # The map exits the same way (a corrupt image has no map).
    rc=0
    timeout 60 virt-qed-migrate --inspect "$f" --map --json >/dev/null \
        2> "$f.err2" || rc=$?
    test "$rc" = "$want" || fail "--map $f exited $rc, expected $want"
    if [ "$want" = 1 ]; then
        test "$(wc -l < "$f.err2")" = 1 || fail "$f: --map: not one error line"
    fi
    test "$(sha256sum < "$f")" = "$before" || fail "$f was modified by --map"
    n=$((n + 1))
}

# header FILE REGEX [OFFSET TYPE VALUE]...: copy base, patch, expect exit 1
# with REGEX in the error.
header ()
{
    local f=$1 re=$2
    shift 2
    cp base.qed "$f"
    while [ $# -gt 0 ]; do
        "qed_set_$2" "$f" "$1" "$3"
        shift 3
    done
    run_inspect "$f" 1
    grep -E -- "$re" "$f.err" || fail "$f: expected error /$re/"
}

# Empty, short, bad magic.
: > empty.qed
run_inspect empty.qed 1
grep 'is empty' empty.qed.err
head -c 10 base.qed > short.qed
run_inspect short.qed 1
grep 'too short' short.qed.err
header magic.qed 'bad magic' 0 u32 0x00444552

# Every header field out of range.
header cs0.qed 'invalid QED cluster size 0' 4 u32 0
header cs1000.qed 'invalid QED cluster size 1000' 4 u32 1000
header cs2k.qed 'invalid QED cluster size 2048' 4 u32 2048
header cs128m.qed 'invalid QED cluster size' 4 u32 $((128 << 20))
header ts0.qed 'invalid QED table size 0' 8 u32 0
header ts3.qed 'invalid QED table size 3' 8 u32 3
header ts32.qed 'invalid QED table size 32' 8 u32 32
header hs0.qed 'invalid QED header size 0' 12 u32 0
header hs2.qed 'L1 table offset 0x10000 is invalid \(in the header area\)' 12 u32 2
header hsbig.qed 'header area' 12 u32 0xffffffff
header feat.qed 'unknown QED incompatible features 0x8' 16 u64 0xb
header feat63.qed 'unknown QED incompatible features' 16 u64 $((1 << 63))
header size1000.qed 'not a multiple of 512' 48 u64 1000
header sizecap.qed 'exceeds the table capacity' 48 u64 $(( (64 << 40) + 512 ))
header sizemax.qed 'exceeds the table capacity' 48 u64 -512
header l1zero.qed 'L1 table offset 0x0 is invalid' 40 u64 0
header l1unal.qed 'not cluster aligned' 40 u64 $((l1 + 512))
header l1eof.qed 'past the end of the file' 40 u64 $((1 << 40))
header l1huge.qed 'past the end of the file' 40 u64 -65536
header l1tail.qed 'table extends past the end of the file' 40 u64 "$data32"
header bfoff0.qed 'overlaps the header' 16 u64 1 56 u32 0 60 u32 10
header bfout.qed 'outside the header area' 16 u64 1 56 u32 65530 60 u32 100
header bfhuge.qed 'outside the header area' 16 u64 1 56 u32 64 60 u32 0xffffffff
header bfempty.qed 'backing file name is empty' 16 u64 1 56 u32 64 60 u32 0
# QEMU refuses all of these too.
for f in magic cs0 cs1000 cs2k ts0 ts3 ts32 feat size1000 sizecap l1unal \
         l1eof l1tail bfout; do
    ! qemu-img info -f qed "$f.qed" >/dev/null 2>&1 ||
        fail "QEMU opened $f.qed"
done

# Unknown compatible and autoclear bits: readable, with warnings (and
# QEMU opens them too).
cp base.qed compat.qed
qed_set_u64 compat.qed 24 0x10
qed_set_u64 compat.qed 32 0x4
run_inspect compat.qed 0
grep 'warning: unknown compatible features 0x10' compat.qed.out
grep 'warning: unknown autoclear features 0x4' compat.qed.out
qed_compare compat.qed

# A partial last cluster: the L1 table may not start in it.
cp base.qed partial.qed
head -c 1000 /dev/zero >> partial.qed
qed_set_u64 partial.qed 40 "$len"
run_inspect partial.qed 1
grep 'partial last cluster\|past the end' partial.qed.err

# Truncated files.
cp base.qed trunc-l1.qed
truncate -s $((l1 + 65536)) trunc-l1.qed
run_inspect trunc-l1.qed 1
grep 'table extends past the end of the file' trunc-l1.qed.err

# table CASE: patch table entries (OFFSET VALUE pairs), then --inspect
# reports corruption lines matching REGEX, exits 1, and qemu-img check
# agrees (exit 2).
table ()
{
    local f=$1 re=$2
    shift 2
    cp base.qed "$f"
    while [ $# -gt 0 ]; do
        qed_set_u64 "$f" "$1" "$2"
        shift 2
    done
    run_inspect "$f" 1
    grep -E -- "$re" "$f.out" || fail "$f: expected /$re/"
    grep 'is corrupt' "$f.err"
    must_fail 2 qemu-img check -f qed "$f"
}

table l1e-unal.qed 'L1 entry 0: L2 table offset .* \(not cluster aligned\)' \
    "$l1" $((l2 + 512))
table l1e-eof.qed 'L1 entry 5: .*past the end of the file' \
    $((l1 + 40)) $((1 << 40))
table l1e-tail.qed 'L1 entry 3: .*table extends past the end' \
    $((l1 + 24)) "$data32"
table l1e-dup.qed 'referenced twice \(table/table\)' $((l1 + 8)) "$l2"
table l1e-isl1.qed 'referenced twice \(table/table\)' $((l1 + 8)) "$l1"
table l1e-ondata.qed 'referenced twice \(data/table\)' $((l1 + 8)) "$data0"
table l2e-unal.qed 'entry 0 .*data cluster offset .*not cluster aligned' \
    "$l2" $((data0 + 2048))
table l2e-eof.qed 'entry 7 .*past the end of the file' \
    $((l2 + 56)) $((1 << 45))
table l2e-dup.qed 'referenced twice \(data/data\)' $((l2 + 8)) "$data16"
table l2e-onl1.qed 'referenced twice \(table/data\)' $((l2 + 8)) "$l1"
table l2e-onl2.qed 'referenced twice \(table/data\)' $((l2 + 8)) $((l2 + 65536))

# References into the header area: a copy of base with header_size 2
# and its L1 table moved to the end of the file, so that cluster 1 (the
# old L1 table) belongs to the header area.
cp base.qed hdr2.qed
dd if=base.qed bs=64k skip=1 count=4 status=none >> hdr2.qed
qed_set_u32 hdr2.qed 12 2
qed_set_u64 hdr2.qed 40 "$len"
# The old L1 clusters 2..4 are now leaked: QEMU and we both say so.
must_fail 3 qemu-img check -f qed hdr2.qed
run_inspect hdr2.qed 0
grep '3 leaked clusters at host offset 0x20000' hdr2.qed.out
qed_compare hdr2.qed
cp hdr2.qed hdr2-data.qed
qed_set_u64 hdr2-data.qed $((l2 + 8)) 65536
run_inspect hdr2-data.qed 1
grep 'entry 1 .*data cluster offset 0x10000 is invalid (in the header area)' \
    hdr2-data.qed.out
must_fail 2 qemu-img check -f qed hdr2-data.qed
cp hdr2.qed hdr2-table.qed
qed_set_u64 hdr2-table.qed $((len + 8)) 65536
run_inspect hdr2-table.qed 1
grep 'L1 entry 1: L2 table offset 0x10000 is invalid (in the header area)' \
    hdr2-table.qed.out
must_fail 2 qemu-img check -f qed hdr2-table.qed

# Every problem is reported, not only the first.
table many.qed 'referenced twice' "$l2" $((data0 + 2048)) \
    $((l2 + 56)) $((1 << 45)) $((l2 + 8)) "$data16" $((l1 + 40)) 7
test "$(grep -c '^  corruption:' many.qed.out)" = 4

# An entry inside a partial last cluster.
cp base.qed l2e-partial.qed
head -c 3000 /dev/urandom >> l2e-partial.qed
qed_set_u64 l2e-partial.qed $((l2 + 8)) "$len"
run_inspect l2e-partial.qed 1
grep 'partial last cluster' l2e-partial.qed.out
must_fail 2 qemu-img check -f qed l2e-partial.qed

# A file truncated inside an L2 table.
cp base.qed trunc-l2.qed
truncate -s $((l2 + 65536)) trunc-l2.qed
run_inspect trunc-l2.qed 1
grep 'table extends past the end' trunc-l2.qed.out
must_fail 2 qemu-img check -f qed trunc-l2.qed

# Leaks are not corruption: exit 0, reported as leaks, QEMU says 3.
cp base.qed leak.qed
truncate -s $((len + 2 * 65536)) leak.qed
run_inspect leak.qed 0
grep '2 leaked clusters at host offset' leak.qed.out
must_fail 3 qemu-img check -f qed leak.qed
qemu-img check -f qed --output=json leak.qed > leak.json || :
grep '"leaks": 2,' leak.json

# Exact arithmetic: a fully referenced image of more than cs-1 clusters
# (QEMU's check divides by cs-1 there and may count spurious leaks).
# Every cluster is the header, the L1, an L2 table or data.
qemu-img create -f qed -o cluster_size=4k,table_size=2 full.qed 24M >/dev/null
qemu-io -f qed -c "write -P 7 0 20M" full.qed >/dev/null
run_inspect full.qed 0
grep '0 corruptions, 0 leaked clusters' full.qed.out
l2s=$(sed -n 's/^  L2 tables: *//p' full.qed.out)
datas=$(sed -n 's/^  data clusters: *//p' full.qed.out)
test $(( (1 + 2 + 2 * l2s + datas) * 4096 )) = "$(stat -c %s full.qed)"
test "$datas" = $((20 * 256))

# NEED_CHECK with a corruption: still reported, file unchanged.
cp l2e-dup.qed dirty-dup.qed
qed_set_u64 dirty-dup.qed 16 2
run_inspect dirty-dup.qed 1
grep 'need check): *yes' dirty-dup.qed.out

# Unreadable: exit 1, one line naming the file.  Bad usage: exit 2.
for f in nonexistent.qed "$d"; do
    rc=0
    virt-qed-migrate --inspect "$f" > out 2> err || rc=$?
    cat err
    test "$rc" = 1 || fail "--inspect $f exited $rc"
    test "$(wc -l < err)" = 1
    grep -q "^virt-qed-migrate: error: .*'$f'" err
done
must_fail 2 virt-qed-migrate --inspect
must_fail 2 virt-qed-migrate --inspect base.qed --no-such-option
must_fail 2 virt-qed-migrate --inspect base.qed extra-argument
must_fail 2 virt-qed-migrate --inspect base.qed --file base.qed
must_fail 2 virt-qed-migrate --inspect base.qed --json
virt-qed-migrate --inspect base.qed > out
grep -q '0 corruptions, 0 leaked clusters' out

echo "$n cases"
