#!/usr/bin/env bash
# Runs every libFuzzer target for FUZZ_SECONDS (default 20) on its seed corpus.
# Prints "fuzz ok NAME" or "fuzz FAILED NAME" per target; exits non-zero on a crash.
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SECONDS:-20}
rc=0
mkdir -p tests/fuzz/artifacts
for bin in build-fuzz/tests/fuzz/fuzz_*; do
  [ -f "$bin" ] && [ -x "$bin" ] || continue
  name=$(basename "$bin" | sed 's/^fuzz_//')
  work=$(mktemp -d /tmp/umg-fuzz-$name.XXXXXX)
  seeds=tests/fuzz/corpus/$name
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null
  if ASAN_OPTIONS=detect_leaks=1 "$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
       -artifact_prefix=tests/fuzz/artifacts/"$name"- "$work" >"$work.log" 2>&1; then
    echo "fuzz ok $name ($(grep -oE 'stat::number_of_executed_units: [0-9]+' "$work.log" | grep -oE '[0-9]+' || echo '?') runs)"
  else
    echo "fuzz FAILED $name"; tail -40 "$work.log"; rc=1
  fi
  rm -rf "$work"
done
exit $rc
