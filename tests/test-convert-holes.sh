#!/usr/bin/env bash
# Copy mode asks the file system where the source has data: data clusters
# lying in holes of the QED file are zeros and are not read.  On every
# shape (all clusters in holes, some, extents starting and ending inside
# clusters, over a backing file) the copy is byte for byte the file made
# from the same image with every zero written out (where every cluster
# is read and scanned), on tmpfs and on loop-mounted ext4, XFS and btrfs
# when they can be mounted, and from a block device (which reports no
# holes).  --verify and --verify=full take the same shortcut and still
# judge right.  A source that changes size under the copy is refused
# with one clear line and nothing left behind.
source "$abs_top_builddir/tests/functions.sh"
source "$abs_top_srcdir/tests/convert-lib.sh"
set -e
set -x

convert_setup
requires fallocate --version
requires perl -e 1

# punch_data IMG FIRST LEN: punch LEN bytes of the file at FIRST bytes
# into each data range qemu-img map reports (never a table or the
# header), so that data extents start and end inside clusters.
punch_data ()
{
    local img=$1 first=$2 len=$3 off
    for off in $(qemu-img map -f qed --output=json "$img" |
                 jq -r '.[] | select(.data) | .offset'); do
        fallocate --punch-hole --offset $((off + first)) --length "$len" "$img"
    done
}

# check_shape NAME [BACKING]: NAME.qed copied by every data path equals,
# byte for byte, the copy of NAME.full.qed (the same file with every hole
# written out as zeros), and holds the same guest data (qemu-img).
check_shape ()
{
    local n=$1 method
    cp --sparse=never "$n.qed" "$n.full.qed"
    test "$(du -k "$n.full.qed" | cut -f1)" -ge "$(du -k "$n.qed" | cut -f1)"
    rm -f "$n.ref.qcow2"
    VQM_COPY_METHOD=read VQM_COPY_DIRECT=0 VQM_DEBUG=1 \
        virt-qed-migrate --file "$n.full.qed" --output "$n.ref.qcow2" 2> log
    grep -q 'copy: 0 bytes of data clusters lie in holes' log
    qcheck_clean "$n.ref.qcow2"
    qemu-img compare "$n.qed" "$n.ref.qcow2"
    for method in "" mmap read cfr; do
        rm -f "$n.out.qcow2"
        VQM_COPY_METHOD=$method VQM_DEBUG=1 \
            virt-qed-migrate --file "$n.qed" --output "$n.out.qcow2" \
            --verify 2> log
        cat log
        cmp "$n.out.qcow2" "$n.ref.qcow2" ||
            fail "$n: method '$method' differs from the full source's copy"
    done
    qcheck_clean "$n.out.qcow2"
    qemu-img compare "$n.qed" "$n.out.qcow2"
    rm -f "$n.full.qed"
}

# 1. Every cluster allocated, all of them holes in the file (a zero-filled
# image after cp --sparse=always), with 4 KiB clusters.
mkqed zeros.qed 6M -o cluster_size=4k -- 'write -P 0 0 6M'
cp --sparse=always zeros.qed z.qed
rm zeros.qed
test "$(du -k z.qed | cut -f1)" -lt 1024
check_shape z
VQM_DEBUG=1 virt-qed-migrate --file z.qed --output z2.qcow2 2> log
grep -q 'copy: 6291456 bytes of data clusters lie in holes' log
test "$(qemu-img map --output=json z2.qcow2 | jq '[.[] | select(.data)] | length')" = 0

# 2. Partly hole-backed, 64 KiB clusters: random data, zeroed ranges made
# holes by cp --sparse=always, then holes punched at odd offsets inside
# the data clusters (extents that start and end inside clusters; the
# file system zeroes the partial blocks).
head -c 3M /dev/urandom > rnd
mkqed p0.qed 8M -o cluster_size=64k -- 'write -s rnd 0 3M' \
    'write -P 0 3M 2M' 'write -P 0x41 5M 64k' 'write -P 0 5184k 1M' \
    'write -s rnd 6M 1M'
rm rnd
cp --sparse=always p0.qed p.qed
rm p0.qed
punch_data p.qed 4096 12288
punch_data p.qed 70000 50000
punch_data p.qed 1000 3
check_shape p

