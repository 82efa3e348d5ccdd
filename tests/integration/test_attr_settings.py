"""Attribution windows as settings: per app and per source, changed with
`unmogrowp admin app settings` (while the daemon runs) and with
PATCH /v1/apps/{id}, and applied by the pipeline to the next touches and
installs."""

import json
import subprocess
import time

import harness
from harness import DaemonTestCase, gaid, now_us, parse_json
from test_tenancy import PASSWORD, create_user

DAY_MS = 86400 * 1000


def cli_settings(data_dir, app_id, *args):
    p = subprocess.run([harness.binary(), "admin", "app", "settings", "--data", data_dir, "--app", app_id] +
                       list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


class SettingsCase(DaemonTestCase):

    def setUp(self):
        self.d = self.daemon(start=False)
        self.app = self.d.create_app("Org A", "Game", "android")
        create_user(self.d.data_dir, "Org A", "owner@a.test", "owner")
        self.d.start()
        st, h, data = self.d.request("POST", "/v1/auth/login", {"email": "owner@a.test", "password": PASSWORD})
        self.tok = parse_json(data)["access_token"]

    def secret(self):
        return {"X-App-Secret": self.app["app_secret"]}

    def click(self, source, dev, age_ms):
        st, h, data = self.d.request("POST", "/v1/touches", {"touches": [
            {"type": "click", "ts": now_us() // 1000 - age_ms, "source": source, "device": {"gaid": dev}}]},
            headers=self.secret())
        self.assertStatus(st, 202, "touch", data)
        self.assertEqual(parse_json(data)["accepted"], 1, data)

    def install(self, dev):
        st, h, data = self.d.request("POST", "/v1/events", {"type": "install", "ts": now_us() // 1000,
                                                             "device": {"gaid": dev, "platform": "android"}},
                                     headers=self.secret())
        self.assertStatus(st, 202, "install", data)

    def attribution(self, dev):
        deadline = time.monotonic() + 10
        while True:
            st, h, data = self.d.request("GET", "/v1/attribution?app=%s&device=%s" % (self.app["app_id"], dev),
                                         headers={"X-App-Key": self.app["app_key"]})
            self.assertStatus(st, 200, "attribution", data)
            obj = parse_json(data)
            if obj["status"] not in ("pending", "not_found") or time.monotonic() > deadline:
                return obj
            time.sleep(0.02)


class AttrSettingsTest(SettingsCase):

    def test_source_window_from_the_cli_while_running(self):
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"], "--source-window", "meta=28",
                                    "--set", "click_lookback_days=3")
        self.assertEqual(rc, 0, err)
        s = json.loads(out)
        self.assertEqual(s["source_click_lookback_days"], {"meta": 28})
        self.assertEqual(s["click_lookback_days"], 3)
        time.sleep(1.5)  # the registry reloads within 250 ms, the pipeline's cache within 1 s
        a, b, c = gaid(), gaid(), gaid()
        self.click("meta", a, 20 * DAY_MS)    # inside meta's own 28 days
        self.click("google", b, 20 * DAY_MS)  # outside the app's 3 days
        self.click("google", c, 2 * DAY_MS)   # inside the app's 3 days
        for dev in (a, b, c):
            self.install(dev)
        self.assertEqual(self.attribution(a)["status"], "attributed")
        self.assertEqual(self.attribution(a)["source"], "meta")
        self.assertEqual(self.attribution(b)["status"], "organic")
        self.assertEqual(self.attribution(c)["status"], "attributed")
        # The audit log names the change and the CLI as its actor.
        st, h, data = self.d.request("GET", "/v1/audit", headers={"Authorization": "Bearer " + self.tok})
        self.assertStatus(st, 200, "audit", data)
        self.assertIn("app.settings", data.decode())

    def test_cli_errors_name_the_field(self):
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"], "--set", "click_lookback_days=99")
        self.assertEqual(rc, 1)
        self.assertIn('"field":"click_lookback_days"', err)
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"], "--source-window", "meta=31")
        self.assertEqual(rc, 1)
        self.assertIn('"field":"source_click_lookback_days"', err)
        rc, out, err = cli_settings(self.d.data_dir, "app_0000000000000000")
        self.assertEqual(rc, 1)
        self.assertIn("not_found", err)
        # A setting or a source given twice is refused, not taken once and audited as the other value.
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"], "--set", "click_lookback_days=6",
                                    "--set", "click_lookback_days=9")
        self.assertEqual(rc, 1)
        self.assertIn('"field":"settings.click_lookback_days"', err)
        self.assertIn("named twice", err)
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"], "--source-window", "meta=28",
                                    "--source-window", "meta=2")
        self.assertEqual(rc, 1)
        self.assertIn("a source is named twice", err)
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"], "--set", "click_lookback_days")
        self.assertEqual(rc, 2)
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"], "--json", "[1]")
        self.assertEqual(rc, 1)
        self.assertIn("invalid_json", err)
        # Reading only changes nothing.
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"])
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["click_lookback_days"], 7)

    def test_patch_source_windows(self):
        path = "/v1/apps/" + self.app["app_id"]
        auth = {"Authorization": "Bearer " + self.tok}
        st, h, data = self.d.request("PATCH", path, {"settings": {"source_click_lookback_days": {"tiktok": 14,
                                                                                                 "x\"y": 2}}},
                                     headers=auth)
        self.assertStatus(st, 200, "patch", data)
        self.assertEqual(parse_json(data)["settings"]["source_click_lookback_days"], {"tiktok": 14, "x\"y": 2})
        for bad in ({"tiktok": 0}, {"tiktok": "14"}, [1], {"": 3}, {("s%d" % i): 1 for i in range(65)}):
            self.assertError(self.d.request("PATCH", path, {"settings": {"source_click_lookback_days": bad}},
                                            headers=auth),
                             400, None, "source_click_lookback_days", "bad %r" % (bad,))
        st, h, data = self.d.request("PATCH", path, b'{"settings":{"source_click_lookback_days":{"meta":28,"meta":2}}}',
                                     headers=auth)
        self.assertError((st, h, data), 400, "invalid_value", "source_click_lookback_days", "a source named twice")
        st, h, data = self.d.request("PATCH", path, b'{"settings":{"click_lookback_days":6,"click_lookback_days":9}}',
                                     headers=auth)
        self.assertError((st, h, data), 400, "invalid_value", "settings.click_lookback_days", "a setting named twice")
        # Other settings keep the map; an empty object clears it.
        st, h, data = self.d.request("PATCH", path, {"settings": {"click_lookback_days": 9}}, headers=auth)
        self.assertEqual(parse_json(data)["settings"]["source_click_lookback_days"], {"tiktok": 14, "x\"y": 2})
        st, h, data = self.d.request("PATCH", path, {"settings": {"source_click_lookback_days": {}}}, headers=auth)
        self.assertEqual(parse_json(data)["settings"]["source_click_lookback_days"], {})


    def test_probabilistic_and_reengagement_windows_per_app(self):
        """The other three windows are the app's too: a probabilistic match of 2 h, a re-engagement look-back of
        2 days and a re-engagement window of 5 days (each refused out of its bounds, naming it)."""
        path = "/v1/apps/" + self.app["app_id"]
        auth = {"Authorization": "Bearer " + self.tok}
        for name, bad in (("probabilistic_window_hours", 25), ("reengagement_lookback_days", 31),
                          ("reengagement_window_days", 0), ("reengagement_window_days", 91)):
            self.assertError(self.d.request("PATCH", path, {"settings": {name: bad}}, headers=auth),
                             400, None, name, "%s=%d" % (name, bad))
        st, h, data = self.d.request("PATCH", path, {"settings": {"probabilistic_window_hours": 2,
                                                                  "reengagement_lookback_days": 2,
                                                                  "reengagement_window_days": 5}}, headers=auth)
        self.assertStatus(st, 200, "patch", data)
        got = parse_json(data)["settings"]
        self.assertEqual((got["probabilistic_window_hours"], got["reengagement_lookback_days"],
                          got["reengagement_window_days"]), (2, 2, 5))
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"], "--set", "probabilistic_window_hours=0")
        self.assertEqual(rc, 1)
        self.assertIn('"field":"probabilistic_window_hours"', err)
        time.sleep(1.5)  # the pipeline's cache of app settings

        ua = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/UD1A.230803.041; wv) AppleWebKit/537.36"
        now_ms = now_us() // 1000
        devs = {}
        for ip, age_h in (("203.0.113.7", 3), ("203.0.113.8", 1)):  # outside and inside the 2 h
            st, h, data = self.d.request("POST", "/v1/touches", {"touches": [
                {"type": "click", "ts": now_ms - age_h * 3600 * 1000, "source": "meta", "ip": ip,
                 "user_agent": ua}]}, headers=self.secret())
            self.assertStatus(st, 202, "touch", data)
            devs[ip] = gaid()
        for ip, dev in devs.items():
            st, h, data = self.d.request("POST", "/v1/events", {
                "type": "install", "ts": now_ms, "ip": ip, "user_agent": ua,
                "device": {"gaid": dev, "platform": "android", "os_version": "14"}}, headers=self.secret())
            self.assertStatus(st, 202, "install", data)
        self.assertEqual(self.attribution(devs["203.0.113.7"])["status"], "organic")
        a = self.attribution(devs["203.0.113.8"])
        self.assertEqual((a["status"], a["match"]), ("attributed", "probabilistic"), a)

        # Re-engagement: installed devices, a retargeting click 3 days (outside) or 1 day (inside) before a session.
        for age_d in (3, 1):
            dev = gaid()
            st, h, data = self.d.request("POST", "/v1/events", {"type": "install", "ts": now_ms - 10 * DAY_MS,
                                                                 "device": {"gaid": dev, "platform": "android"}},
                                         headers=self.secret())
            self.assertStatus(st, 202, "install", data)
            st, h, data = self.d.request("POST", "/v1/touches", {"touches": [
                {"type": "click", "ts": now_ms - age_d * DAY_MS, "source": "rt", "retargeting": True,
                 "device": {"gaid": dev}}]}, headers=self.secret())
            self.assertStatus(st, 202, "touch", data)
            st, h, data = self.d.request("POST", "/v1/events", {"type": "session", "ts": now_ms - 1000,
                                                                 "device": {"gaid": dev, "platform": "android"}},
                                         headers=self.secret())
            self.assertStatus(st, 202, "session", data)
            # The session is applied once a later install is (log order): wait for a marker device's.
            marker = gaid()
            self.install(marker)
            self.assertNotEqual(self.attribution(marker)["status"], "pending")
            a = self.attribution(dev)
            if age_d == 3:
                self.assertEqual((a["reengagements"], a["reengagement"]), (0, None), a)
            else:
                self.assertEqual(a["reengagements"], 1, a)
                r = a["reengagement"]
                self.assertEqual(r["source"], "rt")
                self.assertEqual(harness.parse_rfc3339_us(r["until"]) - harness.parse_rfc3339_us(r["ts"]),
                                 5 * 86400 * 10**6, r)


