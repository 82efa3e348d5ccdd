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
        return {"X-Signature-Timestamp": ts, "X-Signature": sign(secret or app["app_secret"], ts, body)}

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
            {"X-Signature-Timestamp": "soon", "X-Signature": sign(self.signed["app_secret"], "soon", body)},
            self.signed_headers(self.signed, body, secret="as_not_the_secret"),
            self.signed_headers(self.signed, body, secret=self.signed["app_key"]),
            self.signed_headers(self.cli_app, body),  # another app's secret
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
        for reason, least in (("signature_missing", 3), ("signature_invalid", 6), ("signature_stale", 2),
                              ("signature_replayed", 1), ("ok", 2)):
            n = metric(text, "umg_fraud_signature_total", '{result="%s"}' % reason)
            self.assertIsNotNone(n, reason)
            self.assertGreaterEqual(n, least, reason)


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

    def test_bad_settings_refuse_to_start(self):
        t = self.tmpdir()
        for args, msg in ((["--set", "fraud.ip_lists=dc"], "is not NAME=PATH"),
                          (["--set", "fraud.ip_lists=dc=%s/missing.txt" % t], "cannot read"),
                          (["--set", "fraud.bot_ua_patterns=default,x"], "2 to 128 bytes")):
            p = subprocess.run([harness.binary(), "serve", "--data", t, "--listen", "127.0.0.1:0"] + args,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertIn(msg, p.stderr.decode(), args)
