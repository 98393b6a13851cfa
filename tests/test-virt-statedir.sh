#!/usr/bin/env bash
# The state directory and the report against planted links, and the
# history of saved definitions.  A link planted for any entry of the
# state directory (journal, lock, active/, active/UUID, domains/,
# domains/UUID, history/) is refused with a message naming it, and the
# files and directories it points to keep their content, mode and owner;
# so is a state directory owned by another uid or writable by others.
# --report replaces a link at its name and ignores one at the old
# predictable temporary name.  Two runs that change the same domain keep
# both saved definitions, each with its SHA-256 in the journal;
# --rollback --to RUN restores the older one, --rollback the newest, and
# a tampered, linked or foreign saved definition is refused.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires xmllint --version
requires sha256sum --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup
p=$(lv_pool p)
qed_image "$p/a.qed" 16M
qed_image "$p/b.qed" 16M
define_domain dom "$(file_disk "$p/a.qed" qed vda)"
define_domain other "$(cdrom_disk hdc)"
uuid=$(lv_virsh domuuid dom | head -1)
dumpxml dom > "$d/before1.xml"

# The victims a planted link points to.
v="$d/victim"
mkdir -m 0755 "$v" "$v/dir"
echo "precious" > "$v/file"
chmod 0644 "$v/file"
victims ()
{
    sha256sum "$v/file"
    stat -c '%n %a %u %g %s' "$v/file" "$v/dir"
    ls -A "$v/dir"
}
victims > "$d/victims.before"

# planted ENTRY TARGET: a state directory whose ENTRY is a link to
# TARGET; a run must refuse, name the entry and change nothing.
n=0
planted ()
{
    local entry=$1 target=$2 s
    n=$((n + 1))
    s="$d/planted$n"
    mkdir -m 0700 "$s" "$s/active" "$s/domains" "$s/history"
    rm -rf "${s:?}/$entry"
    ln -s "$target" "$s/$entry"
    must_fail 1 virt-qed-migrate --state-dir "$s" --domain dom --copy \
        > "$d/out" 2> "$d/err"
    cat "$d/out" "$d/err"
    grep -q "'$s/$entry' is .*refused" "$d/err"
    victims | diff -u "$d/victims.before" -
    [ "$(disk_attr dom vda driver/@type)" = qed ]
    [ ! -e "$p/a.qcow2" ]
}
planted journal "$v/file"
planted lock "$v/file"
planted active "$v/dir"
planted "active/$uuid" "$v/file"
planted domains "$v/dir"
planted "domains/$uuid" "$v/dir"
planted history "$v/dir"
# A dangling link is not created through either.
rm -f "$v/new"
planted journal "$v/new"
[ ! -e "$v/new" ]

# Owned by somebody else, or writable by others: refused.
mkdir -m 0700 "$d/theirs"
chown nobody "$d/theirs"
must_fail 1 virt-qed-migrate --state-dir "$d/theirs" --domain dom \
    2> "$d/err"
cat "$d/err"
grep -q "'$d/theirs' is owned by uid $(id -u nobody), not by uid 0: refused" "$d/err"
mkdir "$d/open"
chmod 0777 "$d/open"
must_fail 1 virt-qed-migrate --state-dir "$d/open" --domain dom 2> "$d/err"
cat "$d/err"
grep -q "'$d/open' is writable by group or others (mode 0777): refused" "$d/err"
# The dry run says the same, and creates nothing.
must_fail 1 virt-qed-migrate --state-dir "$d/open" --domain dom --dry-run \
    2> "$d/err"
grep -q "refused" "$d/err"
virt-qed-migrate -q --state-dir "$d/new/deep/state" --domain dom --dry-run
[ ! -e "$d/new" ]
[ ! -e "$p/a.qcow2" ]

# ---- run 1: a report beside planted links ----
ln -s "$v/file" "$d/r.xml"
ln -s "$v/file" "$d/r.xml.tmp"
run_vqm "$d/out1" 0 --state-dir "$d/new/deep/state" --domain dom --copy \
    --report "$d/r.xml"
state="$d/new/deep/state"
victims | diff -u "$d/victims.before" -
[ -f "$d/r.xml" ] && [ ! -L "$d/r.xml" ]
[ -L "$d/r.xml.tmp" ]
validate_report "$d/r.xml"
[ -z "$(find "$d" -maxdepth 1 -name '.report-*')" ]
# Parents the tool created are 0700 too.
[ "$(stat -c %a "$d/new" "$d/new/deep" "$state" | sort -u)" = 700 ]
[ "$(disk_attr dom vda driver/@type)" = qcow2 ]

