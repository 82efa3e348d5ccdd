#!/usr/bin/env python3
"""recount.py - the reports recounted by brute force from an app's raw exports.

The daemon's report endpoints (GET /v1/reports/overview, GET /v1/reports/cohorts)
read rollups the pipeline keeps up to date incrementally. This module is their
referee: it fetches what the daemon stored (GET /v1/export/events, /v1/export/touches,
/v1/export/installs; /v1/costs and /v1/rates when those exist) and recounts every
figure in plain Python, with dicts and sets and no cleverness, following the
definitions of the reports (docs/reports.md; until it lands, the definitions of the
reports issue, restated at each step below).

It works in two steps that can be audited separately:

1. facts(raw)  - walks the exports once, in log order, and turns every touch and event
   into facts: one Fact per thing a report counts, with its local day, its dimensions,
   its device and its amount, and the id of the record it came from. Everything
   "distinct" (active devices, paying devices, unique events, cohort members) is decided
   here, so that step 2 only adds.
2. overview(facts, ...) / cohorts(facts, ...) - sums the facts into rows for a group_by,
   filters and a date range, converts currencies and joins costs.

Only the Python standard library is used (zoneinfo for the time zones).

As a command:

    recount.py --addr 127.0.0.1:8080 --app app_... --secret as_... overview \\
        --group-by day,source --from 2026-11-01 --to 2026-11-27 --filter country=US
    recount.py --addr ... cohorts --group-by source
    recount.py --addr ... activity --interval week --from 2026-11-01 --to 2026-11-27
    recount.py --addr ... facts            # every fact, one JSON line each
    recount.py --addr ... dump DIR         # saves the raw exports; --load DIR reads them back
"""

import argparse
import datetime
import http.client
import json
import math
import os
import re
import sys
import urllib.parse
import zoneinfo

# The seven attribution dimensions, in the order rows and keys use them; "day" is the eighth
# thing a report can group by.
DIMS = ("source", "campaign", "adset", "ad", "site", "country", "platform")
GROUPABLE = ("day",) + DIMS
TOUCH_DIMS = ("source", "campaign", "adset", "ad", "site")
EMPTY_ATTR = ("", "", "", "", "")

# The counters of the overview, in the order the reports list them.
COUNTERS = ("impressions", "clicks", "installs", "organic_installs", "reinstalls", "reattributions",
            "re_engagements", "sessions", "active_devices", "paying_devices")

# Identifier kinds of a device, in the daemon's order (umg_attr_ids_collect keeps the first 4).
ID_KINDS = ("idfa", "gaid", "oaid", "android_id", "idfv", "custom_id")
MAX_IDS = 4
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

COHORT_DAYS = 181  # days since install 0..180

JOIN_OUTCOMES = ("install", "implicit_install", "reattributed")


# ------------------------------------------------------------------ fetching


class Raw:
    """What the daemon stored for one app, as its exports give it."""

    def __init__(self, events, touches, installs, costs=None, rates=None, app=None):
        self.events = events        # GET /v1/export/events, log order
        self.touches = touches      # GET /v1/export/touches, log order
        self.installs = installs    # GET /v1/export/installs, (install time, offset) order
        self.costs = costs          # GET /v1/costs rows, or None when the endpoint does not exist
        self.rates = rates          # GET /v1/rates rows, or None
        self.app = app or {}        # GET /v1/apps/{id} when readable, else {}

    def save(self, directory):
        os.makedirs(directory, exist_ok=True)
        for name in ("events", "touches", "installs"):
            with open(os.path.join(directory, name + ".ndjson"), "w") as f:
                for r in getattr(self, name):
                    f.write(json.dumps(r, sort_keys=True) + "\n")
        with open(os.path.join(directory, "extra.json"), "w") as f:
            json.dump({"costs": self.costs, "rates": self.rates, "app": self.app}, f, indent=1, sort_keys=True)

    @classmethod
    def load(cls, directory):
        def nd(name):
            with open(os.path.join(directory, name + ".ndjson")) as f:
                return [json.loads(line) for line in f if line.strip()]
        with open(os.path.join(directory, "extra.json")) as f:
            extra = json.load(f)
        return cls(nd("events"), nd("touches"), nd("installs"), extra.get("costs"), extra.get("rates"),
                   extra.get("app"))


class Client:
    """A small keep-alive HTTP client for the daemon (plain HTTP)."""

    def __init__(self, addr, secret, bearer=None, timeout=120):
        host, _, port = addr.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self.secret, self.bearer, self.timeout = secret, bearer, timeout
        self.conn = None

    def get(self, path, params=None, auth="secret"):
        """GET path?params: (status, body bytes)."""
        if params:
            path += "?" + urllib.parse.urlencode(params)
        headers = {}
        if auth == "bearer" and self.bearer:
            headers["Authorization"] = "Bearer " + self.bearer
        elif self.secret:
            headers["X-App-Secret"] = self.secret
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            try:
                self.conn.request("GET", path, headers=headers)
                r = self.conn.getresponse()
                data = r.read()
                if r.will_close:
                    self.close()
                return r.status, data
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def _ndjson(data):
    return [json.loads(line) for line in data.split(b"\n") if line.strip()]


