#!/bin/sh
# micro.bad-flags: fabscope-micro must refuse the Google Benchmark flag values that make the
# library abort (BM_CHECK -> SIGABRT) with exit 2 and one line on stderr naming the flag, and
# still run with good ones. Usage: micro_flags.sh FABSCOPE_MICRO
bin=$1
fail() { echo "FAIL: $*"; exit 1; }
for a in --benchmark_repetitions=-1 --benchmark_repetitions=0 --benchmark_repetitions=x \
         --benchmark_repetitions= --benchmark_min_time=-1 --benchmark_min_time=abc \
         --benchmark_min_warmup_time=-0.5; do
  err=$("$bin" "$a" --benchmark_filter=NONE 2>&1 >/dev/null)
  rc=$?
  [ "$rc" -eq 2 ] || fail "$a: exit $rc, want 2 ($err)"
  case $err in
    "fabscope-micro: $a: give a "*) ;;
    *) fail "$a: message '$err'" ;;
  esac
  [ "$(printf '%s\n' "$err" | wc -l)" -eq 1 ] || fail "$a: not one line: $err"
done
"$bin" --benchmark_repetitions=2 --benchmark_min_time=0.01 --benchmark_min_warmup_time=0 \
  --benchmark_filter=BM_clock_read >/dev/null 2>&1 || fail "good flags: exit $?"
echo "PASS"
