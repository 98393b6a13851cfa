#!/usr/bin/env bash
# virt-qed-migrate benchmark: a whole host at once.
#
# A private libvirt daemon (tests/libvirtd.sh) with one dir pool 'bench'
# holding BENCH_IMAGES small QED images, used by BENCH_DOMAINS domains
# (the first BENCH_IMAGES - BENCH_DOMAINS domains have two disks).  Times,
# in the same run and from the same starting state each round:
#
#   vqm dry run     virt-qed-migrate --pool bench --dry-run
#   vqm             virt-qed-migrate --pool bench (in place, journal)
#   shell           the same job done the usual way: qemu-img convert of
#                   every QED volume, virsh dumpxml + sed + virsh define
#                   of every domain, virsh pool-refresh
#
# and prints the min and median wall time of each, the ratio to the shell
# way, and the per-image overhead of our run beyond the conversions
# themselves: libvirt calls (RPC messages), journal records, fsyncs and
# the other frequent syscalls, counted with strace in one extra run.
#
#   bench/host.sh BUILDDIR
#
# BUILDDIR is a configured and built tree (it provides the program and
# tests/functions.sh).  Needs root (the daemon runs as an unprivileged
# uid), qemu-img, qemu-io, virsh, libvirtd, strace.
#
# Environment: BENCH_DOMAINS (default 1000), BENCH_IMAGES (1100),
# BENCH_REPEAT (3 rounds), BENCH_SHELL (1: also time the shell way).
set -euo pipefail

builddir=$(cd "${1:?usage: bench/host.sh BUILDDIR}" && pwd)
abs_top_builddir=$builddir
abs_top_srcdir=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=/dev/null
source "$builddir/tests/functions.sh"
# shellcheck source=/dev/null
source "$abs_top_srcdir/tests/libvirtd.sh"
set +x

ndom=${BENCH_DOMAINS:-1000}
nimg=${BENCH_IMAGES:-1100}
repeat=${BENCH_REPEAT:-3}
do_shell=${BENCH_SHELL:-1}
vqm=$builddir/virt-qed-migrate
[ "$nimg" -ge "$ndom" ] || fail "BENCH_IMAGES must be at least BENCH_DOMAINS"
for tool in qemu-img qemu-io virsh strace; do
    command -v "$tool" >/dev/null || fail "$tool not found"
done

start_private_libvirtd
pool=$(lv_pool bench)
work=$(vqm_tmpdir)
chmod 755 "$work"
state=$work/state

# One template image, copied: every image holds a little data.
lv_run qemu-img create -q -f qed "$pool/template.qed" 64M
lv_run qemu-io -f qed -c 'write -P 0x5a 0 64k' -c 'write -P 0xa5 1M 64k' \
    "$pool/template.qed" >/dev/null
for (( i = 1; i <= nimg; i++ )); do
    cp --reflink=auto -p "$pool/template.qed" "$pool/img$i.qed"
