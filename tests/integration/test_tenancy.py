"""Tenancy and security through the real HTTP API: login and token rotation,
the role -> permission matrix cell by cell, tenant isolation with two
organizations, hand-made hostile JWTs, API tokens, app key rotation, ingest
rate limits and quotas, the login limiter, invitations, the audit log and
hostile input on every parameter."""

import base64
import datetime
import hashlib
import hmac
import json
import os
import sqlite3
import subprocess
import threading
import time

import harness
from harness import DaemonTestCase, event, parse_json

PASSWORD = "correct horse battery"

# The matrix of docs/security.md.
ROLES = ["owner", "admin", "analyst", "marketer", "viewer"]
MATRIX = {
    "apps:read": {"owner", "admin", "analyst", "marketer", "viewer"},
    "apps:write": {"owner", "admin"},
    "keys:manage": {"owner", "admin"},
    "users:manage": {"owner", "admin"},
    "reports:read": {"owner", "admin", "analyst", "marketer", "viewer"},
    "export:raw": {"owner", "admin", "analyst"},
    "costs:write": {"owner", "admin", "marketer"},
    "settings:write": {"owner", "admin", "marketer"},
    "privacy:execute": {"owner", "admin"},
    "audit:read": {"owner", "admin"},
    "org:manage": {"owner"},
}


