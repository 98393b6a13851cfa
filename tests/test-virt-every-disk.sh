#!/usr/bin/env bash
# Every disk of every definition, against a private libvirtd: a generated
# corpus (tests/domxml-corpus.sh: every device kind x source form x
# driver x backing chain x flags, companions that cannot hold QED, shared
# images in different roles) is defined, planned (--dry-run: nothing
# changes) and migrated with --domain, --domain (several), --pool and
# --all.  Then:
# - every image to convert is qcow2 under its new name with the guest
#   data of a pristine copy (qemu-img compare), every other one is byte
#   for byte what it was;
# - every disk layer whose definition matched its file before still does
#   (the format the XML names is the file's, the file exists);
# - outside the disks' sources and formats nothing in any definition
#   changed (canonical XML with those normalised), and definitions that
#   name an image that must stay are unchanged;
# - exit status and summary counts agree with the corpus and each other,
#   and so does the report;
# - a sample of migrated domains starts under TCG (QEMU opens the disks);
# - the hook filter given the old definitions agrees with the job.
source "$abs_top_builddir/tests/functions.sh"
set -e
set -x

requires xmllint --version
requires python3 --version
requires qemu-system-x86_64 --version
source "$abs_top_srcdir/tests/libvirtd.sh"
source "$abs_top_srcdir/tests/virt-lib.sh"

virt_setup
export SETS="one dom pool all" VNCDIR="$LVROOT/run"
for s in $SETS; do
    mkdir -p "$LVROOT/free/$s"
    chown "$LVUID:$LVUID" "$LVROOT/free" "$LVROOT/free/$s"
    export "DIR_$s=$LVROOT/free/$s" "POOL_$s=c$s"
    export "POOLDIR_$s=$(lv_pool "c$s")"
done
# The set migrated with --pool keeps every file in its pool.
DIR_pool=$POOLDIR_pool
c=$d/corpus
bash "$abs_top_srcdir/tests/domxml-corpus.sh" "$c"
ndom=$(wc -l < "$c/domains")
echo "corpus: $ndom domains, $(wc -l < "$c/images") images"
[ "$ndom" -ge 220 ]

# Images (as the daemon's uid): 1 MiB each, a pattern per layer.
awk '{
    cmd = "qemu-img create -q -f " $3
    if (NF >= 6) cmd = cmd " -b " $5 " -F " $6
    print cmd " " $2 " 1M"
    pat = (NR % 200) + 16
    off = NF >= 6 ? "64k" : "0"
    printf "qemu-io -f %s -c \"write -P %d %s 64k\" %s >/dev/null\n", $3, pat, off, $2
}' "$c/images" > "$d/mkimages.sh"
lv_run bash -e < "$d/mkimages.sh"
for s in $SETS; do lv_virsh pool-refresh "c$s" >/dev/null; done
mkdir "$d/pristine"
cp -a --sparse=always "$LVROOT/free" "$LVROOT/pools" "$d/pristine/"

# Define everything in one virsh session.
while read -r name _; do
    echo "define $c/xml/$name.xml"
done < "$c/domains" > "$d/define.cmds"
lv_virsh < "$d/define.cmds" > "$d/define.out"
[ "$(lv_virsh list --all --name | grep -c .)" = "$ndom" ]

# dump DIR: every inactive definition (secrets included) into DIR, from
# one virsh command line ("echo" prints no newline: the marker starts the
# definition's first line).
dump ()
{
    local cmds=
    mkdir -p "$1"
    while read -r name _; do
        cmds+="echo @@@$name@@@; dumpxml --inactive --security-info $name; "
    done < "$c/domains"
    lv_virsh "$cmds" | awk -v dir="$1" '
        /^@@@[^@]*@@@/ {
            i = index(substr($0, 4), "@@@")
            f = dir "/" substr($0, 4, i - 1) ".xml"
            $0 = substr($0, i + 6)
        }
        f != "" { print > f }'
}
dump "$d/before"

cat > "$d/check.py" <<'EOF'
import os, subprocess, sys
import xml.etree.ElementTree as ET

corpus, before, after, mode = sys.argv[1:5]
pools = {}
for s in os.environ["SETS"].split():
    pools[os.environ["POOL_" + s]] = os.environ["POOLDIR_" + s]
pristine = os.environ["PRISTINE"]
lvroot = os.environ["LVROOT"]
errors = []

def err(msg):
    errors.append(msg)

def layers(disk):
    """(type, path or pool/volume, format) of the top and backing layers."""
    out = []
    n, fmt_tag = disk, "driver"
    while n is not None:
        src = n.find("source")
        t = n.get("type", "file")
        if src is None:
            break
        if t == "volume":
            where = ("volume", src.get("pool"), src.get("volume"))
        else:
            where = (t, src.get("file") or src.get("dev") or src.get("dir"))
        f = n.find(fmt_tag)
        out.append((where, f.get("type") if f is not None else None))
        n, fmt_tag = n.find("backingStore"), "format"
    return out

def disks(text):
    root = ET.fromstring(text)
    return [((d.find("target").get("dev") if d.find("target") is not None
              else None), d.get("device", "disk"), layers(d))
            for d in root.findall("devices/disk")]

