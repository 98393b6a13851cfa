# virt-qed-migrate tests: fixtures and checks for the libvirt tests.
# Source after tests/functions.sh and tests/libvirtd.sh.

# Disk elements for lv_domain_xml.
file_disk ()   # PATH FORMAT DEV
{
    echo "<disk type='file' device='disk'><driver name='qemu' type='$2'/><source file='$1'/><target dev='$3' bus='virtio'/></disk>"
}
vol_disk ()    # POOL VOLUME FORMAT DEV
{
    echo "<disk type='volume' device='disk'><driver name='qemu' type='$3'/><source pool='$1' volume='$2'/><target dev='$4' bus='virtio'/></disk>"
}
cdrom_disk ()  # DEV
{
    echo "<disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='$1' bus='ide'/><readonly/></disk>"
}

# define_domain NAME DISK...: define a TCG domain (64 MiB, no OS).
define_domain ()
{
    local name=$1 f
    shift
    f=$(mktemp)
    lv_domain_xml "$name" "$@" > "$f"
    lv_virsh define "$f" >/dev/null
    rm -f "$f"
}

# qed_image PATH SIZE [BACKING BACKING_FMT]: a QED image owned by the
# daemon's uid with a recognisable pattern in it.
qed_image ()
{
    local path=$1 size=$2
    if [ -n "${3:-}" ]; then
        lv_run qemu-img create -q -f qed -b "$3" -F "$4" "$path" "$size"
    else
        lv_run qemu-img create -q -f qed "$path" "$size"
    fi
    lv_run qemu-io -f qed -c "write -P 0x$(printf %02x $(( RANDOM % 250 + 1 ))) 64k 128k" \
        -c "write -z 1M 64k" "$path" >/dev/null
}

# dumpxml DOMAIN: the inactive definition, secrets included.
dumpxml ()
{
    lv_virsh dumpxml --inactive --security-info "$1"
}

# disk_attr DOMAIN TARGET XPATH-SUFFIX: e.g. disk_attr d1 vda driver/@type
disk_attr ()
{
    dumpxml "$1" | xmllint --xpath "string(/domain/devices/disk[target/@dev='$2']/$3)" -
}

# file_format PATH: the format qemu-img sees.
file_format ()
{
    qemu-img info -U --output=json "$1" | sed -n 's/^ *"format": "\(.*\)",*$/\1/p' | head -1
}

# sums FILES...: checksums, for "nothing changed" checks.
sums ()
{
    md5sum "$@"
}

# validate_report FILE
validate_report ()
{
    xmllint --noout --relaxng "$abs_top_srcdir/xml/report.rng" "$1"
}

# run_vqm OUT STATUS ARGS...: run virt-qed-migrate ARGS with stdout in
# OUT, show it, and require exit status STATUS.
run_vqm ()
{
    local out=$1 want=$2 rc=0
    shift 2
    virt-qed-migrate "$@" > "$out" || rc=$?
    cat "$out"
    [ "$rc" = "$want" ] || fail "virt-qed-migrate $* exited $rc, expected $want"
}

# virt_setup: what every test against the private libvirtd needs (the
# test is skipped, with the reason, when a tool is missing), a scratch
# directory $d removed at exit, $state for --state-dir, and the daemon.
virt_setup ()
{
    requires qemu-img --version
    requires qemu-io --version
    d=$(vqm_tmpdir)
    cleanup_fn rm -rf "$d"
    state="$d/state"
    start_private_libvirtd
}

# journal_unfinished JOURNAL: print what the journal holds unfinished, one
# line each: steps begun and never ended (done, failed or settled; a step
# redone to the end later counts as ended; "run" records apart), and the
# domains whose last migrate record is open ("migrate UUID").
journal_unfinished ()
{
    awk -F'\t' '
        $1 == "B" { step[$2] = $3; arg[$2] = $4; order[++n] = $2
                    if ($3 == "migrate") last[$4] = $2 }
        $1 == "D" { done[$2] = 1; if (step[$2] != "") redone[step[$2] "\t" arg[$2]] = $2 }
        $1 == "F" || $1 == "S" { done[$2] = 1 }
        END {
            for (i = 1; i <= n; i++) {
                s = order[i]
                if (done[s] || step[s] == "run" || step[s] == "migrate") continue
                if (redone[step[s] "\t" arg[s]] + 0 > s + 0) continue
                print step[s] " " arg[s]
            }
            for (u in last) if (!done[last[u]]) print "migrate " u
        }' "$1"
}
