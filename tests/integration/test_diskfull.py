"""A full disk under the event log: ingest answers 503 disk_full with Retry-After,
nothing acknowledged is lost, nothing refused is stored, and ingest resumes by
itself once there is room again. Runs on a small tmpfs mounted for the test
(needs root, as CI has; skipped elsewhere)."""

import json
import os
import subprocess
import tempfile
import unittest

from harness import DaemonTestCase, event


def try_mount(path, size):
    if os.geteuid() != 0:
        return False
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path],
                       capture_output=True)
    return r.returncode == 0


class DiskFullTest(DaemonTestCase):

    def setUp(self):
        self.mnt = tempfile.mkdtemp(prefix="umg-full-")
        if not try_mount(self.mnt, "3m"):
            os.rmdir(self.mnt)
            self.skipTest("needs root to mount a small tmpfs")
        self.addCleanup(self.unmount)
        self.d = self.daemon(start=False, data_dir=os.path.join(self.mnt, "data"),
                             extra_args=["--set", "log.segment_bytes=1m"])
        self.app = self.d.create_app("acme", "app", "android")
        self.d.start()

    def unmount(self):
        for d in getattr(self, "_daemons", []):
            d.cleanup()
        subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        try:
            os.rmdir(self.mnt)
        except OSError:
            pass

    def test_disk_full_then_room_again(self):
        acked, refused = [], []
        full = None
        for _ in range(400):
            batch = [event(props={"pad": "x" * 200}) for _ in range(50)]
            st, h, data = self.d.ingest(self.app, {"events": batch})
            if st == 202:
                self.assertEqual(json.loads(data)["accepted"], 50)
                acked += [e["event_id"] for e in batch]
                continue
            full = (st, h, data)
            refused = batch
            break
        self.assertIsNotNone(full, "3 MiB never filled up")
        st, h, data = full
        self.assertEqual(st, 503, data)
        body = json.loads(data)
        self.assertEqual(body["error"]["code"], "disk_full", body)
        self.assertIn("retry-after", {k.lower() for k in h}, h)
        self.assertTrue(acked, "nothing was accepted before the disk filled")
        self.assertTrue(self.d.request("GET", "/healthz")[0] == 200)

        # An export needs its audit record written first (docs/security.md): refused while meta.db cannot grow
        # (SQLite may still find room in pages it has, and then the export goes out).
        st, h, out = self.d.export(self.app)
        if st == 200:
            self.assertEqual(sorted(o["event_id"] for o in out), sorted(acked))
        else:
            self.assertError((st, h, out), 503, "audit_unavailable")

        # Room again: the export holds every acknowledged event once and nothing refused; the refused batch goes
        # through on retry, once.
        r = subprocess.run(["mount", "-o", "remount,size=64m", self.mnt], capture_output=True)
        self.assertEqual(r.returncode, 0, r.stderr)
        exported = [o["event_id"] for o in self.export_ok(self.d, self.app)]
        self.assertEqual(sorted(exported), sorted(acked),
                         "export must hold every acknowledged event once and nothing refused")
        st, _, data = self.d.ingest(self.app, {"events": refused})
        self.assertEqual(st, 202, data)
        self.assertEqual(json.loads(data)["accepted"], len(refused))
        st, _, data = self.d.ingest(self.app, {"events": refused})
        self.assertEqual(json.loads(data)["duplicates"], len(refused))
        exported = [o["event_id"] for o in self.export_ok(self.d, self.app)]
        self.assertEqual(len(exported), len(set(exported)))
        self.assertEqual(set(exported), set(acked) | {e["event_id"] for e in refused})


if __name__ == "__main__":
    unittest.main()
