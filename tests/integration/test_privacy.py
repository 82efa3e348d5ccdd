"""Privacy through the real daemon: a forget request removes a device's events
from the log (and so from exports) within the stated time, leaves other
devices, other apps and later events alone, survives a restart, leaves the
device's identifiers nowhere on disk, and old IP addresses are truncated."""

import json
import shutil
import os
import re
import time

from harness import DaemonTestCase, event, gaid, parse_json
from test_tenancy import PASSWORD, create_user

FAST = ["--set", "privacy.check_interval=200ms"]


class ForgetCase(DaemonTestCase):

    def login(self, email):
        st, h, data = self.d.request("POST", "/v1/auth/login", {"email": email, "password": PASSWORD})
        self.assertStatus(st, 200, "login", data)
        return parse_json(data)["access_token"]

    def call(self, method, path, tok, body=None):
        return self.d.request(method, path, body, {"Authorization": "Bearer " + tok})

    def wait_done(self, rid, tok=None, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            st, h, data = self.call("GET", "/v1/privacy/requests/" + rid, tok or self.tok)
            self.assertStatus(st, 200, "request status", data)
            r = parse_json(data)
            if r["status"] == "done":
                return r
            time.sleep(0.1)
        self.fail("forget request %s not done after %ds\n%s" % (rid, timeout, self.logs()))

    def files_containing(self, needle):
        hits = []
        for root, _, files in os.walk(self.d.data_dir):
            for f in files:
                if f == "daemon.log":
                    continue  # the harness's copy of stderr: no identifiers are logged, checked below
                try:
                    with open(os.path.join(root, f), "rb") as fh:
                        data = fh.read()
                except FileNotFoundError:
                    continue  # a temporary file renamed over its target after the listing
                if needle.encode() in data or needle.upper().encode() in data:
                    hits.append(os.path.join(root, f))
        return hits


class ForgetTest(ForgetCase):

    def setUp(self):
        self.d = self.daemon(start=False, extra_args=FAST)
        self.a = self.d.create_app("Org A", "Game", "android")
        self.b = self.d.create_app("Org B", "Game", "android")
        create_user(self.d.data_dir, "Org A", "owner@a.test", "owner")
        create_user(self.d.data_dir, "Org A", "analyst@a.test", "analyst")
        create_user(self.d.data_dir, "Org B", "owner@b.test", "owner")
        self.d.start()
        self.tok = self.login("owner@a.test")

    def test_forget_device_everywhere(self):
        x, y = gaid(), gaid()
        ex = [event(device={"gaid": x, "platform": "android"}, user_id="user-x") for _ in range(30)]
        ey = [event(device={"gaid": y, "platform": "android"}) for _ in range(20)]
        self.ingest_ok(self.d, self.a, {"events": ex[:15] + ey + ex[15:]}, accepted=50)
        self.ingest_ok(self.d, self.b, {"events": [event(device={"gaid": x, "platform": "android"})]}, accepted=1)
        self.assertTrue(self.files_containing(x), "the device is stored before the request")

        st, h, data = self.call("POST", "/v1/privacy/forget", self.tok,
                                {"app_id": self.a["app_id"], "devices": [{"gaid": x.upper()}]})
        self.assertStatus(st, 202, "forget", data)
        req = parse_json(data)
        self.assertEqual(req["status"], "pending")
        done = self.wait_done(req["request_id"])
        self.assertEqual(done["records_forgotten"], 30)

        out = self.export_ok(self.d, self.a)
        self.assertEqual(sorted(o["event_id"] for o in out), sorted(e["event_id"] for e in ey))
        self.assertEqual(len(self.export_ok(self.d, self.b)), 1, "another tenant's app is untouched")
        # Nowhere on disk for app A: only app B's event still carries the id.
        for f in self.files_containing("user-x"):
            self.fail("user id still in %s" % f)
        hits = self.files_containing(x)
        self.assertTrue(all(f.endswith(".log") for f in hits), hits)
        self.assertEqual(len(hits), 1, hits)
        self.assertNotIn(x.encode(), open(self.d.log_path, "rb").read())

        # Later events of the device are kept; retried old ones stay duplicates (never stored again).
        late = event(device={"gaid": x, "platform": "android"})
        self.ingest_ok(self.d, self.a, late, accepted=1)
        self.ingest_ok(self.d, self.a, ex[0], duplicates=1)
        self.d.restart()
        out = self.export_ok(self.d, self.a)
        self.assertEqual(sorted(o["event_id"] for o in out), sorted([e["event_id"] for e in ey] + [late["event_id"]]))
        audit = parse_json(self.call("GET", "/v1/audit?action=privacy.forget.completed", self.tok)[2])
        self.assertEqual(len(audit["entries"]), 1)

    def attribution(self, app, dev):
        st, h, data = self.d.request("GET", "/v1/attribution?app=%s&device=%s" % (app["app_id"], dev),
                                     headers={"X-App-Key": app["app_key"]})
        self.assertStatus(st, 200, "attribution", data)
        return parse_json(data)

    def installs(self, app):
        st, h, data = self.d.request("GET", "/v1/export/installs?app=" + app["app_id"],
                                     headers={"X-App-Secret": app["app_secret"]})
        self.assertStatus(st, 200, "export installs", data)
        return [json.loads(l) for l in data.decode().splitlines() if l]

    def test_forget_reaches_the_attribution_store(self):
        """The pipeline's store forgets the device with the log: its state, its decisions, its touches."""
        x, y = gaid(), gaid()
        ts = int(time.time() * 1000)
        touches = [{"type": "click", "ts": ts - 60000, "source": "net", "device": {"gaid": d}, "ip": "198.51.100.7"}
                   for d in (x, y)]
        st, h, data = self.d.request("POST", "/v1/touches", {"touches": touches},
                                     headers={"X-App-Secret": self.a["app_secret"]})
        self.assertStatus(st, 202, "touches", data)
        # x also has an IDFV, sent only with its session: the store must forget that alias too.
        xi = event(type="install", device={"gaid": x, "platform": "android"})
        xs = event(type="session", device={"gaid": x, "idfv": "6d92078a-8246-4ba4-ae5b-76104861e7dc",
                                           "platform": "android"})
        yi = event(type="install", device={"gaid": y, "platform": "android"})
        self.ingest_ok(self.d, self.a, {"events": [xi, xs, yi]}, accepted=3)
        deadline = time.time() + 10
        while self.attribution(self.a, x)["status"] != "attributed" or len(self.installs(self.a)) < 2:
            self.assertLess(time.time(), deadline, "the pipeline did not attribute the installs")
            time.sleep(0.05)
        self.assertEqual(self.attribution(self.a, "6d92078a-8246-4ba4-ae5b-76104861e7dc")["status"], "attributed")

        st, h, data = self.call("POST", "/v1/privacy/forget", self.tok,
                                {"app_id": self.a["app_id"], "devices": [{"gaid": x}]})
        self.assertStatus(st, 202, "forget", data)
        self.wait_done(parse_json(data)["request_id"])
        self.assertEqual(self.attribution(self.a, x)["status"], "not_found")
        self.assertEqual(self.attribution(self.a, "6d92078a-8246-4ba4-ae5b-76104861e7dc")["status"], "not_found")
        rows = self.installs(self.a)
        self.assertEqual([r["event_id"] for r in rows], [yi["event_id"]], "only the other device's install is left")
        self.assertEqual(self.attribution(self.a, y)["status"], "attributed")
        self.assertIn("forgotten from the attribution store: 1 devices, 1 touches, 1 decisions", self.d.log_text())
        # A restart (and a replay of the store from the log) does not bring it back.
        self.d.stop()
        shutil.rmtree(os.path.join(self.d.data_dir, "attr"))
        self.d.start()
        deadline = time.time() + 10
        while self.attribution(self.a, y)["status"] != "attributed":
            self.assertLess(time.time(), deadline, "the replay did not catch up")
            time.sleep(0.05)
        self.assertEqual(self.attribution(self.a, x)["status"], "not_found")

    def test_permissions_and_isolation(self):
        body = {"app_id": self.a["app_id"], "devices": [{"gaid": gaid()}]}
        st, h, data = self.call("POST", "/v1/privacy/forget", self.login("analyst@a.test"), body)
        self.assertError((st, h, data), 403, "forbidden")
        tok_b = self.login("owner@b.test")
        st, h, data = self.call("POST", "/v1/privacy/forget", tok_b, body)
        self.assertError((st, h, data), 404, "not_found")
        st, h, data = self.d.request("POST", "/v1/privacy/forget", body, {"X-App-Secret": self.a["app_secret"]})
        self.assertError((st, h, data), 403, "forbidden")
        st, h, data = self.call("POST", "/v1/privacy/forget", self.tok, body)
        rid = parse_json(data)["request_id"]
        st, h, data = self.call("GET", "/v1/privacy/requests/" + rid, tok_b)
        self.assertError((st, h, data), 404, "not_found")
        lst = parse_json(self.call("GET", "/v1/privacy/requests", self.tok)[2])["requests"]
        self.assertEqual([r["request_id"] for r in lst], [rid])
        for bad, field in [({"app_id": self.a["app_id"]}, "devices"),
                           ({"app_id": self.a["app_id"], "devices": [{"email": "x"}]}, "devices"),
                           ({"app_id": self.a["app_id"], "devices": [{"gaid": ""}]}, "devices"),
                           ({"app_id": self.a["app_id"], "devices": [{}]}, "devices"),
                           ({"app_id": self.a["app_id"], "devices": "x"}, "devices"),
                           ({"devices": [{"gaid": "x"}]}, "app_id")]:
            st, h, data = self.call("POST", "/v1/privacy/forget", self.tok, bad)
            self.assertEqual(st, 400, (bad, data))
            self.assertEqual(parse_json(data)["error"]["field"], field, (bad, data))

    def test_cli_forget_while_running(self):
        x = gaid()
        self.ingest_ok(self.d, self.a, event(device={"gaid": x, "platform": "android"}), accepted=1)
        import subprocess
        import harness
        p = subprocess.run([harness.binary(), "admin", "privacy", "forget", "--data", self.d.data_dir,
                            "--app", self.a["app_id"], "--id", "gaid=" + x], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)
        rid = parse_json(p.stdout)["request_id"]
        self.assertEqual(self.wait_done(rid)["records_forgotten"], 1)
        self.assertEqual(self.export_ok(self.d, self.a), [])


class SegmentSummaryTest(ForgetCase):
    """A forget pass leaves `<base>.sum` beside each segment it read, naming the
    (hashed) identifiers of the requests' apps there; later passes read only the
    segments that may hold a forgotten device."""

    def setUp(self):
        self.d = self.daemon(start=False, extra_args=FAST + ["--set", "log.segment_bytes=1m"])
        self.a = self.d.create_app("Org A", "Game", "android")
        create_user(self.d.data_dir, "Org A", "owner@a.test", "owner")
        self.d.start()
        self.tok = self.login("owner@a.test")

    def forget(self, dev):
        st, h, data = self.call("POST", "/v1/privacy/forget", self.tok,
                                {"app_id": self.a["app_id"], "devices": [{"gaid": dev}]})
        self.assertStatus(st, 202, "forget", data)
        return self.wait_done(parse_json(data)["request_id"])

    def last_pass(self):
        """(records read, segments passed over) of the newest completed rewrite in the daemon's log."""
        for line in reversed(open(self.d.log_path, encoding="utf-8", errors="replace").read().splitlines()):
            m = re.search(r"log rewrite done: .* (\d+) records read, .* (\d+) passed over by their summaries",
                          line)
            if m:
                return int(m.group(1)), int(m.group(2))
        self.fail("no rewrite in the daemon's log\n" + self.logs())

    def rewrites(self):
        return "\n".join(l for l in open(self.d.log_path, encoding="utf-8", errors="replace")
                         if "rewrite" in l or "sum" in l)

    def sums(self):
        d = os.path.join(self.d.data_dir, "log")
        return sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith(".sum"))

    def test_later_forgets_read_only_segments_with_the_device(self):
        devs = [gaid() for _ in range(4)]
        kept = []
        for b in range(8):  # about 1,600 events a segment: 8 batches fill several
            evs = [event(device={"gaid": gaid(), "platform": "android"}) for _ in range(999)]
            evs.append(event(device={"gaid": devs[b // 2], "platform": "android"}))
            self.ingest_ok(self.d, self.a, {"events": evs}, accepted=1000)
            kept += [e["event_id"] for e in evs[:-1]]
        self.assertEqual(self.forget(devs[0])["records_forgotten"], 2)
        first, skipped = self.last_pass()
        self.assertGreaterEqual(first, 8000 - 2, "the first pass reads every segment")
        self.assertEqual(skipped, 0)
        self.assertGreaterEqual(len(self.sums()), 3, "a summary beside each segment read")

        self.assertEqual(self.forget(devs[3])["records_forgotten"], 2)
        read, skipped = self.last_pass()
        self.assertGreaterEqual(skipped, 2, "segments without the device were passed over\n" + self.rewrites())
        self.assertLess(read, first / 2, "records read: %d, first pass %d" % (read, first))

        # Summaries survive a restart; one that does not check out means a whole read, not a miss.
        self.d.restart()
        self.tok = self.login("owner@a.test")
        for path in self.sums():
            with open(path, "r+b") as f:
                f.seek(30)
                f.write(b"\xff\xfe")
        self.assertEqual(self.forget(devs[2])["records_forgotten"], 2)
        read, skipped = self.last_pass()
        self.assertEqual(skipped, 0, "damaged summaries are not trusted")
        self.assertEqual(self.forget(devs[1])["records_forgotten"], 2)
        read, skipped = self.last_pass()
        self.assertGreaterEqual(skipped, 1, "summaries rebuilt by the pass before\n" + self.rewrites())
        self.assertLess(read, first, self.rewrites())
        out = self.export_ok(self.d, self.a)
        self.assertEqual(sorted(o["event_id"] for o in out), sorted(kept))
        self.assertEqual(self.files_containing(devs[1]), [])


class IpTruncationTest(DaemonTestCase):

    def test_old_ips_truncated(self):
        d = self.daemon(start=False, extra_args=["--set", "privacy.ip_retention=1s", "--set",
                                                 "privacy.ip_interval=1s", "--set",
                                                 "privacy.check_interval=200ms"])
        app = d.create_app("Org", "Game", "android")
        d.start()
        e4 = event(ip="203.0.113.77")
        e6 = event(ip="2001:db8:aa:bb::7")
        self.ingest_ok(d, app, {"events": [e4, e6]}, use_secret=True, accepted=2)
        deadline = time.time() + 15
        while time.time() < deadline:
            out = {o["event_id"]: o for o in self.export_ok(d, app)}
            if out[e4["event_id"]]["ip"] == "203.0.113.0":
                break
            time.sleep(0.2)
        self.assertEqual(out[e4["event_id"]]["ip"], "203.0.113.0")
        self.assertEqual(out[e6["event_id"]]["ip"], "2001:db8:aa::")
        # Stopped first: a running daemon writes its flag files through a
        # temporary name, which could vanish between the listing and the read.
        d.stop()
        for root, _, files in os.walk(os.path.join(d.data_dir, "log")):
            for f in files:
                self.assertNotIn(b"203.0.113.77", open(os.path.join(root, f), "rb").read(), f)


K1 = "k1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
K2 = "k2 f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f\n"


class PiiAtRestTest(DaemonTestCase):

    def log_bytes(self, d):
        data = b""
        for root, _, files in os.walk(os.path.join(d.data_dir, "log")):
            for f in files:
                try:
                    data += open(os.path.join(root, f), "rb").read()
                except FileNotFoundError:
                    pass  # a pass rewriting the log renamed it (an index's .new) after the listing
        return data

    def test_encrypted_fields_and_rotation(self):
        keys = os.path.join(self.tmpdir(), "pii.keys")
        with open(keys, "w") as f:
            f.write(K1)
        d = self.daemon(start=False, extra_args=["--set", "privacy.pii_key_file=" + keys, "--set",
                                                 "privacy.encrypt_fields=ip,user_id,gaid", "--set",
                                                 "privacy.check_interval=200ms", "--set",
                                                 "privacy.ip_interval=1s"])
        app = d.create_app("Org", "Game", "android")
        create_user(d.data_dir, "Org", "owner@o.test", "owner")
        d.start()
        x = gaid()
        evs = [event(device={"gaid": x, "platform": "android"}, user_id="alice-%d" % i, ip="198.51.100.%d" % i)
               for i in range(1, 5)]
        # A client sending a value that looks encrypted gets it encrypted like any other.
        evs.append(event(device={"gaid": x, "platform": "android"}, user_id="enc:v1:k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                         ip="198.51.100.5"))
        self.ingest_ok(d, app, {"events": evs}, use_secret=True, accepted=5)
        raw = self.log_bytes(d)
        for secret in (x.encode(), b"alice-1", b"198.51.100.1"):
            self.assertNotIn(secret, raw, "stored in the clear")
        self.assertIn(b"enc:v1:k1:", raw)
        out = {o["event_id"]: o for o in self.export_ok(d, app)}
        # Touches are encrypted at rest too.
        st, h, data = d.request("GET", "/c/%s?source=s&gaid=%s" % (app["app_id"], x))
        self.assertIn(st, (204, 302), data)
        self.assertNotIn(x.encode(), self.log_bytes(d))
        st, h, data = d.request("GET", "/v1/export/touches?app=" + app["app_id"], headers={"X-App-Secret": app["app_secret"]})
        self.assertEqual(json.loads(data.decode().splitlines()[0])["device"]["gaid"], x)
        for e in evs:
            o = out[e["event_id"]]
            self.assertEqual((o["device"]["gaid"], o["user_id"], o["ip"]),
                             (x, e["user_id"], e["ip"]), "exports are in the clear")
        # Rotation: a second key; after the next pass nothing is under k1 any more.
        with open(keys, "a") as f:
            f.write(K2)
        d.restart()
        deadline = time.time() + 15
        while time.time() < deadline and b"enc:v1:k1:" in self.log_bytes(d):
            time.sleep(0.2)
        raw = self.log_bytes(d)
        self.assertNotIn(b"enc:v1:k1:", raw)
        self.assertIn(b"enc:v1:k2:", raw)
        self.assertEqual(len(self.export_ok(d, app)), 5)
        # Forgetting still finds the device through the encryption.
        st, h, data = d.request("POST", "/v1/auth/login", {"email": "owner@o.test", "password": PASSWORD})
        tok = parse_json(data)["access_token"]
        st, h, data = d.request("POST", "/v1/privacy/forget", {"app_id": app["app_id"], "devices": [{"gaid": x}]},
                                {"Authorization": "Bearer " + tok})
        self.assertStatus(st, 202, "forget", data)
        rid = parse_json(data)["request_id"]
        deadline = time.time() + 15
        while time.time() < deadline:
            r = parse_json(d.request("GET", "/v1/privacy/requests/" + rid, headers={"Authorization": "Bearer " + tok})[2])
            if r["status"] == "done":
                break
            time.sleep(0.1)
        self.assertEqual(r["records_forgotten"], 6)
        self.assertEqual(self.export_ok(d, app), [])
        # The old key may now go: the daemon starts with k2 alone.
        with open(keys, "w") as f:
            f.write(K2)
        d.restart()
        self.ingest_ok(d, app, event(user_id="bob"), accepted=1)
        self.assertEqual([o["user_id"] for o in self.export_ok(d, app)], ["bob"])

    def test_bad_configuration_stops_the_daemon(self):
        d = self.daemon(start=False, extra_args=["--set", "privacy.encrypt_fields=ip"])
        p = __import__("subprocess").run(d.command(), stdout=-1, stderr=-1, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"privacy.pii_key_file", p.stderr)
