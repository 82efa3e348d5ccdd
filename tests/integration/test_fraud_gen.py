"""Synthetic fraud end to end: `unmogrowp gen --fraud` against the daemon's fraud rules.

FraudEvalTest checks tests/tools/fraud_eval.py's join on a small hand-made fixture (no
daemon): which label counts as caught with the expected reason, with another, or missed;
honest installs touched; precision; spoofed installs refused with 401; the exit status.

GenSigningTest checks gen's side of request signing against a reference verifier of the
scheme written here with Python's hmac (a small HTTP server in the test, so that gen's
side is checked apart from the daemon's): every request of `gen --sign` verifies, each
spoofed install arrives alone and signed wrong in its own way, gen counts the 401 answers
per way and does not stop, and the bot's click-link clicks come without a User-Agent.

FraudGenEndToEndTest is the end-to-end check of issue #6's targets: it starts the daemon
with the data-centre list that `gen --fraud-ip-list` writes (`fraud.ip_lists =
"datacenter=PATH"`), creates an app, turns on `require_signature` (PATCH /v1/apps/{id}),
sends `gen --fraud 10 --sign --fraud-labels L` for a few thousand devices, waits for the
pipeline, exports installs and touches and runs fraud_eval: recall at least 0.95 for every
rule-detectable fraud type, at most 1% of honest installs touched, install precision at
least 0.98.
"""

import hashlib
import hmac
import http.server
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

import harness
from harness import DaemonTestCase, parse_json

sys.path.insert(0, os.path.join(harness.REPO, "tests", "tools"))
import fraud_eval  # noqa: E402

GEN = ["--devices", "3000", "--days", "10", "--seed", "6", "--fraud", "10", "--sign", "--quiet"]
# UMG_GEN_NOW=<ms> replays a run's history as gen made it then (its summary prints "now"), within the
# day before the wall clock: the daemon judges by the time it receives the items.
if os.environ.get("UMG_GEN_NOW"):
    GEN += ["--now", os.environ["UMG_GEN_NOW"]]
WAIT = 60.0
PASSWORD = "a long password for fraud"

TARGET_RECALL = 0.95
TARGET_HONEST_TOUCHED = 0.01
TARGET_PRECISION = 0.98


# ------------------------------------------------------------------ the joiner alone

