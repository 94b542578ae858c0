# Shared by the two-VM tests (tests/verbs/two_vm_test.sh, load_2vm_test.sh); sourced, not run.
# The sourcing script sets VM2_NAME (its name in messages), VM2_TIMEOUT_S (default --timeout) and VM2_HELP_LINES
# (the sed range of its usage text), then:
#   vm2_args "$@"                 bin, out, timeout_s from the command line; a result folder
#   vm2_run "$guest" "what"       boots both VMs (run-2vm.sh), runs the guest commands, prints their
#                                 output; sets rc (theirs) and t_vm; exits 77 when the VM rig
#                                 cannot run here, 1 (with the console logs) when a VM did not boot
#   check "description" CMD...    one check: ok or FAIL, counted
#   vm2_finish                    the summary line; exit 0 when every check passed, else 1 (the
#                                 result folder is kept)
# shellcheck shell=bash
vm2_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$vm2_here/../../.." && pwd)
T0=$(date +%s.%N)
bin=$root/build/release/bin/fabscope
out=
timeout_s=$VM2_TIMEOUT_S
keep_out=1
fails=0

vm2_args() {
  while (($#)); do
    case $1 in
      --outdir) out=${2:?}; shift 2 ;;
      --timeout) timeout_s=${2:?}; shift 2 ;;
      -h | --help) sed -n "${VM2_HELP_LINES}p" "$0"; exit 0 ;;
      -*) echo "$VM2_NAME: unknown option '$1'" >&2; exit 2 ;;
      *) bin=$1; shift ;;
    esac
  done
  [[ -x $bin ]] || { echo "$VM2_NAME: no fabscope binary at $bin" >&2; exit 1; }
  bin=$(readlink -f "$bin")
  if [[ -z $out ]]; then out=$(mktemp -d "${TMPDIR:-/tmp}/$VM2_NAME.XXXXXX"); keep_out=0; fi
  mkdir -p "$out"
  out=$(cd "$out" && pwd)
  trap '((keep_out)) || rm -rf "$out"' EXIT
}

vm2_run() {  # guest commands, what they do (for the first line)
  echo "$VM2_NAME: two VMs, $2 (rxe0 on each), results in $out"
  set +e
  "$vm2_here/run-2vm.sh" --quiet --timeout "$timeout_s" --bin "$bin" --outdir "$out" --log "$out/console.log" -- "$1"
  rc=$?
  set -e
  t_vm=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $T0 }")
  if ((rc == 77)); then echo "$VM2_NAME: the VM rig cannot run here (exit 77)"; exit 77; fi
  sed -n '/FABSCOPE-VM-CMD-BEGIN/,/FABSCOPE-VM-CMD-END/p' "$out/console.log" | grep -v '^FABSCOPE-VM-CMD' || true
  if ! grep -q 'FABSCOPE-VM-CMD-BEGIN' "$out/console.log" 2>/dev/null; then
    # The VM never got to the commands: it did not boot (or vm2 did not come up). Show why.
    echo "$VM2_NAME: FAIL: a VM did not boot (rc $rc); console logs:"
    for log in "$out/console.log" "$out/console.log.vm2"; do
      [[ -f $log ]] && { echo "---- $log (last 80 lines) ----"; tail -80 "$log"; }
    done
    keep_out=1
    exit 1
  fi
}

check() {  # description, command...
  local what=$1
  shift
  if "$@"; then echo "ok:   $what"; else echo "FAIL: $what"; fails=$((fails + 1)); fi
}

vm2_finish() {
  local total
  total=$(awk "BEGIN { printf \"%.1f\", $(date +%s.%N) - $T0 }")
  echo "$VM2_NAME: $fails failures; VMs ${t_vm}s, total ${total}s"
  if ((fails > 0)); then
    keep_out=1
    echo "$VM2_NAME: files kept in $out"
    exit 1
  fi
  exit 0
}