def create_user(data_dir, org, email, role, apps=None, password=PASSWORD):
    cmd = [harness.binary(), "admin", "user", "create", "--data", data_dir, "--org", org,
           "--email", email, "--role", role]
    if apps:
        cmd += ["--apps", apps]
    p = subprocess.run(cmd, input=(password + "\n").encode(), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise AssertionError("user create: %s" % p.stderr.decode())
    return json.loads(p.stdout)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(header, claims, key):
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    c = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing = (h + "." + c).encode()
    sig = hmac.new(key, signing, hashlib.sha256).digest() if key is not None else b""
    return h + "." + c + "." + b64url(sig)


class TenancyBase(DaemonTestCase):
    extra = ()

    def setUp(self):
        self.d = self.daemon(start=False, extra_args=list(self.extra))
        self.app_a = self.d.create_app("Org A", "Game A", "android")
        self.app_a2 = self.d.create_app("Org A", "Game A2", "ios")
        self.app_b = self.d.create_app("Org B", "Game B", "android")
        self.owner_a = create_user(self.d.data_dir, "Org A", "owner@a.test", "owner")
        self.owner_b = create_user(self.d.data_dir, "Org B", "owner@b.test", "owner")
        self.d.start()
        self.tok_a = self.login("owner@a.test")["access_token"]
        self.tok_b = self.login("owner@b.test")["access_token"]

    def login(self, email, password=PASSWORD, expect=200):
        st, h, data = self.d.request("POST", "/v1/auth/login",
                                     {"email": email, "password": password})
        self.assertStatus(st, expect, "login " + email, data)
        return parse_json(data)

    def call(self, method, path, token=None, body=None, headers=None):
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        return self.d.request(method, path, body, hdrs)

    def ok(self, method, path, token, body=None, expect=200):
        st, h, data = self.call(method, path, token, body)
        self.assertStatus(st, expect, "%s %s" % (method, path), data)
        return parse_json(data)

    def wait_refresh(self):
        time.sleep(0.6)  # the daemon reloads users, tokens and keys every 250 ms


class LoginTest(TenancyBase):

    def test_login_me_refresh_logout(self):
        me = self.ok("GET", "/v1/me", self.tok_a)
        self.assertEqual(me["id"], self.owner_a["user_id"])
        self.assertEqual(me["role"], "owner")
        self.assertEqual(set(me["permissions"]), set(MATRIX))
        r1 = self.login("owner@a.test")
        r2 = self.ok("POST", "/v1/auth/refresh", None, {"refresh_token": r1["refresh_token"]})
        self.assertNotEqual(r2["refresh_token"], r1["refresh_token"])
        self.ok("GET", "/v1/me", r2["access_token"])
        # Reusing the rotated-out token ends the whole session (theft detection).
        resp = self.call("POST", "/v1/auth/refresh", None, {"refresh_token": r1["refresh_token"]})
        self.assertError(resp, 401, "invalid_token", "refresh_token")
        resp = self.call("POST", "/v1/auth/refresh", None, {"refresh_token": r2["refresh_token"]})
        self.assertError(resp, 401, "invalid_token", "refresh_token", "the successor is revoked too")
        # Logout revokes.
        r3 = self.login("owner@a.test")
        out = self.ok("POST", "/v1/auth/logout", None, {"refresh_token": r3["refresh_token"]})
        self.assertEqual(out["revoked"], 1)
        resp = self.call("POST", "/v1/auth/refresh", None, {"refresh_token": r3["refresh_token"]})
        self.assertError(resp, 401, "invalid_token")

    def test_wrong_password_and_unknown_user_look_the_same(self):
        a = self.call("POST", "/v1/auth/login", None, {"email": "owner@a.test", "password": "nope-nope"})
        b = self.call("POST", "/v1/auth/login", None, {"email": "ghost@a.test", "password": "nope-nope"})
        self.assertError(a, 401, "invalid_credentials")
        self.assertError(b, 401, "invalid_credentials")
        self.assertEqual(parse_json(a[2]), parse_json(b[2]))

    def test_login_rate_limited_per_account(self):
        for _ in range(3):
            self.login("owner@b.test", "wrong-password", expect=401)
        st, h, data = self.call("POST", "/v1/auth/login", None,
                                {"email": "owner@b.test", "password": PASSWORD})
        self.assertError((st, h, data), 429, "too_many_attempts")
        self.assertGreaterEqual(int(h["retry-after"]), 1)
        st, h, data = self.d.request("GET", "/metrics")
        self.assertIn(b'umg_auth_logins_total{outcome="rate_limited"} 1', data)
    extra = ("--set", "auth.login_max_failures=3")

    def test_bad_bodies(self):
        for body, field in [({"email": "owner@a.test"}, "password"), ({"password": "x"}, "email"),
                            ({"email": 5, "password": "x"}, "email"),
                            ({"email": "a@b", "password": "xxxxxxxx", "extra": 1}, "extra")]:
            st, h, data = self.call("POST", "/v1/auth/login", None, body)
            self.assertEqual(st, 400, data)
            self.assertEqual(parse_json(data)["error"]["field"], field, data)
        self.assertError(self.call("POST", "/v1/auth/login", None, "not json"), 400, "invalid_json")
        self.assertError(self.call("POST", "/v1/auth/login", None, b"{\"email\":\"\xff\"}"), 400,
                         "invalid_json")
        # A NUL byte in the body, before login and after: the admin worker's copy of the body stopped at it while
        # the body was parsed and wiped with its whole length (a heap overflow, caught by the ASan run).
        nul = b"{\"email\":\"owner@a.test\",\"password\":\"x\"}\x00" + b"A" * 300
        self.assertError(self.call("POST", "/v1/auth/login", None, nul), 400, "invalid_json")
        self.assertError(self.call("POST", "/v1/me/password", self.tok_a, nul), 400, "invalid_json")
        self.login("owner@a.test")
        # A store URL is at most 2048 bytes when an app is changed, as when it is made.
        app = "/v1/apps/" + self.app_a["app_id"]
        self.ok("PATCH", app, self.tok_a, {"store_url": "https://x/" + "a" * 2038})
        self.assertError(self.call("PATCH", app, self.tok_a, {"store_url": "https://x/" + "a" * 2039}), 400,
                         "invalid_value", "store_url")


class LoginRestartTest(TenancyBase):
    """The login limiter is taken back from the audit log after a restart."""
    extra = ("--set", "auth.login_max_failures=3", "--set", "http.trusted_proxies=127.0.0.1")

    def login_from(self, ip, email, password):
        return self.call("POST", "/v1/auth/login", None, {"email": email, "password": password},
                         {"X-Forwarded-For": ip})

    def test_login_limits_survive_a_restart(self):
        for _ in range(2):
            self.assertEqual(self.login_from("198.51.100.1", "owner@a.test", "wrong-password")[0], 401)
        self.assertEqual(self.login_from("198.51.100.1", "owner@a.test", PASSWORD)[0], 200)  # clears the account
        for _ in range(3):
            self.assertEqual(self.login_from("198.51.100.2", "owner@b.test", "wrong-password")[0], 401)
        self.assertError(self.login_from("198.51.100.3", "owner@b.test", PASSWORD), 429, "too_many_attempts")
        self.d.restart()
        self.assertError(self.login_from("198.51.100.3", "owner@b.test", PASSWORD), 429, "too_many_attempts",
                         what="the account limited before the restart")
        self.assertError(self.login_from("198.51.100.2", "owner@a.test", PASSWORD), 429, "too_many_attempts",
                         what="the address limited before the restart")
        st, h, data = self.login_from("198.51.100.3", "owner@a.test", PASSWORD)
        self.assertStatus(st, 200, "an account whose failures a success cleared before the restart", data)
        # The first address has 2 failures left from before: one more reaches the limit.
        self.assertEqual(self.login_from("198.51.100.1", "owner@a.test", "wrong-password")[0], 401)
        self.assertError(self.login_from("198.51.100.1", "owner@a.test", PASSWORD), 429, "too_many_attempts",
                         what="an address with failures before the restart")


    def test_password_change_failures_survive_a_restart(self):
        tok = self.login("owner@a.test")["access_token"]
        for _ in range(2):
            resp = self.call("POST", "/v1/me/password", tok,
                             {"current_password": "guess-guess", "new_password": "whatever-new-1"},
                             {"X-Forwarded-For": "198.51.100.7"})
            self.assertError(resp, 403, "invalid_credentials", "current_password")
        self.d.restart()
        # The account has 2 failures from before the restart: one wrong login more reaches the limit.
        self.assertEqual(self.login_from("198.51.100.8", "owner@a.test", "wrong-password")[0], 401)
        self.assertError(self.login_from("198.51.100.8", "owner@a.test", PASSWORD), 429, "too_many_attempts",
                         what="wrong current passwords before the restart count")


class LoginConcurrencyTest(TenancyBase):
    """Passwords are checked on a thread of their own (argon2id, ~0.1 s each)."""
    extra = ("--set", "auth.login_max_failures=3")

    def post_login(self, email, password, out, i):
        c = self.d.new_connection(timeout=60)
        try:
            c.request("POST", "/v1/auth/login", json.dumps({"email": email, "password": password}),
                      {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            out[i] = (r.status, time.monotonic())
        finally:
            c.close()

    def test_logins_do_not_hold_up_other_admin_requests(self):
        n = 6
        done = [None] * n
        threads = [threading.Thread(target=self.post_login, args=("owner@a.test", PASSWORD, done, i))
                   for i in range(n)]
        for t in threads:
            t.start()
        time.sleep(0.05)
        self.ok("GET", "/v1/me", self.tok_a)
        me_done = time.monotonic()
        for t in threads:
            t.join(60)
        self.assertEqual([d[0] for d in done], [200] * n, done)
        # Six checks take at least 0.4 s on two cores; /v1/me waited for none of them after its first turn.
        self.assertLess(me_done, max(d[1] for d in done), "GET /v1/me waited behind the logins")

    def test_guesses_in_flight_together_are_limited_as_if_one_by_one(self):
        n = 8
        done = [None] * n
        threads = [threading.Thread(target=self.post_login, args=("owner@b.test", "wrong-password", done, i))
                   for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        codes = sorted(d[0] for d in done)
        self.assertEqual(codes, [401] * 3 + [429] * 5, codes)
        st, h, data = self.call("POST", "/v1/auth/login", None, {"email": "owner@b.test", "password": PASSWORD})
        self.assertError((st, h, data), 429, "too_many_attempts")


class MatrixTest(TenancyBase):
    """Every role x permission cell: real endpoints where one exists, /v1/me otherwise."""

    def probe(self, perm, tok):
        app = self.app_a["app_id"]
        probes = {
            "apps:read": ("GET", "/v1/apps/" + app, None),
            "apps:write": ("PATCH", "/v1/apps/" + app, {"name": "Game A"}),
            "keys:manage": ("GET", "/v1/apps/%s/keys" % app, None),
            "users:manage": ("GET", "/v1/users", None),
            "export:raw": ("GET", "/v1/export/events?app=" + app, None),
            "settings:write": ("PATCH", "/v1/apps/" + app, {"settings": {"click_lookback_days": 7}}),
            "audit:read": ("GET", "/v1/audit", None),
            "org:manage": ("PATCH", "/v1/org", {"monthly_quota": 0}),
            "reports:read": ("GET", "/v1/reports/overview?app=%s&from=2026-11-01&to=2026-11-02" % app, None),
            "costs:write": ("POST", "/v1/costs?app=" + app, {"costs": [
                {"date": "2026-11-01", "source": "meta", "campaign": "c", "cost": 1, "currency": "USD"}]}),
        }
        if perm not in probes:
            return None
        m, p, b = probes[perm]
        st, h, data = self.call(m, p, tok, b)
        return st, data

    def test_every_cell(self):
        tokens = {}
        for role in ROLES:
            email = "%s@a.test" % role
            if role != "owner":
                self.ok("POST", "/v1/users", self.tok_a,
                        {"email": email, "password": PASSWORD, "role": role}, expect=201)
            else:
                email = "owner@a.test"
            tokens[role] = self.login(email)["access_token"]
        for perm, holders in sorted(MATRIX.items()):
            for role in ROLES:
                with self.subTest(perm=perm, role=role):
                    me = self.ok("GET", "/v1/me", tokens[role])
                    self.assertEqual(perm in me["permissions"], role in holders, me)
                    r = self.probe(perm, tokens[role])
                    if r is None:
                        continue  # no endpoint takes this permission yet (docs/STATUS.md)
                    st, data = r
                    if role in holders:
                        self.assertEqual(st, 200, "%s as %s: %r" % (perm, role, data))
                    else:
                        self.assertEqual(st, 403, "%s as %s: %r" % (perm, role, data))
                        self.assertEqual(parse_json(data)["error"]["code"], "forbidden")

    def test_app_scoped_user(self):
        self.ok("POST", "/v1/users", self.tok_a, {"email": "scoped@a.test", "password": PASSWORD,
                                                  "role": "analyst", "apps": [self.app_a2["app_id"]]},
                expect=201)
        tok = self.login("scoped@a.test")["access_token"]
        apps = self.ok("GET", "/v1/apps", tok)["apps"]
        self.assertEqual([a["app_id"] for a in apps], [self.app_a2["app_id"]])
        st, h, data = self.call("GET", "/v1/apps/" + self.app_a["app_id"], tok)
        self.assertError((st, h, data), 404, "not_found")
        st, h, data = self.call("GET", "/v1/export/events?app=" + self.app_a["app_id"], tok)
        self.assertError((st, h, data), 404, "not_found", "app")
        st, h, data = self.call("GET", "/v1/export/events?app=" + self.app_a2["app_id"], tok)
        self.assertStatus(st, 200, "export of an allowed app", data)

    def test_admin_cannot_touch_owners(self):
        self.ok("POST", "/v1/users", self.tok_a, {"email": "adm@a.test", "password": PASSWORD,
                                                  "role": "admin"}, expect=201)
        tok = self.login("adm@a.test")["access_token"]
        resp = self.call("POST", "/v1/users", tok, {"email": "o2@a.test", "password": PASSWORD,
                                                    "role": "owner"})
        self.assertError(resp, 403, "forbidden", "role")
        resp = self.call("PATCH", "/v1/users/" + self.owner_a["user_id"], tok, {"role": "viewer"})
        self.assertError(resp, 403, "forbidden")
        resp = self.call("DELETE", "/v1/users/" + self.owner_a["user_id"], tok)
        self.assertError(resp, 403, "forbidden")

    def test_app_limited_admin_stays_inside_its_apps(self):
        a1, a2 = self.app_a["app_id"], self.app_a2["app_id"]
        self.ok("POST", "/v1/users", self.tok_a, {"email": "lim@a.test", "password": PASSWORD, "role": "admin",
                                                  "apps": [a1]}, expect=201)
        full = self.ok("POST", "/v1/users", self.tok_a, {"email": "full@a.test", "password": PASSWORD,
                                                         "role": "admin"}, expect=201)
        tok = self.login("lim@a.test")["access_token"]
        for body in ({"email": "x1@a.test", "password": PASSWORD, "role": "viewer"},
                     {"email": "x2@a.test", "password": PASSWORD, "role": "viewer", "apps": [a2]}):
            self.assertError(self.call("POST", "/v1/users", tok, body), 403, "forbidden", "apps")
        self.ok("POST", "/v1/users", tok, {"email": "x3@a.test", "password": PASSWORD, "role": "viewer",
                                           "apps": [a1]}, expect=201)
        self.assertError(self.call("POST", "/v1/invitations", tok, {"email": "i@a.test", "role": "viewer"}),
                         403, "forbidden", "apps")
        self.assertError(self.call("PATCH", "/v1/users/" + full["user_id"], tok, {"password": "taken-over-1"}),
                         403, "forbidden")
        # Its own token cannot widen it either.
        t = self.ok("POST", "/v1/tokens", tok, {"name": "t", "permissions": ["users:manage", "apps:read"],
                                                "apps": [a1]}, expect=201)
        me = self.ok("GET", "/v1/me", tok)
        st, h, data = self.call("PATCH", "/v1/users/" + me["id"], t["token"], {"apps": None})
        self.assertIn(st, (400, 403), data)
        self.assertEqual([x["app_id"] for x in self.ok("GET", "/v1/apps", tok)["apps"]], [a1])

    def test_tokens_follow_their_creator(self):
        u = self.ok("POST", "/v1/users", self.tok_a, {"email": "adm@a.test", "password": PASSWORD,
                                                      "role": "admin"}, expect=201)
        tok = self.login("adm@a.test")["access_token"]
        t = self.ok("POST", "/v1/tokens", tok, {"name": "t", "permissions": ["users:manage", "apps:read"]},
                    expect=201)
        # A token holding only users:manage cannot make a user with more than it holds.
        self.assertError(self.call("POST", "/v1/users", t["token"], {"email": "b@a.test", "password": PASSWORD,
                                                                     "role": "admin"}), 403, "forbidden", "role")
        self.ok("GET", "/v1/me", t["token"])
        self.ok("PATCH", "/v1/users/" + u["user_id"], self.tok_a, {"role": "viewer"})
        self.wait_refresh()
        self.assertError(self.call("GET", "/v1/users", t["token"]), 403, "forbidden")
        self.ok("DELETE", "/v1/users/" + u["user_id"], self.tok_a)
        self.wait_refresh()
        self.assertError(self.call("GET", "/v1/me", t["token"]), 401, "invalid_token")

    def test_last_owner_and_self(self):
        resp = self.call("PATCH", "/v1/users/" + self.owner_a["user_id"], self.tok_a, {"role": "viewer"})
        self.assertError(resp, 400, "invalid_value", "role")
        other = self.ok("POST", "/v1/users", self.tok_a, {"email": "o2@a.test", "password": PASSWORD,
                                                          "role": "owner"}, expect=201)
        tok2 = self.login("o2@a.test")["access_token"]
        self.ok("DELETE", "/v1/users/" + self.owner_a["user_id"], tok2)
        resp = self.call("DELETE", "/v1/users/" + other["user_id"], tok2)
        self.assertError(resp, 400, "invalid_value")

    def test_role_change_and_disable_end_sessions(self):
        u = self.ok("POST", "/v1/users", self.tok_a, {"email": "m@a.test", "password": PASSWORD,
                                                      "role": "admin"}, expect=201)
        tok = self.login("m@a.test")["access_token"]
        self.ok("GET", "/v1/users", tok)
        self.ok("PATCH", "/v1/users/" + u["user_id"], self.tok_a, {"role": "viewer"})
        self.wait_refresh()
        self.assertError(self.call("GET", "/v1/me", tok), 401, "invalid_token")
        tok = self.login("m@a.test")["access_token"]
        self.assertError(self.call("GET", "/v1/users", tok), 403, "forbidden")
        self.ok("PATCH", "/v1/users/" + u["user_id"], self.tok_a, {"disabled": True})
        self.wait_refresh()
        self.assertError(self.call("GET", "/v1/me", tok), 401, "invalid_token")
        self.login("m@a.test", expect=401)


class IsolationTest(TenancyBase):
    """Org B's owner, B's API token, B's app secret, and nobody at all, against org A."""

    def setUp(self):
        super().setUp()
        self.tokapi_a = self.ok("POST", "/v1/tokens", self.tok_a,
                                {"name": "ci", "permissions": ["apps:read"]}, expect=201)
        self.tokapi_b = self.ok("POST", "/v1/tokens", self.tok_b,
                                {"name": "ci", "permissions": sorted(MATRIX)}, expect=201)
        self.inv_a = self.ok("POST", "/v1/invitations", self.tok_a,
                             {"email": "new@a.test", "role": "viewer"}, expect=201)

    def secrets_of_a(self):
        return [self.app_a["app_id"], self.app_a["app_key"], self.app_a["app_secret"],
                self.owner_a["user_id"], self.tokapi_a["token_id"], self.inv_a["invitation_id"],
                "Game A", "owner@a.test", "Org A"]

    def test_every_endpoint_refuses_the_other_tenant(self):
        a = self.app_a["app_id"]
        attempts = [
            ("GET", "/v1/apps/" + a, None), ("PATCH", "/v1/apps/" + a, {"name": "pwned"}),
            ("GET", "/v1/apps/%s/keys" % a, None),
            ("POST", "/v1/apps/%s/keys/rotate" % a, {"which": "app_secret"}),
            ("GET", "/v1/users/" + self.owner_a["user_id"], None),
            ("PATCH", "/v1/users/" + self.owner_a["user_id"], {"role": "viewer"}),
            ("DELETE", "/v1/users/" + self.owner_a["user_id"], None),
            ("DELETE", "/v1/tokens/" + self.tokapi_a["token_id"], None),
            ("DELETE", "/v1/invitations/" + self.inv_a["invitation_id"], None),
            ("GET", "/v1/export/events?app=" + a, None),
        ]
        creds = {"B owner": {"Authorization": "Bearer " + self.tok_b},
                 "B api token": {"Authorization": "Bearer " + self.tokapi_b["token"]},
                 "B app secret": {"X-App-Secret": self.app_b["app_secret"]},
                 "B app key": {"X-App-Key": self.app_b["app_key"]},
                 "nobody": {}}
        for name, hdrs in creds.items():
            for m, p, b in attempts:
                with self.subTest(cred=name, req="%s %s" % (m, p)):
                    st, h, data = self.d.request(m, p, b, hdrs)
                    self.assertIn(st, (401, 403, 404), data)
                    for s in self.secrets_of_a():
                        self.assertNotIn(s.encode(), data, "leaked %s" % s)
        # Lists of B show nothing of A.
        for p in ("/v1/apps", "/v1/users", "/v1/tokens", "/v1/invitations", "/v1/audit", "/v1/org", "/v1/me"):
            st, h, data = self.call("GET", p, self.tok_b)
            self.assertStatus(st, 200, p, data)
            for s in self.secrets_of_a():
                self.assertNotIn(s.encode(), data, "%s leaked %s" % (p, s))
        # Nothing of A changed.
        app = self.ok("GET", "/v1/apps/" + a, self.tok_a)
        self.assertEqual(app["name"], "Game A")
        keys = self.ok("GET", "/v1/apps/%s/keys" % a, self.tok_a)
        self.assertEqual(keys["app_secret"], self.app_a["app_secret"])
        self.ok("GET", "/v1/users/" + self.owner_a["user_id"], self.tok_a)
        self.ok("GET", "/v1/me", self.tokapi_a["token"])

    def test_no_token_everywhere(self):
        for p in ("/v1/me", "/v1/org", "/v1/apps", "/v1/users", "/v1/tokens", "/v1/invitations",
                  "/v1/audit", "/v1/apps/" + self.app_a["app_id"]):
            self.assertError(self.d.request("GET", p), 401, "unauthorized", "Authorization", p)

    def test_app_secret_is_not_an_admin_credential(self):
        st, h, data = self.d.request("GET", "/v1/apps", headers={"X-App-Secret": self.app_a["app_secret"]})
        self.assertError((st, h, data), 403, "forbidden")

    def test_user_token_cannot_send_events(self):
        st, h, data = self.call("POST", "/v1/events", self.tok_a, event())
        self.assertError((st, h, data), 403, "forbidden")


class JwtTest(TenancyBase):

    def secret(self):
        with open(os.path.join(self.d.data_dir, "jwt.secret"), "rb") as f:
            return f.read().strip()

    def claims(self, **kw):
        now = int(time.time())
        c = {"iss": "unmogrowp", "aud": "unmogrowp-api", "sub": self.owner_a["user_id"],
             "org": self.owner_a["org_id"], "jti": "00112233445566778899aabbccddeeff",
             "iat": now, "nbf": now, "exp": now + 300, "ver": 0}
        c.update(kw)
        return c

    def test_hand_made_tokens(self):
        key = self.secret()
        good = make_jwt({"alg": "HS256", "typ": "JWT"}, self.claims(), key)
        self.ok("GET", "/v1/me", good)
        now = int(time.time())
        bad = {
            "expired": make_jwt({"alg": "HS256"}, self.claims(exp=now - 120), key),
            "not yet valid": make_jwt({"alg": "HS256"}, self.claims(nbf=now + 600, iat=now + 600), key),
            "wrong key": make_jwt({"alg": "HS256"}, self.claims(), b"x" * 64),
            "alg none": make_jwt({"alg": "none"}, self.claims(), None),
            "alg None": make_jwt({"alg": "None"}, self.claims(), None),
            "alg RS256": make_jwt({"alg": "RS256"}, self.claims(), key),
            "alg HS512": make_jwt({"alg": "HS512"}, self.claims(), key),
            "tampered": good.split(".")[0] + "." + b64url(json.dumps(
                self.claims(sub=self.owner_b["user_id"], org=self.owner_b["org_id"])).encode()) + "." +
            good.split(".")[2],
            "other org claim": make_jwt({"alg": "HS256"}, self.claims(org=self.owner_b["org_id"]), key),
            "old version": make_jwt({"alg": "HS256"}, self.claims(ver=-1), key),
            "wrong issuer": make_jwt({"alg": "HS256"}, self.claims(iss="evil"), key),
            "wrong audience": make_jwt({"alg": "HS256"}, self.claims(aud="other"), key),
            "no exp": make_jwt({"alg": "HS256"}, {k: v for k, v in self.claims().items() if k != "exp"}, key),
            "truncated": good[:-5],
            "two parts": ".".join(good.split(".")[:2]),
            "garbage": "eyJ" + "A" * 5000,
        }
        for name, tok in bad.items():
            with self.subTest(name):
                st, h, data = self.call("GET", "/v1/me", tok)
                self.assertEqual(st, 401, data)
                err = parse_json(data)["error"]
                self.assertIn(err["code"], ("invalid_token", "token_expired", "unauthorized"))
                self.assertNotIn(tok[:40].encode(), data)
        self.assertEqual(parse_json(self.call("GET", "/v1/me", bad["expired"])[2])["error"]["code"],
                         "token_expired")

    def test_authorization_header_forms(self):
        for v in ("Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", "bearer" + self.tok_a,
                  "Token " + self.tok_a):
            with self.subTest(v):
                st, h, data = self.d.request("GET", "/v1/me", headers={"Authorization": v})
                self.assertEqual(st, 401, data)
        st, h, data = self.d.request("GET", "/v1/me", headers={"Authorization": "bearer  " + self.tok_a})
        self.assertStatus(st, 200, "lowercase scheme, two spaces", data)


class TokensAndKeysTest(TenancyBase):

    def test_api_token_lifecycle(self):
        t = self.ok("POST", "/v1/tokens", self.tok_a,
                    {"name": "exporter", "permissions": ["apps:read", "export:raw"],
                     "apps": [self.app_a["app_id"]]}, expect=201)
        self.assertTrue(t["token"].startswith("ut_"))
        me = self.ok("GET", "/v1/me", t["token"])
        self.assertEqual(sorted(me["permissions"]), ["apps:read", "export:raw"])
        st, h, data = self.call("GET", "/v1/export/events?app=" + self.app_a["app_id"], t["token"])
        self.assertStatus(st, 200, "export with a token", data)
        st, h, data = self.call("GET", "/v1/export/events?app=" + self.app_a2["app_id"], t["token"])
        self.assertError((st, h, data), 404, "not_found", "app")
        self.assertError(self.call("GET", "/v1/users", t["token"]), 403, "forbidden")
        self.assertError(self.call("POST", "/v1/tokens", t["token"], {"name": "x", "permissions": ["apps:read"]}),
                         403, "forbidden")
        listed = self.ok("GET", "/v1/tokens", self.tok_a)["tokens"]
        self.assertEqual([x["token_id"] for x in listed], [t["token_id"]])
        self.assertNotIn(t["token"], json.dumps(listed))
        self.ok("DELETE", "/v1/tokens/" + t["token_id"], self.tok_a)
        self.wait_refresh()
        self.assertError(self.call("GET", "/v1/me", t["token"]), 401, "invalid_token")

    def test_token_cannot_exceed_its_creator(self):
        self.ok("POST", "/v1/users", self.tok_a, {"email": "v@a.test", "password": PASSWORD,
                                                  "role": "viewer"}, expect=201)
        tok = self.login("v@a.test")["access_token"]
        resp = self.call("POST", "/v1/tokens", tok, {"name": "x", "permissions": ["users:manage"]})
        self.assertError(resp, 403, "forbidden", "permissions")
        resp = self.call("POST", "/v1/tokens", tok, {"name": "x", "permissions": ["events:write"]})
        self.assertError(resp, 400, "invalid_value", "permissions")

    def test_key_rotation_with_overlap(self):
        a = self.app_a
        new = self.ok("POST", "/v1/apps/%s/keys/rotate" % a["app_id"], self.tok_a,
                      {"which": "app_key", "overlap_seconds": 2})
        self.assertNotEqual(new["app_key"], a["app_key"])
        self.assertEqual(new["previous_app_key"], a["app_key"])
        # A second rotation with an overlap while this one's runs would end the old key early: refused.
        self.assertError(self.call("POST", "/v1/apps/%s/keys/rotate" % a["app_id"], self.tok_a,
                                   {"which": "app_key", "overlap_seconds": 60}), 409, "overlap_running", "which")
        self.wait_refresh()
        self.ingest_ok(self.d, a, event(), accepted=1, what="old key in the overlap")
        self.ingest_ok(self.d, dict(a, app_key=new["app_key"]), event(), accepted=1, what="new key")
        time.sleep(2.0)
        st, h, data = self.d.ingest(a, event())
        self.assertError((st, h, data), 401, "unauthorized", "X-App-Key", "old key after the overlap")
        sec = self.ok("POST", "/v1/apps/%s/keys/rotate" % a["app_id"], self.tok_a,
                      {"which": "app_secret", "overlap_seconds": 0})
        self.wait_refresh()
        st, h, data = self.d.ingest(a, event(), use_secret=True)
        self.assertError((st, h, data), 401, "unauthorized", "X-App-Secret")
        self.ingest_ok(self.d, dict(a, app_secret=sec["app_secret"]), event(), use_secret=True)
        audit = self.ok("GET", "/v1/audit?action=key.rotate", self.tok_a)["entries"]
        self.assertEqual(len(audit), 2)


class ReviewTest(TenancyBase):
    """What an authorization review found (2026-11-29): each of these passed before the fix."""

    def test_token_cannot_manage_a_stronger_user(self):
        owner2 = self.ok("POST", "/v1/users", self.tok_a, {"email": "o2@a.test", "password": PASSWORD,
                                                           "role": "owner"}, expect=201)
        t = self.ok("POST", "/v1/tokens", self.tok_a, {"name": "um", "permissions": ["users:manage"]},
                    expect=201)["token"]
        self.assertError(self.call("PATCH", "/v1/users/" + owner2["user_id"], t, {"password": "taken-over-9"}),
                         403, "forbidden")
        self.assertError(self.call("DELETE", "/v1/users/" + owner2["user_id"], t), 403, "forbidden")
        self.login("o2@a.test")  # the password is unchanged
        # A user it holds every permission of stays in its reach.
        v = self.ok("POST", "/v1/users", self.tok_a, {"email": "v@a.test", "password": PASSWORD, "role": "viewer"},
                    expect=201)
        self.assertError(self.call("PATCH", "/v1/users/" + v["user_id"], t, {"disabled": True}), 403, "forbidden")
        perms = sorted([p for p, roles in MATRIX.items() if "viewer" in roles] + ["users:manage"])
        t2 = self.ok("POST", "/v1/tokens", self.tok_a, {"name": "um2", "permissions": perms}, expect=201)["token"]
        self.ok("PATCH", "/v1/users/" + v["user_id"], t2, {"disabled": True})

    def test_disabling_a_user_ends_its_tokens(self):
        an = self.ok("POST", "/v1/users", self.tok_a, {"email": "an@a.test", "password": PASSWORD,
                                                       "role": "analyst"}, expect=201)
        tok = self.login("an@a.test")["access_token"]
        t = self.ok("POST", "/v1/tokens", tok, {"name": "t", "permissions": ["apps:read"]}, expect=201)
        self.ok("GET", "/v1/me", t["token"])
        self.ok("PATCH", "/v1/users/" + an["user_id"], self.tok_a, {"disabled": True})
        self.ok("PATCH", "/v1/users/" + an["user_id"], self.tok_a, {"disabled": False})
        self.wait_refresh()
        self.assertError(self.call("GET", "/v1/me", t["token"]), 401, None)
        rows = [x for x in self.ok("GET", "/v1/tokens", self.tok_a)["tokens"] if x["token_id"] == t["token_id"]]
        self.assertIsNotNone(rows[0]["revoked_at"], rows)

    def test_app_limited_admin_sees_and_revokes_only_inside_its_apps(self):
        a1, a2 = self.app_a["app_id"], self.app_a2["app_id"]
        self.ok("POST", "/v1/users", self.tok_a, {"email": "lim@a.test", "password": PASSWORD, "role": "admin",
                                                  "apps": [a1]}, expect=201)
        other = self.ok("POST", "/v1/users", self.tok_a, {"email": "adm2@a.test", "password": PASSWORD,
                                                          "role": "admin", "apps": [a2]}, expect=201)
        owner_tok = self.ok("POST", "/v1/tokens", self.tok_a, {"name": "all", "permissions": ["apps:read"]},
                            expect=201)
        inv2 = self.ok("POST", "/v1/invitations", self.tok_a, {"email": "i2@a.test", "role": "viewer",
                                                               "apps": [a2]}, expect=201)
        inv1 = self.ok("POST", "/v1/invitations", self.tok_a, {"email": "i1@a.test", "role": "viewer",
                                                               "apps": [a1]}, expect=201)
        tl = self.login("lim@a.test")["access_token"]
        own = self.ok("POST", "/v1/tokens", tl, {"name": "mine", "permissions": ["apps:read"], "apps": [a1]},
                      expect=201)
        self.assertEqual([x["token_id"] for x in self.ok("GET", "/v1/tokens", tl)["tokens"]], [own["token_id"]])
        self.assertError(self.call("DELETE", "/v1/tokens/" + owner_tok["token_id"], tl), 404, "not_found")
        listed = [x["invitation_id"] for x in self.ok("GET", "/v1/invitations", tl)["invitations"]]
        self.assertEqual(listed, [inv1["invitation_id"]])
        self.assertError(self.call("DELETE", "/v1/invitations/" + inv2["invitation_id"], tl), 403, "forbidden")
        self.ok("DELETE", "/v1/invitations/" + inv1["invitation_id"], tl)
        self.assertError(self.call("GET", "/v1/users/" + other["user_id"], tl), 403, "forbidden")
        self.ok("GET", "/v1/me", owner_tok["token"])  # still alive

    def test_combined_app_change_is_audited_per_kind(self):
        app = "/v1/apps/" + self.app_a["app_id"]
        self.ok("PATCH", app, self.tok_a, {"name": "Renamed", "settings": {"redirect_allowlist": ["x.example"]},
                                           "rate_limit": {"events_per_second": 5}})
        for action in ("app.update", "app.settings", "app.limits"):
            entries = self.ok("GET", "/v1/audit?action=" + action, self.tok_a)["entries"]
            self.assertEqual(len(entries), 1, (action, entries))
        settings = self.ok("GET", "/v1/audit?action=app.settings", self.tok_a)["entries"][0]
        self.assertIn("x.example", json.dumps(settings))


class OwnPasswordTest(TenancyBase):
    """POST /v1/me/password: any user changes their own password with the current one."""
    extra = ("--set", "auth.login_max_failures=3")

    def test_change_own_password(self):
        self.ok("POST", "/v1/users", self.tok_a, {"email": "v@a.test", "password": PASSWORD,
                                                  "role": "viewer"}, expect=201)
        first = self.login("v@a.test")
        other = self.login("v@a.test")  # another session of the same user
        new_pw = "a new password for v"
        r = self.ok("POST", "/v1/me/password", first["access_token"],
                    {"current_password": PASSWORD, "new_password": new_pw})
        self.assertTrue(r["access_token"] and r["refresh_token"].startswith("rt_"))
        self.assertEqual(r["user_id"], first["user_id"])
        # This session goes on with the new tokens; every other one ended.
        self.assertEqual(self.ok("GET", "/v1/me", r["access_token"])["email"], "v@a.test")
        self.assertError(self.call("GET", "/v1/me", first["access_token"]), 401, "invalid_token")
        self.assertError(self.call("GET", "/v1/me", other["access_token"]), 401, "invalid_token")
        self.assertError(self.call("POST", "/v1/auth/refresh", None, {"refresh_token": other["refresh_token"]}),
                         401, "invalid_token")
        self.ok("POST", "/v1/auth/refresh", None, {"refresh_token": r["refresh_token"]})
        self.login("v@a.test", PASSWORD, expect=401)
        self.login("v@a.test", new_pw)
        audit = self.ok("GET", "/v1/audit?action=user.password", self.tok_a)["entries"]
        self.assertEqual([e["outcome"] for e in audit], ["ok"])
        # An owner's own password goes the same way, never through PATCH without the current one.
        resp = self.call("PATCH", "/v1/users/" + self.owner_a["user_id"], self.tok_a, {"password": "taken-over-2"})
        self.assertError(resp, 400, "invalid_value", "password")
        self.login("owner@a.test")
        self.assertNotIn(new_pw, json.dumps(audit))

    def test_refusals(self):
        tok = self.login("owner@a.test")["access_token"]
        resp = self.call("POST", "/v1/me/password", tok, {"current_password": "not it at all",
                                                          "new_password": "whatever-new-1"})
        self.assertError(resp, 403, "invalid_credentials", "current_password")
        resp = self.call("POST", "/v1/me/password", tok, {"current_password": PASSWORD, "new_password": "short"})
        self.assertError(resp, 400, "invalid_value", "new_password")
        self.assertError(self.call("POST", "/v1/me/password", tok, {"new_password": "whatever-new-1"}),
                         400, None, "current_password")
        self.assertError(self.call("POST", "/v1/me/password", tok, {"current_password": PASSWORD,
                                                                    "new_password": "whatever-new-1", "x": 1}),
                         400, None, "x")
        self.assertError(self.call("GET", "/v1/me/password", tok), 405, "method_not_allowed")
        self.assertError(self.call("POST", "/v1/me/password", None, {"current_password": PASSWORD,
                                                                     "new_password": "whatever-new-1"}),
                         401, "unauthorized")
        t = self.ok("POST", "/v1/tokens", self.tok_a, {"name": "script", "permissions": ["apps:read"]}, expect=201)
        self.wait_refresh()
        self.assertError(self.call("POST", "/v1/me/password", t["token"], {"current_password": PASSWORD,
                                                                           "new_password": "whatever-new-1"}),
                         403, "forbidden")
        # Wrong guesses count in the login limiter: a stolen session cannot try passwords for ever.
        for _ in range(2):
            resp = self.call("POST", "/v1/me/password", tok, {"current_password": "guess-guess",
                                                              "new_password": "whatever-new-1"})
            self.assertError(resp, 403, "invalid_credentials", "current_password")
        st, h, data = self.call("POST", "/v1/me/password", tok, {"current_password": PASSWORD,
                                                                 "new_password": "whatever-new-1"})
        self.assertError((st, h, data), 429, "too_many_attempts")
        self.assertGreaterEqual(int(h["retry-after"]), 1)
        self.login("owner@a.test", PASSWORD, expect=429)  # the account's logins wait too
        self.ok("GET", "/v1/me", tok)  # the password did not change, the session holds
        audit = self.ok("GET", "/v1/audit?action=user.password", self.tok_b)["entries"]
        self.assertEqual(audit, [])  # another organization sees none of it


class LimitsTest(TenancyBase):

    def test_rate_limit(self):
        a = self.app_a
        self.ok("PATCH", "/v1/apps/" + a["app_id"], self.tok_a,
                {"rate_limit": {"events_per_second": 0.5, "burst": 5}})
        self.wait_refresh()
        self.ingest_ok(self.d, a, {"events": [event() for _ in range(5)]}, accepted=5)
        st, h, data = self.d.ingest(a, event())
        self.assertError((st, h, data), 429, "rate_limited")
        self.assertGreaterEqual(int(h["retry-after"]), 1)
        self.assertEqual(h["ratelimit-limit"], "5")
        self.assertEqual(h["ratelimit-remaining"], "0")
        # Another app of the same org is not limited; duplicates are given back.
        self.ingest_ok(self.d, self.app_a2, {"events": [event() for _ in range(20)]}, accepted=20)
        st, h, data = self.d.request("GET", "/metrics")
        self.assertIn(b'umg_ingest_limited_total{limit="rate"} 1', data)

    def test_monthly_quota(self):
        # A quota month is a UTC calendar month and a new one starts the count again: in a month's last minute,
        # wait for the next one, so that the test (some 7 s, a restart included) runs within one month.
        now = datetime.datetime.now(datetime.timezone.utc)
        first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        left = ((first + datetime.timedelta(days=32)).replace(day=1) - now).total_seconds()
        if left < 60:
            time.sleep(left + 0.5)
        self.ok("PATCH", "/v1/org", self.tok_a, {"monthly_quota": 10})
        self.wait_refresh()
        evs = [event() for _ in range(4)]
        self.ingest_ok(self.d, self.app_a, {"events": evs}, accepted=4)
        # Checked before deduplication, refunded after: a retried batch costs nothing.
        self.ingest_ok(self.d, self.app_a, {"events": evs}, duplicates=4, what="duplicates are free")
        self.ingest_ok(self.d, self.app_a2, {"events": [event() for _ in range(6)]}, accepted=6)
        st, h, data = self.d.ingest(self.app_a, event())
        self.assertError((st, h, data), 429, "quota_exceeded")
        org = self.ok("GET", "/v1/org", self.tok_a)
        self.assertEqual(org["usage"]["events"], 10)
        self.ingest_ok(self.d, self.app_b, event(), accepted=1, what="another org")
        # Usage survives a restart.
        time.sleep(5.5)
        self.d.restart()
        st, h, data = self.d.ingest(self.app_a, event())
        self.assertError((st, h, data), 429, "quota_exceeded", what="after restart")

    def test_bad_limit_settings(self):
        for body, field in [({"rate_limit": {"events_per_second": -1}}, "events_per_second"),
                            ({"rate_limit": {"nope": 1}}, "rate_limit.nope"),
                            ({"settings": {"click_lookback_days": 31}}, "click_lookback_days"),
                            ({"settings": {"bogus": 1}}, "settings.bogus"),
                            ({"settings": {"redirect_allowlist": ["../etc"]}}, "redirect_allowlist")]:
            resp = self.call("PATCH", "/v1/apps/" + self.app_a["app_id"], self.tok_a, body)
            st, h, data = resp
            self.assertEqual(st, 400, data)
            self.assertEqual(parse_json(data)["error"]["field"], field, data)
        self.assertError(self.call("PATCH", "/v1/org", self.tok_a, {"monthly_quota": "many"}), 400,
                         "invalid_type", "monthly_quota")


class SettingsAndAuditTest(TenancyBase):

    def test_app_settings_round_trip(self):
        a = self.app_a["app_id"]
        out = self.ok("PATCH", "/v1/apps/" + a, self.tok_a,
                      {"settings": {"click_lookback_days": 14, "redirect_allowlist": ["example.com"]}})
        self.assertEqual(out["settings"]["click_lookback_days"], 14)
        self.assertEqual(out["settings"]["view_lookback_hours"], 24)
        out = self.ok("PATCH", "/v1/apps/" + a, self.tok_a, {"settings": {"view_lookback_hours": 48}})
        self.assertEqual(out["settings"], {"click_lookback_days": 14, "view_lookback_hours": 48,
                                           "reattribution_window_days": 90, "probabilistic_window_hours": 24,
                                           "reengagement_lookback_days": 7, "reengagement_window_days": 30,
                                           "redirect_allowlist": ["example.com"],
                                           "source_click_lookback_days": {}, "timezone": "UTC", "currency": "USD",
                                           "require_signature": False})
        created = self.ok("POST", "/v1/apps", self.tok_a, {"name": "Web", "platform": "web"}, expect=201)
        self.assertTrue(created["app_secret"].startswith("as_"))
        self.wait_refresh()
        self.ingest_ok(self.d, created, event(), accepted=1, what="an app made over HTTP")
        self.assertError(self.call("POST", "/v1/apps", self.tok_a, {"name": "Web", "platform": "web"}),
                         409, "conflict", "name")

    def test_audit_log(self):
        self.login("owner@a.test", "wrong-password", expect=401)
        self.ok("POST", "/v1/tokens", self.tok_a, {"name": "x", "permissions": ["apps:read"]}, expect=201)
        st, h, data = self.call("GET", "/v1/export/events?app=" + self.app_a["app_id"], self.tok_a)
        self.assertStatus(st, 200, "export", data)
        time.sleep(0.3)
        entries = self.ok("GET", "/v1/audit", self.tok_a)["entries"]
        actions = [(e["action"], e["outcome"]) for e in entries]
        for want in [("auth.login", "failed"), ("auth.login", "ok"), ("token.create", "ok"),
                     ("export.raw", "ok"), ("user.create", "ok")]:
            self.assertIn(want, actions)
        page = self.ok("GET", "/v1/audit?limit=2", self.tok_a)
        self.assertEqual(len(page["entries"]), 2)
        more = self.ok("GET", "/v1/audit?limit=2&before_id=%d" % page["next_before_id"], self.tok_a)
        self.assertLess(more["entries"][0]["id"], page["entries"][-1]["id"])
        # Org B sees none of it; the table refuses changes even from SQLite itself.
        self.assertNotIn(b"owner@a.test", self.call("GET", "/v1/audit", self.tok_b)[2])
        db = sqlite3.connect(os.path.join(self.d.data_dir, "meta.db"))
        for sql in ("UPDATE audit SET outcome = 'ok'", "DELETE FROM audit"):
            with self.assertRaises(sqlite3.DatabaseError):
                db.execute(sql)
        db.close()

    def test_export_audited_before_its_data(self):
        """Each export's audit record is in meta.db before the export answers (not queued behind it); an export
        whose record cannot be written is refused with 503 and sends nothing."""
        self.ingest_ok(self.d, self.app_a, event(), accepted=1)
        db = sqlite3.connect(os.path.join(self.d.data_dir, "meta.db"))
        try:
            for path, action in (("/v1/export/events", "export.raw"), ("/v1/export/touches", "export.touches"),
                                 ("/v1/export/installs", "export.installs")):
                st, h, data = self.call("GET", path + "?app=" + self.app_a["app_id"], self.tok_a)
                self.assertStatus(st, 200, path, data)
                rows = db.execute("SELECT action FROM audit WHERE request_id = ?",
                                  (h["x-request-id"],)).fetchall()
                self.assertEqual(rows, [(action,)], path)
            db.execute("CREATE TRIGGER no_export BEFORE INSERT ON audit WHEN NEW.action LIKE 'export.%' "
                       "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
            db.commit()
            for path in ("/v1/export/events", "/v1/export/touches", "/v1/export/installs"):
                self.assertError(self.call("GET", path + "?app=" + self.app_a["app_id"], self.tok_a),
                                 503, "audit_unavailable")
        finally:
            db.close()

    def test_invitation_flow(self):
        inv = self.ok("POST", "/v1/invitations", self.tok_a,
                      {"email": "new@a.test", "role": "analyst", "apps": [self.app_a["app_id"]]}, expect=201)
        listed = self.ok("GET", "/v1/invitations", self.tok_a)["invitations"]
        self.assertEqual([i["invitation_id"] for i in listed], [inv["invitation_id"]])
        u = self.ok("POST", "/v1/invitations/accept", None, {"token": inv["token"], "password": PASSWORD},
                    expect=201)
        self.assertEqual((u["role"], u["apps"]), ("analyst", [self.app_a["app_id"]]))
        self.wait_refresh()
        self.login("new@a.test")
        self.assertError(self.call("POST", "/v1/invitations/accept", None,
                                   {"token": inv["token"], "password": PASSWORD}), 401, "invalid_token")

    def test_cli_user_while_running(self):
        create_user(self.d.data_dir, "Org A", "live@a.test", "viewer")
        self.wait_refresh()
        self.login("live@a.test")


class HostileInputTest(TenancyBase):

    def test_hostile_parameters(self):
        a = self.app_a["app_id"]
        nasty = ["' OR 1=1 --", "../../etc/passwd", "%2e%2e%2f", "app_" + "f" * 5000, "\u0000",
                 "app_1;DROP TABLE apps", "\xff\xfe"]
        for n in nasty:
            with self.subTest(n=n):
                q = harness.quote(n)
                for m, p in [("GET", "/v1/apps/" + q), ("GET", "/v1/users/" + q),
                             ("DELETE", "/v1/tokens/" + q), ("GET", "/v1/audit?action=" + q),
                             ("GET", "/v1/audit?from=" + q), ("GET", "/v1/export/events?app=" + q)]:
                    st, h, data = self.call(m, p, self.tok_a)
                    self.assertTrue(400 <= st < 500 or (st == 200 and "action" in p), (m, p, st, data))
                for body in ({"email": n, "password": PASSWORD, "role": "viewer"},
                             {"email": "x@a.test", "password": PASSWORD, "role": n},
                             {"email": "y@a.test", "password": PASSWORD, "role": "viewer", "apps": [n]}):
                    st, h, data = self.call("POST", "/v1/users", self.tok_a, body)
                    self.assertTrue(400 <= st < 500, (body, st, data))
        for raw in (b"\xff\xfe{", b"{" * 10000, b'{"email":"' + b"a" * 2000000 + b'"}'):
            st, h, data = self.call("POST", "/v1/users", self.tok_a, raw)
            self.assertTrue(400 <= st < 500, (raw[:20], st, data))
        users = self.ok("GET", "/v1/users", self.tok_a)["users"]
        self.assertEqual([u["email"] for u in users], ["owner@a.test"])
        apps = self.ok("GET", "/v1/apps", self.tok_a)["apps"]
        self.assertEqual(len(apps), 2)
        self.ok("GET", "/v1/apps/" + a, self.tok_a)


class TransportAndKeysTest(DaemonTestCase):
    """HTTPS with curl (HSTS), and access tokens signed with a configured ES256 key."""

    def test_https_login_with_curl_and_es256(self):
        import shutil
        from test_http import curl, make_cert
        if not shutil.which("openssl") or not shutil.which("curl"):
            self.skipTest("openssl or curl is not installed")
        tmp = self.tmpdir()
        cert, key = make_cert(tmp)
        priv, pub = os.path.join(tmp, "jwt.key"), os.path.join(tmp, "jwt.pub")
        for cmd in (["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", priv],
                    ["openssl", "ec", "-in", priv, "-pubout", "-out", pub]):
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
        d = self.daemon(start=False, extra_args=["--set", "http.tls_cert=" + cert, "--set", "http.tls_key=" + key,
                                                 "--set", "auth.jwt_alg=ES256", "--set", "auth.jwt_private_key=" + priv,
                                                 "--set", "auth.jwt_public_key=" + pub])
        d.create_app("Org A", "Game", "android")
        create_user(d.data_dir, "Org A", "owner@a.test", "owner")
        d.start()
        url = "https://%s:%d" % (d.host, d.port)
        code, ver, hdrs, body = curl(["-k", "-H", "Content-Type: application/json", "--data-binary",
                                      json.dumps({"email": "owner@a.test", "password": PASSWORD}),
                                      url + "/v1/auth/login"])
        self.assertEqual(code, 200, body)
        self.assertIn("strict-transport-security: max-age=", hdrs.lower())
        tok = json.loads(body)["access_token"]
        header = json.loads(base64.urlsafe_b64decode(tok.split(".")[0] + "=="))
        self.assertEqual(header["alg"], "ES256")
        code, ver, hdrs, body = curl(["-k", "-H", "Authorization: Bearer " + tok, url + "/v1/me"])
        self.assertEqual(code, 200, body)
        # An HS256 token made with the public key as the secret (algorithm confusion) is refused.
        forged = make_jwt({"alg": "HS256"}, {"sub": json.loads(body)["id"]}, open(pub, "rb").read())
        code, ver, hdrs, body = curl(["-k", "-H", "Authorization: Bearer " + forged, url + "/v1/me"])
        self.assertEqual(code, 401, body)
