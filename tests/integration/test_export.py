"""GET /v1/export/events against the real daemon: tenant isolation, authentication,
the stored client IP, event-time filters, parameter errors and log order."""

import datetime
import json
import random
import unittest

from harness import DaemonTestCase, event, gaid, new_id, now_us, parse_json, raw_request, rfc3339

SEC = 1_000_000


class TwoAppsCase(DaemonTestCase):

    def setUp(self):
        self.d = self.daemon(start=False)
        self.a = self.d.create_app("acme", "app-a", "android")
        self.b = self.d.create_app("other-org", "app-b", "ios")
        self.d.start()

    def ids(self, app, secret=None, params=None):
        return [o["event_id"] for o in self.export_ok(self.d, app, params=params, secret=secret)]


class AuthIsolationTest(TwoAppsCase):

    def test_key_of_a_never_lands_in_b(self):
        ea = [event() for _ in range(5)]
        eb = [event() for _ in range(3)]
        self.ingest_ok(self.d, self.a, {"events": ea}, accepted=5)
        self.ingest_ok(self.d, self.b, {"events": eb}, accepted=3)
        # Server-to-server ingest with A's secret also lands in A.
        es = event()
        self.ingest_ok(self.d, self.a, es, accepted=1, use_secret=True)
        got_a = self.export_ok(self.d, self.a)
        got_b = self.export_ok(self.d, self.b)
        self.assertEqual(sorted(o["event_id"] for o in got_a),
                         sorted(e["event_id"] for e in ea + [es]))
        self.assertEqual(sorted(o["event_id"] for o in got_b), sorted(e["event_id"] for e in eb))
        self.assertTrue(all(o["app_id"] == self.a["app_id"] for o in got_a))
        self.assertTrue(all(o["app_id"] == self.b["app_id"] for o in got_b))

    def test_body_app_id_cannot_redirect(self):
        # app_id is server-set: in a body it is either rejected or ignored, never obeyed.
        e = event()
        e["app_id"] = self.b["app_id"]
        st, h, data = self.d.ingest(self.a, {"events": [e]})
        self.assertStatus(st, 202, "batch with app_id of B in the body", data)
        self.assertNotIn(e["event_id"], self.ids(self.b), "key of A stored an event in B")
        got_a = self.export_ok(self.d, self.a)
        for o in got_a:
            self.assertEqual(o["app_id"], self.a["app_id"])

    def test_export_with_other_apps_secret_is_not_found(self):
        self.ingest_ok(self.d, self.a, event(), accepted=1)
        st, h, data = self.d.request("GET", "/v1/export/events?app=" + self.a["app_id"],
                                     headers={"X-App-Secret": self.b["app_secret"]})
        self.assertError((st, h, data), 404, "not_found", "app", what="export of A with B's secret")
        self.assertNotIn(b"event_id", data)

    def test_export_with_app_key_is_unauthorized(self):
        self.ingest_ok(self.d, self.a, event(), accepted=1)
        path = "/v1/export/events?app=" + self.a["app_id"]
        cases = [("app key in X-App-Key", {"X-App-Key": self.a["app_key"]}),
                 ("app key in X-App-Secret", {"X-App-Secret": self.a["app_key"]}),
                 ("no credentials", {}),
                 ("unknown secret", {"X-App-Secret": "nope-" + new_id()})]
        for name, hdrs in cases:
            with self.subTest(name):
                res = self.d.request("GET", path, headers=hdrs)
                self.assertError(res, 401, "unauthorized", what="export with " + name)
                self.assertNotIn(b"event_id", res[2])


class IpTest(TwoAppsCase):

    def test_ip_with_app_key_is_connection_address(self):
        e1 = event(ip="203.0.113.7")
        e2 = event()
        e3 = event()
        self.ingest_ok(self.d, self.a, {"events": [e1, e2]}, accepted=2)
        st, _, data = self.d.ingest(self.a, e3, headers={"X-Forwarded-For": "198.51.100.9",
                                                         "X-Real-IP": "198.51.100.10"})
        self.assertStatus(st, 202, "event with X-Forwarded-For", data)
        got = {o["event_id"]: o for o in self.export_ok(self.d, self.a)}
        self.assertEqual(got[e1["event_id"]].get("ip"), "127.0.0.1",
                         "body ip must be ignored with X-App-Key")
        self.assertEqual(got[e2["event_id"]].get("ip"), "127.0.0.1")
        self.assertEqual(got[e3["event_id"]].get("ip"), "127.0.0.1",
                         "X-Forwarded-For from an untrusted peer must be ignored")

    def test_ip_with_secret_is_taken_from_body(self):
        e1 = event(ip="203.0.113.7")
        e2 = event(ip="2001:db8::1")
        e3 = event()
        self.ingest_ok(self.d, self.a, {"events": [e1, e2, e3]}, accepted=3, use_secret=True)
        got = {o["event_id"]: o for o in self.export_ok(self.d, self.a)}
        self.assertEqual(got[e1["event_id"]].get("ip"), "203.0.113.7")
        self.assertEqual(got[e2["event_id"]].get("ip"), "2001:db8::1")
        self.assertNotIn("ip", got[e3["event_id"]],
                         "without a body ip a server-to-server event has no address (the connection is the backend)")