def fetch(client, app_id):
    """Every raw export of app_id. Costs and rates are None when their endpoints answer 404/405."""
    out = {}
    for name in ("events", "touches", "installs"):
        st, data = client.get("/v1/export/" + name, {"app": app_id})
        if st != 200:
            raise RuntimeError("GET /v1/export/%s: %d %r" % (name, st, data[:300]))
        out[name] = _ndjson(data)
    costs = rates = None
    st, data = client.get("/v1/costs", {"app": app_id})
    if st == 200:
        costs = json.loads(data)["costs"]
    st, data = client.get("/v1/rates", {"app": app_id})
    if st == 200:
        rates = json.loads(data)["rates"]
    app = {}
    if client.bearer:
        st, data = client.get("/v1/apps/" + app_id, auth="bearer")
        if st == 200:
            app = json.loads(data)
    return Raw(out["events"], out["touches"], out["installs"], costs, rates, app)


# ------------------------------------------------------------------ small definitions


def parse_ts_us(s):
    """An export time ("2026-11-27T10:00:00.000000Z") or Unix ms to Unix microseconds."""
    if isinstance(s, (int, float)):
        return int(s) * 1000
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$", s)
    if not m:
        raise ValueError("not an export time: %r" % s)
    y, mo, d, h, mi, se, frac = m.groups()
    days = datetime.date(int(y), int(mo), int(d)).toordinal() - datetime.date(1970, 1, 1).toordinal()
    us = (frac or "").ljust(6, "0")[:6]
    return ((days * 24 + int(h)) * 60 + int(mi)) * 60_000_000 + int(se) * 1_000_000 + int(us)


def local_day(ts_us, tz):
    """The calendar day (YYYY-MM-DD) of a UTC instant in the time zone tz (a ZoneInfo)."""
    utc = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc) + datetime.timedelta(microseconds=ts_us)
    return utc.astimezone(tz).date().isoformat()


def day_add(day, n):
    return (datetime.date.fromisoformat(day) + datetime.timedelta(days=n)).isoformat()


def day_diff(a, b):
    """Days from b to a."""
    return (datetime.date.fromisoformat(a) - datetime.date.fromisoformat(b)).days


def country_of_locale(locale):
    """The region of a locale: the last two-letter subtag after the language, upper-cased, once a
    POSIX codeset or modifier is cut off. "en_US" -> "US", "pt-BR" -> "BR", "zh-Hant-TW" -> "TW",
    "en_US.UTF-8" -> "US", "en" -> "", "es-419" -> ""."""
    if not isinstance(locale, str):
        return ""
    parts = re.split(r"[-_]", re.split(r"[.@]", locale)[0])
    for sub in reversed(parts[1:]):
        if len(sub) == 2 and sub.isascii() and sub.isalpha():
            return sub.upper()
    return ""


def platform_of_ua(ua):
    """ "android", "ios" or "" from a touch's User-Agent (iPadOS Safari, which says Macintosh, is "")."""
    if not isinstance(ua, str):
        return ""
    if "Android" in ua:
        return "android"
    if "iPhone" in ua or "iPad" in ua or "iPod" in ua or "iOS " in ua or "CPU OS " in ua:
        return "ios"
    return ""


def micros(amount):
    """floor(amount * 1e6 + 0.5) in doubles, as the daemon rounds revenue to micro-units (costs are rounded on
    their decimal digits, docs/costs.md: their exports carry micros, which the recount reads instead)."""
    return int(math.floor(float(amount) * 1e6 + 0.5))


def device_ids(dev):
    """The identifiers of an event's device object: (kind, normalized value), at most MAX_IDS, in the
    daemon's kind order. The all-zero IDFA/GAID is no identifier; UUIDs compare case-insensitively."""
    out = []
    for kind in ID_KINDS:
        v = (dev or {}).get(kind)
        if not isinstance(v, str) or v == "":
            continue
        if UUID_RE.match(v):
            v = v.lower()
            if v == ZERO_UUID and kind in ("idfa", "gaid"):
                continue
        out.append((kind, v))
        if len(out) == MAX_IDS:
            break
    return out


def attr_dims(attribution):
    """(source, campaign, adset, ad, site) of an export's attribution object; empty for organic."""
    if not attribution:
        return EMPTY_ATTR
    return tuple(attribution.get(k) or "" for k in TOUCH_DIMS)


# ------------------------------------------------------------------ step 1: facts


class Fact:
    """One thing a report counts.

    kind: a counter of COUNTERS, "event" / "event_unique" (name), "revenue" (currency, amount in
    micros), or a cohort fact: "cohort_size", "cohort_active", "cohort_sessions", "cohort_revenue"
    (then day is the cohort's install day and n the days since install).
    """

    __slots__ = ("kind", "day", "dims", "device", "amount", "currency", "name", "n", "ref")

    def __init__(self, kind, day, dims, device=None, amount=1, currency=None, name=None, n=None, ref=None):
        self.kind, self.day, self.dims, self.device = kind, day, dims, device
        self.amount, self.currency, self.name, self.n, self.ref = amount, currency, name, n, ref

    def as_dict(self):
        d = {"kind": self.kind, "day": self.day}
        d.update(zip(DIMS, self.dims))
        for k in ("device", "amount", "currency", "name", "n", "ref"):
            v = getattr(self, k)
            if v is not None:
                d[k] = v
        return d


class Facts:
    """The facts of one app, and what was learnt on the way (for audits and messages)."""

    def __init__(self):
        self.list = []
        self.reeng = []             # the re-engagement credit's facts (overview credit=re_engagement)
        self.device_of_event = {}   # event_id -> device, events with a device only
        self.country = {}           # device -> country
        self.platform = {}          # device -> platform
        self.skipped = {"no_device": 0, "duplicate_install_or_purchase": 0, "decision_without_event": 0,
                        "fraud_rejected": 0}
        self.tz = None

    def add(self, *a, **kw):
        self.list.append(Fact(*a, **kw))

    def add_reeng(self, *a, **kw):
        self.reeng.append(Fact(*a, **kw))


