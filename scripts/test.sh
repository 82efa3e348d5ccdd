#!/usr/bin/env bash
# The whole test suite: unit tests (cmocka), integration and crash tests
# against the real daemon, the same again under ASan+UBSan, and a short run of
# every fuzz target. Ends with one line: "N passed, N failed".
#   FUZZ_SECONDS   seconds per fuzz target (default 20)
#   SKIP_ASAN=1    skip the sanitizer pass (local iteration only)
#   TEST_ONLY=web  build, then only the web dashboard's tests (local iteration only)
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
passed=0 failed=0 skipped=0
failures=()
log_dir=$(mktemp -d /tmp/umg-test.XXXXXX)

note() { printf '\n=== %s\n' "$*"; }

# Adds the counts from a cmocka run's output to the totals.
count_cmocka() { # name logfile rc
  local p f
  p=$(grep -E '^\[  PASSED  \] [0-9]+ test' "$2" | tail -1 | grep -oE '[0-9]+' | head -1)
  f=$(grep -E '^\[  FAILED  \] [0-9]+ test' "$2" | tail -1 | grep -oE '[0-9]+' | head -1)
  p=${p:-0}; f=${f:-0}
  if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed before reporting
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -gt 0 ] && failures+=("$1")
}

# Adds the counts from the integration runner's closing line.
count_runner() { # name logfile rc
  local line p f s
  line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$2" | tail -1)
  p=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  s=$(echo "$line" | grep -oE '[0-9]+ skipped' | grep -oE '[0-9]+')
  p=${p:-0}; f=${f:-0}; s=${s:-0}
  if [ -z "$line" ] || { [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; }; then f=$((f + 1)); fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  [ "$f" -gt 0 ] && failures+=("$1")
}

# Adds the counts from a vitest run's "Tests  N failed | N passed (N)" line.
count_vitest() { # name logfile rc
  local line p f
  line=$(grep -E '^ *Tests +' "$2" | tail -1)
  p=$(echo "$line" | grep -oE '[0-9]+ passed' | grep -oE '[0-9]+')
  f=$(echo "$line" | grep -oE '[0-9]+ failed' | grep -oE '[0-9]+')
  p=${p:-0}; f=${f:-0}
  if [ -z "$line" ] || { [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; }; then f=$((f + 1)); fi
  passed=$((passed + p)); failed=$((failed + f))
  [ "$f" -gt 0 ] && failures+=("$1")
}

# The web dashboard: its build, the page logic's unit tests (vitest) and the end-to-end tests in
# Debian's chromium against a real daemon (web/tests/e2e/run.mjs; screenshots in build/e2e-artifacts).
run_web() {
  note "web dashboard: build (npm ci, vite)"
  if ! scripts/build-web.sh >"$log_dir/web-build.log" 2>&1; then
    tail -30 "$log_dir/web-build.log"
    failed=$((failed + 1)); failures+=("web build"); return
  fi
  passed=$((passed + 1)); tail -1 "$log_dir/web-build.log"
  note "web dashboard: unit tests (vitest)"
  ( cd web && NO_COLOR=1 npx vitest run ) >"$log_dir/web-unit.log" 2>&1
  local rc=$?
  grep -E 'FAIL|✗|×| Tests ' "$log_dir/web-unit.log" | tail -20
  count_vitest "web:unit" "$log_dir/web-unit.log" "$rc"
  note "web dashboard: end-to-end (chromium, playwright-core)"
  ( cd web && UMG_BIN="$root/build/unmogrowp" node tests/e2e/run.mjs ) >"$log_dir/web-e2e.log" 2>&1
  rc=$?
  grep -E '^(ok|FAIL) |passed, ' "$log_dir/web-e2e.log" | tail -40
  count_runner "web:e2e" "$log_dir/web-e2e.log" "$rc"
}

build_dir() { # dir setup-args...
  local dir=$1; shift
  # A build directory set up before cmocka was installed (make run) has no unit tests: set it up again.
  if [ -f "$dir/build.ninja" ] && ! grep -q 'test_core' "$dir/build.ninja" && pkg-config --exists cmocka; then
    meson setup --reconfigure "$dir" "$@" >"$log_dir/setup-$(basename "$dir").log" 2>&1 || {
      cat "$log_dir/setup-$(basename "$dir").log"; return 1; }
  fi
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >"$log_dir/setup-$(basename "$dir").log" 2>&1 || {
      cat "$log_dir/setup-$(basename "$dir").log"; return 1; }
  fi
  ninja -C "$dir" >"$log_dir/ninja-$(basename "$dir").log" 2>&1 || {
    tail -50 "$log_dir/ninja-$(basename "$dir").log"; return 1; }
}

run_units() { # build-dir label
  for t in "$1"/tests/unit/test_*; do
    [ -f "$t" ] && [ -x "$t" ] || continue
    local name="$2:$(basename "$t")" lf="$log_dir/$2-$(basename "$t").log"
    ( cd "$log_dir" && "$root/$t" ) >"$lf" 2>&1
    local rc=$?
    printf '%-28s %s\n' "$(basename "$t")" "$(grep -E '^\[  (PASSED|FAILED)  \]' "$lf" | tr '\n' ' ')"
    count_cmocka "$name" "$lf" "$rc"
    [ "$rc" -ne 0 ] && tail -30 "$lf"
  done
}

run_integration() { # binary label
  local lf="$log_dir/integration-$2.log"
  UMG_BIN="$root/$1" python3 tests/integration/run.py >"$lf" 2>&1
  local rc=$?
  grep -E 'FAIL|ERROR|skipped|passed, ' "$lf" | tail -40
  count_runner "$2:integration" "$lf" "$rc"
}

note "build (gcc, -Werror)"
if ! build_dir build --buildtype=debugoptimized; then
  echo "0 passed, 1 failed"; exit 1
fi

if [ "${TEST_ONLY:-}" = web ]; then
  run_web
  echo "logs: $log_dir"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]; exit
fi

note "unit tests"
run_units build unit

note "formatting (.clang-format)"
if make -s fmt-check >"$log_dir/fmt.log" 2>&1; then passed=$((passed + 1)); echo ok; else
  failed=$((failed + 1)); failures+=("clang-format"); head -20 "$log_dir/fmt.log"; fi

note "docs/config.md matches the binary's configuration table"
if scripts/gen-config-doc.sh --check; then passed=$((passed + 1)); echo ok; else failed=$((failed + 1)); failures+=("config docs"); fi

note "integration tests (real daemon over HTTP, crash test)"
run_integration build/unmogrowp release

run_web

if [ "${SKIP_ASAN:-0}" != 1 ]; then
  note "ASan+UBSan build"
  if build_dir build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    note "unit tests under ASan+UBSan"
    run_units build-asan asan
    note "integration tests under ASan+UBSan"
    ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 run_integration build-asan/unmogrowp asan
    unset ASAN_OPTIONS UBSAN_OPTIONS
  else
    failed=$((failed + 1)); failures+=("asan build")
  fi
fi

note "fuzz targets (${FUZZ_SECONDS:-20}s each)"
if command -v clang >/dev/null && CC=clang CXX=clang++ build_dir build-fuzz --buildtype=debug -Dfuzz=true \
     -Db_sanitize=address,undefined -Db_lundef=false; then
  if FUZZ_SECONDS=${FUZZ_SECONDS:-20} scripts/fuzz.sh >"$log_dir/fuzz.log" 2>&1; then
    passed=$((passed + $(grep -c '^fuzz ok' "$log_dir/fuzz.log")))
  else
    failed=$((failed + 1)); failures+=("fuzz"); tail -40 "$log_dir/fuzz.log"
  fi
  grep '^fuzz ' "$log_dir/fuzz.log"
else
  failed=$((failed + 1)); failures+=("fuzz build")
fi

note "summary"
[ ${#failures[@]} -gt 0 ] && printf 'failing: %s\n' "${failures[*]}"
echo "logs: $log_dir"
if [ "$skipped" -gt 0 ]; then
  echo "$passed passed, $failed failed, $skipped skipped"
else
  echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
