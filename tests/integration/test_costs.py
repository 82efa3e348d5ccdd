"""Costs and currency rates through the real daemon and CLI (docs/costs.md):
POST /v1/costs with good and bad rows, replacing on re-send, GET back as JSON
and CSV, the endpoints' authentication (app key refused, another app, another
organization, permissions), rates per organization, `unmogrowp import costs`
and `import rates` while the daemon runs (read back over HTTP), CSV error lines
and exit statuses, and the audit records of writes."""

import csv
import io
import json
import os
import subprocess
import time

import harness
from harness import DaemonTestCase, parse_json
from test_tenancy import PASSWORD, create_user


def row(**kw):
    r = {"date": "2026-11-20", "source": "meta", "campaign": "summer", "cost": 120.5, "currency": "EUR"}
    r.update(kw)
    return r


def run_import(data_dir, kind, path, app_id, extra=()):
    cmd = [harness.binary(), "import", kind, path, "--data", data_dir, "--app", app_id] + list(extra)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


class CostsTest(DaemonTestCase):

    def setUp(self):
        self.d = self.daemon(start=False)
        self.app = self.d.create_app("Org A", "Game", "android")
        self.app2 = self.d.create_app("Org A", "Game 2", "ios")
        self.other = self.d.create_app("Org B", "Other", "android")
        create_user(self.d.data_dir, "Org A", "owner@a.test", "owner")
        create_user(self.d.data_dir, "Org A", "viewer@a.test", "viewer")
        create_user(self.d.data_dir, "Org A", "marketer2@a.test", "marketer", apps=self.app2["app_id"])
        self.d.start()

    def secret(self, app=None):
        return {"X-App-Secret": (app or self.app)["app_secret"]}

    def bearer(self, email):
        st, h, data = self.d.request("POST", "/v1/auth/login", {"email": email, "password": PASSWORD})
        self.assertStatus(st, 200, "login", data)
        return {"Authorization": "Bearer " + parse_json(data)["access_token"]}

    def post(self, path, body, headers, expect=200):
        st, h, data = self.d.request("POST", path, body, headers)
        self.assertStatus(st, expect, "POST " + path, data)
        return parse_json(data)

    def get(self, path, headers, expect=200):
        st, h, data = self.d.request("GET", path, None, headers)
        self.assertStatus(st, expect, "GET " + path, data)
        return h, data

    def costs(self, app=None, q="", headers=None):
        app = app or self.app
        h, data = self.get("/v1/costs?app=%s%s" % (app["app_id"], q), headers or self.secret(app))
        self.assertTrue(h["content-type"].startswith("application/json"))
        return parse_json(data)["costs"]

    # ------------------------------------------------------------ POST / GET

    def test_post_mixed_rows_replace_and_get_back(self):
        body = {"costs": [
            row(adset="a1", ad="", country="US"),
            row(date="2026-02-30"),                          # 1: no such day
            row(campaign="winter", cost=0.0000005, currency="USD"),
            row(cost=-1),                                    # 3
            row(country="usa"),                              # 4
            row(currency="eur"),                             # 5
            {"date": "2026-11-21", "source": "google", "cost": 1, "currency": "USD"},  # 6: no campaign
            row(spend=3),                                    # 7: unknown member
            "not an object",                                 # 8
            row(cost="12"),                                  # 9
            row(source="google", campaign="c,\"q\"", date="2026-11-21", cost=7, currency="USD"),
        ]}
        r = self.post("/v1/costs", body, self.secret())
        self.assertEqual(r["accepted"], 3)
        self.assertEqual(r["replaced"], 0)
        errs = {e["index"]: e for e in r["errors"]}
        self.assertEqual(sorted(errs), [1, 3, 4, 5, 6, 7, 8, 9])
        self.assertEqual(errs[1]["field"], "costs[1].date")
        self.assertEqual(errs[1]["code"], "invalid_value")
        self.assertEqual(errs[3]["field"], "costs[3].cost")
        self.assertEqual(errs[4]["field"], "costs[4].country")
        self.assertEqual(errs[5]["field"], "costs[5].currency")
        self.assertEqual((errs[6]["field"], errs[6]["code"]), ("costs[6].campaign", "required"))
        self.assertEqual((errs[7]["field"], errs[7]["code"]), ("costs[7].spend", "unknown_field"))
        self.assertEqual((errs[8]["field"], errs[8]["code"]), ("costs[8]", "invalid_type"))
        self.assertEqual((errs[9]["field"], errs[9]["code"]), ("costs[9].cost", "invalid_type"))
        for e in r["errors"]:
            self.assertTrue(e["message"])

        got = self.costs()
        self.assertEqual(len(got), 3)
        first = got[0]
        self.assertEqual(first, {"date": "2026-11-20", "source": "meta", "campaign": "summer", "adset": "a1",
                                 "ad": "", "country": "US", "cost": 120.5, "currency": "EUR",
                                 "micros": 120500000})
        winter = [c for c in got if c["campaign"] == "winter"][0]
        self.assertEqual(winter["micros"], 1)  # floor(0.5 + 0.5)
        self.assertEqual(winter["currency"], "USD")

        # Re-sending the same key replaces the row (and its currency); nothing is added.
        r = self.post("/v1/costs", {"costs": [row(adset="a1", country="US", cost=99, currency="GBP")]}, self.secret())
        self.assertEqual((r["accepted"], r["replaced"], r["errors"]), (1, 1, []))
        got = self.costs()
        self.assertEqual(len(got), 3)
        summer = [c for c in got if c["campaign"] == "summer"][0]
        self.assertEqual((summer["micros"], summer["currency"]), (99000000, "GBP"))

        # Period filter (inclusive).
        self.assertEqual(len(self.costs(q="&from=2026-11-21&to=2026-11-21")), 1)
        self.assertEqual(len(self.costs(q="&from=2026-11-20&to=2026-11-20")), 2)
        self.assertEqual(len(self.costs(q="&to=2026-11-19")), 0)

        # CSV.
        h, data = self.get("/v1/costs?app=%s&format=csv" % self.app["app_id"], self.secret())
        self.assertTrue(h["content-type"].startswith("text/csv"))
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        self.assertEqual(len(rows), 3)
        self.assertEqual(list(rows[0].keys()),
                         ["date", "source", "campaign", "adset", "ad", "country", "cost", "currency", "micros"])
        quoted = [x for x in rows if x["source"] == "google"][0]
        self.assertEqual(quoted["campaign"], 'c,"q"')
        self.assertEqual((quoted["cost"], quoted["micros"]), ("7", "7000000"))

        # The other app has none.
        self.assertEqual(self.costs(app=self.app2), [])

    def test_body_and_parameter_errors(self):
        s = self.secret()
        self.assertError(self.d.request("POST", "/v1/costs", "not json", s), 400, "invalid_json")
        self.assertError(self.d.request("POST", "/v1/costs", {"rows": []}, s), 400, "unknown_field", "rows")
        self.assertError(self.d.request("POST", "/v1/costs", {}, s), 400, "required", "costs")
        self.assertError(self.d.request("POST", "/v1/costs", {"costs": {}}, s), 400, "invalid_type", "costs")
        self.assertError(self.d.request("POST", "/v1/rates", {"costs": []}, s), 400, "unknown_field")
        self.assertError(self.d.request("POST", "/v1/rates", {}, s), 400, "required", "rates")
        big = {"costs": [{}] * 10001}
        self.assertError(self.d.request("POST", "/v1/costs", big, s), 413, "too_many_rows", "costs")
        q = "/v1/costs?app=" + self.app["app_id"]
        self.assertError(self.d.request("GET", q + "&from=2026-13-01", None, s), 400, "invalid_value", "from")
        self.assertError(self.d.request("GET", q + "&from=2026-11-02&to=2026-11-01", None, s), 400,
                         "invalid_value", "to")
        self.assertError(self.d.request("GET", q + "&format=xml", None, s), 400, "invalid_value", "format")
        self.assertError(self.d.request("DELETE", q, None, s), 405, "method_not_allowed")
        r = self.post("/v1/costs", {"costs": []}, s)
        self.assertEqual((r["accepted"], r["replaced"], r["errors"]), (0, 0, []))

    def test_auth(self):
        body = {"costs": [row()]}
        key = {"X-App-Key": self.app["app_key"]}
        self.assertError(self.d.request("POST", "/v1/costs", body, key), 401, None)
        self.assertError(self.d.request("GET", "/v1/costs?app=" + self.app["app_id"], None, key), 401, None)
        self.assertError(self.d.request("POST", "/v1/rates", {"rates": []}, key), 401, None)
        self.assertError(self.d.request("POST", "/v1/costs", body, {}), 401, None)
        # The secret of one app cannot reach another, in its organization or not.
        for other in (self.app2, self.other):
            self.assertError(self.d.request("POST", "/v1/costs?app=" + other["app_id"], body, self.secret()),
                             404, "not_found", "app")
            self.assertError(self.d.request("GET", "/v1/costs?app=" + other["app_id"], None, self.secret()),
                             404, "not_found", "app")
        self.assertError(self.d.request("GET", "/v1/costs?app=app_0000000000000000", None, self.secret()),
                         404, "not_found", "app")

        owner = self.bearer("owner@a.test")
        viewer = self.bearer("viewer@a.test")
        scoped = self.bearer("marketer2@a.test")
        # A Bearer token must name the app.
        self.assertError(self.d.request("POST", "/v1/costs", body, owner), 400, "required", "app")
        r = self.post("/v1/costs?app=" + self.app["app_id"], body, owner)
        self.assertEqual(r["accepted"], 1)
        # Viewers read (reports:read) but do not write (costs:write).
        self.assertEqual(len(self.costs(headers=viewer)), 1)
        self.assertError(self.d.request("POST", "/v1/costs?app=" + self.app["app_id"], body, viewer),
                         403, "forbidden", "app")
        self.assertError(self.d.request("POST", "/v1/rates", {"rates": []}, viewer), 403, "forbidden")
        # A marketer limited to app2 writes there, and does not see app 1.
        r = self.post("/v1/costs?app=" + self.app2["app_id"], body, scoped)
        self.assertEqual(r["accepted"], 1)
        self.assertError(self.d.request("POST", "/v1/costs?app=" + self.app["app_id"], body, scoped),
                         404, "not_found", "app")
        # Rates convert every app's amounts: not for a marketer limited to some apps (found in review), who
        # still reads them.
        rate = {"rates": [{"date": "2026-11-20", "currency": "CHF", "base": "USD", "rate": 0.001}]}
        self.assertError(self.d.request("POST", "/v1/rates", rate, scoped), 403, "forbidden")
        st, h, data = self.d.request("GET", "/v1/rates", None, scoped)
        self.assertStatus(st, 200, "GET /v1/rates", data)
        self.assertEqual(parse_json(data)["rates"], [])
        # Another organization's app does not exist for the owner of Org A.
        self.assertError(self.d.request("GET", "/v1/costs?app=" + self.other["app_id"], None, owner),
                         404, "not_found", "app")

        # Writes are audited with their counts.
        st, h, data = self.d.request("GET", "/v1/audit?action=costs.write", None, owner)
        self.assertStatus(st, 200, "audit", data)
        entries = parse_json(data)["entries"]
        self.assertEqual(len(entries), 2)
        self.assertEqual(json.loads(entries[0]["detail"]) if isinstance(entries[0]["detail"], str)
                         else entries[0]["detail"], {"accepted": 1, "replaced": 0, "errors": 0})

    # ------------------------------------------------------------ rates

    def test_rates_per_organization(self):
        body = {"rates": [
            {"date": "2026-11-20", "currency": "EUR", "base": "USD", "rate": 1.08},
            {"date": "2026-11-21", "currency": "GBP", "base": "USD", "rate": 1.27},
            {"date": "2026-11-21", "currency": "USD", "base": "USD", "rate": 1},   # 2: same currency
            {"date": "2026-11-21", "currency": "EUR", "base": "USD", "rate": 0},   # 3
            {"date": "2026-11-21", "currency": "EUR", "rate": 1.1},                # 4: no base
        ]}
        r = self.post("/v1/rates", body, self.secret())
        self.assertEqual((r["accepted"], r["replaced"]), (2, 0))
        self.assertEqual([(e["index"], e["field"]) for e in r["errors"]],
                         [(2, "rates[2].base"), (3, "rates[3].rate"), (4, "rates[4].base")])
        # The secret of another app of the organization sees the same rates.
        h, data = self.get("/v1/rates", self.secret(self.app2))
        rates = parse_json(data)["rates"]
        self.assertEqual(rates, [{"date": "2026-11-20", "currency": "EUR", "base": "USD", "rate": 1.08},
                                 {"date": "2026-11-21", "currency": "GBP", "base": "USD", "rate": 1.27}])
        h, data = self.get("/v1/rates?from=2026-11-21", self.secret())
        self.assertEqual(len(parse_json(data)["rates"]), 1)
        h, data = self.get("/v1/rates?format=csv", self.secret())
        self.assertEqual(data.decode().splitlines()[0], "date,currency,base,rate")
        # Another organization has none; a re-send replaces.
        h, data = self.get("/v1/rates", self.secret(self.other))
        self.assertEqual(parse_json(data)["rates"], [])
        r = self.post("/v1/rates", {"rates": [dict(body["rates"][0], rate=1.09)]}, self.bearer("owner@a.test"))
        self.assertEqual((r["accepted"], r["replaced"]), (1, 1))
        h, data = self.get("/v1/rates?to=2026-11-20", self.bearer("viewer@a.test"))
        self.assertEqual(parse_json(data)["rates"][0]["rate"], 1.09)

    def test_sums_saturate(self):
        """Ten maximal costs in one report cell stop at the largest amount instead of wrapping negative, and a
        rate too large to convert with is refused."""
        r = self.post("/v1/rates", {"rates": [{"date": "2026-11-01", "currency": "GBP", "base": "USD",
                                               "rate": 1e300}]}, self.secret())
        self.assertEqual([e["field"] for e in r["errors"]], ["rates[0].rate"], r)
        self.post("/v1/costs", {"costs": [row(campaign="c%d" % i, currency="USD", cost=1e12) for i in range(10)]},
                  self.secret())
        h, data = self.get("/v1/reports/overview?app=%s&from=2026-11-20&to=2026-11-20&group_by=&metrics=cost"
                           % self.app["app_id"], self.secret())
        total = parse_json(data)["totals"]["cost"]
        self.assertGreater(total, 9.2e12, data)

    # ------------------------------------------------------------ reports

    def overview_cost(self, app=None):
        app = app or self.app
        h, data = self.get("/v1/reports/overview?app=%s&from=2026-11-19&to=2026-11-22&group_by=campaign"
                           "&metrics=cost" % app["app_id"], self.secret(app))
        r = parse_json(data)
        return r["totals"]["cost"], {x["campaign"]: x["cost"] for x in r["rows"]}, r["totals"].get("cost_unconverted")

    def test_overview_sees_every_cost_write(self):
        """The report worker keeps the cost rows it read; every write, over HTTP or by the CLI in another
        process, and of a rate, shows in the next report, and another app's writes leave its copy alone."""
        self.post("/v1/costs", {"costs": [row(currency="USD", cost=10), row(campaign="winter", currency="USD",
                                                                            cost=5)]}, self.secret())
        self.assertEqual(self.overview_cost()[:2], (15, {"summer": 10, "winter": 5}))
        self.assertEqual(self.overview_cost()[:2], (15, {"summer": 10, "winter": 5}))  # the kept copy
        # a replaced row and a new one over HTTP
        self.post("/v1/costs", {"costs": [row(currency="USD", cost=12), row(campaign="spring", currency="USD",
                                                                            cost=1, date="2026-11-22")]},
                  self.secret())
        self.assertEqual(self.overview_cost()[:2], (18, {"summer": 12, "winter": 5, "spring": 1}))
        # another app's costs: this app's report is unchanged, the other's has them
        self.post("/v1/costs", {"costs": [row(currency="USD", cost=100)]}, self.secret(self.app2))
        self.assertEqual(self.overview_cost()[0], 18)
        self.assertEqual(self.overview_cost(self.app2)[0], 100)
        # the CLI, another process writing meta.db
        path = self.write("more.csv", "date,source,campaign,cost,currency\n2026-11-21,meta,winter,7,USD\n"
                                      "2026-11-21,meta,autumn,2,EUR\n")
        rc, out, err = run_import(self.d.data_dir, "costs", path, self.app["app_id"])
        self.assertEqual(rc, 0, err)
        total, rows, unconv = self.overview_cost()
        self.assertEqual((total, rows["winter"]), (25, 12))
        self.assertEqual(unconv, {"EUR": 2})  # no EUR rate yet
        # a rate, later: the same rows now convert
        self.post("/v1/rates", {"rates": [{"date": "2026-11-01", "currency": "EUR", "base": "USD", "rate": 1.5}]},
                  self.secret())
        total, rows, unconv = self.overview_cost()
        self.assertEqual((total, rows["autumn"], unconv), (28, 3, None))

    # ------------------------------------------------------------ CLI import

    def write(self, name, text):
        path = os.path.join(self.tmpdir(), name)
        with open(path, "wb") as f:
            f.write(text if isinstance(text, bytes) else text.encode())
        return path

    def test_import_costs_and_rates_while_running(self):
        path = self.write("costs.csv",
                          b"\xef\xbb\xbfcurrency,cost,date,source,campaign,country\r\n"
                          b"EUR,120.5,2026-11-20,meta,summer,US\r\n"
                          b"USD,3,2026-11-20,meta,\"with, comma\",\r\n"
                          b"EUR,-1,2026-11-20,meta,bad,US\r\n"
                          b"EUR,1,2026-11-32,meta,bad,US\r\n"
                          b"EUR,1,2026-11-20,meta,\"broken\"x,US\r\n"
                          b"EUR,1,2026-11-20\r\n"
                          b"\"multi\nline? no: the source\",1,2026-11-20,meta,x,US\r\n"
                          b"EUR,2.25,2026-11-21,google,\"q \"\"x\"\"\",\r\n")
        rc, out, err = run_import(self.d.data_dir, "costs", path, self.app["app_id"])
        self.assertEqual(rc, 1, err)
        self.assertEqual(json.loads(out), {"accepted": 3, "replaced": 0, "errors": 5})
        lines = err.strip().splitlines()
        self.assertEqual(len(lines), 5, err)
        self.assertTrue(lines[0].startswith(path + ":4: cost: "), lines)
        self.assertTrue(lines[1].startswith(path + ":5: date: "), lines)
        self.assertTrue(lines[2].startswith(path + ":6: "), lines)
        self.assertTrue(lines[3].startswith(path + ":7: "), lines)
        self.assertTrue(lines[4].startswith(path + ":8: currency: "), lines)
        got = self.costs()
        self.assertEqual(len(got), 3)
        self.assertEqual([c["campaign"] for c in got], ["summer", "with, comma", 'q "x"'])
        self.assertEqual(got[2]["micros"], 2250000)
        self.assertEqual(got[0]["adset"], "")

        # Importing again replaces every row; a clean file exits 0.
        path2 = self.write("again.csv", "date,source,campaign,country,cost,currency\n"
                                        "2026-11-20,meta,summer,US,100,EUR\n")
        rc, out, err = run_import(self.d.data_dir, "costs", path2, self.app["app_id"])
        self.assertEqual((rc, json.loads(out)), (0, {"accepted": 1, "replaced": 1, "errors": 0}), err)
        self.assertEqual(len(self.costs()), 3)

        # Names a spreadsheet would run as formulas: the export puts an apostrophe first, and importing the
        # exported file gives the names back as they were.
        r = self.post("/v1/costs", {"costs": [row(source="@net", campaign="=HYPERLINK(\"x\")", cost=5),
                                              row(source="-net", campaign="+1", cost=6)]}, self.secret())
        self.assertEqual(r["accepted"], 2, r)
        h, data = self.get("/v1/costs?app=%s&format=csv" % self.app["app_id"], self.secret())
        text = data.decode()
        self.assertIn("'@net,\"'=HYPERLINK(\"\"x\"\")\"", text)
        self.assertIn("'-net,'+1,", text)
        before = self.costs()
        rc, out, err = run_import(self.d.data_dir, "costs", self.write("exported.csv", text), self.app["app_id"])
        self.assertEqual(rc, 0, (out, err))
        self.assertEqual(json.loads(out), {"accepted": 5, "replaced": 5, "errors": 0})
        self.assertEqual(self.costs(), before)
        bad = self.write("micros.csv", "date,source,campaign,cost,currency,micros\n"
                                       "2026-11-20,meta,m1,1.5,USD,1500001\n2026-11-20,meta,m2,1,USD,1e6\n"
                                       "2026-11-20,meta,m3,2,USD,\n")
        rc, out, err = run_import(self.d.data_dir, "costs", bad, self.app["app_id"])
        self.assertEqual((rc, json.loads(out)), (1, {"accepted": 1, "replaced": 0, "errors": 2}), err)
        self.assertIn(bad + ":2: micros: does not match cost", err)
        self.assertIn(bad + ":3: micros: must be a whole number", err)

        rates = self.write("rates.csv", "base,currency,date,rate\nUSD,EUR,2026-11-20,1.08\nUSD,EUR,2026-11-21,x\n")
        rc, out, err = run_import(self.d.data_dir, "rates", rates, self.app["app_id"])
        self.assertEqual((rc, json.loads(out)), (1, {"accepted": 1, "replaced": 0, "errors": 1}))
        self.assertIn(rates + ":3: rate: ", err)
        h, data = self.get("/v1/rates", self.secret(self.app2))  # the organization's
        self.assertEqual(parse_json(data)["rates"],
                         [{"date": "2026-11-20", "currency": "EUR", "base": "USD", "rate": 1.08}])

    def post_csv(self, path, text, headers, ctype="text/csv", expect=200):
        h = dict(headers)
        h["Content-Type"] = ctype
        st, _, data = self.d.request("POST", path, text.encode() if isinstance(text, str) else text, h)
        self.assertStatus(st, expect, "POST " + path, data)
        return parse_json(data)

    def test_post_csv_body(self):
        """A text/csv body: the lines `unmogrowp import` reads, each bad line listed with its line number."""
        text = (b"\xef\xbb\xbfcurrency,cost,date,source,campaign,country\r\n"
                b"EUR,120.5,2026-11-20,meta,summer,US\r\n"
                b"USD,3,2026-11-20,meta,\"with, comma\",\r\n"
                b"EUR,-1,2026-11-20,meta,bad,US\r\n"
                b"EUR,1,2026-11-20,meta,\"broken\"x,US\r\n"
                b"EUR,1,2026-11-20\r\n"
                b"EUR,2.25,2026-11-21,google,\"q \"\"x\"\"\",\r\n")
        r = self.post_csv("/v1/costs?app=" + self.app["app_id"], text, self.secret(), ctype="text/csv; charset=utf-8")
        self.assertEqual((r["accepted"], r["replaced"]), (3, 0), r)
        self.assertEqual([(e["index"], e["line"], e["field"], e["code"]) for e in r["errors"]],
                         [(2, 4, "cost", "invalid_value"), (3, 5, None, "invalid_csv"), (4, 6, None, "invalid_csv")],
                         r)
        self.assertIn("expected 6 fields as in the header, found 3", r["errors"][2]["message"])
        got = self.costs()
        self.assertEqual([c["campaign"] for c in got], ["summer", "with, comma", 'q "x"'])
        # The export's CSV goes back unchanged (rows replaced), and the JSON form of the endpoint is untouched.
        h, data = self.get("/v1/costs?app=%s&format=csv" % self.app["app_id"], self.secret())
        r = self.post_csv("/v1/costs", data, self.secret())
        self.assertEqual((r["accepted"], r["replaced"], r["errors"]), (3, 3, []))
        self.assertEqual(self.costs(), got)
        r = self.post("/v1/costs", {"costs": [row(country="US", cost=7)]}, self.secret())
        self.assertEqual((r["accepted"], r["replaced"]), (1, 1))
        # Rates too, with a Bearer token.
        r = self.post_csv("/v1/rates", "date,currency,base,rate\n2026-11-20,EUR,USD,1.08\n2026-11-20,EUR,EUR,1\n",
                          self.bearer("owner@a.test"))
        self.assertEqual(r["accepted"], 1, r)
        self.assertEqual([(e["line"], e["field"]) for e in r["errors"]], [(3, "base")])
        # Bodies refused whole: nothing stored.
        for body, code, field in (("", "invalid_csv", None),
                                  ("date,source,campaign,spend,currency\n2026-11-20,meta,x,1,EUR\n",
                                   "unknown_field", "spend"),
                                  ("date,source,campaign,currency\n", "required", "cost"),
                                  ("date,date,source,campaign,cost,currency\n", "invalid_value", "date"),
                                  ("\"date,source\n", "invalid_csv", None)):
            r = self.post_csv("/v1/costs", body, self.secret(), expect=400)
            self.assertEqual((r["error"]["code"], r["error"].get("field")), (code, field), body)
        many = "date,source,campaign,cost,currency\n" + "".join(
            "2026-11-20,meta,c%d,1,EUR\n" % i for i in range(10001))
        r = self.post_csv("/v1/costs", many, self.secret(), expect=413)
        self.assertEqual(r["error"]["code"], "too_many_rows")
        self.assertEqual(len(self.costs()), 3)
        # Another content type is read as JSON, as before.
        r = self.post_csv("/v1/costs", "date,source\n", self.secret(), ctype="text/csvx", expect=400)
        self.assertEqual(r["error"]["code"], "invalid_json")

    def test_export_round_trips(self):
        """Names starting with an apostrophe and costs of any size come back from an export exactly: importing it
        (CSV, or the JSON rows posted again) replaces every row and adds none."""
        rows = [row(source="'-net", campaign="'=sum", cost=50), row(campaign="'plain", cost=1),
                row(campaign="big", cost=8905122611.79, currency="VND"),
                row(campaign="max", cost=1e12, currency="IRR"),
                row(campaign="tiny", cost=0.000001)]
        r = self.post("/v1/costs", {"costs": rows}, self.secret())
        self.assertEqual(r["accepted"], 5, r)
        got = self.costs()
        self.assertEqual({c["campaign"]: (c["cost"], c["micros"]) for c in got},
                         {"'=sum": (50, 50000000), "'plain": (1, 1000000),
                          "big": (8905122611.79, 8905122611790000), "max": (1e12, 10 ** 18),
                          "tiny": (0.000001, 1)})
        h, data = self.get("/v1/costs?app=%s&format=csv" % self.app["app_id"], self.secret())
        self.assertIn(b"''-net,''=sum,", data)
        self.assertIn(b",8905122611.79,VND,8905122611790000\r\n", data)
        self.assertIn(b",1000000000000,IRR,1000000000000000000\r\n", data)
        for _ in range(2):
            r = self.post_csv("/v1/costs", data, self.secret())
            self.assertEqual((r["accepted"], r["replaced"], r["errors"]), (5, 5, []), r)
            self.assertEqual(self.costs(), got)
        rc, out, err = run_import(self.d.data_dir, "costs", self.write("rt.csv", data.decode()), self.app["app_id"])
        self.assertEqual((rc, json.loads(out)), (0, {"accepted": 5, "replaced": 5, "errors": 0}), err)
        again = [{k: c[k] for k in ("date", "source", "campaign", "adset", "ad", "country", "cost", "currency")}
                 for c in got]
        r = self.post("/v1/costs", {"costs": again}, self.secret())
        self.assertEqual((r["accepted"], r["replaced"]), (5, 5), r)
        self.assertEqual(self.costs(), got)

    def test_import_header_and_usage_errors(self):
        bad = self.write("bad.csv", "date,source,campaign,spend,currency\n2026-11-20,meta,x,1,EUR\n")
        rc, out, err = run_import(self.d.data_dir, "costs", bad, self.app["app_id"])
        self.assertEqual(rc, 1)
        self.assertIn(bad + ":1: spend: unknown column", err)
        self.assertIn(bad + ":1: cost: required column missing", err)
        self.assertEqual(out, "")
        self.assertEqual(self.costs(), [])
        ok = self.write("ok.csv", "date,source,campaign,cost,currency\n2026-11-20,meta,x,1,EUR\n")
        self.assertEqual(run_import(self.d.data_dir, "costs", ok, "app_0000000000000000")[0], 1)
        p = subprocess.run([harness.binary(), "import", "costs", ok, "--data", self.d.data_dir],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 2)
        p = subprocess.run([harness.binary(), "import", "bananas"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 2)
