#!/usr/bin/env perl
# mkqed-full.pl FILE SIZE [CLUSTER_SIZE [TABLE_SIZE]]
#
# Writes a valid QED image of SIZE guest bytes (a multiple of the cluster
# size) in which every cluster is allocated, laid out as QEMU lays out an
# image written front to back one cluster at a time: for each L2 table,
# its first data cluster, then the table, then the rest of its data
# clusters.  Only the header and the tables are written: every data
# cluster is a hole of the sparse file (what `cp --sparse=always` leaves
# of zero-filled clusters), so a 1 TiB image takes seconds to make and
# 128 MiB of disk.  Write guest data into it with qemu-io afterwards for
# partly hole-backed images.  Sizes take K/M/G/T suffixes.
use strict;
use warnings;

sub bytes {
    my ($s) = @_;
    my %m = (K => 1 << 10, M => 1 << 20, G => 1 << 30, T => 1 << 40);
    $s =~ /^(\d+)([KMGT]?)i?B?$/i or die "mkqed-full: bad size '$s'\n";
    return $1 * ($2 ? $m{uc $2} : 1);
}

my ($file, $size, $cs, $ts) = @ARGV;
die "usage: mkqed-full.pl FILE SIZE [CLUSTER_SIZE [TABLE_SIZE]]\n"
    unless defined $size;
$size = bytes($size);
$cs = bytes($cs // '64K');
$ts //= 4;
die "mkqed-full: SIZE must be a multiple of the cluster size\n"
    if $size % $cs;
my $entries = $ts * $cs / 8;          # per table
my $span = $entries * $cs;            # guest bytes per L2 table
my $nclusters = $size / $cs;
my $nl2 = int(($size + $span - 1) / $span);
die "mkqed-full: image too large for one L1 table\n" if $nl2 > $entries;

open(my $f, '>', $file) or die "mkqed-full: $file: $!\n";
binmode $f;
# Header: magic, cluster size, table size, header size (clusters),
# features, compat, autoclear, L1 offset, image size, no backing file.
my $l1 = $cs;
print $f pack('a4 V V V Q< Q< Q< Q< Q< V V', "QED\0", $cs, $ts, 1, 0, 0, 0,
              $l1, $size, 0, 0);
my $next = $l1 + $ts * $cs;           # first free cluster
my @l1e;
for my $t (0 .. $nl2 - 1) {
    my $first = $t * $entries;
    my $n = $nclusters - $first < $entries ? $nclusters - $first : $entries;
    my $d0 = $next;                   # its first data cluster
    my $l2 = $d0 + $cs;
    my $rest = $l2 + $ts * $cs;
    push @l1e, $l2;
    my @e = ($d0, map { $rest + ($_ - 1) * $cs } 1 .. $n - 1);
    push @e, (0) x ($entries - $n);
    seek($f, $l2, 0) or die "mkqed-full: $!\n";
    print $f pack('Q<*', @e) or die "mkqed-full: $file: $!\n";
    $next = $rest + ($n - 1) * $cs;
}
seek($f, $l1, 0) or die "mkqed-full: $!\n";
print $f pack('Q<*', @l1e, (0) x ($entries - @l1e));
truncate($f, $next) or die "mkqed-full: $file: $!\n";
close($f) or die "mkqed-full: $file: $!\n";