# 3. Over a backing file: clusters of the overlay that lie in holes read
# as zeros, not as the backing file's data.
mkqed base.qed 4M -- 'write -P 0x11 0 4M'
qemu-img create -q -f qed -b base.qed -F qed ov0.qed 4M
qemu-io -f qed -c 'write -P 0 0 1M' -c 'write -P 0x22 1M 64k' \
    -c 'write -P 0 2M 64k' ov0.qed >/dev/null
cp --sparse=always ov0.qed ov.qed
rm ov0.qed
check_shape ov
qio_ok ov.out.qcow2 'read -P 0 0 1M' 'read -P 0x22 1M 64k' \
    'read -P 0x11 1088k 960k' 'read -P 0 2M 64k' 'read -P 0x11 2112k 1984k'

# 4. In place with --verify=full on a hole-backed image.
cp --sparse=always p.qed pi.qed
virt-qed-migrate --file pi.qed --verify=full
judge pi.qed p.qed

# 5. The source changes size under the copy: refused with one clear
# line, no output and no temporary file left.  The copy is stopped at
# its second write (VQM_FAULT), the file grows or shrinks, and it goes
# on.
head -c 24M /dev/urandom > rnd
mkqed grow.qed 32M -- 'write -s rnd 0 24M'
rm rnd
for change in "+64K" "-8M" "-16M"; do
    for method in "" read; do
        cp grow.qed src.qed
        mkdir out
        VQM_COPY_METHOD=$method VQM_FAULT=write:2:stop \
            virt-qed-migrate --file src.qed --output out/x.qcow2 2> err &
        pid=$!
        stopped "$pid"
        truncate -s "$change" src.qed
        resumed_fails "$pid" "'src.qed' changed size while it was being copied"
        test "$(wc -l < err)" = 1
        test -z "$(ls -A out)" || fail "left behind: $(ls -A out)"
        rmdir out
    done
done

# 6. Other file systems: tmpfs, and loop-mounted ext4, XFS and btrfs when
# available; and a block device as the source (no holes reported: all
# data, still right).
fs_shapes ()
{
    local mnt=$1
    cp --sparse=always z.qed "$mnt/z.qed"
    cp --sparse=always p.qed "$mnt/p.qed"
    (cd "$mnt" && check_shape z && check_shape p) || fail "shapes on $mnt"
    rm -f "$mnt"/*.qed "$mnt"/*.qcow2
}
mkdir tmpfs
if mount -t tmpfs -o size=64M none tmpfs; then
    cleanup_fn umount "$d/tmpfs"
    fs_shapes "$d/tmpfs"
else
    echo "cannot mount tmpfs here: tmpfs part skipped"
fi
for fs in ext4 xfs btrfs; do
    command -v "mkfs.$fs" >/dev/null || { echo "no mkfs.$fs: skipped"; continue; }
    truncate -s 320M "$fs.img"
    dev=$(losetup -f --show "$fs.img" 2>/dev/null) ||
        { echo "losetup does not work here: $fs skipped"; continue; }
    cleanup_fn losetup -d "$dev"
    case $fs in
        ext4) mkfs.ext4 -q -F "$dev" ;;
        xfs) mkfs.xfs -q "$dev" ;;
        btrfs) mkfs.btrfs -q "$dev" >/dev/null ;;
    esac
    mkdir "mnt-$fs"
    if ! mount "$dev" "mnt-$fs"; then
        echo "cannot mount $fs here: skipped"
        continue
    fi
    cleanup_fn umount "$d/mnt-$fs"
    fs_shapes "$d/mnt-$fs"
done
truncate -s 16M dev.img
dd if=p.qed of=dev.img conv=notrunc status=none
if dev=$(losetup -f --show dev.img 2>/dev/null); then
    cleanup_fn losetup -d "$dev"
    rm -f dev.qcow2
    virt-qed-migrate --file "$dev" --output dev.qcow2 --verify
    qemu-img compare -f qed p.qed dev.qcow2
    qcheck_clean dev.qcow2
else
    echo "losetup does not work here: block device part skipped"
fi
