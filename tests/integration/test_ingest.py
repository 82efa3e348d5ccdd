"""POST /v1/events against the real daemon: acceptance, per-event validation errors,
request-level errors, authentication, dedupe within a run and apps created while running."""

import json
import re
import time
import unittest
import uuid

from harness import (CANONICAL_TS, DaemonTestCase, event, gaid, new_id, now_us, parse_json,
                     parse_rfc3339_us, raw_request, rfc3339)

MIN = 60 * 1_000_000
DAY = 24 * 60 * MIN

# Keys of the canonical stored object, in the contract's order.
CANONICAL_ORDER = ["event_id", "app_id", "type", "name", "ts", "received_at", "device", "ip",
                   "user_agent", "user_id", "revenue", "currency", "install_referrer", "props"]
TIME_FIELDS = {"ts"}
REFERRER_TIME_FIELDS = {"click_ts", "install_begin_ts"}


def strict_equal(a, b):
    """JSON equality that tells 1 from 1.0 and true from 1."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strict_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(strict_equal(x, y) for x, y in zip(a, b))
    return a == b


class IngestCase(DaemonTestCase):
    """One daemon with one app, created before start."""

    extra_args = ()

    def setUp(self):
        self.d = self.daemon(start=False, extra_args=self.extra_args)
        self.app = self.d.create_app("acme", "game", "android")
        self.d.start()

    def export_by_id(self, app=None):
        out = self.export_ok(self.d, app or self.app)
        by_id = {}
        for obj in out:
            by_id.setdefault(obj.get("event_id"), []).append(obj)
        return out, by_id

    def check_stored(self, sent, stored, app, ip="127.0.0.1", t_before=None, t_after=None):
        """Checks that `stored` (an exported object) is `sent` in canonical form."""
        what = "event %s" % sent.get("event_id")
        expect_keys = set(sent) | {"event_id", "app_id", "received_at", "ip", "ts"}
        self.assertEqual(set(stored), expect_keys, "%s: exported keys differ: %r" % (what, stored))
        self.assertEqual(stored["app_id"], app["app_id"], what)
        self.assertEqual(stored["ip"], ip, what)
        self.assertRegex(stored["received_at"], CANONICAL_TS, what)
        if t_before is not None:
            rec = parse_rfc3339_us(stored["received_at"])
            self.assertTrue(t_before - 1_000_000 <= rec <= t_after + 1_000_000,
                            "%s: received_at %s outside the request window" %
                            (what, stored["received_at"]))
        for k, v in sent.items():
            got = stored.get(k)
            if k == "ip":
                continue
            if k in TIME_FIELDS:
                self.assertRegex(got, CANONICAL_TS, "%s: %s not canonical" % (what, k))
                self.assertEqual(parse_rfc3339_us(got), parse_rfc3339_us(v),
                                 "%s: %s sent %s stored %s" % (what, k, v, got))
            elif k == "install_referrer":
                self.assertEqual(set(got), set(v), "%s: install_referrer %r" % (what, got))
                for rk, rv in v.items():
                    if rk in REFERRER_TIME_FIELDS:
                        self.assertRegex(got[rk], CANONICAL_TS, "%s: referrer %s" % (what, rk))
                        self.assertEqual(parse_rfc3339_us(got[rk]), parse_rfc3339_us(rv), what)
                    else:
                        self.assertEqual(got[rk], rv, what)
            elif k == "event_id":
                self.assertEqual(got, v.lower(), what)
            else:
                self.assertTrue(strict_equal(got, v), "%s: field %s sent %r stored %r" %
                                (what, k, v, got))


class AcceptTest(IngestCase):

    def test_single_event(self):
        st, h, data = self.d.ingest(self.app, event())
        self.assertStatus(st, 202, "single event", data)
        self.assertRequestId(h)
        self.assertTrue(h.get("content-type", "").startswith("application/json"), h)
        self.assertEqual(parse_json(data), {"accepted": 1, "duplicates": 0, "rejected": []})

    def test_batch_single_event(self):
        obj = self.ingest_ok(self.d, self.app, {"events": [event()]}, accepted=1, duplicates=0)
        self.assertEqual(obj, {"accepted": 1, "duplicates": 0, "rejected": []})

    def test_empty_batch(self):
        self.ingest_ok(self.d, self.app, {"events": []}, accepted=0, duplicates=0)

    def test_all_types(self):
        evs = [event(type="install"), event(type="session"),
               event(type="event", name="level_up"),
               event(type="purchase", name="gems", revenue=4.99, currency="EUR")]
        self.ingest_ok(self.d, self.app, {"events": evs}, accepted=4)
        _, by_id = self.export_by_id()
        for e in evs:
            self.assertEqual(len(by_id.get(e["event_id"], [])), 1, e)
            self.assertEqual(by_id[e["event_id"]][0]["type"], e["type"])

    def full_events(self):
        now = now_us()
        android = {
            "event_id": new_id(), "type": "purchase", "name": "gem_pack",
            "ts": rfc3339(now - 5 * MIN + 123_000, 3),
            "device": {"gaid": gaid(), "android_id": "9774d56d682e549c", "platform": "android",
                       "os_version": "14", "model": "Pixel 8", "app_version": "2.3.1",
                       "sdk_version": "umg-android/1.0.0", "locale": "de_DE",
                       "limit_ad_tracking": True},
            "user_agent": "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 8)",
            "user_id": "user-42", "revenue": 1.99, "currency": "USD",
            "install_referrer": {"referrer": "utm_source=google-play&utm_medium=organic",
                                 "click_ts": rfc3339(now - 20 * MIN, 0),
                                 "install_begin_ts": rfc3339(now - 15 * MIN + 500_000, 6)},
            "props": {"sku": "gems_100", "qty": 3, "price": 1.99, "level": 17},
        }
        ios = {
            "event_id": new_id(), "type": "install",
            "ts": rfc3339(now - 2 * MIN + 654_321, 6),
            "device": {"idfa": str(uuid.uuid4()), "idfv": str(uuid.uuid4()),
                       "platform": "ios", "os_version": "17.4.1", "model": "iPhone15,2"},
            "user_agent": "MyGame/1.0 CFNetwork/1490 Darwin/23.2.0",
        }
        web = {
            "event_id": new_id(), "type": "event", "name": "signup",
            "ts": rfc3339(now - 30 * 1_000_000, 3),
            "device": {"custom_id": "cookie-7f3a", "oaid": "oaid-123", "platform": "web"},
            "user_id": "u\u00fcnic\u00f8de \u2713 \U0001F600 \"quoted\" back\\slash\nnewline\ttab",
            "props": {"emoji": "\U0001F680", "neg": -5, "big": 9007199254740991,
                      "small": 0.25, "ctrl": "a\u0001b"},
        }
        return [android, ios, web]

    def test_full_event_roundtrip(self):
        evs = self.full_events()
        t0 = now_us()
        self.ingest_ok(self.d, self.app, {"events": evs}, accepted=3, duplicates=0)
        t1 = now_us()
        out, by_id = self.export_by_id()
        self.assertEqual(len(out), 3, out)
        for e in evs:
            got = by_id.get(e["event_id"].lower(), [])
            self.assertEqual(len(got), 1, "event %s exported %d times" % (e["event_id"], len(got)))
            self.check_stored(e, got[0], self.app, t_before=t0, t_after=t1)

    def test_device_uuids_lowercased(self):
        # iOS reports IDFA/IDFV in upper case. The daemon stores UUID device ids in lower case
        # so that one device has one key (src/event/event.c, lower_uuid); everything else
        # is stored as sent.
        e = event(type="install", device={"idfa": str(uuid.uuid4()).upper(),
                                          "idfv": str(uuid.uuid4()).upper(), "platform": "ios",
                                          "model": "iPhone15,2"})
        self.ingest_ok(self.d, self.app, e, accepted=1)
        _, by_id = self.export_by_id()
        want = dict(e["device"], idfa=e["device"]["idfa"].lower(),
                    idfv=e["device"]["idfv"].lower())
        self.assertEqual(by_id[e["event_id"]][0]["device"], want)

    def test_canonical_key_order(self):
        evs = self.full_events()
        self.ingest_ok(self.d, self.app, {"events": evs}, accepted=3)
        st, h, raw = self.d.request("GET", "/v1/export/events?app=" + self.app["app_id"],
                                    headers={"X-App-Secret": self.app["app_secret"]})
        self.assertStatus(st, 200, "export", raw)
        lines = [l for l in raw.split(b"\n") if l]
        self.assertEqual(len(lines), 3, raw)
        self.assertTrue(raw.endswith(b"\n"), "export does not end with a newline")
        for line in lines:
            obj = json.loads(line)
            keys = list(obj)
            want = [k for k in CANONICAL_ORDER if k in obj]
            self.assertEqual(keys, want, "key order of %s" % line[:300])
            self.assertNotIn(b"\n", line)

    def test_server_generates_event_id_and_ts(self):
        e = event()
        del e["event_id"]
        del e["ts"]
        t0 = now_us()
        self.ingest_ok(self.d, self.app, e, accepted=1)
        t1 = now_us()
        out, _ = self.export_by_id()
        self.assertEqual(len(out), 1, out)
        got = out[0]
        self.assertIn("event_id", got, "exported event has no event_id: %r" % got)
        self.assertRegex(got["event_id"],
                         r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
        self.assertRegex(got["ts"], CANONICAL_TS)
        ts = parse_rfc3339_us(got["ts"])
        self.assertTrue(t0 - 1_000_000 <= ts <= t1 + 1_000_000, got)
        self.assertEqual(got["ts"], got["received_at"], "ts defaults to the receive time")

    def test_server_ids_differ(self):
        evs = []
        for _ in range(5):
            e = event()
            del e["event_id"]
            evs.append(e)
        self.ingest_ok(self.d, self.app, {"events": evs}, accepted=5, duplicates=0)
        out, by_id = self.export_by_id()
        self.assertEqual(len(out), 5)
        self.assertNotIn(None, by_id, "exported events without event_id: %r" % out[:1])
        self.assertEqual(len(by_id), 5, "server-generated event ids collide")

    def test_ts_forms_normalized(self):
        base = (now_us() // 1_000_000 - 3600) * 1_000_000
        import datetime
        dt = datetime.datetime.fromtimestamp(base / 1e6, tz=datetime.timezone.utc)
        plus2 = (dt + datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S") + ".5+02:00"
        cases = [
            (rfc3339(base, 0), rfc3339(base, 6)),
            (rfc3339(base + 120_000, 3), rfc3339(base + 120_000, 6)),
            (rfc3339(base + 123_456, 6), rfc3339(base + 123_456, 6)),
            (plus2, rfc3339(base + 500_000, 6)),
        ]
        evs = [event(ts=sent) for sent, _ in cases]
        self.ingest_ok(self.d, self.app, {"events": evs}, accepted=len(evs))
        _, by_id = self.export_by_id()
        for e, (sent, want) in zip(evs, cases):
            self.assertEqual(by_id[e["event_id"]][0]["ts"], want, "ts sent as %s" % sent)

    def test_ts_bounds_accepted(self):
        now = now_us()
        evs = [event(ts=rfc3339(now + 5 * MIN, 3)), event(ts=rfc3339(now - 29 * DAY, 3))]
        self.ingest_ok(self.d, self.app, {"events": evs}, accepted=2,
                       what="ts 5 min ahead and 29 days old")

    def test_limits_at_boundary_accepted(self):
        props = {"p%02d" % i: i for i in range(48)}
        props["long"] = "x" * 256
        props["k" * 64] = "key of 64 bytes"
        e = event(type="event", name="n" * 256, user_id="u" * 256, user_agent="a" * 1024,
                  props=props)
        e["device"]["model"] = "m" * 256
        self.assertEqual(len(props), 50)
        self.ingest_ok(self.d, self.app, {"events": [e]}, accepted=1,
                       what="50 props, 256-byte strings, 1024-byte user_agent")
        _, by_id = self.export_by_id()
        self.check_stored(e, by_id[e["event_id"]][0], self.app)

    def test_batch_of_1000(self):
        evs = [event() for _ in range(1000)]
        self.ingest_ok(self.d, self.app, {"events": evs}, accepted=1000, duplicates=0)
        out, by_id = self.export_by_id()
        self.assertEqual(len(out), 1000)
        self.assertEqual(set(by_id), {e["event_id"] for e in evs})

    def test_body_of_exactly_1mib(self):
        evs = [event() for _ in range(100)]
        body = json.dumps({"events": evs}).encode()
        body = body[:-1] + b" " * (1024 * 1024 - len(body)) + b"}"
        self.assertEqual(len(body), 1024 * 1024)
        self.ingest_ok(self.d, self.app, body, accepted=100, what="1 MiB body")

    def test_large_headers_below_limit(self):
        # 12 KiB of headers is under the 16 KiB default of http.max_header_bytes.
        st, h, data = self.d.ingest(self.app, event(), headers={"X-Pad": "p" * 12 * 1024})
        self.assertStatus(st, 202, "request with 12 KiB of headers", data)

    def test_good_and_bad_batch(self):
        good = [event(), event(type="event", name="tutorial_done"), event(type="install")]
        bad_missing = event()
        del bad_missing["type"]
        bad_unknown = event(foo=1)
        bad_future = event(ts=rfc3339(now_us() + 60 * MIN, 3))
        batch = [good[0], bad_missing, good[1], bad_unknown, good[2], bad_future]
        obj = self.ingest_ok(self.d, self.app, {"events": batch}, accepted=3, duplicates=0)
        rej = sorted(obj["rejected"], key=lambda r: r.get("index", -1))
        self.assertEqual([(r.get("index"), r.get("code"), r.get("field")) for r in rej],
                         [(1, "required", "type"), (3, "unknown_field", "foo"),
                          (5, "ts_in_future", "ts")], obj)
        for r in rej:
            self.assertIsInstance(r.get("message"), str, r)
        out, by_id = self.export_by_id()
        self.assertEqual(len(out), 3, [o["event_id"] for o in out])
        for e in good:
            self.assertEqual(len(by_id.get(e["event_id"], [])), 1, e)
            self.check_stored(e, by_id[e["event_id"]][0], self.app)
        for e in (bad_missing, bad_unknown, bad_future):
            self.assertNotIn(e["event_id"], by_id, "rejected event was stored")


def _mut(**kw):
    def f(e):
        for k, v in kw.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
    return f


def _dev(**kw):
    def f(e):
        for k, v in kw.items():
            if v is None:
                e["device"].pop(k, None)
            else:
                e["device"][k] = v
    return f


def _seq(*fs):
    def f(e):
        for g in fs:
            g(e)
    return f


EVENT_ERRORS = [
    # (name, mutation of a valid event, code, field)
    ("type missing", _mut(type=None), "required", "type"),
    ("type unknown", _mut(type="click"), "invalid_value", "type"),
    ("type not a string", _mut(type=5), "invalid_type", "type"),
    ("name missing for event", _mut(type="event"), "required", "name"),
    ("name missing for purchase", _mut(type="purchase", revenue=1.0, currency="USD"),
     "required", "name"),
    ("name too long", _mut(type="event", name="n" * 257), "too_long", "name"),
    ("ts in the future", lambda e: e.update(ts=rfc3339(now_us() + 20 * MIN, 3)),
     "ts_in_future", "ts"),
    ("ts too old", lambda e: e.update(ts=rfc3339(now_us() - 31 * DAY, 3)), "ts_too_old", "ts"),
    ("ts not a date", _mut(ts="yesterday"), "invalid_value", "ts"),
    ("ts bad month", _mut(ts="2026-13-01T00:00:00Z"), "invalid_value", "ts"),
    ("ts boolean", _mut(ts=True), "invalid_type", "ts"),
    ("device without id", _mut(device={"platform": "android", "os_version": "14"}),
     "no_device_id", "device"),
    # A missing device object may be reported as either code (the contract names both).
    ("device missing", _mut(device=None), ("no_device_id", "required"), "device"),
    ("device not an object", _mut(device="abc"), "invalid_type", "device"),
    ("device.gaid number", _dev(gaid=123), "invalid_type", "device.gaid"),
    ("device.opt_out string", _dev(opt_out="yes"), "invalid_type", "device.opt_out"),
    ("device.model too long", _dev(model="m" * 257), "too_long", "device.model"),
    ("device unknown field", _dev(foo="bar"), "unknown_field", "device.foo"),
    ("user_id number", _mut(user_id=42), "invalid_type", "user_id"),
    ("user_id too long", _mut(user_id="u" * 257), "too_long", "user_id"),
    ("user_agent too long", _mut(user_agent="a" * 1025), "too_long", "user_agent"),
    ("revenue string", _mut(type="purchase", name="p", revenue="1.99", currency="USD"),
     "invalid_type", "revenue"),
    ("props array", _mut(props=[1, 2]), "invalid_type", "props"),
    ("props nested object", _mut(props={"k": {"a": 1}}), "invalid_type", "props.k"),
    ("props nested array", _mut(props={"k": [1]}), "invalid_type", "props.k"),
    ("51 props", _mut(props={"p%02d" % i: i for i in range(51)}), "too_many_props", "props"),
    ("prop string too long", _mut(props={"k": "v" * 257}), "too_long", "props.k"),
    ("unknown top-level field", _mut(foo=1), "unknown_field", "foo"),
    ("event_id not a uuid", _mut(event_id="not-a-uuid"), "invalid_value", "event_id"),
    ("event_id number", _mut(event_id=5), "invalid_type", "event_id"),
    ("referrer too long", _mut(install_referrer={"referrer": "r" * 2049}), "too_long",
     "install_referrer.referrer"),
    ("referrer unknown field", _mut(install_referrer={"referrer": "x", "foo": 1}),
     "unknown_field", "install_referrer.foo"),
    ("referrer click_ts bad", _mut(install_referrer={"referrer": "x", "click_ts": "nope"}),
     "invalid_value", "install_referrer.click_ts"),
]


class RejectTest(IngestCase):

    def test_event_errors_in_batch(self):
        stored_bad = []
        for name, mut, code, field in EVENT_ERRORS:
            with self.subTest(name):
                good, bad = event(), event()
                mut(bad)
                obj = self.ingest_ok(self.d, self.app, {"events": [good, bad]},
                                     what="batch with %s" % name)
                self.assertEqual(obj["accepted"], 1, "%s: %r" % (name, obj))
                self.assertEqual(len(obj["rejected"]), 1, "%s: %r" % (name, obj))
                r = obj["rejected"][0]
                got_code = r.get("code")
                if isinstance(code, tuple) and got_code in code:
                    got_code = code
                self.assertEqual((r.get("index"), got_code, r.get("field")),
                                 (1, code, field), "%s: %r" % (name, r))
                self.assertIsInstance(r.get("message"), str, r)
                if isinstance(bad.get("event_id"), str):
                    stored_bad.append(bad["event_id"])
        _, by_id = self.export_by_id()
        for eid in stored_bad:
            self.assertNotIn(eid, by_id, "rejected event was stored")

    def test_single_invalid_event(self):
        for name, mut, code, field in EVENT_ERRORS[:8] + EVENT_ERRORS[-6:]:
            with self.subTest(name):
                bad = event()
                mut(bad)
                obj = self.assertError(self.d.ingest(self.app, bad), 400, code, field,
                                       what="single %s" % name)
                self.assertEqual(obj.get("accepted"), 0, obj)
                self.assertEqual(obj.get("duplicates"), 0, obj)
                rej = obj.get("rejected")
                self.assertIsInstance(rej, list, obj)
                self.assertEqual(len(rej), 1, obj)
                self.assertEqual((rej[0].get("index"), rej[0].get("code"), rej[0].get("field")),
                                 (0, code, field), obj)

    def test_non_object_in_batch(self):
        good = event()
        obj = self.ingest_ok(self.d, self.app, {"events": [good, 5, "x", [], None]},
                             accepted=1)
        idx = sorted(r.get("index") for r in obj["rejected"])
        self.assertEqual(idx, [1, 2, 3, 4], obj)
        for r in obj["rejected"]:
            self.assertEqual(r.get("code"), "invalid_type", r)

    def test_invalid_utf8_in_one_event(self):
        cases = [("user_id", lambda e: e.update(user_id="@@BAD@@")),
                 ("device.model", lambda e: e["device"].update(model="@@BAD@@")),
                 ("props.k", lambda e: e.update(props={"k": "@@BAD@@"}))]
        for field, mut in cases:
            for bad_bytes in (b"ab\xff\xfecd", b"\xc0\xaf", b"\xed\xa0\x80", b"x\xe2\x82"):
                with self.subTest(field=field, bytes=bad_bytes):
                    evs = [event(), event(), event()]
                    mut(evs[1])
                    body = json.dumps({"events": evs}).encode().replace(b"@@BAD@@", bad_bytes)
                    st, h, data = self.d.ingest(self.app, body)
                    self.assertStatus(st, 202, "batch with invalid UTF-8 in %s of event 1" %
                                      field, data)
                    obj = parse_json(data)
                    self.assertEqual(obj.get("accepted"), 2, obj)
                    self.assertEqual([(r.get("index"), r.get("code"), r.get("field"))
                                      for r in obj.get("rejected", [])],
                                     [(1, "invalid_utf8", field)], obj)

    def test_batch_element_not_an_object(self):
        # The item itself is wrong: its error still has every member of the contract's shape, field "".
        obj = self.ingest_ok(self.d, self.app, {"events": [event(), 42]}, accepted=1, duplicates=0)
        self.assertEqual(obj["rejected"][0]["index"], 1)
        self.assertEqual(obj["rejected"][0]["code"], "invalid_type")
        self.assertEqual(obj["rejected"][0]["field"], "")
        self.assertIsInstance(obj["rejected"][0]["message"], str)

    def test_invalid_json(self):
        bodies = [b"", b"not json", b"{", b'{"type": "session",', b"[1, 2]", b'"str"', b"42",
                  b"null", b'{"events": [}', b"\xff\xfe", b'{"events": [] } trailing']
        for body in bodies:
            with self.subTest(body=body):
                self.assertError(self.d.ingest(self.app, body), 400, "invalid_json",
                                 what="body %r" % body)

    def test_too_many_events(self):
        evs = [event() for _ in range(1001)]
        self.assertError(self.d.ingest(self.app, {"events": evs}), 413, "too_many_events",
                         what="1001 events")
        _, by_id = self.export_by_id()
        self.assertEqual(by_id, {}, "events of a 413 batch were stored")

    def test_body_too_large(self):
        body = b'{"events": [' + b" " * (1024 * 1024) + b"]}"
        head = ("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-App-Key: %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" %
                (self.app["app_key"], len(body))).encode()
        res = raw_request(self.d.host, self.d.port, head, body)
        self.assertIsNotNone(res, "connection closed without a response to a %d-byte body" %
                             len(body))
        self.assertError(res, 413, "body_too_large", what="%d-byte body" % len(body))

    def test_body_too_large_chunked(self):
        body = b'{"events": [' + b" " * (1024 * 1024 + 100) + b"]}"
        chunked = b""
        for i in range(0, len(body), 65536):
            part = body[i:i + 65536]
            chunked += b"%x\r\n" % len(part) + part + b"\r\n"
        chunked += b"0\r\n\r\n"
        head = ("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-App-Key: %s\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" %
                self.app["app_key"]).encode()
        res = raw_request(self.d.host, self.d.port, head, chunked)
        self.assertIsNotNone(res, "connection closed without a response to a chunked body")
        self.assertError(res, 413, "body_too_large", what="chunked %d-byte body" % len(body))

    def test_body_far_too_large(self):
        # Over twice http.max_body_bytes h2o refuses the body itself from its Content-Length,
        # before the request is routed; the answer must still be our JSON error.
        body = b" " * (5 * 1024 * 1024)
        head = ("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-App-Key: %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" %
                (self.app["app_key"], len(body))).encode()
        res = raw_request(self.d.host, self.d.port, head, body)
        self.assertIsNotNone(res, "no response to a 5 MiB body")
        self.assertError(res, 413, "body_too_large", what="5 MiB body")
        head = ("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: big-body-1\r\n"
                "Content-Length: %d\r\n\r\n" % len(body)).encode()
        res = raw_request(self.d.host, self.d.port, head, body)
        self.assertError(res, 413, "body_too_large", what="5 MiB body with a request id")
        self.assertEqual(res[1].get("x-request-id"), "big-body-1", res[1])

    def test_broken_framing(self):
        # Errors h2o finds while reading the body (before routing) are JSON too.
        cases = [("unknown transfer-encoding", "Transfer-Encoding: gzip\r\n", b""),
                 ("content-length not a number", "Content-Length: abc\r\n", b""),
                 ("broken chunk size", "Transfer-Encoding: chunked\r\n", b"zz\r\n")]
        for what, hdr, body in cases:
            with self.subTest(what):
                head = ("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-App-Key: %s\r\n%s\r\n" %
                        (self.app["app_key"], hdr)).encode()
                res = raw_request(self.d.host, self.d.port, head, body)
                self.assertIsNotNone(res, "no response: " + what)
                self.assertError(res, 400, "bad_request", what=what)
        st, _, _ = self.d.request("GET", "/healthz")
        self.assertEqual(st, 200)
        _, by_id = self.export_by_id()
        self.assertEqual(by_id, {}, "a refused request stored events")

    def test_headers_too_large(self):
        body = json.dumps(event()).encode()
        head = ("POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-App-Key: %s\r\n"
                "Content-Type: application/json\r\nX-Pad: %s\r\nContent-Length: %d\r\n\r\n" %
                (self.app["app_key"], "p" * (17 * 1024), len(body))).encode()
        res = raw_request(self.d.host, self.d.port, head, body)
        self.assertIsNotNone(res, "connection closed without a response to 17 KiB of headers")
        self.assertError(res, 431, "headers_too_large", what="17 KiB header")
        st, _, _ = self.d.request("GET", "/healthz")
        self.assertEqual(st, 200)

    def test_unauthorized(self):
        e = event()
        cases = [("no key", {}), ("unknown key", {"X-App-Key": "nope-" + new_id()}),
                 ("empty key", {"X-App-Key": ""}),
                 ("unknown secret", {"X-App-Secret": "nope-" + new_id()}),
                 ("key with one char changed",
                  {"X-App-Key": self.app["app_key"][:-1] +
                   ("A" if self.app["app_key"][-1] != "A" else "B")}),
                 ("secret used as key", {"X-App-Key": self.app["app_secret"]}),
                 ("key used as secret", {"X-App-Secret": self.app["app_key"]}),
                 # every credential sent must hold, not only the one that decides
                 ("unknown key beside a good secret",
                  {"X-App-Key": "nope-" + new_id(), "X-App-Secret": self.app["app_secret"]})]
        for name, hdrs in cases:
            with self.subTest(name):
                res = self.d.request("POST", "/v1/events", e, hdrs)
                self.assertError(res, 401, "unauthorized", what=name)
        _, by_id = self.export_by_id()
        self.assertEqual(by_id, {}, "an unauthorized event was stored")

    def test_key_and_secret_of_two_apps(self):
        other = self.d.create_app("acme", "other game", "android")
        time.sleep(1.2)  # a new app's keys are taken within a second
        res = self.d.request("POST", "/v1/events", event(),
                             {"X-App-Key": self.app["app_key"], "X-App-Secret": other["app_secret"]})
        self.assertError(res, 401, "unauthorized", "X-App-Key")
        res = self.d.request("POST", "/v1/events", event(),
                             {"X-App-Key": self.app["app_key"], "X-App-Secret": self.app["app_secret"]})
        self.assertStatus(res[0], 202, "the key and secret of one app", res[2])
        self.assertEqual(self.export_ok(self.d, other), [], "an event landed in the secret's app")


class DedupeTest(IngestCase):

    def setUp(self):
        self.d = self.daemon(start=False)
        self.app = self.d.create_app("acme", "game", "android")
        self.app_b = self.d.create_app("acme", "other", "ios")
        self.d.start()

    def test_same_id_in_one_request(self):
        e = event()
        obj = self.ingest_ok(self.d, self.app, {"events": [e, e]}, accepted=1, duplicates=1)
        self.assertEqual(obj["rejected"], [])
        out, by_id = self.export_by_id()
        self.assertEqual(len(by_id[e["event_id"]]), 1)
        self.assertEqual(len(out), 1)

    def test_nil_event_id_is_no_id(self):
        # The nil UUID is a placeholder some SDKs send: each such event gets an id of its own, none is a
        # duplicate of the first.
        nil = "00000000-0000-0000-0000-000000000000"
        a, b = event(event_id=nil), event(event_id=nil)
        self.ingest_ok(self.d, self.app, {"events": [a, b]}, accepted=2, duplicates=0)
        self.ingest_ok(self.d, self.app, a, accepted=1, duplicates=0)
        out, by_id = self.export_by_id()
        self.assertEqual(len(out), 3)
        self.assertNotIn(nil, by_id)

    def test_same_id_in_two_requests(self):
        e = event()
        self.assertEqual(self.ingest_ok(self.d, self.app, e),
                         {"accepted": 1, "duplicates": 0, "rejected": []})
        self.assertEqual(self.ingest_ok(self.d, self.app, e),
                         {"accepted": 0, "duplicates": 1, "rejected": []})
        self.ingest_ok(self.d, self.app, {"events": [e, event()]}, accepted=1, duplicates=1)
        out, by_id = self.export_by_id()
        self.assertEqual(len(by_id[e["event_id"]]), 1)
        self.assertEqual(len(out), 2)

    def test_duplicate_keeps_first_version(self):
        e1 = event(user_id="first")
        e2 = dict(e1, user_id="second")
        self.ingest_ok(self.d, self.app, e1, accepted=1)
        self.ingest_ok(self.d, self.app, e2, accepted=0, duplicates=1)
        _, by_id = self.export_by_id()
        self.assertEqual([o["user_id"] for o in by_id[e1["event_id"]]], ["first"])

    def test_uuid_case_insensitive(self):
        e = event()
        upper = dict(e, event_id=e["event_id"].upper())
        self.ingest_ok(self.d, self.app, upper, accepted=1)
        self.ingest_ok(self.d, self.app, e, accepted=0, duplicates=1,
                       what="same UUID in lower case")
        out, _ = self.export_by_id()
        self.assertEqual([o["event_id"] for o in out], [e["event_id"]],
                         "event_id exported in canonical lower case")

    def test_same_id_in_two_apps(self):
        app_b = self.app_b
        e = event()
        self.ingest_ok(self.d, self.app, e, accepted=1, duplicates=0)
        self.ingest_ok(self.d, app_b, e, accepted=1, duplicates=0, what="same id, other app")
        _, a = self.export_by_id(self.app)
        _, b = self.export_by_id(app_b)
        self.assertEqual(len(a.get(e["event_id"], [])), 1)
        self.assertEqual(len(b.get(e["event_id"], [])), 1)
        self.assertEqual(b[e["event_id"]][0]["app_id"], app_b["app_id"])

    def test_rejected_event_does_not_reserve_id(self):
        bad = event(foo=1)
        self.ingest_ok(self.d, self.app, {"events": [bad]}, accepted=0)
        del bad["foo"]
        self.ingest_ok(self.d, self.app, bad, accepted=1, duplicates=0,
                       what="resend of a corrected rejected event")


class NewAppWhileRunningTest(DaemonTestCase):

    def test_new_app_key_accepted_within_1s(self):
        d = self.daemon()
        first = d.create_app("acme", "first", "android")
        app = d.create_app("acme", "second", "web")
        self.assertNotEqual(first["app_id"], app["app_id"])
        self.assertNotEqual(first["app_key"], app["app_key"])
        created = time.monotonic()
        e = event()
        statuses = []
        while True:
            st, _, data = d.request("POST", "/v1/events", e, {"X-App-Key": app["app_key"]})
            statuses.append(st)
            if st == 202:
                break
            if time.monotonic() - created > 2.0:
                self.fail("key of an app created while running not accepted after 2 s "
                          "(statuses %r)\n%s" % (sorted(set(statuses)), self.logs()))
            time.sleep(0.05)
        elapsed = time.monotonic() - created
        self.assertLessEqual(elapsed, 1.2, "new key accepted only after %.2f s" % elapsed)
        out = self.export_ok(d, app)
        self.assertEqual([o["event_id"] for o in out], [e["event_id"]])
        self.assertEqual(out[0]["app_id"], app["app_id"])

    def test_create_app_output(self):
        d = self.daemon(start=False)
        a = d.create_app("acme", "one", "android")
        b = d.create_app("acme", "two", "ios", extra=["--store-url",
                                                       "https://apps.apple.com/app/id1"])
        c = d.create_app("other-org", "three", "web")
        self.assertEqual(a["org_id"], b["org_id"], "same org name, same org_id")
        self.assertNotEqual(a["org_id"], c["org_id"])
        ids = {x["app_id"] for x in (a, b, c)}
        keys = {x["app_key"] for x in (a, b, c)} | {x["app_secret"] for x in (a, b, c)}
        self.assertEqual(len(ids), 3)
        self.assertEqual(len(keys), 6)
        for x in (a, b, c):
            self.assertGreaterEqual(len(x["app_secret"]), 16, "secret looks too short: %r" % x)


if __name__ == "__main__":
    unittest.main()
