#!/usr/bin/env bash
# Fully allocated images, laid out as QEMU writes them front to back
# (bench/mkqed-full.pl; data clusters are holes of the file): a 1 TiB one
# (16 Mi clusters, 128 MiB of QED L2 tables) converts in place within
# 64 MiB of memory, with the same map as the QED and a clean check; a
# copy of it reads only the tables; a smaller one gives the same guest
# data by copy and in place.  The layout matches QEMU's own byte for byte.
source "$abs_top_builddir/tests/functions.sh"
source "$abs_top_srcdir/tests/convert-lib.sh"
set -e
set -x

convert_setup
requires perl -e 1
requires /usr/bin/time -f %M true
mkfull="$abs_top_srcdir/bench/mkqed-full.pl"

# The generator writes what QEMU writes (4 KiB clusters, 24 MiB written
# cluster by cluster with zeros).
qemu-img create -q -f qed -o cluster_size=4k q.qed 24M
for i in $(seq 0 6143); do echo "write -P 0 $((i * 4096)) 4k"; done |
    qemu-io -f qed q.qed >/dev/null
perl "$mkfull" m.qed 24M 4K
cmp q.qed m.qed
rm q.qed m.qed

# 2 GiB: copy and in place, judged by qemu-img.
perl "$mkfull" two.qed 2G
cp --sparse=always two.qed two.pristine.qed
virt-qed-migrate --file two.qed --output two.qcow2 --verify
judge two.qcow2 two.pristine.qed
virt-qed-migrate --file two.qed --verify
judge two.qed two.pristine.qed
rm -f two.qed two.qcow2 two.pristine.qed

# 1 TiB in place: bounded memory, the same map, a clean check.
perl "$mkfull" tera.qed 1T
cp --sparse=always tera.qed tera.pristine.qed
# (qcow2's map also asks the file system: clusters in holes say
# "zero": true there; the rest must be identical.)
qemu-img map -f qed --output=json tera.pristine.qed | jq -c 'map(del(.zero))' > qed.map
env -u MALLOC_PERTURB_ /usr/bin/time -f '%M' -o copy.rss \
    virt-qed-migrate --file tera.qed --output tera.qcow2 --verify
env -u MALLOC_PERTURB_ /usr/bin/time -f '%M' -o inplace.rss \
    virt-qed-migrate --file tera.qed
cat copy.rss inplace.rss
if ! ldd "$(command -v virt-qed-migrate)" | grep -q libasan; then
    test "$(tail -1 copy.rss)" -lt 65536
    test "$(tail -1 inplace.rss)" -lt 65536
fi
qcheck_clean tera.qed
qcheck_clean tera.qcow2
qemu-img map -f qcow2 --output=json tera.qed | jq -c 'map(del(.zero))' |
    diff -u qed.map -
test "$(info_field tera.qed virtual-size)" = $((1 << 40))
# The copy holds no data cluster: they all lie in holes of the source.
test "$(qemu-img map --output=json tera.qcow2 | jq '[.[] | select(.data)] | length')" = 0
test "$(stat -c %s tera.qcow2)" -lt $((64 << 20))
