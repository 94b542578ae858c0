#!/usr/bin/env bash
# Result files come back from the Soft-RoCE VM intact however loaded the host is. Two CPU hogs run
# on the host for the whole test (the condition under which the old virtio-serial channel lost
# bytes: "result file pairs.h5 arrived corrupt"); the guest leaves under /results a 6.9 MB file of
# known content (`seq 1 1000000`, so the host can recompute it without trusting the guest), 4 MiB of
# random bytes, an empty file, and a name with a space in a subfolder, and powers off the moment its
# copy is done. run-vm.sh checks every file against the guest's manifest (size, md5); this test
# also checks the known content and the list of files.
# usage: vm_transport_test.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp -d)
hogs=()
cleanup() {
  local p
  for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$out"
}
trap cleanup EXIT
for _ in 1 2; do
  yes >/dev/null &
  hogs+=($!)
done
guest='seq 1 1000000 >/results/seq.txt
dd if=/dev/urandom of=/results/random.bin bs=1M count=4 2>/dev/null
: >/results/empty
mkdir -p "/results/sub dir/deeper"
echo "fabscope transport" >"/results/sub dir/deeper/a b.txt"
ls -lR /results'
t0=$(date +%s)
"$here/vm/run-vm.sh" --quiet --timeout 500 --outdir "$out" --log "$out/console.log" -- "$guest" || {
  rc=$?
  echo "VM run failed (rc $rc); console tail:"
  tail -n 30 "$out/console.log" | tr -d '\r'
  exit 1
}
echo "VM run: $(($(date +%s) - t0)) s beside 2 CPU hogs (load $(cut -d' ' -f1-3 /proc/loadavg))"
fails=0
want=$(seq 1 1000000 | md5sum | cut -d' ' -f1)
got=$(md5sum <"$out/seq.txt" | cut -d' ' -f1)
echo "seq.txt: $(stat -c %s "$out/seq.txt") bytes, md5 $got (expected $want)"
[[ $got == "$want" ]] || fails=$((fails + 1))
[[ $(stat -c %s "$out/random.bin") == 4194304 ]] || { echo "random.bin: wrong size"; fails=$((fails + 1)); }
[[ -f $out/empty && ! -s $out/empty ]] || { echo "empty: missing or not empty"; fails=$((fails + 1)); }
[[ $(cat "$out/sub dir/deeper/a b.txt") == "fabscope transport" ]] || { echo "sub dir/deeper/a b.txt: wrong"; fails=$((fails + 1)); }
n=$(find "$out" -type f ! -name console.log | wc -l)
[[ $n == 4 ]] || { echo "expected 4 result files, found $n"; fails=$((fails + 1)); }
echo "VM results transport: $fails failures"
[[ $fails == 0 ]]
