#!/usr/bin/env bash
# Backing chains: raw (no-probe), qcow2 and QED backing files, a
# three-level chain, a 610-byte name, copies into another directory,
# --flatten, and unsafe backing files (system trees, untrusted
# directories, loops, missing files) refused with the file unchanged.
source "$abs_top_builddir/tests/functions.sh"
source "$abs_top_srcdir/tests/convert-lib.sh"
source "$abs_top_srcdir/tests/qed-functions.sh"
set -e
set -x

convert_setup

qemu-img create -q -f raw base.raw 8M
qemu-io -f raw -c 'write -P 0x31 0 8M' base.raw >/dev/null
qemu-img create -q -f qcow2 base.qcow2 8M
qemu-io -c 'write -P 0x32 0 4M' base.qcow2 >/dev/null
qemu-img create -q -f qed base.qed 8M
qemu-io -c 'write -P 0x33 1M 4M' base.qed >/dev/null
# mid.qcow2 over base.raw, for a three-level chain.
qemu-img create -q -f qcow2 -b base.raw -F raw mid.qcow2 8M
qemu-io -c 'write -P 0x34 2M 1M' mid.qcow2 >/dev/null

# overlay NAME BACKING FMT: a QED overlay with data, zero clusters, holes.
overlay ()
{
    qemu-img create -q -f qed -b "$2" -F "$3" "$1" 8M
    qemu-io -c 'write -P 0x41 0 64k' -c 'write -z 1M 128k' \
        -c 'write -P 0x42 7M 100k' "$1" >/dev/null
    cp "$1" "${1%.qed}.pristine.qed"
}

for b in base.raw:raw base.qcow2:qcow2 base.qed:qed mid.qcow2:qcow2; do
    file=${b%%:*}
    fmt=${b##*:}
    n=ov-${file//./-}
    overlay "$n.qed" "$file" "$fmt"
    virt-qed-migrate --file "$n.qed" --output "$n.copy.qcow2" --verify
    judge "$n.copy.qcow2" "$n.pristine.qed" "$file" "$fmt"
    virt-qed-migrate --file "$n.qed" --verify=full
    judge "$n.qed" "$n.pristine.qed" "$file" "$fmt"
done
# QED with -F raw sets the no-probe bit; it is what made "raw" above.
# Without it, the backing format is probed from the backing file's header
# (raw here: QEMU would probe it the same way).
overlay probe.qed base.raw raw
test "$(qed_get_u64 probe.qed 16)" = 5
qed_set_u64 probe.qed 16 1
cp probe.qed probe.pristine.qed
virt-qed-migrate --file probe.qed --output probe.copy.qcow2 --verify
judge probe.copy.qcow2 probe.pristine.qed base.raw raw
virt-qed-migrate --file probe.qed --verify
judge probe.qed probe.pristine.qed base.raw raw

# Output clusters bigger than the QED ones: the unallocated parts of a
# cluster that also holds data are filled from the backing file.
overlay big.qed base.raw raw
virt-qed-migrate --file big.qed --output big.qcow2 --cluster-size 2M --verify
judge big.qcow2 big.pristine.qed base.raw raw
test "$(info_field big.qcow2 cluster-size)" = 2097152

# A 610-byte relative name: pre-written into cluster 0 in place.
long=$(printf './%.0s' $(seq 1 300))base.raw
test ${#long} = 608
overlay long.qed "$long" raw
virt-qed-migrate --file long.qed --output long.copy.qcow2
judge long.copy.qcow2 long.pristine.qed "$long" raw
virt-qed-migrate --file long.qed
judge long.qed long.pristine.qed "$long" raw

# A copy into another directory keeps working: the relative name becomes
# the absolute path of the backing file.
mkdir out
overlay rel.qed base.qcow2 qcow2
virt-qed-migrate --file rel.qed --output out/rel.qcow2
judge out/rel.qcow2 rel.pristine.qed "$d/base.qcow2" qcow2

# --flatten: a standalone image with the data of the whole chain.
overlay flat.qed mid.qcow2 qcow2
virt-qed-migrate --file flat.qed --output flat.qcow2 --flatten --verify
judge flat.qcow2 flat.pristine.qed
must_fail 2 virt-qed-migrate --file flat.qed --flatten

# Dry run: says what would happen, changes nothing.
sha=$(sha256sum < flat.qed)
rm flat.qcow2
virt-qed-migrate --file flat.qed --dry-run |
    grep "would convert 'flat.qed' to qcow2 in place: the check found no corruption.*only new metadata"
virt-qed-migrate --file flat.qed --copy --dry-run | grep "by copy into 'flat.qcow2'.*: --copy asks"
test ! -e flat.qcow2
test "$(sha256sum < flat.qed)" = "$sha"

# refused IMG PATTERN [ARGS]: conversion fails with PATTERN, IMG unchanged,
# in place and by copy.
refused ()
{
    local img=$1 pat=$2 sha rc
    shift 2
    sha=$(sha256sum < "$img")
    for mode in "" "--output refused-out.qcow2"; do
        rc=0
        # shellcheck disable=SC2086
        virt-qed-migrate --file "$img" $mode "$@" 2> err || rc=$?
        cat err
        test "$rc" = 1 || fail "$img: exit $rc"
        test "$(wc -l < err)" = 1
        grep -E "$pat" err || fail "$img: message does not match '$pat'"
        test ! -e refused-out.qcow2
        test "$(sha256sum < "$img")" = "$sha"
    done
}

# Backing files in system trees, or not regular files.
qemu-img create -q -f qed -o backing_file=/etc/passwd,backing_fmt=raw etc.qed 1M 2>/dev/null ||
    { qemu-img create -q -f qed etc.qed 1M && qemu-img rebase -u -b /etc/passwd -F raw -f qed etc.qed; }
refused etc.qed "/etc/passwd"
qemu-img create -q -f qed dev.qed 1M
qemu-img rebase -u -b /dev/zero -F raw -f qed dev.qed
refused dev.qed "/dev/zero"
# Outside the trusted directories.
mkdir other elsewhere img
cp base.raw other/b.raw
qemu-img create -q -f qed -b ../other/b.raw -F raw img/trust.qed 8M
refused img/trust.qed "other/b.raw" --trust-dir "$d/elsewhere"
cp img/trust.qed img/trust.pristine.qed
virt-qed-migrate --file img/trust.qed --trust-dir "$d/other"
judge img/trust.qed img/trust.pristine.qed ../other/b.raw raw
# A loop.
qemu-img create -q -f qed loop1.qed 1M
qemu-img create -q -f qed -b loop1.qed -F qed loop2.qed 1M
qemu-img rebase -u -b loop2.qed -F qed -f qed loop1.qed
refused loop2.qed "loop|deep"
# Missing backing file.
qemu-img create -q -f qed -b nonexistent.raw -F raw -o size=1M missing.qed 2>/dev/null ||
    { qemu-img create -q -f qed missing.qed 1M && qemu-img rebase -u -b nonexistent.raw -F raw -f qed missing.qed; }
refused missing.qed "nonexistent.raw"
# A name longer than qcow2 can hold (1023 bytes): in place says why; a
# flattened copy is still possible.
huge=$(printf './%.0s' $(seq 1 600))base.raw
overlay huge.qed "$huge" raw
sha=$(sha256sum < huge.qed)
rc=0
virt-qed-migrate --file huge.qed 2> err || rc=$?
test "$rc" = 1
grep "1023" err
test "$(sha256sum < huge.qed)" = "$sha"
virt-qed-migrate --file huge.qed --output huge.qcow2 --flatten
judge huge.qcow2 huge.pristine.qed
