# workload.pl: deterministic Perl workload for real_programs.sh (run with and without the
# allocator preloaded; stdout must be identical). Exercises hashes, arrays, regexes, sort,
# string building, sprintf/pack and a few MiB of live data.
use strict;
use warnings;

my $seed = 12345;
sub rnd { $seed = ($seed * 1103515245 + 12345) % 2147483648; return $seed; }

my @words = map { join '', map { chr(97 + rnd() % 26) } 1 .. (2 + rnd() % 11) } 1 .. 30000;

# hashes
my %count;
$count{$_}++ for @words;
my %by_prefix;
push @{ $by_prefix{ substr($_, 0, 2) } }, $_ for @words;
printf "distinct %d prefixes %d\n", scalar(keys %count), scalar(keys %by_prefix);
my @top = (sort { $count{$b} <=> $count{$a} || $a cmp $b } keys %count)[0 .. 9];
print "top @top\n";

# regexes
my ($vowelly, $double, $sum) = (0, 0, 0);
for my $w (@words) {
  $vowelly++ if $w =~ /^[^aeiou]*[aeiou][^aeiou]*[aeiou]/;
  $double++ if $w =~ /(.)\1/;
  (my $t = $w) =~ s/([aeiou])/uc $1/ge;
  $sum += ($t =~ tr/A-Z//);
}
print "vowelly $vowelly double $double upper $sum\n";
my $text = join ' ', @words;
my @pairs = $text =~ /\b(\w{3})\w*\s+(\1\w*)/g;
printf "pairs %d first %s\n", scalar(@pairs), join(',', @pairs[0 .. 5]);

# records: a few MiB of nested data
my @recs;
for my $i (0 .. 59999) {
  push @recs, { id => $i, name => $words[$i % @words] x (1 + $i % 4),
                tags => [ @words[ map { ($i * 7 + $_) % @words } 0 .. $i % 5 ] ],
                score => ($i * 2654435761) % 1000003 };
}
my @sorted = sort { $a->{score} <=> $b->{score} || $a->{id} <=> $b->{id} } @recs;
print "lowest ", join(',', map { $_->{id} } @sorted[0 .. 4]), "\n";
print "highest ", join(',', map { $_->{id} } @sorted[-5 .. -1]), "\n";

# string building, sprintf and pack, simple checksum
my $buf = '';
$buf .= sprintf("%06d:%s;", $_, $words[$_ % 997]) for 0 .. 99999;
my $packed = pack('N*', map { $_->{score} } @recs);
my $ck = 0;
$ck = ($ck * 31 + ord($_)) % 4294967291 for split //, substr($buf, 0, 200000);
printf "buf %d packed %d checksum %d unpack %d\n", length($buf), length($packed), $ck,
  (unpack('N*', $packed))[12345];

# churn
my $total = 0;
for my $round (1 .. 20) {
  my %h = map { ($_ => [ (1) x ($_ % 30) ]) } 1 .. 5000;
  $total += scalar(@{ $h{$_} }) for keys %h;
}
print "churn $total\n";
print "done\n";
