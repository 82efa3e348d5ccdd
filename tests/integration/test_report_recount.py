"""The reports against a brute-force recount from the raw exports, exactly.

Starts a daemon, creates an app (reporting time zone America/Los_Angeles and a 7-day
reattribution window), sends `unmogrowp gen` traffic with late events, reinstalls on both
sides of the window, re-engagements and purchases in many currencies (and one device's purchases
in five, so that every way of converting is met whatever gen drew), posts costs in two
currencies and rates (direct and inverse) for some currencies, waits for the pipeline,
and then:

- recounts every figure with tests/tools/recount.py from GET /v1/export/events,
  /v1/export/touches and /v1/export/installs (and /v1/costs, /v1/rates), checks the
  recount against itself (totals are the sum of the rows for every grouping) and against
  gen's own counts (clicks, impressions, sessions, events, purchases, installs);
- compares GET /v1/reports/overview (the empty group_by, each dimension, all eight, with
  filters and a sub-range) and GET /v1/reports/cohorts with the recount: integers and
  amounts (as micros) exactly, ratios within a relative 1e-12; GET /v1/reports/activity
  (every interval, a range starting after the data begins) with recount.activity exactly;
- restarts the daemon with DATA/attr deleted, so that the pipeline rebuilds everything from
  the log, and checks that every report answer is the same.

Until the report endpoints exist (404 for the path), the comparison tests skip with a
message; the recount's own checks and the replay of the exports run regardless. Until apps
have settings.timezone (the settings CLI refuses it), the app reports in UTC and the
recount does too.
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import unittest
import uuid

import harness
from harness import DaemonTestCase, parse_json, quote

sys.path.insert(0, os.path.join(harness.REPO, "tests", "tools"))
import recount  # noqa: E402

TZ = "America/Los_Angeles"
CURRENCY = "USD"
GEN = ["--devices", "400", "--days", "21", "--seed", "5", "--late", "10", "--reinstall", "30",
       "--sources", "5", "--campaigns", "3", "--adsets", "2", "--quiet"]
# UMG_GEN_NOW=<ms> replays a run's history as gen made it then (its summary prints "now"), within the
# day before the wall clock.
if os.environ.get("UMG_GEN_NOW"):
    GEN += ["--now", os.environ["UMG_GEN_NOW"]]
WAIT = 30.0

# (group_by, filters, sub-range) combinations compared; filters name values found in the data
# ("@source" is the source with the most clicks, "@campaign" its top campaign).
COMBOS = [
    ((), {}, False),
    (("day",), {}, False),
    (("source",), {}, False),
    (("campaign",), {}, False),
    (("adset",), {}, False),
    (("ad",), {}, False),
    (("site",), {}, False),
    (("country",), {}, False),
    (("platform",), {}, False),
    (recount.GROUPABLE, {}, False),
    (("day", "source", "campaign"), {}, True),
    (("campaign", "country"), {"source": "@source"}, False),
    (("day", "site"), {"country": "US"}, False),
    (("adset", "ad"), {"platform": "android"}, False),
    (("source",), {"campaign": "@campaign", "country": "US"}, True),
]

OVERVIEW_METRICS = ("impressions", "clicks", "ctr", "installs", "organic_installs", "conversion_rate", "reinstalls",
                    "reattributions", "re_engagements", "sessions", "active_devices", "paying_devices", "revenue",
                    "arpu", "arppu", "cost", "cpi", "ecpi", "roas")
# credit=re_engagement: the metrics with a re-engagement credit, and those it refuses.
REENG_METRICS = ("impressions", "clicks", "ctr", "re_engagements", "sessions", "active_devices", "paying_devices",
                 "revenue", "arpu", "arppu", "cost", "roas")
REENG_SKIP = tuple(m for m in OVERVIEW_METRICS if m not in REENG_METRICS)
COHORT_DAYS = "0,1,2,3,5,7,10,14,20"

VOLATILE = ("generated_at", "took_ms", "as_of", "elapsed_ms", "request_id")


def strip_volatile(obj):
    if isinstance(obj, dict):
        return {k: strip_volatile(v) for k, v in obj.items() if k not in VOLATILE}
    if isinstance(obj, list):
        return [strip_volatile(v) for v in obj]
    return obj


class ReportRecountCase(DaemonTestCase):

    def setUp(self):
        self.d = self.daemon(start=False)
        self.app = self.d.create_app("Org Recount", "Recount", "android")
        self.notes = []
        self.tz = self.settings()
        self.d.start()
        self.precheck()
        self.summary = self.gen()
        self.caught_up()
        self.post_costs_and_rates()
        self.raw = self.fetch()
        self.facts = recount.facts(self.raw, self.tz, "android")
        days = sorted(f.day for f in self.facts.list)
        self.first_day, self.last_day = days[0], days[-1]

    # ------------------------------------------------------------ set-up

    def precheck(self):
        """Skips early (before generating traffic) when a test needs what the build lacks."""

    def admin(self, *args):
        cmd = [harness.binary(), "admin", "app", "settings", "--data", self.d.data_dir,
               "--app", self.app["app_id"]] + list(args)
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)

    def settings(self):
        p = self.admin("--set", "reattribution_window_days=7")
        self.assertEqual(p.returncode, 0, p.stderr.decode())
        p = self.admin("--json", json.dumps({"timezone": TZ, "currency": CURRENCY}))
        if p.returncode == 0:
            return TZ
        self.notes.append("settings.timezone not accepted yet (%s): reports in UTC" %
                          p.stderr.decode().strip()[:200])
        return "UTC"

    def gen(self):
        cmd = [harness.binary(), "gen", "--addr", "%s:%d" % (self.d.host, self.d.port),
               "--secret", self.app["app_secret"], "--platform", "android"] + GEN
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        self.assertEqual(p.returncode, 0, "gen: %s %s" % (p.stdout.decode(), p.stderr.decode()))
        summary = json.loads(p.stdout.decode().strip().splitlines()[-1])
        self.assertEqual(summary["rejected"], 0, summary)
        self.assertGreater(summary["reinstalls"], 10, summary)
        self.assertGreater(summary["late"], 100, summary)
        self.payer(summary)
        return summary

    def payer(self, summary):
        """One organic install that pays in five currencies, one for each way a rate is found
        (the report's own currency, a direct rate, an inverse one, both, none). Gen's purchases are
        few and their currencies follow its seed and --now, so they alone may miss some of these.
        Gen's summary counts them as its own."""
        dev = {"gaid": harness.gaid(), "platform": "android"}
        now = harness.now_us()
        ts = lambda ago_s: harness.rfc3339(now - ago_s * 1_000_000, 3)
        events = [harness.event(type="install", ts=ts(3600), device=dev)]
        for i, (cur, rev) in enumerate((("USD", 4.99), ("EUR", 9.99), ("GBP", 1.99), ("BRL", 24.9),
                                        ("JPY", 1200))):
            events.append(harness.event(type="purchase", name="gem_pack", ts=ts(1800 - 60 * i), device=dev,
                                        revenue=rev, currency=cur))
        self.ingest_ok(self.d, self.app, {"events": events}, accepted=len(events), use_secret=True,
                       what="the payer's events")
        summary["installs"] += 1
        summary["purchases"] += len(events) - 1

    def caught_up(self, timeout=WAIT):
        """Waits until the pipeline has applied every acknowledged record (an unknown device
        is `pending` while it is behind the log, `not_found` after)."""
        probe = str(uuid.uuid4())
        deadline = time.monotonic() + timeout
        while True:
            st, h, data = self.d.request("GET", "/v1/attribution?app=%s&device=%s" % (
                self.app["app_id"], probe), headers={"X-App-Secret": self.app["app_secret"]})
            self.assertStatus(st, 200, "attribution probe", data)
            status = parse_json(data)["status"]
            if status == "not_found":
                return
            self.assertEqual(status, "pending")
            if time.monotonic() > deadline:
                self.fail("the pipeline did not catch up within %.0f s\n%s" % (timeout, self.logs()))
            time.sleep(0.02)

    def post(self, path, body):
        st, h, data = self.d.request("POST", path, body, {"X-App-Secret": self.app["app_secret"]})
        return st, data

    def post_costs_and_rates(self):
        """Costs in USD and EUR for the top campaigns (with and without country, adset, ad),
        and rates: EUR->USD direct on two dates, GBP by an inverse row (USD in GBP)."""
        clicks = {}
        for t in self.touches_export():
            if t.get("type") == "click" and not t.get("retargeting"):
                k = (t["source"], t["campaign"], t.get("adset", ""), t.get("ad", ""))
                clicks[k] = clicks.get(k, 0) + 1
        top = sorted(clicks, key=lambda k: (-clicks[k], k))[:6]
        end = recount.local_day(int(time.time() * 1e6), recount.zoneinfo.ZoneInfo(self.tz))
        rows = {}
        for back in range(0, 22):
            day = recount.day_add(end, -back)
            for i, (src, camp, adset, ad) in enumerate(top):
                cost = "%d.%02d" % (10 + (back * 7 + i * 13) % 90, (back * 31 + i * 17) % 100)
                row = {"date": day, "source": src, "campaign": camp, "cost": float(cost),
                       "currency": "EUR" if i % 2 else "USD"}
                if i % 3 == 0:
                    row.update(adset=adset, ad=ad)
                if i % 3 == 1:
                    row["country"] = "US"
                rows[tuple(row.get(k, "") for k in ("date", "source", "campaign", "adset", "ad", "country"))] = row
        self.ncosts = len(rows)  # a row of the same key replaces the one before
        st, data = self.post("/v1/costs?app=" + self.app["app_id"], {"costs": list(rows.values())})
        if st in (404, 405):
            self.notes.append("POST /v1/costs answers %d: no costs" % st)
            return
        self.assertStatus(st, 200, "POST /v1/costs", data)
        rates = [{"date": recount.day_add(end, -30), "currency": "EUR", "base": "USD", "rate": 1.08},
                 {"date": recount.day_add(end, -9), "currency": "EUR", "base": "USD", "rate": 1.0931},
                 {"date": recount.day_add(end, -12), "currency": "USD", "base": "GBP", "rate": 0.7893},
                 {"date": recount.day_add(end, -5), "currency": "USD", "base": "BRL", "rate": 5.1},
                 {"date": recount.day_add(end, -4), "currency": "BRL", "base": "USD", "rate": 0.2}]
        st, data = self.post("/v1/rates", {"rates": rates})
        self.assertStatus(st, 200, "POST /v1/rates", data)

    def away_from_local_midnight(self, seconds=60):
        """Waits for the app's next local day when it is less than `seconds` away. An answer that says
        `today` (cohorts, activity) changes at local midnight: one taken before it and one after a replay
        would differ, both right."""
        tz = recount.zoneinfo.ZoneInfo(self.tz)
        tomorrow = datetime.datetime.now(tz).date() + datetime.timedelta(days=1)
        left = datetime.datetime.combine(tomorrow, datetime.time(), tz).timestamp() - time.time()
        if left < seconds:
            time.sleep(left + 0.5)

    def touches_export(self):
        st, h, data = self.d.request("GET", "/v1/export/touches?app=" + self.app["app_id"],
                                     headers={"X-App-Secret": self.app["app_secret"]})
        self.assertStatus(st, 200, "export touches", data)
        return harness.parse_ndjson(data)

    def fetch(self):
        c = recount.Client("%s:%d" % (self.d.host, self.d.port), self.app["app_secret"])
        try:
            return recount.fetch(c, self.app["app_id"])
        finally:
            c.close()

    # ------------------------------------------------------------ the reports

    def report(self, name, group_by, filters, rng, **extra):
        """GET /v1/reports/NAME over rng (local days, default: the whole history) with every
        overview metric (and every event name's event: and event_unique:; those with a re-engagement
        credit when extra has credit=re_engagement), or extra's cohort metric and days. Returns (path,
        answer with amounts kept as text)."""
        rng = rng or (self.first_day, self.last_day)
        q = {"app": self.app["app_id"], "from": rng[0], "to": rng[1], "group_by": ",".join(group_by)}
        if name == "overview":
            q["metrics"] = ",".join(self.metrics(extra.get("credit", "install")))
            q["limit"] = "100000"
        if filters:
            q["filter"] = ";".join("%s:%s" % (k, v) for k, v in sorted(filters.items()))
        q.update(extra)
        path = "/v1/reports/%s?%s" % (name, "&".join("%s=%s" % (k, quote(v)) for k, v in q.items()))
        st, h, data = self.d.request("GET", path, headers={"X-App-Secret": self.app["app_secret"]})
        if st == 404:
            err = (parse_json(data).get("error") or {}) if data.startswith(b"{") else {}
            if err.get("field") != "app":
                raise unittest.SkipTest("GET /v1/reports/%s answers 404 (not on this build yet)" % name)
        self.assertStatus(st, 200, path, data)
        return path, recount.loads_exact(data)

    def metrics(self, credit="install"):
        names = sorted(set(f.name for f in getattr(self, "facts", recount.Facts()).list if f.kind == "event"))
        return list(REENG_METRICS if credit == "re_engagement" else OVERVIEW_METRICS) + \
            ["event:" + n for n in names] + ["event_unique:" + n for n in names]

    def combos(self):
        """COMBOS with the placeholders filled and sub-ranges as local days."""
        top = {}
        for f in self.facts.list:
            if f.kind == "clicks" and f.dims[0]:
                top.setdefault(f.dims[0], {}).setdefault(f.dims[1], 0)
                top[f.dims[0]][f.dims[1]] += 1
        src = max(sorted(top), key=lambda s: sum(top[s].values()))
        camp = max(sorted(top[src]), key=lambda c: top[src][c])
        out = []
        for gb, flt, sub in COMBOS:
            flt = {k: {"@source": src, "@campaign": camp}.get(v, v) for k, v in flt.items()}
            rng = (recount.day_add(self.first_day, 3), recount.day_add(self.last_day, -2)) if sub else None
            out.append((gb, flt, rng))
        return out


class RecountSelfTest(ReportRecountCase):

    def test_recount_is_consistent_with_itself_and_with_gen(self):
        problems = recount.check_consistency(self.facts, self.raw, currency=CURRENCY)
        self.assertEqual(problems, [], "\n".join(problems[:20]))
        _, t = recount.overview(self.facts, (), raw=self.raw, currency=CURRENCY)
        s = self.summary
        inapp = sum(n for name, n in t["events"].items() if not name.startswith("gem_") and
                    name != "starter_bundle")
        purchases = sum(n for name, n in t["events"].items() if name.startswith("gem_") or
                        name == "starter_bundle")
        self.assertEqual((t["clicks"], t["impressions"], t["sessions"], inapp, purchases),
                         (s["clicks"], s["impressions"], s["sessions"],
                          s["in_app_events"], s["purchases"]))
        # Every install event has one decision: install (no session comes before an install, so
        # no implicit install), reinstall inside the 7-day window, reattributed after it.
        self.assertEqual(t["installs"] + t["organic_installs"], s["installs"])
        self.assertEqual(t["reinstalls"] + t["reattributions"], s["reinstalls"])
        self.assertGreater(t["reinstalls"], 0)
        self.assertGreater(t["reattributions"], 0)
        self.assertGreater(t["re_engagements"], 0)
        self.assertLessEqual(t["re_engagements"], s["retargeting_clicks"])
        self.assertGreaterEqual(len(t["revenue_by_currency"]), 5, t["revenue_by_currency"])
        self.assertEqual(self.facts.skipped["decision_without_event"], 0, self.facts.skipped)
        if self.raw.costs is not None:
            # Costs in USD and EUR; EUR has rates, and so do GBP (inverse) and BRL (both ways).
            self.assertEqual(len(self.raw.costs), self.ncosts, self.raw.costs[:3])
            self.assertEqual(len(self.raw.rates), 5, self.raw.rates)
            self.assertEqual(set(t["cost_by_currency"]), {"USD", "EUR"})
            self.assertEqual(t["cost_unconverted"], {})  # the first EUR rate predates every cost
            self.assertGreater(t["cost_micros"], t["cost_by_currency"]["USD"])
            self.assertGreaterEqual(t["revenue_micros"], t["revenue_by_currency"].get("USD", 0))
            # A currency without any rate stays unconverted, whichever of them gen's purchases used.
            rated = {"USD", "EUR", "GBP", "BRL"}
            norate = {c for c, v in t["revenue_by_currency"].items() if c not in rated and v}
            self.assertTrue(norate, t["revenue_by_currency"])
            self.assertLessEqual(norate, set(t["revenue_unconverted"]))
        cs = recount.cohorts(self.facts, (), raw=self.raw, currency=CURRENCY)
        self.assertEqual(cs[()]["size"], t["installs"] + t["organic_installs"] + t["reattributions"])
        d0 = cs[()]["days"][0]
        self.assertGreaterEqual(d0["active"], 1)

    def test_replay_exports_recount_the_same(self):
        """A store rebuilt from the log decides the same, so the recount is the same."""
        before = recount.overview(self.facts, recount.GROUPABLE, raw=self.raw, currency=CURRENCY)
        self.assertEqual(self.d.stop(), 0, self.d.log_tail())
        shutil.rmtree(os.path.join(self.d.data_dir, "attr"))
        self.d.start()
        self.caught_up()
        raw = self.fetch()
        self.assertEqual(raw.installs, self.raw.installs, "the installs export changed on replay")
        after = recount.overview(recount.facts(raw, self.tz, "android"), recount.GROUPABLE, raw=raw,
                                 currency=CURRENCY)
        self.assertEqual(before, after)


class ReportsEqualRecountTest(ReportRecountCase):

    reengaged = True  # the history has re-engagements with credited events

    def precheck(self):
        if self._testMethodName.startswith("test_recount_"):
            return
        today = recount.local_day(int(time.time() * 1e6), recount.zoneinfo.ZoneInfo(self.tz))
        for name in ("overview", "cohorts"):
            self.report(name, (), {}, (today, today))

    def compare_overview(self, path, got, gb, flt, rng, credit="install"):
        rng = rng or (self.first_day, self.last_day)
        rows, totals = recount.overview(self.facts, gb, flt, rng[0], rng[1], self.raw, CURRENCY, credit)
        skip = REENG_SKIP if credit == "re_engagement" else ()
        if got.get("credit") != credit:
            return ["%s: credit %r, asked for %r" % (path, got.get("credit"), credit)]
        problems = []
        seen = set()
        for r in got.get("rows", []):
            key = tuple(r.get(g, "") for g in gb)
            if key in seen:
                problems.append("row %r twice" % (key,))
            seen.add(key)
            problems += diff_row("row %r" % (key,), rows.get(key) or recount.finish_row(recount.new_row()), r, skip)
        for key, want in rows.items():
            if key not in seen and not is_zero(want):
                problems.append("row %r missing (recount: %s)" % (key, brief(want)))
        if "totals" in got:
            problems += diff_row("totals", totals, got["totals"], skip)
        else:
            problems.append("no totals")
        if got.get("truncated"):
            problems.append("truncated")
        return ["%s: %s" % (path, p) for p in problems]

    def test_overview_equals_recount(self):
        problems = []
        for gb, flt, rng in self.combos():
            path, got = self.report("overview", gb, flt, rng)
            problems += self.compare_overview(path, got, gb, flt, rng)
        self.assertEqual(problems, [], "%d differences, the first:\n%s\nnotes: %s" % (
            len(problems), "\n".join(problems[:30]), self.notes))

    def test_reengagement_overview_equals_recount(self):
        """credit=re_engagement: what re-engaged devices did while their re-engagement ran, under the
        retargeting click, and retargeting touches; every combination, the same as the recount."""
        _, t = recount.overview(self.facts, (), raw=self.raw, currency=CURRENCY, credit="re_engagement")
        self.assertGreaterEqual(t["sessions"], t["re_engagements"])  # each re-engaging session is credited
        if self.reengaged:
            self.assertGreater(t["re_engagements"], 0)
            self.assertGreater(sum(t["events"].values()), 0, t)
            self.assertGreater(t["clicks"], 0)
        problems = []
        for gb, flt, rng in self.combos():
            path, got = self.report("overview", gb, flt, rng, credit="re_engagement")
            problems += self.compare_overview(path, got, gb, flt, rng, "re_engagement")
        self.assertEqual(problems, [], "%d differences, the first:\n%s\nnotes: %s" % (
            len(problems), "\n".join(problems[:30]), self.notes))

    def test_cohorts_equal_recount(self):
        problems = []
        days = [int(n) for n in COHORT_DAYS.split(",")]
        for gb, flt, sub in [((), {}, False), (("day",), {}, False), (("source", "country"), {}, False),
                             (("day", "campaign"), {"platform": "android"}, True), (recount.GROUPABLE, {}, False)]:
            rng = (recount.day_add(self.first_day, 2), recount.day_add(self.last_day, -3)) if sub else \
                (self.first_day, self.last_day)
            for metric in recount.COHORT_METRICS:
                path, got = self.report("cohorts", gb, flt, rng, metric=metric, days=COHORT_DAYS)
                want = recount.cohort_report(self.facts, metric, days, gb, flt, rng[0], rng[1], got.get("today"),
                                             self.raw, CURRENCY)
                problems += ["%s: %s" % (path, p) for p in diff_cohorts(gb, metric, want, got)]
                # the totals are every cohort of the period together: the recount without dimensions (for
                # counts; amounts in the totals are the sums of the rows' converted amounts, which may differ
                # from one conversion of the whole by the rounding of each row's)
                if metric in ("retention", "sessions"):
                    wt = recount.cohort_report(self.facts, metric, days, (), flt, rng[0], rng[1],
                                               got.get("today"), self.raw, CURRENCY)
                    problems += ["%s totals: %s" % (path, p)
                                 for p in diff_cohorts((), metric, wt, {"rows": [got["totals"]]})]
        self.assertEqual(problems, [], "%d differences, the first:\n%s\nnotes: %s" % (
            len(problems), "\n".join(problems[:30]), self.notes))

    def test_replay_gives_the_same_reports(self):
        self.away_from_local_midnight()
        combos = self.combos()
        before = [strip_volatile(self.report("overview", gb, f, r)[1]) for gb, f, r in combos]
        before += [strip_volatile(self.report("overview", gb, f, r, credit="re_engagement")[1])
                   for gb, f, r in combos]
        for m in recount.COHORT_METRICS:
            before.append(strip_volatile(self.report("cohorts", ("day", "source"), {}, None, metric=m,
                                                     days=COHORT_DAYS)[1]))
        self.assertEqual(self.d.stop(), 0, self.d.log_tail())
        shutil.rmtree(os.path.join(self.d.data_dir, "attr"))
        self.d.start()
        self.caught_up()
        after = [strip_volatile(self.report("overview", gb, f, r)[1]) for gb, f, r in combos]
        after += [strip_volatile(self.report("overview", gb, f, r, credit="re_engagement")[1])
                  for gb, f, r in combos]
        for m in recount.COHORT_METRICS:
            after.append(strip_volatile(self.report("cohorts", ("day", "source"), {}, None, metric=m,
                                                    days=COHORT_DAYS)[1]))
        for i, (a, b) in enumerate(zip(before, after)):
            self.assertEqual(a, b, "answer %d (%r) differs after a replay" % (i, (combos * 2 + [None] * 5)[i]))

    # ------------------------------------------------------------ activity

    def activity(self, interval, rng, fmt="json"):
        """GET /v1/reports/activity over rng: the answer (JSON, ratios kept as text) or the CSV text."""
        q = {"app": self.app["app_id"], "from": rng[0], "to": rng[1], "interval": interval, "format": fmt}
        path = "/v1/reports/activity?" + "&".join("%s=%s" % (k, quote(v)) for k, v in q.items())
        st, h, data = self.d.request("GET", path, headers={"X-App-Secret": self.app["app_secret"]})
        if st == 404 and not (data.startswith(b"{") and (parse_json(data).get("error") or {}).get("field") == "app"):
            raise unittest.SkipTest("GET /v1/reports/activity answers 404 (not on this build yet)")
        self.assertStatus(st, 200, path, data)
        return path, (data.decode() if fmt == "csv" else recount.loads_exact(data))

    def test_activity_equals_recount(self):
        """Every interval over the whole history (and days after today, which are left out), over a
        range that starts after the data begins (trailing windows reach before it), and a single day;
        JSON exactly as the recount, CSV the same figures; the same answers after a replay."""
        self.away_from_local_midnight()
        tz = recount.zoneinfo.ZoneInfo(self.tz)
        today = recount.local_day(int(time.time() * 1e6), tz)
        span = recount.day_diff(today, self.first_day)
        ranges = [(self.first_day, recount.day_add(today, 3)),
                  (recount.day_add(self.first_day, max(1, min(9, span // 2))), today),
                  (recount.day_add(self.first_day, min(12, span)),) * 2]
        problems, answers = [], []
        for interval in recount.ACTIVITY_INTERVALS:
            for rng in ranges:
                path, got = self.activity(interval, rng)
                answers.append(got)
                if got.get("today") not in (today, recount.local_day(int(time.time() * 1e6), tz)):
                    problems.append("%s: today %r, the test's %s" % (path, got.get("today"), today))
                want = recount.activity(self.facts, interval, rng[0], rng[1], got.get("today", today))
                problems += ["%s: %s" % (path, p) for p in diff_activity(interval, want, got.get("rows"))]
                _, text = self.activity(interval, rng, "csv")
                problems += ["%s csv: %s" % (path, p) for p in diff_activity_csv(interval, got.get("rows"), text)]
        # The ranges really reach before the data and after it begins.
        days = recount.activity(self.facts, "day", ranges[1][0], ranges[1][0], today)[0]
        if days["mau"] <= days["dau"]:
            problems.append("the sub-range's first day has no MAU from before it: %r" % days)
        self.assertEqual(problems, [], "%d differences, the first:\n%s\nnotes: %s" % (
            len(problems), "\n".join(problems[:30]), self.notes))
        self.assertEqual(self.d.stop(), 0, self.d.log_tail())
        shutil.rmtree(os.path.join(self.d.data_dir, "attr"))
        self.d.start()
        self.caught_up()
        after = [self.activity(iv, rng)[1] for iv in recount.ACTIVITY_INTERVALS for rng in ranges]
        for i, (a, b) in enumerate(zip(answers, after)):
            self.assertEqual(strip_volatile(a), strip_volatile(b), "activity answer %d differs after a replay" % i)


class EdgeCasesEqualRecountTest(ReportsEqualRecountTest):
    """The same comparisons on a small hand-made history of the cases the definitions decide:
    local midnight in the app's zone, locales ("en_US.UTF-8", "zh-Hant-TW", "es-419", none),
    no platform, revenue below one micro-unit and refunds, revenue on an ordinary event,
    identifiers first seen apart and then together on one event, a late session older than the device's install,
    a re-engagement and what it is credited (and a late purchase dated before it, which it is not), and rates
    where a direct and an inverse row tie or the inverse is newer."""

    def gen(self):
        tz = recount.zoneinfo.ZoneInfo(self.tz)
        today = datetime.datetime.now(tz).date()
        self.gen_day = today.isoformat()

        def at(days_back, h, m=0, s=0, ms=0):
            """Unix ms of a local wall time days_back days ago in the app's zone."""
            d = today - datetime.timedelta(days=days_back)
            return int(datetime.datetime(d.year, d.month, d.day, h, m, s, ms * 1000, tzinfo=tz).timestamp() * 1000)

        def ev(typ, ts, dev, **kw):
            e = {"event_id": str(uuid.uuid4()), "type": typ, "ts": ts, "device": dev, "ip": "198.18.7.7"}
            e.update(kw)
            return e

        g = [str(uuid.uuid4()) for _ in range(6)]
        a = ["%016x" % (0xa1b2c3d4e5f60000 + i) for i in range(6)]
        ua = "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP3A.241005.015; wv) AppleWebKit/537.36"
        touches = [
            {"type": "click", "touch_id": str(uuid.uuid4()), "ts": at(6, 23, 0), "source": "edge_net",
             "campaign": "edge_c", "adset": "edge_as", "ad": "edge_ad", "site": "edge_site",
             "device": {"gaid": g[0]}, "ip": "198.18.7.7", "user_agent": ua},
            {"type": "impression", "touch_id": str(uuid.uuid4()), "ts": at(6, 23, 59, 59, 999),
             "source": "edge_net", "campaign": "edge_c", "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 "
             "like Mac OS X)"},
            {"type": "impression", "touch_id": str(uuid.uuid4()), "ts": at(5, 0, 0), "source": "edge_net",
             "campaign": "edge_c", "user_agent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"},
            {"type": "click", "touch_id": str(uuid.uuid4()), "ts": at(1, 9, 0), "source": "edge_net",
             "campaign": "edge_rt", "retargeting": True, "device": {"gaid": g[0]}, "ip": "198.18.7.7",
             "user_agent": ua},
        ]
        d0 = {"gaid": g[0], "android_id": a[0], "platform": "android", "locale": "en_US.UTF-8"}
        d1 = {"gaid": g[1], "locale": "zh-Hant-TW"}
        now = [
            # An attributed install one millisecond before local midnight, a session at midnight.
            ev("install", at(6, 23, 59, 59, 999), d0),
            ev("session", at(5, 0, 0), d0),
            # No platform, a three-part locale; revenue below a micro-unit, at half, a refund, revenue
            # on an ordinary event.
            ev("install", at(4, 12), d1),
            ev("purchase", at(4, 12, 1), d1, name="tiny", revenue=0.0000004, currency="USD"),
            ev("purchase", at(4, 12, 2), d1, name="half", revenue=0.0000005, currency="USD"),
            ev("purchase", at(3, 12, 3), d1, name="refund", revenue=-4.99, currency="USD"),
            ev("event", at(3, 12, 4), d1, name="ad_revenue", revenue=0.0125, currency="CHF"),
            ev("purchase", at(2, 12, 5), d1, name="sek_pack", revenue=49, currency="SEK"),
            # Identifiers first seen apart, then together, on one day.
            ev("install", at(3, 10), {"gaid": g[2], "locale": "es-419", "platform": "android"}),
            ev("session", at(3, 11), {"android_id": a[2], "locale": "de_DE", "platform": "android"}),
            ev("event", at(3, 12), {"gaid": g[2], "android_id": a[2]}, name="linked"),
            # Re-engagement: a session after the retargeting click, days after the last one; what follows
            # is credited to the retargeting campaign too.
            ev("session", at(1, 9, 30), d0),
            ev("purchase", at(1, 10), d0, name="winback_pack", revenue=2.5, currency="CHF"),
            ev("event", at(1, 11), d0, name="level_up"),
        ]
        late = [
            # Sent last, dated before the device's install (and on another local day).
            ev("session", at(7, 8), d0),
            ev("purchase", at(6, 12), d0, name="late_pack", revenue=1.99, currency="EUR"),
            # Dated after the retargeting click but before the re-engaging session: the install's only.
            ev("purchase", at(1, 9, 10), d0, name="before_reeng", revenue=1, currency="USD"),
        ]
        for path, key, items in (("/v1/touches", "touches", touches), ("/v1/events", "events", now),
                                 ("/v1/events", "events", late)):
            st, data = self.post(path, {key: items})
            self.assertStatus(st, 202, path, data)
            self.assertEqual(parse_json(data)["accepted"], len(items), data)
        return {}

    def test_recount_reads_the_edge_cases(self):
        """What the recount makes of the cases (its reading of the definitions)."""
        F = self.facts
        by = {}
        for f in F.list:
            by.setdefault(f.kind, []).append(f)
        # "en_US.UTF-8" is US once its codeset is cut off; "es-419" has no two-letter region.
        self.assertEqual(sorted(F.country.values()), ["", "DE", "TW", "US"], F.country)
        self.assertEqual(sorted(F.platform.values()), ["android"] * 4)
        self.assertEqual(sorted((f.dims[6], f.dims[5]) for f in by["impressions"]), [("", ""), ("ios", "")])
        # Paying takes at least one micro-unit: "half" (0.0000005 rounds to 1), the CHF ad revenue,
        # the SEK pack, the late EUR purchase, the day of the re-engaged purchases; not "tiny" (0 micro-units),
        # not the refund.
        self.assertEqual(len(by["paying_devices"]), 5)
        self.assertEqual(sorted(f.amount for f in by["revenue"] if f.currency == "USD"), [-4990000, 0, 1, 1000000])
        self.assertEqual(len(by["re_engagements"]), 1)
        self.assertEqual(F.skipped["no_device"], 0)  # ingest refuses events without one (no_device_id)
        # Identifiers first seen apart are two devices (an install, and an implicit install for the
        # android_id); the event carrying both belongs to the gaid's, and histories are not merged.
        self.assertEqual(len(by["organic_installs"]), 3)
        linked = sorted(f.dims[5] for f in by["active_devices"] if f.day == self.rate_day(-3))
        self.assertIn("DE", linked)
        self.assertEqual(len([f for f in by["event"] if f.name == "linked" and f.dims[5] == ""]), 1)
        # The re-engagement credit: the retargeting click, the re-engaging session and what followed it.
        re = {}
        for f in F.reeng:
            re.setdefault(f.kind, []).append(f)
        self.assertEqual({k: len(v) for k, v in re.items()},
                         {"clicks": 1, "re_engagements": 1, "sessions": 1, "active_devices": 1, "event": 2,
                          "event_unique": 2, "revenue": 1, "paying_devices": 1}, re)
        self.assertEqual(sorted(f.name for f in re["event"]), ["level_up", "winback_pack"])
        self.assertEqual([(f.amount, f.currency, f.dims[1]) for f in re["revenue"]], [(2500000, "CHF", "edge_rt")])

    def rate_day(self, back):
        """A local day counted from the one the history was made on (a local midnight may have passed since)."""
        return recount.day_add(self.gen_day, back)

    def post_costs_and_rates(self):
        d = self.rate_day
        st, data = self.post("/v1/costs?app=" + self.app["app_id"], {"costs": [
            {"date": d(-3), "source": "edge_net", "campaign": "edge_c", "cost": 10.005, "currency": "CHF"},
            {"date": d(-3), "source": "edge_net", "campaign": "edge_c", "country": "US", "cost": 3,
             "currency": "USD"}]})
        if st in (404, 405):
            return
        self.assertStatus(st, 200, "POST /v1/costs", data)
        st, data = self.post("/v1/rates", {"rates": [
            {"date": d(-5), "currency": "CHF", "base": "USD", "rate": 1.1},
            {"date": d(-5), "currency": "USD", "base": "CHF", "rate": 0.8},
            {"date": d(-6), "currency": "SEK", "base": "USD", "rate": 0.1},
            {"date": d(-3), "currency": "USD", "base": "SEK", "rate": 10.5}]})
        self.assertStatus(st, 200, "POST /v1/rates", data)


# ---------------------------------------------------------------- comparing rows

ALIASES = {"reengagements": "re_engagements", "active": "active_devices", "paying": "paying_devices"}
RATIOS = ("ctr", "conversion_rate", "arpu", "arppu", "cpi", "ecpi", "roas")


class FraudEqualRecountTest(ReportsEqualRecountTest):
    """The comparisons on a history the fraud rules act on (docs/fraud.md): a device farm whose
    installs past the limit are rejected (and whose devices' later sessions and purchases count
    nowhere), an injected click taken out of an install, clicks past the click-spam limit, a bot
    User-Agent; the recount leaves out what the exports say was rejected."""

    reengaged = False  # no retargeting in it

    def gen(self):
        import datetime
        tz = recount.zoneinfo.ZoneInfo(self.tz)
        base = datetime.datetime.now(tz).replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=6)
        hour = int(base.timestamp() * 1000)

        def ev(typ, ts, g, ip, **kw):
            e = {"event_id": str(uuid.uuid4()), "type": typ, "ts": ts, "ip": ip,
                 "device": {"gaid": g, "platform": "android", "locale": "pt_BR"}}
            e.update(kw)
            return e

        farm = [str(uuid.uuid4()) for _ in range(24)]
        honest = [str(uuid.uuid4()) for _ in range(6)]
        day_ms = 86400000
        # Within the last day (older items are not judged by the windowed rules): spam clicks, a farm,
        # an injected click; honest installs spread over nine days before, with sessions since.
        touches = [{"type": "click", "touch_id": str(uuid.uuid4()), "ts": hour + 60000 * i, "source": "spam_net",
                    "campaign": "s", "device": {"gaid": honest[0]}, "ip": "198.18.9.%d" % i,
                    "user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8)"} for i in range(13)]
        touches += [{"type": "click", "touch_id": str(uuid.uuid4()), "ts": hour + 3600000 + 1000 * i,
                     "source": "farm_net", "campaign": "f", "device": {"gaid": g}, "ip": "198.18.8.8"}
                    for i, g in enumerate(farm)]
        touches.append({"type": "click", "touch_id": str(uuid.uuid4()), "ts": hour + 7200000 - 3000,
                        "source": "inject_net", "campaign": "i", "device": {"gaid": honest[1]}})
        touches.append({"type": "click", "touch_id": str(uuid.uuid4()), "ts": hour + 7200000 - 3600000,
                        "source": "real_net", "campaign": "r", "device": {"gaid": honest[1]}})
        events = [ev("install", hour + 3600000 + 60000 + 1000 * i, g, "198.18.8.8", user_agent="Dalvik/%d" % i)
                  for i, g in enumerate(farm)]
        events += [ev("session", hour + 3 * 3600000 + 1000 * i, g, "198.18.8.8") for i, g in enumerate(farm)]
        events += [ev("purchase", hour + 4 * 3600000, farm[-1], "198.18.8.8", name="p", revenue=4.99,
                      currency="USD")]
        events += [ev("install", hour + 7200000, honest[1], "198.18.7.1")]
        events += [ev("install", hour - (9 - i) * day_ms, g, "198.18.7.%d" % i) for i, g in enumerate(honest) if i != 1]
        for k in range(9):
            events += [ev("session", hour - k * day_ms + 600000, g, "198.18.7.%d" % i) for i, g in enumerate(honest)
                       if i != 1 and i <= 9 - k and (i + k) % 2 == 0]
        for path, key, items in (("/v1/touches", "touches", touches), ("/v1/events", "events", events)):
            st, data = self.post(path, {key: items})
            self.assertStatus(st, 202, path, data)
            self.assertEqual(parse_json(data)["accepted"], len(items), data)
        return {}

    def test_recount_sees_the_rejections(self):
        installs = self.raw.installs
        rejected = [d for d in installs if (d.get("fraud") or {}).get("status") == "rejected"]
        self.assertEqual(len(rejected), 4, [d.get("fraud") for d in installs])
        self.assertEqual(set(d["fraud"]["reason"] for d in rejected), {"device_farm"})
        injected = [d for d in installs if d.get("rejected_touches")]
        self.assertEqual([(d["attribution"] or {}).get("source") for d in injected], ["real_net"])
        spam = [t for t in self.raw.touches if (t.get("fraud") or {}).get("reason") == "click_spam"]
        self.assertEqual(len(spam), 3)
        self.assertGreater(self.facts.skipped["fraud_rejected"], 4)

    def post_costs_and_rates(self):
        pass


def normalize(row):
    """A daemon row as the recount's row: counters, events{name: n}, events_unique{name: n},
    revenue_micros, cost_micros, *_unconverted{currency: micros}, ratios. Unknown members are
    returned apart."""
    out, unknown = {"events": {}, "events_unique": {}}, {}
    for k, v in row.items():
        k = ALIASES.get(k, k)
        if k in recount.GROUPABLE:
            continue
        if k in recount.COUNTERS:
            out[k] = v
        elif k.startswith("event:"):
            out["events"][k[6:]] = v
        elif k.startswith("event_unique:"):
            out["events_unique"][k[13:]] = v
        elif k in ("events", "events_unique") and isinstance(v, dict):
            out[k].update(v)
        elif k in ("revenue", "cost"):
            out[k + "_micros"] = recount.amount_micros(v)
        elif k in ("revenue_micros", "cost_micros"):
            out[k] = v
        elif k in ("revenue_unconverted", "cost_unconverted", "unconverted_revenue", "unconverted_cost",
                   "revenue_by_currency", "cost_by_currency") and isinstance(v, dict):
            name = {"unconverted_revenue": "revenue_unconverted",
                    "unconverted_cost": "cost_unconverted"}.get(k, k)
            out[name] = {c: recount.amount_micros(a) for c, a in v.items()}
        elif k in RATIOS:
            out[k] = float(v) if isinstance(v, str) else v  # numbers are read as text (exact amounts)
        else:
            unknown[k] = v
    return out, unknown


def diff_row(what, want, got_row, skip=()):
    """skip: metrics the report was not asked for."""
    got, unknown = normalize(got_row)
    problems = []
    for k in recount.COUNTERS + ("revenue_micros", "cost_micros"):
        if k not in skip and got.get(k) != want[k]:
            problems.append("%s %s: daemon %r, recount %r" % (what, k, got.get(k), want[k]))
    for k in ("events", "events_unique"):
        w = {n: v for n, v in want[k].items() if v}
        g = {n: v for n, v in got[k].items() if v}
        if w != g:
            problems.append("%s %s: daemon %r, recount %r" % (what, k, g, w))
    for k in ("revenue_unconverted", "cost_unconverted"):
        if {c: v for c, v in got.get(k, {}).items() if v} != {c: v for c, v in want[k].items() if v}:
            problems.append("%s %s: daemon %r, recount %r" % (what, k, got.get(k, {}), want[k]))
    for k in RATIOS:
        if k not in skip and got.get(k) != want[k]:  # the exact expressions of docs/reports.md, in IEEE doubles
            problems.append("%s %s: daemon %r, recount %r" % (what, k, got.get(k), want[k]))
    if unknown:
        problems.append("%s: members the recount does not know: %s" % (what, sorted(unknown)))
    return problems


def is_zero(row):
    return not any(row[c] for c in recount.COUNTERS) and not row["events"] and not row["revenue_by_currency"] \
        and not row["cost_by_currency"]


def brief(row):
    return json.dumps({k: v for k, v in row.items() if v and k in recount.COUNTERS + ("revenue_micros",)},
                      sort_keys=True)


def diff_cohorts(gb, metric, want, got):
    """A cohorts answer ({"rows": [{dims..., "size", "values": [...], "revenue_unconverted"?,
    "cost_unconverted"?}]}) against recount.cohort_report."""
    problems = []
    seen = set()
    for c in got.get("rows", []):
        key = tuple(c.get(g, "") for g in gb)
        seen.add(key)
        w = want.get(key)
        if w is None:
            if c.get("size") or any(v not in (None, 0, "0") for v in c.get("values", [])):
                problems.append("cohort %r: not in the recount: %r" % (key, c))
            continue
        if c.get("size") != w["size"]:
            problems.append("cohort %r size: daemon %r, recount %r" % (key, c.get("size"), w["size"]))
        vals = c.get("values", [])
        for i, (g, x) in enumerate(zip(vals, w["values"])):
            if metric in ("revenue", "cumulative_revenue"):
                ok = recount.amount_micros(g) == x
            elif metric in ("retention", "roas"):
                ok = (float(g) if isinstance(g, str) else g) == x  # docs/reports.md's expressions, IEEE doubles
            else:
                ok = g == x
            if not ok:
                problems.append("cohort %r %s[%d]: daemon %r, recount %r" % (key, metric, i, g, x))
        if len(vals) != len(w["values"]):
            problems.append("cohort %r: %d values, recount %d" % (key, len(vals), len(w["values"])))
        for k in ("revenue_unconverted", "cost_unconverted"):
            g = {cur: recount.amount_micros(a) for cur, a in (c.get(k) or {}).items()}
            if g != {cur: v for cur, v in w[k].items() if v}:
                problems.append("cohort %r %s: daemon %r, recount %r" % (key, k, g, w[k]))
    for key, w in want.items():
        if key not in seen and (w["size"] or any(v not in (None, 0) for v in w["values"])):
            problems.append("cohort %r missing (recount size %d, values %r)" % (key, w["size"], w["values"]))
    return problems


ACTIVITY_COLUMNS = {"day": ("day", "dau", "wau", "mau", "stickiness", "new", "returning"),
                    "week": ("week", "active", "avg_dau", "stickiness", "new", "returning"),
                    "month": ("month", "active", "avg_dau", "stickiness", "new", "returning")}


def _activity_value(v):
    """A daemon's number as the recount's: ints as they are, ratios (kept as text) as doubles."""
    return float(v) if isinstance(v, recount._Num) else v


def diff_activity(interval, want, got):
    """Activity rows against recount.activity: the same rows in order, members and values exactly
    (ratios are docs/reports.md's expressions in IEEE doubles, printed with %.17g)."""
    if not isinstance(got, list):
        return ["no rows: %r" % (got,)]
    problems = []
    cols = ACTIVITY_COLUMNS[interval]
    for i, (w, g) in enumerate(zip(want, got)):
        if sorted(g) != sorted(cols):
            problems.append("row %d: members %r, expected %r" % (i, sorted(g), sorted(cols)))
        for c in cols:
            gv, wv = _activity_value(g.get(c)), w[c]
            if gv != wv or (c not in (interval, "stickiness", "avg_dau") and type(gv) is not int):
                problems.append("row %d (%s) %s: daemon %r, recount %r" % (i, w[interval], c, g.get(c), wv))
    if len(got) != len(want):
        problems.append("%d rows, recount %d (daemon %s, recount %s)" % (
            len(got), len(want), [r.get(interval) for r in got], [r[interval] for r in want]))
    return problems


def diff_activity_csv(interval, rows, text):
    """The CSV answer against the JSON one: the header, then the same values, null as an empty field."""
    lines = text.split("\n")
    cols = ACTIVITY_COLUMNS[interval]
    problems = [] if lines[0] == ",".join(cols) else ["header %r" % lines[0]]
    if lines[-1] != "" or len(lines) != len(rows or []) + 2:
        problems.append("%d lines for %d rows" % (len(lines), len(rows or [])))
    for i, (line, r) in enumerate(zip(lines[1:], rows or [])):
        fields = line.split(",")
        json_fields = ["" if r.get(c) is None else str(r.get(c)) for c in cols]
        if fields != json_fields:
            problems.append("line %d: %r, JSON %r" % (i + 1, fields, json_fields))
    return problems


if __name__ == "__main__":
    unittest.main()
