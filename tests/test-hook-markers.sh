#!/usr/bin/env bash
# The hook under hostile input.  With a migration marker in the state
# directory the start of that domain is refused whatever its XML holds:
# the marker check uses the name libvirt passes in argv and a UUID found
# without parsing, and a start whose XML cannot be read (does not parse,
# too large, too many disks) is refused while any marker exists.  The
# command printed in a deny message is safe to copy and paste: a name
# full of shell metacharacters, run through bash, reaches the program as
# one argument and runs nothing else.  Names are printed without raw
# control bytes.  --hook-filter has the hook's size and time limits.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires qemu-img --version

d=$(vqm_tmpdir)
uuid=6b1d3a0e-5c4f-4d57-9a43-2f8e0c1d7b11
other=0f0e0d0c-0b0a-4908-8706-050403020100
qemu-img create -q -f qed "$d/a.qed" 16M
qemu-img create -q -f qcow2 "$d/c.qcow2" 16M

# mkxml NAME UUID FILE:FORMAT... (NAME is XML-escaped by the caller)
mkxml ()
{
    local name=$1 id=$2 f i=0
    shift 2
    echo "<domain type='qemu'>"
    echo "  <name>$name</name>"
    [ -z "$id" ] || echo "  <uuid>$id</uuid>"
    echo "  <devices>"
    for f in "$@"; do
        echo "    <disk type='file' device='disk'><driver name='qemu' type='${f##*:}'/><source file='${f%:*}'/><target dev='vd$i' bus='virtio'/></disk>"
        i=$((i + 1))
    done
    echo "  </devices>"
    echo "</domain>"
}

vqm_hook_script "$abs_top_builddir" "$d" > "$d/hook"
chmod +x "$d/hook"
export VQM_HOOK_CONF="$d/hook.conf"
state="$d/state"
mkdir -p "$state/active"
printf '%s\n' policy=warn "state_dir=$state" > "$d/hook.conf"

# hook XML-FILE DOMAIN OP SUBOP: like libvirtd (XML on stdin).
hook ()
{
    local xml=$1 rc=0
    shift
    env -i PATH=/usr/bin:/bin LC_ALL=C HOME=/ \
        "$d/hook" "$@" - < "$xml" > "$d/out" 2> "$d/err" || rc=$?
    cat "$d/err" >&2
    return $rc
}

mkxml web1 $uuid "$d/c.qcow2:qcow2" > "$d/good.xml"
echo "<domain><name>web1</name><uuid>$uuid</uuid><devices><disk" > "$d/broken.xml"
# 4097 disks: more than the hook reads.
{
    echo "<domain type='qemu'><name>web1</name><uuid>$uuid</uuid><devices>"
    for i in $(seq 0 4096); do
        echo "<disk type='file' device='disk'><source file='$d/c.qcow2'/><target dev='vd$i'/></disk>"
    done
    echo "</devices></domain>"
} > "$d/many.xml"
# More than 16 MiB.
{
    echo "<domain type='qemu'><name>web1</name><uuid>$uuid</uuid><description>"
    head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' 'x'
    echo "</description><devices/></domain>"
} > "$d/huge.xml"
# No UUID in it at all (the name in argv still names the domain).
mkxml web1 "" "$d/c.qcow2:qcow2" > "$d/nouuid.xml"

# Without any marker, a start whose XML is unreadable goes on (warn).
for x in good broken many huge; do
    hook "$d/$x.xml" web1 prepare begin
done

# A marker for this UUID, written as the tool writes it, by a run that
# is still there (this shell: its pid and start time).
live="$$ $(sed 's/.*) //' /proc/$$/stat | cut -d' ' -f20)"
printf '%s\ncommand=virt-qed-migrate --pool p\nname=web1' "$live" > "$state/active/$uuid"
for x in good broken many huge nouuid; do
    must_fail 1 hook "$d/$x.xml" web1 prepare begin
    grep -q "cannot start" "$d/err"