def facts(raw, tz_name=None, app_platform=None):
    """Step 1. Every touch and event of raw turned into facts, per the reports' definitions.

    tz_name: the app's settings.timezone (default: raw.app's, else UTC).
    app_platform: the platform of devices whose first event names none (default: raw.app's, else "").
    """
    tz_name = tz_name or (raw.app.get("settings") or {}).get("timezone") or "UTC"
    app_platform = app_platform if app_platform is not None else (raw.app.get("platform") or "")
    tz = zoneinfo.ZoneInfo(tz_name)
    F = Facts()
    F.tz = tz_name

    # Clicks and impressions: on the touch's own ts, with their own source..site, platform from
    # the User-Agent, country "".
    for t in raw.touches:
        kind = {"click": "clicks", "impression": "impressions"}.get(t.get("type"))
        if kind is None or (t.get("fraud") or {}).get("status") == "rejected":
            continue  # rejected on arrival by the fraud rules: no click of its source
        dims = tuple(t.get(k) or "" for k in TOUCH_DIMS) + ("", platform_of_ua(t.get("user_agent")))
        F.add(kind, local_day(parse_ts_us(t["ts"]), tz), dims, ref=t.get("touch_id"))
        if t.get("retargeting"):  # the re-engagement view's touches: retargeting ones
            F.add_reeng(kind, local_day(parse_ts_us(t["ts"]), tz), dims, ref=t.get("touch_id"))

    # Devices as the daemon finds them, in log order: the device of the strongest identifier that
    # already names one (else a new device named by the strongest), then every identifier of the
    # event names that device (re-pointing any that named another). Histories are never merged.
    alias = {}

    def device_of(ids):
        dev = next((alias[a] for a in ids if a in alias), None) or "%s:%s" % ids[0]
        for a in ids:
            alias[a] = dev
        return dev

    # Decisions by the event they were made on. The export is in (install time, offset) order;
    # decisions of one event are taken in offset order.
    decisions = {}
    for d in sorted(raw.installs, key=lambda r: r.get("offset", 0)):
        decisions.setdefault(d["event_id"], []).append(d)
    seen_eids = set()

    applied_ids = set()           # event_ids of installs and purchases already applied
    current = {}                  # device -> (attr dims, country/platform filled later) of its current install
    cohort = {}                   # device -> (cohort day, cohort dims) of its latest join
    active_seen = set()           # (device, day)
    paying_seen = set()           # (device, day)
    unique_seen = set()           # (device, day, name)
    cohort_active_seen = set()    # (device, cohort day, cohort dims, n)
    rejected = set()              # devices whose current install the fraud rules rejected
    # Re-engagement credit: a session, event or purchase from the device's latest re-engagement (its
    # session, inclusive) until reengagement_window_days after it is credited to that re-engagement's
    # click too. A new install lifecycle (install, reattributed, implicit install) at or after it ends it.
    window_us = int((raw.app.get("settings") or {}).get("reengagement_window_days") or 30) * 86_400_000_000
    reeng = {}                    # device -> (re-engagement ts_us, click dims)
    reeng_active_seen = set()     # (device, day)
    reeng_paying_seen = set()     # (device, day)
    reeng_unique_seen = set()     # (device, day, name)

    for ev in raw.events:
        eid = ev.get("event_id")
        etype = ev.get("type")
        ids = device_ids(ev.get("device"))
        evdecs = decisions.get(eid, []) if eid not in seen_eids else []
        seen_eids.add(eid)
        if not ids:
            F.skipped["no_device"] += 1
            F.skipped["decision_without_event"] += len(evdecs)
            continue
        if etype in ("install", "purchase"):
            if eid in applied_ids:
                F.skipped["duplicate_install_or_purchase"] += 1
                continue
            applied_ids.add(eid)
        dev = device_of(ids)
        F.device_of_event[eid] = dev
        devobj = ev.get("device") or {}
        if dev not in F.country:
            # Country and platform come from the device's first event.
            F.country[dev] = country_of_locale(devobj.get("locale"))
            F.platform[dev] = devobj.get("platform") or app_platform
        cp = (F.country[dev], F.platform[dev])
        day = local_day(parse_ts_us(ev["ts"]), tz)

        for d in evdecs:
            out = d.get("outcome")
            if out == "reengagement":
                reeng[dev] = (parse_ts_us(d["ts"]), attr_dims(d.get("attribution")))
            elif out in JOIN_OUTCOMES and dev in reeng and reeng[dev][0] <= parse_ts_us(d["install_ts"]):
                del reeng[dev]

        # A rejected install, and everything its device does until an install attributed afresh passes
        # the rules, counts nowhere (docs/fraud.md).
        for d in evdecs:
            if etype != "install":
                continue
            if (d.get("fraud") or {}).get("status") == "rejected":
                rejected.add(dev)
            elif d.get("outcome") in ("install", "reattributed"):
                rejected.discard(dev)
        if dev in rejected:
            F.skipped["fraud_rejected"] += 1
            continue

        # The event's own decisions: installs, organic installs, reattributions and cohort joins
        # under that decision's attribution; re-engagements under the click's.
        for d in evdecs:
            out = d.get("outcome")
            a = attr_dims(d.get("attribution"))
            if out in ("install", "implicit_install"):
                F.add("installs" if d.get("attribution") else "organic_installs", day, a + cp, dev, ref=eid)
            elif out == "reattributed":
                F.add("reattributions", day, a + cp, dev, ref=eid)
            elif out == "reengagement":
                F.add("re_engagements", day, a + cp, dev, ref=eid)
                F.add_reeng("re_engagements", day, a + cp, dev, ref=eid)
            if out in JOIN_OUTCOMES:
                current[dev] = a
                cohort[dev] = (day, a + cp)
                F.add("cohort_size", day, a + cp, dev, ref=eid)
            # A reinstall keeps the attribution that stands: nothing changes.

        cur = current.get(dev, EMPTY_ATTR) + cp
        if any(d.get("outcome") == "reinstall" for d in evdecs):
            F.add("reinstalls", day, cur, dev, ref=eid)
        if etype == "session":
            F.add("sessions", day, cur, dev, ref=eid)
        if etype in ("install", "session", "event", "purchase") and (dev, day) not in active_seen:
            active_seen.add((dev, day))
            F.add("active_devices", day, cur, dev, ref=eid)
        name = ev.get("name")
        if etype in ("event", "purchase") and isinstance(name, str):
            F.add("event", day, cur, dev, name=name, ref=eid)
            if (dev, day, name) not in unique_seen:
                unique_seen.add((dev, day, name))
                F.add("event_unique", day, cur, dev, name=name, ref=eid)
        rev = ev.get("revenue")
        amount = None
        if isinstance(rev, (int, float)) and isinstance(ev.get("currency"), str):
            amount = micros(rev)
            F.add("revenue", day, cur, dev, amount=amount, currency=ev["currency"], ref=eid)
            if amount > 0 and (dev, day) not in paying_seen:  # at least one micro-unit
                paying_seen.add((dev, day))
                F.add("paying_devices", day, cur, dev, ref=eid)

        # Cohorts: the device's activity counts in the cohort it joined last (log order), on the
        # days since that cohort's install day, 0..180.
        if dev in cohort:
            cday, cdims = cohort[dev]
            n = day_diff(day, cday)
            if 0 <= n < COHORT_DAYS:
                if etype in ("install", "session", "event", "purchase") and \
                        (dev, cday, cdims, n) not in cohort_active_seen:
                    cohort_active_seen.add((dev, cday, cdims, n))
                    F.add("cohort_active", cday, cdims, dev, n=n, ref=eid)
                if etype == "session":
                    F.add("cohort_sessions", cday, cdims, dev, n=n, ref=eid)
                if amount is not None:
                    F.add("cohort_revenue", cday, cdims, dev, amount=amount, currency=ev["currency"], n=n, ref=eid)

        # The re-engagement credit, under the re-engagement's click (and the device's country, platform).
        if dev in reeng and etype in ("session", "event", "purchase"):
            rts, rdims = reeng[dev]
            if rts <= parse_ts_us(ev["ts"]) <= rts + window_us:
                rd = rdims + cp
                if (dev, day) not in reeng_active_seen:
                    reeng_active_seen.add((dev, day))
                    F.add_reeng("active_devices", day, rd, dev, ref=eid)
                if etype == "session":
                    F.add_reeng("sessions", day, rd, dev, ref=eid)
                if etype in ("event", "purchase") and isinstance(name, str):
                    F.add_reeng("event", day, rd, dev, name=name, ref=eid)
                    if (dev, day, name) not in reeng_unique_seen:
                        reeng_unique_seen.add((dev, day, name))
                        F.add_reeng("event_unique", day, rd, dev, name=name, ref=eid)
                if amount is not None:
                    F.add_reeng("revenue", day, rd, dev, amount=amount, currency=ev["currency"], ref=eid)
                    if amount > 0 and (dev, day) not in reeng_paying_seen:
                        reeng_paying_seen.add((dev, day))
                        F.add_reeng("paying_devices", day, rd, dev, ref=eid)

    known = set(e.get("event_id") for e in raw.events)
    F.skipped["decision_without_event"] += sum(1 for d in raw.installs if d.get("event_id") not in known)
    return F


