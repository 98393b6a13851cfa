#!/usr/bin/env bash
# The one-way dependency rule of docs/architecture.md, checked on the
# sources: each library under src/ includes headers only of the modules
# its row of the module table ("| `src/X` | depends on | ... |") names,
# and libvirt or libxml2 headers only where the row names them.  One
# include style: a module's own headers and src/common's by bare name,
# another module's as "module/header.h", never "../module/header.h".
# The rule is read from the document, so the two cannot disagree.
source "$abs_top_builddir/tests/functions.sh"
set -e

requires perl -v

doc=$abs_top_srcdir/docs/architecture.md
cd "$abs_top_srcdir"
perl -e '
use strict; use warnings;
my ($doc) = @ARGV;
my (%deps, %ext);
open my $fh, "<", $doc or die "$doc: $!";
while (<$fh>) {
    next unless /^\|\s*`src\/([a-z0-9]+)`\s*\|\s*([^|]*?)\s*\|/;
    my ($mod, $list) = ($1, $2);
    $deps{$mod} = {};
    $ext{$mod} = {};
    for my $d (split /\s*,\s*/, $list) {
        if ($d eq "all") { $deps{$mod}{"*"} = 1; $ext{$mod}{"*"} = 1 }
        elsif ($d =~ /^(libvirt|libxml2)$/) { $ext{$mod}{$d} = 1 }
        elsif ($d =~ /^[a-z0-9]+$/ && $d ne "libc") { $deps{$mod}{$d} = 1 }
    }
}
close $fh;
die "no module table in $doc\n" unless %deps;
# A module may use everything below it: close the relation.
my $grew = 1;
while ($grew) {
    $grew = 0;
    for my $m (keys %deps) {
        for my $d (keys %{$deps{$m}}) {
            next unless $deps{$d};
            for my $dd (keys %{$deps{$d}}) {
                $grew = $deps{$m}{$dd} = 1 unless $deps{$m}{$dd};
            }
            for my $e (keys %{$ext{$d}}) {
                $grew = $ext{$m}{$e} = 1 unless $ext{$m}{$e};
            }
        }
    }
}

# Which module owns each header.
my %owner;
for my $h (glob "src/*/*.h") {
    my ($m, $f) = $h =~ m{^src/([^/]+)/(.+)$};
    push @{$owner{$f}}, $m;
}
my @bad;
for my $src (sort glob "src/*/*.[ch]") {
    my ($mod) = $src =~ m{^src/([^/]+)/};
    if (!$deps{$mod}) {
        push @bad, "$src: module src/$mod is not in the table of $doc";
        next;
    }
    open my $in, "<", $src or die "$src: $!";
    while (my $l = <$in>) {
        if ($l =~ /^\s*#\s*include\s+"([^"]+)"/) {
            my $inc = $1;
            my $to;
            next if $inc eq "config.h" || $inc =~ m{^hooks/};
            if ($inc =~ m{^\.\./}) {
                push @bad, "$src:$.: \"$inc\": name another module as \"module/header.h\"";
                next;
            } elsif ($inc =~ m{^([a-z0-9]+)/([^/]+)$}) {
                $to = $1;
                push @bad, "$src:$.: \"$inc\": no such header" unless -f "src/$inc";
                push @bad, "$src:$.: \"$inc\": a header of its own module or of src/common goes by bare name"
                    if $to eq $mod || $to eq "common";
            } elsif (-f "src/$mod/$inc") {
                $to = $mod;
            } elsif (-f "src/common/$inc") {
                $to = "common";
            } else {
                my $o = $owner{$inc} ? join(",", @{$owner{$inc}}) : "none";
                push @bad, "$src:$.: \"$inc\": another module'"'"'s header (src/$o) by bare name";
                next;
            }
            next if $to eq $mod || $deps{$mod}{"*"};
            push @bad, "$src:$.: src/$mod includes src/$to, which its row in $doc does not name"
                unless $deps{$mod}{$to};
        } elsif ($l =~ /^\s*#\s*include\s+<(libvirt|libxml)\//) {
            my $lib = $1 eq "libxml" ? "libxml2" : "libvirt";
            push @bad, "$src:$.: src/$mod includes <$1/...>, which its row in $doc does not name"
                unless $ext{$mod}{$lib} || $ext{$mod}{"*"};
        }
    }
    close $in;
}
# Every module directory has a row.
for my $dir (glob "src/*/") {
    my ($m) = $dir =~ m{^src/([^/]+)/};
    push @bad, "src/$m has no row in $doc" unless $deps{$m};
}
if (@bad) { print STDERR "$_\n" for @bad; exit 1 }
printf "%d modules, their includes follow %s\n", scalar(keys %deps), $doc;
' "$doc"
