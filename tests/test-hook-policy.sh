#!/usr/bin/env bash
# The qemu hook's policies, fed domain XML the way libvirtd does: through
# the installed script (DOMAIN OPERATION SUBOP EXTRA, XML on stdin) and
# through the helper the script runs (virt-qed-migrate-hook
# --hook=OP:SUBOP) and through the full program's --hook.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version

d=$(vqm_tmpdir)
uuid=6b1d3a0e-5c4f-4d57-9a43-2f8e0c1d7b11

qemu-img create -q -f qed "$d/a.qed" 16M
qemu-img create -q -f qed -b "$d/a.qed" -F qed "$d/b.qed"
qemu-img create -q -f qcow2 "$d/c.qcow2" 16M
qemu-img create -q -f raw "$d/r.img" 1M

# domain XML: NAME UUID DISK-FILE:FORMAT...
mkxml ()
{
    local name=$1 id=$2 i=0 f
    shift 2
    echo "<domain type='qemu' id='7'>"
    echo "  <name>$name</name>"
    echo "  <uuid>$id</uuid>"
    echo "  <devices>"
    for f in "$@"; do
        echo "    <disk type='file' device='disk'>"
        echo "      <driver name='qemu' type='${f##*:}'/>"
        echo "      <source file='${f%:*}'/>"
        echo "      <target dev='vd$(printf "\\x$(printf %x $((97 + i)))")' bus='virtio'/>"
        echo "    </disk>"
        i=$((i + 1))
    done
    echo "  </devices>"
    echo "</domain>"
}

mkxml guest $uuid "$d/b.qed:qed" "$d/c.qcow2:qcow2" > "$d/qed.xml"
mkxml clean $uuid "$d/c.qcow2:qcow2" "$d/r.img:raw" > "$d/clean.xml"
# The XML says qcow2, the header says QED: still a QED disk to the policy.
mkxml liar $uuid "$d/a.qed:qcow2" > "$d/liar.xml"

# The hook script, as installed, but pointing at this build and config.
vqm_hook_script "$abs_top_builddir" "$d" > "$d/hook"
chmod +x "$d/hook"
grep -q "exec \"$abs_top_builddir/virt-qed-migrate-hook\" --hook=" "$d/hook"
export VQM_HOOK_CONF="$d/hook.conf"
state="$d/state"
mkdir -p "$state"
conf ()
{
    printf '%s\n' "$@" "state_dir=$state" "log=$d/worker.log" \
        > "$d/hook.conf"
}

# Run the script like libvirtd: its stdout and stderr separately.
hook ()
{
    local xml=$1 rc=0
    shift
    env -i PATH=/usr/bin:/bin LC_ALL=C HOME=/ \
        "$d/hook" "$@" - < "$xml" > "$d/out" 2> "$d/err" || rc=$?
    cat "$d/err" >&2
    return $rc
}

# ---- warn (also the default without a config file) ----
rm -f "$d/hook.conf"
hook "$d/qed.xml" guest prepare begin
grep -q "warning: domain 'guest' starts with 1 QED disk image" "$d/err"
test ! -s "$d/out"
conf policy=warn
hook "$d/qed.xml" guest prepare begin
grep -q "vda $d/b.qed" "$d/err"
grep -q "virt-qed-migrate -c 'qemu:///system' --domain 'guest'" "$d/err"
hook "$d/liar.xml" liar prepare begin
grep -q "vda $d/a.qed" "$d/err"
# No QED: silent.
hook "$d/clean.xml" clean prepare begin
test ! -s "$d/err"

# ---- deny ----
conf policy=deny 'uri=qemu+ssh://host/system'
must_fail 1 hook "$d/qed.xml" guest prepare begin
test "$(wc -l < "$d/err")" = 1
grep -q "error: domain 'guest' was not started: it uses QED disk image (vda $d/b.qed), refused by the policy in $d/hook.conf; convert it with: virt-qed-migrate -c 'qemu+ssh://host/system' --domain 'guest'" "$d/err"
must_fail 1 virt-qed-migrate-hook --hook=prepare:begin < "$d/liar.xml"
# The full program's --hook is the same hook.
must_fail 1 virt-qed-migrate --hook=prepare:begin < "$d/liar.xml" 2> "$d/err2"
grep -q "error: domain 'liar' was not started" "$d/err2"
# --hook=OP alone means the sub-operation libvirt uses for OP.
must_fail 1 virt-qed-migrate-hook --hook=prepare < "$d/qed.xml"
virt-qed-migrate-hook --hook=prepare:end < "$d/qed.xml"
# The helper's usage errors.
must_fail 2 virt-qed-migrate-hook < "$d/qed.xml"
must_fail 2 virt-qed-migrate-hook --hook=prepare:begin extra < "$d/qed.xml"
must_fail 2 virt-qed-migrate-hook --pool p < "$d/qed.xml"
virt-qed-migrate-hook --help | grep -q "virt-qed-migrate-hook --hook=OP"
hook "$d/clean.xml" clean prepare begin
test ! -s "$d/err"
# A pool volume cannot be resolved without libvirt: the format its XML
# names decides.
sed "s|<disk type='file' device='disk'>|<disk type='volume' device='disk'>|; s|<source file='$d/c.qcow2'/>|<source pool='default' volume='vol.qed'/>|; s|type='qcow2'/>|type='qed'/>|" \
    "$d/clean.xml" > "$d/vol.xml"
