#!/usr/bin/env bash
# bench/ingest.sh - the ingest benchmarks, each a ratio against a baseline run in
# the same invocation on the same machine.
#
#   bench/ingest.sh [single|batch|latency|memory|recovery|all]...   (default: all)
#
#   single    POST /v1/events, one event per request, keep-alive, log.fsync=always:
#             requests/s of the daemon vs nginx answering `return 204` (target >= 0.7x)
#   batch     100 events per request: events/s of the daemon vs ClickHouse's own
#             INSERT ... FORMAT JSONEachRow of the same events (targets >= 1M/s, >= 3x)
#   latency   p99 of one acknowledged event at half the daemon's peak req/s, open loop
#             (bench/loadgen.c), vs nginx at the same rate (target < 5 ms)
#   memory    RssAnon (and VmRSS, RssFile) sampled under full load; growth after warm-up (target <= 10 %)
#   recovery  data dir with N events, kill -9, restart: time to /readyz 200
#             (target < 5 s for 10M events)
#
# Settings (environment):
#   BENCH_RUNS=3              runs per figure; the median is reported
#   WRK_THREADS=2 WRK_CONNS=64 WRK_DURATION=10s     wrk for single/batch
#   BENCH_IDS=0               1: every event carries a fresh event_id (made in wrk's Lua;
#                             costs client CPU); 0: the daemon makes the ids
#   BENCH_CH_ROWS=1000000     rows of the ClickHouse bulk INSERT
#   BENCH_LAT_SECONDS=30 BENCH_LAT_CONNS=64 BENCH_LAT_THREADS=2   open-loop latency run
#   BENCH_LAT_RATE=           fixed rate instead of half the measured peak
#   BENCH_MEM_SECONDS=60      600 for the long run; BENCH_MEM_INTERVAL=5 (s between samples)
#   BENCH_MEM_BODY=single     single|batch: the load of the memory run
#   BENCH_MEM_DEDUPE_IDS=200000  dedupe.max_ids of the memory run, so the dedupe set
#                             reaches its bound during warm-up (it grows by design until then)
#   BENCH_RECOVERY_EVENTS=1000000   10000000 for the real target
#   UMG_BIN=build/unmogrowp   UMG_SERVE_ARGS='...' extra `serve` arguments
#   BENCH_TMPDIR=/var/tmp     where data dirs go (must be a real disk, not tmpfs)
#   BENCH_KEEP_TMP=1          keep the temp dir (data dirs, logs) for inspection
#   BENCH_RESULTS=bench/results   where latest.md and a dated copy are written
#
# The machine has 2 cores shared by the load generator and the server under
# test (and the baseline): nothing is pinned, so every figure includes the
# client's CPU, the same way for both sides of a ratio.
#
# Exit status: 0 all measured targets met, 1 a target missed or a run invalid,
# 2 something could not be measured (e.g. the daemon is not built).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
cd "$ROOT_DIR" || exit 2

RUNS=${BENCH_RUNS:-3}
BENCH_IDS=${BENCH_IDS:-0}
CH_ROWS=${BENCH_CH_ROWS:-1000000}
LAT_SECONDS=${BENCH_LAT_SECONDS:-30}
LAT_CONNS=${BENCH_LAT_CONNS:-64}
LAT_THREADS=${BENCH_LAT_THREADS:-2}
MEM_SECONDS=${BENCH_MEM_SECONDS:-60}
MEM_INTERVAL=${BENCH_MEM_INTERVAL:-5}
MEM_BODY=${BENCH_MEM_BODY:-single}
MEM_DEDUPE_IDS=${BENCH_MEM_DEDUPE_IDS:-200000}
REC_EVENTS=${BENCH_RECOVERY_EVENTS:-1000000}
RESULTS_DIR=${BENCH_RESULTS:-$ROOT_DIR/bench/results}
BATCH=100

ROWS=()       # table rows: metric|ours|baseline|ratio|target|verdict
COMMANDS=()   # exact commands, in order
NOTES=()
STATUS=0      # worst outcome so far: 0 ok, 1 fail/invalid, 2 not measured

worse() { [ "$1" -gt "$STATUS" ] && STATUS=$1; return 0; }
note_cmd() {
    local c
    for c in "${COMMANDS[@]}"; do [ "$c" = "$1" ] && return 0; done
    COMMANDS+=("$1")
}
row() { ROWS+=("$1|$2|$3|$4|$5|$6"); }
fmt_int() { awk -v n="$1" 'BEGIN { s = sprintf("%.0f", n); o = ""
    while (length(s) > 3) { o = "," substr(s, length(s) - 2) o; s = substr(s, 1, length(s) - 3) }
    print s o }'; }
fmt_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2fx", a / b }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
# verdict CMD...: V=pass when CMD succeeds, else V=FAIL and the exit status becomes 1.
# (Never in a command substitution: a subshell could not raise STATUS.)
verdict() { if "$@"; then V=pass; else worse 1; V=FAIL; fi; }

# ------------------------------------------------------------------ inputs

EVENTS_DIR=
TS_FORMAT=${BENCH_TS_FORMAT:-ms}

