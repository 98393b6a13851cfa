#!/usr/bin/env bash
# Replay the fuzz targets of the text parsers -- domain XML
# (src/virt/virt-domxml.c), journal (src/virt/virt-journal.c) and the
# libvirt hook (src/hook) -- built with the normal compiler
# (and with the sanitizers in a --enable-sanitizers build) over their
# seeds and deterministic mutations: truncations, each line deleted and
# doubled, and a few hostile documents (entity expansion, deep chains,
# too many disks, huge records).  The targets check their own invariants
# (see tests/fuzz/fuzz-*.c) and abort on a violation; no crash, no hang.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires timeout --version

d=$(vqm_tmpdir)
# The targets' scratch directories go here too (removed even after a crash).
export TMPDIR="$d"
"$abs_top_srcdir/tests/fuzz/make-seeds-xml.sh" "$d/seeds"

# mutate KIND: variants of every seed of KIND in $d/mut-KIND.
mutate ()
{
    local kind=$1 s size i=0 k
    mkdir -p "$d/mut-$kind"
    for s in "$d/seeds/$kind"/*; do
        size=$(stat -c %s "$s")
        for k in $(seq 1 15); do
            i=$((i + 1))
            head -c $(( size * k / 16 )) "$s" > "$d/mut-$kind/$i"
        done
        i=$((i + 1))
        awk -v out="$d/mut-$kind/$i" '
            { line[NR] = $0 }
            END {
                for (i = 1; i <= NR; i++) {
                    del = out "-del" i; dup = out "-dup" i
                    for (j = 1; j <= NR; j++) {
                        if (j != i) print line[j] > del
                        print line[j] > dup
                        if (j == i) print line[j] > dup
                    }
                    close(del); close(dup)
                }
            }' "$s"
    done
}
mutate domxml
mutate journal
mutate hook

# Hostile documents (made by awk: no trace of long loops).
h="$d/hostile"
mkdir -p "$h"
uuid=2a7c1e44-0b8d-4f3e-9d6a-5e1f7c3b9a20
awk -v h="$h" -v uuid="$uuid" 'BEGIN {
    # Entity expansion: 10^9 "lol"s if expanded.
    f = h "/laughs.xml"
    print "<?xml version=\"1.0\"?>\n<!DOCTYPE domain [" > f
    print "  <!ENTITY l0 \"lollollollollollollollollollol\">" > f
    for (i = 1; i <= 9; i++) {
        v = ""
        for (k = 0; k < 10; k++) v = v "&l" (i - 1) ";"
        print "  <!ENTITY l" i " \"" v "\">" > f
    }
    print "]>\n<domain><name>&l9;</name><devices><disk type=\"file\">" > f
    print "<source file=\"&l9;\"/><target dev=\"&l9;\"/></disk></devices></domain>" > f
    close(f)
    # A backing chain 120 layers deep.
    f = h "/deep.xml"
    print "<domain><name>deep</name><devices><disk type=\"file\">" > f
    print "<driver type=\"qed\"/><source file=\"/vqmfuzz/still.qed\"/>" > f
    for (i = 1; i <= 120; i++)
        print "<backingStore type=\"file\"><format type=\"qed\"/><source file=\"/vqmfuzz/l" i ".qed\"/>" > f
    for (i = 1; i <= 120; i++) print "</backingStore>" > f
    print "<target dev=\"vda\"/></disk></devices></domain>" > f
    close(f)
    # More disks than the hook reads (4096).
    f = h "/many.xml"
    g = h "/many-deny"
    print "policy=deny\n%%" > g
    print "<domain><name>many</name><devices>" > f
    print "<domain><name>many</name><devices>" > g
    for (i = 1; i <= 4100; i++) {
        l = "<disk type=\"file\"><driver type=\"qed\"/><source file=\"/vqmfuzz/d" i ".qed\"/><target dev=\"vd" i "\"/></disk>"
        print l > f
        print l > g
    }
    print "</devices></domain>" > f
    print "</devices></domain>" > g
    close(f)
    close(g)
    # A long journal, and one huge record.
    f = h "/journal-long"
    for (i = 1; i <= 2000; i++)
        printf "B\t%d\tmigrate\t%s\tvm%d\t\n", i, uuid, i > f
    close(f)
    f = h "/journal-hugeline"
    v = "%"
    while (length(v) < 300000) v = v v
    printf "B\t1\trename\t/a\t%s\n", v > f
    close(f)
}'
printf '<domain>\0<name>nul</name></domain>' > "$h/nul.xml"
printf '\xef\xbb\xbf<domain><name>\xff\xfe</name></domain>' > "$h/bad-utf8.xml"

# Each replay must see every file it was given.
replay ()
{
    local bin=$1 n out
    shift
    n=$(find "$@" -type f | wc -l)
    test "$n" -gt 0
    out=$(timeout 300 "$abs_top_builddir/tests/fuzz/$bin" "$@")
    echo "$out"
    test "$out" = "replayed $n inputs"
}
replay fuzz-domxml-replay "$d/seeds/domxml" "$d/mut-domxml" \
    "$h/laughs.xml" "$h/deep.xml" "$h/many.xml" "$h/nul.xml" \
    "$h/bad-utf8.xml"
replay fuzz-journal-replay "$d/seeds/journal" "$d/mut-journal" \
    "$h/journal-long" "$h/journal-hugeline"
replay fuzz-hook-replay "$d/seeds/hook" "$d/mut-hook" "$d/seeds/domxml" \
    "$h/laughs.xml" "$h/deep.xml" "$h/many-deny" "$h/nul.xml" \
    "$h/bad-utf8.xml" 2>"$d/hook.stderr"
# The hook's messages went to stderr: the refusals of a domain being
# converted and of QED disks by the policy are among them.
grep -q 'cannot start: virt-qed-migrate is converting its disks' \
    "$d/hook.stderr"
grep -q 'was not started: it uses QED disk' "$d/hook.stderr"
