#!/usr/bin/env bash
# The migrate/restore XML filter: QED disks that are qcow2 on this host
# now are rewritten (format, and source when the file was renamed);
# everything else stays as it was.  Hostile XML is refused safely and no
# file the XML does not name is ever opened.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version
requires xmllint --version

d=$(vqm_tmpdir)
uuid=2a7c1e44-0b8d-4f3e-9d6a-5e1f7c3b9a20

# inplace.qed: converted in place, name kept (qcow2 under the old name).
qemu-img create -q -f qcow2 "$d/inplace.qed" 8M
# renamed.qed -> renamed.qcow2: only the qcow2 exists.
qemu-img create -q -f qcow2 "$d/renamed.qcow2" 8M
# still.qed: not converted yet.
qemu-img create -q -f qed "$d/still.qed" 8M
# gone.qed: missing, and its sibling is not qcow2.
qemu-img create -q -f qed "$d/gone.qcow2" 8M
# raw.img: a raw disk whose guest wrote a qcow2 header into it.
qemu-img create -q -f qcow2 "$d/guestdata" 1M
qemu-img create -q -f raw "$d/raw.img" 2M
dd if="$d/guestdata" of="$d/raw.img" conv=notrunc status=none
# A chain: top.qcow2 (was top.qed) over base.qcow2 (was base.qed).
qemu-img create -q -f qcow2 "$d/base.qcow2" 8M
qemu-img create -q -f qcow2 -b "$d/base.qcow2" -F qcow2 "$d/top.qcow2"
# A QED whose header names a file the XML does not: never opened.
qemu-img create -q -f raw "$d/secret.raw" 1M
qemu-img create -q -f qed -b "$d/secret.raw" -F raw "$d/sneaky.qed"
mkfifo "$d/fifo.qed"

cat > "$d/domain.xml" <<EOF
<domain type='qemu' id='3'>
  <name>mover</name>
  <uuid>$uuid</uuid>
  <description>qed &amp; friends: 'inplace.qed' stays in text</description>
  <memory unit='KiB'>65536</memory>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qed' cache='none'/>
      <source file='$d/inplace.qed'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qed'/>
      <source file='$d/renamed.qed' index='2'/>
      <target dev='vdb' bus='virtio'/>
      <serial>renamed.qed</serial>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qed'/>
      <source file='$d/still.qed'/>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qed'/>
      <source file='$d/gone.qed'/>
      <target dev='vdd' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='$d/raw.img'/>
      <target dev='vde' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qed'/>
      <source file='$d/top.qed'/>
      <backingStore type='file'>
        <format type='qed'/>
        <source file='$d/base.qed'/>
        <backingStore/>
      </backingStore>
      <target dev='vdf' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qed'/>
      <source file='$d/sneaky.qed'/>
      <target dev='vdg' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qed'/>
      <source file='$d/fifo.qed'/>
      <target dev='vdh' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/dev/zero'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='qed'/>
      <source pool='default' volume='vol.qed'/>
      <target dev='vdi' bus='virtio'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='nbd' name='x'><host name='127.0.0.1' port='10809'/></source>
      <target dev='vdj' bus='virtio'/>
    </disk>
  </devices>
</domain>
EOF

# What the filter must produce: exactly these changes.
perl -e '
    my ($d) = @ARGV;
    local $/;
    open my $fh, "<", "$d/domain.xml" or die;
    my $s = <$fh>;
    sub sub1 {
        my ($old, $new) = @_;
        my $n = () = $s =~ /\Q$old\E/g;
        die "$old: $n matches\n" unless $n == 1;
        $s =~ s/\Q$old\E/$new/;
    }
    sub1("<driver name=\x27qemu\x27 type=\x27qed\x27 cache=",
         "<driver name=\x27qemu\x27 type=\x27qcow2\x27 cache=");
    sub1("type=\x27qed\x27/>\n      <source file=\x27$d/renamed.qed\x27",
         "type=\x27qcow2\x27/>\n      <source file=\x27$d/renamed.qcow2\x27");
    sub1("type=\x27qed\x27/>\n      <source file=\x27$d/top.qed\x27",
         "type=\x27qcow2\x27/>\n      <source file=\x27$d/top.qcow2\x27");
    sub1("<format type=\x27qed\x27/>\n        <source file=\x27$d/base.qed\x27",
         "<format type=\x27qcow2\x27/>\n        <source file=\x27$d/base.qcow2\x27");
    print $s;
' "$d" > "$d/expected.xml"
# The oracle really differs from the input.
! cmp -s "$d/domain.xml" "$d/expected.xml"
test "$(diff "$d/domain.xml" "$d/expected.xml" | grep -c '^>')" = 7

canon () { xmllint --c14n "$1"; }

