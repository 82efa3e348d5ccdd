#!/usr/bin/env python3
"""perf_legs.py - an A/B bench_pipeline profile split by leg.

    mkfifo /tmp/ctl
    AB=ROLLUPS BENCH_AB_TRACE=/tmp/legs BENCH_PERF_CTL=/tmp/ctl \\
        perf record -k CLOCK_MONOTONIC -g -o /tmp/ab.data -D -1 --control fifo:/tmp/ctl \\
        build/bench/bench_pipeline 2 1
    perf script -i /tmp/ab.data --ns -F pid,tid,time,ip,sym | bench/perf_legs.py /tmp/legs [TOP]

The two legs run on the same thread, one chunk at a time (bench_pipeline's ab_run); BENCH_AB_TRACE writes
each chunk's leg and time span, and this script gives each sample of the bench's main thread (tid = pid) to the leg whose
chunk it fell in. Prints, per symbol, the samples of each leg (self and with what it calls) and the difference,
largest first: where the second leg's extra time goes.
"""
import bisect
import collections
import re
import sys


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    spans = []
    for line in open(sys.argv[1]):
        leg, t0, t1 = line.split()
        spans.append((int(t0), int(t1), int(leg)))
    spans.sort()
    starts = [s[0] for s in spans]
    head = re.compile(r"^\s*(\d+)/(\d+)\s+(\d+)\.(\d+):")
    self_n = [collections.Counter(), collections.Counter()]
    incl_n = [collections.Counter(), collections.Counter()]
    total = [0, 0]
    leg, stack = None, []

    def flush():
        if leg is None or not stack:
            return
        total[leg] += 1
        self_n[leg][stack[0]] += 1
        for sym in set(stack):
            incl_n[leg][sym] += 1

    for line in sys.stdin:
        m = head.match(line)
        if m:
            flush()
            pid, tid = int(m.group(1)), int(m.group(2))
            ns = int(m.group(3)) * 1000000000 + int(m.group(4).ljust(9, "0")[:9])
            leg, stack = None, []
            i = bisect.bisect_right(starts, ns) - 1
            if i >= 0 and ns <= spans[i][1] and tid == pid:  # the bench's main thread
                leg = spans[i][2]
            continue
        parts = line.split(None, 1)
        if leg is not None and len(parts) == 2:
            stack.append(re.sub(r"\+0x[0-9a-f]+$", "", parts[1].strip()))
    flush()
    if not total[0] or not total[1]:
        sys.exit("no samples in the legs' spans: was perf run with -k CLOCK_MONOTONIC?")
    print(f"samples: leg 0 {total[0]}, leg 1 {total[1]} (+{(total[1] / total[0] - 1) * 100:.1f}%)")
    for name, cnt in (("self", self_n), ("with callees", incl_n)):
        syms = set(cnt[0]) | set(cnt[1])
        rows = sorted(syms, key=lambda s: -abs(cnt[1][s] - cnt[0][s]))[:top]
        print(f"\n{name}: leg0 leg1 diff (diff as % of leg 0's samples)")
        for s in rows:
            d = cnt[1][s] - cnt[0][s]
            print(f"{cnt[0][s]:7d} {cnt[1][s]:7d} {d:+7d} {d / total[0] * 100:+6.2f}%  {s}")


if __name__ == "__main__":
    main()
