#!/usr/bin/env bash
# Real file systems and devices: on a small loop-mounted XFS (reflink) and
# btrfs, a copy shares its data extents with the source (copy_file_range
# reflinks), in place works, and a real full disk ends with a clear error
# and the source intact.  A QED written onto a loop block device is
# converted in place on the device.  Needs root, losetup and mount: the
# parts that cannot run say so; the test is skipped only if none can.
source "$abs_top_builddir/tests/functions.sh"
source "$abs_top_srcdir/tests/convert-lib.sh"
set -e
set -x

convert_setup
requires losetup --version

ran=0

# attach FILE: set $dev to a new loop device for FILE (or fail).
attach ()
{
    dev=$(losetup -f --show "$1" 2>/dev/null) || return 1
    cleanup_fn losetup -d "$dev"
}

fs_part ()
{
    local fs=$1 mnt=$d/mnt-$1 sha rc big
    truncate -s 320M "$d/$fs.img"
    if ! attach "$d/$fs.img"; then
        echo "losetup does not work here: $fs part skipped"
        return 0
    fi
    case $fs in
        xfs) mkfs.xfs -q -m reflink=1 "$dev" || { echo "mkfs.xfs failed: skipped"; return 0; } ;;
        btrfs) mkfs.btrfs -q "$dev" >/dev/null || { echo "mkfs.btrfs failed: skipped"; return 0; } ;;
    esac
    mkdir -p "$mnt"
    if ! mount "$dev" "$mnt"; then
        echo "cannot mount $fs here: $fs part skipped"
        return 0
    fi
    cleanup_fn umount "$mnt"
    ran=1

    qemu-img create -q -f qed "$mnt/a.qed" 256M
    head -c 24M /dev/urandom > "$mnt/rnd"
    qemu-io -c "write -s $mnt/rnd 0 24M" -c 'write -z 64M 1M' \
        -c 'write -P 0x22 100M 64k' "$mnt/a.qed" >/dev/null
    rm "$mnt/rnd"
    cp --reflink=never "$mnt/a.qed" "$d/$fs.pristine.qed"
    sha=$(sha256sum < "$mnt/a.qed")

    # Copy: data extents are shared with the source (reflinked).
    virt-qed-migrate --file "$mnt/a.qed" --output "$mnt/a.qcow2" --verify
    test "$(sha256sum < "$mnt/a.qed")" = "$sha"
    judge "$mnt/a.qcow2" "$d/$fs.pristine.qed"
    if command -v filefrag >/dev/null; then
        filefrag -v "$mnt/a.qed" | grep -q shared ||
            fail "$fs: copy_file_range did not share extents"
    fi
    rm "$mnt/a.qcow2"

    # Full disk, for real: a copy that cannot fit fails cleanly.
    big=$(( $(stat -f -c '%a*%S' "$mnt") - 12*1024*1024 ))
    fallocate -l "$big" "$mnt/filler"
    rc=0
    VQM_COPY_METHOD=read virt-qed-migrate --file "$mnt/a.qed" \
        --output "$mnt/full.qcow2" 2> err || rc=$?
    cat err
    test "$rc" = 1
    grep -q "No space left on device" err
    test "$(wc -l < err)" = 1
    test ! -e "$mnt/full.qcow2"
    test "$(ls -A "$mnt" | wc -l)" = 2
    test "$(sha256sum < "$mnt/a.qed")" = "$sha"
    # In place with no room even for the metadata: QED unchanged.
    fallocate -l "$(( $(stat -f -c '%a*%S' "$mnt") ))" "$mnt/filler2" || :
    dd if=/dev/zero of="$mnt/filler3" bs=64k status=none 2>/dev/null || :
    rc=0
    virt-qed-migrate --file "$mnt/a.qed" 2> err || rc=$?
    cat err
    if [ "$rc" = 1 ]; then
        grep -q "No space left on device" err
        test "$(sha256sum < "$mnt/a.qed")" = "$sha"
    else
        # The file system found room after all: then it must be right.
        judge "$mnt/a.qed" "$d/$fs.pristine.qed"
        cp --reflink=never "$d/$fs.pristine.qed" "$mnt/a.qed" 2>/dev/null || :
    fi
    rm -f "$mnt/filler" "$mnt/filler2" "$mnt/filler3"
    cp --reflink=never "$d/$fs.pristine.qed" "$mnt/a.qed"

    # In place.
    virt-qed-migrate --file "$mnt/a.qed" --verify=full
    judge "$mnt/a.qed" "$d/$fs.pristine.qed"
}

for fs in xfs btrfs; do
    if command -v "mkfs.$fs" >/dev/null; then
        fs_part "$fs"
    else
        echo "mkfs.$fs not installed: $fs part skipped"
    fi
done

# A QED on a block device, converted in place on the device.
mkqed dev.qed 16M -- 'write -P 0x31 0 1M' 'write -z 2M 64k' 'write -P 0x32 15M 64k'
cp dev.qed dev.pristine.qed
truncate -s 64M dev.img
dd if=dev.qed of=dev.img conv=notrunc status=none
if attach "$d/dev.img"; then
    ran=1
    virt-qed-migrate --file "$dev" --verify
    qemu-img check -f qcow2 "$dev"
    qemu-img compare -f qed -F qcow2 dev.pristine.qed "$dev"
    test "$(qemu-img info --output=json -f qcow2 "$dev" | jq -r .format)" = qcow2
    qemu-io -f qcow2 -c 'write -P 0x5a 0 64k' "$dev" >/dev/null
    qemu-img check -f qcow2 "$dev"
    # No room left on a device exactly as big as the QED: refused.
    truncate -s "$(stat -c %s dev.qed)" tight.img
    dd if=dev.qed of=tight.img conv=notrunc status=none
    if attach "$d/tight.img"; then
        tdev=$dev
        sha=$(sha256sum < "$tdev")
        rc=0
        virt-qed-migrate --file "$tdev" 2> err || rc=$?
        cat err
        test "$rc" = 1
        grep -q "no room" err
        test "$(sha256sum < "$tdev")" = "$sha"
    fi
else
    echo "losetup does not work here: block device part skipped"
fi

if [ "$ran" = 0 ]; then
    echo "$0: no loop device or mount available: skipped"
    exit 77
fi
