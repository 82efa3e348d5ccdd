#!/usr/bin/env bash
# Installs the Debian packages UnMoGrowP needs to build, run and test, when
# any is missing. Non-interactive; runs apt-get update once, only if needed.
# Usage: scripts/deps.sh [build|web|test|bench]
set -euo pipefail
what=${1:-build}
pkgs=(gcc g++ make pkg-config meson ninja-build python3 curl openssl ca-certificates
      libh2o-evloop-dev libsimdjson-dev libssl-dev libsodium-dev libjwt-dev libsqlite3-dev sqlite3 liblmdb-dev zlib1g-dev
      libxgboost-dev tzdata)
case "$what" in
  web)   # Node.js 20.19+ with npm builds the dashboard (Vite 8). The machine image brings it; on a bare
         # Debian 12 the distribution's nodejs + npm are installed (Node 18: too old for Vite 8, the
         # build then says so and the daemon serves the API only).
         command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm) ;;
  test)  pkgs+=(libcmocka-dev clang clang-format libclang-rt-14-dev chromium fonts-dejavu-core)
         command -v node >/dev/null && command -v npm >/dev/null || pkgs+=(nodejs npm) ;;
  bench) pkgs+=(libcmocka-dev wrk nginx-light clickhouse-server clickhouse-client) ;;
  build) ;;
  *) echo "usage: $0 [build|web|test|bench]" >&2; exit 2 ;;
esac
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
