#!/usr/bin/env bash
# domxml-corpus.sh OUT: generate a corpus of libvirt domain definitions
# for tests/test-virt-every-disk.sh.
#
# Every device kind (disk, cdrom, floppy) x source form (file, block,
# volume) x with and without <driver> x backing chain (none, QED base
# with <backingStore>, raw base with <backingStore>, QED base without)
# x flags (none, readonly, shareable+readonly, transient), each domain
# with one of the companions that cannot hold QED (none, network, lun,
# dir, nvme, vhostuser), boot order and addresses on some, <metadata> in
# a foreign namespace naming the image, a comment; and the special
# cases: two disks on one image, one image used as a disk by one domain
# and as a cdrom by another, an image named by a disk without <driver>
# (libvirt records it as raw) or by a lun, a domain with a disk of each
# kind.
#
# Environment (all required): SETS="one dom pool all"; for each set S
# DIR_S (where file and block images go) and POOL_S, POOLDIR_S (the dir
# pool for volume images), VNCDIR (the VNC sockets).
#
# Writes:
#   OUT/xml/NAME.xml   the definitions
#   OUT/images         SET PATH FORMAT EXPECT [BACKING BACKING_FORMAT]
#                      in creation order (bases first); EXPECT is
#                      convert (becomes PATH without .qed + .qcow2 with
#                      the same guest data), keep (stays byte for byte:
#                      some definition naming it cannot be rewritten) or
#                      none (not QED)
#   OUT/domains        NAME SET REWRITTEN(yes|no) STARTABLE(yes|no)
set -eu

out=$1
mkdir -p "$out/xml"
: > "$out/images"
: > "$out/domains"

# var NAME SET: sets $v to the value of ${NAME_SET} (no subshells: the
# corpus is a few hundred domains).
var () { local n=$1_$2; v=${!n}; }

image () { echo "$*" >> "$out/images"; }

# disk_xml TYPE DEVICE DRIVER SOURCE TARGET BUS INNER...: append one
# <disk> to $disks.  DRIVER is a format or "-" for no <driver>.
disk_xml ()
{
    local type=$1 device=$2 drv=$3 src=$4 target=$5 bus=$6 i
    shift 6
    disks+="    <disk type='$type' device='$device'>"$'\n'
    [ "$drv" = - ] || disks+="      <driver name='qemu' type='$drv'/>"$'\n'
    disks+="      $src"$'\n'
    for i in "$@"; do
        disks+="      $i"$'\n'
    done
    disks+="      <target dev='$target' bus='$bus'/>"$'\n'
    disks+="    </disk>"$'\n'
}

# domain NAME SET REWRITTEN STARTABLE EXTRA META: write the definition
# with the disks in $disks (then emptied); META is the path its
# <metadata> names.
domain ()
{
    local name=$1 set=$2 rw=$3 st=$4 extra=$5 meta=$6
    {
        echo "<domain type='qemu'>"
        echo "  <name>$name</name>"
        echo "  <!-- corpus domain $name: comments are dropped by libvirt -->"
        echo "  <metadata>"
        echo "    <vqmt:note xmlns:vqmt='urn:virt-qed-migrate:test'><vqmt:disk file='$meta' format='qed'/></vqmt:note>"
        echo "  </metadata>"
        echo "  <memory unit='MiB'>64</memory>"
        echo "  <vcpu>1</vcpu>"
        [ -z "$extra" ] || echo "$extra"
        echo "  <os><type arch='x86_64' machine='pc'>hvm</type></os>"
        echo "  <devices>"
        echo "    <emulator>/usr/bin/qemu-system-x86_64</emulator>"
        printf '%s' "$disks"
        echo "    <graphics type='vnc' socket='$VNCDIR/$name.vnc' passwd='s3cret'/>"
        echo "  </devices>"
        echo "</domain>"
    } > "$out/xml/$name.xml"
    echo "$name $set $rw $st" >> "$out/domains"
    disks=
}

companion ()
{
    case $1 in
    0) ;;
    1) disk_xml network disk raw "<source protocol='nbd' name='export'><host name='127.0.0.1' port='10809'/></source>" vdb virtio ;;
    2) disk_xml block lun raw "<source dev='/dev/null'/>" sda scsi ;;
    3) disk_xml dir floppy fat "<source dir='$VNCDIR'/>" fdb fdc '<readonly/>' ;;
    4) disk_xml nvme disk raw "<source type='pci' managed='yes' namespace='1'><address domain='0x0000' bus='0x01' slot='0x00' function='0x0'/></source>" vdc virtio ;;
    5) disk_xml vhostuser disk raw "<source type='unix' path='$VNCDIR/vhost.sock'><reconnect enabled='yes' timeout='10'/></source>" vdd virtio ;;
    esac
}
shared_memory="  <memoryBacking><source type='memfd'/><access mode='shared'/></memoryBacking>"

