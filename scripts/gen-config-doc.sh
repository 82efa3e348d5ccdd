#!/usr/bin/env bash
# Writes docs/config.md from the configuration table in the binary, or with
# --check fails when docs/config.md is out of date.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${UMG_BIN:-build/unmogrowp}
out=$(mktemp)
{
  cat <<'EOF2'
# Configuration

`unmogrowp serve` takes its settings from, in order: the defaults below, a
file given with `--config FILE`, then the flags (`--data`, `--listen`,
`--threads`, `--tls-cert`, `--tls-key`, `--web`, and `--set KEY=VALUE` for any key), so
a flag always wins over the file. An unknown key or a value out of range stops
the daemon with a message naming it.

The file has one `key = value` per line; `#` starts a comment; values may be
quoted. Sizes take `k`, `m`, `g` suffixes (powers of 1024); durations take
`ms`, `s`, `m`, `h`, `d` (a bare number is milliseconds).

```
# /etc/unmogrowp.conf
data = /var/lib/unmogrowp
listen = 0.0.0.0:8080
log.fsync = always
dedupe.horizon = 7d
http.trusted_proxies = 10.0.0.0/8, 192.168.0.0/16
```

The `fraud.*` settings (IP lists, bot User-Agent patterns, the signature
replay cache) are explained in [fraud.md](fraud.md); `kill -HUP` reloads the
files named in `fraud.ip_lists` without a restart, every other setting takes
one.

The web dashboard is served at `/` from `web` (`--web DIR`): by default
(`auto`) the `web/dist` that `make web` builds, looked for beside the
binary's source tree (`build/unmogrowp` → `web/dist`) and then in the working
directory; without a build the daemon serves the API only and says so in its
log; `off` never serves it. The files are read once at start (rebuilding
needs a restart). See [dashboard.md](dashboard.md).

This table is generated from the daemon's own configuration table
(`unmogrowp config docs`); `make test` fails when it is out of date.

EOF2
  "$BIN" config docs
} > "$out"
if [ "${1:-}" = "--check" ]; then
  if ! diff -u docs/config.md "$out"; then
    echo "docs/config.md is out of date: run scripts/gen-config-doc.sh" >&2
    rm -f "$out"; exit 1
  fi
  rm -f "$out"
else
  mv "$out" docs/config.md
fi
