#!/usr/bin/env bash
# The bash completion offers the program's options (from --help), the
# values of the options that take a fixed set, and files for --file.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

bc=/usr/share/bash-completion/bash_completion
requires test -r "$bc"

d=$(vqm_tmpdir)
touch "$d/disk-one.qed" "$d/disk-two.qed"

# complete WORDS...: print the candidates for the last word.
complete_words ()
{
    bash --norc --noprofile -c '
        source "$1"
        source "$2"
        shift 2
        COMP_WORDS=("$@")
        COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        _virt_qed_migrate virt-qed-migrate "${COMP_WORDS[COMP_CWORD]}" \
            "${COMP_WORDS[COMP_CWORD - 1]}"
        printf "%s\n" "${COMPREPLY[@]}"
    ' sh "$bc" "$abs_top_srcdir/contrib/virt-qed-migrate.bash" "$@"
}

complete_words virt-qed-migrate --po > "$d/out"
cat "$d/out"
grep -qx -- '--pool' "$d/out"
complete_words virt-qed-migrate --hook-f > "$d/out"
grep -qx -- '--hook-filter' "$d/out"
# Every long option of --help is offered for "--".
complete_words virt-qed-migrate -- > "$d/out"
virt-qed-migrate --help | grep -oE -- '(^|[ ,])--[a-z][a-z0-9-]*' |
    sed 's/^[ ,]//' | sort -u > "$d/help"
test "$(wc -l < "$d/help")" -ge 30
while read -r o; do
    grep -q -- "^$o=\{0,1\}\$" "$d/out" || fail "completion lacks $o"
done < "$d/help"
complete_words virt-qed-migrate --compress z > "$d/out"
sort "$d/out" | tr '\n' ' ' | grep -qx 'zlib zstd '
complete_words virt-qed-migrate --file "$d/disk-" > "$d/out"
grep -qx "$d/disk-one.qed" "$d/out"
grep -qx "$d/disk-two.qed" "$d/out"