# ------------------------------------------------------------------ currencies and costs


class Rates:
    """The organization's rates: factor(from, to, day) per the reports' rule."""

    def __init__(self, rows):
        self.rows = rows or []

    def factor(self, frm, to, day):
        """1.0 for the same currency; the direct rate (currency=frm, base=to) or the inverse
        (currency=to, base=frm, 1/rate) with the latest date <= day, the later-dated one winning
        (the direct one on a tie); None without either."""
        if frm == to:
            return 1.0
        direct = inverse = None
        for r in self.rows:
            if r["date"] > day:
                continue
            if r["currency"] == frm and r["base"] == to and (direct is None or r["date"] > direct["date"]):
                direct = r
            if r["currency"] == to and r["base"] == frm and (inverse is None or r["date"] > inverse["date"]):
                inverse = r
        if direct is not None and (inverse is None or direct["date"] >= inverse["date"]):
            return float(direct["rate"])
        if inverse is not None:
            return 1.0 / float(inverse["rate"])
        return None


INT64_MAX = 2**63 - 1


def sat(micros):
    """An amount held inside 64 bits, as the daemon's sums and conversions stop at the bounds."""
    return max(-INT64_MAX - 1, min(INT64_MAX, micros))


def convert(sum_micros, factor):
    """converted_micros = floor(sum_micros * factor + 0.5), in doubles, held inside 64 bits."""
    return sat(int(math.floor(float(sum_micros) * factor + 0.5)))


