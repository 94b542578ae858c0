#!/usr/bin/env bash
# Issue 14: the per-round harness time of `fabscope pairs` with real MPI ranks, against N.
# The instrument: FABSCOPE_HARNESS_ONLY=1 makes pairs skip every link and measurement (fixed
# synthetic samples, 1,000 latency samples and 12 windows per direction per pair, as a real run's
# defaults); everything else is the real round: the quiet barrier, each rank's summaries, the
# gather of every rank's buffer and error text, rank 0's assembling and the HDF5 append. Rank 0
# prints its wall time per round (barrier to written), median over the N-1 rounds.
# The reference, side by side in the same launch shape: tests/perf/bare_mpi.c `gather` (an
# MPI_Barrier and an MPI_Gather of the same number of doubles per rank, nothing else): the ratio
# is what fabscope adds to what MPI alone needs for a round.
# 8..128 ranks on this machine's cores, oversubscribed: every launch yields idle ranks' cores
# (--mca mpi_yield_when_idle 1; fabscope's barrier also sleeps), so what grows with N here is the
# machine's time-slicing as much as the harness; on a cluster each rank has its own core.
# usage: tests/perf/harness_bench.sh [REPEATS=3]   (after bash .ci/build release)
#   env: SIZES="8 16 32 64 128"
set -euo pipefail
cd "$(dirname "$0")/../.."
reps=${1:-3}
sizes=${SIZES:-"8 16 32 64 128"}
bin=build/release/bin
[[ -x $bin/fabscope && -x $bin/fabscope-bare-mpi ]] || { echo "harness_bench: build first: bash .ci/build release" >&2; exit 2; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The doubles a rank sends per round: 3 (partner, seconds, status) + 1,000 latency samples + 12
# windows + the side summary (51), as scale_bench.cpp lays out the gathered buffer.
doubles=$((3 + 1000 + 12 + 51))
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
echo "ranks | fabscope ms/round: median of reps (min..max) | MPI barrier+gather ms/round | ratio | rounds"
for n in $sizes; do
  fab=() ref=()
  for ((r = 1; r <= reps; r++)); do
    launch=(mpirun --oversubscribe -np "$n" --bind-to none --mca mpi_yield_when_idle 1)
    line=$(FABSCOPE_HARNESS_ONLY=1 "${launch[@]}" "$bin/fabscope" pairs --iters 1000 --bw-iters 12 --warmup 0 \
      --quiet --out "$tmp/h.h5" 2>&1 | grep '^# harness-only:' || true)
    [[ -n $line ]] || { echo "harness_bench: fabscope pairs at $n ranks printed no harness line" >&2; exit 1; }
    fab+=("$(sed -n 's/.*ms_per_round_median=\([0-9.]*\).*/\1/p' <<<"$line")")
    rm -f "$tmp/h.h5"
    ref+=("$("${launch[@]}" "$bin/fabscope-bare-mpi" gather "$doubles" "$((n - 1))" 2 | sed -n 's/^time_ms_per_round_median //p')")
  done
  fm=$(printf '%s\n' "${fab[@]}" | median)
  rm_=$(printf '%s\n' "${ref[@]}" | median)
  lo=$(printf '%s\n' "${fab[@]}" | sort -g | head -1)
  hi=$(printf '%s\n' "${fab[@]}" | sort -g | tail -1)
  ratio=$(awk -v a="$fm" -v b="$rm_" 'BEGIN {printf "%.2f", (b > 0) ? a / b : 0}')
  echo "$n | $fm ($lo..$hi) | $rm_ | $ratio | $((n - 1))"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
