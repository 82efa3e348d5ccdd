#!/usr/bin/env python3
"""Gives the `make run` demo app ad spend and currency rates, so its reports show cost, CPI and ROAS.

  scripts/demo-costs.py ADDR APP_ID APP_SECRET DAYS

Waits until the pipeline has applied everything acknowledged, reads the installs and clicks per day,
source, campaign and country from GET /v1/reports/overview, and posts a cost for each (a per-source CPI
and CPC; one network bills in EUR), then posts daily rates to USD for the currencies the demo traffic
pays in (docs/costs.md). Deterministic: the same traffic gives the same costs.
"""
import datetime
import json
import math
import sys
import time
import urllib.request

ADDR, APP, SECRET, DAYS = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
BASE = f"http://{ADDR}"
HDR = {"X-App-Secret": SECRET, "Content-Type": "application/json"}
# units of each currency per US dollar (the demo's fixed rates, varied a little by day)
PER_USD = {"EUR": 0.92, "GBP": 0.79, "BRL": 5.0, "INR": 83.0, "JPY": 150.0, "KRW": 1350.0, "MXN": 17.0,
           "IDR": 15500.0, "TRY": 32.0, "CAD": 1.37, "AUD": 1.5, "PHP": 56.0, "VND": 25000.0}
CPI = {"meta": 2.4, "google": 2.9, "tiktok": 1.6, "unity": 1.9, "applovin": 2.2, "ironsource": 1.8,
       "snap": 1.5, "mintegral": 1.2, "moloco": 2.0, "liftoff": 2.6, "vungle": 1.7, "reddit": 1.4}


def call(method, path, body=None):
    req = urllib.request.Request(BASE + path, method=method, headers=HDR,
                                 data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read().decode()


def lag():
    for line in call("GET", "/metrics").splitlines():
        if line.startswith("umg_pipeline_lag_records"):
            return float(line.split()[-1])
    return 0.0


for _ in range(600):  # the pipeline applies what gen sent: wait for it (at most a minute)
    if lag() == 0:
        break
    time.sleep(0.1)
time.sleep(1.5)  # the lag gauge is refreshed when the pipeline idles

today = datetime.date.today()
start = today - datetime.timedelta(days=DAYS)
q = (f"/v1/reports/overview?app={APP}&from={start}&to={today}&group_by=day,source,campaign,country"
     f"&metrics=installs,clicks&limit=100000")
rows = json.loads(call("GET", q))["rows"]
costs = []
for r in rows:
    if not r["source"] or (r["installs"] == 0 and r["clicks"] == 0):
        continue
    cpi = CPI.get(r["source"], 2.0)
    usd = r["installs"] * cpi + r["clicks"] * 0.03
    eur = r["source"] == "mintegral"  # one network bills in euros
    amount = round(usd * PER_USD["EUR"] if eur else usd, 2)
    costs.append({"date": r["day"], "source": r["source"], "campaign": r["campaign"], "country": r["country"],
                  "cost": amount, "currency": "EUR" if eur else "USD"})
accepted = 0
for i in range(0, len(costs), 2000):
    accepted += json.loads(call("POST", f"/v1/costs?app={APP}", {"costs": costs[i:i + 2000]}))["accepted"]

rates = []
for d in range(DAYS + 2):
    day = start + datetime.timedelta(days=d)
    for cur, per in PER_USD.items():
        wiggle = 1 + 0.01 * math.sin(d + len(cur) + ord(cur[0]))
        rates.append({"date": str(day), "currency": cur, "base": "USD", "rate": round(1 / (per * wiggle), 8)})
r = json.loads(call("POST", "/v1/rates", {"rates": rates}))
print(json.dumps({"costs": accepted, "rates": r["accepted"]}))