def cost_facts(raw):
    """Cost rows as (day, dims, currency, micros): site and platform are "" for costs."""
    out = []
    for r in raw.costs or []:
        dims = (r.get("source") or "", r.get("campaign") or "", r.get("adset") or "", r.get("ad") or "", "",
                r.get("country") or "", "")
        m = r["micros"] if isinstance(r.get("micros"), int) else micros(r["cost"])
        out.append((r["date"], dims, r["currency"], m))
    return out


# ------------------------------------------------------------------ step 2: grouping


def parse_group_by(s):
    if isinstance(s, (list, tuple)):
        g = list(s)
    else:
        g = [x for x in (s or "").split(",") if x]
    for x in g:
        if x not in GROUPABLE:
            raise ValueError("cannot group by %r" % x)
    return tuple(g)


def _key(group_by, day, dims):
    vals = dict(zip(DIMS, dims))
    vals["day"] = day
    return tuple(vals[g] for g in group_by)


def _selected(day, dims, filters, from_day, to_day):
    if from_day is not None and day < from_day:
        return False
    if to_day is not None and day > to_day:
        return False
    vals = dict(zip(DIMS, dims))
    for k, want in (filters or {}).items():
        allowed = want if isinstance(want, (set, frozenset, list, tuple)) else {want}
        if vals[k] not in allowed:
            return False
    return True


def _ratio(num, den):
    """num / den of exact integers (Python rounds the exact quotient once, as C's double division
    does for integers below 2**53); None when den is 0."""
    return None if den == 0 else num / den


def _scaled(micros, den):
    return None if den == 0 else micros / den / 1e6


def new_row():
    row = {c: 0 for c in COUNTERS}
    row.update({"events": {}, "events_unique": {}, "revenue_by_currency": {}, "revenue_micros": 0,
                "revenue_unconverted": {}, "cost_by_currency": {}, "cost_micros": 0, "cost_unconverted": {}})
    return row


def overview(F, group_by=(), filters=None, from_day=None, to_day=None, raw=None, currency="USD",
             credit="install"):
    """Step 2 for the overview: {key tuple: row} and the totals row.

    credit: "install" (every fact under the device's install attribution) or "re_engagement" (the
    re-engagement credit's facts, F.reeng; costs are the same).

    group_by: names of GROUPABLE; filters: {dimension: value or set of values}; from_day and
    to_day: local days, both inclusive (None: unbounded). Revenue and cost are converted to
    `currency` per (group, local day, currency) with raw.rates; amounts without a rate stay in
    *_unconverted and out of revenue_micros / cost_micros. Ratios are computed last from the
    row's integers.
    """
    group_by = parse_group_by(group_by)
    rows = {}
    rev = {}   # (key, day, currency) -> micros, converted below
    for f in (F.reeng if credit == "re_engagement" else F.list):
        if f.kind.startswith("cohort_") or not _selected(f.day, f.dims, filters, from_day, to_day):
            continue
        key = _key(group_by, f.day, f.dims)
        row = rows.setdefault(key, new_row())
        if f.kind in COUNTERS:
            row[f.kind] += f.amount
        elif f.kind == "event":
            row["events"][f.name] = row["events"].get(f.name, 0) + 1
        elif f.kind == "event_unique":
            row["events_unique"][f.name] = row["events_unique"].get(f.name, 0) + 1
        elif f.kind == "revenue":
            row["revenue_by_currency"][f.currency] = sat(row["revenue_by_currency"].get(f.currency, 0) + f.amount)
            k = (key, f.day, f.currency)
            rev[k] = sat(rev.get(k, 0) + f.amount)
    cost = {}
    # With credit=re_engagement, only the costs of retargeting campaigns: the (source, campaign) pairs of
    # the re-engagement facts, on any day.
    rt = set(f.dims[:2] for f in F.reeng) if credit == "re_engagement" else None
    for day, dims, cur, m in cost_facts(raw) if raw is not None else []:
        if not _selected(day, dims, filters, from_day, to_day) or (rt is not None and dims[:2] not in rt):
            continue
        key = _key(group_by, day, dims)
        row = rows.setdefault(key, new_row())
        row["cost_by_currency"][cur] = sat(row["cost_by_currency"].get(cur, 0) + m)
        k = (key, day, cur)
        cost[k] = sat(cost.get(k, 0) + m)
    rates = Rates(raw.rates if raw is not None else None)
    for sums, conv, unconv in ((rev, "revenue_micros", "revenue_unconverted"),
                               (cost, "cost_micros", "cost_unconverted")):
        for (key, day, cur), m in sorted(sums.items()):
            fac = rates.factor(cur, currency, day)
            row = rows[key]
            if fac is None:
                row[unconv][cur] = sat(row[unconv].get(cur, 0) + m)
            else:
                row[conv] = sat(row[conv] + convert(m, fac))
    totals = new_row()
    for row in rows.values():
        add_row(totals, row)
    for row in list(rows.values()) + [totals]:
        finish_row(row)
    return rows, totals


def add_row(into, row):
    for c in COUNTERS:
        into[c] += row[c]
    for c in ("revenue_micros", "cost_micros"):
        into[c] = sat(into[c] + row[c])
    for m in ("events", "events_unique"):
        for k, v in row[m].items():
            into[m][k] = into[m].get(k, 0) + v
    for m in ("revenue_by_currency", "revenue_unconverted", "cost_by_currency", "cost_unconverted"):
        for k, v in row[m].items():
            into[m][k] = sat(into[m].get(k, 0) + v)


