#!/usr/bin/env bash
# scripts/clickhouse.sh - a private ClickHouse server for benchmarks and tests.
#
#   scripts/clickhouse.sh start    install if missing, start on loopback, wait, print ports
#   scripts/clickhouse.sh stop     stop it (SIGTERM, then SIGKILL after 20 s) and keep its data
#   scripts/clickhouse.sh status   exit 0 and print ports if it answers, 1 otherwise
#   scripts/clickhouse.sh env      print the shell variables of a running server (eval-able)
#   scripts/clickhouse.sh client [ARGS...]   run clickhouse-client against it
#   scripts/clickhouse.sh query SQL          run one query over HTTP, print the answer
#   scripts/clickhouse.sh destroy  stop it and remove its directory
#
# Environment:
#   UMG_CH_DIR        directory for config, data, logs and pid (default /var/tmp/umg-clickhouse)
#   UMG_CH_TCP_PORT   native port to try first (default 19000)
#   UMG_CH_HTTP_PORT  HTTP port to try first (default 18123)
#   UMG_CH_WAIT       seconds to wait for it to answer (default 60)
#   UMG_CH_NO_INSTALL set to 1 to fail instead of running apt-get when it is missing
#
# Works as root on a fresh Debian 12 without systemd: the server runs in the
# foreground of a background subshell, started from here, never by the
# package's service unit. If a wanted port is taken, the next free one is used;
# `start` prints the ports it chose as shell assignments:
#   CH_DIR=... CH_TCP_PORT=... CH_HTTP_PORT=... CH_PID=...
# and writes the same lines to $UMG_CH_DIR/ports.env.
#
# Only 127.0.0.1 is listened on. The config is written by this script; the
# package's /etc/clickhouse-server is not read.
set -euo pipefail

CH_DIR=${UMG_CH_DIR:-/var/tmp/umg-clickhouse}
WANT_TCP=${UMG_CH_TCP_PORT:-19000}
WANT_HTTP=${UMG_CH_HTTP_PORT:-18123}
WAIT=${UMG_CH_WAIT:-60}

die() { echo "clickhouse.sh: $*" >&2; exit 1; }

port_busy() {
    # A port is busy when something listens on it on any address; ss is in iproute2,
    # /proc/net/tcp is the fallback.
    local hex
    if command -v ss >/dev/null 2>&1; then
        ss -Htln "sport = :$1" 2>/dev/null | grep -q . && return 0
        return 1
    fi
    hex=$(printf '%04X' "$1")
    awk -v p=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }' \
        /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

free_port() {
    local p=$1 avoid=${2:-}
    while port_busy "$p" || [ "$p" = "$avoid" ]; do
        p=$((p + 1))
        [ "$p" -lt 65535 ] || die "no free port from $1"
    done
    echo "$p"
}

ensure_installed() {
    if command -v clickhouse-server >/dev/null 2>&1 && command -v clickhouse-client >/dev/null 2>&1; then
        return
    fi
    [ "${UMG_CH_NO_INSTALL:-0}" = 1 ] && die "clickhouse-server/clickhouse-client not installed"
    echo "clickhouse.sh: installing clickhouse-server clickhouse-client (apt-get)" >&2
    # Keep the package's own service from starting where invoke-rc.d would run it.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y clickhouse-server clickhouse-client >&2; then
        apt-get update >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y clickhouse-server clickhouse-client >&2
    fi
    [ "$made_policy" = 1 ] && rm -f "$policy"
    command -v clickhouse-server >/dev/null 2>&1 || die "clickhouse-server still missing after apt-get"
}