HEADER = "kind,id,label,fraud_type,expected_reason,day,detectable,source,claim_click_id"
LABELS = [
    "install,h1,0,honest,,2026-11-20,,,",
    "install,h2,0,honest,,2026-11-20,,,",
    "click,hc1,0,honest,,2026-11-20,,meta,",
    "install,i1,1,injection,click_injection,2026-11-21,1,fraudnet,c1",
    "click,c1,1,injection,click_injection,2026-11-21,1,fraudnet,",
    "install,i2,1,injection,click_injection,2026-11-21,1,fraudnet,c2",
    "click,c2,1,injection,click_injection,2026-11-21,1,fraudnet,",
    "install,i3,1,injection,click_injection,2026-11-21,1,fraudnet,c8",
    "click,c8,1,injection,click_injection,2026-11-21,1,fraudnet,",
    "install,d1,1,datacenter,blocked_ip,2026-11-22,1,hostads,c3",
    "click,c3,1,datacenter,blocked_ip,2026-11-22,1,hostads,",
    "install,b1,1,bot,bot_user_agent,2026-11-22,1,trafficbot,c4",
    "install,f1,1,farm,device_farm,2026-11-23,0,installpay,c9",
    "install,f2,1,farm,device_farm,2026-11-23,1,installpay,c10",
    "install,fl1,1,flood,click_flooding,2026-11-24,1,clickblast,c5",
    "click,c6,1,flood,click_spam,2026-11-24,1,clickblast,",
    "click,c7,1,flood,click_spam,2026-11-24,0,clickblast,",
    "install,s1,1,spoof,sdk_spoofing,2026-11-25,1,spoofmob,c11",
    "install,s2,1,spoof,sdk_spoofing,2026-11-25,1,spoofmob,c12",
]
INSTALLS = [
    {"event_id": "h1", "outcome": "install", "attribution": None},
    {"event_id": "h2", "outcome": "install", "attribution": None,
     "fraud": {"status": "flagged", "reason": "device_farm", "rules": ["device_farm"], "score": 0.4}},
    {"event_id": "i1", "outcome": "install", "attribution": None,
     "rejected_touches": [{"touch_id": 7, "click_id": "c1", "reason": "click_injection"}]},
    {"event_id": "i2", "outcome": "install", "attribution": {"source": "fraudnet", "click_id": "c2"}},
    {"event_id": "i3", "outcome": "install", "attribution": None,
     "fraud": {"status": "rejected", "reason": "click_injection", "rules": ["click_injection"]},
     "rejected_touches": [{"touch_id": 9, "click_id": "c8", "reason": "click_injection"}]},
    {"event_id": "d1", "outcome": "install", "attribution": {"source": "hostads", "click_id": "c3"},
     "fraud": {"status": "rejected", "reason": "blocked_ip", "rules": ["blocked_ip"], "score": None}},
    {"event_id": "b1", "outcome": "install", "attribution": {"source": "trafficbot", "click_id": "c4"},
     "fraud": {"status": "flagged", "reason": "device_farm", "rules": ["device_farm"]}},
    {"event_id": "f1", "outcome": "install", "attribution": {"source": "installpay", "click_id": "c9"}, "fraud": None},
    {"event_id": "f2", "outcome": "install", "attribution": {"source": "installpay", "click_id": "c10"},
     "fraud": {"status": "rejected", "reason": "blocked_ip", "rules": ["blocked_ip", "device_farm"]}},
    {"event_id": "fl1", "outcome": "install", "attribution": None,
     "rejected_touches": [{"touch_id": 3, "click_id": "c5", "reason": "click_flooding"}]},
    # A re-engagement carries a session's event id; it never hides an install's decision.
    {"event_id": "h1", "outcome": "reengagement", "attribution": {"source": "meta"},
     "fraud": {"status": "flagged", "reason": "bot_user_agent"}},
]
TOUCHES = [
    {"touch_id": "t1", "type": "click", "click_id": "hc1", "source": "meta"},
    {"touch_id": "t2", "type": "click", "click_id": "c2", "source": "fraudnet", "fraud": None},
    {"touch_id": "t3", "type": "click", "click_id": "c3", "source": "hostads",
     "fraud": {"status": "rejected", "reason": "blocked_ip", "rules": ["blocked_ip"]}},
    {"touch_id": "t6", "type": "click", "click_id": "c6", "source": "clickblast",
     "fraud": {"status": "rejected", "reason": "click_spam", "rules": ["click_spam"]}},
    {"touch_id": "t7", "type": "click", "click_id": "c7", "source": "clickblast"},
]
SPOOF_SUMMARY = {"status": "ok", "fraud": {"installs": {"spoof": 2}, "spoof": {
    "sent": 2, "accepted": 1, "refused": {"unsigned": 1, "bad_signature": 0, "stale_timestamp": 0}}}}


