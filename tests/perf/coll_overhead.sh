#!/usr/bin/env bash
# Issue 4 performance bar: `fabscope coll` costs nothing over a bare loop of the same MPI call.
# allreduce (float, sum) at 8 B and 1 MiB on 4 ranks: fabscope's p50 iteration time (barrier, then
# the call; per iteration the maximum over ranks) vs tests/perf/bare_mpi.c doing exactly that,
# alternating launches. Prints every repeat, then the ratio of medians (bar 0.97..1.03), the
# best-vs-best ratio and the spread of per-repeat ratios.
# usage: tests/perf/coll_overhead.sh [REPEATS=9]   (after bash .ci/build release)
set -euo pipefail
cd "$(dirname "$0")/../.."
reps=${1:-9}
bin=build/release/bin
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mpi=(mpirun --oversubscribe -np 4 --bind-to none)
out=""
for ((r = 1; r <= reps; r++)); do
  for size in 8 1048576; do
    iters=$((size > 8 ? 300 : 3000))
    if ((r % 2)); then order="fab bare"; else order="bare fab"; fi
    for who in $order; do
      if [ "$who" = fab ]; then
        "${mpi[@]}" $bin/fabscope coll --node-by rank --ops allreduce --sizes $size --iters $iters \
          --warmup $((iters / 10)) --out "$tmp/c.h5" --overwrite --quiet >/dev/null
        fab=$(/usr/bin/python3 -c "import h5py; f=h5py.File('$tmp/c.h5','r'); o=f['runs/00_coll/allreduce']; print(o['summary/time_ns_p50'][-1, 0])")
      else
        bare=$("${mpi[@]}" $bin/fabscope-bare-mpi allreduce $size $iters $((iters / 10)) | awk '{print $2}')
      fi
    done
    printf 'repeat %d allreduce %7d B on 4 ranks: fabscope p50 %10.1f ns, bare p50 %10.1f ns, ratio %.3f\n' \
      $r $size "$fab" "$bare" "$(/usr/bin/python3 -c "print($fab / $bare)")"
    out+="$size $fab $bare"$'\n'
  done
done
echo
echo "summary over $reps repeats:"
/usr/bin/python3 - <<PY
import statistics as st
rows = [l.split() for l in """$out""".strip().splitlines()]
for size in ("8", "1048576"):
    fab = [float(r[1]) for r in rows if r[0] == size]
    bare = [float(r[2]) for r in rows if r[0] == size]
    per = [f / b for f, b in zip(fab, bare)]
    q = st.quantiles(per, n=4) if len(per) > 1 else per * 3
    print(f"  allreduce {size} B, 4 ranks: fabscope median {st.median(fab):.1f} ns, bare median {st.median(bare):.1f} ns, "
          f"ratio of medians {st.median(fab) / st.median(bare):.3f} (bar 0.97..1.03); best vs best {min(fab) / min(bare):.3f}; "
          f"per-repeat median {st.median(per):.3f} IQR [{q[0]:.3f} .. {q[2]:.3f}]")
PY
