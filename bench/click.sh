#!/usr/bin/env bash
# bench/click.sh - click links: redirects/s of `GET /c/{app_id}?...` (each click
# durable under log.fsync=always before its 302) against nginx answering
# `return 302` to the same requests, wrk in the same run on the same cores
# (issue #3 target: >= 0.8x). Runs alternate nginx / daemon; medians of
# BENCH_RUNS (default 3). Settings: WRK_THREADS=2 WRK_CONNS=64 WRK_DURATION=10s,
# UMG_BIN, UMG_SERVE_ARGS, BENCH_TMPDIR, BENCH_RESULTS (see bench/ingest.sh).
#
# Exit status: 0 target met, 1 missed or a run invalid, 2 not measurable.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=bench/lib.sh
. "$HERE/lib.sh"
cd "$ROOT_DIR" || exit 2

RUNS=${BENCH_RUNS:-3}
RESULTS_DIR=${BENCH_RESULTS:-$ROOT_DIR/bench/results}
STORE="https://play.google.com/store/apps/details?id=com.example.bench"
QUERY="source=bench_net&campaign=black_friday&adset=lookalike_1&ad=video_3&site=com.example.news&gaid=38400000-8cf0-11bd-b23e-10b96e40000d&sub1=creative_a"
UA="Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0 Mobile Safari/537.36"

bench_init
[ -x "$UMG_BIN" ] || { bench_log "$UMG_BIN not built"; exit 2; }
[ -x "$NGINX_BIN" ] || { bench_log "nginx not found (apt-get install nginx-light)"; exit 2; }

# nginx: the same redirect from a config of its own (bench/nginx.conf answers 204).
ndir=$BENCH_TMP/nginx302
mkdir -p "$ndir"
NPORT=$(free_port)
cat > "$ndir/nginx.conf" <<CONF
daemon off;
master_process on;
worker_processes 2;
pid $ndir/nginx.pid;
error_log $ndir/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    server_tokens off;
    keepalive_requests 1000000000;
    keepalive_timeout 60s;
    server {
        listen 127.0.0.1:$NPORT reuseport backlog=4096;
        # the Location a click gets: the store URL with a click id as its Play referrer
        location / { return 302 "$STORE&referrer=click_id%3D0123456789abcdef0123456789abcdef"; }
    }
}
CONF
"$NGINX_BIN" -p "$ndir" -c "$ndir/nginx.conf" -e "$ndir/error.log" > "$ndir/stdout.log" 2>&1 &
NPID=$!
BENCH_PIDS+=("$NPID")
wait_http "http://127.0.0.1:$NPORT/c/x" 302 10 || bench_die "nginx did not start"

DATA=$BENCH_TMP/data
mkdir -p "$DATA"
out=$("$UMG_BIN" admin app create --data "$DATA" --org bench --name bench --platform android --store-url "$STORE") ||
    bench_die "app create failed"
APP=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["app_id"])')
daemon_start "$DATA" --set log.fsync=always
wait_http "http://127.0.0.1:$UMG_PORT/readyz" 200 30 || bench_die "daemon not ready"
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$UMG_PORT/c/$APP?$QUERY")
[ "$code" = 302 ] || bench_die "a click answered $code, not 302"

# One wrk run; prints requests/s, fails on socket errors or answers other than 302.
wrk_302() {
    local url=$1 out rps
    out=$(wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$WRK_DURATION" -H "User-Agent: $UA" "$url" 2>&1) ||
        { printf '%s\n' "$out" >&2; return 1; }
    if printf '%s\n' "$out" | grep -q 'Socket errors\|Non-2xx or 3xx'; then
        printf '%s\n' "$out" >&2
        bench_log "INVALID run (errors or answers other than 2xx/3xx)"
        return 1
    fi
    rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec:/ { print $2 }')
    bench_log "wrk $url: $rps req/s"
    printf '%s\n' "$rps"
}

ngx=() ours=()
for i in $(seq 1 "$RUNS"); do
    bench_log "run $i/$RUNS"
    r=$(wrk_302 "http://127.0.0.1:$NPORT/c/$APP?$QUERY") || exit 1
    ngx+=("$r")
    r=$(wrk_302 "http://127.0.0.1:$UMG_PORT/c/$APP?$QUERY") || exit 1
    ours+=("$r")
done
stored=$(curl -s "http://127.0.0.1:$UMG_PORT/metrics" | awk '/^umg_touches_accepted_total\{type="click"\}/ { print $2 }')
m_ngx=$(median "${ngx[@]}")
m_ours=$(median "${ours[@]}")
ratio=$(awk -v a="$m_ours" -v b="$m_ngx" 'BEGIN { printf "%.2f", a / b }')
pass=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? "PASS" : "FAIL" }')

mkdir -p "$RESULTS_DIR"
{
    echo "## Click-link benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo
    echo "Command: \`BENCH_RUNS=$RUNS WRK_DURATION=$WRK_DURATION bench/click.sh\` (wrk -t$WRK_THREADS -c$WRK_CONNS; daemon with log.fsync=always; clicks stored: ${stored:-?})"
    echo
    echo "| metric | ours | baseline | ratio | target | pass/fail |"
    echo "| --- | --- | --- | --- | --- | --- |"
    printf '| click link GET /c/{app} -> 302, req/s | %.0f | %.0f (nginx return 302) | %sx | >= 0.80x | %s |\n' \
        "$m_ours" "$m_ngx" "$ratio" "$pass"
    echo
    echo "runs (nginx / ours): ${ngx[*]} / ${ours[*]}"
} | tee "$RESULTS_DIR/click-latest.md"
[ "$pass" = PASS ]
