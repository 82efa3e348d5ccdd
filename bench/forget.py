#!/usr/bin/env python3
"""What a forget request costs once the log's segments carry summaries.

    bench/forget.py [thousand events] [requests]      (default 400, 4)

Starts the daemon (UMG_BIN, else build/unmogrowp) on a new data directory with
16 MiB segments, sends the given number of events of one app (1,000 a
request, each from its own device, except one event a request from one of
`requests` known devices, spread evenly over the log), then forgets the known
devices one request at a time and prints, for each pass, the records read,
the segments passed over by their summaries and the pass's time, from the
daemon's log line. The first request reads every segment of the app (there
are no summaries yet): it is the baseline, what every request cost before
summaries. Loopback only; stops by itself.
"""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
import harness  # noqa: E402


def post(d, path, body, headers):
    req = urllib.request.Request("http://%s:%d%s" % (d.host, d.port, path), data=json.dumps(body).encode(),
                                 headers=dict(headers, **{"Content-Type": "application/json"}), method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def main():
    seen = set()
    thousands = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    nreq = int(sys.argv[2]) if len(sys.argv) > 2 else 4
    d = harness.Daemon(extra_args=["--set", "log.segment_bytes=16m", "--set", "privacy.check_interval=200ms"])
    try:
        app = d.create_app("Bench", "Game", "android")
        d.start()
        known = [str(uuid.uuid4()) for _ in range(nreq)]
        now = int(time.time() * 1000)
        for b in range(thousands):
            evs = [{"type": "session", "ts": now - 1000, "device": {"gaid": str(uuid.uuid4()), "platform": "android"}}
                   for _ in range(999)]
            evs.append({"type": "session", "ts": now - 1000,
                        "device": {"gaid": known[b * nreq // thousands], "platform": "android"}})
            res = post(d, "/v1/events", {"events": evs}, {"X-App-Key": app["app_key"]})
            assert res["accepted"] == 1000, res
        segs = len([f for f in os.listdir(os.path.join(d.data_dir, "log")) if f.endswith(".log")])
        print("%d events in %d segments" % (thousands * 1000, segs))
        for i, dev in enumerate(known):
            subprocess.run([harness.binary(), "admin", "privacy", "forget", "--data", d.data_dir, "--app",
                            app["app_id"], "--id", "gaid=" + dev], stdout=subprocess.PIPE, check=True)
            deadline = time.time() + 600
            line = None
            while time.time() < deadline and line is None:
                time.sleep(0.2)
                for l in open(d.log_path, encoding="utf-8", errors="replace"):
                    if "log rewrite done: 1 forget identifiers" in l and l not in seen:
                        line = l
            seen.add(line)
            m = re.search(r"(\d+) records read, (\d+) forgotten, .* (\d+) passed over by their summaries, "
                          r"([0-9.]+) s", line)
            print("request %d%s: %s records read, %s forgotten, %s segments passed over, %s s" %
                  (i + 1, " (no summaries yet: the baseline)" if i == 0 else "", m.group(1), m.group(2),
                   m.group(3), m.group(4)))
    finally:
        d.stop()
        d.cleanup()


if __name__ == "__main__":
    main()
