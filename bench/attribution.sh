#!/usr/bin/env bash
# bench/attribution.sh - the attribution pipeline's targets (issue #3).
#
#   bench/attribution.sh [pipeline|freshness|rollups|fraud|all]...   (default: all)
#
#   pipeline   build/bench/bench_pipeline: touches preloaded into the store
#              (BENCH_PRELOAD_M, default 10 million), then BENCH_MIX_M (default 2)
#              million mixed records (80% touches, 5% installs, 15% in-app events)
#              through the pipeline; records/s against the same run's baseline
#              (reading and decoding the same records without the store), install
#              decision p99, store bytes per touch. Median of BENCH_RUNS (3).
#   freshness  the daemon under open-loop load at half of its peak single-event
#              rate (bench/loadgen.c, sessions of one device, fsync=always) while
#              bench/freshness.py sends click + install probes and polls
#              GET /v1/attribution: p99 from the install's 202 to "attributed",
#              against the p99 of the background requests' own 202 in the same run.
#
#   rollups    bench_pipeline with and without the report rollups (AB=ROLLUPS: two pipelines taking
#              turns on the same records): the throughput the rollups cost (issue #5: at most 10%).
#   fraud      the same with and without the fraud rules (FRAUD=1, rollups on): what the rules
#              cost (issue #6: at most 10%).
#
# Targets: >= 500,000 mixed records/s with 10 M touches stored, install decision
# p99 < 1 ms, <= 128 bytes per touch, freshness p99 < 100 ms.
# Writes a Markdown table to bench/results/attribution.md. Only 127.0.0.1 is used.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
cd "$ROOT_DIR" || exit 2

RUNS=${BENCH_RUNS:-3}
PRELOAD_M=${BENCH_PRELOAD_M:-10}
MIX_M=${BENCH_MIX_M:-2}
PROBES=${BENCH_PROBES:-300}
LOAD_SECONDS=${BENCH_LOAD_SECONDS:-40}
RESULTS_DIR=${BENCH_RESULTS:-$ROOT_DIR/bench/results}
PIPE_BIN=${PIPE_BIN:-$ROOT_DIR/build/bench/bench_pipeline}
ROWS=()
CMDS=()