def finish_row(row):
    """The ratios, from the row's exact integers (amounts in units of the app's currency)."""
    r, c = row["revenue_micros"], row["cost_micros"]
    row["ctr"] = _ratio(row["clicks"], row["impressions"])
    row["conversion_rate"] = _ratio(row["installs"], row["clicks"])
    # Amounts per count: (double)micros / (double)count / 1e6, as docs/reports.md writes them.
    row["arpu"] = _scaled(r, row["active_devices"])
    row["arppu"] = _scaled(r, row["paying_devices"])
    row["cpi"] = _scaled(c, row["installs"])
    row["ecpi"] = _scaled(c, row["installs"] + row["organic_installs"])
    row["roas"] = _ratio(r, c)
    return row


def cohorts(F, group_by=(), filters=None, from_day=None, to_day=None, raw=None, currency="USD"):
    """Step 2 for cohorts: {key: {"size": n, "days": {N: {"active", "sessions", "revenue_by_currency",
    "revenue_micros", "revenue_unconverted"}}}} over cohort (install) days from_day..to_day.
    group_by may name "day" (the cohort day) and any dimension. Revenue is converted per
    (group, N, revenue day, currency): the day of the revenue is cohort day + N."""
    group_by = parse_group_by(group_by)
    out = {}
    rev = {}
    for f in F.list:
        if not f.kind.startswith("cohort_") or not _selected(f.day, f.dims, filters, from_day, to_day):
            continue
        key = _key(group_by, f.day, f.dims)
        c = out.setdefault(key, {"size": 0, "days": {}})
        if f.kind == "cohort_size":
            c["size"] += 1
            continue
        d = c["days"].setdefault(f.n, {"active": 0, "sessions": 0, "revenue_by_currency": {},
                                       "revenue_micros": 0, "revenue_unconverted": {}})
        if f.kind == "cohort_active":
            d["active"] += 1
        elif f.kind == "cohort_sessions":
            d["sessions"] += 1
        elif f.kind == "cohort_revenue":
            d["revenue_by_currency"][f.currency] = d["revenue_by_currency"].get(f.currency, 0) + f.amount
            k = (key, f.n, day_add(f.day, f.n), f.currency)
            rev[k] = sat(rev.get(k, 0) + f.amount)
    rates = Rates(raw.rates if raw is not None else None)
    for (key, n, day, cur), m in sorted(rev.items()):
        d = out[key]["days"][n]
        fac = rates.factor(cur, currency, day)
        if fac is None:
            d["revenue_unconverted"][cur] = sat(d["revenue_unconverted"].get(cur, 0) + m)
        else:
            d["revenue_micros"] = sat(d["revenue_micros"] + convert(m, fac))
    return out


COHORT_METRICS = ("retention", "sessions", "revenue", "cumulative_revenue", "roas")


def cohort_report(F, metric, days, group_by=(), filters=None, from_day=None, to_day=None, today=None, raw=None,
                  currency="USD"):
    """GET /v1/reports/cohorts recounted: {key: {"size", "values": [one per N of days],
    "revenue_unconverted", "cost_unconverted"}} for the cohorts (install days) from_day..to_day.

    A cohort (install day d, dimensions) has reached day N when d + N <= today. For each N the
    value is over the cohorts of the group that reached it (null when none did):
    retention = active devices on day N / their sizes; sessions = sessions on day N;
    revenue = revenue on day N; cumulative_revenue = revenue on days 0..N; roas =
    cumulative_revenue / the cost of their install days (null when 0). Revenue is converted per
    (group, install day, N, currency) at the rate of day d + N, cost per (group, day, currency)
    at the rate of its day; what has no rate is in *_unconverted (revenue: on days 0..max(days)
    that were reached)."""
    group_by = parse_group_by(group_by)
    today = today or max(f.day for f in F.list)
    size, active, sess, rev, cost = {}, {}, {}, {}, {}
    for f in F.list:
        if not f.kind.startswith("cohort_") or not _selected(f.day, f.dims, filters, from_day, to_day):
            continue
        key = _key(group_by, f.day, f.dims)
        if f.kind == "cohort_size":
            size[(key, f.day)] = size.get((key, f.day), 0) + 1
        elif f.kind == "cohort_active":
            active[(key, f.day, f.n)] = active.get((key, f.day, f.n), 0) + 1
        elif f.kind == "cohort_sessions":
            sess[(key, f.day, f.n)] = sess.get((key, f.day, f.n), 0) + 1
        elif f.kind == "cohort_revenue":
            k = (key, f.day, f.n, f.currency)
            rev[k] = sat(rev.get(k, 0) + f.amount)
    if metric == "roas":
        for day, dims, cur, m in cost_facts(raw) if raw is not None else []:
            if _selected(day, dims, filters, from_day, to_day):
                k = (_key(group_by, day, dims), day, cur)
                cost[k] = sat(cost.get(k, 0) + m)
    rates = Rates(raw.rates if raw is not None else None)
    maxn = max(days)

    def reached(d, n):
        return day_add(d, n) <= today

    keys = set(k for k, _ in size) | set(k for k, _, _ in active) | set(k for k, _, _, _ in rev) | \
        set(k for k, _, _ in cost)
    out = {}
    for key in keys:
        row = {"size": sum(v for (k, _), v in size.items() if k == key), "values": [],
               "revenue_unconverted": {}, "cost_unconverted": {}}
        conv_rev = {}
        if metric in ("revenue", "cumulative_revenue", "roas"):
            for (k, d, n, cur), m in sorted(rev.items()):
                if k != key or m == 0 or n > maxn or not reached(d, n):
                    continue
                fac = rates.factor(cur, currency, day_add(d, n))
                if fac is None:
                    row["revenue_unconverted"][cur] = sat(row["revenue_unconverted"].get(cur, 0) + m)
                else:
                    conv_rev[(d, n)] = sat(conv_rev.get((d, n), 0) + convert(m, fac))
        conv_cost = {}
        for (k, d, cur), m in sorted(cost.items()):
            if k != key or m == 0:
                continue
            fac = rates.factor(cur, currency, d)
            if fac is None:
                row["cost_unconverted"][cur] = sat(row["cost_unconverted"].get(cur, 0) + m)
            else:
                conv_cost[d] = sat(conv_cost.get(d, 0) + convert(m, fac))
        for N in days:
            cells = [d for (k, d) in size if k == key and reached(d, N)]
            if not cells:
                row["values"].append(None)
                continue
            if metric == "retention":
                den = sum(size[(key, d)] for d in cells)
                num = sum(active.get((key, d, N), 0) for d in cells)
                row["values"].append(None if den == 0 else num / den)
            elif metric == "sessions":
                row["values"].append(sum(sess.get((key, d, N), 0) for d in cells))
            elif metric == "revenue":
                row["values"].append(sat(sum(v for (d, n), v in conv_rev.items() if n == N)))
            else:
                num = sat(sum(v for (d, n), v in conv_rev.items() if n <= N and reached(d, N)))
                if metric == "cumulative_revenue":
                    row["values"].append(num)
                else:
                    den = sum(v for d, v in conv_cost.items() if reached(d, N))
                    row["values"].append(None if den == 0 else num / den)
        out[key] = row
    return out


