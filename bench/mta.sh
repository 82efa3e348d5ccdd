#!/usr/bin/env bash
# bench/mta.sh - the multi-touch report of GET /v1/reports/mta over a million
# journeys: seconds per model (umg_mta_report_add for every journey, then
# umg_mta_report_json), the median of BENCH_RUNS runs of build/bench/bench_mta,
# for each channel count in BENCH_MTA_CHANNELS. Target (issue): < 2 s for
# every model. The machine-relative figure is each model's time over the
# `first` model's in the same run (first does no more than feed the journeys
# and write the JSON).
#
#   bench/mta.sh                         # 1,000,000 journeys, 20 and 40 channels, 3 runs
#   BENCH_RUNS=5 BENCH_MTA_CHANNELS="40 100" bench/mta.sh
#
# Settings: BENCH_RUNS (3), BENCH_MTA_JOURNEYS (1000000), BENCH_MTA_CHANNELS
# ("20 40"), BENCH_MTA_BIN (build/bench/bench_mta), BENCH_RESULTS
# (bench/results). Writes bench/results/mta-latest.md.
#
# Exit status: 0 every model met the target, 1 one missed or a run failed,
# 2 not measurable (bench_mta not built).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
cd "$ROOT_DIR" || exit 2

RUNS=${BENCH_RUNS:-3}
JOURNEYS=${BENCH_MTA_JOURNEYS:-1000000}
CHANNELS=${BENCH_MTA_CHANNELS:-20 40}
BIN=${BENCH_MTA_BIN:-$ROOT_DIR/build/bench/bench_mta}
RESULTS_DIR=${BENCH_RESULTS:-$ROOT_DIR/bench/results}
MODELS="first last linear time_decay position markov shapley"

[ -x "$BIN" ] || { bench_log "$BIN not built (ninja -C build bench/bench_mta)"; exit 2; }

# Every line bench_mta prints, all runs and channel counts, tagged "channels run line".
LINES=()
status=0
for ch in $CHANNELS; do
    for i in $(seq 1 "$RUNS"); do
        bench_log "channels=$ch run $i/$RUNS"
        out=$("$BIN" "$JOURNEYS" "$ch")
        rc=$?
        [ "$rc" -ge 2 ] && { bench_log "bench_mta failed (exit $rc)"; status=1; }
        while IFS= read -r line; do
            LINES+=("$line")
        done <<< "$out"
    done
done

# Values of KEY over the runs, for one model and channel count.
values() {
    local ch=$1 model=$2 key=$3 l
    for l in "${LINES[@]}"; do
        case "$l" in
        "mta model=$model journeys=$JOURNEYS channels=$ch "*) kv "$l" "$key" ;;
        esac
    done
}

mkdir -p "$RESULTS_DIR"
{
    echo "## Multi-touch report benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "Command: \`BENCH_RUNS=$RUNS BENCH_MTA_JOURNEYS=$JOURNEYS BENCH_MTA_CHANNELS=\"$CHANNELS\" bench/mta.sh\`"
    echo "($BIN JOURNEYS CHANNELS; journeys seed 42, 1-5 touches, about 3 % converting; median of BENCH_RUNS=$RUNS)"
    echo
    echo "| channels | model | add s | json s | total s | vs first | target | pass/fail |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
    for ch in $CHANNELS; do
        # shellcheck disable=SC2046
        base=$(median $(values "$ch" first total_s))
        for m in $MODELS; do
            # shellcheck disable=SC2046
            add=$(median $(values "$ch" "$m" add_s))
            # shellcheck disable=SC2046
            js=$(median $(values "$ch" "$m" json_s))
            # shellcheck disable=SC2046
            tot=$(median $(values "$ch" "$m" total_s))
            pass=$(awk -v t="$tot" 'BEGIN { print (t != "nan" && t < 2) ? "PASS" : "FAIL" }')
            ratio=$(awk -v t="$tot" -v b="$base" 'BEGIN { if (b > 0) printf "%.1fx", t / b; else print "-" }')
            printf '| %s | %s | %s | %s | %s | %s | < 2 s | %s |\n' "$ch" "$m" "$add" "$js" "$tot" "$ratio" "$pass"
        done
    done
    echo
    echo "Each column is the median of its own runs, so add + json need not equal total exactly."
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    echo "- machine: $cpu, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- source: $(git -C "$ROOT_DIR" rev-parse --short HEAD 2>/dev/null || echo 'no commit')$(git -C "$ROOT_DIR" status --porcelain 2>/dev/null | grep -q . && echo ' (work tree modified)')"
    echo "- peak RSS per run (MB): $(printf '%s\n' "${LINES[@]}" | sed -n 's/^mta peak_rss_mb=//p' | tr '\n' ' ')"
} | tee "$RESULTS_DIR/mta-latest.md"
# The table is made in a subshell (the pipe): its verdicts are read back from the file.
grep -q '| FAIL |' "$RESULTS_DIR/mta-latest.md" && status=1
exit "$status"