done
grep -q "domain 'web1' cannot start: virt-qed-migrate is converting its disks ($state/active/$uuid exists)" "$d/err"
# The same marker of a run that is gone (the start time differs): the
# message says so and names the command that finishes the migration.
printf '%s 1\ncommand=virt-qed-migrate --pool p\nname=web1' "$$" > "$state/active/$uuid"
must_fail 1 hook "$d/good.xml" web1 prepare begin
grep -q "domain 'web1' cannot start: an interrupted virt-qed-migrate left its disks half migrated ($state/active/$uuid exists, its run is gone); finish the migration with: virt-qed-migrate --pool p" "$d/err"
printf '%s\ncommand=virt-qed-migrate --pool p\nname=web1' "$live" > "$state/active/$uuid"
# The UUID is found by the scan also in upper case.
sed "s|$uuid|${uuid^^}|" "$d/good.xml" > "$d/upper.xml"
must_fail 1 hook "$d/upper.xml" other-name prepare begin
# Another domain starts.
mkxml web2 $other "$d/c.qcow2:qcow2" > "$d/web2.xml"
hook "$d/web2.xml" web2 prepare begin
# ... but not when its XML cannot be read while a marker exists.
sed "s|$uuid|$other|; s|web1|web2|" "$d/broken.xml" > "$d/web2-broken.xml"
must_fail 1 hook "$d/web2-broken.xml" web2 prepare begin
grep -q "migrations in progress" "$d/err"
sed "s|$uuid|$other|g; s|>web1<|>web2<|" "$d/many.xml" > "$d/web2-many.xml"
must_fail 1 hook "$d/web2-many.xml" web2 prepare begin
# The other operations are never refused.
hook "$d/broken.xml" web1 release end
rm "$state/active/$uuid"
hook "$d/good.xml" web1 prepare begin

# A marker found by name (the domain's XML has another UUID).
printf '%s\nname=web1' "$live" > "$state/active/$other"
must_fail 1 hook "$d/good.xml" web1 prepare begin
rm "$state/active/$other"
# A state directory whose active/ is a link cannot be trusted: refused
# when the XML cannot be read.
rmdir "$state/active"
mkdir "$d/elsewhere"
ln -s "$d/elsewhere" "$state/active"
must_fail 1 hook "$d/broken.xml" web1 prepare begin
rm "$state/active"
mkdir "$state/active"

# ---- the deny message's command is safe to copy and paste ----
printf '%s\n' policy=deny "state_dir=$state" > "$d/hook.conf"
evil="web1'; touch PWNED; echo '"
mkxml "web1&apos;; touch PWNED; echo &apos;" $uuid "$d/a.qed:qed" > "$d/evil.xml"
must_fail 1 hook "$d/evil.xml" "$evil" prepare begin
cmd=$(sed -n 's/.*convert it with: //p' "$d/err")
[ -n "$cmd" ]
bash -n -c "$cmd"
mkdir "$d/sandbox" "$d/bin"
cat > "$d/bin/virt-qed-migrate" <<'EOS'
#!/bin/sh
for a in "$@"; do printf '<%s>\n' "$a"; done > args
EOS
chmod +x "$d/bin/virt-qed-migrate"
(cd "$d/sandbox" && PATH="$d/bin:$PATH" bash -c "$cmd")
[ ! -e "$d/sandbox/PWNED" ] || fail "the printed command ran the injected one"
[ "$(sed -n 4p "$d/sandbox/args")" = "<$evil>" ]
# A name with a newline: the message stays one line, and the command
# still gives the exact name.
mkxml "web
1" $uuid "$d/a.qed:qed" > "$d/nl.xml"
must_fail 1 hook "$d/nl.xml" "web
1" prepare begin
[ "$(grep -c . "$d/err")" = 1 ] || fail "a newline in the name split the message"
cmd=$(sed -n 's/.*convert it with: //p' "$d/err")
rm -f "$d/sandbox/args"
(cd "$d/sandbox" && PATH="$d/bin:$PATH" bash -c "$cmd")
[ "$(sed -n 4,5p "$d/sandbox/args")" = "<web
1>" ]
# Escape and BEL in the name libvirt passes: printed escaped.
printf '%s\n' policy=warn "state_dir=$state" > "$d/hook.conf"
bad=$'web\e[2J\a1'
printf '%s\nname=%s' "$live" "$bad" > "$state/active/$other"
must_fail 1 hook "$d/broken.xml" "$bad" prepare begin
grep -q 'web\\x1b\[2J\\x071' "$d/err"
if LC_ALL=C grep -q $'[\x01-\x09\x0b-\x1f\x7f]' "$d/err"; then
    fail "raw control bytes in the hook's message"
fi
rm "$state/active/$other"

# ---- --hook-filter: the hook's limits ----
printf '%s\n' policy=warn "state_dir=$state" timeout=1 > "$d/hook.conf"
must_fail 1 virt-qed-migrate --hook-filter < "$d/huge.xml" 2> "$d/err"
grep -q "larger than 16 MiB" "$d/err"
start=$(date +%s)
must_fail 1 virt-qed-migrate --hook-filter < <(sleep 20) 2> "$d/err"
[ $(( $(date +%s) - start )) -lt 10 ] || fail "--hook-filter waited past its timeout"
grep -q "timed out" "$d/err"
