#!/usr/bin/env bash
# Work follows the tables, not what the file claims: a QED of about
# 124 KiB on disk with a 15 TiB apparent size (truncate -s) is checked,
# inspected and converted (in place and by copy, with verification) in
# well under 10 s each, and the result is right.  In place, the new
# metadata goes right after the last cluster in use, so the refcounts
# cover what the tables use, not the 15 TiB of nothing, and the file is
# shortened to its end (qemu-img check refuses a 15 TiB qcow2 with 4 KiB
# clusters as too large).
source "$abs_top_builddir/tests/functions.sh"
source "$abs_top_srcdir/tests/convert-lib.sh"
set -e
set -x

convert_setup

for cs in 64k 4k; do
    rm -f big.qed pristine.qed big.qcow2
    mkqed big.qed 10G -o cluster_size=$cs -- 'write -P 1 0 64k' \
        'write -P 2 5G 64k' 'write -z 6G 1M'
    truncate -s 15T big.qed
    test "$(du -k big.qed | cut -f1)" -lt 4096
    cp --sparse=always big.qed pristine.qed
    timeout 10 virt-qed-migrate --inspect big.qed > out
    grep -q '0 corruptions' out
    timeout 10 virt-qed-migrate --inspect big.qed --map --json > map.json
    qemu-img map -f qed --output=json big.qed | diff -u - map.json
    timeout 10 virt-qed-migrate --file big.qed --dry-run
    timeout 10 virt-qed-migrate --file big.qed --output big.qcow2 --verify
    qemu-img compare pristine.qed big.qcow2
    qcheck_clean big.qcow2
    timeout 10 virt-qed-migrate --file big.qed --verify=full > out
    cat out
    grep -q 'in place' out
    test "$(du -k big.qed | cut -f1)" -lt 8192
    test "$(stat -c %s big.qed)" -lt $((1 << 30))
    qemu-img compare pristine.qed big.qed
    qcheck_clean big.qed
done
