#!/usr/bin/env python3
"""Deterministic generator of realistic mobile-attribution events for the benchmarks.

The same seed and --now always give the same bytes, so a figure can be
reproduced. The mix is roughly what an app SDK sends: sessions and in-app
events dominate, a few installs and purchases, device ids drawn from a fixed
pool of Android (gaid + android_id) and iOS (idfa + idfv) devices, event times
spread over the day before --now, a handful of props per in-app event.

Files written to --out:

  single.json        one event object, no event_id (the server makes one, so
                     every request that wrk re-sends is a new, stored event)
  single_tpl.json    the same with "event_id":"@@EVENT_ID@@" (wrk/post.lua
                     replaces the marker with a fresh UUID per request)
  batch.json         {"events":[...]} with --batch events, no event_id
  batch_tpl.json     the same with an @@EVENT_ID@@ marker per event
  batch.jsonl        the same events as ClickHouse JSONEachRow rows
  fill.json          {"events":[...]} with --fill-batch events, no event_id
                     (used to build a large data dir for the recovery test)
  bulk.jsonl         --bulk rows: the batch events repeated with distinct
                     event_ids, for one big clickhouse-client INSERT
  clickhouse.sql     the CREATE TABLE that the JSONEachRow rows load into
  meta.json          sizes and parameters of what was written

Why no event_id by default: wrk re-sends the same body, and the daemon answers
a repeated event_id as a duplicate without storing it again, which is cheaper
and would flatter the figure.

ClickHouse 18.16 (Debian's) has no Map, JSON or DateTime64 type and its
JSONEachRow input cannot read nested objects, so the rows flatten the device
into device_* columns, keep props as a JSON string and ts as Unix ms.
"""

import argparse
import json
import os
import random
import sys
import time
import uuid

EVENT_ID_MARK = "@@EVENT_ID@@"
DAY_MS = 86_400_000
MAX_BODY = 1 << 20  # http.max_body_bytes default (1m)

ANDROID_MODELS = ["Pixel 8", "Pixel 7a", "SM-S918B", "SM-A546B", "M2101K6G", "CPH2449",
                  "moto g54 5G", "SM-G991B", "2201117TY", "RMX3630"]
ANDROID_OS = ["14", "13", "12", "11", "10"]
IOS_MODELS = ["iPhone15,2", "iPhone15,3", "iPhone14,5", "iPhone14,2", "iPhone13,2",
              "iPhone16,1", "iPhone12,1"]
IOS_OS = ["17.4.1", "17.3", "16.7.5", "17.2.1", "16.6"]
LOCALES = ["en_US", "de_DE", "fr_FR", "es_ES", "pt_BR", "ja_JP", "ko_KR", "tr_TR", "ru_RU", "en_GB"]
APP_VERSIONS = ["2.3.1", "2.3.0", "2.2.7", "2.4.0-beta1"]
EVENT_NAMES = ["level_start", "level_complete", "tutorial_step", "ad_impression", "add_to_cart",
               "search", "share", "achievement_unlocked", "screen_view", "button_click"]
SKUS = [("gems_100", 0.99), ("gems_550", 4.99), ("gems_1200", 9.99), ("starter_pack", 2.99),
        ("vip_month", 7.99), ("remove_ads", 3.49)]
CURRENCIES = ["USD", "EUR", "GBP", "BRL", "JPY"]
SOURCES = [("google-play", "organic"), ("facebook", "cpi"), ("unity", "cpi"),
           ("applovin", "cpi"), ("tiktok", "cpc")]


def rng_uuid(rng, upper=False):
    u = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    return u.upper() if upper else u


def rfc3339_ms(ms):
    s, frac = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(s)) + ".%03dZ" % frac


