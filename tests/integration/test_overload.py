"""The log writer falling behind: with log.queue_bytes at its 1 MiB minimum, large
concurrent batches overflow the queue. The overflow is answered 503 overloaded with
Retry-After, nothing of a refused request is stored, everything acknowledged is, and
a retry of the refused requests goes through."""

import json
import threading

from harness import DaemonTestCase, event


class OverloadTest(DaemonTestCase):

    def test_queue_overflow_is_refused_cleanly(self):
        d = self.daemon(start=False, extra_args=["--set", "log.queue_bytes=1m"])
        app = d.create_app("acme", "app", "android")
        d.start()
        acked, refused, errors = [], [], []
        lock = threading.Lock()

        def send(batch):
            # One connection per thread: the harness's keep-alive connection is not shared.
            try:
                c = d.new_connection()
                c.request("POST", "/v1/events", body=json.dumps({"events": batch}).encode(),
                          headers={"X-App-Key": app["app_key"], "Content-Type": "application/json"})
                r = c.getresponse()
                st, h, data = r.status, {k.lower() for k, _ in r.getheaders()}, r.read()
                c.close()
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append(repr(e))
                return
            with lock:
                if st == 202 and json.loads(data)["accepted"] == len(batch):
                    acked.extend(batch)
                elif st == 202:
                    errors.append("202 without all accepted: %r" % data[:200])
                else:
                    refused.append((st, json.loads(data)["error"]["code"], h, batch))

        for _ in range(6):
            batches = [[event(props={"pad": "p" * 200}) for _ in range(1000)] for _ in range(12)]
            threads = [threading.Thread(target=send, args=(b,)) for b in batches]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if refused:
                break
        self.assertEqual(errors, [])
        if not refused:
            self.skipTest("the writer kept up with 12 concurrent 1000-event batches on this machine")
        for st, code, headers, _ in refused:
            self.assertEqual((st, code), (503, "overloaded"))
            self.assertIn("retry-after", headers)
        stored = [o["event_id"] for o in self.export_ok(d, app)]
        self.assertEqual(sorted(stored), sorted(e["event_id"] for e in acked))
        for _, _, _, batch in refused:
            st, _, data = d.ingest(app, {"events": batch})
            self.assertEqual(st, 202, data)
            self.assertEqual(json.loads(data)["accepted"], len(batch))
        stored = [o["event_id"] for o in self.export_ok(d, app)]
        self.assertEqual(len(stored), len(set(stored)))
        self.assertEqual(len(stored), len(acked) + sum(len(b) for *_, b in refused))