gen_events() {
    local bulk=$1
    EVENTS_DIR=$BENCH_TMP/events
    local now_ms=$(( $(date +%s) / 60 * 60000 ))
    local cmd="python3 bench/gen_events.py --out $EVENTS_DIR --seed 42 --now $now_ms --batch $BATCH --bulk $bulk --ts-format $TS_FORMAT"
    note_cmd "$cmd"
    bench_log "generating events ($cmd)"
    $cmd > "$BENCH_TMP/gen_events.json" || bench_die "gen_events.py failed"
    if [ "$BENCH_IDS" = 1 ]; then
        SINGLE_BODY=$EVENTS_DIR/single_tpl.json
        BATCH_BODY=$EVENTS_DIR/batch_tpl.json
    else
        SINGLE_BODY=$EVENTS_DIR/single.json
        BATCH_BODY=$EVENTS_DIR/batch.json
    fi
    export UMG_IDS=$BENCH_IDS
}

# ------------------------------------------------------------------ daemon

HAVE_DAEMON=1
[ -x "$UMG_BIN" ] || HAVE_DAEMON=0

# Posts a body once and checks that every event was accepted.
# Prints the response on failure. Returns 0 ok, 1 rejected, 3 rejected on `ts`.
preflight_one() {
    local body=$1 want=$2 out code
    out=$(curl -s -w '\n%{http_code}' -H "X-App-Key: $UMG_APP_KEY" -H 'Content-Type: application/json' \
        --data-binary @"$body" "http://127.0.0.1:$UMG_PORT/v1/events") || return 1
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    local acc
    acc=$(printf '%s' "$out" | python3 -c 'import json,sys
try: print(json.load(sys.stdin).get("accepted", -1))
except Exception: print(-1)')
    if [ "$code" = 202 ] && [ "$acc" = "$want" ]; then
        return 0
    fi
    bench_log "preflight: $(basename "$body") answered $code: $(printf '%s' "$out" | head -c 600)"
    printf '%s' "$out" | grep -q '"field" *: *"ts"' && return 3
    return 1
}

# The bodies must be accepted whole, or the figures would count rejections.
# When the daemon takes no Unix-ms `ts`, the events are made again with RFC 3339.
preflight() {
    local rc
    for _ in 1 2; do
        rc=0
        preflight_one "$EVENTS_DIR/single.json" 1 || rc=$?
        [ "$rc" = 0 ] && { preflight_one "$EVENTS_DIR/batch.json" "$BATCH" || rc=$?; }
        [ "$rc" = 0 ] && return 0
        if [ "$rc" = 3 ] && [ "$TS_FORMAT" = ms ]; then
            bench_log "the daemon rejects ts as Unix ms; making the events again with RFC 3339 ts"
            NOTES+=("The daemon rejected \`ts\` as Unix ms, so the events were sent with RFC 3339 \`ts\`.")
            TS_FORMAT=rfc3339
            gen_events "$GEN_BULK"
            continue
        fi
        break
    done
    bench_die "the daemon does not accept the generated events (see above); a benchmark would count rejections"
}

# daemon_up NAME [serve args...]: a fresh data dir, an app, the daemon, a preflight.
daemon_up() {
    local name=$1
    shift
    UMG_DATA=$BENCH_TMP/data-$name
    mkdir -p "$UMG_DATA"
    local created=0
    if app_create "$UMG_DATA" 2> "$BENCH_TMP/app-create.err"; then
        created=1
    fi
    daemon_start "$UMG_DATA" "$@"
    note_cmd "$UMG_BIN admin app create --data DATA --org bench --name bench --platform android"
    note_cmd "$UMG_BIN serve --data DATA --listen 127.0.0.1:0 ${UMG_SERVE_ARGS:-}$*"
    if [ "$created" = 0 ]; then
        # The contract lets the CLI work while the daemon runs, with the keys live within 1 s.
        app_create "$UMG_DATA" || { cat "$BENCH_TMP/app-create.err" >&2; bench_die "admin app create failed"; }
        sleep 1.2
    fi
    bench_log "daemon pid $UMG_PID on 127.0.0.1:$UMG_PORT (data $UMG_DATA)"
    wait_http "http://127.0.0.1:$UMG_PORT/readyz" 200 60 || bench_die "daemon /readyz did not answer 200 within 60 s"
    preflight
}

daemon_down() { daemon_stop TERM; }

# After each measured run: a daemon that died is reported (with its stderr kept
# under bench/results/) instead of showing up only as connection errors.
daemon_check() {
    [ -z "${UMG_PID:-}" ] && return 0
    kill -0 "$UMG_PID" 2>/dev/null && return 0
    local rc=0 keep
    { wait "$UMG_PID"; } 2>/dev/null || rc=$?
    mkdir -p "$RESULTS_DIR"
    keep=$RESULTS_DIR/daemon-$1-$(date -u +%Y%m%d-%H%M%S).log
    cp "$UMG_DATA.stderr.log" "$keep" 2>/dev/null
    bench_log "the daemon (pid $UMG_PID) died during '$1', exit status $rc; its stderr: $keep"
    tail -n 15 "$UMG_DATA.stderr.log" >&2 2>/dev/null
    NOTES+=("The daemon died during '$1' (exit status $rc, 128+N = signal N); its stderr is in $keep.")
    bench_forget_pid "$UMG_PID"
    UMG_PID=
    worse 1
    return 1
}

# ------------------------------------------------------------------ (a) single

SINGLE_PEAK=

bench_single() {
    bench_log "== single: POST one event per request, ${WRK_THREADS}t/${WRK_CONNS}c/${WRK_DURATION}, $RUNS runs"
    nginx_start
    local ng=() us=() i ok=1
    if [ "$HAVE_DAEMON" = 1 ]; then
        daemon_up single --set log.fsync=always
    fi
    note_cmd "UMG_BODY_FILE=$(basename "$SINGLE_BODY") UMG_APP_KEY=KEY UMG_IDS=$BENCH_IDS wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION --latency -s bench/wrk/post.lua http://127.0.0.1:PORT/v1/events   # PORT: nginx, then the daemon, alternating"
    # Alternating the two servers run by run spreads slow drifts of the machine over both.
    for i in $(seq 1 "$RUNS"); do
        if run_wrk "http://127.0.0.1:$NGINX_PORT/v1/events" "$SINGLE_BODY" "bench-key"; then
            ng+=("$(kv "$WRK_LINE" rps)")
        else
            ok=0
        fi
        if [ "$HAVE_DAEMON" = 1 ]; then
            if run_wrk "http://127.0.0.1:$UMG_PORT/v1/events" "$SINGLE_BODY" "$UMG_APP_KEY"; then
                us+=("$(kv "$WRK_LINE" rps)")
            else
                ok=0
            fi
            daemon_check single || { ok=0; break; }
        fi
    done
    nginx_stop
    [ "$HAVE_DAEMON" = 1 ] && daemon_down
    local ngm usm
    ngm=$(median "${ng[@]}")
    if [ "$HAVE_DAEMON" = 0 ]; then
        worse 2
        row "single event POST, req/s (fsync=always)" "not run" "$(fmt_int "$ngm") (nginx 204)" "-" ">= 0.70x" "not run"
        return
    fi
    usm=$(median "${us[@]}")
    SINGLE_PEAK=$usm
    if [ "$ok" = 0 ]; then
        worse 1
        row "single event POST, req/s (fsync=always)" "$(fmt_int "$usm")" "$(fmt_int "$ngm") (nginx 204)" "$(fmt_ratio "$usm" "$ngm")" ">= 0.70x" "INVALID (errors)"
        return
    fi
    local r
    r=$(awk -v a="$usm" -v b="$ngm" 'BEGIN { print a / b }')
    verdict ge "$r" 0.7
    row "single event POST, req/s (fsync=always)" "$(fmt_int "$usm")" "$(fmt_int "$ngm") (nginx 204)" \
        "$(fmt_ratio "$usm" "$ngm")" ">= 0.70x" "$V"
}

# ------------------------------------------------------------------ (b) batch

CH=$ROOT_DIR/scripts/clickhouse.sh

ch_query() { curl -sS --fail-with-body "http://127.0.0.1:$CH_HTTP_PORT/" --data-binary "$1"; }

bench_batch_clickhouse() {
    export UMG_CH_DIR=$BENCH_TMP/clickhouse
    local out
    out=$("$CH" start) || bench_die "scripts/clickhouse.sh start failed"
    eval "$out"
    BENCH_CLEANUP_EXTRA="UMG_CH_DIR=$UMG_CH_DIR '$CH' stop >/dev/null"
    local ver
    ver=$(ch_query 'SELECT version()')
    CH_VERSION=$ver
    bench_log "ClickHouse $ver on 127.0.0.1:$CH_TCP_PORT (native) / $CH_HTTP_PORT (http)"
    ch_query 'CREATE DATABASE IF NOT EXISTS bench' || bench_die "CREATE DATABASE failed"
    ch_query "$(cat "$EVENTS_DIR/clickhouse.sql")" || bench_die "CREATE TABLE failed"
    note_cmd "scripts/clickhouse.sh start   # UMG_CH_DIR=TMP/clickhouse; table: bench/gen_events.py clickhouse.sql"
    note_cmd "clickhouse-client --host 127.0.0.1 --port $CH_TCP_PORT --query 'INSERT INTO bench.events FORMAT JSONEachRow' < bulk.jsonl   # $CH_ROWS rows, TRUNCATE before each run"
    note_cmd "curl -sS -T bulk.jsonl 'http://127.0.0.1:$CH_HTTP_PORT/?query=INSERT%20INTO%20bench.events%20FORMAT%20JSONEachRow'"

    local cl=() ht=() i t0 t1 n
    for i in $(seq 1 "$RUNS"); do
        ch_query 'TRUNCATE TABLE bench.events' || bench_die "TRUNCATE failed"
        t0=$(date +%s%N)
        clickhouse-client --host 127.0.0.1 --port "$CH_TCP_PORT" \
            --query 'INSERT INTO bench.events FORMAT JSONEachRow' < "$EVENTS_DIR/bulk.jsonl" ||
            bench_die "clickhouse-client INSERT failed"
        t1=$(date +%s%N)
        n=$(ch_query 'SELECT count() FROM bench.events')
        [ "$n" = "$CH_ROWS" ] || bench_die "ClickHouse holds $n rows, expected $CH_ROWS"
        cl+=("$(awk -v n="$n" -v d="$((t1 - t0))" 'BEGIN { printf "%.0f", n / (d / 1e9) }')")
        bench_log "clickhouse-client bulk INSERT: ${cl[-1]} rows/s"

        ch_query 'TRUNCATE TABLE bench.events' || bench_die "TRUNCATE failed"
        t0=$(date +%s%N)
        curl -sS --fail-with-body -T "$EVENTS_DIR/bulk.jsonl" \
            "http://127.0.0.1:$CH_HTTP_PORT/?query=INSERT%20INTO%20bench.events%20FORMAT%20JSONEachRow" ||
            bench_die "HTTP INSERT failed"
        t1=$(date +%s%N)
        n=$(ch_query 'SELECT count() FROM bench.events')
        [ "$n" = "$CH_ROWS" ] || bench_die "ClickHouse holds $n rows, expected $CH_ROWS"
        ht+=("$(awk -v n="$n" -v d="$((t1 - t0))" 'BEGIN { printf "%.0f", n / (d / 1e9) }')")
        bench_log "HTTP bulk INSERT: ${ht[-1]} rows/s"
    done
    CH_CLIENT=$(median "${cl[@]}")
    CH_HTTP=$(median "${ht[@]}")

    # The daemon's request shape against ClickHouse: 100 rows per HTTP INSERT over
    # keep-alive. Every INSERT makes a part, so this is far below the bulk figure;
    # it is shown for context, the ratio uses the better bulk figure.
    ch_query 'TRUNCATE TABLE bench.events' >/dev/null
    note_cmd "UMG_BODY_FILE=batch.jsonl UMG_CONTENT_TYPE=text/plain wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION --timeout 30s -s bench/wrk/post.lua 'http://127.0.0.1:$CH_HTTP_PORT/?query=INSERT%20INTO%20bench.events%20FORMAT%20JSONEachRow'"
    CH_HTTP100=
    WRK_LINE=
    # --timeout 30s: with 64 concurrent INSERTs single answers take seconds, which
    # wrk's default 2 s timeout would count as errors.
    if UMG_IDS=0 UMG_CONTENT_TYPE=text/plain run_wrk \
        "http://127.0.0.1:$CH_HTTP_PORT/?query=INSERT%20INTO%20bench.events%20FORMAT%20JSONEachRow" \
        "$EVENTS_DIR/batch.jsonl" "" --timeout 30s; then
        CH_HTTP100=$(awk -v r="$(kv "$WRK_LINE" rps)" -v b="$BATCH" 'BEGIN { printf "%.0f", r * b }')
        CH_HTTP100_NOTE=
    elif [ -n "${WRK_LINE:-}" ]; then
        # Only rows of 2xx answers count. Errors here are ClickHouse refusing small
        # INSERTs ("Too many parts" once merges fall behind): part of what is shown.
        CH_HTTP100=$(awk -v n="$(kv "$WRK_LINE" ok)" -v d="$(kv "$WRK_LINE" duration_us)" -v b="$BATCH" \
            'BEGIN { printf "%.0f", n * b / (d / 1e6) }')
        CH_HTTP100_NOTE=" (2xx only; answers: $(kv "$WRK_LINE" statuses))"
    fi
    # ClickHouse merges parts in the background for a while: stop it so it does
    # not take CPU from the daemon's run.
    UMG_CH_DIR=$UMG_CH_DIR "$CH" stop >/dev/null
    BENCH_CLEANUP_EXTRA=
}

bench_batch() {
    bench_log "== batch: $BATCH events per request, $RUNS runs"
    bench_batch_clickhouse
    local base=$CH_CLIENT base_name="clickhouse-client bulk"
    if awk -v a="$CH_HTTP" -v b="$CH_CLIENT" 'BEGIN { exit !(a > b) }'; then
        base=$CH_HTTP
        base_name="HTTP bulk"
    fi
    local basecell
    basecell="$(fmt_int "$base") (ClickHouse $CH_VERSION, $base_name)"
    if [ "$HAVE_DAEMON" = 0 ]; then
        worse 2
        row "batch ingest, events/s ($BATCH/request, fsync=always)" "not run" "$basecell" "-" ">= 1,000,000/s and >= 3.00x" "not run"
        [ -n "$CH_HTTP100" ] && row "  context: ClickHouse, $BATCH rows per HTTP INSERT" "-" "$(fmt_int "$CH_HTTP100")$CH_HTTP100_NOTE" "-" "-" "-"
        return
    fi
    daemon_up batch --set log.fsync=always
    note_cmd "UMG_BODY_FILE=$(basename "$BATCH_BODY") UMG_APP_KEY=KEY UMG_IDS=$BENCH_IDS UMG_COUNT_ACCEPTED=1 wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION --latency -s bench/wrk/post.lua http://127.0.0.1:PORT/v1/events"
    local us=() i ok=1 acc req secs
    for i in $(seq 1 "$RUNS"); do
        if UMG_COUNT_ACCEPTED=1 run_wrk "http://127.0.0.1:$UMG_PORT/v1/events" "$BATCH_BODY" "$UMG_APP_KEY"; then
            acc=$(kv "$WRK_LINE" accepted)
            req=$(kv "$WRK_LINE" ok)
            secs=$(awk -v d="$(kv "$WRK_LINE" duration_us)" 'BEGIN { print d / 1e6 }')
            if [ "$acc" != "$((req * BATCH))" ]; then
                bench_log "INVALID run: $acc events accepted in $req answers of $BATCH events"
                ok=0
            fi
            us+=("$(awk -v a="$acc" -v s="$secs" 'BEGIN { printf "%.0f", a / s }')")
            bench_log "daemon: ${us[-1]} events/s"
        else
            ok=0
        fi
        daemon_check batch || { ok=0; break; }
    done
    daemon_down
    local usm r
    usm=$(median "${us[@]}")
    r=$(awk -v a="$usm" -v b="$base" 'BEGIN { print a / b }')
    local v
    if [ "$ok" = 0 ]; then
        worse 1
        v="INVALID (errors)"
    else
        verdict eval "ge $usm 1000000 && ge $r 3"
        v=$V
    fi
    row "batch ingest, events/s ($BATCH/request, fsync=always)" "$(fmt_int "$usm")" "$basecell" \
        "$(fmt_ratio "$usm" "$base")" ">= 1,000,000/s and >= 3.00x" "$v"
    [ -n "$CH_HTTP100" ] && row "  context: ClickHouse, $BATCH rows per HTTP INSERT" "-" "$(fmt_int "$CH_HTTP100")$CH_HTTP100_NOTE" \
        "$(fmt_ratio "$usm" "$CH_HTTP100")" "-" "-"
    return 0
}

# ------------------------------------------------------------------ (c) latency

run_loadgen() {
    # run_loadgen URL BODY KEY RATE  -> LG_LINE
    local url=$1 body=$2 key=$3 rate=$4 out rc=0
    out=$("$LOADGEN" -u "$url" -b "$body" -H "X-App-Key: $key" -R "$rate" -d "$LAT_SECONDS" -w 2 \
        -c "$LAT_CONNS" -t "$LAT_THREADS") || rc=$?
    LG_LINE=$(printf '%s\n' "$out" | grep '^UMG_LOADGEN' | tail -n 1)
    bench_log "loadgen @${rate}/s: p50 $(kv "$LG_LINE" p50_us) us, p99 $(kv "$LG_LINE" p99_us) us, statuses $(kv "$LG_LINE" statuses), errors $(kv "$LG_LINE" errors), unfinished $(kv "$LG_LINE" unfinished)"
    return $rc
}

bench_latency() {
    bench_log "== latency: open loop at half the peak, ${LAT_SECONDS}s, $RUNS runs"
    loadgen_build
    if [ "$HAVE_DAEMON" = 0 ]; then
        worse 2
        row "p99 latency, 1 event at half peak (fsync=always)" "not run" "-" "-" "< 5 ms" "not run"
        return
    fi
    daemon_up latency --set log.fsync=always
    local peak=${SINGLE_PEAK:-}
    if [ -z "$peak" ]; then
        run_wrk "http://127.0.0.1:$UMG_PORT/v1/events" "$SINGLE_BODY" "$UMG_APP_KEY" ||
            bench_die "the peak run had errors"
        peak=$(kv "$WRK_LINE" rps)
    fi
    local rate=${BENCH_LAT_RATE:-$(awk -v p="$peak" 'BEGIN { printf "%.0f", p / 2 }')}
    note_cmd "cc -O2 -pthread -o umg-loadgen bench/loadgen.c"
    note_cmd "umg-loadgen -u http://127.0.0.1:PORT/v1/events -b $(basename "$EVENTS_DIR/single.json") -H 'X-App-Key: KEY' -R $rate -d $LAT_SECONDS -w 2 -c $LAT_CONNS -t $LAT_THREADS   # PORT: the daemon, then nginx"
    local us=() ng=() i ok=1
    for i in $(seq 1 "$RUNS"); do
        if run_loadgen "http://127.0.0.1:$UMG_PORT/v1/events" "$EVENTS_DIR/single.json" "$UMG_APP_KEY" "$rate"; then
            us+=("$(kv "$LG_LINE" p99_us)")
        else
            ok=0
        fi
        daemon_check latency || { ok=0; break; }
    done
    daemon_down
    nginx_start
    for i in $(seq 1 "$RUNS"); do
        if run_loadgen "http://127.0.0.1:$NGINX_PORT/v1/events" "$EVENTS_DIR/single.json" "bench-key" "$rate"; then
            ng+=("$(kv "$LG_LINE" p99_us)")
        fi
    done
    nginx_stop
    local usm ngm
    usm=$(median "${us[@]}")
    ngm=$(median "${ng[@]}")
    local ms ngms v
    ms=$(awk -v u="$usm" 'BEGIN { printf "%.2f ms", u / 1000 }')
    ngms=$(awk -v u="$ngm" 'BEGIN { printf "%.2f ms (nginx 204)", u / 1000 }')
    if [ "$ok" = 0 ]; then
        worse 1
        v="INVALID (errors)"
    else
        verdict lt "$usm" 5000
        v=$V
    fi
    row "p99 latency, 1 event at $(fmt_int "$rate") req/s = half peak (fsync=always)" "$ms" "$ngms" \
        "$(fmt_ratio "$usm" "$ngm")" "< 5 ms" "$v"
}

# ------------------------------------------------------------------ (d) memory

# VmRSS, RssAnon, RssFile (kB). RssFile is pages of mapped files (the attribution store's LMDB map grows with
# the data it holds, a timeline step per event, and the kernel can drop those pages under pressure); RssAnon is
# the daemon's own memory, where a leak or an unbounded buffer shows: the target is judged on it.
rss_kb() { awk '/^VmRSS:/ { r = $2 } /^RssAnon:/ { a = $2 } /^RssFile:/ { f = $2 } END { print r "\t" a "\t" f }' "/proc/$1/status" 2>/dev/null; }

bench_memory() {
    bench_log "== memory: ${MEM_SECONDS}s of full load ($MEM_BODY bodies), VmRSS every ${MEM_INTERVAL}s"
    if [ "$HAVE_DAEMON" = 0 ]; then
        worse 2
        row "RSS growth under full load, ${MEM_SECONDS}s" "not run" "-" "-" "<= 1.10x" "not run"
        return
    fi
    local body=$SINGLE_BODY
    [ "$MEM_BODY" = batch ] && body=$BATCH_BODY
    local free_kb
    free_kb=$(df -Pk "$BENCH_TMP" | awk 'NR == 2 { print $4 }')
    bench_log "disk free under $BENCH_TMP: $((free_kb / 1024 / 1024)) GiB (the log grows with every event)"
    # The dedupe set grows with every new event_id until dedupe.max_ids (by design: it
    # remembers the horizon's ids). A small bound makes it reach its plateau during the
    # warm-up, so what is measured is everything else: leaks, buffers, fragmentation.
    daemon_up memory --set log.fsync=always --set dedupe.max_ids="$MEM_DEDUPE_IDS"
    local samples="$BENCH_TMP/rss.tsv" wrk_out="$BENCH_TMP/memory-wrk.out"
    note_cmd "UMG_BODY_FILE=$(basename "$body") UMG_APP_KEY=KEY wrk -t$WRK_THREADS -c$WRK_CONNS -d${MEM_SECONDS}s -s bench/wrk/post.lua http://127.0.0.1:PORT/v1/events   # VmRSS from /proc/PID/status every ${MEM_INTERVAL}s"
    UMG_BODY_FILE=$body UMG_APP_KEY=$UMG_APP_KEY UMG_WRK_THREADS=$WRK_THREADS \
        wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"${MEM_SECONDS}s" -s "$BENCH_DIR/wrk/post.lua" \
        "http://127.0.0.1:$UMG_PORT/v1/events" > "$wrk_out" 2>&1 &
    local wpid=$!
    BENCH_PIDS+=("$wpid")
    local t0 t
    t0=$(date +%s)
    printf 'seconds\trss_kb\tanon_kb\tfile_kb\n' > "$samples"
    while kill -0 "$wpid" 2>/dev/null; do
        t=$(( $(date +%s) - t0 ))
        printf '%s\t%s\n' "$t" "$(rss_kb "$UMG_PID")" >> "$samples"
        sleep "$MEM_INTERVAL"
    done
    wait "$wpid"
    bench_forget_pid "$wpid"
    printf '%s\t%s\n' "$(( $(date +%s) - t0 ))" "$(rss_kb "$UMG_PID")" >> "$samples"
    local died=0
    daemon_check memory || died=1
    daemon_down
    local line
    line=$(grep '^UMG_WRK ' "$wrk_out" | tail -n 1)
    cat "$wrk_out" >&2
    # Warm-up: the first 20 % of the run (at least one interval), while buffers,
    # connections and caches reach their working size.
    local warm=$(( MEM_SECONDS / 5 ))
    [ "$warm" -lt "$MEM_INTERVAL" ] && warm=$MEM_INTERVAL
    local stats
    stats=$(awk -v w="$warm" 'NR > 1 && $3 != "" {
            if ($1 >= w && base == "") base = $3
            if (base != "" && $3 > max) max = $3
        } END { print base + 0, max + 0 }' "$samples")
    local base=${stats% *} max=${stats#* }
    bench_log "samples (s, VmRSS, RssAnon, RssFile kB): $(tail -n +2 "$samples" | tr '\t\n' ' ,')"
    MEM_SAMPLES=$(tail -n +2 "$samples" | awk '{ printf "%s%ss %.1f MB (anon %.1f, file %.1f)", (NR > 1 ? ", " : ""), $1, $2 / 1024, $3 / 1024, $4 / 1024 }')
    local v
    if [ "$died" = 1 ] || [ -z "$line" ] || ! wrk_valid "$line" || [ "$base" = 0 ]; then
        worse 1
        v="INVALID (errors)"
    else
        verdict awk -v a="$max" -v b="$base" 'BEGIN { exit !(a <= b * 1.10) }'
        v=$V
    fi
    row "RssAnon under full load, max after warm-up (${MEM_SECONDS}s, dedupe.max_ids=$MEM_DEDUPE_IDS, $(kv "$line" rps) req/s)" \
        "$(awk -v k="$max" 'BEGIN { printf "%.1f MB", k / 1024 }')" \
        "$(awk -v k="$base" -v w="$warm" 'BEGIN { printf "%.1f MB at %ds", k / 1024, w }')" \
        "$(fmt_ratio "$max" "$base")" "<= 1.10x" "$v"
    local per=1 events
    [ "$MEM_BODY" = batch ] && per=$BATCH
    events=$(( $(kv "$line" ok) * per ))
    NOTES+=("Memory run: $(fmt_int "$events") events stored in ${MEM_SECONDS}s; VmRSS $MEM_SAMPLES. Growth of RssAnon that tracks the event count (e.g. the dedupe set, bounded by dedupe.max_ids) shows as $(awk -v a="$max" -v b="$base" -v n="$events" 'BEGIN { printf "%.1f", n ? (a - b) / 1024 / (n / 1e6) : 0 }') MB per million events here; RssFile grows with the store's mapped pages.")
}

# ------------------------------------------------------------------ (e) recovery

bench_recovery() {
    bench_log "== recovery: $REC_EVENTS events, kill -9, restart, time to /readyz 200; $RUNS runs"
    loadgen_build
    if [ "$HAVE_DAEMON" = 0 ]; then
        worse 2
        row "recovery to /readyz after kill -9" "not run" "-" "-" "< 5 s at 10M events" "not run"
        return
    fi
    local fill=$EVENTS_DIR/fill.json per reqs
    per=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["events"]))' "$fill")
    reqs=$(( (REC_EVENTS + per - 1) / per ))
    daemon_up recovery --set log.fsync=never
    note_cmd "umg-loadgen -u http://127.0.0.1:PORT/v1/events -b fill.json -H 'X-App-Key: KEY' -n $reqs -c 8 -t 2 -a   # $per events per request, daemon with --set log.fsync=never"
    local out t0 t1
    t0=$(date +%s%N)
    out=$("$LOADGEN" -u "http://127.0.0.1:$UMG_PORT/v1/events" -b "$fill" -H "X-App-Key: $UMG_APP_KEY" \
        -n "$reqs" -c 8 -t 2 -a) || { printf '%s\n' "$out" >&2; bench_die "filling the data dir failed"; }
    t1=$(date +%s%N)
    local acc
    acc=$(kv "$out" accepted)
    bench_log "filled: $acc events accepted in $(( (t1 - t0) / 1000000 )) ms"
    [ "$acc" -ge "$REC_EVENTS" ] || bench_die "only $acc of $((reqs * per)) events were accepted"
    local stored=$(( acc + 1 + BATCH ))  # plus the preflight's events
    # With fsync=never accepted events may still sit in the daemon's queue; a clean
    # stop writes them, so the data dir really holds all of them before the first
    # kill -9, and a restart to /readyz makes sure it reads back.
    daemon_stop TERM
    daemon_start "$UMG_DATA" --set log.fsync=always
    wait_http "http://127.0.0.1:$UMG_PORT/readyz" 200 600 || bench_die "/readyz did not answer 200 within 600 s"
    # A stored event is at least as long as the JSON it was sent as (the daemon adds
    # event_id, app_id, received_at, ip); much less per event means events were
    # lost or removed, and the restart time would flatter. 0.8: slack for encodings.
    local size lost=0 min_per
    size=$(du -sk "$UMG_DATA" | awk '{ print $1 }')
    min_per=$(( $(stat -c %s "$fill") / per * 8 / 10 ))
    if [ "$((size * 1024 / stored))" -lt "$min_per" ]; then
        lost=1
        NOTES+=("INVALID recovery: the data dir holds $((size / 1024)) MB, $((size * 1024 / stored)) bytes per accepted event (sent: $(( $(stat -c %s "$fill") / per ))); events were not all kept (see the daemon's stderr, BENCH_KEEP_TMP=1).")
    fi
    local times=() i ready_ms
    note_cmd "kill -9 PID; $UMG_BIN serve --data DATA --listen 127.0.0.1:0 ${UMG_SERVE_ARGS:-}--set log.fsync=always; poll GET /readyz every 10 ms until 200"
    for i in $(seq 1 "$RUNS"); do
        daemon_stop KILL
        t0=$(date +%s%N)
        daemon_start "$UMG_DATA" --set log.fsync=always
        wait_http "http://127.0.0.1:$UMG_PORT/readyz" 200 600 || bench_die "/readyz did not answer 200 within 600 s"
        t1=$(date +%s%N)
        ready_ms=$(( (t1 - t0) / 1000000 ))
        times+=("$ready_ms")
        bench_log "restart $i: /readyz 200 after $ready_ms ms"
    done
    daemon_down
    # The floor: reading every file of the data dir once, from the page cache as the
    # restart found it. Recovery cannot be faster than looking at its data once.
    note_cmd "find DATA -type f -exec cat {} + > /dev/null   # the baseline: one read of the data dir"
    local rd=()
    for i in $(seq 1 "$RUNS"); do
        t0=$(date +%s%N)
        find "$UMG_DATA" -type f -exec cat {} + > /dev/null
        t1=$(date +%s%N)
        rd+=("$(( (t1 - t0) / 1000000 ))")
    done
    local med rdm proj v label
    med=$(median "${times[@]}")
    rdm=$(median "${rd[@]}")
    proj=$(awk -v m="$med" -v n="$stored" 'BEGIN { printf "%.0f", m * 10000000 / n }')
    label="recovery to /readyz after kill -9, $(fmt_int "$stored") events, $((size / 1024)) MB"
    if [ "$stored" -lt 10000000 ]; then
        label="$label (linear projection to 10M: $(awk -v p="$proj" 'BEGIN { printf "%.2f s", p / 1000 }'))"
        verdict lt "$proj" 5000
    else
        verdict lt "$med" 5000
    fi
    v=$V
    if [ "$lost" = 1 ]; then
        worse 1
        v="INVALID (data lost)"
    fi
    row "$label" "$(awk -v m="$med" 'BEGIN { printf "%.2f s", m / 1000 }')" \
        "$(awk -v m="$rdm" 'BEGIN { printf "%.2f s (read data dir once)", m / 1000 }')" \
        "$(fmt_ratio "$med" "$rdm")" "< 5 s at 10M events" "$v"
}