ACTIVITY_INTERVALS = ("day", "week", "month")


def _period_start(interval, day):
    """The first day of the ISO week (Monday) or calendar month of a local day."""
    d = datetime.date.fromisoformat(day)
    if interval == "week":
        return (d - datetime.timedelta(days=d.weekday())).isoformat()
    if interval == "month":
        return d.replace(day=1).isoformat()
    return day


def _period_next(interval, start):
    d = datetime.date.fromisoformat(start)
    if interval == "week":
        return (d + datetime.timedelta(days=7)).isoformat()
    if interval == "month":
        return (d.replace(year=d.year + 1, month=1) if d.month == 12 else d.replace(month=d.month + 1)).isoformat()
    return day_add(start, 1)


def activity_days(F):
    """{device: set of local days it was active}: a day with any install, session, in-app event or
    purchase of the device (the active_devices facts, one per device and day)."""
    days = {}
    for f in F.list:
        if f.kind == "active_devices":
            days.setdefault(f.device, set()).add(f.day)
    return days


def activity(F, interval, from_day, to_day, today):
    """GET /v1/reports/activity recounted by brute force: the rows, as the daemon writes them.

    From every device's set of active days: per local day D of from_day..min(to_day, today),
    dau = devices active on D, wau / mau = devices active on any of the 7 / 30 days ending on D,
    stickiness = dau / mau (None when mau is 0), new = devices whose earliest active day is D,
    returning = dau - new. Per ISO week (Monday) or calendar month intersecting
    from_day..min(to_day, today): active = devices active on any day of the whole period,
    avg_dau = the sum of the DAU of the period's days up to today / the number of those days,
    stickiness = avg_dau / active (None when active is 0), new = devices whose earliest active
    day is in the period, returning = active - new."""
    days = activity_days(F)
    first = {dev: min(ds) for dev, ds in days.items()}

    def active(lo, hi):
        return sum(1 for ds in days.values() if any(lo <= d <= hi for d in ds))

    def new(lo, hi):
        return sum(1 for f in first.values() if lo <= f <= hi)

    end = min(to_day, today)
    rows = []
    if interval == "day":
        d = from_day
        while d <= end:
            dau, mau = active(d, d), active(day_add(d, -29), d)
            n = new(d, d)
            rows.append({"day": d, "dau": dau, "wau": active(day_add(d, -6), d), "mau": mau,
                         "stickiness": _ratio(dau, mau), "new": n, "returning": dau - n})
            d = day_add(d, 1)
        return rows
    ps = _period_start(interval, from_day)
    while ps <= end:
        nxt = _period_next(interval, ps)
        last = min(day_add(nxt, -1), today)
        a, n = active(ps, day_add(nxt, -1)), new(ps, day_add(nxt, -1))
        total, count, d = 0, 0, ps
        while d <= last:
            total += active(d, d)
            count += 1
            d = day_add(d, 1)
        avg = total / count
        rows.append({interval: ps, "active": a, "avg_dau": avg, "stickiness": None if a == 0 else avg / a,
                     "new": n, "returning": a - n})
        ps = nxt
    return rows


# ------------------------------------------------------------------ reading the daemon's answers


def amount_micros(v):
    """A printed amount (a JSON number or string, "12.5" or 12.5) as exact micros; None for null.
    JSON numbers are read from their text, never through a float."""
    if v is None:
        return None
    if isinstance(v, int) and not isinstance(v, bool):
        return v * 1_000_000
    s = v if isinstance(v, str) else repr(v)
    m = re.match(r"^(-?)(\d+)(?:\.(\d{0,6}))?$", s)
    if not m:
        raise ValueError("amount %r is not exact to the micro-unit" % (v,))
    sign, whole, frac = m.groups()
    val = int(whole) * 1_000_000 + int((frac or "").ljust(6, "0"))
    return -val if sign else val


def loads_exact(data):
    """JSON with every non-integer number kept as its text (a str), so amounts compare exactly."""
    if isinstance(data, bytes):
        data = data.decode("utf-8")
    return json.loads(data, parse_float=lambda s: _Num(s))