def local(where):
    if where[0] == "volume":
        return os.path.join(pools[where[1]], where[2]) if where[1] in pools else None
    if where[0] in ("file", "block"):
        return where[1]
    return None

def magic(path, base=None):
    if base and path.startswith(lvroot + "/"):
        path = base + path[len(lvroot):]
    try:
        with open(path, "rb") as f:
            h = f.read(4)
    except OSError:
        return "missing"
    return {b"QFI\xfb": "qcow2", b"QED\0": "qed"}.get(h, "raw")

def normalised(text):
    root = ET.fromstring(text)
    for d in root.iter("disk"):
        for n in [d] + list(d.iter("backingStore")):
            for tag, attrs in (("source", ("file", "dev", "volume")),
                               ("driver", ("type",)), ("format", ("type",))):
                e = n.find(tag)
                if e is not None:
                    for a in attrs:
                        e.attrib.pop(a, None)
    return ET.canonicalize(ET.tostring(root, encoding="unicode"),
                           strip_text=True)

doms = [l.split() for l in open(os.path.join(corpus, "domains"))]
for name, dset, rewritten, _ in doms:
    b = open(os.path.join(before, name + ".xml")).read()
    a = open(os.path.join(after, name + ".xml")).read()
    if mode == "job":
        if normalised(a) != normalised(b):
            err("%s: the definition changed outside its disks" % name)
        if rewritten == "no" and a != b:
            err("%s: names an image that must stay, but changed" % name)
        for (tb, devb, lb), (ta, deva, la) in zip(disks(b), disks(a)):
            if len(lb) != len(la):
                err("%s %s: backing chain length changed" % (name, tb))
            for (wb, fb), (wa, fa) in zip(lb, la):
                pb, pa = local(wb), local(wa)
                if not pb:
                    if (wa, fa) != (wb, fb):
                        err("%s %s: a %s layer changed" % (name, tb, wb[0]))
                    continue
                was = magic(pb, pristine)
                if (fb or "raw") == was and (fa or "raw") != magic(pa):
                    err("%s %s: the XML says %s, '%s' is %s" %
                        (name, tb, fa, pa, magic(pa)))
                if rewritten == "yes" and devb != "lun" and (
                        fa == "qed" or pa.endswith(".qed")):
                    err("%s %s: still QED: %s %s" % (name, tb, pa, fa))
    else:
        # The hook filter given the old definition, after the job.
        p = subprocess.run(["virt-qed-migrate", "--hook-filter"], input=b,
                           capture_output=True, text=True)
        if p.returncode != 0:
            err("%s: hook filter exited %d: %s" % (name, p.returncode,
                                                   p.stderr))
            continue
        f = p.stdout or b
        for (tf, devf, lf), (ta, _, la), (_, _, lb) in zip(disks(f), disks(a),
                                                           disks(b)):
            for (wf, ff), (wa, fa), (wb, fb) in zip(lf, la, lb):
                # The hook cannot resolve volumes (that needs libvirt).
                want = (wb, fb) if wa[0] == "volume" else (wa, fa)
                if (wf, ff) != want:
                    err("%s %s: hook filter gives %s %s, the job %s %s" %
                        (name, tf, wf, ff, want[0], want[1]))
for e in errors:
    print("check:", e)
print("check %s: %d domains, %d problem(s)" % (mode, len(doms), len(errors)))
sys.exit(1 if errors else 0)
EOF
export PRISTINE="$d/pristine" LVROOT

# expect CONV_SETS SKIP_SETS: "CONV SKIP DOMS" for a run that converts
# the images of CONV_SETS (and rewrites their domains) and skips the
# images that must stay of SKIP_SETS (quoted lists).
expect ()
{
    awk -v c=" $1 " -v s=" $2 " '
        index(c, " " $1 " ") && $4 == "convert" { nc++ }
        index(s, " " $1 " ") && $4 == "keep" { ns++ }
        END { printf "%d %d ", nc, ns }' "$c/images"
    awk -v c=" $1 " 'index(c, " " $2 " ") && $3 == "yes" { n++ }
        END { print n + 0 }' "$c/domains"
}

# summary OUT STATUS CONV SKIP DOMS: the printed summary says so and
# agrees with the exit status.
summary ()
{
    local out=$1 st=$2 conv=$3 skip=$4 doms=$5 line
    line=$(grep -E '^(Summary|Dry run):' "$out")
    echo "$line" | grep -q "^\(Summary\|Dry run\): $conv image(s)\( would be\)\? converted, $skip skipped" ||
        fail "summary '$line', want $conv converted, $skip skipped"
    echo "$line" | grep -q "; $doms domain definition(s)\( would be\)\? rewritten" ||
        fail "summary '$line', want $doms domain(s) rewritten"
    if [ "$st" = 3 ]; then
        echo "$line" | grep -qE '[1-9][0-9]* skipped' ||
            fail "exit 3 but nothing counted as skipped: $line"
        echo "$line" | grep -qE '; [0-9]+ disk\(s\)[^;]*, [1-9][0-9]* skipped' ||
            fail "exit 3 but no disk counted as skipped: $line"
    else
        ! echo "$line" | grep -qE '[1-9][0-9]* (skipped|failed)' ||
            fail "exit $st but something counted as skipped: $line"
    fi
}

