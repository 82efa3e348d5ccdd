"""The network-level fraud checks through the real daemon: signed SDK requests
(settings.require_signature set with PATCH /v1/apps/{id} and with `unmogrowp
admin app settings`, every 401 reason, replays, re-signed retries, unsigned
traffic of other apps and of servers), and the IP lists (loaded at start,
reloaded on SIGHUP, a failed reload keeping the old lists, a bad spec
refusing to start)."""

import hashlib
import hmac
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import uuid

import harness
from harness import DaemonTestCase, event, parse_json
from test_tenancy import PASSWORD, create_user


def sign(secret, ts, body):
    return "v1=" + hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()


def metric(text, name, labels=""):
    m = re.search(r"^%s%s (\d+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return int(m.group(1)) if m else None


class SignatureTest(DaemonTestCase):

    def setUp(self):
        self.d = self.daemon(start=False)
        self.signed = self.d.create_app("Org A", "Signed", "ios")
        self.cli_app = self.d.create_app("Org A", "Signed by CLI", "android")
        self.plain = self.d.create_app("Org A", "Plain", "android")
        create_user(self.d.data_dir, "Org A", "owner@a.test", "owner")
        self.d.start()
        st, h, data = self.d.request("POST", "/v1/auth/login", {"email": "owner@a.test", "password": PASSWORD})
        self.tok = {"Authorization": "Bearer " + parse_json(data)["access_token"]}

    def post(self, app, body, headers):
        h = {"X-App-Key": app["app_key"]}
        h.update(headers)
        return self.d.request("POST", "/v1/events", body, h)

    def signed_headers(self, app, body, ts=None, secret=None):
        ts = str(int(time.time()) if ts is None else ts)
        return {"X-Signature-Timestamp": ts, "X-Signature": sign(secret or app["signing_secret"], ts, body)}

    def turn_on(self):
        st, h, data = self.d.request("PATCH", "/v1/apps/" + self.signed["app_id"],
                                     {"settings": {"require_signature": True}}, self.tok)
        self.assertStatus(st, 200, "PATCH require_signature", data)
        self.assertIs(parse_json(data)["settings"]["require_signature"], True)
        p = subprocess.run([harness.binary(), "admin", "app", "settings", "--data", self.d.data_dir, "--app",
                            self.cli_app["app_id"], "--set", "require_signature=true"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIs(json.loads(p.stdout)["require_signature"], True)
        time.sleep(1.5)  # the registry reloads within 250 ms

    def test_settings_validation_and_audit(self):
        st, h, data = self.d.request("GET", "/v1/apps/" + self.plain["app_id"], headers=self.tok)
        self.assertIs(parse_json(data)["settings"]["require_signature"], False)
        self.assertError(self.d.request("PATCH", "/v1/apps/" + self.signed["app_id"],
                                        {"settings": {"require_signature": "yes"}}, self.tok),
                         400, "invalid_type", "require_signature")
        self.turn_on()
        st, h, data = self.d.request("GET", "/v1/audit?action=app.settings", headers=self.tok)
        self.assertStatus(st, 200, "audit", data)
        targets = [e["target"] for e in parse_json(data)["entries"]]
        self.assertIn(self.signed["app_id"], targets)
        self.assertIn(self.cli_app["app_id"], targets)
        # Other settings keep the switch.
        st, h, data = self.d.request("PATCH", "/v1/apps/" + self.signed["app_id"],
                                     {"settings": {"click_lookback_days": 9}}, self.tok)
        self.assertIs(parse_json(data)["settings"]["require_signature"], True)

    def test_every_reason(self):
        self.turn_on()
        ev = event()
        ev["event_id"] = str(uuid.uuid4())
        body = json.dumps({"events": [ev]}).encode()
        now = int(time.time())
        for app in (self.signed, self.cli_app):
            self.assertError(self.post(app, body, {}), 401, "signature_missing", "X-Signature", "unsigned")
        only_sig = self.signed_headers(self.signed, body)
        del only_sig["X-Signature-Timestamp"]
        self.assertError(self.post(self.signed, body, only_sig), 401, "signature_missing", "X-Signature",
                         "no timestamp")
        bad = [
            {"X-Signature-Timestamp": str(now), "X-Signature": "v1=zz"},
            {"X-Signature-Timestamp": "soon", "X-Signature": sign(self.signed["signing_secret"], "soon", body)},
            self.signed_headers(self.signed, body, secret="ss_not_the_secret"),
            self.signed_headers(self.signed, body, secret=self.signed["app_key"]),
            # The app secret reads the app's data and must not ship inside an app: it does not sign.
            self.signed_headers(self.signed, body, secret=self.signed["app_secret"]),
            self.signed_headers(self.cli_app, body),  # another app's signing secret
        ]
        for i, h in enumerate(bad):
            self.assertError(self.post(self.signed, body, h), 401, "signature_invalid", "X-Signature", "bad %d" % i)
        # A signature over another body.
        h = self.signed_headers(self.signed, body + b" ")
        self.assertError(self.post(self.signed, body, h), 401, "signature_invalid", "X-Signature", "other body")
        for ts in (now - 600, now + 600):
            self.assertError(self.post(self.signed, body, self.signed_headers(self.signed, body, ts)), 401,
                             "signature_stale", "X-Signature-Timestamp", "ts %d" % (ts - now))
        # Nothing of the refused requests was stored.
        self.assertEqual(self.export_ok(self.d, self.signed), [])
        good = self.signed_headers(self.signed, body)
        st, h, data = self.post(self.signed, body, good)
        self.assertStatus(st, 202, "signed", data)
        self.assertEqual(parse_json(data)["accepted"], 1)
        self.assertError(self.post(self.signed, body, good), 401, "signature_replayed", "X-Signature", "replay")
        # A retry re-signed with a fresh timestamp passes (and the event_id makes it a duplicate).
        retry = self.signed_headers(self.signed, body, int(time.time()) + 1)
        st, h, data = self.post(self.signed, body, retry)
        self.assertStatus(st, 202, "re-signed retry", data)
        self.assertEqual(parse_json(data)["duplicates"], 1)
        # Servers with the app secret, and apps without the setting, need no signature.
        st, h, data = self.d.ingest(self.signed, {"events": [event()]}, use_secret=True)
        self.assertStatus(st, 202, "server-to-server", data)
        st, h, data = self.post(self.plain, json.dumps({"events": [event()]}).encode(), {})
        self.assertStatus(st, 202, "unsigned app", data)
        st, h, data = self.d.request("GET", "/metrics")
        text = data.decode()
        for reason, least in (("signature_missing", 3), ("signature_invalid", 7), ("signature_stale", 2),
                              ("signature_replayed", 1), ("ok", 2)):
            n = metric(text, "umg_fraud_signature_total", '{result="%s"}' % reason)
            self.assertIsNotNone(n, reason)
            self.assertGreaterEqual(n, least, reason)

    def test_signing_secret_apart_and_rotated(self):
        for app in (self.signed, self.cli_app, self.plain):
            self.assertTrue(app["signing_secret"].startswith("ss_"), app)
            self.assertNotEqual(app["signing_secret"], app["app_secret"])
        # It is a credential of nothing: not as an app secret, not as an app key.
        st, h, data = self.d.request("GET", "/v1/export/events?app=" + self.plain["app_id"],
                                     headers={"X-App-Secret": self.plain["signing_secret"]})
        self.assertEqual(st, 401, data)
        st, h, data = self.d.request("POST", "/v1/events", {"events": [event()]},
                                     {"X-App-Key": self.plain["signing_secret"]})
        self.assertEqual(st, 401, data)
        self.turn_on()
        keys = "/v1/apps/%s/keys" % self.signed["app_id"]
        st, h, data = self.d.request("GET", keys, headers=self.tok)
        self.assertStatus(st, 200, "keys", data)
        k = parse_json(data)
        self.assertEqual((k["signing_secret"], k["previous_signing_secret"]), (self.signed["signing_secret"], None))
        # Rotated with an overlap: both sign until it ends, then only the new one.
        st, h, data = self.d.request("POST", keys + "/rotate", {"which": "signing_secret", "overlap_seconds": 2},
                                     self.tok)
        self.assertStatus(st, 200, "rotate", data)
        new = parse_json(data)
        self.assertTrue(new["signing_secret"].startswith("ss_"))
        self.assertNotEqual(new["signing_secret"], self.signed["signing_secret"])
        self.assertEqual(new["previous_signing_secret"], self.signed["signing_secret"])
        self.assertEqual(new["app_secret"], self.signed["app_secret"])  # the other credentials stay
        time.sleep(1.0)  # the registry reloads within 250 ms
        for secret in (self.signed["signing_secret"], new["signing_secret"]):
            body = json.dumps({"events": [event()]}).encode()
            st, h, data = self.post(self.signed, body, self.signed_headers(self.signed, body, secret=secret))
            self.assertStatus(st, 202, "in the overlap", data)
        time.sleep(2.0)
        body = json.dumps({"events": [event()]}).encode()
        self.assertError(self.post(self.signed, body, self.signed_headers(self.signed, body)), 401,
                         "signature_invalid", "X-Signature", "old signing secret after the overlap")
        st, h, data = self.post(self.signed, body, self.signed_headers(self.signed, body,
                                                                       secret=new["signing_secret"]))
        self.assertStatus(st, 202, "new signing secret", data)
        self.assertError(self.d.request("POST", keys + "/rotate", {"which": "nothing"}, self.tok), 400,
                         "invalid_value", "which")
        st, h, data = self.d.request("GET", "/v1/audit?action=key.rotate", headers=self.tok)
        self.assertIn('"which":"signing_secret"', data.decode())
        # `admin app list` shows it.
        p = subprocess.run([harness.binary(), "admin", "app", "list", "--data", self.d.data_dir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        listed = {a["app_id"]: a for a in json.loads(p.stdout)}
        self.assertEqual(listed[self.signed["app_id"]]["signing_secret"], new["signing_secret"])


class SigningUpgradeTest(DaemonTestCase):
    """A data directory from before signing secrets: its apps sign with their app secret's value until the
    signing secret is rotated, so their SDKs keep working across the upgrade."""

    def test_old_apps_keep_signing(self):
        d = self.daemon(start=False)
        app = d.create_app("Org A", "Old", "ios")
        db = sqlite3.connect(os.path.join(d.data_dir, "meta.db"))
        for c in ("signing_secret", "prev_signing_secret", "prev_signing_until_us"):
            db.execute("ALTER TABLE apps DROP COLUMN " + c)
        db.execute("UPDATE apps SET settings = json_set(settings, '$.require_signature', json('true'))")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        db.execute("PRAGMA user_version = %d" % (version - 1))
        db.commit()
        db.close()
        d.start()
        body = json.dumps({"events": [event()]}).encode()
        ts = str(int(time.time()))
        st, h, data = d.request("POST", "/v1/events", body, {
            "X-App-Key": app["app_key"], "X-Signature-Timestamp": ts, "X-Signature": sign(app["app_secret"], ts, body)})
        self.assertStatus(st, 202, "signed with the app secret's value after the upgrade", data)
        p = subprocess.run([harness.binary(), "admin", "app", "list", "--data", d.data_dir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(json.loads(p.stdout)[0]["signing_secret"], app["app_secret"])


class IpListTest(DaemonTestCase):

    def test_load_reload_and_failed_reload(self):
        t = self.tmpdir()
        dc, tor = os.path.join(t, "dc.txt"), os.path.join(t, "tor.txt")
        with open(dc, "w") as f:
            f.write("# data centres\r\n198.51.100.0/24\r\n2001:db8::/32\r\nnot an address\r\n")
        with open(tor, "w") as f:
            f.write("203.0.113.7\n")
        d = self.daemon(extra_args=["--set", "fraud.ip_lists=dc=%s,tor=%s" % (dc, tor)])

        def prefixes():
            text = d.request("GET", "/metrics")[2].decode()
            return (metric(text, "umg_fraud_iplist_prefixes", '{list="dc"}'),
                    metric(text, "umg_fraud_iplist_prefixes", '{list="tor"}'),
                    metric(text, "umg_fraud_iplist_reloads_total"),
                    metric(text, "umg_fraud_iplist_reload_failures_total"))

        self.assertEqual(prefixes(), (2, 1, 1, 0))
        log = d.log_text()
        self.assertIn("dc.txt:4: unexpected text after the address: 'an address'", log)
        with open(tor, "w") as f:
            f.write("203.0.113.0/24\n192.0.2.1\n")
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while prefixes()[2] != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(prefixes(), (2, 2, 2, 0))
        os.unlink(tor)
        d.proc.send_signal(signal.SIGHUP)
        while prefixes()[3] != 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(prefixes(), (2, 2, 2, 1))
        self.assertIn("IP lists not reloaded, the old ones stay: cannot read %s" % tor, d.log_text())
        self.assertEqual(d.request("GET", "/healthz")[0], 200)
        # A FIFO in a list's place is refused (the open does not wait for a writer), and the daemon goes on.
        os.mkfifo(tor)
        d.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while prefixes()[3] != 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(prefixes(), (2, 2, 2, 2))
        self.assertIn("cannot read %s: not a file" % tor, d.log_text())

    def test_bad_settings_refuse_to_start(self):
        t = self.tmpdir()
        for args, msg in ((["--set", "fraud.ip_lists=dc"], "is not NAME=PATH"),
                          (["--set", "fraud.ip_lists=dc=%s/missing.txt" % t], "cannot read"),
                          (["--set", "fraud.bot_ua_patterns=default,x"], "2 to 128 bytes")):
            p = subprocess.run([harness.binary(), "serve", "--data", t, "--listen", "127.0.0.1:0"] + args,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(msg, p.stderr.decode(), args)