class _Num(str):
    """A JSON number's text: str for exact amounts, float() for ratios."""

    def __float__(self):
        return float(str(self))


def rel_close(a, b, tol=1e-12):
    if a is None or b is None:
        return a is None and b is None
    a, b = float(a), float(b)
    if a == b:
        return True
    return abs(a - b) <= tol * max(abs(a), abs(b))


# ------------------------------------------------------------------ self-checks


def check_consistency(F, raw=None, group_bys=(("day",), ("source",), DIMS, GROUPABLE, ()), currency="USD"):
    """Internal checks of the recount itself: for every grouping, the totals equal the sum of
    the rows and the totals of the empty grouping; every unique count is at most its count;
    unique counts per day never exceed the devices. Returns a list of problems (empty: fine)."""
    problems = []
    _, ref = overview(F, (), raw=raw, currency=currency)
    for gb in group_bys:
        rows, totals = overview(F, gb, raw=raw, currency=currency)
        s = new_row()
        for r in rows.values():
            add_row(s, r)
        for c in COUNTERS + ("revenue_by_currency", "events", "events_unique", "cost_by_currency"):
            if s[c] != totals[c] or totals[c] != ref[c]:
                problems.append("group_by %s: %s rows %r, totals %r, ungrouped %r" % (gb, c, s[c], totals[c], ref[c]))
        for key, r in rows.items():
            for name, n in r["events_unique"].items():
                if n > r["events"].get(name, 0):
                    problems.append("group_by %s %r: event_unique:%s %d > events %d" % (gb, key, name, n,
                                                                                       r["events"].get(name, 0)))
    # A device paying on a day was active that day. (Not per row of day and attribution: a device
    # reattributed during a day is active under the attribution of its first event that day, and
    # pays under the one that stands when it pays.)
    seen = set()
    for f in F.list:
        if f.kind == "active_devices":
            if (f.device, f.day) in seen:
                problems.append("day %s: device %s counted active twice" % (f.day, f.device))
            seen.add((f.device, f.day))
    for f in F.list:
        if f.kind == "paying_devices" and (f.device, f.day) not in seen:
            problems.append("day %s: device %s paying but not active" % (f.day, f.device))
    return problems


# ------------------------------------------------------------------ command line


def _json_key(group_by, key):
    return dict(zip(group_by, key))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--addr", help="HOST:PORT of the daemon")
    ap.add_argument("--app", help="the app id")
    ap.add_argument("--secret", help="the app secret (X-App-Secret)")
    ap.add_argument("--bearer", help="a Bearer token (to read the app's settings)")
    ap.add_argument("--load", help="read raw exports saved by `dump` instead of a daemon")
    ap.add_argument("--tz", help="the app's reporting time zone (default: the app's settings, else UTC)")
    ap.add_argument("--platform", help="the app's platform, for devices whose events name none")
    ap.add_argument("--currency", default="USD", help="the app's currency (default USD)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("overview", "cohorts"):
        p = sub.add_parser(name)
        p.add_argument("--group-by", default="")
        p.add_argument("--filter", action="append", default=[], help="DIM=VALUE (repeatable)")
        p.add_argument("--from", dest="from_day")
        p.add_argument("--to", dest="to_day")
    p = sub.add_parser("activity")
    p.add_argument("--interval", choices=ACTIVITY_INTERVALS, default="day")
    p.add_argument("--from", dest="from_day", required=True)
    p.add_argument("--to", dest="to_day", required=True)
    p.add_argument("--today", help="the app's local today (default: now in --tz)")
    sub.add_parser("facts")
    sub.add_parser("check")
    d = sub.add_parser("dump")
    d.add_argument("dir")
    a = ap.parse_args(argv)
    if a.load:
        raw = Raw.load(a.load)
    else:
        if not (a.addr and a.app and a.secret):
            ap.error("--addr, --app and --secret are needed (or --load DIR)")
        raw = fetch(Client(a.addr, a.secret, a.bearer), a.app)
    if a.cmd == "dump":
        raw.save(a.dir)
        return 0
    F = facts(raw, a.tz, a.platform)
    if a.cmd == "facts":
        for f in F.list:
            print(json.dumps(f.as_dict(), sort_keys=True))
        return 0
    if a.cmd == "activity":
        today = a.today or local_day(int(datetime.datetime.now().timestamp() * 1e6), zoneinfo.ZoneInfo(F.tz))
        json.dump({"rows": activity(F, a.interval, a.from_day, a.to_day, today)}, sys.stdout, indent=1)
        print()
        return 0
    if a.cmd == "check":
        problems = check_consistency(F, raw, currency=a.currency)
        print(json.dumps({"facts": len(F.list), "skipped": F.skipped, "problems": problems}, indent=1))
        return 1 if problems else 0
    filters = {}
    for f in a.filter:
        k, _, v = f.partition("=")
        filters.setdefault(k, set()).add(v)
    gb = parse_group_by(a.group_by)
    if a.cmd == "overview":
        rows, totals = overview(F, gb, filters, a.from_day, a.to_day, raw, a.currency)
        out = {"rows": [dict(_json_key(gb, k), **v) for k, v in sorted(rows.items())], "totals": totals}
    else:
        cs = cohorts(F, gb, filters, a.from_day, a.to_day, raw, a.currency)
        out = {"cohorts": [dict(_json_key(gb, k), size=v["size"],
                                days={str(n): x for n, x in sorted(v["days"].items())})
                           for k, v in sorted(cs.items())]}
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