class ReportingSettingsTest(SettingsCase):
    """settings.timezone and settings.currency: the app's reporting time zone and currency."""

    def path(self):
        return "/v1/apps/" + self.app["app_id"]

    def auth(self):
        return {"Authorization": "Bearer " + self.tok}

    def get_settings(self):
        st, h, data = self.d.request("GET", self.path(), headers=self.auth())
        self.assertStatus(st, 200, "get app", data)
        return parse_json(data)["settings"]

    def test_defaults_set_and_read_over_http(self):
        s = self.get_settings()
        self.assertEqual(s["timezone"], "UTC")
        self.assertEqual(s["currency"], "USD")
        st, h, data = self.d.request("PATCH", self.path(), {"settings": {"timezone": "Europe/Berlin",
                                                                         "currency": "EUR"}}, headers=self.auth())
        self.assertStatus(st, 200, "patch", data)
        self.assertEqual(parse_json(data)["settings"]["timezone"], "Europe/Berlin")
        self.assertEqual(parse_json(data)["settings"]["currency"], "EUR")
        # Other settings keep them, and they keep the other settings.
        st, h, data = self.d.request("PATCH", self.path(), {"settings": {"click_lookback_days": 9}},
                                     headers=self.auth())
        self.assertStatus(st, 200, "patch", data)
        st, h, data = self.d.request("PATCH", self.path(), {"settings": {"timezone": "Asia/Kolkata"}},
                                     headers=self.auth())
        s = self.get_settings()
        self.assertEqual((s["timezone"], s["currency"], s["click_lookback_days"]), ("Asia/Kolkata", "EUR", 9))
        # The app list shows them too; the change is audited.
        st, h, data = self.d.request("GET", "/v1/apps", headers=self.auth())
        self.assertEqual(parse_json(data)["apps"][0]["settings"]["timezone"], "Asia/Kolkata")
        st, h, data = self.d.request("GET", "/v1/audit", headers=self.auth())
        self.assertStatus(st, 200, "audit", data)
        self.assertIn("app.settings", data.decode())

    def test_bad_values_name_the_field(self):
        for bad in ("Mars/Olympus_Mons", "../../etc/passwd", "/usr/share/zoneinfo/UTC", "", "Europe/Berlin ",
                    "utc", "x" * 64, 3, ["UTC"]):
            self.assertError(self.d.request("PATCH", self.path(), {"settings": {"timezone": bad}},
                                            headers=self.auth()),
                             400, None, "settings.timezone", "timezone %r" % (bad,))
        for bad in ("eur", "EURO", "XXX", "ABC", "", 978, ["EUR"]):
            self.assertError(self.d.request("PATCH", self.path(), {"settings": {"currency": bad}},
                                            headers=self.auth()),
                             400, None, "settings.currency", "currency %r" % (bad,))
        # A bad value changes nothing, even next to a good one.
        self.assertError(self.d.request("PATCH", self.path(), {"settings": {"currency": "JPY", "timezone": "Nowhere"}},
                                        headers=self.auth()), 400, "invalid_value", "settings.timezone")
        s = self.get_settings()
        self.assertEqual((s["timezone"], s["currency"]), ("UTC", "USD"))

    def test_cli_set_and_reject(self):
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"], "--set", "timezone=Europe/Berlin",
                                    "--set", "currency=EUR")
        self.assertEqual(rc, 0, err)
        s = json.loads(out)
        self.assertEqual((s["timezone"], s["currency"]), ("Europe/Berlin", "EUR"))
        # The running daemon reads the same settings.
        s = self.get_settings()
        self.assertEqual((s["timezone"], s["currency"]), ("Europe/Berlin", "EUR"))
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"], "--set", "timezone=Europe/Atlantis")
        self.assertEqual(rc, 1)
        self.assertIn('"field":"settings.timezone"', err)
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"], "--set", "currency=usd")
        self.assertEqual(rc, 1)
        self.assertIn('"field":"settings.currency"', err)
        rc, out, err = cli_settings(self.d.data_dir, self.app["app_id"], "--json", '{"timezone":"America/New_York"}')
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["timezone"], "America/New_York")
        st, h, data = self.d.request("GET", "/v1/audit", headers=self.auth())
        self.assertIn("America/New_York", data.decode())  # the CLI's audit record carries what it set

    def test_create_with_reporting_settings(self):
        app = self.d.create_app("Org A", "Shop", "ios", ["--timezone", "Asia/Tokyo", "--currency", "JPY"])
        st, h, data = self.d.request("GET", "/v1/apps/" + app["app_id"], headers=self.auth())
        self.assertStatus(st, 200, "get app", data)
        s = parse_json(data)["settings"]
        self.assertEqual((s["timezone"], s["currency"], s["click_lookback_days"]), ("Asia/Tokyo", "JPY", 7))
        for flag, value in (("--timezone", "Asia/Atlantis"), ("--currency", "YEN")):
            p = subprocess.run([harness.binary(), "admin", "app", "create", "--data", self.d.data_dir, "--org",
                                "Org A", "--name", "Bad" + flag, "--platform", "ios", flag, value],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn(flag, p.stderr.decode())


class MtaChannelCapTest(SettingsCase):
    """GET /v1/reports/mta keeps at most 64 channels: the 63 most used and (other)."""

    def send_channels(self, clicks):
        """One device per source s<i>, clicked clicks[i] times an hour ago, then installed."""
        touches, installs = [], []
        now = now_us() // 1000
        for i, n in enumerate(clicks):
            dev = gaid()
            for _ in range(n):
                touches.append({"type": "click", "ts": now - 3600 * 1000, "source": "s%d" % i, "device": {"gaid": dev}})
            # each from its own address: many installs from one would be a device farm (docs/fraud.md)
            installs.append({"type": "install", "ts": now, "device": {"gaid": dev, "platform": "android"},
                             "ip": "198.51.100.%d" % i})
        st, h, data = self.d.request("POST", "/v1/touches", {"touches": touches}, headers=self.secret())
        self.assertStatus(st, 202, "touches", data)
        st, h, data = self.d.request("POST", "/v1/events", {"events": installs}, headers=self.secret())
        self.assertStatus(st, 202, "installs", data)
        self.attribution(installs[-1]["device"]["gaid"])

    def test_exactly_64_channels_keep_their_names(self):
        self.send_channels([2] * 63 + [1])  # s63 the least used: still named, no (other)
        st, h, data = self.d.request("GET", "/v1/reports/mta?app=%s&model=last" % self.app["app_id"],
                                     headers=self.secret())
        self.assertStatus(st, 200, "mta", data)
        names = [c["name"] for c in parse_json(data)["report"]["channels"]]
        self.assertEqual(sorted(names), sorted("s%d" % i for i in range(64)), names)

    def test_more_than_64_channels(self):
        self.send_channels([3] + [1] * 69)  # source s0 is used by 3 touches, s1..s69 by one each: s0 is kept
        for model in ("markov", "linear"):
            st, h, data = self.d.request("GET", "/v1/reports/mta?app=%s&model=%s" % (self.app["app_id"], model),
                                         headers=self.secret())
            self.assertStatus(st, 200, "mta", data)
            rep = parse_json(data)["report"]
            names = [c["name"] for c in rep["channels"]]
            self.assertEqual(len(names), 64, names)
            self.assertIn("(other)", names)
            self.assertIn("s0", names)
            self.assertAlmostEqual(rep["total"], 70.0, places=5)
            self.assertAlmostEqual(sum(c["credit"] for c in rep["channels"]), rep["total"], places=5)
            other = [c for c in rep["channels"] if c["name"] == "(other)"][0]
            self.assertGreater(other["credit"], 0)
