"""The dashboard's daemon side through the real HTTP server: static files from --web (caching
headers, the content security policy, nosniff, ETag and 304, the SPA fallback, API routes
keeping precedence, --web off and a directory without a build), and the live feed GET /v1/live
(Server-Sent Events: credentials, accepted / duplicate / rejected events and attribution
decisions of the watched app only, Last-Event-ID, and a client that reads too slowly being told
how many items it missed)."""

import gzip
import json
import os
import socket
import time

import harness
from harness import DaemonTestCase, event, parse_json
from test_tenancy import create_user, PASSWORD

INDEX = b"<!doctype html><title>dash</title><script type=module src=/assets/app-1a2b3c.js></script>\n"
ASSET = b"console.log('dashboard');\n"
# Large enough to be gzipped at start (512 bytes or more, and it shrinks).
BIG = b"".join(b"export const row%d = {campaign: 'winter_sale', source: 'meta_ads', installs: %d};\n" % (i, i)
               for i in range(200))


def make_web(root):
    os.makedirs(os.path.join(root, "assets"))
    with open(os.path.join(root, "index.html"), "wb") as f:
        f.write(INDEX)
    with open(os.path.join(root, "assets", "app-1a2b3c.js"), "wb") as f:
        f.write(ASSET)
    with open(os.path.join(root, "assets", "big-9f8e7d.js"), "wb") as f:
        f.write(BIG)
    with open(os.path.join(root, "assets", "logo-5a5a5a.png"), "wb") as f:
        f.write(bytes(range(256)) * 8)
    with open(os.path.join(root, "favicon.svg"), "wb") as f:
        f.write(b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    with open(os.path.join(root, ".secret"), "wb") as f:
        f.write(b"never served")


class StaticTest(DaemonTestCase):
    def setUp(self):
        self.web = os.path.join(self.tmpdir(), "dist")
        make_web(self.web)
        self.d = self.daemon(extra_args=["--web", self.web])

    def test_index_and_assets_headers(self):
        st, h, body = self.d.request("GET", "/")
        self.assertEqual(st, 200)
        self.assertEqual(body, INDEX)
        self.assertEqual(h["content-type"], "text/html; charset=utf-8")
        self.assertEqual(h["cache-control"], "no-cache")
        self.assertEqual(h["x-content-type-options"], "nosniff")
        csp = h["content-security-policy"]
        for part in ("default-src 'self'", "script-src 'self'", "style-src 'self'", "object-src 'none'",
                     "frame-ancestors 'none'", "base-uri 'none'", "connect-src 'self'"):
            self.assertIn(part, csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn("unsafe-eval", csp)
        self.assertTrue(h["etag"].startswith('"'))
        st, h, body = self.d.request("GET", "/assets/app-1a2b3c.js")
        self.assertEqual(st, 200)
        self.assertEqual(body, ASSET)
        self.assertEqual(h["content-type"], "text/javascript; charset=utf-8")
        self.assertEqual(h["cache-control"], "public, max-age=31536000, immutable")
        self.assertEqual(h["x-content-type-options"], "nosniff")
        st, h, _ = self.d.request("GET", "/favicon.svg")
        self.assertEqual((st, h["content-type"], h["cache-control"]), (200, "image/svg+xml", "no-cache"))

    def test_links_out_of_the_directory_are_not_served(self):
        """A link inside the web directory to a file or directory outside it is not served (found in review: a
        link to /etc/passwd was); a link to a file inside it is."""
        web = os.path.join(self.tmpdir(), "linked")
        make_web(web)
        outside = os.path.join(self.tmpdir(), "outside")
        os.makedirs(outside)
        with open(os.path.join(outside, "secret.txt"), "wb") as f:
            f.write(b"outside the web directory")
        os.symlink(os.path.join(outside, "secret.txt"), os.path.join(web, "secret.txt"))
        os.symlink(outside, os.path.join(web, "outdir"))
        os.symlink("/etc/passwd", os.path.join(web, "passwd"))
        os.symlink(os.path.join(web, "favicon.svg"), os.path.join(web, "icon.svg"))
        d = self.daemon(extra_args=["--web", web])
        for path in ("/secret.txt", "/outdir/secret.txt", "/passwd"):
            st, h, body = d.request("GET", path)
            self.assertEqual(st, 404, (path, body))
            self.assertNotIn(b"outside the web directory", body)
            self.assertNotIn(b"root:", body)
        st, h, body = d.request("GET", "/icon.svg")
        self.assertEqual((st, body), (200, b"<svg xmlns='http://www.w3.org/2000/svg'/>"))

    def test_etag_answers_304(self):
        _, h, _ = self.d.request("GET", "/index.html")
        st, h2, body = self.d.request("GET", "/index.html", headers={"If-None-Match": h["etag"]})
        self.assertEqual(st, 304)
        self.assertEqual(body, b"")
        st, _, _ = self.d.request("GET", "/index.html", headers={"If-None-Match": '"other"'})
        self.assertEqual(st, 200)

    def test_gzip_for_clients_that_take_it(self):
        path = "/assets/big-9f8e7d.js"
        st, plain_h, body = self.d.request("GET", path)
        self.assertEqual((st, body), (200, BIG))
        self.assertNotIn("content-encoding", plain_h)
        self.assertEqual(plain_h["vary"], "Accept-Encoding")
        for ae in ("gzip", "gzip, deflate, br", "br;q=1.0, GZIP;q=0.5", "x-gzip"):
            st, h, body = self.d.request("GET", path, headers={"Accept-Encoding": ae})
            self.assertEqual(st, 200, ae)
            self.assertEqual(h["content-encoding"], "gzip", ae)
            self.assertEqual(h["vary"], "Accept-Encoding")
            self.assertEqual(h["content-type"], "text/javascript; charset=utf-8")
            self.assertEqual(h["cache-control"], "public, max-age=31536000, immutable")
            self.assertIn("default-src 'self'", h["content-security-policy"])
            self.assertLess(len(body), len(BIG) // 4)
            self.assertEqual(gzip.decompress(body), BIG)
            self.assertNotEqual(h["etag"], plain_h["etag"])
        # Each form's ETag revalidates that form.
        st, _, body = self.d.request("GET", path, headers={"Accept-Encoding": "gzip", "If-None-Match": h["etag"]})
        self.assertEqual((st, body), (304, b""))
        st, _, body = self.d.request("GET", path, headers={"If-None-Match": h["etag"]})
        self.assertEqual((st, body), (200, BIG))
        st, _, _ = self.d.request("GET", path, headers={"If-None-Match": plain_h["etag"]})
        self.assertEqual(st, 304)
        # Refused or not offered: the file as it is.
        for ae in ("gzip;q=0", "gzip; q=0.000", "deflate, br", "identity", "*", "gzipx"):
            st, h, body = self.d.request("GET", path, headers={"Accept-Encoding": ae})
            self.assertEqual((st, body), (200, BIG), ae)
            self.assertNotIn("content-encoding", h, ae)
        # Small files and files that are not text are never gzipped (nor say Vary).
        for small in ("/assets/app-1a2b3c.js", "/favicon.svg", "/assets/logo-5a5a5a.png"):
            st, h, body = self.d.request("GET", small, headers={"Accept-Encoding": "gzip"})
            self.assertEqual(st, 200, small)
            self.assertNotIn("content-encoding", h, small)
            self.assertNotIn("vary", h, small)
        self.assertRegex(self.d.log_text(), r"dashboard at / from .* \(5 files, \d+ bytes, \d+ gzipped\)")

    def test_spa_fallback_and_api_precedence(self):
        html = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        for path in ("/overview", "/settings?app=app_1", "/live/x/y"):
            st, h, body = self.d.request("GET", path, headers=html)
            self.assertEqual((st, body), (200, INDEX), path)
            self.assertEqual(h["cache-control"], "no-cache")
            # A client that does not ask for a page gets the JSON 404 of an unknown path.
            st, h, body = self.d.request("GET", path)
            self.assertEqual((st, h["content-type"]), (404, "application/json"), path)
        # A hashed asset that is not there is a 404, not the page.
        st, h, body = self.d.request("GET", "/assets/gone-123.js", headers=html)
        self.assertEqual(st, 404)
        self.assertEqual(parse_json(body)["error"]["code"], "not_found")
        # API paths never fall back to the page.
        for path in ("/v1/nope", "/v1/reports/nope", "/v1"):
            st, h, body = self.d.request("GET", path, headers=html)
            self.assertEqual(st, 404, path)
            self.assertEqual(h["content-type"], "application/json")
        st, _, body = self.d.request("GET", "/healthz")
        self.assertEqual((st, parse_json(body)["status"]), (200, "ok"))
        st, _, _ = self.d.request("POST", "/overview", body={}, headers=html)
        self.assertEqual(st, 404)
        # Dot files are never served (the page answers instead).
        st, _, body = self.d.request("GET", "/.secret", headers=html)
        self.assertEqual(body, INDEX)
        st, _, body = self.d.request("GET", "/assets/../.secret", headers=html)
        self.assertNotEqual(body, b"never served")
        st, _, body = self.d.request("HEAD", "/")
        self.assertEqual(st, 200)

    def test_metrics_count_static_answers(self):
        self.d.request("GET", "/")
        _, _, body = self.d.request("GET", "/metrics")
        self.assertIn('umg_http_requests_total{route="static",status="200"}', body.decode())

    def test_log_says_where_the_dashboard_is(self):
        self.assertIn("dashboard at /", self.d.log_text())


class NoWebTest(DaemonTestCase):
    def test_off_serves_the_api_only(self):
        d = self.daemon(extra_args=["--web", "off"])
        st, h, body = d.request("GET", "/")
        self.assertEqual(st, 404)
        self.assertEqual(parse_json(body)["error"]["code"], "not_found")
        self.assertIn("serving the API only", d.log_text())

    def test_a_directory_without_a_build_is_an_error(self):
        empty = self.tmpdir()
        d = self.daemon(extra_args=["--web", empty], start=False)
        p = __import__("subprocess").run(d.command(), stdout=-1, stderr=-1, timeout=30)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"holds no index.html", p.stderr)


class SseClient:
    """A raw HTTP/1.1 client for one GET /v1/live stream."""

    def __init__(self, addr, path, headers, rcvbuf=None):
        host, port = addr.rsplit(":", 1)
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.connect((host, int(port)))
        req = "GET %s HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n" % path
        for k, v in headers.items():
            req += "%s: %s\r\n" % (k, v)
        self.s.sendall((req + "\r\n").encode())
        self.buf = b""
        self.status = None
        self.headers = {}
        self.events = []

    def _read(self, timeout):
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(1 << 16)
        except socket.timeout:
            return False
        if not data:
            raise EOFError
        self.buf += data
        return True

    def head(self, timeout=10):
        end = time.time() + timeout
        while b"\r\n\r\n" not in self.buf:
            if time.time() > end or not self._read(max(0.05, end - time.time())):
                raise AssertionError("no response head")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {l.split(":", 1)[0].lower(): l.split(":", 1)[1].strip() for l in lines[1:]}
        return self.status

    def body_text(self):
        # Chunked transfer: strip the chunk sizes (good enough for SSE text).
        out, b = b"", self.buf
        while b:
            if b"\r\n" not in b:
                break
            size, rest = b.split(b"\r\n", 1)
            n = int(size, 16)
            if n == 0 or len(rest) < n + 2:
                break
            out += rest[:n]
            b = rest[n + 2:]
        return out.decode("utf-8", "replace")

    def wait_for(self, pred, timeout=10):
        end = time.time() + timeout
        while True:
            self.events = parse_sse(self.body_text())
            if pred(self.events):
                return self.events
            if time.time() > end:
                raise AssertionError("timed out; events so far: %r" % self.events[-5:])
            # Take everything that is there before parsing again (parsing is over the whole body).
            got = self._read(0.2)
            while got and self._read(0.05):
                pass

    def close(self):
        self.s.close()


def parse_sse(text):
    events = []
    for block in text.split("\n\n")[:-1]:
        ev = {"event": "message", "data": [], "id": None}
        for line in block.split("\n"):
            if line.startswith(":") or not line:
                continue
            k, _, v = line.partition(": ")
            if k == "data":
                ev["data"].append(v)
            elif k in ("event", "id"):
                ev[k] = v
        if ev["data"]:
            ev["data"] = json.loads("\n".join(ev["data"]))
            events.append(ev)
    return events


class LiveTest(DaemonTestCase):
    def setUp(self):
        self.d = self.daemon(start=False, extra_args=["--set", "privacy.check_interval=200ms"])
        self.app = self.d.create_app("Org L", "Live Game", "android")
        self.other = self.d.create_app("Org L", "Other Game", "android")
        self.foreign = self.d.create_app("Org M", "Their Game", "android")
        create_user(self.d.data_dir, "Org L", "owner@l.test", "owner")
        create_user(self.d.data_dir, "Org L", "viewer@l.test", "viewer")
        create_user(self.d.data_dir, "Org L", "limited@l.test", "analyst", apps=self.other["app_id"])
        self.d.start()
        self.tok = self.login("owner@l.test")
        self.clients = []

    def tearDown(self):
        for c in self.clients:
            c.close()

    def login(self, email):
        st, _, j = self.d.json_request("POST", "/v1/auth/login", {"email": email, "password": PASSWORD})
        self.assertEqual(st, 200, j)
        return j["access_token"]

    def live(self, app_id, token=None, headers=None, rcvbuf=None):
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        c = SseClient("%s:%d" % (self.d.host, self.d.port), "/v1/live?app=" + app_id, h, rcvbuf)
        self.clients.append(c)
        return c

    def test_credentials(self):
        c = self.live(self.app["app_id"])
        self.assertEqual(c.head(), 401)
        c = self.live(self.app["app_id"], headers={"X-App-Key": self.app["app_key"]})
        self.assertEqual(c.head(), 401)
        c = self.live(self.foreign["app_id"], token=self.tok)
        self.assertEqual(c.head(), 404)
        c = self.live(self.app["app_id"], token=self.login("limited@l.test"))
        self.assertEqual(c.head(), 404)
        st, _, body = self.d.request("GET", "/v1/live", headers={"Authorization": "Bearer " + self.tok})
        self.assertEqual(st, 400)
        self.assertEqual(parse_json(body)["error"]["field"], "app")
        # A viewer (reports:read) and the app secret may watch.
        c = self.live(self.app["app_id"], token=self.login("viewer@l.test"))
        self.assertEqual(c.head(), 200)
        c = self.live(self.app["app_id"], headers={"X-App-Secret": self.app["app_secret"]})
        self.assertEqual(c.head(), 200)
        self.assertEqual(c.headers["content-type"], "text/event-stream; charset=utf-8")
        self.assertEqual(c.headers["cache-control"], "no-store")

    def test_events_decisions_and_rejections_of_the_app(self):
        c = self.live(self.app["app_id"], token=self.tok)
        self.assertEqual(c.head(), 200)
        c.wait_for(lambda evs: any(e["event"] == "hello" for e in evs))
        self.assertEqual(c.events[0]["data"]["app"], self.app["app_id"])
        # Another app's traffic never shows.
        self.d.ingest(self.other, {"events": [event(type="install")]})
        ev = event(type="install")
        st, _, body = self.d.ingest(self.app, {"events": [ev, {"type": "bogus", "device": {}}]})
        self.assertEqual(st, 202, body)
        st, _, _ = self.d.ingest(self.app, {"events": [ev]})  # the same event_id again
        evs = c.wait_for(lambda evs: sum(e["event"] == "decision" for e in evs) >= 1 and
                         sum(e["event"] == "event" for e in evs) >= 2)
        accepted = [e["data"] for e in evs if e["event"] == "event"]
        self.assertEqual([a["status"] for a in accepted], ["accepted", "duplicate"])
        self.assertEqual(accepted[0]["event"]["event_id"], ev["event_id"])
        self.assertEqual(accepted[0]["event"]["app_id"], self.app["app_id"])
        rej = [e["data"] for e in evs if e["event"] == "rejected"]
        self.assertEqual(len(rej), 1)
        self.assertEqual(rej[0]["accepted"], 1)
        self.assertEqual(rej[0]["rejected"][0]["index"], 1)
        self.assertEqual(rej[0]["rejected"][0]["field"], "type")
        dec = [e["data"] for e in evs if e["event"] == "decision"]
        self.assertEqual(dec[0]["event_id"], ev["event_id"])
        self.assertEqual(dec[0]["outcome"], "install")
        self.assertIsNone(dec[0]["attribution"])
        ids = [int(e["id"]) for e in evs if e["id"] is not None]
        self.assertEqual(ids, sorted(ids))
        self.assertFalse(any(e["data"].get("event", {}).get("app_id") == self.other["app_id"] for e in evs
                             if e["event"] == "event"))

    def test_attributed_decision_names_the_touch(self):
        c = self.live(self.app["app_id"], token=self.tok)
        c.head()
        gaid = harness.gaid()
        # A click a minute before the install, from a browser (the fraud rules reject clicks without
        # a User-Agent and installs seconds after their click).
        touch = {"type": "click", "ts": harness.rfc3339(harness.now_us() - 60_000_000, 3), "source": "meta",
                 "campaign": "bf", "device": {"gaid": gaid},
                 "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 Chrome/120.0 Mobile"}
        st, _, body = self.d.request("POST", "/v1/touches", {"touches": [touch]},
                                     {"X-App-Secret": self.app["app_secret"]})
        self.assertEqual(st, 202, body)
        # Without ts the install takes the server's time, after the click.
        self.d.ingest(self.app, {"events": [event(type="install", ts=None, device={"gaid": gaid, "platform": "android"})]})
        evs = c.wait_for(lambda evs: any(e["event"] == "decision" for e in evs))
        a = [e["data"] for e in evs if e["event"] == "decision"][0]["attribution"]
        self.assertEqual((a["source"], a["campaign"], a["match"]), ("meta", "bf", "device_id"))

    def test_last_event_id_resumes(self):
        c = self.live(self.app["app_id"], token=self.tok)
        c.head()
        c.wait_for(lambda evs: any(e["event"] == "hello" for e in evs))
        evs1 = [event(type="session") for _ in range(3)]
        self.d.ingest(self.app, {"events": evs1})
        evs = c.wait_for(lambda evs: sum(e["event"] == "event" for e in evs) >= 3)
        first = [e for e in evs if e["event"] == "event"][0]
        c.close()
        c2 = self.live(self.app["app_id"], token=self.tok, headers={"Last-Event-ID": first["id"]})
        c2.head()
        evs = c2.wait_for(lambda evs: sum(e["event"] == "event" for e in evs) >= 2)
        got = [e["data"]["event"]["event_id"] for e in evs if e["event"] == "event"]
        self.assertEqual(got[:2], [evs1[1]["event_id"], evs1[2]["event_id"]])

    def test_forget_wipes_the_ring(self):
        # The ring keeps recent items as they came, ids included: a forget request wipes the app's, so a stream
        # resumed from the first item on (Last-Event-ID: that item's) no longer shows the device.
        c = self.live(self.app["app_id"], token=self.tok)
        c.head()
        g = harness.gaid()
        self.d.ingest(self.app, {"events": [event(type="session")]})  # the first item: resumed after it
        self.d.ingest(self.app, {"events": [event(type="session", device={"gaid": g, "platform": "android"})]})
        evs = c.wait_for(lambda evs: any(g in json.dumps(e["data"]) for e in evs))
        first = [e for e in evs if e["event"] == "event"][0]["id"]
        c.close()
        st, _, body = self.d.request("POST", "/v1/privacy/forget",
                                     {"app_id": self.app["app_id"], "devices": [{"gaid": g}]},
                                     {"Authorization": "Bearer " + self.tok})
        self.assertEqual(st, 202, body)
        rid = parse_json(body)["request_id"]
        deadline = time.time() + 20
        while parse_json(self.d.request("GET", "/v1/privacy/requests/" + rid,
                                        headers={"Authorization": "Bearer " + self.tok})[2])["status"] != "done":
            self.assertLess(time.time(), deadline, "forget request not done")
            time.sleep(0.1)
        c2 = self.live(self.app["app_id"], token=self.tok, headers={"Last-Event-ID": first})
        c2.head()
        hello = c2.wait_for(lambda evs: any(e["event"] == "hello" for e in evs))[0]["data"]
        self.assertTrue(hello["resumed"], hello)
        marker = event(type="session")
        self.d.ingest(self.app, {"events": [marker]})
        evs = c2.wait_for(lambda evs: any(marker["event_id"] in json.dumps(e["data"]) for e in evs))
        self.assertFalse([e for e in evs if g in json.dumps(e["data"])], "the forgotten device is still on the feed")

    def test_stream_ends_when_its_credential_stops_working(self):
        # An API token watching the app is revoked: new requests with it get 401 at once, and its open stream ends
        # with a `closed` event within the recheck (5 s). A stream of another credential goes on.
        t = self.d.json_request("POST", "/v1/tokens", {"name": "tv", "permissions": ["reports:read"]},
                                {"Authorization": "Bearer " + self.tok})
        self.assertEqual(t[0], 201, t)
        c = self.live(self.app["app_id"], token=t[2]["token"])
        self.assertEqual(c.head(), 200)
        other = self.live(self.app["app_id"], token=self.tok)
        self.assertEqual(other.head(), 200)
        c.wait_for(lambda evs: any(e["event"] == "hello" for e in evs))
        st, _, body = self.d.request("DELETE", "/v1/tokens/" + t[2]["token_id"],
                                     headers={"Authorization": "Bearer " + self.tok})
        self.assertEqual(st, 200, body)
        t0 = time.time()
        evs = c.wait_for(lambda evs: any(e["event"] == "closed" for e in evs), timeout=12)
        self.assertLess(time.time() - t0, 8)
        self.assertEqual([e["data"]["reason"] for e in evs if e["event"] == "closed"], ["credentials"])
        ev = event(type="session")
        self.d.ingest(self.app, {"events": [ev]})
        other.wait_for(lambda evs: any(ev["event_id"] in json.dumps(e["data"]) for e in evs))

    def test_streams_per_organization_and_stale_ids(self):
        # One organization holds at most 16 streams, so another can still watch its own apps.
        mine = [self.live(self.app["app_id"], headers={"X-App-Secret": self.app["app_secret"]}) for _ in range(16)]
        self.assertEqual([c.head() for c in mine], [200] * 16)
        extra = self.live(self.app["app_id"], token=self.tok)
        self.assertEqual(extra.head(), 503)
        self.assertIn("this organization has 16 live streams open", extra.body_text() + extra.buf.decode())
        theirs = self.live(self.foreign["app_id"], headers={"X-App-Secret": self.foreign["app_secret"]})
        self.assertEqual(theirs.head(), 200)
        # A Last-Event-ID the ring does not hold (too old, or of an earlier start of the daemon) starts from the
        # newest item, and the hello says it did not resume.
        c = self.live(self.foreign["app_id"], headers={"X-App-Secret": self.foreign["app_secret"],
                                                       "Last-Event-ID": "3"})
        self.assertEqual(c.head(), 200)
        hello = c.wait_for(lambda evs: any(e["event"] == "hello" for e in evs))[0]["data"]
        self.assertIs(hello["resumed"], False)
        self.assertGreater(hello["next"], 1 << 50)  # ids start at the clock in microseconds

    def test_slow_client_is_told_what_it_missed(self):
        slow = self.live(self.app["app_id"], token=self.tok, rcvbuf=4096)
        self.assertEqual(slow.head(), 200)
        # Fill the ring several times over while the slow client reads nothing.
        props = {"p%d" % i: "x" * 200 for i in range(6)}  # ~1.6 KB an event
        for _ in range(16):
            batch = [event(type="event", name="level_up", props=props) for _ in range(500)]
            st, _, body = self.d.ingest(self.app, {"events": batch})
            self.assertEqual(st, 202, body[:200])
            self.assertEqual(parse_json(body)["rejected"], [])
        evs = slow.wait_for(lambda evs: any(e["event"] == "dropped" for e in evs), timeout=30)
        d = [e["data"] for e in evs if e["event"] == "dropped"][0]
        self.assertGreater(d["dropped"], 0)
        # Ingest was never held up by the slow reader: every event is stored.
        _, _, body = self.d.request("GET", "/metrics")
        m = [l for l in body.decode().splitlines() if l.startswith("umg_events_accepted_total")]
        self.assertEqual(int(m[0].split()[-1]), 8000)
        self.assertIn("umg_live_client_dropped_total", body.decode())
