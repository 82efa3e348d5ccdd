# bench/lib.sh - helpers shared by the benchmark scripts (sourced, not run).
# shellcheck shell=bash
#
# Every process started here is recorded in BENCH_PIDS and stopped by
# bench_cleanup, which the sourcing script installs as its EXIT trap
# (bench_init does that). Only 127.0.0.1 is ever listened on or targeted.
#
# Provides:
#   bench_init                  temp dir ($BENCH_TMP), traps, tool checks
#   bench_log MSG...            a timestamped line on stderr
#   free_port [FROM]            a free TCP port on 127.0.0.1
#   nginx_start / nginx_stop    the `return 204` baseline ($NGINX_PORT, $NGINX_PID)
#   daemon_start DATA [ARGS..]  build/unmogrowp serve; sets $UMG_PORT, $UMG_PID
#   daemon_stop [SIGNAL]        stops it (TERM by default; KILL for crash tests)
#   app_create DATA             sets $UMG_APP_KEY (and $UMG_APP_SECRET, $UMG_APP_ID)
#   wait_http URL CODE SECS     polls until URL answers CODE
#   run_wrk URL BODY [KEY]      wrk with wrk/post.lua; sets $WRK_LINE (the UMG_WRK line)
#   kv LINE KEY                 the value of KEY=VALUE in a result line
#   median N...                 the median of numbers
#   loadgen_build               compiles bench/loadgen.c to $LOADGEN

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT_DIR=$(cd "$BENCH_DIR/.." && pwd)
UMG_BIN=${UMG_BIN:-$ROOT_DIR/build/unmogrowp}
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
WRK_DURATION=${WRK_DURATION:-10s}
BENCH_PIDS=()

bench_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
bench_die() { bench_log "ERROR: $*"; exit 1; }

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${BENCH_PIDS[@]}"; do
        local _
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
        { wait "$pid"; } 2>/dev/null || true
    done
    BENCH_PIDS=()
    if [ -n "${BENCH_CLEANUP_EXTRA:-}" ]; then
        eval "$BENCH_CLEANUP_EXTRA" || true
    fi
    if [ -n "${BENCH_TMP:-}" ] && [ -d "$BENCH_TMP" ] && [ "${BENCH_KEEP_TMP:-0}" != 1 ]; then
        rm -rf "$BENCH_TMP"
    fi
}

bench_forget_pid() {
    local keep=() p
    for p in "${BENCH_PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    BENCH_PIDS=("${keep[@]}")
}

bench_init() {
    local base=${BENCH_TMPDIR:-/var/tmp}
    mkdir -p "$base"
    BENCH_TMP=$(mktemp -d "$base/umg-bench.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    command -v wrk >/dev/null || bench_die "wrk not found (apt-get install wrk)"
    command -v curl >/dev/null || bench_die "curl not found"
    command -v python3 >/dev/null || bench_die "python3 not found"
    if [ "$(stat -f -c %T "$BENCH_TMP")" = tmpfs ]; then
        bench_log "WARNING: $BENCH_TMP is on tmpfs: fsync costs nothing there; set BENCH_TMPDIR to a disk"
    fi
}

# shellcheck disable=SC2120  # FROM is optional
free_port() {
    python3 - "${1:-0}" <<'EOF'
import socket, sys
start = int(sys.argv[1])
for p in ([0] if start == 0 else range(start, 65535)):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        s.close()
        continue
    print(s.getsockname()[1])
    s.close()
    break
EOF
}

wait_http() {
    local url=$1 want=$2 secs=$3 code deadline
    deadline=$(($(date +%s%N) + secs * 1000000000))
    while :; do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" 2>/dev/null || true)
        [ "$code" = "$want" ] && return 0
        [ "$(date +%s%N)" -ge "$deadline" ] && return 1
        sleep 0.02
    done
}

nginx_start() {
    [ -x "$NGINX_BIN" ] || bench_die "nginx not found at $NGINX_BIN (apt-get install nginx-light)"
    local dir=$BENCH_TMP/nginx
    mkdir -p "$dir"
    NGINX_PORT=$(free_port)
    sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$NGINX_PORT|g" "$BENCH_DIR/nginx.conf" > "$dir/nginx.conf"
    # -e: nginx 1.19.5+ opens its default error log before reading the config; point it here.
    "$NGINX_BIN" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" > "$dir/stdout.log" 2>&1 &
    NGINX_PID=$!
    BENCH_PIDS+=("$NGINX_PID")
    wait_http "http://127.0.0.1:$NGINX_PORT/" 204 10 ||
        { cat "$dir/error.log" "$dir/stdout.log" >&2; bench_die "nginx did not start"; }
    bench_log "nginx $(nginx_version) on 127.0.0.1:$NGINX_PORT (pid $NGINX_PID)"
}

nginx_version() { "$NGINX_BIN" -v 2>&1 | sed 's/.*nginx\///'; }

nginx_stop() {
    [ -n "${NGINX_PID:-}" ] || return 0
    # SIGQUIT: graceful shutdown of master and workers.
    kill -QUIT "$NGINX_PID" 2>/dev/null || true
    local _
    for _ in $(seq 1 50); do
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$NGINX_PID" 2>/dev/null && kill -KILL "$NGINX_PID" 2>/dev/null
    { wait "$NGINX_PID"; } 2>/dev/null || true
    bench_forget_pid "$NGINX_PID"
    NGINX_PID=
}

app_create() {
    local data=$1 out
    out=$("$UMG_BIN" admin app create --data "$data" --org bench --name bench --platform android) ||
        return 1
    UMG_APP_KEY=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["app_key"])') ||
        return 1
    UMG_APP_SECRET=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["app_secret"])')
    UMG_APP_ID=$(printf '%s' "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["app_id"])')
    export UMG_APP_KEY UMG_APP_SECRET UMG_APP_ID
}

