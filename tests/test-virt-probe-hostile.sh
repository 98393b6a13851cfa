#!/usr/bin/env bash
# A guest writes a qcow2 header onto its raw disk, with a backing name
# at offset 2^64-256 and a size of 1024 or 1023 bytes: offset + size
# wraps around 2^64 to a small number.  --inspect of the disk and a
# --pool --dry-run of its pool must read nothing outside the header
# (under ASan: no heap overflow), end with a clear message naming the
# disk, leave the raw disk alone and still plan the QED volume beside it.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires perl -e 1
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup
p=$(lv_pool p)
qed_image "$p/good.qed" 8M

# guest_disk PATH NAME_SIZE: a raw disk whose first sector a guest made
# look like a qcow2 v3 header (64 KiB clusters).
guest_disk ()
{
    lv_run truncate -s 8M "$1"
    perl -e 'print pack("a4 N Q> N N Q> N N Q> Q> N N Q> Q> Q> Q> N N",
                        "QFI\xfb", 3, hex("ffffffffffffff00"), $ARGV[0], 16,
                        1 << 20, 0, 1, 196608, 65536, 1, 0, 0, 0, 0, 0, 4,
                        104)' "$2" |
        dd of="$1" conv=notrunc status=none
}
guest_disk "$p/g1024.raw" 1024
guest_disk "$p/g1023.raw" 1023
# The header is what the test says it is.
[ "$(od -An -tx1 -j 8 -N 8 "$p/g1024.raw" | tr -d ' ')" = ffffffffffffff00 ]
[ "$(od -An -tu4 --endian=big -j 16 -N 4 "$p/g1024.raw" | tr -d ' ')" = 1024 ]
[ "$(od -An -tu4 --endian=big -j 16 -N 4 "$p/g1023.raw" | tr -d ' ')" = 1023 ]
# A QED overlay of g1024.raw that does not record the backing format.
qed_image "$p/over.qed" 8M g1024.raw raw
# Clear the no-probe bit (features 0x5 -> 0x1): the format is probed.
printf '\x01' | dd of="$p/over.qed" bs=1 seek=16 conv=notrunc status=none
lv_virsh pool-refresh p >/dev/null
define_domain dr "$(vol_disk p g1024.raw raw vda)" \
    "$(file_disk "$p/g1023.raw" raw vdb)"
define_domain dq "$(vol_disk p good.qed qed vda)"
sums "$p/g1024.raw" "$p/g1023.raw" > "$d/sums"

# no_crash FILE: no sanitizer report, no abort in a run's stderr.
no_crash ()
{
    if grep -E 'Sanitizer|runtime error|Segmentation|Aborted' "$1"; then
        fail "crash report in $1"
    fi
}

# --inspect reads QED images only: the raw disk is refused by its magic.
# Behind a QED overlay that does not record its backing format, the
# disk's format is probed: the qcow2 parser refuses the header, and the
# chain line and the one error line name the disk.
rc=0
virt-qed-migrate --inspect "$p/g1024.raw" > "$d/raw.out" 2> "$d/raw.err" ||
    rc=$?
cat "$d/raw.out" "$d/raw.err"
no_crash "$d/raw.err"
[ $rc = 1 ] || fail "--inspect g1024.raw exited $rc, expected 1"
[ "$(cat "$d/raw.err")" = "virt-qed-migrate: error: '$p/g1024.raw' is not a QED image (bad magic)" ]
msg="'$p/g1024.raw': invalid qcow2 backing file offset 0xffffffffffffff00"
for map in "" --map; do
    rc=0
    virt-qed-migrate --inspect "$p/over.qed" $map > "$d/over$map.out" \
        2> "$d/over.err" || rc=$?
    cat "$d/over$map.out" "$d/over.err"
    no_crash "$d/over.err"
    [ $rc = 1 ] || fail "--inspect over.qed $map exited $rc, expected 1"
    [ "$(cat "$d/over.err")" = "virt-qed-migrate: error: $msg" ]
done
test ! -s "$d/over--map.out"
grep -q "^backing chain: .*invalid qcow2 backing file offset" "$d/over.out"

# Discovery probes every volume of the pool and every disk of dr and dq:
# the raw disks are not images the tool follows (format unknown, left
# alone), over.qed is skipped with the parser's reason, good.qed is
# planned as usual.  Exit 3: something in scope was skipped.
xp ()  # FILE XPATH
{
    xmllint --xpath "string($2)" "$1"
}
for scope in "--pool p" "--all"; do
    rc=0
    virt-qed-migrate --state-dir "$state" $scope --dry-run \
        --report "$d/report.xml" > "$d/plan" 2> "$d/plan.err" || rc=$?
    cat "$d/plan" "$d/plan.err" "$d/report.xml"
    no_crash "$d/plan.err"
    [ $rc = 3 ] || fail "$scope --dry-run exited $rc, expected 3"
    test ! -s "$d/plan.err"
    validate_report "$d/report.xml"
    grep -qF "$p/over.qed: SKIPPED: $msg" "$d/plan"
    grep -qF "$p/good.qed: qed -> qcow2 in place" "$d/plan"
    for g in g1024 g1023; do
        # --pool lists the domains it changes, --all every domain.
        if [ "$scope" = --all ]; then
            [ "$(grep -A1 "^  disk vd.*$g.raw$" "$d/plan" | tail -1)" = \
              "    not QED (unknown): left alone" ] ||
                fail "the plan does not leave $g.raw alone"
        elif grep -F "$g.raw" "$d/plan" | grep -vF "over.qed: SKIPPED"; then
            fail "the plan of $scope names $g.raw"
        fi
        [ "$(xp "$d/report.xml" "/report/image[@path='$p/$g.raw']/@action")" = none ]
        [ "$(xp "$d/report.xml" "/report/image[@path='$p/$g.raw']/@format")" = unknown ]
    done
    [ "$(xp "$d/report.xml" "/report/image[@path='$p/over.qed']/@outcome")" = skipped ]
    [ "$(xp "$d/report.xml" "/report/image[@path='$p/over.qed']/reason")" = "$msg" ]
    [ "$(xp "$d/report.xml" "/report/image[@path='$p/good.qed']/@outcome")" = planned ]
done

sums -c "$d/sums"
[ "$(disk_attr dr vda driver/@type)" = raw ]
[ "$(disk_attr dr vdb driver/@type)" = raw ]
[ "$(disk_attr dq vda driver/@type)" = qed ]
