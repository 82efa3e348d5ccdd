"""GET /v1/reports/funnel against the real daemon.

Clicks (POST /v1/touches) and installs, in-app events and purchases (POST
/v1/events) for five devices reach the device timelines through the pipeline;
the funnel comes back exactly as docs/reports.md defines it: devices per step,
conversions, lower medians of the seconds between steps (an implicit install
reaches `install` and its own event at one instant), grouped by the installs'
attributed source, as JSON and CSV. Also the credentials and the 400 answers
naming the parameter.
"""

import datetime
import time
import unittest

from harness import gaid, parse_json
from test_attribution import AttributionCase, android, event, now_ms, MIN_MS, H_MS

WAIT = 10.0
STEPS = "install,event:signup,purchase:gems"


def days():
    today = datetime.datetime.now(datetime.timezone.utc).date()
    return (today - datetime.timedelta(days=1)).isoformat(), today.isoformat()


def step(name, devices, conversion, step_conversion, median):
    return {"step": name, "devices": devices, "conversion": conversion, "step_conversion": step_conversion,
            "median_seconds": median}


class FunnelTest(AttributionCase):

    def funnel(self, params, headers=None):
        if headers is None:
            headers = {"X-App-Secret": self.app["app_secret"]}
        q = "&".join(["app=" + self.app["app_id"]] + ["%s=%s" % kv for kv in params.items()])
        return self.d.request("GET", "/v1/reports/funnel?" + q, headers=headers)

    def test_errors(self):
        first, last = days()
        p = {"from": first, "to": last, "steps": STEPS}
        st, h, data = self.funnel(p)
        self.assertStatus(st, 200, "funnel with the secret", data)
        self.assertError(self.funnel(p, headers={"X-App-Key": self.app["app_key"]}), 401, "unauthorized", None,
                         "funnel with the key")
        self.assertError(self.funnel(p, headers={"X-App-Secret": self.other["app_secret"]}), 404, "not_found",
                         "app")
        self.assertError(self.funnel({"from": first, "to": last}), 400, "required", "steps")
        self.assertError(self.funnel(dict(p, steps="install")), 400, "invalid_value", "steps", "one step")
        self.assertError(self.funnel(dict(p, steps=",".join(["install"] * 11))), 400, "invalid_value", "steps",
                         "11 steps")
        st, h, data = self.funnel(dict(p, steps="install,signup"))
        self.assertError((st, h, data), 400, "invalid_value", "steps", "unknown step")
        self.assertIn('unknown step \\"signup\\"', data.decode())
        for w in ("0d", "91d", "2161h", "7", "1w"):
            self.assertError(self.funnel(dict(p, window=w)), 400, "invalid_value", "window", "window " + w)
        self.assertError(self.funnel(dict(p, to="2020-01-01")), 400, "invalid_value", "to")
        self.assertError(self.funnel(dict(p, **{"from": "2025-01-01", "to": "2026-01-02"})), 400,
                         "range_too_large", "to")
        self.assertError(self.funnel(dict(p, **{"from": "yesterday"})), 400, "invalid_value", "from")
        self.assertError(self.funnel(dict(p, group_by="os")), 400, "invalid_value", "group_by")
        self.assertError(self.funnel(dict(p, format="xml")), 400, "invalid_value", "format")
        self.assertError(self.funnel(dict(p, steps="%zz")), 400, "invalid_value", "steps")
        # A NUL byte in a step: the steps were copied up to it but cut with their whole length (read past the copy).
        self.assertError(self.funnel(dict(p, steps="install%00" + "x" * 60 + ",purchase")), 400, "invalid_value",
                         "steps", "a NUL byte in a step")
        st, h, data = self.funnel(p)
        self.assertStatus(st, 200, "funnel after the bad steps", data)

    def wait_funnel(self, params, entered):
        deadline = time.time() + WAIT
        while True:
            st, h, data = self.funnel(params)
            self.assertStatus(st, 200, "funnel", data)
            r = parse_json(data)
            if r["totals"]["steps"][0]["devices"] >= entered or time.time() > deadline:
                return r
            time.sleep(0.1)

    def test_end_to_end(self):
        g1, g2, g3, g4, g5 = (gaid() for _ in range(5))
        t = now_ms() - 3 * H_MS
        self.send_touches([self.click(t - H_MS, g1, source="meta", campaign="c1"),
                           self.click(t - H_MS, g2, source="meta", campaign="c1")])
        self.install(g1, t)
        self.install(g2, t + 1000)
        self.install(g3, t)  # organic, never signs up
        self.install(g4, t)  # organic
        signup = lambda g, ts: event(type="event", name="signup", ts=ts, device=android(g))
        gems = lambda g, ts: event(type="purchase", name="gems", ts=ts, device=android(g), revenue=1.99,
                                   currency="USD")
        self.send_events([signup(g1, t + 60 * 1000), gems(g1, t + 120 * 1000),
                          signup(g2, t + 1000 + 90 * MIN_MS),
                          signup(g4, t + 600 * 1000), gems(g4, t + 600 * 1000 - 1),  # bought before signing up
                          event(type="event", name="tutorial", ts=t, device=android(g3)),
                          signup(g5, t + 5000)])  # an implicit install: install and signup at one instant
        self.caught_up()
        first, last = days()
        p = {"from": first, "to": last, "steps": STEPS}
        r = self.wait_funnel(p, 5)
        want = [step("install", 5, 1, 1, None), step("event:signup", 4, 0.8, 0.8, 60),
                step("purchase:gems", 1, 0.2, 0.25, 60)]
        self.assertEqual(r["totals"], {"steps": want}, r)
        self.assertEqual(r["rows"], [{"steps": want}], r)
        self.assertEqual((r["app"], r["from"], r["to"], r["timezone"], r["window"], r["window_seconds"]),
                         (self.app["app_id"], first, last, "UTC", "7d", 604800))
        self.assertEqual((r["steps"], r["group_by"]), (STEPS.split(","), []))

        # exactly as printed: %.17g ratios
        st, h, data = self.funnel(p)
        self.assertIn(b'"conversion":0.80000000000000004', data)

        # by the installs' attributed source ("" for organic installs, first)
        r = parse_json(self.funnel(dict(p, group_by="source"))[2])
        self.assertEqual(r["rows"], [
            {"source": "", "steps": [step("install", 3, 1, 1, None), step("event:signup", 2, 2 / 3, 2 / 3, 0),
                                     step("purchase:gems", 0, 0, 0, None)]},
            {"source": "meta", "steps": [step("install", 2, 1, 1, None), step("event:signup", 2, 1, 1, 60),
                                         step("purchase:gems", 1, 0.5, 0.5, 60)]}], r)
        self.assertEqual(r["totals"], {"steps": want}, r)

        # a window of 1 h leaves g2's signup (90 min after its install) out; any purchase counts for g1 only
        r = parse_json(self.funnel(dict(p, steps="install,event:signup,purchase", window="1h"))[2])
        self.assertEqual([s["devices"] for s in r["totals"]["steps"]], [5, 3, 1], r)
        self.assertEqual(r["totals"]["steps"][1]["median_seconds"], 60, r)

        st, h, data = self.funnel(dict(p, group_by="source,campaign", format="csv"))
        self.assertStatus(st, 200, "csv", data)
        self.assertTrue(h.get("content-type", h.get("Content-Type", "")).startswith("text/csv"), h)
        self.assertEqual(data.decode().splitlines(), [
            "source,campaign,step,devices,conversion,step_conversion,median_seconds",
            ",,install,3,1,1,",
            ",,event:signup,2,0.66666666666666663,0.66666666666666663,0",
            ",,purchase:gems,0,0,0,",
            "meta,c1,install,2,1,1,",
            "meta,c1,event:signup,2,1,1,60",
            "meta,c1,purchase:gems,1,0.5,0.5,60",
            "total,,install,5,1,1,",
            "total,,event:signup,4,0.80000000000000004,0.80000000000000004,60",
            "total,,purchase:gems,1,0.20000000000000001,0.25,60"])


if __name__ == "__main__":
    unittest.main()