# daemon_start DATA [EXTRA SERVE ARGS...]
# Waits for DATA/daemon.addr and then for /healthz; the caller waits for
# /readyz when it matters (recovery measures exactly that).
daemon_start() {
    local data=$1
    shift
    [ -x "$UMG_BIN" ] || bench_die "$UMG_BIN not found: build it first (meson setup build && ninja -C build)"
    mkdir -p "$data"
    rm -f "$data/daemon.addr"
    # shellcheck disable=SC2086
    "$UMG_BIN" serve --data "$data" --listen 127.0.0.1:0 ${UMG_SERVE_ARGS:-} "$@" \
        2>> "$data.stderr.log" &
    UMG_PID=$!
    BENCH_PIDS+=("$UMG_PID")
    local _
    for _ in $(seq 1 1000); do
        [ -s "$data/daemon.addr" ] && grep -q ':[0-9]' "$data/daemon.addr" && break
        kill -0 "$UMG_PID" 2>/dev/null ||
            { tail -n 20 "$data.stderr.log" >&2; bench_die "daemon exited during start-up"; }
        sleep 0.01
    done
    [ -s "$data/daemon.addr" ] || bench_die "daemon wrote no $data/daemon.addr within 10 s"
    local addr
    addr=$(tr -d '\n' < "$data/daemon.addr")
    UMG_PORT=${addr##*:}
    wait_http "http://127.0.0.1:$UMG_PORT/healthz" 200 10 || bench_die "daemon /healthz did not answer 200"
}

daemon_stop() {
    local sig=${1:-TERM}
    [ -n "${UMG_PID:-}" ] || return 0
    kill -"$sig" "$UMG_PID" 2>/dev/null || true
    local _
    # bash prints "Killed" for the job when it reaps it, which may happen during
    # this loop: its stderr is dropped.
    {
        for _ in $(seq 1 300); do
            kill -0 "$UMG_PID" || break
            sleep 0.1
        done
    } 2>/dev/null
    if kill -0 "$UMG_PID" 2>/dev/null; then
        bench_log "daemon ignored SIG$sig for 30 s; killing it"
        kill -KILL "$UMG_PID" 2>/dev/null || true
    fi
    # The braces keep bash's "Killed" job notice off the terminal.
    { wait "$UMG_PID"; } 2>/dev/null || true
    bench_forget_pid "$UMG_PID"
    UMG_PID=
}

# run_wrk URL BODYFILE [APP_KEY] [extra wrk args...]
# Runs wrk with post.lua; fails (returns 1) when any response is non-2xx or any
# socket error happened. The full wrk output goes to stderr, WRK_LINE keeps the result.
run_wrk() {
    local url=$1 body=$2 key=${3:-}
    shift 3 || shift $#
    local out
    out=$(UMG_BODY_FILE=$body UMG_APP_KEY=$key UMG_WRK_THREADS=$WRK_THREADS \
        wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$WRK_DURATION" --latency -s "$BENCH_DIR/wrk/post.lua" \
        "$@" "$url" 2>&1) || { printf '%s\n' "$out" >&2; return 1; }
    WRK_LINE=$(printf '%s\n' "$out" | grep '^UMG_WRK ' | tail -n 1)
    [ -n "$WRK_LINE" ] || { printf '%s\n' "$out" >&2; bench_log "wrk printed no result"; return 1; }
    bench_log "wrk $(kv "$WRK_LINE" rps) req/s, statuses $(kv "$WRK_LINE" statuses), p99 $(kv "$WRK_LINE" p99_us) us"
    wrk_valid "$WRK_LINE"
}

# A result line is valid when every answer was 2xx and no socket error happened.
wrk_valid() {
    local k
    for k in non2xx errors_connect errors_read errors_write errors_timeout; do
        if [ "$(kv "$1" $k)" != 0 ]; then
            bench_log "INVALID run: $k=$(kv "$1" $k) ($1)"
            return 1
        fi
    done
    [ "$(kv "$1" ok)" -gt 0 ] || { bench_log "INVALID run: no 2xx answer"; return 1; }
}

kv() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }

median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

loadgen_build() {
    LOADGEN=$BENCH_TMP/umg-loadgen
    [ -x "$LOADGEN" ] && return 0
    local cc=${CC:-cc}
    "$cc" -O2 -pthread -o "$LOADGEN" "$BENCH_DIR/loadgen.c" || bench_die "cannot build bench/loadgen.c"
}
