#!/usr/bin/env bash
# Crash safety, tried for real: the converter is killed at every write and
# every sync in turn (VQM_FAULT=any:N:kill), ENOSPC/EIO are injected at
# every write and EIO at every sync.  Afterwards the file must be the
# original QED (leaks allowed) or a clean qcow2, with the guest data of a
# pristine copy, and exit 0 means qcow2; by copy, the source is unchanged
# and no output is left behind.  A retry then converts the image.
source "$abs_top_builddir/tests/functions.sh"
requires_fault_injection
source "$abs_top_srcdir/tests/convert-lib.sh"
source "$abs_top_srcdir/tests/qed-functions.sh"
set -e
set -x

convert_setup

# Image 1: data, zero clusters, holes, two L2 tables (table_size 2 at 4k
# clusters covers 1 MiB per L2), size not a multiple of the cluster size.
mkqed plain.qed 3151872 -o cluster_size=4k,table_size=2 -- \
    'write -P 0x11 0 20k' 'write -z 40k 8k' 'write -P 0x12 1M 4k' \
    'write -P 0x13 3M 2k'
# Image 2: raw backing file with a 610-byte relative name (written into
# cluster 0 before the commit).
qemu-img create -q -f raw base.raw 4M
qemu-io -f raw -c 'write -P 0x33 0 4M' base.raw >/dev/null
long=$(printf './%.0s' $(seq 1 304))base.raw
test ${#long} = 616
qemu-img create -q -f qed -b "$long" -F raw -o cluster_size=64k back.qed 4M
qemu-io -c 'write -P 0x44 64k 64k' -c 'write -z 1M 64k' back.qed >/dev/null

for img in plain back; do
    cp "$img.qed" "$img.pristine.qed"
    rm -f trace
    cp "$img.pristine.qed" w.qed
    VQM_FAULT_TRACE=$d/trace virt-qed-migrate -q --file w.qed
    nany=$(wc -l < trace)
    nwrite=$(grep -c '^write' trace)
    test "$nany" -ge 5
    for n in $(seq 1 "$nany"); do
        cp "$img.pristine.qed" w.qed
        rc=0
        VQM_FAULT=any:$n:kill virt-qed-migrate -q --file w.qed || rc=$?
        test "$rc" = 137 || fail "any:$n:kill: exit $rc"
        valid_qed_or_qcow2 w.qed "$img.pristine.qed"
        # A retry finishes the job.
        virt-qed-migrate -q --file w.qed
        qcheck_clean w.qed
        qemu-img compare "$img.pristine.qed" w.qed >/dev/null
    done
    nsync=$(grep -c '^sync' trace)
    test "$nsync" -ge 2
    for fault in $(seq -f 'write:%g:enospc' 1 "$nwrite") \
                 $(seq -f 'write:%g:eio' 1 "$nwrite") \
                 $(seq -f 'sync:%g:eio' 1 "$nsync"); do
        cp "$img.pristine.qed" w.qed
        rc=0
        VQM_FAULT=$fault virt-qed-migrate -q --file w.qed 2> err || rc=$?
        cat err
        # A failure before the commit leaves the QED (a failed sync of
        # the commit may leave the qcow2): exit 1, one line.  One after
        # it (hole punching) only warns: exit 0, and then it is qcow2.
        if [ "$rc" = 1 ]; then
            grep -E 'No space left|Input/output error' err
            test "$(wc -l < err)" = 1
            valid_qed_or_qcow2 w.qed "$img.pristine.qed"
        else
            test "$rc" = 0 || fail "$fault: exit $rc"
            test "$(info_field w.qed format)" = qcow2 ||
                fail "$fault: exit 0 but not qcow2"
            qcheck_clean w.qed
            qemu-img compare "$img.pristine.qed" w.qed >/dev/null
        fi
    done

    # By copy.
    sha=$(sha256sum < "$img.pristine.qed")
    cp "$img.pristine.qed" src.qed
    rm -f trace
    VQM_FAULT_TRACE=$d/trace virt-qed-migrate -q --file src.qed --output out.qcow2
    nany=$(wc -l < trace)
    nwrite=$(grep -c '^write' trace)
    rm out.qcow2
    ls -A > listing
    for n in $(seq 1 "$nany"); do
        rc=0
        VQM_FAULT=any:$n:kill virt-qed-migrate -q --file src.qed \
            --output out.qcow2 || rc=$?
        test "$rc" = 137 || fail "copy any:$n:kill: exit $rc"
        test "$(sha256sum < src.qed)" = "$sha"
        # Killed before the name was given: nothing; after: complete.
        if [ -e out.qcow2 ]; then
            qcheck_clean out.qcow2
            qemu-img compare "$img.pristine.qed" out.qcow2 >/dev/null
            rm out.qcow2
        fi
        ls -A | diff -u listing -
    done
    nsync=$(grep -c '^sync' trace)
    test "$nsync" -ge 2
    for fault in $(seq -f 'write:%g:enospc' 1 "$nwrite") \
                 $(seq -f 'write:%g:eio' 1 "$nwrite") \
                 $(seq -f 'sync:%g:eio' 1 "$nsync"); do
        rc=0
        VQM_FAULT=$fault virt-qed-migrate -q --file src.qed \
            --output out.qcow2 2> err || rc=$?
        test "$rc" = 1 || fail "copy $fault: exit $rc"
        test "$(wc -l < err)" = 1
        grep -E 'No space left|Input/output error' err
        test ! -e out.qcow2
        test "$(sha256sum < src.qed)" = "$sha"
        ls -A | diff -u listing -
    done
    rm -f src.qed
done

# --verify catches a change made behind our back.  In place: the new
# qcow2 L2 table is altered after it was written and synced, before the
# commit; the map check refuses to commit and the QED stays as it was.
mkqed v.qed 8M -- 'write -P 0x61 0 128k' 'write -P 0x62 4M 64k'
cp v.qed v.pristine.qed
len=$(stat -c %s v.qed)
cp v.qed vt.qed
rm -f trace
VQM_FAULT_TRACE=$d/trace virt-qed-migrate -q --file vt.qed --verify
first_sync=$(grep -n '^sync' trace | head -1 | cut -d: -f1)
data0=$(qed_get_u64 v.qed "$(qed_get_u64 v.qed "$(qed_get_u64 v.qed 40)")")
want=$(printf '%016x' $(( data0 | (1 << 63) )))
VQM_FAULT=any:$first_sync:stop virt-qed-migrate -q --file v.qed --verify 2> err &
pid=$!
stopped "$pid"
l2=
for off in $(awk -v l="$len" '$1 == "write" && $4 >= l { print $4 }' trace); do
    e=$(od -An -t x8 --endian=big -j "$off" -N 8 v.qed | tr -d ' ')
    if [ "$e" = "$want" ]; then l2=$off; fi
done
test -n "$l2" || fail "the new L2 table was not found"
# Guest cluster 0 now points at guest cluster 1's data.
printf "$(printf '%016x' $(( (data0 + 65536) | (1 << 63) )) | sed 's/../\\x&/g')" |
    dd of=v.qed bs=1 seek="$l2" conv=notrunc status=none
resumed_fails "$pid" 'verification failed'
cmp v.qed v.pristine.qed

# --verify=full: a guest data byte changed behind our back after the
# commit is caught by the hash taken through the QED before it.
cp v.pristine.qed v.qed
second_sync=$(grep -n '^sync' trace | sed -n 2p | cut -d: -f1)
VQM_FAULT=any:$second_sync:stop virt-qed-migrate -q --file v.qed \
    --verify=full 2> err &
pid=$!
stopped "$pid"
printf '\x01' | dd of=v.qed bs=1 seek=$((data0 + 100)) conv=notrunc status=none
resumed_fails "$pid" 'verification failed: the guest data of'
cp v.pristine.qed v.qed

# By copy: the output's guest data is changed after it was written and
# named, before the comparison; the output is removed.
rm -f trace vt.qcow2
VQM_FAULT_TRACE=$d/trace virt-qed-migrate -q --file v.qed --output vt.qcow2 --verify
last=$(wc -l < trace)
tail -1 trace | grep '^sync'
VQM_FAULT=any:$last:stop virt-qed-migrate -q --file v.qed --output v.qcow2 \
    --verify 2> err &
pid=$!
stopped "$pid"
qemu-io -f qcow2 -c 'write -P 0x99 64k 4k' v.qcow2 >/dev/null
resumed_fails "$pid" 'verification failed'
test ! -e v.qcow2
cmp v.qed v.pristine.qed
