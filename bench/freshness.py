#!/usr/bin/env python3
"""bench/freshness.py - how long after its 2xx an install is visible in GET /v1/attribution.

    bench/freshness.py ADDR APP_ID APP_KEY APP_SECRET [N]

For each of N probes (default 300): one click with a new GAID (POST /v1/touches), then an
install of that GAID (POST /v1/events); the clock starts when the install's 202 arrives,
and GET /v1/attribution is polled on a second keep-alive connection until it says
"attributed" (the probe fails after 5 s). Prints one line for scripts:
    UMG_FRESHNESS n=N p50_ms=.. p90_ms=.. p99_ms=.. max_ms=.. failed=N
Polling from Python costs about 0.1-0.3 ms a round, which is in the figures.
Only 127.0.0.1 is targeted by the calling script.
"""

import http.client
import json
import sys
import time
import uuid


def main():
    addr, app, key, secret = sys.argv[1:5]
    n = int(sys.argv[5]) if len(sys.argv) > 5 else 300
    host, port = addr.rsplit(":", 1)
    post = http.client.HTTPConnection(host, int(port), timeout=10)
    poll = http.client.HTTPConnection(host, int(port), timeout=10)
    lat, failed = [], 0
    for i in range(n):
        g = str(uuid.uuid4())
        now_ms = int(time.time() * 1000)
        body = json.dumps({"touches": [{"type": "click", "ts": now_ms - 60000, "source": "fresh",
                                        "campaign": "probe", "device": {"gaid": g}}]})
        post.request("POST", "/v1/touches", body, {"X-App-Secret": secret, "Content-Type": "application/json"})
        r = post.getresponse()
        r.read()
        if r.status != 202:
            raise SystemExit("touch: HTTP %d" % r.status)
        body = json.dumps({"type": "install", "ts": now_ms, "device": {"gaid": g, "platform": "android"}})
        post.request("POST", "/v1/events", body, {"X-App-Key": key, "Content-Type": "application/json"})
        r = post.getresponse()
        r.read()
        t0 = time.monotonic()
        if r.status != 202:
            raise SystemExit("install: HTTP %d" % r.status)
        path = "/v1/attribution?app=%s&device=%s" % (app, g)
        while True:
            poll.request("GET", path, headers={"X-App-Key": key})
            r = poll.getresponse()
            data = r.read()
            if r.status == 200 and json.loads(data).get("status") == "attributed":
                lat.append((time.monotonic() - t0) * 1000)
                break
            if time.monotonic() - t0 > 5:
                failed += 1
                break
        time.sleep(0.01)
    lat.sort()

    def q(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else float("nan")
    print("UMG_FRESHNESS n=%d p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f failed=%d" % (
        len(lat), q(0.5), q(0.9), q(0.99), lat[-1] if lat else float("nan"), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