grep -q "volume='vol.qed'" "$d/vol.xml"
must_fail 1 hook "$d/vol.xml" clean prepare begin
grep -q "QED disk image (vda default/vol.qed)" "$d/err"
# Other operations are never refused.
for op in "start begin" "started begin" "stopped end" "release end" \
          "reconnect begin" "attach begin"; do
    hook "$d/qed.xml" guest $op
done

# ---- a migration in progress refuses the start whatever the policy ----
mkdir -p "$state/active"
: > "$state/active/$uuid"
for p in warn deny convert-on-stop; do
    conf policy=$p
    must_fail 1 hook "$d/clean.xml" clean prepare begin
    grep -q "domain 'clean' cannot start: virt-qed-migrate is converting its disks ($state/active/$uuid exists)" "$d/err"
done
# --state-dir on the command line wins over the file.
virt-qed-migrate-hook --state-dir "$d/elsewhere" --hook=prepare:begin \
    < "$d/clean.xml"
rm "$state/active/$uuid"
hook "$d/clean.xml" clean prepare begin
# A UUID that is a path is not a UUID.
sed "s|<uuid>.*</uuid>|<uuid>../../$uuid</uuid>|" "$d/clean.xml" > "$d/evil.xml"
: > "$state/$uuid"
hook "$d/evil.xml" clean prepare begin
rm "$state/$uuid"

# ---- convert-on-stop ----
# No libvirt here (the daemon test does the real conversion): the worker
# must be detached at once, log, and give up on a domain it cannot find.
conf policy=convert-on-stop uri=test:///default
hook "$d/qed.xml" guest prepare begin
grep -q "converted when the domain stops" "$d/err"
start=$(date +%s%N)
hook "$d/qed.xml" guest release end
end=$(date +%s%N)
grep -q "conversion scheduled" "$d/err"
# The hook returned at once although the worker runs for seconds.
test $(( (end - start) / 1000000 )) -lt 1000
for i in $(seq 1 100); do
    grep -q "not converted" "$d/worker.log" 2>/dev/null && break
    sleep 0.2
done
cat "$d/worker.log"
grep -q "domain 'guest' ($uuid) stopped: converting" "$d/worker.log"
grep -q "cannot check its state on test:///default.*not converted" "$d/worker.log"
# The worker was in its own session, not a child of the hook.
grep -q "\[[0-9]*\]" "$d/worker.log"
# The worker is the program VQM_PROGRAM names ($(bindir)/virt-qed-migrate
# when unset): one that cannot run is logged.
rm -f "$d/worker.log"
VQM_PROGRAM="$d/no-such-program" virt-qed-migrate-hook --hook=release:end \
    < "$d/qed.xml"
for i in $(seq 1 50); do
    grep -q "not converted" "$d/worker.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "domain 'guest' ($uuid) stopped: not converted: cannot run $d/no-such-program" "$d/worker.log"
# --hook-worker is a mode of its own.
must_fail 2 virt-qed-migrate --hook-worker="$uuid" --domain guest
must_fail 2 virt-qed-migrate --hook-worker="$uuid" --hook=prepare:begin
# stopped end and release of a domain without QED schedule nothing.
rm -f "$d/worker.log"
hook "$d/qed.xml" guest stopped end
hook "$d/clean.xml" clean release end
sleep 0.5
test ! -e "$d/worker.log"
# warn and deny schedule nothing either.
conf policy=deny
hook "$d/qed.xml" guest release end
sleep 0.5
test ! -e "$d/worker.log"

# ---- a broken config refuses QED starts only ----
conf policy=convert-on-start
must_fail 1 hook "$d/qed.xml" guest prepare begin
grep -q "unknown policy 'convert-on-start'" "$d/err"
hook "$d/clean.xml" clean prepare begin
conf policy=warn timeout=0
must_fail 1 hook "$d/qed.xml" guest prepare begin
grep -q "timeout must be 1 to 3600 seconds" "$d/err"

# ---- the time limit ----
# XML that arrives too slowly: deny refuses, warn allows; both in time.
conf policy=deny timeout=1
slow () { echo "<domain><name>slow</name>"; sleep 4; echo "</domain>"; }
start=$(date +%s)
rc=0
virt-qed-migrate-hook --hook=prepare:begin < <(slow) 2> "$d/err" || rc=$?
test $(( $(date +%s) - start )) -lt 3
test "$rc" = 1
grep -q "timed out.*start refused" "$d/err"
conf policy=warn timeout=1
virt-qed-migrate-hook --hook=prepare:begin < <(slow) 2> "$d/err"
grep -q "timed out.*nothing done" "$d/err"
virt-qed-migrate-hook --hook=migrate:begin < <(slow) > "$d/out" 2> "$d/err"
test ! -s "$d/out"
# Wait for the writers above to finish before the scratch dir goes.
sleep 3.5

# ---- bad input ----
conf policy=deny
echo 'not xml' > "$d/bad.xml"
must_fail 1 hook "$d/bad.xml" guest prepare begin
grep -q "does not parse" "$d/err"
: > "$d/empty.xml"
must_fail 1 virt-qed-migrate-hook --hook=prepare:begin < "$d/empty.xml"
conf policy=warn
hook "$d/bad.xml" guest prepare begin
grep -q "warning: domain XML on stdin does not parse" "$d/err"
# Unknown operations are allowed without reading anything.
virt-qed-migrate-hook --hook=frobnicate:begin < "$d/bad.xml"