# ------------------------------------------------------------------ report

machine_info() {
    local cpu
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    echo "- machine: $cpu, $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo) RAM, kernel $(uname -r), $(. /etc/os-release && echo "$PRETTY_NAME")"
    echo "- disk under the data dirs: $(df -PT "$BENCH_TMP" | awk 'NR == 2 { print $2 " on " $1 }')"
    echo "- tools: $(wrk -v 2>&1 | head -n 1 | awk '{ print $1, $2 }'), nginx $(nginx_version)${CH_VERSION:+, ClickHouse $CH_VERSION}, load generator and servers share all cores (nothing pinned)"
    echo "- daemon: $UMG_BIN $([ -x "$UMG_BIN" ] && "$UMG_BIN" --version 2>/dev/null | head -n 1)"
    echo "- source: $(git -C "$ROOT_DIR" rev-parse --short HEAD 2>/dev/null || echo 'no commit')$(git -C "$ROOT_DIR" status --porcelain 2>/dev/null | grep -q . && echo ' (work tree modified)')"
    echo "- runs per figure: $RUNS (median); wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION; events: seed 42, ts as $TS_FORMAT, event ids $([ "$BENCH_IDS" = 1 ] && echo 'sent by the client' || echo 'made by the daemon')"
}

report() {
    local out
    out=$(
        echo "## Ingest benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
        echo
        echo "Command: \`$INVOCATION\`"
        echo
        machine_info
        echo
        echo "| metric | ours | baseline | ratio | target | pass/fail |"
        echo "| --- | --- | --- | --- | --- | --- |"
        local r
        for r in "${ROWS[@]}"; do
            echo "| ${r//|/ | } |"
        done
        if [ "${#NOTES[@]}" -gt 0 ]; then
            echo
            for r in "${NOTES[@]}"; do echo "- $r"; done
        fi
        echo
        echo "Commands (PORT, KEY, DATA, TMP are filled in by bench/ingest.sh; paths of bodies are under its temp dir):"
        echo
        echo '```'
        for r in "${COMMANDS[@]}"; do echo "$r"; done
        echo '```'
    )
    mkdir -p "$RESULTS_DIR"
    printf '%s\n' "$out" > "$RESULTS_DIR/latest.md"
    cp "$RESULTS_DIR/latest.md" "$RESULTS_DIR/ingest-$(date -u +%Y%m%d-%H%M%S).md"
    echo
    printf '%s\n' "$out"
    echo
    echo "(written to $RESULTS_DIR/latest.md)"
}