class TrustedProxyTest(DaemonTestCase):
    """With http.trusted_proxies, the client address comes from X-Forwarded-For: the
    rightmost address that is not a trusted proxy, over every header line in order."""

    def setUp(self):
        self.d = self.daemon(start=False, extra_args=["--set", "http.trusted_proxies=127.0.0.1, 10.0.0.0/8"])
        self.a = self.d.create_app("acme", "app-a", "android")
        self.d.start()

    def send(self, xff_lines):
        e = event()
        body = json.dumps(e).encode()
        head = "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-App-Key: %s\r\n" % self.a["app_key"]
        for line in xff_lines:
            head += "X-Forwarded-For: %s\r\n" % line
        head += "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
        res = raw_request(self.d.host, self.d.port, head.encode(), body)
        self.assertIsNotNone(res)
        self.assertStatus(res[0], 202, "event behind a proxy", res[2])
        return e["event_id"]

    def test_client_address_from_trusted_proxies(self):
        plain = self.send(["198.51.100.7"])
        chain = self.send(["203.0.113.1, 198.51.100.8, 10.1.2.3"])
        # A client forges a header; the proxy appends its own line: the forged one is not believed.
        forged = self.send(["192.0.2.66", "198.51.100.9"])
        garbage = self.send(["not-an-ip"])
        got = {o["event_id"]: o.get("ip") for o in self.export_ok(self.d, self.a)}
        self.assertEqual(got[plain], "198.51.100.7")
        self.assertEqual(got[chain], "198.51.100.8")
        self.assertEqual(got[forged], "198.51.100.9")
        self.assertEqual(got[garbage], "127.0.0.1")


