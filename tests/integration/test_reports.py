"""GET /v1/reports/overview, /cohorts and /activity against the real daemon.

Credentials (the app secret or a Bearer token with reports:read; the app key
is refused), the 400 answers naming the parameter, and one small end-to-end
report: attributed and organic installs, sessions and purchases sent through
POST /v1/events reach the rollups and come back with exact amounts, the
unconverted currency apart, as JSON and CSV, and as cohorts.
"""

import datetime
import time
import unittest

from harness import DaemonTestCase, gaid, parse_json
from test_attribution import AttributionCase, android, event, now_ms, MIN_MS, H_MS, D_MS
from test_tenancy import PASSWORD, create_user

WAIT = 10.0


def today():
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def utc_day(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).date().isoformat()


def recent_ms(span_ms=0):
    """Two minutes ago, or earlier so that it and the span_ms after it fall on one UTC day: a
    test that asks for that one day must not have its items straddle a midnight, and just after
    midnight two minutes ago is yesterday."""
    t = now_ms() - 2 * MIN_MS
    return min(t, (t // D_MS + 1) * D_MS - 1 - span_ms)


class ReportsTest(AttributionCase):

    def before_start(self):
        create_user(self.d.data_dir, "Org A", "viewer@a.test", "viewer")

    def report(self, kind, params, headers=None, app=None):
        app = app or self.app
        if headers is None:
            headers = {"X-App-Secret": app["app_secret"]}
        q = "&".join(["app=" + app["app_id"]] + ["%s=%s" % kv for kv in params.items()])
        return self.d.request("GET", "/v1/reports/%s?%s" % (kind, q), headers=headers)

    def test_auth_and_errors(self):
        day = today()
        p = {"from": day, "to": day}
        st, h, data = self.report("overview", p)
        self.assertStatus(st, 200, "overview with the secret", data)
        st, h, data = self.report("cohorts", p)
        self.assertStatus(st, 200, "cohorts with the secret", data)
        for kind in ("overview", "cohorts"):
            self.assertError(self.report(kind, p, headers={"X-App-Key": self.app["app_key"]}), 401,
                             "unauthorized", None, kind + " with the key")
            self.assertError(self.report(kind, p, headers={}), 401, None, None, kind + " without credentials")
            self.assertError(self.report(kind, p, headers={"X-App-Secret": self.other["app_secret"]}), 404,
                             "not_found", "app", kind + " with another app's secret")
            self.assertError(self.report(kind, {"to": day}), 400, "required", "from", kind + " without from")
            self.assertError(self.report(kind, {"from": day, "to": "2020-01-01"}), 400, "invalid_value", "to")
            self.assertError(self.report(kind, {"from": "2025-01-01", "to": "2026-01-02"}), 400,
                             "range_too_large", "to")
            self.assertError(self.report(kind, dict(p, group_by="day,os")), 400, "invalid_value", "group_by")
            self.assertError(self.report(kind, dict(p, filter="os:ios")), 400, "invalid_value", "filter")
            self.assertError(self.report(kind, dict(p, format="xml")), 400, "invalid_value", "format")
            self.assertError(self.report(kind, dict(p, group_by="%zz")), 400, "invalid_value", "group_by")
        st, h, data = self.report("overview", dict(p, metrics="installs,foo"))
        self.assertError((st, h, data), 400, "invalid_value", "metrics")
        self.assertIn('unknown metric \\"foo\\"', data.decode())
        self.assertError(self.report("overview", dict(p, limit="0")), 400, "invalid_value", "limit")
        self.assertError(self.report("overview", dict(p, sort="bogus")), 400, "invalid_value", "sort")
        self.assertError(self.report("cohorts", dict(p, days="0,181")), 400, "invalid_value", "days")
        self.assertError(self.report("cohorts", dict(p, metric="ltv")), 400, "invalid_value", "metric")
        # a viewer's token has reports:read
        st, h, data = self.d.request("POST", "/v1/auth/login", {"email": "viewer@a.test", "password": PASSWORD})
        self.assertStatus(st, 200, "login", data)
        bearer = {"Authorization": "Bearer " + parse_json(data)["access_token"]}
        st, h, data = self.report("overview", p, headers=bearer)
        self.assertStatus(st, 200, "overview as viewer", data)
        self.assertError(self.report("overview", p, headers=bearer, app=self.other), 404, "not_found", "app")

    def wait_report(self, params, ok):
        deadline = time.time() + WAIT
        while True:
            st, h, data = self.report("overview", params)
            self.assertStatus(st, 200, "overview", data)
            r = parse_json(data)
            if ok(r) or time.time() > deadline:
                return r
            time.sleep(0.1)

    def test_revenue_saturates(self):
        """Twelve purchases of the largest revenue an event may carry, sent with the public app key, sum to the
        largest amount a report holds instead of wrapping negative."""
        t = recent_ms(2000)
        y = t - 86400000  # a day before: two full rows, whose total must stop at the bound too
        self.send_events([event(type="purchase", name="buy", ts=ts + i, device=android(gaid()),
                                revenue=999999999999, currency="USD") for ts in (y, t) for i in range(12)])
        p = {"from": utc_day(y), "to": utc_day(t), "group_by": "day", "metrics": "revenue,event:buy"}
        r = self.wait_report(p, lambda r: r["totals"]["event:buy"] == 24)
        self.assertEqual(r["totals"]["event:buy"], 24, r)
        self.assertEqual(len(r["rows"]), 2, r)
        for x in r["rows"] + [r["totals"]]:
            self.assertGreater(x["revenue"], 9.2e12, r)

    def test_end_to_end(self):
        g1, g2, g3 = gaid(), gaid(), gaid()
        t = recent_ms(2000)
        self.send_touches([self.click(t - H_MS, g1, source="meta", campaign="c1"),
                           self.click(t - H_MS, g2, source="meta", campaign="c1")])
        self.install(g1, t)
        self.install(g2, t)
        self.install(g3, t)  # organic
        self.send_events([event(type="purchase", name="gems", ts=t + 1000, device=android(g1), revenue=4.99,
                                currency="USD"),
                          event(type="purchase", name="gems", ts=t + 2000, device=android(g2), revenue=2.5,
                                currency="EUR")])
        day = utc_day(t)
        p = {"from": day, "to": day, "group_by": "source,campaign",
             "metrics": "installs,organic_installs,revenue,event:gems,paying_devices"}
        r = self.wait_report(p, lambda r: r["totals"]["installs"] == 2 and r["totals"]["event:gems"] == 2)
        rows = {(x["source"], x["campaign"]): x for x in r["rows"]}
        self.assertEqual(r["totals"]["installs"], 2, r)
        self.assertEqual(r["totals"]["organic_installs"], 1, r)
        self.assertEqual(rows[("meta", "c1")]["revenue"], 4.99, r)
        self.assertEqual(rows[("meta", "c1")]["revenue_unconverted"], {"EUR": 2.5}, r)
        self.assertEqual(rows[("meta", "c1")]["paying_devices"], 2, r)
        self.assertEqual(rows[("", "")]["organic_installs"], 1, r)
        self.assertEqual((r["currency"], r["timezone"], r["truncated"]), ("USD", "UTC", False))
        st, h, data = self.report("overview", dict(p, format="csv"))
        self.assertStatus(st, 200, "csv", data)
        self.assertTrue(h.get("content-type", h.get("Content-Type", "")).startswith("text/csv"), h)
        lines = data.decode().splitlines()
        self.assertEqual(lines[0], "source,campaign,installs,organic_installs,revenue,event:gems,paying_devices,"
                                   "revenue:EUR")
        self.assertEqual(lines[-1], "total,,2,1,4.99,2,2,2.5")
        st, h, data = self.report("cohorts", {"from": day, "to": day, "days": "0,1"})
        self.assertStatus(st, 200, "cohorts", data)
        c = parse_json(data)
        # Day 1 is reached (0, not null) when the installs were yesterday: the test ran just after midnight.
        day1 = None if c["today"] == day else 0
        self.assertEqual(c["rows"], [{"day": day, "size": 3, "values": [1, day1]}], c)

    def test_activity(self):
        """GET /v1/reports/activity: the same credentials and 400s, and three installs of a recent day."""
        day = today()
        p = {"from": day, "to": day}
        for kind, headers in (("the key", {"X-App-Key": self.app["app_key"]}), ("nothing", {})):
            self.assertError(self.report("activity", p, headers=headers), 401, None, None, "activity with " + kind)
        self.assertError(self.report("activity", p, headers={"X-App-Secret": self.other["app_secret"]}), 404,
                         "not_found", "app")
        self.assertError(self.report("activity", {"to": day}), 400, "required", "from")
        self.assertError(self.report("activity", {"from": day, "to": "2020-01-01"}), 400, "invalid_value", "to")
        self.assertError(self.report("activity", {"from": "2025-01-01", "to": "2026-01-02"}), 400,
                         "range_too_large", "to")
        self.assertError(self.report("activity", dict(p, interval="hour")), 400, "invalid_value", "interval")
        self.assertError(self.report("activity", dict(p, interval="%zz")), 400, "invalid_value", "interval")
        self.assertError(self.report("activity", dict(p, format="xml")), 400, "invalid_value", "format")
        st, h, data = self.d.request("POST", "/v1/auth/login", {"email": "viewer@a.test", "password": PASSWORD})
        self.assertStatus(st, 200, "login", data)
        bearer = {"Authorization": "Bearer " + parse_json(data)["access_token"]}
        st, h, data = self.report("activity", dict(p, interval="week"), headers=bearer)
        self.assertStatus(st, 200, "activity as viewer", data)

        t = recent_ms()
        for g in (gaid(), gaid(), gaid()):
            self.install(g, t)
        day = utc_day(t)
        p = {"from": day, "to": day}
        before = today()
        deadline = time.time() + WAIT
        while True:
            st, h, data = self.report("activity", p)
            self.assertStatus(st, 200, "activity", data)
            r = parse_json(data)
            if r["rows"][0]["dau"] == 3 or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(r["rows"], [{"day": day, "dau": 3, "wau": 3, "mau": 3, "stickiness": 1, "new": 3,
                                      "returning": 0}], r)
        self.assertEqual((r["timezone"], r["interval"]), ("UTC", "day"), r)
        self.assertIn(r["today"], (before, today()), r)  # the daemon's day when it answered
        st, h, data = self.report("activity", dict(p, interval="month", format="csv"))
        self.assertStatus(st, 200, "activity csv", data)
        self.assertTrue(h.get("content-type", h.get("Content-Type", "")).startswith("text/csv"), h)
        self.assertEqual(data.decode().splitlines()[0], "month,active,avg_dau,stickiness,new,returning")
        self.assertEqual(data.decode().splitlines()[1].split(",")[:2], [day[:8] + "01", "3"])


if __name__ == "__main__":
    unittest.main()
