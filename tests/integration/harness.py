"""Integration-test harness: starts the real daemon and talks HTTP to it.

`Daemon` runs `unmogrowp serve --data DIR --listen 127.0.0.1:0`, waits for the
address file and for /readyz, and offers a keep-alive HTTP client, restarts
on the same data directory, SIGTERM and SIGKILL. `create_app` runs the admin
CLI. `DaemonTestCase` gives each test its own temporary data directory and
stops every daemon it started, also when the test fails.

Only the Python standard library is used. The binary comes from the UMG_BIN
environment variable (default: <repo>/build/unmogrowp).
"""

import datetime
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import uuid

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
START_TIMEOUT = 20.0


def binary():
    return os.environ.get("UMG_BIN") or os.path.join(REPO, "build", "unmogrowp")


def _tail(path, lines=40):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(no log: %s)" % e
    text = data.decode("utf-8", "replace").splitlines()
    return "\n".join(text[-lines:])


def create_app(data_dir, org, name, platform, extra=(), env=None):
    """Runs `admin app create` and returns its JSON (org_id, app_id, app_key, app_secret)."""
    os.makedirs(data_dir, exist_ok=True)
    cmd = [binary(), "admin", "app", "create", "--data", data_dir, "--org", org,
           "--name", name, "--platform", platform] + list(extra)
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_env,
                       timeout=30)
    if p.returncode != 0:
        raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s" % (
            " ".join(cmd), p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace")))
    out = p.stdout.decode("utf-8", "replace").strip()
    try:
        obj = json.loads(out)
    except ValueError as e:
        raise AssertionError("admin app create printed no JSON object (%s): %r" % (e, out))
    for k in ("org_id", "app_id", "app_key", "app_secret"):
        if not isinstance(obj.get(k), str) or not obj[k]:
            raise AssertionError("admin app create: missing %r in %r" % (k, obj))
    return obj