class FilterTest(TwoAppsCase):

    def setUp(self):
        super().setUp()
        # Ten events one second apart, one hour ago, on whole seconds; sent out of time order.
        self.base = (now_us() // SEC - 3600) * SEC
        self.evs = [event(ts=rfc3339(self.base + i * SEC, 3)) for i in range(10)]
        order = list(range(10))
        random.Random(7).shuffle(order)
        self.sent = [self.evs[i] for i in order]
        self.ingest_ok(self.d, self.a, {"events": self.sent}, accepted=10)

    def want(self, lo, hi):
        return sorted(self.evs[i]["event_id"] for i in range(lo, hi))

    def got(self, **params):
        return sorted(self.ids(self.a, params=params))

    def ms(self, i):
        return (self.base + i * SEC) // 1000

    def test_no_filter(self):
        self.assertEqual(self.got(), self.want(0, 10))

    def test_ms_bounds(self):
        self.assertEqual(self.got(**{"from": self.ms(3)}), self.want(3, 10), "from inclusive")
        self.assertEqual(self.got(to=self.ms(7)), self.want(0, 7), "to exclusive")
        self.assertEqual(self.got(**{"from": self.ms(3), "to": self.ms(7)}), self.want(3, 7))
        self.assertEqual(self.got(**{"from": self.ms(3) + 1}), self.want(4, 10))
        self.assertEqual(self.got(to=self.ms(7) + 1), self.want(0, 8))
        # An empty range (from == to) may be answered as empty or refused as a bad "to".
        st, h, out = self.d.export(self.a, params={"from": self.ms(5), "to": self.ms(5)})
        if st == 200:
            self.assertEqual(out, [])
        else:
            self.assertError((st, h, out), 400, None, what="from == to")
            self.assertIn(json.loads(out)["error"].get("field"), ("from", "to"))
        self.assertEqual(self.got(**{"from": self.ms(10)}), [])
        self.assertEqual(self.got(to=self.ms(0)), [])
        self.assertEqual(self.got(to=0), [], "to 0 (1970) is a bound too, not none")
        self.assertEqual(self.got(to="1970-01-01T00:00:00Z"), [])

    def test_rfc3339_bounds(self):
        t = lambda i, d=3: rfc3339(self.base + i * SEC, d)
        self.assertEqual(self.got(**{"from": t(3)}), self.want(3, 10), "from inclusive")
        self.assertEqual(self.got(to=t(7, 0)), self.want(0, 7), "to exclusive")
        self.assertEqual(self.got(**{"from": t(3, 6), "to": t(7, 6)}), self.want(3, 7))
        self.assertEqual(self.got(**{"from": rfc3339(self.base + 3 * SEC + 1, 6)}),
                         self.want(4, 10), "microsecond precision")
        dt = datetime.datetime.fromtimestamp((self.base + 2 * SEC) / SEC,
                                             tz=datetime.timezone.utc)
        plus1 = (dt + datetime.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S+01:00")
        self.assertEqual(self.got(**{"from": plus1}), self.want(2, 10), "offset form")

    def test_filter_is_on_event_time(self):
        # All ten were received just now, but their event time is an hour ago.
        half_hour_ago = (now_us() - 1800 * SEC) // 1000
        self.assertEqual(self.got(to=half_hour_ago), self.want(0, 10))
        self.assertEqual(self.got(**{"from": half_hour_ago}), [])

    def test_export_is_in_log_order_not_time_order(self):
        self.assertEqual(self.ids(self.a), [e["event_id"] for e in self.sent])
        self.assertEqual(self.ids(self.a, params={"from": self.ms(2)}),
                         [e["event_id"] for e in self.sent
                          if e["event_id"] in self.want(2, 10)])

    def test_bad_params(self):
        path = "/v1/export/events"
        hdr = {"X-App-Secret": self.a["app_secret"]}
        app = "app=" + self.a["app_id"]
        cases = [("from not a time", app + "&from=abc", "from"),
                 ("from bad date", app + "&from=2026-13-01T00:00:00Z", "from"),
                 ("to not a time", app + "&to=xyz", "to"),
                 ("to with junk", app + "&to=123abc", "to"),
                 ("app missing", "from=0", "app"),
                 ("app empty", "app=", "app")]
        for name, q, field in cases:
            with self.subTest(name):
                st, h, data = self.d.request("GET", path + "?" + q, headers=hdr)
                self.assertStatus(st, 400, name + " (" + q + ")", data)
                obj = parse_json(data, name)
                self.assertIsInstance(obj.get("error"), dict, obj)
                self.assertTrue(obj["error"].get("code"), obj)
                self.assertEqual(obj["error"].get("field"), field, "%s: %r" % (name, obj))
                self.assertTrue(h.get("x-request-id"))


class LogOrderTest(TwoAppsCase):

    def test_order_of_requests_and_batches(self):
        sent = []
        dev = {"gaid": gaid(), "platform": "android"}
        rnd = random.Random(3)
        for i in range(30):
            if i % 3 == 0:
                batch = [event(device=dict(dev), ts=rfc3339(now_us() - rnd.randint(1, 10**9), 6))
                         for _ in range(4)]
                self.ingest_ok(self.d, self.a, {"events": batch}, accepted=4)
                sent += batch
            else:
                e = event(ts=rfc3339(now_us() - rnd.randint(1, 10**9), 6))
                self.ingest_ok(self.d, self.a, e, accepted=1)
                sent.append(e)
        self.assertEqual(self.ids(self.a), [e["event_id"] for e in sent])



class SparseAppTest(TwoAppsCase):
    """An export reads the log's index a bounded stretch at a time (docs/api.md): an app with a few events
    among 40,000 of another's gets exactly its own, in log order, and the other app's touch export is empty."""

    def test_few_events_among_many(self):
        first = [event() for _ in range(2)]
        self.ingest_ok(self.d, self.b, {"events": first}, accepted=2)
        for _ in range(40):
            self.ingest_ok(self.d, self.a, {"events": [event() for _ in range(1000)]}, accepted=1000)
        last = [event() for _ in range(2)]
        self.ingest_ok(self.d, self.b, {"events": last}, accepted=2)
        self.assertEqual(self.ids(self.b), [e["event_id"] for e in first + last])
        self.assertEqual(len(self.ids(self.a)), 40000)
        st, _, body = self.d.request("GET", "/v1/export/touches?app=" + self.a["app_id"],
                                     headers={"X-App-Secret": self.a["app_secret"]})
        self.assertEqual((st, body), (200, b""))

if __name__ == "__main__":
    unittest.main()