class Generator:
    def __init__(self, seed, now_ms, devices, ts_format):
        self.rng = random.Random(seed)
        self.now_ms = now_ms
        self.ts_format = ts_format
        self.devices = [self._device() for _ in range(devices)]

    def _device(self):
        r = self.rng
        if r.random() < 0.7:
            d = {"gaid": rng_uuid(r), "android_id": "%016x" % r.getrandbits(64),
                 "platform": "android", "os_version": r.choice(ANDROID_OS),
                 "model": r.choice(ANDROID_MODELS)}
            ua = "Dalvik/2.1.0 (Linux; U; Android %s; %s)" % (d["os_version"], d["model"])
        else:
            d = {"idfa": rng_uuid(r, upper=True), "idfv": rng_uuid(r, upper=True),
                 "platform": "ios", "os_version": r.choice(IOS_OS), "model": r.choice(IOS_MODELS)}
            ua = "MyGame/%s CFNetwork/1490.0.4 Darwin/23.2.0" % r.choice(APP_VERSIONS)
        d["app_version"] = r.choice(APP_VERSIONS)
        d["sdk_version"] = "umg-%s/1.0.%d" % (d["platform"], r.randrange(4))
        d["locale"] = r.choice(LOCALES)
        user = "user-%d" % r.randrange(1, 10_000_000) if r.random() < 0.6 else None
        return d, ua, user

    def _ts(self, ms):
        return ms if self.ts_format == "ms" else rfc3339_ms(ms)

    def event(self):
        """One event as the SDK would send it (dict, key order stable)."""
        r = self.rng
        dev, ua, user = r.choice(self.devices)
        ts = self.now_ms - 60_000 - r.randrange(DAY_MS - 120_000)
        x = r.random()
        kind = "install" if x < 0.05 else "session" if x < 0.45 else "event" if x < 0.90 else "purchase"
        e = {"type": kind}
        if kind == "event":
            e["name"] = r.choice(EVENT_NAMES)
        elif kind == "purchase":
            e["name"] = "iap_purchase"
        e["ts"] = self._ts(ts)
        e["device"] = dict(dev)
        e["user_agent"] = ua
        if user:
            e["user_id"] = user
        props = {}
        if kind == "purchase":
            sku, price = r.choice(SKUS)
            e["revenue"] = price
            e["currency"] = r.choice(CURRENCIES)
            props = {"sku": sku, "qty": 1, "store": "play" if dev["platform"] == "android" else "app_store"}
        elif kind == "event":
            props = {"level": r.randrange(1, 200), "screen": r.choice(["home", "shop", "map", "battle"])}
            if r.random() < 0.5:
                props["duration_ms"] = r.randrange(100, 600_000)
            if r.random() < 0.3:
                props["score"] = round(r.random() * 10_000, 2)
        elif kind == "session":
            props = {"session_n": r.randrange(1, 500)}
        elif kind == "install" and dev["platform"] == "android":
            src, med = r.choice(SOURCES)
            click = ts - r.randrange(60_000, 3_600_000)
            e["install_referrer"] = {
                "referrer": "utm_source=%s&utm_medium=%s&utm_campaign=c%d" % (src, med, r.randrange(1, 50)),
                "click_ts": rfc3339_ms(click),
                "install_begin_ts": rfc3339_ms(click + r.randrange(5_000, 120_000)),
            }
        if props:
            e["props"] = props
        return e, ts


def ch_row(e, ts_ms, event_id, app_id):
    """The ClickHouse JSONEachRow form of an event: flat, and like the SDK body it
    leaves out what is absent (JSONEachRow fills a missing column with its default),
    so both sides parse about the same number of bytes."""
    d = e["device"]
    ref = e.get("install_referrer", {})
    row = {
        "event_id": event_id, "app_id": app_id, "type": e["type"], "name": e.get("name", ""),
        "ts": ts_ms,
        "device_gaid": d.get("gaid", ""), "device_idfa": d.get("idfa", ""),
        "device_idfv": d.get("idfv", ""), "device_android_id": d.get("android_id", ""),
        "device_platform": d.get("platform", ""), "device_os_version": d.get("os_version", ""),
        "device_model": d.get("model", ""), "device_app_version": d.get("app_version", ""),
        "device_sdk_version": d.get("sdk_version", ""), "device_locale": d.get("locale", ""),
        "user_agent": e.get("user_agent", ""), "user_id": e.get("user_id", ""),
        "revenue": e.get("revenue", 0.0), "currency": e.get("currency", ""),
        "referrer": ref.get("referrer", ""),
        "props": json.dumps(e["props"], separators=(",", ":")) if "props" in e else "",
    }
    return {k: v for k, v in row.items() if v not in ("", 0.0) or k in ("event_id", "ts")}


CLICKHOUSE_SQL = """CREATE TABLE IF NOT EXISTS {db}.events (
    event_id String, app_id String, type String, name String, ts UInt64,
    device_gaid String, device_idfa String, device_idfv String, device_android_id String,
    device_platform String, device_os_version String, device_model String,
    device_app_version String, device_sdk_version String, device_locale String,
    user_agent String, user_id String, revenue Float64, currency String,
    referrer String, props String
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(toDateTime(intDiv(ts, 1000)))
ORDER BY (app_id, type, ts)
"""


def dumps(o):
    return json.dumps(o, separators=(",", ":"), ensure_ascii=False)