class Daemon:
    """One daemon process on its own data directory (reused across restarts)."""

    def __init__(self, data_dir=None, extra_args=(), env=None, tls=None):
        self.owns_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="umg-it-")
        os.makedirs(self.data_dir, exist_ok=True)
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        # TLS is on when a certificate is configured, unless told otherwise.
        self.tls = tls if tls is not None else any("http.tls_cert=" in a for a in self.extra_args)
        self.proc = None
        self.host = None
        self.port = None
        self._conn = None
        self._logf = None
        self.log_path = os.path.join(self.data_dir, "daemon.log")
        self.addr_path = os.path.join(self.data_dir, "daemon.addr")
        self.expected_exit = False

    # ------------------------------------------------------------ lifecycle

    def command(self):
        return [binary(), "serve", "--data", self.data_dir, "--listen", "127.0.0.1:0"] + \
            self.extra_args

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "already running"
        try:
            os.unlink(self.addr_path)
        except FileNotFoundError:
            pass
        if self._logf:
            self._logf.close()
        self._logf = open(self.log_path, "ab")
        self._logf.write(("--- harness: starting %s\n" % " ".join(self.command())).encode())
        self._logf.flush()
        env = dict(os.environ)
        env.update(self.env)
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=self._logf, stderr=self._logf, env=env)
        self.expected_exit = False
        self.host = self.port = None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self._check_alive("while starting")
            addr = self._read_addr()
            if addr:
                self.host, self.port = addr
                break
            time.sleep(0.02)
        else:
            self._fail_start("no %s after %.0fs" % (self.addr_path, START_TIMEOUT))
        last = None
        while time.monotonic() < deadline:
            self._check_alive("while waiting for /readyz")
            try:
                c = self.new_connection(timeout=2)
                c.request("GET", "/readyz")
                r = c.getresponse()
                r.read()
                c.close()
                last = r.status
                if r.status == 200:
                    return self
            except (OSError, http.client.HTTPException) as e:
                last = repr(e)
            time.sleep(0.05)
        self._fail_start("GET /readyz not 200 after %.0fs (last: %s)" % (START_TIMEOUT, last))

    def _read_addr(self):
        try:
            with open(self.addr_path) as f:
                text = f.read()
        except FileNotFoundError:
            return None
        if not text.endswith("\n"):
            return None  # being written
        m = re.match(r"^(.+):(\d+)$", text.strip())
        if not m:
            raise AssertionError("bad %s content: %r" % (self.addr_path, text))
        host = m.group(1).strip("[]")
        return host, int(m.group(2))

    def _check_alive(self, when):
        rc = self.proc.poll()
        if rc is not None:
            raise AssertionError("daemon exited with %s %s\n--- %s (tail)\n%s" % (
                rc, when, self.log_path, _tail(self.log_path)))

    def _fail_start(self, why):
        self._kill_quietly()
        raise AssertionError("daemon did not start: %s\n--- %s (tail)\n%s" % (
            why, self.log_path, _tail(self.log_path)))

    def _kill_quietly(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._close_log()

    def _close_log(self):
        self.close_conn()
        if self._logf:
            self._logf.close()
            self._logf = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15.0):
        """SIGTERM and wait. Returns the exit status (None if it was not running)."""
        self.close_conn()
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.expected_exit = True
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                self._close_log()
                raise AssertionError("daemon did not exit %.0fs after SIGTERM\n%s" % (
                    timeout, _tail(self.log_path)))
        self._close_log()
        return self.proc.returncode

    def kill9(self):
        self.close_conn()
        if self.proc is not None and self.proc.poll() is None:
            self.expected_exit = True
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._close_log()

    def restart(self, kill=False):
        if kill:
            self.kill9()
        else:
            rc = self.stop()
            if rc not in (0, None):
                raise AssertionError("daemon exited %s on SIGTERM\n%s" % (rc, self.log_tail()))
        return self.start()

    def cleanup(self):
        """Stops the daemon; raises if it had died unexpectedly or failed SIGTERM."""
        problem = None
        if self.proc is not None:
            rc = self.proc.poll()
            if rc is not None:
                if not self.expected_exit:
                    problem = "daemon died during the test (exit %s)" % rc
            else:
                try:
                    rc = self.stop()
                except AssertionError as e:
                    problem = str(e)
                else:
                    if rc != 0:
                        problem = "daemon exited %s on SIGTERM" % rc
        self._close_log()
        if problem is None:
            problem = self.sanitizer_report()
        if problem:
            raise AssertionError("%s\n--- %s (tail)\n%s" % (problem, self.log_path,
                                                            self.log_tail()))
        if self.owns_dir and not os.environ.get("UMG_KEEP"):
            shutil.rmtree(self.data_dir, ignore_errors=True)

    SANITIZER_MARKS = ("runtime error:", "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                       "WARNING: ThreadSanitizer", "ERROR: ThreadSanitizer")

    def sanitizer_report(self):
        """The first sanitizer report line in the daemon log (ASan/UBSan builds), or None."""
        ignore = [x for x in os.environ.get("UMG_SAN_IGNORE", "").split(",") if x]
        for line in self.log_text().splitlines():
            if any(m in line for m in self.SANITIZER_MARKS) and \
                    not any(x in line for x in ignore):
                return "sanitizer report in the daemon log: " + line.strip()[:300]
        return None

    def log_tail(self, lines=40):
        return _tail(self.log_path, lines)

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    # ------------------------------------------------------------ HTTP

    @property
    def url(self):
        return "%s://%s:%d" % ("https" if self.tls else "http", self.host, self.port)

    def new_connection(self, timeout=30):
        if self.tls:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout,
                                               context=unverified_context())
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def close_conn(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method, path, body=None, headers=None, timeout=30):
        """One request on the keep-alive connection: (status, headers dict lower-cased, body)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        hdrs = dict(headers or {})
        if body is not None and not any(k.lower() == "content-type" for k in hdrs):
            hdrs["Content-Type"] = "application/json"
        for attempt in (0, 1):
            fresh = self._conn is None
            if fresh:
                self._conn = self.new_connection(timeout)
            try:
                self._conn.request(method, path, body=body, headers=hdrs)
                r = self._conn.getresponse()
                data = r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.ResponseNotReady):
                # The server may close an idle keep-alive connection; retry once on a new one
                # (only when the failed attempt reused a connection).
                self.close_conn()
                if fresh or attempt:
                    raise
                continue
            h = {k.lower(): v for k, v in r.getheaders()}
            if r.will_close:
                self.close_conn()
            return r.status, h, data
        raise AssertionError("unreachable")

    def json_request(self, method, path, body=None, headers=None):
        status, h, data = self.request(method, path, body, headers)
        return status, h, parse_json(data, "%s %s -> %d" % (method, path, status))

    # ------------------------------------------------------------ apps

    def create_app(self, org, name, platform, extra=()):
        return create_app(self.data_dir, org, name, platform, extra, self.env)

    def ingest(self, app, body, use_secret=False, headers=None):
        h = {"X-App-Secret": app["app_secret"]} if use_secret else {"X-App-Key": app["app_key"]}
        h.update(headers or {})
        return self.request("POST", "/v1/events", body, h)

    def export(self, app, secret=None, params=None):
        """Exports app's events; returns (status, headers, list of objects or raw body)."""
        q = "app=" + app["app_id"]
        for k, v in (params or {}).items():
            q += "&%s=%s" % (k, quote(str(v)))
        status, h, data = self.request("GET", "/v1/export/events?" + q,
                                       headers={"X-App-Secret": secret or app["app_secret"]})
        if status != 200:
            return status, h, data
        return status, h, parse_ndjson(data)