# ---- run 2 changes the same domain: a second QED disk ----
lv_virsh attach-disk dom "$p/b.qed" vdb --driver qemu --subdriver qed \
    --config >/dev/null
dumpxml dom > "$d/before2.xml"
run_vqm "$d/out2" 0 --state-dir "$state" --domain dom --copy
[ "$(disk_attr dom vdb driver/@type)" = qcow2 ]
[ "$(ls "$state/domains/$uuid" | wc -l)" = 2 ]
# The journal records each file and its SHA-256 (checked here with
# sha256sum); the run ids sort by time.
grep -h "	save	$uuid	" "$state"/history/* | cut -f5,6 | sort > "$d/saves"
cat "$d/saves"
[ "$(wc -l < "$d/saves")" = 2 ]
run1=$(sed -n 1p "$d/saves" | cut -f1)
run2=$(sed -n 2p "$d/saves" | cut -f1)
while IFS=$'\t' read -r run sum; do
    [ "$(sha256sum < "$state/domains/$uuid/$run.xml" | cut -d' ' -f1)" = "$sum" ]
    [ "$(stat -c %a "$state/domains/$uuid/$run.xml")" = 600 ]
done < "$d/saves"
diff -u "$d/before1.xml" "$state/domains/$uuid/$run1.xml"
diff -u "$d/before2.xml" "$state/domains/$uuid/$run2.xml"

# ---- --rollback --to the older run, then to the newest ----
virt-qed-migrate --state-dir "$state" --rollback dom --to "$run1" \
    > "$d/rb1"
cat "$d/rb1"
grep -q "restored from '$state/domains/$uuid/$run1.xml'" "$d/rb1"
dumpxml dom | diff -u "$d/before1.xml" -
virt-qed-migrate --state-dir "$state" --rollback dom > "$d/rb2"
grep -q "restored from '$state/domains/$uuid/$run2.xml'" "$d/rb2"
dumpxml dom | diff -u "$d/before2.xml" -

# A run nobody saved: refused.
must_fail 1 virt-qed-migrate --state-dir "$state" --rollback dom \
    --to 20000101T000000.000000Z-1 2> "$d/err"
grep -q "was saved by run '20000101T000000.000000Z-1'" "$d/err"

# A tampered saved definition: refused, nothing defined.
cp -p "$state/domains/$uuid/$run1.xml" "$d/run1.keep"
sed -i 's|</domain>|<!-- changed --></domain>|' "$state/domains/$uuid/$run1.xml"
must_fail 1 virt-qed-migrate --state-dir "$state" --rollback dom \
    --to "$run1" 2> "$d/err"
cat "$d/err"
grep -q "saved definition '$state/domains/$uuid/$run1.xml' does not match the SHA-256 the journal recorded" "$d/err"
dumpxml dom | diff -u "$d/before2.xml" -
# The same bytes behind a link: refused too.
cp "$d/run1.keep" "$v/dir/run1.xml"
victims > "$d/victims.before"
rm "$state/domains/$uuid/$run1.xml"
ln -s "$v/dir/run1.xml" "$state/domains/$uuid/$run1.xml"
must_fail 1 virt-qed-migrate --state-dir "$state" --rollback dom \
    --to "$run1" 2> "$d/err"
grep -q "refused" "$d/err"
dumpxml dom | diff -u "$d/before2.xml" -
victims | diff -u "$d/victims.before" -

# Another domain's definition, even with a digest recorded: refused.
dumpxml other > "$state/domains/$uuid/foreign.xml"
chmod 600 "$state/domains/$uuid/foreign.xml"
printf 'B\t1\tsave\t%s\tforeign\t%s\nD\t1\n' "$uuid" \
    "$(sha256sum < "$state/domains/$uuid/foreign.xml" | cut -d' ' -f1)" \
    > "$state/history/journal-foreign"
must_fail 1 virt-qed-migrate --state-dir "$state" --rollback dom \
    --to foreign 2> "$d/err"
cat "$d/err"
grep -q "the saved definition '$state/domains/$uuid/foreign.xml' is of domain 'other'" "$d/err"
dumpxml dom | diff -u "$d/before2.xml" -
[ "$(disk_attr other hdc @device)" = cdrom ]
