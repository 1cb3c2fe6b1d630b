"""Results of a kselftest-harness program (``hmm-tests``) from its output. Pure functions.

The harness prints, per test::

    #  RUN           hmm.hmm_device_private.migrate ...
    hmm-tests.c:1234:migrate:Expected ret (-22) == 0 (0)     <- assertion output, stderr
    #      SKIP      reason                                   <- SKIP() with logging on
    #            OK  hmm.hmm_device_private.migrate            (or FAIL)
    ok 12 hmm.hmm_device_private.migrate                       (TAP; or "not ok")
    ok 13 # SKIP reason                                        (6.1: a skip has no name)

Statuses: ``passed``, ``failed``, ``skipped``, ``incomplete`` (RUN with no result: the guest
died or timed out under it). A test that printed a SKIP line but that the harness reported
``ok`` without ``# SKIP`` is ``skipped`` with ``harness_passed`` set: 6.1's hmm-tests skip a
missing DEVICE_COHERENT device with ``SKIP(exit(0), ...)`` in the fixture setup, and the 6.1
harness counts exit status 0 as a pass.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

_RUN = re.compile(r"#\s+RUN\s+(\S+) \.\.\.")
_OKFAIL = re.compile(r"^#\s+(OK|FAIL)\s+(\S+)\s*$")
_SKIPLOG = re.compile(r"^#\s+SKIP\s+(.*)$")
_TAP = re.compile(r"^(not ok|ok) (\d+)(?: ([^#\s]\S*))?\s*(?:# (SKIP|XFAIL|TODO|XPASS)\s*(.*))?$")
_TOTALS = re.compile(r"# Totals: pass:(\d+) fail:(\d+) xfail:(\d+) xpass:(\d+) skip:(\d+) "
                     r"error:(\d+)")
_PLAN = re.compile(r"^1\.\.(\d+)\s*$")


@dataclass
class TestResult:
    name: str
    status: str                       # passed / failed / skipped / incomplete
    number: int | None = None
    reason: str = ""                  # a skip's reason, or the first failure lines
    harness_passed: bool = False      # skipped in fact, counted as passed by the harness
    output: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class SuiteResult:
    tests: list[TestResult]
    planned: int | None = None
    totals: dict | None = None        # the harness's own "# Totals:" line, if printed

    def count(self, status: str) -> int:
        return sum(1 for t in self.tests if t.status == status)

    @property
    def passed(self) -> int:
        return self.count("passed")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def skipped(self) -> int:
        return self.count("skipped")

    @property
    def incomplete(self) -> int:
        return self.count("incomplete") + max(0, (self.planned or 0) - len(self.tests))

    def summary(self) -> str:
        s = f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        hp = sum(1 for t in self.tests if t.harness_passed)
        if hp:
            s += f" ({hp} of the skipped counted as passed by the harness)"
        if self.incomplete:
            s += f", {self.incomplete} did not finish"
        return s

    def to_json(self) -> dict:
        return {"planned": self.planned, "passed": self.passed, "failed": self.failed,
                "skipped": self.skipped, "incomplete": self.incomplete, "totals": self.totals,
                "tests": [t.to_json() for t in self.tests]}


def parse(text: str) -> SuiteResult:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    tests: list[TestResult] = []
    planned = None
    totals = None
    cur: TestResult | None = None          # between RUN and its TAP line
    saw_skip_log: str | None = None
    for raw in lines:
        line = raw.rstrip()
        m = _PLAN.match(line)
        if m and planned is None:
            planned = int(m.group(1))
            continue
        m = _TOTALS.search(line)
        if m:
            totals = dict(zip(("pass", "fail", "xfail", "xpass", "skip", "error"),
                              map(int, m.groups())))
            continue
        m = _RUN.search(line)
        if m:
            if cur is not None:                 # a RUN with no result before the next one
                cur.status = "incomplete"
            cur = TestResult(name=m.group(1), status="incomplete")
            tests.append(cur)
            saw_skip_log = None
            continue
        m = _OKFAIL.search(line)
        if m and cur is not None:
            continue
        m = _SKIPLOG.search(line)
        if m and cur is not None:
            saw_skip_log = m.group(1).strip()
            continue
        m = _TAP.match(line.strip())
        if m:
            verdict, num, name, directive, why = m.groups()
            t = cur
            if t is None or (name and name != t.name):
                t = next((x for x in tests if x.name == name and x.number is None), None)
                if t is None:
                    t = TestResult(name=name or f"#{num}", status="incomplete")
                    tests.append(t)
            t.number = int(num)
            if directive == "SKIP":
                t.status, t.reason = "skipped", (why or "").strip()
            elif verdict == "ok":
                if saw_skip_log is not None and t is cur:
                    t.status, t.reason, t.harness_passed = "skipped", saw_skip_log, True
                else:
                    t.status = "passed"
            else:
                t.status = "failed"
                fails = [o for o in t.output if re.search(r"Expected|Assertion|FAIL|terminated|"
                                                          r"timeout|step", o)]
                t.reason = " | ".join((fails or t.output)[:3])[:300]
            cur = None
            saw_skip_log = None
            continue
        if cur is not None and line.strip() and len(cur.output) < 20 and not line.startswith("["):
            cur.output.append(line.strip())
    return SuiteResult(tests=tests, planned=planned, totals=totals)