def quote(s):
    from urllib.parse import quote as q
    return q(s, safe="")


def parse_json(data, what=""):
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise AssertionError("%s: body is not JSON (%s): %r" % (what, e, data[:500]))


def parse_ndjson(data):
    out = []
    for i, line in enumerate(data.split(b"\n")):
        if not line.strip():
            continue
        out.append(parse_json(line, "export line %d" % i))
    return out


def unverified_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# ---------------------------------------------------------------- raw HTTP


def read_response(sock, buf=b"", timeout=10.0):
    """Reads one HTTP/1.1 response from a socket. Returns (status, headers, body, rest) or
    None when the peer closed before a status line arrived."""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        chunk = _recv(sock, deadline)
        if not chunk:
            if buf:
                raise AssertionError("connection closed inside a response head: %r" % buf[:200])
            return None
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    status = int(m.group(1))
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(buf) < n:
            chunk = _recv(sock, deadline)
            if not chunk:
                raise AssertionError("connection closed inside a response body: %r has "
                                     "Content-Length %d but only %d body bytes arrived: %r" %
                                     (lines[0], n, len(buf), buf[:200]))
            buf += chunk
        return status, headers, buf[:n], buf[n:]
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            while b"\r\n" not in buf:
                chunk = _recv(sock, deadline)
                if not chunk:
                    raise AssertionError("connection closed inside a chunked body")
                buf += chunk
            size_line, buf = buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(buf) < size + 2:
                chunk = _recv(sock, deadline)
                if not chunk:
                    raise AssertionError("connection closed inside a chunk")
                buf += chunk
            body += buf[:size]
            buf = buf[size + 2:]
            if size == 0:
                return status, headers, body, buf
    # Body delimited by close.
    while True:
        chunk = _recv(sock, deadline)
        if not chunk:
            return status, headers, buf, b""
        buf += chunk


def _recv(sock, deadline):
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise socket.timeout("timed out reading a response")
    sock.settimeout(remaining)
    try:
        return sock.recv(65536)
    except ConnectionResetError:
        return b""


