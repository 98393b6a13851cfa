#!/usr/bin/env bash
# Copy-mode output options (cluster size, lazy refcounts, zlib and zstd
# compression), progress output, default names, exit statuses.
source "$abs_top_builddir/tests/functions.sh"
source "$abs_top_srcdir/tests/convert-lib.sh"
set -e
set -x

convert_setup

# Compressible and incompressible data, zero clusters, holes; 4k clusters
# so that qcow2 clusters can be bigger or smaller than the QED ones.
qemu-img create -q -f qed -o cluster_size=4k,table_size=4 src.qed 24M
head -c 1M /dev/urandom > rnd
qemu-io -c 'write -P 0x11 0 2M' -c 'write -z 3M 1M' -c 'write -P 0x12 5M 4k' \
    -c 'write -P 0x13 23M 12k' src.qed >/dev/null
qemu-io -c "write -s rnd 8M 1M" src.qed >/dev/null
qemu-img create -q -f raw zeros.raw 64k
qemu-io -c "write -s zeros.raw 10M 64k" src.qed >/dev/null   # all-zero data
sha=$(sha256sum < src.qed)

for cs in 512 4096 65536 1M 2M; do
    virt-qed-migrate --file src.qed --output "cs$cs.qcow2" --cluster-size "$cs" --verify
    judge "cs$cs.qcow2" src.qed
    want=$(numfmt --from=iec "$cs")
    test "$(info_field "cs$cs.qcow2" cluster-size)" = "$want"
done
# All-zero data clusters are not written: 2M + 4k + 12k + 1M of data.
test "$(qemu-img map --output=json cs4096.qcow2 | jq '[.[] | select(.data) | .length] | add')" = $((2*1048576 + 4096 + 12288 + 1048576))

virt-qed-migrate --file src.qed --output lazy.qcow2 --lazy-refcounts
test "$(qemu-img info --output=json lazy.qcow2 | jq -r '."format-specific".data."lazy-refcounts"')" = true
judge lazy.qcow2 src.qed

virt-qed-migrate --file src.qed --output z.qcow2 --compress --verify
test "$(qemu-img info --output=json z.qcow2 | jq -r '."format-specific".data."compression-type"')" = zlib
qemu-img check z.qcow2 | grep -E '[1-9][0-9.]*% compressed clusters'
judge z.qcow2 src.qed
test "$(stat -c %s z.qcow2)" -lt "$(stat -c %s cs4096.qcow2)"

if virt-qed-migrate --file src.qed --output zstd.qcow2 --compress=zstd 2> err; then
    test "$(qemu-img info --output=json zstd.qcow2 | jq -r '."format-specific".data."compression-type"')" = zstd
    judge zstd.qcow2 src.qed
else
    grep "without zstd" err
fi
test "$(sha256sum < src.qed)" = "$sha"

# Progress: "N/100" lines on a file descriptor, ending at 100.
cp src.qed p.qed
virt-qed-migrate -q --file p.qed --output p1.qcow2 --progress=3 3> prog
cat prog
tail -1 prog | grep -qx '100/100'
grep -qvE '^[0-9]+/100$' prog && fail "bad progress line"
virt-qed-migrate -q --file p.qed --progress=3 3> prog
tail -1 prog | grep -qx '100/100'
# -p on a terminal draws a bar ending at 100%.
if script --version >/dev/null 2>&1; then
    cp src.qed tty.qed
    script -qec "virt-qed-migrate -p --file tty.qed" /dev/null > tty.out
    cat tty.out
    grep -q '100% \[' tty.out
    grep -q "converted 'tty.qed' to qcow2 in place" tty.out
fi
# -p without a terminal prints no bar.
cp src.qed p2.qed
virt-qed-migrate -q -p --file p2.qed > out
test ! -s out

# Default --copy names.
cp src.qed noext
virt-qed-migrate -q --file noext --copy
qcheck_clean noext.qcow2
# The output is never overwritten.
rc=0
virt-qed-migrate --file src.qed --output noext.qcow2 2> err || rc=$?
test "$rc" = 1
grep "already exists" err

# Owner, group and mode are kept.
cp src.qed mode.qed
chmod 0640 mode.qed
if [ "$(id -u)" = 0 ]; then chown 12345:54321 mode.qed; fi
st=$(stat -c '%u:%g:%a' mode.qed)
virt-qed-migrate -q --file mode.qed --copy
test "$(stat -c '%u:%g:%a' mode.qcow2)" = "$st"
virt-qed-migrate -q --file mode.qed
test "$(stat -c '%u:%g:%a' mode.qed)" = "$st"

# Usage errors exit 2; missing files exit 1 with one line.
must_fail 2 virt-qed-migrate --file src.qed --compress
must_fail 2 virt-qed-migrate --file src.qed --cluster-size 64k
must_fail 2 virt-qed-migrate --file src.qed --flatten
must_fail 2 virt-qed-migrate --file src.qed --output a --copy
rc=0
virt-qed-migrate --file nonexistent.qed 2> err || rc=$?
test "$rc" = 1
test "$(wc -l < err)" = 1
grep "nonexistent.qed" err
# --no-punch keeps the old tables' space; default gives it back.
cp src.qed keep.qed
cp src.qed punch.qed
virt-qed-migrate -q --file keep.qed --no-punch
virt-qed-migrate -q --file punch.qed
qcheck_clean keep.qed
qcheck_clean punch.qed
test "$(du -k punch.qed | cut -f1)" -lt "$(du -k keep.qed | cut -f1)"
