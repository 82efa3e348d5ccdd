#!/usr/bin/env python3
"""fraud_eval.py - recall and precision of the daemon's fraud decisions against gen's labels.

`unmogrowp gen --fraud PCT --fraud-labels L.csv` writes one label per install and click it
sends (docs/gen.md, "Labels"). This tool joins those labels with what the daemon decided,
as its exports give it:

- GET /v1/export/installs (JSON lines): per install decision, `fraud` ({"status":
  "rejected"|"flagged", "reason": RULE, "rules": [...], "score": x}, absent or null when
  clean), `rejected_touches` ([{"touch_id": N, "click_id": "...", "reason": RULE}], the
  candidate clicks rejected at decision time) and `attribution` (null when organic, else the
  winning touch with its `source` and `click_id`);
- GET /v1/export/touches (JSON lines): per touch, `click_id` and `fraud` as above;
- optionally gen's summary line (--spoof-counts): how many spoofed installs the daemon
  refused with 401, which therefore are in no export.

What counts as caught (with the expected reason, or with another one):

- a click: the touch's `fraud` names the rule (`reason` or in `rules`), or an install's
  `rejected_touches` names its click_id with it;
- an install: its decision's `fraud` names the rule, or its `rejected_touches` name the
  click that claims it (the label's claim_click_id) with it, or that click was caught with
  it and the install is not credited to it (attribution falls to another touch or organic);
- injection, also: the install must not be credited to the injected click or its source
  (fraudnet) - the victim is a real organic user, so a rejected *install* is reported
  apart (`victims_rejected`);
- spoof: the install is refused with 401 (absent from the export, and gen counted the
  refusals: --spoof-counts) or its decision names sdk_spoofing.

Recall is computed per fraud_type over the labelled items with label 1 and detectable 1
(rows with detectable 0 are context: no rule with its default thresholds can see them
when they arrive - the first installs of a farm, the first clicks of a burst, the flood's
spray clicks, which click_flooding judges by source and site). An honest install is
"touched" when its decision has `fraud` or any rejected touch; precision is the share of
labelled items among everything marked (installs; clicks apart).

    fraud_eval.py --labels L.csv --installs installs.jsonl --touches touches.jsonl \\
        [--spoof-counts gen-summary.json] [--json] \\
        [--min-recall 0.95] [--max-honest-touched 0.01] [--min-precision 0.98]

Exit status 0, or 1 when a --min-*/--max-* target is missed, 2 for bad input.
Only the Python standard library is used.
"""

import argparse
import csv
import json
import sys

KINDS = ("injection", "flood", "datacenter", "bot", "farm", "spoof")
LABEL_COLUMNS = ("kind", "id", "label", "fraud_type", "expected_reason")
INJECTION_SOURCE = "fraudnet"


class InputError(Exception):
    pass


# ------------------------------------------------------------------ reading


