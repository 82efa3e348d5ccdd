"""The HTTP layer of the real daemon: health endpoints, metrics, error shapes, request ids,
HTTP/1.1 pipelining, HTTP/2 (through curl), TLS, the idle timeout and the connection limit."""

import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from harness import (DaemonTestCase, binary, event, parse_json, read_response, unverified_context)


def curl_features():
    exe = shutil.which("curl")
    if not exe:
        return None
    out = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, text=True).stdout
    m = re.search(r"^Features:(.*)$", out, re.M)
    return set(m.group(1).split()) if m else set()


def curl(args, timeout=20):
    """Runs curl; returns (http_code, http_version, headers text, body bytes)."""
    with tempfile.NamedTemporaryFile(prefix="umg-curl-") as body:
        p = subprocess.run(["curl", "-sS", "--max-time", "10", "-D", "-", "-o", body.name,
                            "-w", "\n@@%{http_code} %{http_version}@@"] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
        data = open(body.name, "rb").read()
    out = p.stdout.decode("latin-1")
    m = re.search(r"@@(\d+) ([\d.]+)@@", out)
    if p.returncode != 0 or not m:
        raise AssertionError("curl %s failed (exit %d): %s %s" % (
            " ".join(args), p.returncode, out, p.stderr.decode("utf-8", "replace")[-500:]))
    return int(m.group(1)), m.group(2), out[:m.start()], data


def need_http2(testcase):
    feats = curl_features()
    if feats is None:
        testcase.skipTest("curl is not installed")
    if "HTTP2" not in feats:
        testcase.skipTest("curl was built without HTTP/2")


class HttpBasicsTest(DaemonTestCase):

    def setUp(self):
        self.d = self.daemon(start=False)
        self.app = self.d.create_app("acme", "game", "android")
        self.d.start()

    def test_healthz_readyz(self):
        for path in ("/healthz", "/readyz"):
            st, h, data = self.d.request("GET", path)
            self.assertStatus(st, 200, path, data)
            self.assertRequestId(h, path)

    def test_not_found_is_json(self):
        for path in ("/nope", "/v1/nope", "/v1/events/extra", "/v2/events"):
            with self.subTest(path):
                self.assertError(self.d.request("GET", path), 404, None, what="GET " + path)

    def test_wrong_method_is_405(self):
        cases = [("GET", "/v1/events"), ("PUT", "/v1/events"), ("DELETE", "/v1/events"),
                 ("POST", "/healthz"), ("POST", "/readyz"), ("POST", "/metrics"),
                 ("POST", "/v1/export/events?app=" + self.app["app_id"])]
        for method, path in cases:
            with self.subTest(method=method, path=path):
                res = self.d.request(method, path, headers={"X-App-Key": self.app["app_key"]})
                self.assertError(res, 405, None, what="%s %s" % (method, path))

    def test_request_id_on_every_response(self):
        key = {"X-App-Key": self.app["app_key"]}
        reqs = [("GET", "/healthz", None, {}), ("GET", "/readyz", None, {}),
                ("GET", "/metrics", None, {}), ("POST", "/v1/events", event(), key),
                ("POST", "/v1/events", b"nope", key), ("POST", "/v1/events", event(), {}),
                ("GET", "/nope", None, {}), ("GET", "/v1/events", None, {}),
                ("GET", "/v1/export/events?app=" + self.app["app_id"], None,
                 {"X-App-Secret": self.app["app_secret"]}),
                ("GET", "/v1/export/events?app=" + self.app["app_id"], None, {})]
        seen = set()
        for method, path, body, hdrs in reqs:
            st, h, data = self.d.request(method, path, body, hdrs)
            rid = h.get("x-request-id")
            self.assertTrue(rid, "%s %s -> %d has no X-Request-Id" % (method, path, st))
            self.assertNotIn(rid, seen, "X-Request-Id %r repeated" % rid)
            seen.add(rid)
            if st >= 400:
                obj = parse_json(data, "%s %s -> %d" % (method, path, st))
                self.assertTrue(obj.get("error", {}).get("code"), obj)
                self.assertTrue(h.get("content-type", "").startswith("application/json"), h)

    def test_metrics(self):
        key = {"X-App-Key": self.app["app_key"]}
        e = event()
        self.ingest_ok(self.d, self.app, {"events": [e, event(), event()]}, accepted=3)
        self.ingest_ok(self.d, self.app, e, duplicates=1)
        self.ingest_ok(self.d, self.app, {"events": [event(foo=1)]}, accepted=0)
        self.d.request("POST", "/v1/events", event(), {})
        self.d.request("GET", "/nope")
        st, h, data = self.d.request("GET", "/metrics")
        self.assertStatus(st, 200, "/metrics", data)
        self.assertTrue(h.get("content-type", "").startswith("text/plain"), h)
        text = data.decode("utf-8")
        samples = []  # (name, labels dict, value)
        sample_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$')
        label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
        types = {}
        for line in text.splitlines():
            if not line.strip():
                continue
            if line.startswith("#"):
                m = re.match(r"^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$", line)
                if m:
                    types[m.group(1)] = m.group(2)
                continue
            m = sample_re.match(line)
            self.assertIsNotNone(m, "malformed metrics line %r" % line)
            labels = dict(label_re.findall(m.group(3) or ""))
            samples.append((m.group(1), labels, float(m.group(4))))
        umg = [s for s in samples if s[0].startswith("umg_")]
        self.assertTrue(umg, "no umg_ metrics:\n" + text[:2000])
        # Every series appears once (a duplicate makes Prometheus reject the scrape).
        keys = [(n, tuple(sorted(l.items()))) for n, l, _ in samples]
        dups = sorted({k for k in keys if keys.count(k) > 1})
        self.assertEqual(dups, [], "duplicate series in /metrics")
        helps = re.findall(r"^# HELP (\S+) ", text, re.M)
        self.assertEqual(len(helps), len(set(helps)), "a metric family has two HELP lines")
        names = sorted({s[0] for s in umg})

        def find(pred, what):
            hits = [s for s in umg if pred(s)]
            self.assertTrue(hits, "no metric for %s; umg_ metrics: %s" % (what, names))
            return hits

        # Requests by route and status.
        req = find(lambda s: "request" in s[0] and "route" in s[1] and
                   ("status" in s[1] or "code" in s[1]), "requests by route and status")
        self.assertTrue(any("/v1/events" in s[1]["route"] or "events" in s[1]["route"]
                            for s in req), "no request metric for the events route: %r" % req)
        self.assertTrue(any(s[1].get("status", s[1].get("code")) == "202" for s in req), req)
        self.assertTrue(any(s[1].get("status", s[1].get("code")) == "401" for s in req), req)
        # Events accepted / duplicate / rejected by reason.
        acc = find(lambda s: "event" in s[0] and "accepted" in s[0], "events accepted")
        self.assertGreaterEqual(sum(s[2] for s in acc), 3, acc)
        dup = find(lambda s: "event" in s[0] and "duplicate" in s[0], "event duplicates")
        self.assertGreaterEqual(sum(s[2] for s in dup), 1, dup)
        rej = find(lambda s: "event" in s[0] and "rejected" in s[0] and
                   ("reason" in s[1] or "code" in s[1]), "events rejected by reason")
        self.assertTrue(any(s[1].get("reason", s[1].get("code")) == "unknown_field" and s[2] >= 1
                            for s in rej), "no rejected{reason=\"unknown_field\"} >= 1: %r" % rej)
        # Log size.
        find(lambda s: "log" in s[0] and "bytes" in s[0], "log bytes")
        find(lambda s: "log" in s[0] and "segment" in s[0], "log segments")
        # fsync latency histogram.
        fs = [n for n, t in types.items() if n.startswith("umg_") and "fsync" in n and
              t == "histogram"]
        self.assertTrue(fs, "no fsync histogram (# TYPE ... histogram); umg_ metrics: %s" % names)
        base = fs[0]
        buckets = [s for s in umg if s[0] == base + "_bucket"]
        self.assertTrue(buckets and all("le" in s[1] for s in buckets), buckets)
        self.assertTrue(any(s[1]["le"] == "+Inf" for s in buckets), buckets)
        self.assertTrue(any(s[0] == base + "_count" for s in umg))
        self.assertTrue(any(s[0] == base + "_sum" for s in umg))
        inf = [s[2] for s in buckets if s[1]["le"] == "+Inf"][0]
        self.assertGreaterEqual(inf, 1, "no fsync observed after ingest")
        # Memory.
        mem = find(lambda s: any(w in s[0] for w in ("mem", "alloc", "heap")), "memory")
        self.assertTrue(any(s[2] > 0 for s in mem), mem)
        # And the whole process's resident memory, which the allocator's count cannot see (libraries, maps).
        rss = re.search(r"^process_resident_memory_bytes (\d+)$", text, re.M)
        self.assertIsNotNone(rss, "no process_resident_memory_bytes")
        self.assertGreater(int(rss.group(1)), 1 << 20)


class PipeliningTest(DaemonTestCase):

    def test_two_and_three_requests_in_one_write(self):
        d = self.daemon(start=False)
        app = d.create_app("acme", "game", "android")
        d.start()
        body = json.dumps(event()).encode()
        reqs = [b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n",
                b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n"]
        s = socket.create_connection((d.host, d.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"".join(reqs))
        rest = b""
        ids = set()
        for i in range(2):
            res = read_response(s, rest)
            self.assertIsNotNone(res, "connection closed before pipelined response %d" % i)
            st, h, b, rest = res
            self.assertEqual(st, 200, "pipelined response %d: %r" % (i, b))
            ids.add(h.get("x-request-id"))
        self.assertEqual(len(ids), 2, "request ids %r" % ids)
        post = ("POST /v1/events HTTP/1.1\r\nHost: t\r\nX-App-Key: %s\r\nContent-Type: "
                "application/json\r\nContent-Length: %d\r\n\r\n" %
                (app["app_key"], len(body))).encode() + body
        s.sendall(reqs[0] + post + reqs[1])
        want = [200, 202, 200]
        for i in range(3):
            res = read_response(s, rest)
            self.assertIsNotNone(res, "connection closed before pipelined response %d" % i)
            st, h, b, rest = res
            self.assertEqual(st, want[i], "pipelined response %d: %r" % (i, b))
            if i == 1:
                self.assertEqual(parse_json(b), {"accepted": 1, "duplicates": 0, "rejected": []})

    def test_head_of_a_streamed_answer_has_no_body(self):
        """HEAD on a route that streams (the event export) answers the headers alone: a body would be taken for
        the next pipelined response (found in review: the export followed, and /healthz came 36 s later)."""
        d = self.daemon(start=False)
        app = d.create_app("acme", "game", "android")
        d.start()
        st, h, data = d.request("POST", "/v1/events", {"events": [event() for _ in range(50)]},
                                headers={"X-App-Key": app["app_key"]})
        self.assertEqual(st, 202, data)
        s = socket.create_connection((d.host, d.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(("HEAD /v1/export/events?app=%s&from=0&to=9999999999999 HTTP/1.1\r\nHost: t\r\n"
                   "X-App-Secret: %s\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" %
                   (app["app_id"], app["app_secret"])).encode())
        got = b""
        deadline = time.monotonic() + 5
        while got.count(b"HTTP/1.1 ") < 2 or not got.endswith(b"}\n"):
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            got += chunk
        heads = [m.start() for m in re.finditer(rb"HTTP/1\.1 \d{3}", got)]
        self.assertEqual(len(heads), 2, got[:2000])
        first = got[:heads[1]]
        self.assertTrue(first.startswith(b"HTTP/1.1 200"), first[:200])
        self.assertTrue(first.endswith(b"\r\n\r\n"), "a body after the HEAD's headers: %r" % first[-300:])
        self.assertIn(b'"status":"ok"', got[heads[1]:])

    def test_host_counts_towards_the_header_limit(self):
        """h2o takes Host out of the header list: it counted for nothing (found in review)."""
        d = self.daemon()
        s = socket.create_connection((d.host, d.port), timeout=10)
        self.addCleanup(s.close)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: " + b"a" * 20000 + b"\r\n\r\n")
        res = read_response(s)
        self.assertIsNotNone(res)
        st, h, b, rest = res
        self.assertEqual(st, 431, b)
        self.assertEqual(parse_json(b)["error"]["code"], "headers_too_large")


class Http2Test(DaemonTestCase):

    def test_h2c_prior_knowledge(self):
        need_http2(self)
        d = self.daemon(start=False)
        app = d.create_app("acme", "game", "android")
        d.start()
        url = "http://%s:%d" % (d.host, d.port)
        code, ver, hdrs, body = curl(["--http2-prior-knowledge", url + "/healthz"])
        self.assertEqual((code, ver), (200, "2"), hdrs)
        self.assertRegex(hdrs.lower(), r"x-request-id: \S+")
        e = event()
        code, ver, hdrs, body = curl(["--http2-prior-knowledge", "-H", "X-App-Key: " +
                                      app["app_key"], "-H", "Content-Type: application/json",
                                      "--data-binary", json.dumps(e), url + "/v1/events"])
        self.assertEqual((code, ver), (202, "2"), body)
        self.assertEqual(json.loads(body), {"accepted": 1, "duplicates": 0, "rejected": []})
        code, ver, hdrs, body = curl(["--http2-prior-knowledge", "-H", "X-App-Secret: " +
                                      app["app_secret"], url + "/v1/export/events?app=" +
                                      app["app_id"]])
        self.assertEqual((code, ver), (200, "2"), body)
        self.assertEqual([json.loads(l)["event_id"] for l in body.splitlines() if l.strip()],
                         [e["event_id"]])
        code, ver, hdrs, body = curl(["--http2-prior-knowledge", url + "/nope"])
        self.assertEqual((code, ver), (404, "2"))
        self.assertTrue(json.loads(body)["error"]["code"])


def make_cert(tmp):
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                        "-days", "2", "-subj", "/CN=127.0.0.1", "-addext",
                        "subjectAltName=IP:127.0.0.1"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    if p.returncode != 0:
        raise AssertionError("openssl req failed: %s" % p.stdout.decode())
    return cert, key


class TlsTest(DaemonTestCase):

    def setUp(self):
        if not shutil.which("openssl"):
            self.skipTest("openssl is not installed")
        cert, key = make_cert(self.tmpdir())
        self.d = self.daemon(start=False, extra_args=["--set", "http.tls_cert=" + cert,
                                                      "--set", "http.tls_key=" + key])
        self.app = self.d.create_app("acme", "game", "android")
        self.d.start()

    def test_https_with_python_ssl(self):
        st, h, data = self.d.request("GET", "/healthz")
        self.assertStatus(st, 200, "GET /healthz over TLS", data)
        e = event()
        self.assertEqual(self.ingest_ok(self.d, self.app, e),
                         {"accepted": 1, "duplicates": 0, "rejected": []})
        out = self.export_ok(self.d, self.app)
        self.assertEqual([o["event_id"] for o in out], [e["event_id"]])

    def test_hsts_on_h2o_error_answers_too(self):
        """h2o's own answers (a body over twice the limit: 413 before any handler) carry HSTS like ours (found
        in review)."""
        code, ver, hdrs, body = curl(["-k", "--http1.1", "-X", "POST", "-H", "Content-Length: 9999999",
                                      "-H", "Expect:", "--data-binary", "x",
                                      "https://%s:%d/v1/events" % (self.d.host, self.d.port)])
        self.assertEqual(code, 413, hdrs)
        self.assertRegex(hdrs.lower(), r"strict-transport-security: max-age=\d+")
        self.assertRegex(hdrs.lower(), r"x-request-id: \S+")

    def test_alpn_offers_h2(self):
        ctx = unverified_context()
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with socket.create_connection((self.d.host, self.d.port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                self.assertEqual(s.selected_alpn_protocol(), "h2")

    def test_curl_http2_over_tls(self):
        need_http2(self)
        url = "https://%s:%d" % (self.d.host, self.d.port)
        code, ver, hdrs, body = curl(["-k", "--http2", url + "/healthz"])
        self.assertEqual((code, ver), (200, "2"), hdrs)
        e = event()
        code, ver, hdrs, body = curl(["-k", "--http2", "-H", "X-App-Key: " + self.app["app_key"],
                                      "-H", "Content-Type: application/json",
                                      "--data-binary", json.dumps(e), url + "/v1/events"])
        self.assertEqual((code, ver), (202, "2"), body)

    def test_plain_http_on_tls_port_does_not_crash(self):
        try:
            with socket.create_connection((self.d.host, self.d.port), timeout=5) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                try:
                    s.recv(4096)
                except (socket.timeout, ConnectionResetError):
                    pass
        except OSError:
            pass
        st, _, _ = self.d.request("GET", "/healthz")
        self.assertEqual(st, 200)


class IdleTimeoutTest(DaemonTestCase):

    def wait_closed(self, s, limit):
        t0 = time.monotonic()
        s.settimeout(limit)
        try:
            while True:
                data = s.recv(4096)
                if not data:
                    return time.monotonic() - t0
        except ConnectionResetError:
            return time.monotonic() - t0
        except socket.timeout:
            return None

    def test_idle_connection_closed(self):
        d = self.daemon(extra_args=["--set", "http.idle_timeout=1s"])
        d.close_conn()
        # A keep-alive connection after one request.
        s = socket.create_connection((d.host, d.port), timeout=5)
        self.addCleanup(s.close)
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        res = read_response(s)
        self.assertEqual(res[0], 200)
        self.assertEqual(res[3], b"")
        waited = self.wait_closed(s, 5)
        self.assertIsNotNone(waited, "idle keep-alive connection still open after 5 s "
                             "(http.idle_timeout=1s)")
        self.assertGreater(waited, 0.5, "closed after %.2f s, before the idle timeout" % waited)
        self.assertLess(waited, 3.0, "closed only after %.2f s" % waited)
        # A connection that never sends anything.
        s2 = socket.create_connection((d.host, d.port), timeout=5)
        self.addCleanup(s2.close)
        waited = self.wait_closed(s2, 5)
        self.assertIsNotNone(waited, "silent connection still open after 5 s")
        self.assertLess(waited, 3.0)
        st, _, _ = d.request("GET", "/healthz")
        self.assertEqual(st, 200)

    def test_active_connection_not_closed(self):
        d = self.daemon(extra_args=["--set", "http.idle_timeout=1s"])
        t0 = time.monotonic()
        conn = d.new_connection()
        self.addCleanup(conn.close)
        while time.monotonic() - t0 < 2.5:
            conn.request("GET", "/healthz")
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            time.sleep(0.4)


class MaxConnectionsTest(DaemonTestCase):

    def test_extra_connections_refused_cleanly(self):
        d = self.daemon(extra_args=["--set", "http.max_connections=4"])
        d.close_conn()
        socks = []

        def opened():
            s = socket.create_connection((d.host, d.port), timeout=5)
            socks.append(s)
            self.addCleanup(s.close)
            return s

        req = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"

        def admitted(i):
            # The daemon learns that a client closed a connection on a later
            # turn of its event loop, so a slot freed just before (the harness
            # connection above, the probes below) may still be counted for a
            # moment: a refusal is retried for up to 5 s, then is a failure.
            deadline = time.monotonic() + 5
            while True:
                s = socket.create_connection((d.host, d.port), timeout=5)
                self.addCleanup(s.close)
                try:
                    s.sendall(req)
                    res = read_response(s, timeout=5)
                except (BrokenPipeError, ConnectionResetError):
                    res = None
                if res is not None and res[0] == 200:
                    return s
                s.close()
                if time.monotonic() > deadline:
                    self.fail("connection %d of 4 refused for 5 s: %r" % (i + 1, res and res[:3]))
                time.sleep(0.05)

        for i in range(4):
            socks.append(admitted(i))
        for i in range(4, 6):
            s = opened()
            try:
                s.sendall(req)
                res = read_response(s, timeout=5)
            except (BrokenPipeError, ConnectionResetError):
                res = None
            except socket.timeout:
                self.fail("connection %d (limit 4) neither answered nor closed within 5 s" %
                          (i + 1))
            if res is not None:
                st, h, body, _ = res
                self.assertEqual(st, 503, "connection %d (limit 4) got %d %r" % (i + 1, st, body))
                obj = parse_json(body, "503 body")
                self.assertEqual(obj.get("error", {}).get("code"), "too_many_connections", obj)
                self.assertTrue(h.get("x-request-id"), "the refusal has no X-Request-Id: %r" % h)
        # The first four still work.
        for s in socks[:4]:
            s.sendall(req)
            res = read_response(s, timeout=5)
            self.assertIsNotNone(res)
            self.assertEqual(res[0], 200)
        for s in socks:
            s.close()
        # And it keeps serving up to the limit again.
        again = [admitted(i) for i in range(4)]
        for s in again:
            s.sendall(req)
            res = read_response(s, timeout=5)
            self.assertIsNotNone(res)
            self.assertEqual(res[0], 200)


class CliHelpTest(unittest.TestCase):
    """`unmogrowp --help` lists the commands; each, and each group (admin, fraud, config), answers --help."""

    def run_cli(self, *args):
        p = subprocess.run([binary()] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        return p.returncode, p.stdout.decode("utf-8", "replace")

    def test_every_command_answers_help(self):
        rc, out = self.run_cli("--help")
        self.assertEqual(rc, 0)
        listed = re.findall(r"^  ([a-z]+(?: [a-z|]+)*?)\s{2,}", out.split("Commands:")[1], re.M)
        commands = []
        for c in listed:
            words = c.split()
            for alt in words[-1].split("|"):  # "import costs|rates"
                commands.append(words[:-1] + [alt])
        self.assertIn(["admin", "app", "fraud"], commands)
        groups = sorted({tuple(c[:1]) for c in commands if len(c) > 1})
        for words in commands + [list(g) for g in groups]:
            with self.subTest(command=" ".join(words)):
                rc, out = self.run_cli(*(words + ["--help"]))
                self.assertEqual(rc, 0, out)
                self.assertIn("Usage: unmogrowp " + words[0], out)
        rc, out = self.run_cli("admin", "--help")
        for c in commands:
            if c[0] == "admin":
                self.assertIn("unmogrowp " + " ".join(c), out, "admin --help leaves out " + " ".join(c))



class CliConfigTest(DaemonTestCase):
    """Found in review: the data directory's files were readable by every local user; an abbreviated --config
    was ignored; --set cut long values; an empty --data was taken."""

    def test_data_is_private(self):
        d = self.daemon(start=False)
        app = d.create_app("acme", "game", "android")
        d.start()
        self.assertEqual(self.ingest_ok(d, app, event())["accepted"], 1)
        self.assertEqual(os.stat(d.data_dir).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(d.data_dir, "meta.db")).st_mode & 0o077, 0)
        logs = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(d.data_dir, "log")) for f in fs]
        self.assertTrue(logs)
        for f in logs:
            self.assertEqual(os.stat(f).st_mode & 0o077, 0, f)

    def run_serve(self, *args):
        p = subprocess.run([binary(), "serve"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=30)
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def test_lookups_do_not_make_a_data_directory(self):
        """Commands that look something up in DATA say it holds nothing (exit 1) instead of creating it and an
        empty meta.db (found in review: a mistyped --data left a new directory behind)."""
        data = os.path.join(self.tmpdir(), "typo", "sub")
        csv = os.path.join(self.tmpdir(), "c.csv")
        with open(csv, "w") as f:
            f.write("date,source,campaign,cost,currency\n2026-11-01,a,b,1,USD\n")
        for cmd in (["admin", "app", "list"], ["admin", "app", "settings", "--app", "app_x"],
                    ["admin", "app", "fraud", "--app", "app_x"],
                    ["admin", "privacy", "forget", "--app", "app_x", "--id", "gaid=1"],
                    ["fraud", "train", "--app", "app_x", "--labels", csv], ["import", "costs", csv, "--app", "app_x"]):
            p = subprocess.run([binary()] + cmd + ["--data", data], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=30)
            err = p.stderr.decode("utf-8", "replace")
            self.assertEqual(p.returncode, 1, (cmd, err))
            self.assertIn("holds no data directory", err, cmd)
            self.assertFalse(os.path.exists(os.path.dirname(data)), cmd)

    def test_abbreviated_config_and_empty_data(self):
        conf = os.path.join(self.tmpdir(), "bad.conf")
        with open(conf, "w") as f:
            f.write("bogus = 1\n")
        data = os.path.join(self.tmpdir(), "d")
        for flag in (["--conf", conf], ["--con=" + conf], ["--config", conf]):
            rc, err = self.run_serve("--data", data, "--listen", "127.0.0.1:0", *flag)
            self.assertEqual(rc, 2, (flag, err))
            self.assertIn("unknown key 'bogus'", err)
        rc, err = self.run_serve("--data", "", "--listen", "127.0.0.1:0")
        self.assertEqual(rc, 2, err)
        self.assertIn("data", err)

    def test_fraud_train_numbers_whole(self):
        """`fraud train --rounds abc` trained 100 rounds, `7x` 7, `--seed -1` 2^64-1 (found in review)."""
        data = os.path.join(self.tmpdir(), "d")
        for flag, value in (("--rounds", "abc"), ("--rounds", "7x"), ("--eta", "nope"), ("--seed", "-1"),
                            ("--threshold", "")):
            p = subprocess.run([binary(), "fraud", "train", "--data", data, "--app", "app_x", "--labels", "l.csv",
                                flag, value], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
            self.assertEqual(p.returncode, 2, (flag, value, p.stderr))
            self.assertIn(b"is not a number for " + flag.encode(), p.stderr)
        self.assertFalse(os.path.exists(data))

    def test_long_set_value_is_whole(self):
        # 996 bytes of prefixes, then one whose middle sits where the old 1024-byte buffer cut "KEY=VALUE":
        # cut, it read "127.0", not an address, and the daemon refused to start.
        filler = ",".join(["10.0.0.0/24"] * 82 + ["10.0.0.10/32"])
        self.assertEqual(len(filler), 996)
        proxies = filler + ",127.0.0.1/32"
        d = self.daemon(extra_args=["--set", "http.trusted_proxies=" + proxies])
        st, h, data = d.request("GET", "/healthz")
        self.assertEqual(st, 200)


if __name__ == "__main__":
    unittest.main()
