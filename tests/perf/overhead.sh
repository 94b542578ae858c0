#!/usr/bin/env bash
# The harness-overhead bars of issues 2 and 4, measured inside one MPI job per operation
# (tests/perf/overhead.cpp alternates fabscope's own benchmark code and a bare MPI loop):
#   lat 8 B and 64 KiB, 2 ranks: p50 one-way latency ratio fabscope / bare (bar 1.00 +- 0.03)
#   bw 1 MiB, 2 ranks: p50 window bandwidth ratio (bar 1.00 +- 0.03)
#   allreduce 8 B and 1 MiB, 4 ranks: p50 iteration time ratio (bar 1.00 +- 0.03)
# Prints every round and a SUMMARY line per case (median, min..max, IQR of the per-round ratios).
# The launch-by-launch comparison (tests/perf/harness_overhead.sh, coll_overhead.sh) is kept for
# the pairs wall-time bar and as a cross-check.
# usage: tests/perf/overhead.sh [ROUNDS=21]   (after bash .ci/build release)
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=${1:-21}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bin=build/release/bin/fabscope-overhead
mpirun --oversubscribe -np 2 --bind-to core "$bin" lat "$rounds"
mpirun --oversubscribe -np 2 --bind-to core "$bin" bw "$rounds"
mpirun --oversubscribe -np 4 --bind-to none "$bin" allreduce "$rounds"
