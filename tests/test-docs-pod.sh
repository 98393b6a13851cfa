#!/usr/bin/env bash
# The man page sources are clean POD, have the sections a man page
# needs, and (when pod2man was found) the built pages exist.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires perl -MPod::Checker -e 1
requires command -v podchecker

d=$(vqm_tmpdir)
for pod in "$abs_top_srcdir"/docs/virt-qed-migrate.pod \
           "$abs_top_srcdir"/docs/virt-qed-migrate-hook.pod; do
    podchecker -warnings -warnings "$pod" > "$d/out" 2>&1 || {
        cat "$d/out"
        fail "podchecker: $pod"
    }
    cat "$d/out"
    if grep -q "WARNING\|ERROR" "$d/out"; then
        fail "podchecker warnings in $pod"
    fi
    for s in NAME SYNOPSIS DESCRIPTION "EXIT STATUS" ENVIRONMENT FILES \
             "SEE ALSO"; do
        grep -q "^=head1 $s\$" "$pod" || fail "$pod: no $s section"
    done
done
grep -q "^=head1 OPTIONS" "$abs_top_srcdir"/docs/virt-qed-migrate.pod
grep -q "^=head1 EXAMPLES" "$abs_top_srcdir"/docs/virt-qed-migrate.pod

# The hook page documents every key the sample config file sets.
sed -n 's/^#\{0,1\}\([a-z_]*\)=.*/\1/p' "$abs_top_srcdir/hooks/hook.conf" |
    sort -u > "$d/keys"
test "$(wc -l < "$d/keys")" -ge 5
while read -r k; do
    grep -q "^=item B<$k=>" "$abs_top_srcdir"/docs/virt-qed-migrate-hook.pod ||
        fail "hook.conf key $k is not documented"
done < "$d/keys"

if grep -q '^POD2MAN = pod2man' "$abs_top_builddir/Makefile"; then
    for m in docs/virt-qed-migrate.1 docs/virt-qed-migrate-hook.8; do
        make -C "$abs_top_builddir" "$m" >/dev/null
        # A release tarball carries the page pre-built in the source tree.
        f="$abs_top_builddir/$m"
        [ -s "$f" ] || f="$abs_top_srcdir/$m"
        test -s "$f"
        grep -q '^\.SH "OPTIONS"\|^\.SH OPTIONS\|^\.SH "DESCRIPTION"' "$f"
    done
fi

# The README describes the quick-start demo honestly: every
# virt-qed-migrate command the demo runs is named there verbatim, and the
# demo runs the README's headline command (with --progress at most).
sed -n 's/^run \(virt-qed-migrate [^|]*\) || rc=\$?$/\1/p' \
    "$abs_top_srcdir/tests/demo.sh" > "$d/demo-cmds"
cat "$d/demo-cmds"
test "$(wc -l < "$d/demo-cmds")" -ge 2
while read -r c; do
    grep -qF "\`$c\`" "$abs_top_srcdir/README.md" ||
        fail "README.md does not name the demo's command '$c'"
done < "$d/demo-cmds"
grep -qx "virt-qed-migrate --pool default\( --progress\)\{0,1\}" \
    "$d/demo-cmds"
grep -qx "    virt-qed-migrate --pool default" "$abs_top_srcdir/README.md"
