#!/usr/bin/env bash
# Every option of 'virt-qed-migrate --help' is documented in the man page
# source, and the man page documents no option the program lacks.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

d=$(vqm_tmpdir)
pod="$abs_top_srcdir/docs/virt-qed-migrate.pod"

virt-qed-migrate --help > "$d/help"
# Long options: --name, as written in the option list of --help.
grep -oE -- '(^|[ ,])--[a-z][a-z0-9-]*' "$d/help" | sed 's/^[ ,]//' |
    sort -u > "$d/help-long"
# Short options: "  -c, --connect".
sed -n 's/^  \(-[A-Za-z]\),.*/\1/p' "$d/help" | sort -u > "$d/help-short"
# In the POD: every =item B<-x> / B<--name>.
sed -n 's/^=item B<\(--[a-z][a-z0-9-]*\)>.*/\1/p' "$pod" | sort -u \
    > "$d/pod-long"
sed -n 's/^=item B<\(-[A-Za-z]\)>.*/\1/p' "$pod" | sort -u > "$d/pod-short"

cat "$d/help-long" "$d/help-short"
# The oracle is not empty: the program has dozens of options.
test "$(wc -l < "$d/help-long")" -ge 30
test "$(wc -l < "$d/help-short")" -ge 8

diff -u "$d/help-long" "$d/pod-long" ||
    fail "long options differ between --help (-) and $pod (+)"
diff -u "$d/help-short" "$d/pod-short" ||
    fail "short options differ between --help (-) and $pod (+)"

# Every option --help shows is accepted by the parser (no stale help).
while read -r opt; do
    rc=0
    virt-qed-migrate "$opt" > /dev/null 2> "$d/err" < /dev/null || rc=$?
    if grep -q "unrecognized option\|invalid option" "$d/err"; then
        fail "--help shows $opt but the program does not accept it"
    fi
done < "$d/help-long"

# The exit statuses of --help are the ones the man page documents.
for s in 0 1 2 3; do
    grep -q "^=item B<$s>" "$pod"
done
# The environment variables the program reads are documented.
for v in VQM_DEBUG LIBVIRT_DEFAULT_URI; do
    grep -q "^=item B<$v>" "$pod"
done