class FraudEvalTest(unittest.TestCase):
    """fraud_eval's join on a fixture small enough to count by hand."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="umg-fraud-eval-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.paths = {}
        for name, text in (("labels", "\n".join([HEADER] + LABELS) + "\n"),
                           ("installs", "".join(json.dumps(x) + "\n" for x in INSTALLS)),
                           ("touches", "".join(json.dumps(x) + "\n" for x in TOUCHES)),
                           ("spoof", json.dumps(SPOOF_SUMMARY) + "\n")):
            self.paths[name] = os.path.join(self.dir, name)
            with open(self.paths[name], "w") as f:
                f.write(text)

    def evaluate(self, spoof=True):
        return fraud_eval.evaluate(fraud_eval.load_labels(self.paths["labels"]),
                                   fraud_eval.load_jsonl(self.paths["installs"]),
                                   fraud_eval.load_jsonl(self.paths["touches"]),
                                   fraud_eval.load_spoof_counts(self.paths["spoof"]) if spoof else None)

    def kind(self, res, ft, kind):
        return next(b for b in res["by_kind"] if b["fraud_type"] == ft and b["kind"] == kind)

    def test_verdicts(self):
        res = self.evaluate()
        # Injection: i1 and i3 caught through rejected_touches (and not credited); i2 credited to the
        # injected click: missed; i3's install was rejected as well, which hurts a real user.
        inj = self.kind(res, "injection", "install")
        self.assertEqual((inj["items"], inj["expected"], inj["other"], inj["missed"]), (3, 2, 0, 1))
        clicks = self.kind(res, "injection", "click")
        self.assertEqual((clicks["items"], clicks["expected"], clicks["missed"]), (3, 2, 1))
        self.assertEqual(res["victims_rejected"], 1)
        self.assertAlmostEqual(res["by_type"]["injection"]["recall"], 4 / 6)
        # Datacenter: install and click caught with blocked_ip.
        self.assertEqual(res["by_type"]["datacenter"]["expected"], 2)
        self.assertEqual(res["by_type"]["datacenter"]["recall"], 1.0)
        # Bot: caught, but by another rule.
        self.assertEqual((res["by_type"]["bot"]["other"], res["by_type"]["bot"]["recall"]), (1, 0.0))
        # Farm: the first install is context (detectable 0); device_farm among the rules counts.
        farm = self.kind(res, "farm", "install")
        self.assertEqual((farm["items"], farm["expected"], farm["context"], farm["context_marked"]), (1, 1, 1, 0))
        # Flood: the install through its rejected click, the excess click through click_spam.
        self.assertEqual(res["by_type"]["flood"]["expected"], 2)
        self.assertEqual(self.kind(res, "flood", "click")["context"], 1)
        # Spoof: neither is exported; gen counted one 401, so one is refused and one missed.
        sp = self.kind(res, "spoof", "install")
        self.assertEqual((sp["refused"], sp["missed"], sp["recall"]), (1, 1, 0.5))
        self.assertEqual(res["spoof"]["refused_matched"], 1)
        # Honest: h2 flagged (1 of 2), the re-engagement does not count; the honest click is clean.
        h = res["honest_installs"]
        self.assertEqual((h["installs"], h["touched"], h["flagged"], h["rejected"]), (2, 1, 1, 0))
        self.assertEqual(h["by_rule"], {"device_farm": 1})
        self.assertEqual(res["honest_clicks"]["touched"], 0)
        # Marked installs: i1, i3, d1, b1, f2, fl1 and the refused spoof against h2.
        self.assertAlmostEqual(res["precision"]["install"], 7 / 8)
        t = res["total"]
        self.assertEqual(t["items"], t["expected"] + t["other"] + t["missed"] + t["refused"])

    def test_without_spoof_counts(self):
        res = self.evaluate(spoof=False)
        sp = self.kind(res, "spoof", "install")
        self.assertEqual((sp["refused"], sp["missed"]), (0, 2))
        self.assertNotIn("spoof", res)

    def test_targets_and_exit_status(self):
        res = self.evaluate()
        problems = fraud_eval.check(res, 0.95, 0.01, 0.98)
        self.assertTrue(any("recall of injection" in p for p in problems), problems)
        self.assertTrue(any("honest installs touched" in p for p in problems), problems)
        self.assertTrue(any("install precision" in p for p in problems), problems)
        self.assertEqual(fraud_eval.check(res), [])
        args = ["--labels", self.paths["labels"], "--installs", self.paths["installs"],
                "--touches", self.paths["touches"], "--spoof-counts", self.paths["spoof"]]
        tool = os.path.join(harness.REPO, "tests", "tools", "fraud_eval.py")
        p = subprocess.run([sys.executable, tool] + args + ["--json"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(json.loads(p.stdout)["by_type"]["datacenter"]["recall"], 1.0)
        p = subprocess.run([sys.executable, tool] + args + ["--min-recall", "0.95"], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("recall of injection", p.stderr)
        self.assertIn("honest installs: 2, touched 1", p.stdout)
        p = subprocess.run([sys.executable, tool, "--labels", self.paths["installs"], "--installs",
                            self.paths["installs"], "--touches", self.paths["touches"]],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)


# ------------------------------------------------------------------ signing


class Verifier(http.server.BaseHTTPRequestHandler):
    """Checks X-Signature as docs/gen.md states it; answers like the daemon's ingest."""

    protocol_version = "HTTP/1.1"
    secret = b""   # the app secret, X-App-Secret of every request
    signing = b""  # the signing secret, the key of X-Signature
    seen = None  # list of (path, verdict, n, user_agent)

    def log_message(self, *args):
        pass

    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def verdict(self, body):
        sig, ts = self.headers.get("X-Signature"), self.headers.get("X-Signature-Timestamp")
        if sig is None or ts is None:
            return "unsigned"
        want = "v1=" + hmac.new(self.signing, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(sig, want):
            return "bad_signature"
        if abs(time.time() - int(ts)) > 300:
            return "stale_timestamp"
        return "ok"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("X-App-Secret") != self.secret.decode():
            return self.answer(401, {"error": {"code": "unauthorized", "message": "unknown app secret"}})
        doc = json.loads(body)
        n = len(doc.get("touches", doc.get("events", [])))
        v = self.verdict(body)
        self.seen.append((self.path, v, n, self.headers.get("User-Agent")))
        if v != "ok":
            return self.answer(401, {"error": {"code": "unauthorized", "message": v, "field": "X-Signature"}})
        self.answer(202, {"accepted": n, "duplicates": 0, "rejected": []})

    def do_GET(self):
        self.seen.append((self.path.split("?")[0], "link", 1, self.headers.get("User-Agent")))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()


class GenSigningTest(unittest.TestCase):

    def test_sign_and_count_spoofs(self):
        secret, signing = "as_" + uuid.uuid4().hex, "ss_" + uuid.uuid4().hex
        seen = []
        # Signatures are made with the signing secret, never with the app secret.
        handler = type("H", (Verifier,), {"secret": secret.encode(), "signing": signing.encode(), "seen": seen})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        cmd = [harness.binary(), "gen", "--addr", "127.0.0.1:%d" % server.server_address[1], "--secret", secret,
               "--signing-secret", signing, "--app", "app_0123456789abcdef", "--devices", "300", "--days", "3", "--fraud", "10",
               "--fraud-kinds", "spoof,bot", "--sign", "--quiet", "--batch", "200"]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
        out, err = p.stdout.decode(), p.stderr.decode()
        self.assertEqual(p.returncode, 0, out + err)
        summary = json.loads(out.strip().splitlines()[-1])
        spoof = summary["fraud"]["spoof"]
        n = summary["fraud"]["installs"]["spoof"]
        self.assertGreaterEqual(n, 3)
        self.assertEqual(spoof["sent"], n)
        self.assertEqual(spoof["accepted"], 0)
        self.assertEqual(sum(spoof["refused"].values()), n, spoof)
        for way in ("unsigned", "bad_signature", "stale_timestamp"):
            self.assertGreater(spoof["refused"][way], 0, spoof)
        self.assertIn("spoofed installs refused with 401: unsigned %d of %d" % (
            spoof["refused"]["unsigned"], spoof["refused"]["unsigned"]), err)
        # Everything else verified; each spoof came alone; links came with no User-Agent.
        bad = [s for s in seen if s[1] not in ("ok", "link")]
        self.assertEqual(len(bad), n, bad)
        self.assertTrue(all(path == "/v1/events" and k == 1 for path, v, k, ua in bad), bad)
        self.assertTrue(any(path == "/v1/touches" and v == "ok" for path, v, k, ua in seen))
        links = [s for s in seen if s[1] == "link"]
        self.assertEqual(len(links), summary["fraud"]["link_clicks"]["sent"])
        self.assertTrue(links and all(path == "/c/app_0123456789abcdef" and ua is None for path, v, k, ua in links),
                        links)
        self.assertEqual(summary["accepted"] + sum(spoof["refused"].values()), summary["sent"], summary)


class Limited(http.server.BaseHTTPRequestHandler):
    """Answers every request 429 with Retry-After: 1, as a daemon over its rate limit does."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = b'{"error":{"code":"rate_limited","message":"slow down"}}'
        self.send_response(429)
        self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class GenCliTest(unittest.TestCase):

    def test_port_out_of_range_is_a_usage_error(self):
        for addr in ("127.0.0.1:108937", "127.0.0.1:0", "127.0.0.1:65536"):
            p = subprocess.run([harness.binary(), "gen", "--addr", addr, "--secret", "as_x", "--app", "app_x",
                                "--devices", "1", "--quiet"], capture_output=True, timeout=30)
            self.assertEqual(p.returncode, 2, addr)
            self.assertIn("--addr must look like HOST:PORT", p.stderr.decode(), addr)

    def test_ctrl_c_stops_a_run_waiting_to_retry(self):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Limited)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        p = subprocess.Popen([harness.binary(), "gen", "--addr", "127.0.0.1:%d" % server.server_address[1],
                              "--secret", "as_x", "--app", "app_x", "--devices", "50", "--quiet"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(1.5)
        p.send_signal(2)
        t0 = time.time()
        out, err = p.communicate(timeout=30)
        self.assertLess(time.time() - t0, 3, "gen kept waiting after Ctrl-C")
        self.assertEqual(p.returncode, 130, err.decode())
        summary = json.loads(out.decode().strip().splitlines()[-1])
        self.assertEqual(summary["status"], "interrupted", summary)
        self.assertGreater(summary["retries"], 0, summary)


# ------------------------------------------------------------------ end to end


class FraudGenEndToEndTest(DaemonTestCase):

    def setUp(self):
        self.tmp = self.tmpdir()
        self.ip_list = os.path.join(self.tmp, "datacenter.txt")
        self.labels = os.path.join(self.tmp, "labels.csv")
        # The list file must exist when the daemon starts: gen writes it without sending anything.
        p = subprocess.run([harness.binary(), "gen", "--out", os.devnull, "--devices", "1", "--quiet",
                            "--fraud", "1", "--fraud-ip-list", self.ip_list], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        # gen sends ten days of history at once: the windowed rules judge items up to 11 days old (docs/fraud.md)
        self.d = self.daemon(start=False, extra_args=["--set", "fraud.ip_lists=datacenter=" + self.ip_list,
                                                      "--set", "fraud.horizon=11d"])
        self.app = self.d.create_app("Org Fraud", "Fraud", "android")
        from test_tenancy import create_user
        create_user(self.d.data_dir, "Org Fraud", "owner@fraud.test", "owner", password=PASSWORD)
        self.d.start()
        st, h, data = self.d.request("POST", "/v1/auth/login", {"email": "owner@fraud.test", "password": PASSWORD})
        self.assertStatus(st, 200, "login", data)
        self.auth = {"Authorization": "Bearer " + parse_json(data)["access_token"]}
        st, h, data = self.d.request("GET", "/v1/apps/%s/fraud" % self.app["app_id"], headers=self.auth)
        self.assertStatus(st, 200, "GET fraud settings", data)
        st, h, data = self.d.request("PATCH", "/v1/apps/" + self.app["app_id"],
                                     {"settings": {"require_signature": True}}, headers=self.auth)
        self.assertStatus(st, 200, "PATCH require_signature", data)

    def caught_up(self, timeout=WAIT):
        probe = str(uuid.uuid4())
        deadline = time.monotonic() + timeout
        while True:
            st, h, data = self.d.request("GET", "/v1/attribution?app=%s&device=%s" % (self.app["app_id"], probe),
                                         headers={"X-App-Secret": self.app["app_secret"]})
            self.assertStatus(st, 200, "attribution probe", data)
            if parse_json(data)["status"] == "not_found":
                return
            if time.monotonic() > deadline:
                self.fail("the pipeline did not catch up within %.0f s\n%s" % (timeout, self.logs()))
            time.sleep(0.05)

    def export(self, what):
        st, h, data = self.d.request("GET", "/v1/export/%s?app=%s" % (what, self.app["app_id"]),
                                     headers={"X-App-Secret": self.app["app_secret"]}, timeout=120)
        self.assertStatus(st, 200, "export " + what, data)
        path = os.path.join(self.tmp, what + ".jsonl")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_rules_catch_generated_fraud(self):
        # Give the key time to go live after the settings change (apps reload within a second).
        time.sleep(1.5)
        cmd = [harness.binary(), "gen", "--addr", "%s:%d" % (self.d.host, self.d.port),
               "--secret", self.app["app_secret"], "--key", self.app["app_key"], "--app", self.app["app_id"],
               "--signing-secret", self.app["signing_secret"],
               "--platform", "android", "--fraud-labels", self.labels] + GEN
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
        out = p.stdout.decode().strip()
        self.assertEqual(p.returncode, 0, "gen: %s %s\n%s" % (out, p.stderr.decode(), self.logs()))
        summary = json.loads(out.splitlines()[-1])
        self.assertGreater(summary["fraud"]["link_clicks"]["sent"], 0, summary)
        spoof = summary["fraud"]["spoof"]
        self.assertEqual(spoof["sent"], summary["fraud"]["installs"]["spoof"], summary)
        self.assertEqual(sum(spoof["refused"].values()), spoof["sent"],
                         "every spoofed install should be refused with 401: %r" % spoof)
        summary_path = os.path.join(self.tmp, "summary.json")
        with open(summary_path, "w") as f:
            f.write(out + "\n")
        self.caught_up()
        installs, touches = self.export("installs"), self.export("touches")
        res = fraud_eval.evaluate(fraud_eval.load_labels(self.labels), fraud_eval.load_jsonl(installs),
                                  fraud_eval.load_jsonl(touches), fraud_eval.load_spoof_counts(summary_path))
        report = fraud_eval.format_text(res)
        print("\n" + report)
        self.assertEqual(res["honest_installs"]["not_exported"], 0, report)
        problems = fraud_eval.check(res, TARGET_RECALL, TARGET_HONEST_TOUCHED, TARGET_PRECISION)
        self.assertEqual(problems, [], report)


if __name__ == "__main__":
    unittest.main()
