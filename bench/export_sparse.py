#!/usr/bin/env python3
"""bench/export_sparse.py - does an export of a sparse app hold its event-loop thread?

    UMG_BIN=build/unmogrowp bench/export_sparse.py [MILLIONS] [RUNS]

Starts its own daemon on 127.0.0.1 (one HTTP thread, a temporary data directory), creates
two apps, sends MILLIONS (default 2) million events of app A in batches of 1,000, and
three of app B (one first, two last). Then, RUNS times (default 3): GET /v1/export/events
of app B on one connection while a second keep-alive connection asks GET /healthz in a
loop; the longest /healthz round trip during the export is the figure. The baseline, in
the same run: the longest round trip of as many /healthz requests with no export. Prints
one line for scripts:
    UMG_EXPORT_SPARSE records=N export_ms=.. healthz_max_ms=.. idle_max_ms=.. probes=N
(medians over the runs). Only 127.0.0.1 is targeted; the daemon is stopped at the end.
"""

import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid


def create_app(binary, data, org, name):
    out = subprocess.run([binary, "admin", "app", "create", "--data", data, "--org", org, "--name", name,
                          "--platform", "android"], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def post(conn, app, events):
    conn.request("POST", "/v1/events", json.dumps({"events": events}),
                 {"X-App-Secret": app["app_secret"], "Content-Type": "application/json"})
    r = conn.getresponse()
    body = r.read()
    if r.status != 202:
        raise SystemExit("ingest: HTTP %d %r" % (r.status, body[:200]))


def events(n, ts_ms):
    return [{"event_id": str(uuid.uuid4()), "type": "session", "ts": ts_ms,
             "device": {"gaid": str(uuid.uuid4()), "platform": "android"}} for _ in range(n)]


def probe_max(host, port, stop, out):
    c = http.client.HTTPConnection(host, port, timeout=60)
    worst, n = 0.0, 0
    while not stop.is_set():
        t0 = time.monotonic()
        c.request("GET", "/healthz")
        c.getresponse().read()
        worst = max(worst, time.monotonic() - t0)
        n += 1
    out.append((worst * 1000, n))


def main():
    millions = float(sys.argv[1]) if len(sys.argv) > 1 else 2
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    binary = os.environ.get("UMG_BIN", "build/unmogrowp")
    data = tempfile.mkdtemp(prefix="umg-export-bench-")
    daemon = None
    try:
        a = create_app(binary, data, "bench-a", "a")
        b = create_app(binary, data, "bench-b", "b")
        daemon = subprocess.Popen([binary, "serve", "--data", data, "--listen", "127.0.0.1:0", "--threads", "1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        addr_file = os.path.join(data, "daemon.addr")
        for _ in range(300):
            if os.path.exists(addr_file) and open(addr_file).read().strip():
                break
            time.sleep(0.1)
        host, port = open(addr_file).read().strip().rsplit(":", 1)
        port = int(port)
        conn = http.client.HTTPConnection(host, port, timeout=60)
        ts = int(time.time() * 1000) - 3600 * 1000
        post(conn, b, events(1, ts))
        total = int(millions * 1_000_000)
        for _ in range(total // 1000):
            post(conn, a, events(1000, ts))
        post(conn, b, events(2, ts))
        path = "/v1/export/events?app=" + b["app_id"]
        exp_ms, busy_max, idle_max, probes = [], [], [], []
        for _ in range(runs):
            stop, out = threading.Event(), []
            th = threading.Thread(target=probe_max, args=(host, port, stop, out))
            th.start()
            time.sleep(0.2)
            t0 = time.monotonic()
            conn.request("GET", path, headers={"X-App-Secret": b["app_secret"]})
            r = conn.getresponse()
            lines = r.read().count(b"\n")
            exp_ms.append((time.monotonic() - t0) * 1000)
            stop.set()
            th.join()
            if r.status != 200 or lines != 3:
                raise SystemExit("export: HTTP %d, %d lines (want 3)" % (r.status, lines))
            busy_max.append(out[0][0])
            probes.append(out[0][1])
            stop, out = threading.Event(), []
            th = threading.Thread(target=probe_max, args=(host, port, stop, out))
            th.start()
            time.sleep(max(exp_ms[-1] / 1000, 0.2))
            stop.set()
            th.join()
            idle_max.append(out[0][0])
        print("UMG_EXPORT_SPARSE records=%d export_ms=%.1f healthz_max_ms=%.2f idle_max_ms=%.2f probes=%d" %
              (total + 3, statistics.median(exp_ms), statistics.median(busy_max), statistics.median(idle_max),
               int(statistics.median(probes))))
    finally:
        if daemon is not None:
            daemon.terminate()
            daemon.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
