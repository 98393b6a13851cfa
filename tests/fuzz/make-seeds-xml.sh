#!/usr/bin/env bash
# make-seeds-xml.sh DIR: write seed inputs for the text parsers' fuzz
# targets into DIR/domxml (domain XML), DIR/journal (state directory
# journals) and DIR/hook (hook.conf, a line "%%", then a domain XML).
# Used by run-fuzzers.sh (libFuzzer corpus) and by
# test-fuzz-xml-corpus.sh.
#
# Paths starting with /vqmfuzz/ are replaced by the fuzz targets with a
# scratch directory of their own holding a few images (see the targets).
set -e
dir=$1
test -n "$dir" || { echo "usage: $0 DIR" >&2; exit 2; }
mkdir -p "$dir/domxml" "$dir/journal" "$dir/hook"
cd "$dir"
uuid=2a7c1e44-0b8d-4f3e-9d6a-5e1f7c3b9a20

# ---- domain XML, as libvirt prints it ----
cat > domxml/file-chain.xml <<EOF
<domain type='kvm'>
  <name>web01</name>
  <uuid>$uuid</uuid>
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-7.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qed' cache='none' io='native'/>
      <source file='/vqmfuzz/still.qed'/>
      <backingStore type='file'>
        <format type='qed'/>
        <source file='/vqmfuzz/inplace.qed'/>
        <backingStore type='file'>
          <format type='raw'/>
          <source file='/vqmfuzz/raw.img'/>
          <backingStore/>
        </backingStore>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qed'/>
      <source file='/vqmfuzz/renamed.qed'/>
      <target dev='vdb' bus='virtio'/>
      <serial>renamed.qed</serial>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='file' device='floppy'>
      <driver name='qemu' type='qed'/>
      <source file='/vqmfuzz/fifo.qed'/>
      <target dev='fda' bus='fdc'/>
    </disk>
    <interface type='network'>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
EOF

cat > domxml/running.xml <<EOF
<domain type='qemu' id='7'>
  <name>db &amp; cache</name>
  <uuid>$uuid</uuid>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qed'/>
      <source file='/vqmfuzz/still.qed' index='2'/>
      <backingStore type='file' index='1'>
        <format type='qcow2'/>
        <source file='/vqmfuzz/renamed.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <disk type='file' device='disk'>
      <source file='/vqmfuzz/inplace.qed'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF

cat > domxml/volume.xml <<EOF
<domain type='kvm'>
  <name>pooled</name>
  <uuid>$uuid</uuid>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qed'/>
      <source pool='images' volume='pooled.qed'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source pool='images' volume='data.qcow2'/>
      <backingStore type='file'>
        <format type='qed'/>
        <source file='/vqmfuzz/still.qed'/>
      </backingStore>
      <target dev='vdb' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF

cat > domxml/block-network.xml <<EOF
<domain type='kvm'>
  <name>sanvm</name>
  <uuid>$uuid</uuid>
  <devices>
    <disk type='block' device='disk'>
      <driver name='qemu' type='qed' cache='none'/>
      <source dev='/vqmfuzz/still.qed'/>
      <target dev='sda' bus='scsi'/>
    </disk>
    <disk type='block' device='lun' sgio='unfiltered'>
      <driver name='qemu' type='raw'/>
      <source dev='/dev/disk/by-id/nonexistent'/>
      <target dev='sdb' bus='scsi'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/image'>
        <host name='mon1.example.org' port='6789'/>
      </source>
      <auth username='admin'>
        <secret type='ceph' uuid='$uuid'/>
      </auth>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/vqmfuzz/inplace.qed'/>
      <backingStore type='network'>
        <format type='qed'/>
        <source protocol='nbd' name='base'>
          <host name='nbd.example.org' port='10809'/>
        </source>
      </backingStore>
      <target dev='vdd' bus='virtio'/>
    </disk>
    <disk type='dir' device='disk'>
      <driver name='qemu' type='fat'/>
      <source dir='/vqmfuzz'/>
      <target dev='hdb' bus='ide'/>
    </disk>
  </devices>
</domain>
EOF