def load_labels(path):
    """The label rows as dicts (columns of docs/gen.md; at least LABEL_COLUMNS)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and not all(c in rows[0] for c in LABEL_COLUMNS):
        raise InputError("%s: the header must have %s" % (path, ",".join(LABEL_COLUMNS)))
    for i, r in enumerate(rows):
        if r["kind"] not in ("install", "click") or r["label"] not in ("0", "1"):
            raise InputError("%s line %d: kind %r label %r" % (path, i + 2, r["kind"], r["label"]))
    return rows


def load_jsonl(path):
    out = []
    with open(path) as f:
        for i, line in enumerate(f):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except ValueError as e:
                    raise InputError("%s line %d: %s" % (path, i + 1, e))
    return out


def load_spoof_counts(path):
    """{"sent": n, "accepted": n, "refused": {fault: n}} from gen's summary (the whole line,
    or its "fraud" or "spoof" object)."""
    with open(path) as f:
        text = f.read().strip()
    try:
        obj = json.loads(text.splitlines()[-1] if text else "{}")
    except ValueError as e:
        raise InputError("%s: %s" % (path, e))
    obj = obj.get("fraud", obj)
    obj = obj.get("spoof", obj)
    if not isinstance(obj.get("refused"), dict):
        raise InputError("%s: no spoof counts (\"refused\") in %r" % (path, obj))
    return obj


# ------------------------------------------------------------------ joining


def marks(fraud):
    """The rules a `fraud` object names (empty when clean)."""
    if not isinstance(fraud, dict) or not fraud.get("status"):
        return set()
    out = set(fraud.get("rules") or [])
    if fraud.get("reason"):
        out.add(fraud["reason"])
    return out


class Decisions:
    """The exports indexed: touches by click_id, installs by event_id, rejected clicks."""

    def __init__(self, installs, touches):
        self.touch = {}        # click_id -> set of rules
        self.rejected = {}     # click_id -> set of rules named in some rejected_touches
        self.install = {}      # event_id -> decision line
        for t in touches:
            cid = t.get("click_id")
            if cid:
                self.touch.setdefault(cid, set()).update(marks(t.get("fraud")))
        for d in installs:
            eid = d.get("event_id")
            if eid is None:
                continue
            # Re-engagements are sessions; an install's own decision wins over anything later.
            if eid not in self.install or self.install[eid].get("outcome") == "reengagement":
                self.install[eid] = d
            for rt in d.get("rejected_touches") or []:
                if rt.get("click_id"):
                    self.rejected.setdefault(rt["click_id"], set()).add(rt.get("reason") or "")

    def click_marks(self, cid):
        return self.touch.get(cid, set()) | self.rejected.get(cid, set())

    def install_marks(self, d):
        """Rules on the install itself, and rules its rejected touches name: (own, by click_id)."""
        own = marks(d.get("fraud"))
        by_click = {}
        for rt in d.get("rejected_touches") or []:
            by_click.setdefault(rt.get("click_id") or "", set()).add(rt.get("reason") or "")
        return own, by_click


def credited_to(d, claim, source):
    a = d.get("attribution")
    if not isinstance(a, dict):
        return False
    return (claim and a.get("click_id") == claim) or (source and a.get("source") == source)


def judge_install(row, dec, spoof_refused_left):
    """'expected', 'other', 'missed' or 'refused' (spoof, absent and counted by gen), and notes."""
    expected, claim = row["expected_reason"], row.get("claim_click_id") or ""
    source = row.get("source") or ""
    d = dec.install.get(row["id"])
    if d is None:
        if row["fraud_type"] == "spoof" and spoof_refused_left[0] > 0:
            spoof_refused_left[0] -= 1
            return "refused", ()
        return "missed", ("not_exported",)
    own, by_click = dec.install_marks(d)
    claim_marks = by_click.get(claim, set()) | (dec.click_marks(claim) if claim else set())
    credited = credited_to(d, claim, source)
    notes = []
    if row["fraud_type"] == "injection":
        if own and (d.get("fraud") or {}).get("status") == "rejected":
            notes.append("victim_rejected")
        if expected in claim_marks and not credited:
            return "expected", notes
        if claim_marks or own:
            return "other", notes
        return "missed", notes
    if expected in own or expected in by_click.get(claim, set()) or (expected in claim_marks and not credited):
        return "expected", notes
    if own or claim_marks:
        return "other", notes
    return "missed", notes


def judge_click(row, dec):
    m = dec.click_marks(row["id"])
    if row["expected_reason"] in m:
        return "expected"
    return "other" if m else "missed"


def new_bucket():
    return {"items": 0, "expected": 0, "other": 0, "missed": 0, "refused": 0, "context": 0,
            "context_marked": 0, "recall": None}


def evaluate(labels, installs, touches, spoof=None):
    """The whole evaluation as a dict (what --json prints)."""
    dec = Decisions(installs, touches)
    refused_total = sum((spoof or {}).get("refused", {}).values()) if spoof else 0
    left = [refused_total]
    by = {}  # (fraud_type, kind) -> bucket
    honest = {"installs": 0, "touched": 0, "rejected": 0, "flagged": 0, "with_rejected_touch": 0,
              "not_exported": 0, "by_rule": {}}
    honest_clicks = {"clicks": 0, "touched": 0, "by_rule": {}}
    victims_rejected = 0
    tp = {"install": 0, "click": 0}
    fp = {"install": 0, "click": 0}
    # Spoofed installs refused are in no export: judge the absent ones after the present ones.
    order = sorted(labels, key=lambda r: (r["fraud_type"] == "spoof" and r["id"] not in dec.install,))
    for r in order:
        kind, ft = r["kind"], r["fraud_type"]
        if r["label"] == "0":
            if kind == "install":
                honest["installs"] += 1
                d = dec.install.get(r["id"])
                if d is None:
                    honest["not_exported"] += 1
                    continue
                own, by_click = dec.install_marks(d)
                status = (d.get("fraud") or {}).get("status") if isinstance(d.get("fraud"), dict) else None
                rules = set(own)
                for v in by_click.values():
                    rules |= v
                if rules or status:
                    honest["touched"] += 1
                    fp["install"] += 1
                    honest["rejected"] += status == "rejected"
                    honest["flagged"] += status == "flagged"
                    honest["with_rejected_touch"] += bool(by_click)
                    for rule in sorted(rules):
                        honest["by_rule"][rule] = honest["by_rule"].get(rule, 0) + 1
            else:
                honest_clicks["clicks"] += 1
                m = dec.click_marks(r["id"])
                if m:
                    honest_clicks["touched"] += 1
                    fp["click"] += 1
                    for rule in sorted(m):
                        honest_clicks["by_rule"][rule] = honest_clicks["by_rule"].get(rule, 0) + 1
            continue
        b = by.setdefault((ft, kind), new_bucket())
        if r.get("detectable", "1") == "0":
            b["context"] += 1
            m = dec.click_marks(r["id"]) if kind == "click" else \
                (marks(dec.install[r["id"]].get("fraud")) if r["id"] in dec.install else set())
            b["context_marked"] += bool(m)
            tp[kind] += bool(m)
            continue
        b["items"] += 1
        if kind == "install":
            verdict, notes = judge_install(r, dec, left)
            victims_rejected += "victim_rejected" in notes
        else:
            verdict = judge_click(r, dec)
        b[verdict] += 1
        tp[kind] += verdict in ("expected", "other", "refused")
    total = new_bucket()
    per_type = {}
    for (ft, kind), b in sorted(by.items()):
        caught = b["expected"] + b["refused"]
        b["recall"] = caught / b["items"] if b["items"] else None
        t = per_type.setdefault(ft, new_bucket())
        for k in ("items", "expected", "other", "missed", "refused", "context", "context_marked"):
            t[k] += b[k]
            total[k] += b[k]
    for t in list(per_type.values()) + [total]:
        t["recall"] = (t["expected"] + t["refused"]) / t["items"] if t["items"] else None
    honest["touched_share"] = honest["touched"] / honest["installs"] if honest["installs"] else 0.0
    precision = {k: (tp[k] / (tp[k] + fp[k]) if tp[k] + fp[k] else None) for k in tp}
    out = {
        "by_kind": [dict(fraud_type=ft, kind=kind, **b) for (ft, kind), b in sorted(by.items())],
        "by_type": {ft: per_type[ft] for ft in KINDS if ft in per_type},
        "total": total,
        "honest_installs": honest,
        "honest_clicks": honest_clicks,
        "victims_rejected": victims_rejected,
        "precision": precision,
    }
    if spoof is not None:
        out["spoof"] = {"refused_by_gen_count": refused_total, "refused_matched": refused_total - left[0],
                        "refused_unmatched": left[0], "counts": spoof}
    return out


# ------------------------------------------------------------------ output


def fmt_ratio(x):
    return "-" if x is None else "%.4f" % x


def format_text(res):
    lines = ["%-11s %-8s %7s %9s %6s %7s %8s %7s   %s" % (
        "fraud_type", "kind", "items", "expected", "other", "missed", "refused", "recall", "context (marked)")]
    for b in res["by_kind"]:
        lines.append("%-11s %-8s %7d %9d %6d %7d %8d %7s   %d (%d)" % (
            b["fraud_type"], b["kind"], b["items"], b["expected"], b["other"], b["missed"], b["refused"],
            fmt_ratio(b["recall"]), b["context"], b["context_marked"]))
    for ft, t in res["by_type"].items():
        lines.append("%-11s %-8s %7d %9d %6d %7d %8d %7s" % (
            ft, "(all)", t["items"], t["expected"], t["other"], t["missed"], t["refused"], fmt_ratio(t["recall"])))
    t = res["total"]
    lines.append("detectable fraud: %d items, recall %s (%d caught with another reason, %d missed)" % (
        t["items"], fmt_ratio(t["recall"]), t["other"], t["missed"]))
    h = res["honest_installs"]
    lines.append("honest installs: %d, touched %d (%.2f%%): %d rejected, %d flagged, %d with a rejected touch; "
                 "by rule %s; %d not exported" % (
                     h["installs"], h["touched"], 100.0 * h["touched_share"], h["rejected"], h["flagged"],
                     h["with_rejected_touch"], json.dumps(h["by_rule"], sort_keys=True), h["not_exported"]))
    c = res["honest_clicks"]
    lines.append("honest clicks: %d, touched %d; by rule %s" % (c["clicks"], c["touched"],
                                                                json.dumps(c["by_rule"], sort_keys=True)))
    lines.append("precision: installs %s, clicks %s" % (fmt_ratio(res["precision"]["install"]),
                                                        fmt_ratio(res["precision"]["click"])))
    if res["victims_rejected"]:
        lines.append("injection victims whose install was rejected (they are real users): %d" %
                     res["victims_rejected"])
    if "spoof" in res:
        s = res["spoof"]
        lines.append("spoof: gen counted %d refused (401); %d matched absent spoofed installs, %d not" % (
            s["refused_by_gen_count"], s["refused_matched"], s["refused_unmatched"]))
    return "\n".join(lines)


def check(res, min_recall=None, max_honest_touched=None, min_precision=None):
    """The targets missed, as sentences."""
    problems = []
    if min_recall is not None:
        for ft, t in res["by_type"].items():
            if t["items"] and t["recall"] < min_recall:
                problems.append("recall of %s %.4f < %.4f" % (ft, t["recall"], min_recall))
        if res["total"]["items"] == 0:
            problems.append("no detectable fraud in the labels")
    if max_honest_touched is not None and res["honest_installs"]["touched_share"] > max_honest_touched:
        problems.append("honest installs touched %.4f > %.4f" % (res["honest_installs"]["touched_share"],
                                                                 max_honest_touched))
    if min_precision is not None:
        p = res["precision"]["install"]
        if p is None or p < min_precision:
            problems.append("install precision %s < %.4f" % (fmt_ratio(p), min_precision))
    return problems


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--labels", required=True, help="gen --fraud-labels CSV")
    ap.add_argument("--installs", required=True, help="GET /v1/export/installs output (JSON lines)")
    ap.add_argument("--touches", required=True, help="GET /v1/export/touches output (JSON lines)")
    ap.add_argument("--spoof-counts", help="gen's summary line (JSON): spoofed installs refused with 401")
    ap.add_argument("--json", action="store_true", help="print the evaluation as one JSON object")
    ap.add_argument("--min-recall", type=float, help="fail when a fraud type's recall is lower")
    ap.add_argument("--max-honest-touched", type=float, help="fail when a larger share of honest installs is touched")
    ap.add_argument("--min-precision", type=float, help="fail when install precision is lower")
    a = ap.parse_args(argv)
    try:
        res = evaluate(load_labels(a.labels), load_jsonl(a.installs), load_jsonl(a.touches),
                       load_spoof_counts(a.spoof_counts) if a.spoof_counts else None)
    except (OSError, InputError) as e:
        print("fraud_eval: %s" % e, file=sys.stderr)
        return 2
    problems = check(res, a.min_recall, a.max_honest_touched, a.min_precision)
    res["problems"] = problems
    print(json.dumps(res, sort_keys=True) if a.json else format_text(res))
    for p in problems:
        print("fraud_eval: target missed: %s" % p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