write_config() {
    local tcp=$1 http=$2
    mkdir -p "$CH_DIR"/{data,tmp,user_files,format_schemas,log}
    cat > "$CH_DIR/config.xml" <<EOF
<?xml version="1.0"?>
<!-- Written by scripts/clickhouse.sh; overwritten on every start. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>$CH_DIR/log/server.log</log>
        <errorlog>$CH_DIR/log/server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$tcp</tcp_port>
    <http_port>$http</http_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>30</keep_alive_timeout>
    <max_concurrent_queries>200</max_concurrent_queries>
    <uncompressed_cache_size>268435456</uncompressed_cache_size>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$CH_DIR/data/</path>
    <tmp_path>$CH_DIR/tmp/</tmp_path>
    <user_files_path>$CH_DIR/user_files/</user_files_path>
    <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
    <users_config>$CH_DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <builtin_dictionaries_reload_interval>0</builtin_dictionaries_reload_interval>
</yandex>
EOF
    cat > "$CH_DIR/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- Written by scripts/clickhouse.sh: user `default`, no password, loopback only. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <load_balancing>random</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
                <read_rows>0</read_rows><execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

load_env() {
    [ -f "$CH_DIR/ports.env" ] || return 1
    # shellcheck disable=SC1091
    . "$CH_DIR/ports.env"
}

alive() {
    load_env || return 1
    kill -0 "$CH_PID" 2>/dev/null || return 1
    [ "$(curl -s --max-time 2 "http://127.0.0.1:$CH_HTTP_PORT/ping" 2>/dev/null)" = "Ok." ]
}

cmd_start() {
    if alive; then
        cat "$CH_DIR/ports.env"
        return 0
    fi
    ensure_installed
    local tcp http
    tcp=$(free_port "$WANT_TCP")
    http=$(free_port "$WANT_HTTP" "$tcp")
    write_config "$tcp" "$http"
    rm -f "$CH_DIR/ports.env"
    # setsid: the server gets its own session, so a Ctrl-C in the caller's terminal
    # does not reach it and `stop` owns its shutdown.
    setsid clickhouse-server --config-file="$CH_DIR/config.xml" \
        > "$CH_DIR/log/stdout.log" 2>&1 < /dev/null &
    local pid=$!
    printf 'CH_DIR=%s\nCH_TCP_PORT=%s\nCH_HTTP_PORT=%s\nCH_PID=%s\n' \
        "$CH_DIR" "$tcp" "$http" "$pid" > "$CH_DIR/ports.env.tmp"
    mv "$CH_DIR/ports.env.tmp" "$CH_DIR/ports.env"
    local deadline=$((SECONDS + WAIT))
    until [ "$(curl -s --max-time 2 "http://127.0.0.1:$http/ping" 2>/dev/null)" = "Ok." ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$CH_DIR/log/stdout.log" "$CH_DIR/log/server.err.log" >&2 2>/dev/null || true
            rm -f "$CH_DIR/ports.env"
            die "clickhouse-server exited during start-up (logs in $CH_DIR/log)"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            cmd_stop >/dev/null 2>&1 || true
            die "clickhouse-server did not answer on 127.0.0.1:$http within ${WAIT}s"
        fi
        sleep 0.2
    done
    cat "$CH_DIR/ports.env"
}

cmd_stop() {
    load_env || { echo "clickhouse.sh: not running (no $CH_DIR/ports.env)" >&2; return 0; }
    if kill -0 "$CH_PID" 2>/dev/null; then
        kill -TERM "$CH_PID" 2>/dev/null || true
        for _ in $(seq 1 200); do
            kill -0 "$CH_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$CH_PID" 2>/dev/null; then
            echo "clickhouse.sh: pid $CH_PID ignored SIGTERM for 20 s, sending SIGKILL" >&2
            kill -KILL "$CH_PID" 2>/dev/null || true
        fi
        wait "$CH_PID" 2>/dev/null || true
    fi
    rm -f "$CH_DIR/ports.env"
    echo "clickhouse.sh: stopped"
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status)
    if alive; then cat "$CH_DIR/ports.env"; else echo "clickhouse.sh: not running" >&2; exit 1; fi
    ;;
env) load_env || die "not running"; cat "$CH_DIR/ports.env" ;;
client)
    shift
    load_env || die "not running"
    exec clickhouse-client --host 127.0.0.1 --port "$CH_TCP_PORT" "$@"
    ;;
query)
    [ $# -ge 2 ] || die "usage: $0 query SQL"
    load_env || die "not running"
    # --fail-with-body needs curl 7.76; Debian 12 has 7.88.
    curl -sS --fail-with-body "http://127.0.0.1:$CH_HTTP_PORT/" --data-binary "$2"
    ;;
destroy)
    cmd_stop >/dev/null
    case "$CH_DIR" in /|"") die "refusing to remove '$CH_DIR'" ;; esac
    rm -rf "$CH_DIR"
    echo "clickhouse.sh: removed $CH_DIR"
    ;;
*)
    sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
