"""Touches through the real daemon: click links record a durable click and
redirect to the store (or an allowlisted URL, never elsewhere), impression
links answer 204, server-to-server batches take the app secret with
per-touch errors, touch exports, and forget requests cover touches."""

import json
import re
import time

from harness import DaemonTestCase, event, gaid, parse_json, quote
from test_tenancy import PASSWORD, create_user

STORE = "https://play.google.com/store/apps/details?id=com.example.game"


class TouchTest(DaemonTestCase):

    def setUp(self):
        self.d = self.daemon(start=False, extra_args=["--set", "privacy.check_interval=200ms"])
        self.app = self.d.create_app("Org A", "Game", "android", extra=["--store-url", STORE])
        self.other = self.d.create_app("Org B", "Game", "android")
        create_user(self.d.data_dir, "Org A", "owner@a.test", "owner")
        self.d.start()
        st, h, data = self.d.request("POST", "/v1/auth/login", {"email": "owner@a.test", "password": PASSWORD})
        self.tok = parse_json(data)["access_token"]

    def touches(self, app=None, secret=None):
        app = app or self.app
        st, h, data = self.d.request("GET", "/v1/export/touches?app=" + app["app_id"],
                                     headers={"X-App-Secret": secret or app["app_secret"]})
        self.assertStatus(st, 200, "export touches", data)
        return [json.loads(l) for l in data.decode().splitlines() if l]

    def accepted_counts(self):
        st, h, data = self.d.request("GET", "/metrics")
        out = {"click": 0, "impression": 0}
        for line in data.decode().splitlines():
            m = re.match(r'^umg_touches_accepted_total\{type="(\w+)"\} (\d+)$', line)
            if m:
                out[m.group(1)] = int(m.group(2))
        return out

    def assertStore(self, location, click_id=None):
        """The store URL with the click's id as its Play referrer (a made id when click_id is None)."""
        prefix = STORE + "&referrer=click_id%3D"
        self.assertTrue(location.startswith(prefix), location)
        if click_id is None:
            self.assertRegex(location[len(prefix):], "^[0-9a-f]{32}$")
        else:
            self.assertEqual(location[len(prefix):], click_id)

    def test_click_redirects_to_store_and_is_stored(self):
        g = gaid().upper()
        q = "source=meta&campaign=%s&adset=a1&ad=ad7&site=s&gaid=%s&lookback=3d&retargeting=1&sub1=x&deep_link=%s" % (
            quote("Black Friday"), g, quote("mygame://level/3"))
        st, h, data = self.d.request("GET", "/c/%s?%s" % (self.app["app_id"], q),
                                     headers={"User-Agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8)"})
        self.assertStatus(st, 302, "click", data)
        self.assertTrue(h.get("x-request-id"))
        out = self.touches()
        self.assertEqual(len(out), 1)
        t = out[0]
        self.assertStore(h["location"], t["click_id"])  # Play hands the referrer to the app at install
        self.assertEqual((t["type"], t["source"], t["campaign"], t["adset"], t["ad"], t["site"]),
                         ("click", "meta", "Black Friday", "a1", "ad7", "s"))
        self.assertEqual(t["device"]["gaid"], g.lower())
        self.assertEqual(t["ip"], "127.0.0.1")
        self.assertEqual(t["user_agent"], "Mozilla/5.0 (Linux; Android 14; Pixel 8)")
        self.assertEqual(t["lookback_s"], 3 * 86400)
        self.assertIs(t["retargeting"], True)
        self.assertEqual(len(t["click_id"]), 32, "a click_id is made when absent")
        self.assertEqual(t["deep_link"], "mygame://level/3")
        self.assertEqual(self.export_ok(self.d, self.app), [], "touches are not events")

    def test_link_query_parsing(self):
        # One scan of the query: the first of a repeated parameter wins, '+' and %XX decode, parts without '='
        # and empty parts are skipped, a malformed escape drops only its own parameter (named in the header).
        q = ("&&source=first+net&campaign=sp%C3%A4t&source=second&flag&adset=%zz&ad=&site=a%3Db%26c"
             "&sub5=" + "x" * 20)
        st, h, data = self.d.request("GET", "/c/%s?%s" % (self.app["app_id"], q))
        self.assertStatus(st, 302, "click", data)
        self.assertStore(h["location"])
        self.assertEqual(h.get("cache-control"), "no-store")
        self.assertEqual(h.get("x-dropped-fields"), "adset")
        t = self.touches()[0]
        self.assertEqual((t["source"], t["campaign"], t["site"], t["sub5"]), ("first net", "sp\u00e4t", "a=b&c", "x" * 20))
        self.assertNotIn("adset", t)
        self.assertNotIn("ad", t)
        self.assertRegex(t["click_id"], "^[0-9a-f]{32}$")

    def test_every_bad_parameter_is_dropped_and_named(self):
        # More bad parameters than the first version had room for (8): the User-Agent after them, with a tab,
        # was then stored as it came and the click could not be applied.
        long = "x" * 257
        names = ["source", "campaign", "campaign_id", "adset", "ad", "site", "click_id", "idfa", "idfv", "lookback",
                 "retargeting"]
        bad = {"idfa": "bad", "idfv": "bad", "lookback": "99y", "retargeting": "7"}
        g = gaid()
        q = "&".join("%s=%s" % (n, bad.get(n, long)) for n in names) + "&gaid=" + g
        st, h, data = self.d.request("GET", "/c/%s?%s" % (self.app["app_id"], q),
                                     headers={"User-Agent": "Mozilla\t(Linux; Android 14; Pixel 8)"})
        self.assertStatus(st, 302, "click", data)
        self.assertEqual(h.get("x-dropped-fields"), ",".join(names + ["user_agent"]))
        t = self.touches()[0]
        self.assertEqual(t["device"]["gaid"], g)
        self.assertNotIn("user_agent", t)
        # The pipeline applies it, and judges it as a link opened without a User-Agent.
        deadline = time.monotonic() + 20
        while "fraud" not in t and time.monotonic() < deadline:
            time.sleep(0.05)
            t = self.touches()[0]
        self.assertEqual(t.get("fraud"), {"status": "rejected", "reason": "bot_user_agent"}, t)
        with open(self.d.log_path, "rb") as f:
            self.assertNotIn(b"cannot be applied", f.read())

    def test_user_agent_not_utf8_is_dropped(self):
        """Surrogates, overlong forms and code points past U+10FFFF in a User-Agent were stored once, and then
        refused by every reader: the pipeline skipped the click and a forget request could not erase it."""
        uas = ["sur\xed\xa0\x80x", "over\xe0\x80\x80x", "big\xf4\x90\x80\x80x", "lead\xf5\x80\x80\x80x"]
        for ua in uas:
            st, h, data = self.d.request("GET", "/c/%s?source=bad_ua&gaid=%s" % (self.app["app_id"], gaid()),
                                         headers={"User-Agent": ua})
            self.assertStatus(st, 302, repr(ua), data)
            self.assertEqual(h.get("x-dropped-fields"), "user_agent", repr(ua))
        st, h, data = self.d.request("GET", "/c/%s?source=good_ua" % self.app["app_id"],
                                     headers={"User-Agent": "Mozilla/5.0 (caf\xc3\xa9)"})  # é, as UTF-8 bytes
        self.assertNotIn("x-dropped-fields", h)
        out = self.touches()
        self.assertEqual(sum(1 for t in out if t["source"] == "bad_ua" and "user_agent" not in t), len(uas))
        self.assertEqual([t["user_agent"] for t in out if t["source"] == "good_ua"], ["Mozilla/5.0 (caf\u00e9)"])
        deadline = time.monotonic() + 20  # every one is applied: each gets its fraud verdict
        while any("fraud" not in t for t in out if t["source"] == "bad_ua") and time.monotonic() < deadline:
            time.sleep(0.05)
            out = self.touches()
        with open(self.d.log_path, "rb") as f:
            self.assertNotIn(b"cannot be applied", f.read())

    def test_redirect_only_to_allowlisted_hosts(self):
        st, h, data = self.d.request("PATCH", "/v1/apps/" + self.app["app_id"],
                                     {"settings": {"redirect_allowlist": ["example.com"]}},
                                     {"Authorization": "Bearer " + self.tok})
        self.assertStatus(st, 200, "allowlist", data)
        cases = [("https://example.com/landing?x=1", "https://example.com/landing?x=1"),
                 ("https://promo.example.com/a", "https://promo.example.com/a"),
                 ("https://evil.com/", STORE), ("https://example.com.evil.com/", STORE),
                 ("https://evilexample.com/", STORE), ("javascript:alert(1)", STORE),
                 ("//evil.com", STORE), ("https://user@evil.com@example.com/", STORE),
                 ("https://example.com:x@evil.test/phish", STORE), ("https://example.com\\@evil.test/", STORE),
                 ("https://example.com:8443/ok", "https://example.com:8443/ok"),
                 ("https://example.com/\r\nSet-Cookie: x=1", STORE)]
        for target, want in cases:
            with self.subTest(target=target):
                st, h, data = self.d.request("GET", "/c/%s?source=s&redirect=%s" % (self.app["app_id"], quote(target)))
                self.assertStatus(st, 302, target, data)
                if want == STORE:
                    self.assertStore(h["location"])
                else:
                    self.assertEqual(h["location"], want)  # a page of the app's own: as it is
                self.assertNotIn("set-cookie", h)

    def test_head_records_nothing(self):
        # Link checkers and chat previews ask with HEAD: the same answer, no click stored.
        st, h, data = self.d.request("HEAD", "/c/%s?source=s&gaid=%s" % (self.app["app_id"], gaid()))
        self.assertStatus(st, 302, "HEAD click", data)
        self.assertStore(h["location"])
        st, h, data = self.d.request("HEAD", "/v/%s?source=s" % self.app["app_id"])
        self.assertStatus(st, 204, "HEAD impression", data)
        self.d.request("GET", "/c/%s?source=real" % self.app["app_id"])
        self.assertEqual([t["source"] for t in self.touches()], ["real"])

    def test_store_url_and_allowlist_checks(self):
        # A store URL becomes the Location of every click: no spaces or control characters, by the CLI too
        # (it let "\r\nSet-Cookie: ..." through once) or by PATCH.
        with self.assertRaises(AssertionError) as cm:
            self.d.create_app("Org A", "Bad", "android", extra=["--store-url", "https://x.example/\r\nSet-Cookie: a=1"])
        self.assertIn("store", str(cm.exception))
        for bad in ("https://x.example/a b", "https://x.example/\u0007"):
            resp = self.d.request("PATCH", "/v1/apps/" + self.app["app_id"], {"store_url": bad},
                                  {"Authorization": "Bearer " + self.tok})
            self.assertError(resp, 400, "invalid_value", "store_url")
        # Allowlist items are hosts: a port was accepted once and never matched; any port of a host is allowed.
        resp = self.d.request("PATCH", "/v1/apps/" + self.app["app_id"],
                              {"settings": {"redirect_allowlist": ["sub.test:8443"]}},
                              {"Authorization": "Bearer " + self.tok})
        self.assertError(resp, 400, "invalid_value", "redirect_allowlist")
        st, h, data = self.d.request("GET", "/c/%s?source=s" % self.app["app_id"])
        self.assertStatus(st, 302, "click", data)
        self.assertStore(h["location"])

    def test_impression_bad_fields_and_unknown_app(self):
        st, h, data = self.d.request("GET", "/v/%s?source=net&gaid=not-a-uuid&lookback=99y" % self.app["app_id"])
        self.assertStatus(st, 204, "impression", data)
        self.assertIn("gaid", h.get("x-dropped-fields", ""))
        out = self.touches()
        self.assertEqual(out[0]["type"], "impression")
        self.assertNotIn("device", out[0])
        st, h, data = self.d.request("GET", "/c/app_0000000000000000?source=s")
        self.assertError((st, h, data), 404, "not_found", "app")
        st, h, data = self.d.request("GET", "/metrics")
        self.assertIn(b'umg_touches_accepted_total{type="impression"} 1', data)

    def test_server_to_server(self):
        now_ms = int(time.time() * 1000)
        body = {"touches": [
            {"type": "click", "ts": now_ms - 1000, "source": "net", "campaign": "c", "click_id": "abc123",
             "device": {"idfa": gaid()}, "ip": "198.51.100.7", "user_agent": "UA", "retargeting": True},
            {"type": "impression", "ts": now_ms - 2000, "source": "net", "ip": "198.51.100.8"},
            {"type": "swipe", "ts": now_ms},
            {"type": "click", "ts": now_ms, "device": {"gaid": "zzz"}},
            {"type": "click", "ts": now_ms, "nope": 1},
        ]}
        counts = self.accepted_counts()
        st, h, data = self.d.request("POST", "/v1/touches", body, {"X-App-Secret": self.app["app_secret"]})
        self.assertStatus(st, 202, "touches", data)
        r = parse_json(data)
        self.assertEqual(r["accepted"], 2)
        # /metrics counts each by its type (a batch's impressions were counted as clicks once)
        after = self.accepted_counts()
        self.assertEqual((after["click"] - counts["click"], after["impression"] - counts["impression"]), (1, 1))
        self.assertEqual([(x["index"], x["field"]) for x in r["rejected"]],
                         [(2, "type"), (3, "device.gaid"), (4, "nope")])
        out = self.touches()
        self.assertEqual([t["click_id"] for t in out if t["type"] == "click"], ["abc123"])
        # A touch with its own touch_id is stored once, however often it is sent.
        once = {"touches": [{"type": "click", "ts": now_ms, "source": "net", "touch_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}]}
        for dup in (0, 1):
            st, h, data = self.d.request("POST", "/v1/touches", once, {"X-App-Secret": self.app["app_secret"]})
            self.assertEqual((parse_json(data)["accepted"], parse_json(data)["duplicates"]), (1 - dup, dup))
        self.assertEqual(len(self.touches()), 3)
        st, h, data = self.d.request("POST", "/v1/touches", body, {"X-App-Key": self.app["app_key"]})
        self.assertEqual(st, 401, data)
        st, h, data = self.d.request("POST", "/v1/touches", "{", {"X-App-Secret": self.app["app_secret"]})
        self.assertError((st, h, data), 400, "invalid_json")
        st, h, data = self.d.request("GET", "/v1/export/touches?app=" + self.app["app_id"],
                                     headers={"X-App-Secret": self.other["app_secret"]})
        self.assertError((st, h, data), 404, "not_found", "app")

    def test_forget_covers_touches(self):
        x = gaid()
        for _ in range(3):
            st, h, data = self.d.request("GET", "/c/%s?source=s&gaid=%s" % (self.app["app_id"], x))
            self.assertStatus(st, 302, "click", data)
        self.d.request("GET", "/c/%s?source=s&gaid=%s" % (self.app["app_id"], gaid()))
        self.ingest_ok(self.d, self.app, event(device={"gaid": x, "platform": "android"}), accepted=1)
        st, h, data = self.d.request("POST", "/v1/privacy/forget", {"app_id": self.app["app_id"],
                                                                    "devices": [{"gaid": x}]},
                                     {"Authorization": "Bearer " + self.tok})
        rid = parse_json(data)["request_id"]
        deadline = time.time() + 15
        while time.time() < deadline:
            r = parse_json(self.d.request("GET", "/v1/privacy/requests/" + rid,
                                          headers={"Authorization": "Bearer " + self.tok})[2])
            if r["status"] == "done":
                break
            time.sleep(0.1)
        self.assertEqual(r["records_forgotten"], 4)
        self.assertEqual(len(self.touches()), 1)
        self.assertEqual(self.export_ok(self.d, self.app), [])
