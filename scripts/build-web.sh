#!/usr/bin/env bash
# Builds the web dashboard into web/dist (docs/dashboard.md): `npm ci` from the committed
# package-lock.json when node_modules is missing or older than the lock, then `vite build`.
# Exits non-zero when Node.js or the build fails; the daemon then serves the API only.
set -euo pipefail
cd "$(dirname "$0")/../web"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "build-web: node and npm are needed (scripts/deps.sh web)" >&2; exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "build-web: Node.js $(node -v) is too old for Vite (20.19+ needed)" >&2; exit 1
fi
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
npx vite build --logLevel warn
echo "build-web: web/dist built ($(find dist -type f | wc -l) files)"