done
rm -f "$pool/template.qed"
chown "$LVUID:$LVUID" "$pool"/*.qed
mkdir "$work/xml"
two=$(( nimg - ndom ))
img=1
for (( i = 1; i <= ndom; i++ )); do
    disks=("<disk type='volume' device='disk'><driver name='qemu' type='qed'/><source pool='bench' volume='img$img.qed'/><target dev='vda' bus='virtio'/></disk>")
    img=$(( img + 1 ))
    if (( i <= two )); then
        disks+=("<disk type='file' device='disk'><driver name='qemu' type='qed'/><source file='$pool/img$img.qed'/><target dev='vdb' bus='virtio'/></disk>")
        img=$(( img + 1 ))
    fi
    # A fixed UUID, so that every round redefines the same domains.
    lv_domain_xml "dom$i" "${disks[@]}" |
        sed "s|<name>dom$i</name>|&<uuid>$(cat /proc/sys/kernel/random/uuid)</uuid>|" \
        > "$work/xml/dom$i.xml"
done
mkdir "$work/pristine"
cp -a --reflink=auto "$pool"/*.qed "$work/pristine/"

# reset: the pool and the definitions as they were before any run.
reset ()
{
    rm -f "$pool"/*
    cp -a --reflink=auto "$work/pristine/"*.qed "$pool/"
    rm -rf "$state"
    for (( i = 1; i <= ndom; i++ )); do
        echo "define $work/xml/dom$i.xml"
    done | lv_virsh >/dev/null
    lv_virsh pool-refresh bench >/dev/null
    sync
}

# The shell way, as an admin would script it.
cat > "$work/shell.sh" <<'EOF'
#!/bin/bash
set -e
uri=$1 pool=$2 tmp=$3
for path in $(virsh -q -c "$uri" vol-list "$pool" | awk '$2 ~ /\.qed$/ { print $2 }'); do
    qemu-img convert -f qed -O qcow2 "$path" "${path%.qed}.qcow2"
    rm -f "$path"
done
virsh -q -c "$uri" pool-refresh "$pool" >/dev/null
for dom in $(virsh -q -c "$uri" list --all --name); do
    virsh -q -c "$uri" dumpxml --inactive --security-info "$dom" |
        sed -e "s|type='qed'|type='qcow2'|" -e "s|\.qed'|.qcow2'|" > "$tmp/$dom.xml"
    virsh -q -c "$uri" define "$tmp/$dom.xml" >/dev/null
done
EOF
chmod +x "$work/shell.sh"
mkdir "$work/shtmp"

# check: every image is qcow2 and every definition names one.
check ()
{
    local n
    n=$(find "$pool" -name '*.qcow2' | wc -l)
    [ "$n" -eq "$nimg" ] || fail "$1: $n of $nimg images are qcow2"
    if lv_virsh dumpxml --inactive dom1 | grep -q "type='qed'"; then
        fail "$1: dom1 still names a QED disk"
    fi
}

# time_one TAG CMD...: wall time appended to $work/t.TAG
time_one ()
{
    local tag=$1 t0 t1
    shift
    t0=$(date +%s%N)
    "$@" > "$work/out.$tag" 2>&1 || { cat "$work/out.$tag" >&2; fail "$tag failed"; }
    t1=$(date +%s%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", (b - a) / 1e9 }' \
        >> "$work/t.$tag"
}

echo "virt-qed-migrate host benchmark: $(nproc) CPUs, $ndom domains, $nimg QED images (64 MiB, 128 KiB of data each), $repeat rounds"
for (( r = 0; r < repeat; r++ )); do
    reset
    time_one dry "$vqm" --state-dir "$state" --pool bench --dry-run
    time_one vqm "$vqm" --state-dir "$state" --pool bench
    check "virt-qed-migrate"
    if [ "$do_shell" = 1 ]; then
        reset
        time_one shell "$work/shell.sh" "$VQM_TEST_LIBVIRT_URI" bench "$work/shtmp"
        check "the shell way"
    fi
done

stats ()  # FILE: "min median"
{
    sort -n "$1" | awk '{ a[NR] = $1 } END {
        m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        printf "%.3f %.3f\n", a[1], m }'
}
printf '%-28s %8s %8s %10s\n' what "min s" "median s" "per 100 dom"
for tag in dry vqm shell; do
    [ -f "$work/t.$tag" ] || continue
    read -r mn md < <(stats "$work/t.$tag")
    printf '%-28s %8s %8s %10.3f\n' "$tag" "$mn" "$md" \
        "$(awk -v m="$md" -v n="$ndom" 'BEGIN { print m * 100 / n }')"
done
if [ -f "$work/t.shell" ]; then
    read -r vmin _ < <(stats "$work/t.vqm")
    read -r smin _ < <(stats "$work/t.shell")
    awk -v a="$vmin" -v b="$smin" 'BEGIN { printf "vqm / shell (min/min): %.3f\n", a / b }'
fi

# Where the time goes: one more run under strace, counting every
# syscall: the ones that make the per-image overhead (fsyncs of the
# journal and the images, libvirt RPC messages, renames) and the most
# frequent ones (the scans of /proc for writers show as newfstatat and
# getdents64).
reset
strace -f -c -o "$work/strace" "$vqm" --state-dir "$state" --pool bench > /dev/null
records=$(cat "$state"/history/* "$state"/journal 2>/dev/null | wc -l || true)
echo "per-image overhead of one run (strace -c; $nimg images):"
awk -v n="$nimg" -v rec="$records" '
    $NF ~ /^(fsync|fdatasync|sendmsg|write|renameat2|rename|openat|newfstatat|getdents64|pread64|pwrite64|fallocate|clone3)$/ {
        printf "  %-10s %7d calls  %6.2f per image\n", $NF, $4, $4 / n }
    $NF == "total" { printf "  %-10s %7d calls  %6.2f per image\n", "all", $4, $4 / n }
    END { printf "  journal    %7d records %6.2f per image\n", rec, rec / n }' \
    "$work/strace"
