"""Crash recovery: kill -9 the daemon in the middle of concurrent ingest, restart it, and
check that every acknowledged event is stored exactly once, nothing is stored twice, and
every retry of an acknowledged batch is answered as duplicates.

With log.fsync=always a 2xx means the events are durable. Eight client threads send
batches of 50 events with client-generated event_ids (and now and then resend a batch
that was already acknowledged); after about two seconds the daemon is killed. Requests
that got no answer are "in doubt": their events may or may not be stored, but never twice.
Two rounds: load, kill, restart, verify, resend; then again.
"""

import collections
import http.client
import json
import os
import random
import threading
import time
import unittest

from harness import DaemonTestCase, event

THREADS = 8
BATCH = 50
LOAD_SECONDS = float(os.environ.get("UMG_CRASH_SECONDS", "2.0"))
ROUNDS = 2
RETRY_SHARE = 0.15


class Ledger:
    """What the clients know, shared by the threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = []       # batches (lists of event dicts) answered 2xx
        self.in_doubt = []    # batches sent without an answer (or answered 503/429)
        self.problems = []    # protocol violations seen by the clients
        self.requests = 0
        self.retries = 0

    def acked_ids(self):
        return {e["event_id"] for b in self.acked for e in b}

    def doubt_ids(self):
        return {e["event_id"] for b in self.in_doubt for e in b}


def post(conn, key, batch):
    conn.request("POST", "/v1/events", json.dumps({"events": batch}).encode(),
                 {"X-App-Key": key, "Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, r.read()


class CrashTest(DaemonTestCase):

    def test_kill9_mid_ingest(self):
        t_start = time.monotonic()
        d = self.daemon(start=False, extra_args=["--set", "log.fsync=always"])
        app = d.create_app("acme", "crash", "android")
        d.start()
        d.close_conn()
        led = Ledger()
        self.doubt_total = 0
        for rnd in range(1, ROUNDS + 1):
            self.load_until_killed(d, app, led, rnd)
            if led.problems:
                self.fail("round %d: %d client-side violations, first ones:\n%s" % (
                    rnd, len(led.problems), "\n".join(led.problems[:10])))
            self.assertTrue(led.acked, "round %d: no batch acknowledged before the kill\n%s" %
                            (rnd, d.log_tail()))
            d.start()
            d.close_conn()
            self.verify(d, app, led, "round %d after restart" % rnd)
            self.resend_acked(d, app, led, rnd)
            self.resolve_in_doubt(d, app, led, rnd)
        elapsed = time.monotonic() - t_start
        print("[%d requests, %d retries, %d events acked, %d batches in doubt, %.1f s]" % (
            led.requests, led.retries, len(led.acked_ids()), self.doubt_total, elapsed),
            end=" ")

    # ------------------------------------------------------------ phases

    def load_until_killed(self, d, app, led, rnd):
        stop = threading.Event()

        def client(seed):
            rng = random.Random(seed)
            conn = http.client.HTTPConnection(d.host, d.port, timeout=15)
            try:
                while not stop.is_set():
                    retry = False
                    with led.lock:
                        if led.acked and rng.random() < RETRY_SHARE:
                            batch, retry = rng.choice(led.acked), True
                    if not retry:
                        batch = [event() for _ in range(BATCH)]
                    try:
                        status, data = post(conn, app["app_key"], batch)
                    except (OSError, http.client.HTTPException):
                        if not retry:
                            with led.lock:
                                led.in_doubt.append(batch)
                        return
                    with led.lock:
                        led.requests += 1
                        led.retries += retry
                    if status in (429, 503):
                        if not retry:
                            with led.lock:
                                led.in_doubt.append(batch)
                        time.sleep(0.05)
                        continue
                    if status != 202:
                        with led.lock:
                            led.problems.append("HTTP %d %r" % (status, data[:200]))
                        return
                    obj = json.loads(data)
                    want = {"accepted": 0, "duplicates": BATCH, "rejected": []} if retry else \
                        {"accepted": BATCH, "duplicates": 0, "rejected": []}
                    with led.lock:
                        if obj != want:
                            led.problems.append("%s answered %r, want %r" % (
                                "retry" if retry else "new batch", obj, want))
                        if not retry:
                            led.acked.append(batch)
            finally:
                conn.close()

        threads = [threading.Thread(target=client, args=(rnd * 100 + i,), daemon=True)
                   for i in range(THREADS)]
        for t in threads:
            t.start()
        time.sleep(LOAD_SECONDS)
        d.kill9()
        stop.set()
        for t in threads:
            t.join(30)
            self.assertFalse(t.is_alive(), "client thread hung after kill -9")

    def export_counts(self, d, app):
        conn = http.client.HTTPConnection(d.host, d.port, timeout=120)
        try:
            conn.request("GET", "/v1/export/events?app=" + app["app_id"],
                         headers={"X-App-Secret": app["app_secret"]})
            r = conn.getresponse()
            data = r.read()
        finally:
            conn.close()
        self.assertEqual(r.status, 200, data[:300])
        counts = collections.Counter()
        for line in data.split(b"\n"):
            if line.strip():
                obj = json.loads(line)
                counts[obj["event_id"]] += 1
                if obj.get("app_id") != app["app_id"]:
                    self.fail("exported event of another app: %r" % obj)
        return counts

    def verify(self, d, app, led, when):
        counts = self.export_counts(d, app)
        acked, doubt = led.acked_ids(), led.doubt_ids()
        twice = [i for i, c in counts.items() if c > 1]
        missing = acked - set(counts)
        invented = set(counts) - acked - doubt
        if twice:
            self.fail("%s: %d event ids exported more than once, e.g. %s" % (
                when, len(twice), twice[:3]))
        if missing:
            self.fail("%s: %d of %d acknowledged events lost, e.g. %s\n%s" % (
                when, len(missing), len(acked), sorted(missing)[:3], d.log_tail(20)))
        if invented:
            self.fail("%s: %d exported ids were never sent, e.g. %s" % (
                when, len(invented), sorted(invented)[:3]))
        return counts

    def parallel(self, d, app, batches, check):
        """Sends batches from THREADS threads; check(batch, obj) returns a problem or None."""
        problems = []
        lock = threading.Lock()
        it = iter(list(batches))

        def worker():
            conn = http.client.HTTPConnection(d.host, d.port, timeout=30)
            try:
                while True:
                    with lock:
                        batch = next(it, None)
                    if batch is None:
                        return
                    for attempt in range(20):
                        status, data = post(conn, app["app_key"], batch)
                        if status not in (429, 503):
                            break
                        time.sleep(0.1)
                    if status != 202:
                        msg = "HTTP %d %r" % (status, data[:200])
                    else:
                        msg = check(batch, json.loads(data))
                    if msg:
                        with lock:
                            problems.append(msg)
            except (OSError, http.client.HTTPException) as e:
                with lock:
                    problems.append("connection error %r" % e)
            finally:
                conn.close()

        threads = [threading.Thread(target=worker, daemon=True) for _ in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        return problems

    def resend_acked(self, d, app, led, rnd):
        before = sum(self.export_counts(d, app).values())
        want = {"accepted": 0, "duplicates": BATCH, "rejected": []}
        problems = self.parallel(d, app, led.acked,
                                 lambda b, obj: None if obj == want else
                                 "resend answered %r, want %r" % (obj, want))
        if problems:
            self.fail("round %d: resending %d acknowledged batches: %d wrong answers, e.g.\n%s"
                      % (rnd, len(led.acked), len(problems), "\n".join(problems[:5])))
        after = sum(self.export_counts(d, app).values())
        self.assertEqual(after, before, "round %d: export count changed by resending "
                         "acknowledged batches" % rnd)

    def resolve_in_doubt(self, d, app, led, rnd):
        """Resends in-doubt batches: each event is new or a duplicate, and afterwards every
        event of every batch is stored exactly once."""
        self.doubt_total += len(led.in_doubt)
        if not led.in_doubt:
            return
        before = sum(self.export_counts(d, app).values())
        accepted = []

        def check(batch, obj):
            if obj.get("rejected") or obj.get("accepted", 0) + obj.get("duplicates", 0) != BATCH:
                return "in-doubt resend answered %r" % obj
            accepted.append(obj["accepted"])
            return None

        problems = self.parallel(d, app, led.in_doubt, check)
        if problems:
            self.fail("round %d: resending %d in-doubt batches: %d wrong answers, e.g.\n%s" % (
                rnd, len(led.in_doubt), len(problems), "\n".join(problems[:5])))
        led.acked += led.in_doubt
        led.in_doubt = []
        counts = self.verify(d, app, led, "round %d after resending in-doubt batches" % rnd)
        self.assertEqual(sum(counts.values()), before + sum(accepted),
                         "export grew by a different number than the accepted count")
        if set(counts) != led.acked_ids():
            self.fail("exported ids differ from the ids sent (%d vs %d)" % (
                len(counts), len(led.acked_ids())))


if __name__ == "__main__":
    unittest.main()
