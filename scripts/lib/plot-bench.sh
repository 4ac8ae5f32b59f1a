#!/usr/bin/env bash
# Pictures of a scripts/bench run: plot-bench.sh RESULTS.json DIR writes
#   DIR/latency-T<T>.svg  the latency distribution of each implementation at
#                         T threads: x the latency (log scale), y the fraction
#                         of calls at most that slow, spread by nines (50 %,
#                         90 %, 99 %, 99.9 %, ...) so the tail is visible;
#                         `floor` is the machine's own tail (no logging)
#   DIR/throughput.svg    records/s of each implementation per T
# Needs jq and gnuplot (scripts/install-deps jq gnuplot-nox).
set -euo pipefail
json=$1 dir=$2
mkdir -p "$dir"
format=$(jq -r '.format // "mainlog"' "$json")
impls=$(jq -r '[.results[].name] | unique | .[]' "$json")
threads=$(jq -r '[.results[] | select(.name != "raw_write") | .threads] | unique | .[]' "$json")
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
written=()

# Latency CDF: one data file per implementation and T: "ns nines".
for t in $threads; do
  plots=()
  for impl in $impls; do
    f="$data/cdf-$impl-$t.dat"
    jq -r --arg n "$impl" --argjson t "$t" \
      '.results[] | select(.name == $n and .threads == $t) | .cdf[] |
       "\(.[0] | if . < 1 then 1 else . end) \(if .[1] >= 1 then 6.5 else (-(1 - .[1] | log) / (10 | log)) end)"' \
      "$json" > "$f"
    [ -s "$f" ] && plots+=("'$f' using 1:2 with linespoints title '$impl'")
  done
  [ ${#plots[@]} -eq 0 ] && continue
  gnuplot <<GP
set terminal svg size 800,500 dynamic noenhanced
set output '$dir/latency-T$t.svg'
set title 'hook-call latency, $format lines, T = $t (scripts/bench)'
set logscale x
set xlabel 'latency of one call (ns)'
set ylabel 'calls at most this slow'
set ytics ('50%%' 0.30103, '90%%' 1, '99%%' 2, '99.9%%' 3, '99.99%%' 4, '99.999%%' 5, 'max' 6.5)
set yrange [0:7]
set grid
set key bottom right
plot $(IFS=,; echo "${plots[*]}")
GP
  written+=("latency-T$t.svg")
done

# Throughput per T (the floor writes nothing).
plots=()
for impl in $impls; do
  [ "$impl" = floor ] && continue
  f="$data/rate-$impl.dat"
  jq -r --arg n "$impl" '.results[] | select(.name == $n) | "\(.threads) \(.records_per_s)"' "$json" > "$f"
  [ -s "$f" ] && plots+=("'$f' using 1:2 with linespoints title '$impl'")
done
gnuplot <<GP
set terminal svg size 800,500 dynamic noenhanced
set output '$dir/throughput.svg'
set title 'records/s through the hook, $format lines, per producer threads T (scripts/bench)'
set logscale x 2
set xlabel 'producer threads T'
set ylabel 'records/s'
set format y '%.0s%c'
set grid
set key top left
plot $(IFS=,; echo "${plots[*]}")
GP
written+=(throughput.svg)
echo "plots in $dir: ${written[*]}"