def raw_request(host, port, head, body=b"", chunk=65536, timeout=10.0):
    """Sends `head` (bytes, ending in CRLFCRLF) and `body` on a new socket, stopping early when
    the server answers first (as it may for a body that is too large). Returns
    (status, headers, body) or None when the connection was closed without a response."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        try:
            s.sendall(head)
            off = 0
            while off < len(body):
                r, _, _ = select.select([s], [], [], 0)
                if r:
                    break
                s.sendall(body[off:off + chunk])
                off += chunk
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            res = read_response(s, timeout=timeout)
        except ConnectionResetError:
            return None
        return None if res is None else res[:3]
    finally:
        s.close()


# ---------------------------------------------------------------- events


def now_us():
    return int(time.time() * 1_000_000)


def rfc3339(us, digits=6):
    """UTC RFC 3339 with `digits` fractional digits (0, 3 or 6)."""
    dt = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + \
        datetime.timedelta(microseconds=us)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    frac = "%06d" % dt.microsecond
    if digits:
        base += "." + frac[:digits]
    return base + "Z"


def parse_rfc3339_us(s):
    """Parses an RFC 3339 string into Unix microseconds."""
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(\.\d+)?([Zz]|[+-]\d\d:\d\d)$", s)
    if not m:
        raise ValueError("not RFC 3339: %r" % s)
    y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
    frac = m.group(7) or ""
    us = int((frac[1:] + "000000")[:6]) if frac else 0
    dt = datetime.datetime(y, mo, d, h, mi, sec, tzinfo=datetime.timezone.utc)
    off = m.group(8)
    secs = int(dt.timestamp())
    if off not in ("Z", "z"):
        sign = 1 if off[0] == "+" else -1
        secs -= sign * (int(off[1:3]) * 3600 + int(off[4:6]) * 60)
    return secs * 1_000_000 + us


CANONICAL_TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def new_id():
    return str(uuid.uuid4())


def gaid():
    return str(uuid.uuid4())


def event(**kw):
    """A minimal valid event (session, random gaid, ts one second ago) with overrides."""
    e = {"event_id": new_id(), "type": "session", "ts": rfc3339(now_us() - 1_000_000, 3),
         "device": {"gaid": gaid(), "platform": "android"}}
    for k, v in kw.items():
        if v is None:
            e.pop(k, None)
        else:
            e[k] = v
    return e


# ---------------------------------------------------------------- test case base


class DaemonTestCase(unittest.TestCase):
    """Gives each test fresh data directories and stops its daemons afterwards."""

    maxDiff = 4000

    def daemon(self, extra_args=(), data_dir=None, env=None, start=True, tls=None):
        d = Daemon(data_dir=data_dir, extra_args=extra_args, env=env, tls=tls)
        self.addCleanup(d.cleanup)
        self._daemons = getattr(self, "_daemons", []) + [d]
        if start:
            d.start()
        return d

    def tmpdir(self):
        t = tempfile.mkdtemp(prefix="umg-it-tmp-")
        self.addCleanup(shutil.rmtree, t, True)
        return t

    def logs(self):
        return "\n".join("--- %s (tail)\n%s" % (d.log_path, d.log_tail(15))
                         for d in getattr(self, "_daemons", []))

    def assertStatus(self, status, expected, what="", body=b""):
        if status != expected:
            self.fail("%s: expected HTTP %d, got %d; body %r\n%s" % (
                what, expected, status, body[:600], self.logs()))

    def assertRequestId(self, headers, what=""):
        self.assertTrue(headers.get("x-request-id"), "%s: no X-Request-Id header (headers %r)" %
                        (what, headers))

    def assertError(self, resp, status, code, field=None, what=""):
        """resp = (status, headers, body bytes). Checks the contract's error shape; returns it."""
        st, h, data = resp
        self.assertStatus(st, status, what, data)
        self.assertRequestId(h, what)
        ct = h.get("content-type", "")
        self.assertTrue(ct.startswith("application/json"),
                        "%s: error Content-Type %r, want application/json" % (what, ct))
        obj = parse_json(data, what)
        err = obj.get("error") if isinstance(obj, dict) else None
        self.assertIsInstance(err, dict, "%s: no error object in %r" % (what, obj))
        if code is None:
            self.assertTrue(isinstance(err.get("code"), str) and err["code"],
                            "%s: error.code missing: %r" % (what, err))
        else:
            self.assertEqual(err.get("code"), code, "%s: error %r" % (what, err))
        self.assertIsInstance(err.get("message"), str, "%s: error.message missing: %r" %
                              (what, err))
        if field is not None:
            self.assertEqual(err.get("field"), field, "%s: error %r" % (what, err))
        return obj

    def ingest_ok(self, d, app, body, accepted=None, duplicates=None, use_secret=False,
                  what="ingest"):
        st, h, data = d.ingest(app, body, use_secret=use_secret)
        self.assertStatus(st, 202, what, data)
        self.assertRequestId(h, what)
        obj = parse_json(data, what)
        for k in ("accepted", "duplicates", "rejected"):
            self.assertIn(k, obj, "%s: response %r" % (what, obj))
        if accepted is not None:
            self.assertEqual(obj["accepted"], accepted, "%s: response %r" % (what, obj))
        if duplicates is not None:
            self.assertEqual(obj["duplicates"], duplicates, "%s: response %r" % (what, obj))
        return obj

    def export_ok(self, d, app, params=None, secret=None):
        st, h, out = d.export(app, secret=secret, params=params)
        if st != 200:
            self.fail("export %r: HTTP %d %r\n%s" % (params, st, out[:500], self.logs()))
        ct = h.get("content-type", "")
        self.assertTrue(ct.startswith("application/x-ndjson"), "export Content-Type %r" % ct)
        return out