row() { ROWS+=("| $1 | $2 | $3 | $4 | $5 | $6 |"); }
jget() { python3 -c 'import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$1" "$2"; }

bench_init

# pipe_json DIR [ENV=VALUE ...] -- [ARG ...]: one bench_pipeline run over DIR (removed after), its output on
# stderr; prints its JSON summary line, or fails.
pipe_json() {
    local dir=$1 envs=() out line
    shift
    while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    out=$(env "${envs[@]}" "$PIPE_BIN" "$@" "$dir") || return 1
    printf '%s\n' "$out" >&2 # not tee /dev/stderr: reopening a redirected stderr truncates its file
    rm -rf "$dir"
    line=$(printf '%s\n' "$out" | grep '^{' | tail -n 1)
    [ -n "$line" ] && printf '%s\n' "$line"
}

bench_pipeline() {
    [ -x "$PIPE_BIN" ] || { bench_log "$PIPE_BIN not built (ninja -C build)"; return 2; }
    local rps=() base=() bpt=() disk=() p99=() i line
    CMDS+=("build/bench/bench_pipeline $PRELOAD_M $MIX_M   # x$RUNS, medians")
    for i in $(seq 1 "$RUNS"); do
        bench_log "pipeline run $i/$RUNS: $PRELOAD_M M touches preloaded, $MIX_M M mixed records"
        line=$(pipe_json "$BENCH_TMP/pipe$i" -- "$PRELOAD_M" "$MIX_M") || bench_die "bench_pipeline failed"
        rps+=("$(jget "$line" mixed_records_per_s)")
        base+=("$(jget "$line" decode_only_per_s)")
        bpt+=("$(jget "$line" bytes_per_touch)")
        disk+=("$(jget "$line" disk_bytes_per_touch)")
        p99+=("$(jget "$line" install_p99_us)")
    done
    local r b t p
    r=$(median "${rps[@]}")
    b=$(median "${base[@]}")
    t=$(median "${bpt[@]}")
    p=$(median "${p99[@]}")
    local ratio verdict
    ratio=$(awk -v r="$r" -v b="$b" 'BEGIN { printf "%.2fx", r / b }')
    verdict=$(awk -v r="$r" 'BEGIN { print (r >= 500000) ? "met" : "**missed**" }')
    row "pipeline, mixed records/s with $PRELOAD_M M touches stored" "$(printf '%.0f' "$r")" \
        "log read + JSON decode of the same records: $(printf '%.0f' "$b")/s" "$ratio" ">= 500,000/s" "$verdict"
    verdict=$(awk -v p="$p" 'BEGIN { print (p < 1000) ? "met" : "**missed**" }')
    row "install decision p99 (in the pipeline)" "$p us" "-" "-" "< 1 ms" "$verdict"
    verdict=$(awk -v t="$t" 'BEGIN { print (t <= 128) ? "met" : "**missed**" }')
    row "touch store bytes per touch ($PRELOAD_M M touches): disk (LMDB) + key index in memory" "$t (disk $(median "${disk[@]}"))" "-" "-" "<= 128" "$verdict"
}

# The cost of one part of the pipeline (BENCH_ROLLUP_PRELOAD_M, default 2, million touches preloaded): AB=VAR runs
# two pipelines in one process, each over its own store and the same log, one with VAR=0 and one with VAR=1,
# taking turns on chunks of 100,000 mixed records (ABBA), so the machine's drift, tens of percent over minutes,
# falls on both alike. The cost is the median over BENCH_RUNS such runs. The report rollups (issue #5) and the
# fraud rules (issue #6, with the rollups on, as in the daemon) may each cost at most 10% of pipeline throughput.
bench_toggle() { # VAR what [ENV=VALUE ...]
    [ -x "$PIPE_BIN" ] || { bench_log "$PIPE_BIN not built (ninja -C build)"; return 2; }
    local var=$1 what=$2
    shift 2
    local pre=${BENCH_ROLLUP_PRELOAD_M:-2} off=() on=() costs=() i line
    CMDS+=("$* AB=$var build/bench/bench_pipeline $pre $MIX_M   # x$RUNS, medians")
    for i in $(seq 1 "$RUNS"); do
        bench_log "$what run $i/$RUNS: $var=0 and $var=1 taking turns"
        line=$(pipe_json "$BENCH_TMP/tog$i" "$@" "AB=$var" -- "$pre" "$MIX_M") || bench_die "bench_pipeline failed"
        off+=("$(jget "$line" off_records_per_s)")
        on+=("$(jget "$line" on_records_per_s)")
        costs+=("$(jget "$line" cost_pct)")
    done
    local cost verdict
    cost=$(printf '%.1f' "$(median "${costs[@]}")")
    verdict=$(awk -v c="$cost" 'BEGIN { print (c <= 10) ? "met" : "**missed**" }')
    row "pipeline with $what, mixed records/s ($pre M touches stored)" \
        "$(printf '%.0f' "$(median "${on[@]}")")" "the same records without, in turns: $(printf '%.0f' "$(median "${off[@]}")")/s" \
        "$cost% slower (runs: ${costs[*]})" "<= 10%" "$verdict"
}

bench_rollups() { bench_toggle ROLLUPS "report rollups" FRAUD=1; }
bench_fraud() { bench_toggle FRAUD "the fraud rules" ROLLUPS=1; }

bench_freshness() {
    loadgen_build
    local data=$BENCH_TMP/fresh
    mkdir -p "$data"
    app_create "$data" || bench_die "app create failed"
    daemon_start "$data" --set log.fsync=always
    wait_http "http://127.0.0.1:$UMG_PORT/readyz" 200 30 || bench_die "daemon not ready"
    local body=$BENCH_TMP/session.json
    printf '{"type":"session","device":{"gaid":"38400000-8cf0-11bd-b23e-10b96e40000d","platform":"android"}}' > "$body"
    run_wrk "http://127.0.0.1:$UMG_PORT/v1/events" "$body" "$UMG_APP_KEY" || bench_die "the peak run had errors"
    local peak rate
    peak=$(kv "$WRK_LINE" rps)
    rate=$(awk -v p="$peak" 'BEGIN { printf "%.0f", p / 2 }')
    bench_log "peak $peak req/s; background load at $rate req/s for ${LOAD_SECONDS}s"
    CMDS+=("wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION -s bench/wrk/post.lua (session events) -> peak; umg-loadgen -R peak/2 -d $LOAD_SECONDS -c 64 -t 2 & bench/freshness.py ADDR APP KEY SECRET $PROBES")
    local lg_out=$BENCH_TMP/loadgen.out
    "$LOADGEN" -u "http://127.0.0.1:$UMG_PORT/v1/events" -b "$body" -H "X-App-Key: $UMG_APP_KEY" -R "$rate" \
        -d "$LOAD_SECONDS" -w 2 -c 64 -t 2 > "$lg_out" 2>&1 &
    local lg=$!
    BENCH_PIDS+=("$lg")
    sleep 3
    local fl rc=0
    fl=$(python3 "$HERE/freshness.py" "127.0.0.1:$UMG_PORT" "$UMG_APP_ID" "$UMG_APP_KEY" "$UMG_APP_SECRET" "$PROBES" |
        grep '^UMG_FRESHNESS') || rc=1
    wait "$lg" || rc=1
    local lgl
    lgl=$(grep '^UMG_LOADGEN' "$lg_out" | tail -n 1)
    bench_log "freshness: $fl"
    bench_log "background: $lgl"
    daemon_stop
    local p99 lgp99 verdict
    p99=$(kv "$fl" p99_ms)
    lgp99=$(awk -v u="$(kv "$lgl" p99_us)" 'BEGIN { printf "%.2f", u / 1000 }')
    if [ "$rc" != 0 ]; then
        verdict="INVALID (errors: $(kv "$lgl" statuses), failed probes $(kv "$fl" failed))"
    else
        verdict=$(awk -v p="$p99" 'BEGIN { print (p < 100) ? "met" : "**missed**" }')
    fi
    row "freshness: install 202 -> attributed in /v1/attribution, p99 ($PROBES probes, load $rate req/s = half peak)" \
        "$p99 ms (p50 $(kv "$fl" p50_ms), max $(kv "$fl" max_ms))" "p99 of the background 202s: $lgp99 ms" \
        "$(awk -v a="$p99" -v b="$lgp99" 'BEGIN { printf "%.1fx", a / b }')" "< 100 ms" "$verdict"
}

WHAT=("$@")
[ ${#WHAT[@]} -gt 0 ] || WHAT=(all)
for w in "${WHAT[@]}"; do
    case "$w" in
    pipeline) bench_pipeline ;;
    freshness) bench_freshness ;;
    rollups) bench_rollups ;;
    fraud) bench_fraud ;;
    all) bench_pipeline; bench_freshness; bench_rollups; bench_fraud ;;
    *) echo "unknown benchmark '$w' (pipeline|freshness|rollups|fraud|all)" >&2; exit 2 ;;
    esac
done

mkdir -p "$RESULTS_DIR"
{
    echo "# Attribution benchmarks ($(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD 2>/dev/null))"
    echo
    echo "| metric | ours | baseline (same run) | ratio | target | |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "Commands:"
    printf -- '- `%s`\n' "${CMDS[@]}"
} | tee "$RESULTS_DIR/attribution.md"