# Unusual but well-formed documents: entities (an external one that must
# never be read), namespaces, CDATA, duplicate and missing elements.
cat > domxml/entities.xml <<EOF
<?xml version="1.0" encoding="ISO-8859-1"?>
<!DOCTYPE domain [
  <!ENTITY secret SYSTEM "file:///vqmfuzz/secret">
  <!ENTITY a "aaaaaaaaaaaaaaaa">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ATTLIST source file CDATA "/vqmfuzz/secret">
]>
<domain xmlns:q='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>&secret;&b;</name>
  <uuid><![CDATA[$uuid]]></uuid>
  <devices>
    <!-- a comment -->
    <disk type='file' device='disk'>
      <driver name='qemu' type='qed'/>
      <driver name='qemu' type='raw'/>
      <source q:file='/vqmfuzz/raw.img' file='&b;'/>
      <target dev='vda'/>
      <target dev='vdb'/>
    </disk>
    <disk type='file'>
      <source/>
      <target dev='vda'/>
    </disk>
    <disk><target/></disk>
    <disk type='file' dev='hdz'><source file='&#x2F;vqmfuzz/still.qed'/></disk>
  </devices>
  <devices><disk type='file'><source file='/second'/><target dev='vdz'/></disk></devices>
  <q:commandline><q:arg value='-S'/></q:commandline>
</domain>
EOF

printf '<domain/>' > domxml/empty.xml
printf '<domain><devices><disk type="file"><backingStore><source file="/x"/><backingStore><source dev="/y"/></backingStore></backingStore><target dev="vda"/></disk></devices></domain>' \
    > domxml/compact.xml
# libvirt's own test driver definition, when virsh is there.
if command -v virsh >/dev/null 2>&1; then
    virsh -q -c test:///default dumpxml test > domxml/testdriver.xml \
        2>/dev/null || rm -f domxml/testdriver.xml
fi

# ---- journals (virt-journal.c: tab-separated records) ----
t=$(printf '\t')
cat > journal/interrupted <<EOF
B${t}1${t}migrate${t}$uuid${t}web01${t}
B${t}2${t}shutdown${t}$uuid${t}web01${t}
D${t}2
B${t}3${t}convert${t}/vqmfuzz/still.qed${t}/vqmfuzz/still.qed${t}in-place:2049:131
D${t}3
B${t}4${t}rename${t}/vqmfuzz/still.qed${t}/vqmfuzz/still.qcow2${t}
B${t}5${t}convert${t}/vqmfuzz/b.qed${t}/vqmfuzz/b.qcow2${t}copy:2049:132
D${t}5
B${t}6${t}rebase${t}/vqmfuzz/top.qcow2${t}b.qcow2${t}qcow2
F${t}6${t}qemu-img%3A rebase failed%0Anext line%25
B${t}7${t}define${t}$uuid${t}web01${t}
EOF
{
    cat journal/interrupted
    printf 'D\t7\nD\t4\nB\t8\tstart\t%s\tweb01\t\nD\t8\nD\t1\n' "$uuid"
    printf 'B\t9\tremove\t/vqmfuzz/b.qed\t\t\nD\t9\n'
} > journal/finished
{
    printf 'B\t1\tmigrate\t%s\tname%%09with%%0Atabs%%zz%%4\t\n' "$uuid"
    printf 'B\t-5\tmigrate\t%s\n' "$uuid"
    printf 'B\t2147483647\tconvert\t/a\t/b\tin-place:18446744073709551615:1\n'
    printf 'D\t2147483647\n'
    printf 'X\t1\tunknown\n\n\t\t\t\t\t\t\t\t\n'
    printf 'B\t3\tconvert\t/a\t/b\tin-place\n'
    printf 'B\t99999999999999999999\trename\t/a\n'
    printf 'B\t4\tmigrate\t%s\tnot torn\t' "$uuid"
} > journal/odd
printf 'B\t1\tmigrate\t%s\tweb01\t\nB\t2\tcon' "$uuid" > journal/torn
: > journal/empty

# ---- hook: hook.conf, "%%", domain XML ----
cat > hook/deny <<EOF
# virt-qed-migrate hook policy
policy = deny
uri = "qemu:///system"
state_dir = /vqmfuzz/state
timeout = 5
%%
EOF
cat domxml/file-chain.xml >> hook/deny
cat > hook/convert-on-stop <<EOF
policy='convert-on-stop'
log=/vqmfuzz/hook.log
state_dir=/vqmfuzz/nostate
unknown_key = 1
%%
EOF
cat domxml/running.xml >> hook/convert-on-stop
{
    printf 'policy = warn   # trailing comment\n\turi=test:///default\n%%%%\n'
    cat domxml/volume.xml
} > hook/warn
{
    printf 'policy = maybe\ntimeout = 0\n%%%%\n'
    cat domxml/block-network.xml
} > hook/invalid
{
    printf 'timeout=3601\nstate_dir=relative\nlog=rel\nnovalue\n%%%%\n'
    cat domxml/entities.xml
} > hook/doctype
{
    printf 'policy=deny\n'
    head -c 1100 /dev/zero | tr '\0' x
    printf '\n%%%%\n'
    cat domxml/compact.xml
} > hook/longline
cp domxml/file-chain.xml hook/xml-only
