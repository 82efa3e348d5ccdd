#!/usr/bin/env bash
# The funnel report's figures (docs/reports.md, "Funnel"): bench_funnel's JSON
# lines (1 M device timelines in a real LMDB store, the funnel without and
# with group_by against a bare timeline scan in the same run), with the machine.
#   bench/funnel.sh [million devices] [runs]   (default 1, 5; medians)
set -euo pipefail
cd "$(dirname "$0")/.."
ninja -C build bench/bench_funnel >/dev/null
echo "{\"machine\":\"$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
build/bench/bench_funnel "${1:-1}" "${2:-5}"