# report FILE: valid, and its counts are the printed summary's.
report ()
{
    local f=$1 out=$2 conv
    validate_report "$f"
    conv=$(xmllint --xpath 'string(/report/summary/@images-converted)' "$f")
    grep -qE "^(Summary|Dry run): $conv image" "$out" ||
        fail "report says $conv images converted"
    for a in domains-redefined disks-rewritten disks-skipped images-skipped; do
        [ -n "$(xmllint --xpath "string(/report/summary/@$a)" "$f")" ]
    done
}

# 1. Dry run over everything: the plan, nothing changes.
sums_all () { find "$LVROOT/free" "$LVROOT/pools" -type f | sort | xargs md5sum; }
sums_all > "$d/sums.before"
run_vqm "$d/dry" 3 --dry-run --all --state-dir "$state" --report "$d/dry.xml"
summary "$d/dry" 3 $(expect "one dom pool all" "one dom pool all")
report "$d/dry.xml" "$d/dry"
grep -q "disk hdc (cdrom, type file, format qed)" "$d/dry"
grep -q "disk fda (floppy, type volume, format qed)" "$d/dry"
grep -q "lun: left alone (cannot hold QED)" "$d/dry"
grep -q "network disk: left alone (cannot hold QED)" "$d/dry"
grep -q "nvme disk: left alone (cannot hold QED)" "$d/dry"
grep -q "vhostuser disk: left alone (cannot hold QED)" "$d/dry"
grep -q "dir floppy: left alone (cannot hold QED)" "$d/dry"
grep -q "domain 'lun-lun' disk sda (block lun) names it and cannot be rewritten" "$d/dry"
if grep -q "volume -/" "$d/dry"; then fail "an image outside pools is labelled as a volume"; fi
if grep -q "(no domain uses it)" "$d/dry"; then fail "an image used by a domain is listed as unused"; fi
sums_all | diff -u "$d/sums.before" -
dump "$d/after-dry"
for f in "$d"/before/*.xml; do
    cmp -s "$f" "$d/after-dry/${f##*/}" || fail "dry run changed ${f##*/}"
done
[ ! -e "$state" ]

# 2. One domain with a disk of each kind: exit 0.
run_vqm "$d/one" 0 --domain multi --state-dir "$state" --report "$d/one.xml"
summary "$d/one" 0 $(expect one one)
grep -q "everything in scope is qcow2" "$d/one"
report "$d/one.xml" "$d/one"

# 3. --domain with every domain of the set 'dom'.
args=()
while read -r name set _; do
    [ "$set" != dom ] || args+=(--domain "$name")
done < "$c/domains"
run_vqm "$d/dom" 3 "${args[@]}" --state-dir "$state"
summary "$d/dom" 3 $(expect dom dom)

# 4. --pool.
run_vqm "$d/pool" 3 --pool cpool --state-dir "$state" --report "$d/pool.xml"
summary "$d/pool" 3 $(expect pool pool)
report "$d/pool.xml" "$d/pool"

# 5. --all: the rest; every image that must stay is skipped again.
run_vqm "$d/all" 3 --all --state-dir "$state" --report "$d/all.xml"
summary "$d/all" 3 $(expect all "one dom pool all")
report "$d/all.xml" "$d/all"
grep -q 'exit-status="3"' "$d/all.xml"
# A rerun has nothing left to convert.
run_vqm "$d/again" 3 --all --state-dir "$state"
grep -q "^Summary: 0 image(s) converted, [1-9]" "$d/again"
dump "$d/after"

# Files: converted ones are qcow2 under the new name with the same guest
# data; every other file is byte for byte the same.
while read -r set path fmt exp _; do
    old=$d/pristine${path#"$LVROOT"}
    if [ "$exp" = convert ]; then
        new=${path%.qed}.qcow2
        [ ! -e "$path" ] || fail "$path still exists"
        [ "$(file_format "$new")" = qcow2 ] || fail "$new is not qcow2"
        qemu-img compare -q -f qed -F qcow2 "$old" "$new" ||
            fail "$new: guest data differ from $old"
    else
        cmp -s "$old" "$path" || fail "$path changed"
    fi
done < "$c/images"

# Definitions: consistent with their files, nothing else changed.
python3 "$d/check.py" "$c" "$d/before" "$d/after" job

# A sample starts under TCG: QEMU opens the converted disks.
started=0
for name in $(awk '$4 == "yes" { print $1 }' "$c/domains"); do
    lv_virsh start "$name" >/dev/null || fail "$name does not start"
    lv_virsh destroy "$name" >/dev/null
    started=$((started + 1))
done
echo "started $started migrated domains"
[ "$started" -ge 8 ]

# The hook filter, given the old definitions, agrees with the job.
python3 "$d/check.py" "$c" "$d/before" "$d/after" filter
