#!/usr/bin/env bash
# One fuzz smoke run: usage: smoke.sh TARGET SEED_DIR WORK_DIR SECONDS
# Copies the committed seeds to WORK_DIR/corpus (the source tree is never written), runs libFuzzer
# for SECONDS, and fails on any crash, hang (>10 s for one input), leak or sanitizer report; the
# reproducer is left in WORK_DIR (crash-*, timeout-*, leak-*, oom-*).
set -euo pipefail
target=$1 seeds=$2 work=$3 seconds=$4
rm -rf "$work"
mkdir -p "$work/corpus"
cp "$seeds"/* "$work/corpus/"
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
# libFuzzer exits 77 on a finding by default, which this project means as "skip": say 1.
exec "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -error_exitcode=1 -timeout_exitcode=1 -artifact_prefix="$work/" "$work/corpus"