# 1. --hook-filter, and the hook script for migrate and restore.
timeout 20 virt-qed-migrate --hook-filter < "$d/domain.xml" > "$d/out.xml" \
    2> "$d/err"
cat "$d/err"
diff -u <(canon "$d/expected.xml") <(canon "$d/out.xml")
grep -q "renamed.qed was converted: now $d/renamed.qcow2" "$d/err"

vqm_hook_script "$abs_top_builddir" "$d" > "$d/hook"
chmod +x "$d/hook"
for op in migrate restore; do
    env -i PATH=/usr/bin:/bin LC_ALL=C "$d/hook" mover $op begin - \
        < "$d/domain.xml" > "$d/out-$op.xml"
    diff -u <(canon "$d/expected.xml") <(canon "$d/out-$op.xml")
done

# 2. Nothing to change: empty output (libvirt keeps its XML).
virt-qed-migrate --hook-filter < "$d/expected.xml" > "$d/out2.xml"
test ! -s "$d/out2.xml"
"$d/hook" mover migrate begin - < "$d/expected.xml" > "$d/out2.xml"
test ! -s "$d/out2.xml"
# Other operations never print XML.
for op in "prepare begin" "start begin" "release end"; do
    VQM_HOOK_CONF=/nonexistent "$d/hook" mover $op - \
        < "$d/domain.xml" > "$d/out3.xml" 2>/dev/null
    test ! -s "$d/out3.xml"
done

# 3. Only what the XML names is opened; backing names in headers are
# not followed (sneaky.qed names secret.raw).
if strace -V >/dev/null 2>&1; then
    # (LeakSanitizer cannot run under ptrace)
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    strace -f -e trace=open,openat,openat2,stat,lstat,newfstatat,readlink \
        -o "$d/trace" virt-qed-migrate --hook-filter \
        < "$d/domain.xml" > /dev/null
    grep -q "sneaky.qed" "$d/trace"
    if grep "secret.raw" "$d/trace"; then
        fail "the hook opened a backing file the XML does not name"
    fi
    # base.qcow2 is named only as the .qcow2 sibling of base.qed.
    ! grep "vol.qed" "$d/trace"
fi

# 4. Hostile input.
# An external entity: refused, the file is never read.
cat > "$d/xxe.xml" <<EOF
<?xml version="1.0"?>
<!DOCTYPE domain [<!ENTITY x SYSTEM "file://$d/secret.raw">]>
<domain type='qemu'><name>&x;</name>
  <devices><disk type='file'><driver type='qed'/>
  <source file='$d/inplace.qed'/></disk></devices></domain>
EOF
must_fail 1 virt-qed-migrate --hook-filter < "$d/xxe.xml" 2> "$d/err" \
    > "$d/out4.xml"
grep -q "document type declaration: refused" "$d/err"
test ! -s "$d/out4.xml"
# As the hook: the XML is left alone, the migration is not aborted.
"$d/hook" mover migrate begin - < "$d/xxe.xml" > "$d/out4.xml" 2> "$d/err"
grep -q "left unchanged" "$d/err"
test ! -s "$d/out4.xml"
# Billion laughs: refused before any expansion.
{
    echo '<!DOCTYPE domain ['
    echo '<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">'
    for i in $(seq 1 20); do
        echo "<!ENTITY a$i \"&a$((i - 1));&a$((i - 1));&a$((i - 1));&a$((i - 1));\">"
    done | sed 's/&a0;/\&a;/g'
    echo ']><domain><name>&a20;</name></domain>'
} > "$d/laughs.xml"
must_fail 1 timeout 10 virt-qed-migrate --hook-filter < "$d/laughs.xml"
# Not a domain, truncated, binary, oversized.
echo '<network><name>x</name></network>' > "$d/net.xml"
must_fail 1 virt-qed-migrate --hook-filter < "$d/net.xml"
head -c 300 "$d/domain.xml" > "$d/trunc.xml"
must_fail 1 virt-qed-migrate --hook-filter < "$d/trunc.xml"
head -c 4096 /dev/urandom > "$d/random.xml"
must_fail 1 virt-qed-migrate --hook-filter < "$d/random.xml"
{ echo '<domain><name>big</name><description>'
  head -c 17M /dev/zero | tr '\0' 'x'
  echo '</description></domain>'; } > "$d/huge.xml"
must_fail 1 virt-qed-migrate --hook-filter < "$d/huge.xml" 2> "$d/err"
grep -q "larger than 16 MiB" "$d/err"
# Relative paths and paths with odd characters are never guessed at.
sed "s|$d/inplace.qed|inplace.qed|" "$d/domain.xml" > "$d/rel.xml"
(cd "$d" && virt-qed-migrate --hook-filter < rel.xml > out5.xml)
! grep -q "source file=\"inplace.qcow2\"" "$d/out5.xml"
grep -q "source file=\"inplace.qed\"" "$d/out5.xml"
