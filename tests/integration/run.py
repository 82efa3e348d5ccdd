#!/usr/bin/env python3
"""Runs the integration tests against the real daemon.

    python3 tests/integration/run.py [PATTERN...]

PATTERN selects tests whose id (module.Class.test_name) contains it, or matches it as a
shell-style pattern (e.g. `crash`, `test_http.TlsTest`, `*dedupe*`). UMG_BIN selects the
binary (default build/unmogrowp; the ASan build is build-asan/unmogrowp). UMG_KEEP=1 keeps
the data directories of passing tests. A sanitizer report in a daemon's log fails the test;
UMG_SAN_IGNORE=substr1,substr2 ignores reports containing those substrings (for triage). Prints one line per test and ends with
`N passed, N failed` (plus `, N skipped`); exits 1 when anything failed.
"""

import fnmatch
import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


class Result(unittest.TestResult):
    """Prints one line per test; a test with failing subtests counts once as failed."""

    def __init__(self):
        super().__init__()
        self.outcomes = {}
        self.started = {}
        self.reports = []

    def startTest(self, test):
        super().startTest(test)
        self.started[test.id()] = time.monotonic()
        print("%s ..." % test.id(), end=" ", flush=True)

    def _report(self, test, kind, text):
        tid = test.id()
        self.reports.append((kind, tid, text))

    def addSuccess(self, test):
        super().addSuccess(test)
        self.outcomes.setdefault(test.id(), "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.outcomes[test.id()] = "FAIL"
        self._report(test, "FAIL", self._exc_info_to_string(err, test))

    def addError(self, test, err):
        super().addError(test, err)
        tid = getattr(test, "id", lambda: str(test))()
        if tid in self.outcomes or tid in self.started:
            self.outcomes[tid] = "ERROR"
        else:
            self.outcomes[tid] = "ERROR"
            print("%s ... ERROR" % tid)
        self._report(test, "ERROR", self._exc_info_to_string(err, test))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.outcomes[test.id()] = "skipped: %s" % reason

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is not None:
            kind = "FAIL" if issubclass(err[0], test.failureException) else "ERROR"
            self.outcomes[test.id()] = "FAIL"
            self.reports.append((kind, subtest.id(), self._exc_info_to_string(err, test)))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self.outcomes[test.id()] = "ok (expected failure)"

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self.outcomes[test.id()] = "FAIL (unexpected success)"

    def stopTest(self, test):
        super().stopTest(test)
        tid = test.id()
        took = time.monotonic() - self.started.get(tid, time.monotonic())
        print("%s (%.1fs)" % (self.outcomes.get(tid, "ok"), took), flush=True)


def select(suite, patterns):
    tests = list(iter_tests(suite))
    if not patterns:
        return tests
    out = []
    for t in tests:
        tid = t.id()
        if any(p in tid or fnmatch.fnmatch(tid, p) or fnmatch.fnmatch(tid, "*" + p + "*")
               for p in patterns):
            out.append(t)
    return out


def main(argv):
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__.strip())
        return 0
    loader = unittest.TestLoader()
    suite = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    if loader.errors:
        for e in loader.errors:
            print(e)
        print("0 passed, %d failed" % len(loader.errors))
        return 1
    tests = select(suite, argv)
    if not tests:
        print("no tests match %s" % " ".join(argv))
        print("0 passed, 0 failed")
        return 1
    binary = harness.binary()
    print("binary: %s" % binary)
    if not os.access(binary, os.X_OK):
        print("warning: %s is not an executable file; every test will fail" % binary)
    result = Result()
    t0 = time.monotonic()
    for t in tests:
        t.run(result)
    for kind, tid, text in result.reports:
        print("\n" + "=" * 70)
        print("%s: %s" % (kind, tid))
        print("-" * 70)
        print(text.rstrip())
    passed = sum(1 for v in result.outcomes.values() if v.startswith("ok"))
    skipped = sum(1 for v in result.outcomes.values() if v.startswith("skipped"))
    failed = len(result.outcomes) - passed - skipped
    print("\n(%.1f s)" % (time.monotonic() - t0))
    line = "%d passed, %d failed" % (passed, failed)
    if skipped:
        line += ", %d skipped" % skipped
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
