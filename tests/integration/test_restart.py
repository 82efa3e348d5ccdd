"""Restarts of the real daemon on the same data directory: clean SIGTERM shutdown, kill -9,
acknowledged events and dedupe state surviving both, and new data appended after old."""

import subprocess
import unittest

from harness import DaemonTestCase, binary, event


class RestartCase(DaemonTestCase):

    extra_args = ()

    def setUp(self):
        self.d = self.daemon(start=False, extra_args=self.extra_args)
        self.app = self.d.create_app("acme", "game", "android")
        self.app_b = self.d.create_app("acme", "other", "ios")
        self.d.start()

    def ids(self, app=None):
        return [o["event_id"] for o in self.export_ok(self.d, app or self.app)]

    def roundtrip(self, kill):
        first = [event() for _ in range(20)]
        single = event()
        other = event()
        self.ingest_ok(self.d, self.app, {"events": first}, accepted=20)
        self.ingest_ok(self.d, self.app, single, accepted=1)
        self.ingest_ok(self.d, self.app_b, other, accepted=1)
        before = self.ids()
        before_objs = self.export_ok(self.d, self.app)
        self.assertEqual(len(before), 21)
        if kill:
            self.d.kill9()
        else:
            rc = self.d.stop()
            self.assertEqual(rc, 0, "exit status after SIGTERM\n" + self.d.log_tail())
        self.d.start()
        self.assertEqual(self.ids(), before, "export changed across the restart")
        self.assertEqual(self.export_ok(self.d, self.app), before_objs,
                         "stored objects changed across the restart")
        self.assertEqual(self.ids(self.app_b), [other["event_id"]])
        # Dedupe state survived: every resend is a duplicate.
        self.ingest_ok(self.d, self.app, {"events": first}, accepted=0, duplicates=20,
                       what="resend of a batch after restart")
        self.ingest_ok(self.d, self.app, single, accepted=0, duplicates=1,
                       what="resend of a single event after restart")
        self.ingest_ok(self.d, self.app_b, other, accepted=0, duplicates=1)
        # The same id in another app is still new.
        self.ingest_ok(self.d, self.app_b, single, accepted=1, duplicates=0)
        # New events go after the old ones.
        later = [event() for _ in range(3)]
        self.ingest_ok(self.d, self.app, {"events": later}, accepted=3)
        self.assertEqual(self.ids(), before + [e["event_id"] for e in later])


class SecondDaemonTest(RestartCase):
    """One daemon per data directory: a second `serve` on it exits at once naming the first one's pid (it
    would append to the same log segments), the first goes on, and the lock dies with its holder."""

    def test_second_daemon_refused(self):
        e1 = event()
        self.ingest_ok(self.d, self.app, e1, accepted=1)
        second = subprocess.run(self.d.command(), stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
        self.assertEqual(second.returncode, 1, second.stderr)
        self.assertIn(b"another daemon (pid %d) is serving" % self.d.proc.pid, second.stderr)
        e2 = event()
        self.ingest_ok(self.d, self.app, e2, accepted=1, what="the first daemon after the refusal")
        self.d.kill9()
        self.d.start()  # kill -9 released the lock
        self.assertEqual(self.ids(), [e1["event_id"], e2["event_id"]])


class SigtermRestartTest(RestartCase):

    def test_restart_keeps_events_and_dedupe(self):
        self.roundtrip(kill=False)

    def test_many_restarts(self):
        sent = []
        for round_ in range(4):
            evs = [event() for _ in range(5)]
            self.ingest_ok(self.d, self.app, {"events": evs}, accepted=5)
            sent += [e["event_id"] for e in evs]
            self.ingest_ok(self.d, self.app, {"events": evs}, duplicates=5)
            self.d.restart()
            self.assertEqual(self.ids(), sent, "after restart %d" % (round_ + 1))

    def test_restart_with_empty_log(self):
        self.d.restart()
        self.assertEqual(self.ids(), [])
        e = event()
        self.ingest_ok(self.d, self.app, e, accepted=1)
        self.d.restart()
        self.assertEqual(self.ids(), [e["event_id"]])

    def test_sigint_stops_cleanly(self):
        import signal
        e = event()
        self.ingest_ok(self.d, self.app, e, accepted=1)
        self.d.close_conn()
        self.d.expected_exit = True
        self.d.proc.send_signal(signal.SIGINT)
        rc = self.d.proc.wait(15)
        self.assertEqual(rc, 0, "exit status after SIGINT\n" + self.d.log_tail())
        self.d.start()
        self.assertEqual(self.ids(), [e["event_id"]])
        self.ingest_ok(self.d, self.app, e, duplicates=1)


class KillRestartTest(RestartCase):

    extra_args = ("--set", "log.fsync=always")

    def test_kill9_keeps_events_and_dedupe(self):
        self.roundtrip(kill=True)

    def test_kill9_twice(self):
        e1 = event()
        self.ingest_ok(self.d, self.app, e1, accepted=1)
        self.d.restart(kill=True)
        e2 = event()
        self.ingest_ok(self.d, self.app, {"events": [e1, e2]}, accepted=1, duplicates=1)
        self.d.restart(kill=True)
        self.ingest_ok(self.d, self.app, {"events": [e1, e2]}, accepted=0, duplicates=2)
        self.assertEqual(self.ids(), [e1["event_id"], e2["event_id"]])


class KillRestartDefaultFsyncTest(RestartCase):
    """An acknowledged event survives kill -9 under the default fsync policy too (the
    process dies, the kernel keeps what was written)."""

    def test_kill9_keeps_events_and_dedupe(self):
        self.roundtrip(kill=True)


class KillRestartIntervalFsyncTest(RestartCase):

    extra_args = ("--set", "log.fsync=interval:50")

    def test_kill9_keeps_events_and_dedupe(self):
        self.roundtrip(kill=True)


if __name__ == "__main__":
    unittest.main()
