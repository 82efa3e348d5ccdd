#!/usr/bin/env bash
# The report query engine's figures (docs/reports.md): bench_query's JSON
# lines (overview over 4.5 M rollup rows against a plain summing loop in the
# same run; cohorts over 90 install days x 181 days), with the machine.
#   bench/reports.sh [runs]   (default 5; medians)
set -euo pipefail
cd "$(dirname "$0")/.."
ninja -C build bench/bench_query >/dev/null
echo "{\"machine\":\"$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')\",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
build/bench/bench_query "${1:-5}"