# ---- the combinations ----
sets=(dom pool all)
n=0
disks=
for device in disk cdrom floppy; do
    case $device in
    disk) target=vda bus=virtio addr="<address type='pci' domain='0x0000' bus='0x00' slot='0x0a' function='0x0'/>" ;;
    cdrom) target=hdc bus=ide addr="<address type='drive' controller='0' bus='1' target='0' unit='0'/>" ;;
    floppy) target=fda bus=fdc addr="<address type='drive' controller='0' bus='0' target='0' unit='0'/>" ;;
    esac
    for form in file block volume; do
        for drv in qed none; do
            for chain in none qedbs rawbs qednobs; do
                for flags in plain ro shro transient; do
                    # libvirt: transient disks are disks of type file only.
                    [ "$flags" != transient ] || { [ "$device" = disk ] && [ "$form" = file ]; } || continue
                    set=${sets[$((n % 3))]}
                    name=c$n-$device-$form-$drv-$chain-$flags
                    comp=$((n % 6))
                    n=$((n + 1))
                    if [ "$form" = volume ]; then
                        var POOLDIR "$set"
                    else
                        var DIR "$set"
                    fi
                    dir=$v
                    top=$dir/$name.qed
                    [ "$drv" = qed ] && expect=convert || expect=keep
                    inner=()
                    case $chain in
                    none)
                        image "$set" "$top" qed "$expect" ;;
                    qedbs|qednobs)
                        image "$set" "$dir/$name-base.qed" qed "$expect"
                        image "$set" "$top" qed "$expect" "$name-base.qed" qed
                        [ "$chain" = qednobs ] || inner+=("<backingStore type='file'><format type='qed'/><source file='$dir/$name-base.qed'/><backingStore/></backingStore>") ;;
                    rawbs)
                        image "$set" "$dir/$name-base.raw" raw none
                        image "$set" "$top" qed "$expect" "$name-base.raw" raw
                        inner+=("<backingStore type='file'><format type='raw'/><source file='$dir/$name-base.raw'/><backingStore/></backingStore>") ;;
                    esac
                    case $flags in
                    ro) inner+=('<readonly/>') ;;
                    shro) inner+=('<readonly/>' '<shareable/>') ;;
                    transient) inner+=('<transient/>') ;;
                    esac
                    [ $((n % 4)) != 0 ] || inner+=("<boot order='1'/>")
                    [ $((n % 5)) != 0 ] || inner+=("$addr")
                    case $form in
                    file) src="<source file='$top'/>" ;;
                    block) src="<source dev='$top'/>" ;;
                    volume) var POOL "$set"
                            src="<source pool='$v' volume='$name.qed'/>" ;;
                    esac
                    [ "$drv" = qed ] && d=qed || d=-
                    disk_xml "$form" "$device" "$d" "$src" "$target" "$bus" "${inner[@]}"
                    companion "$comp"
                    extra=
                    [ "$comp" != 5 ] || extra=$shared_memory
                    # QEMU opens these (host_device refuses a regular
                    # file, floppies and transient disks are left out).
                    st=no
                    if [ "$expect" = convert ] && [ "$comp" = 0 ] \
                       && [ "$form" != block ] && [ "$device" != floppy ] \
                       && [ "$flags" != transient ]; then
                        st=yes
                    fi
                    [ "$expect" = convert ] && rw=yes || rw=no
                    domain "$name" "$set" "$rw" "$st" "$extra" "$top"
                done
            done
        done
    done
done

# ---- special cases ----
fdisk () { disk_xml file disk qed "<source file='$1'/>" "$2" virtio; }
disks=

# A domain with a disk of each kind (migrated alone first, exit 0).
var DIR one; d1=$v
var POOLDIR one; p1=$v
var POOL one
image one "$d1/multi-vda.qed" qed convert
image one "$p1/multi-vdb.qed" qed convert
image one "$d1/multi-hdc.qed" qed convert
image one "$d1/multi-fda.qed" qed convert
fdisk "$d1/multi-vda.qed" vda
disk_xml volume disk qed "<source pool='$v' volume='multi-vdb.qed'/>" vdb virtio
disk_xml file cdrom qed "<source file='$d1/multi-hdc.qed'/>" hdc ide '<readonly/>'
disk_xml file floppy qed "<source file='$d1/multi-fda.qed'/>" fda fdc
domain multi one yes yes "" "$d1/multi-vda.qed"

# Two cdroms on one image.
var DIR dom; dd=$v
image dom "$dd/twice.qed" qed convert
disk_xml file cdrom qed "<source file='$dd/twice.qed'/>" hdc ide '<readonly/>' '<shareable/>'
disk_xml file cdrom qed "<source file='$dd/twice.qed'/>" hdd ide '<readonly/>' '<shareable/>'
domain twice dom yes yes "" "$dd/twice.qed"

# One image, a disk in one domain and a cdrom in another.
var POOLDIR pool; dp=$v
image pool "$dp/roles.qed" qed convert
fdisk "$dp/roles.qed" vda
domain roles-disk pool yes yes "" "$dp/roles.qed"
disk_xml file cdrom qed "<source file='$dp/roles.qed'/>" hdc ide '<readonly/>'
domain roles-cdrom pool yes yes "" "$dp/roles.qed"

# One image, with <driver> in one domain and without in another
# (libvirt records raw): nothing may change.
var DIR all; da=$v
image all "$da/nodriver.qed" qed keep
fdisk "$da/nodriver.qed" vda
domain nodriver-a all no no "" "$da/nodriver.qed"
disk_xml file disk - "<source file='$da/nodriver.qed'/>" vda virtio
domain nodriver-b all no no "" "$da/nodriver.qed"

# One image, a disk in one domain and a lun in another.
image all "$da/lun.qed" qed keep
fdisk "$da/lun.qed" vda
domain lun-disk all no no "" "$da/lun.qed"
disk_xml block lun raw "<source dev='$da/lun.qed'/>" sda scsi
domain lun-lun all no no "" "$da/lun.qed"
