#!/usr/bin/env bash
# Crash safety, tried for real: the converter is killed at every write and
# every sync in turn (VQM_FAULT=any:N:kill), and ENOSPC/EIO are injected at
# every write.  Afterwards the file must be the original QED (leaks
# allowed) or a clean qcow2, with the guest data of a pristine copy; by
# copy, the source is unchanged and no output is left behind.  A retry
# then converts the image.
source "$abs_top_builddir/tests/functions.sh"
source "$abs_top_srcdir/tests/convert-lib.sh"
set -e
set -x

requires qemu-img --version
requires qemu-io --version
requires jq --version

d=$(vqm_tmpdir)
cleanup_fn rm -rf "$d"
cd "$d"

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
    for n in $(seq 1 "$nwrite"); do
        for action in enospc eio; do
            cp "$img.pristine.qed" w.qed
            rc=0
            VQM_FAULT=write:$n:$action virt-qed-migrate -q --file w.qed \
                2> err || rc=$?
            # A failure before the commit leaves the QED; one after it
            # (hole punching) only warns.
            if [ "$rc" = 1 ]; then
                grep -E 'No space left|Input/output error' err
                test "$(wc -l < err)" = 1
            else
                test "$rc" = 0
            fi
            valid_qed_or_qcow2 w.qed "$img.pristine.qed"
        done
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
    for n in $(seq 1 "$nwrite"); do
        for action in enospc eio; do
            rc=0
            VQM_FAULT=write:$n:$action virt-qed-migrate -q --file src.qed \
                --output out.qcow2 2> err || rc=$?
            test "$rc" = 1 || fail "copy write:$n:$action: exit $rc"
            test "$(wc -l < err)" = 1
            test ! -e out.qcow2
            test "$(sha256sum < src.qed)" = "$sha"
            ls -A | diff -u listing -
        done
    done
    rm -f src.qed
done
