#!/usr/bin/env python3
"""Loads a few days of plausible demo traffic (installs, sessions, in-app
events, purchases) into a running daemon through the public ingest API.
Deterministic: the same seed gives the same devices and events.
Usage: demo_events.py BASE_URL APP_KEY [DEVICES]"""
import json
import random
import sys
import time
import urllib.request
import uuid


def main():
    base, key = sys.argv[1], sys.argv[2]
    devices = int(sys.argv[3]) if len(sys.argv) > 3 else 300
    rnd = random.Random(20261127)
    now_ms = int(time.time() * 1000)
    events = []
    for d in range(devices):
        gaid = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        device = {"gaid": gaid, "platform": "android", "os_version": rnd.choice(["12", "13", "14"]),
                  "model": rnd.choice(["Pixel 7", "Galaxy S23", "Redmi Note 12"]), "app_version": "1.4.0",
                  "locale": rnd.choice(["en_US", "de_DE", "pt_BR", "ja_JP"])}
        t = now_ms - rnd.randint(0, 6 * 86400 * 1000)
        events.append({"type": "install", "ts": t, "device": device})
        for s in range(rnd.randint(1, 8)):
            t2 = t + s * rnd.randint(600, 86400) * 1000
            if t2 > now_ms:
                break
            events.append({"type": "session", "ts": t2, "device": device})
            if rnd.random() < 0.5:
                events.append({"type": "event", "name": "level_complete", "ts": t2 + 60000,
                               "device": device, "props": {"level": s + 1}})
            if rnd.random() < 0.08:
                events.append({"type": "purchase", "name": "gems_pack", "ts": t2 + 120000, "device": device,
                               "revenue": rnd.choice([0.99, 4.99, 9.99]), "currency": "USD"})
    events = [e for e in events if e["ts"] <= now_ms]
    accepted = 0
    for i in range(0, len(events), 500):
        body = json.dumps({"events": events[i:i + 500]}).encode()
        req = urllib.request.Request(base + "/v1/events", data=body, method="POST",
                                     headers={"X-App-Key": key, "Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            res = json.load(r)
            accepted += res["accepted"]
            if res["rejected"]:
                print("demo: rejected", res["rejected"][:3], file=sys.stderr)
    print(f"demo: loaded {accepted} events from {devices} devices")


if __name__ == "__main__":
    main()