# ------------------------------------------------------------------ main

INVOCATION="bench/ingest.sh $*"
for v in BENCH_RUNS WRK_THREADS WRK_CONNS WRK_DURATION BENCH_IDS BENCH_CH_ROWS BENCH_LAT_SECONDS \
    BENCH_LAT_RATE BENCH_MEM_SECONDS BENCH_MEM_BODY BENCH_MEM_DEDUPE_IDS BENCH_RECOVERY_EVENTS UMG_SERVE_ARGS; do
    [ -n "${!v:-}" ] && INVOCATION="$v=${!v} $INVOCATION"
done
WHAT=("$@")
[ "${#WHAT[@]}" -eq 0 ] && WHAT=(all)
if [ "${WHAT[0]}" = all ]; then
    WHAT=(single batch latency memory recovery)
fi
for w in "${WHAT[@]}"; do
    case "$w" in
    single | batch | latency | memory | recovery) ;;
    -h | --help) sed -n '2,40p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown benchmark '$w' (single|batch|latency|memory|recovery|all)" >&2; exit 2 ;;
    esac
done

bench_init
if [ "$HAVE_DAEMON" = 0 ]; then
    bench_log "WARNING: $UMG_BIN is missing: only the baselines are measured"
    NOTES+=("$UMG_BIN was not built: only the baselines were measured.")
fi
GEN_BULK=0
case " ${WHAT[*]} " in *" batch "*) GEN_BULK=$CH_ROWS ;; esac
gen_events "$GEN_BULK"

for w in "${WHAT[@]}"; do
    "bench_$w"
done
report
exit "$STATUS"