def with_marker(e):
    """The event with an event_id marker as its first key (as an SDK would put it)."""
    out = {"event_id": EVENT_ID_MARK}
    out.update(e)
    return out


def seq_uuid(n):
    """A valid v4-shaped UUID from a counter (fast, distinct)."""
    h = "%032x" % (n * 0x9E3779B97F4A7C15 % (1 << 128))
    return "%s-%s-4%s-8%s-%s" % (h[0:8], h[8:12], h[13:16], h[17:20], h[20:32])


def write(path, data):
    with open(path, "w", encoding="utf-8") as f:
        f.write(data)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="output directory (created)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--now", type=int, default=None,
                    help="reference time, Unix ms (default: now, rounded down to the minute)")
    ap.add_argument("--devices", type=int, default=5000, help="size of the device pool")
    ap.add_argument("--batch", type=int, default=100, help="events per batch body")
    ap.add_argument("--fill-batch", type=int, default=1000, help="events per fill body")
    ap.add_argument("--bulk", type=int, default=1_000_000, help="rows in bulk.jsonl (0: skip)")
    ap.add_argument("--ts-format", choices=["ms", "rfc3339"], default="ms",
                    help="how `ts` is sent to the daemon (Unix ms number or RFC 3339 string)")
    ap.add_argument("--app-id", default="bench", help="app_id column of the ClickHouse rows")
    ap.add_argument("--db", default="bench", help="database name in clickhouse.sql")
    a = ap.parse_args()

    now_ms = a.now if a.now is not None else int(time.time()) // 60 * 60_000
    os.makedirs(a.out, exist_ok=True)
    g = Generator(a.seed, now_ms, a.devices, a.ts_format)

    # The single event is a typical in-app event, not whatever the mix draws first.
    while True:
        single, _ = g.event()
        if single["type"] == "event":
            break
    batch = [g.event() for _ in range(a.batch)]
    fill = [g.event() for _ in range(a.fill_batch)]

    write(os.path.join(a.out, "single.json"), dumps(single))
    write(os.path.join(a.out, "single_tpl.json"), dumps(with_marker(single)))
    batch_body = dumps({"events": [e for e, _ in batch]})
    write(os.path.join(a.out, "batch.json"), batch_body)
    write(os.path.join(a.out, "batch_tpl.json"), dumps({"events": [with_marker(e) for e, _ in batch]}))
    fill_body = dumps({"events": [e for e, _ in fill]})
    write(os.path.join(a.out, "fill.json"), fill_body)
    for name, body in (("batch.json", batch_body), ("fill.json", fill_body)):
        if len(body.encode()) > MAX_BODY:
            sys.exit("gen_events: %s is %d bytes, over the 1 MiB body limit" % (name, len(body)))

    # ClickHouse rows: the same events; ids are made here because ClickHouse makes none.
    rows = [ch_row(e, ts, seq_uuid(i + 1), a.app_id) for i, (e, ts) in enumerate(batch)]
    write(os.path.join(a.out, "batch.jsonl"), "".join(dumps(r) + "\n" for r in rows))
    if a.bulk > 0:
        # Rows are serialized once with a fixed-width id placeholder and the id is
        # spliced in per copy: a million json.dumps calls would take a minute.
        templ = [dumps(dict(r, event_id="%36s" % "")).split(" " * 36, 1) for r in rows]
        with open(os.path.join(a.out, "bulk.jsonl"), "w", encoding="utf-8") as f:
            buf = []
            for i in range(a.bulk):
                head, tail = templ[i % len(templ)]
                buf.append(head + seq_uuid(1_000_000 + i) + tail + "\n")
                if len(buf) == 10_000:
                    f.write("".join(buf))
                    buf = []
            f.write("".join(buf))
    write(os.path.join(a.out, "clickhouse.sql"), CLICKHOUSE_SQL.format(db=a.db))

    meta = {
        "seed": a.seed, "now_ms": now_ms, "ts_format": a.ts_format, "devices": a.devices,
        "batch_events": a.batch, "fill_events": a.fill_batch, "bulk_rows": a.bulk,
        "bytes": {n: os.path.getsize(os.path.join(a.out, n))
                  for n in sorted(os.listdir(a.out)) if n != "meta.json"},
        "types_in_batch": {t: sum(1 for e, _ in batch if e["type"] == t)
                           for t in ("install", "session", "event", "purchase")},
    }
    write(os.path.join(a.out, "meta.json"), json.dumps(meta, indent=1) + "\n")
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
