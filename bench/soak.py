"""The soak check: the main job at the length users run it, in every mode, and every
triage command on what it stored.

For each mode (in process, a 2-worker Ray farm) and each store (SQLite, PostgreSQL): a
``migfuzz fuzz`` campaign of ``--minutes`` (default 10), then ``bugs``, ``campaigns``,
``show`` and ``replay`` of every stored bug, ``corpus export`` and the dashboard's pages.
It fails on any traceback, any non-zero exit, any stored bug whose reproducer does not
replay, and any count that disagrees between ``fuzz``'s summary, ``bugs``, ``campaigns``,
``corpus export`` and the dashboard's ``/metrics``. Prints what ran; writes a Markdown
summary (default bench/results/soak.md, quoted in the README).

Run it as ``make soak`` (as root it runs inside a fresh network namespace, loopback only,
like the tests). ``--minutes 1`` gives a quick version of the same checks.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

MIGFUZZ = [sys.executable, "-m", "migfuzz"]
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
       "PYTHONPATH": str(ROOT)}


class Soak:
    def __init__(self, log):
        self.failures: list[str] = []
        self.log = log

    def check(self, ok: bool, what: str) -> bool:
        if not ok:
            self.failures.append(what)
            self.log(f"  FAIL {what}")
        return ok

    def cli(self, args: list[str], what: str, timeout: float = 600, ok_codes=(0,)):
        """Run a migfuzz command; a traceback or an unexpected exit is a failure."""
        t0 = time.monotonic()
        p = subprocess.run(MIGFUZZ + args, capture_output=True, text=True, env=ENV,
                           timeout=timeout, cwd=self.cwd)
        took = time.monotonic() - t0
        self.check("Traceback" not in p.stderr and "Traceback" not in p.stdout,
                   f"{what}: traceback\n{p.stderr[-1500:]}")
        self.check(p.returncode in ok_codes,
                   f"{what}: exit {p.returncode} ({p.stderr.strip()[-300:]})")
        return p, took


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


@contextlib.contextmanager
def dashboard(db: str, cwd: str):
    port = _free_port()
    p = subprocess.Popen(MIGFUZZ + ["dashboard", "--db", db, "--port", str(port)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=ENV, cwd=cwd)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                if _get(base + "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.25)
        yield base
    finally:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()


def metric_sum(text: str, name: str, campaign: str) -> int:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and f'campaign="{campaign}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return int(total)


def soak_one(s: Soak, mode: str, store: str, db: str, minutes: float, seed: int) -> dict:
    name = f"soak-{mode}-{store}-{int(time.time())}"
    workers = "0" if mode == "in-process" else "2"
    s.log(f"== {mode}, {store}: fuzz --workers {workers} --duration {minutes * 60:.0f}")
    p, took = s.cli(["fuzz", "--workers", workers, "--variant", "v5.16", "--duration",
                     str(minutes * 60), "--seed", str(seed), "--db", db, "--name", name,
                     "--out", "repros", "--json"], f"{mode}/{store}: fuzz",
                    timeout=minutes * 60 + 1800)
    row = {"mode": mode, "store": store, "campaign": name, "fuzz_seconds": round(took)}
    try:
        out = json.loads(p.stdout)
    except ValueError:
        s.check(False, f"{mode}/{store}: fuzz printed no JSON summary")
        return row
    st = out["store"]
    row.update(executions=out["executions"], bugs=st["bugs"], duplicates=st["duplicates"],
               crashes=st["crashes"], corpus=st["corpus"])
    s.log(f"  {out['executions']} executions, {st['bugs']} bugs (+{st['duplicates']} "
          f"duplicates), {st['crashes']} crashes, {st['corpus']} corpus entries")
    s.check(st["status"] == "finished", f"{mode}/{store}: status {st['status']}")

    p, _ = s.cli(["bugs", "--db", db, "--campaign", name, "--json"], "bugs")
    bugs = json.loads(p.stdout or "[]")
    s.check(len(bugs) == st["bugs"],
            f"{mode}/{store}: fuzz says {st['bugs']} bugs, 'bugs' lists {len(bugs)}")
    # nothing found is lost: every signature the campaign's buckets hold is a stored bug
    # of this campaign (duplicates included)
    p, _ = s.cli(["bugs", "--db", db, "--campaign", name, "--all", "--json"], "bugs --all")
    stored = {b["signature"] for b in json.loads(p.stdout or "[]")}
    found = {sig for b in out["buckets"] for sig in b["signatures"]}
    s.check(found <= stored, f"{mode}/{store}: found but not stored: {sorted(found - stored)}")
    p, _ = s.cli(["campaigns", "--db", db, "--json"], "campaigns")
    camp = next((c for c in json.loads(p.stdout or "[]") if c["name"] == name), {})
    for key in ("bugs", "crashes", "corpus"):
        s.check(camp.get(key) == st[key], f"{mode}/{store}: fuzz says {key} {st[key]}, "
                f"'campaigns' says {camp.get(key)}")
    s.check(camp.get("executions", out["executions"]) == out["executions"],
            f"{mode}/{store}: campaigns says executions {camp.get('executions')}")

    replayed = 0
    for b in bugs:
        sig = b["signature"]
        s.cli(["show", sig, "--db", db], f"show {sig}")
        p, _ = s.cli(["replay", sig, "--db", db, "--json"], f"replay {sig}",
                     ok_codes=(0, 1))
        res = json.loads(p.stdout or "{}")
        if s.check(res.get("reproduced") is True,
                   f"{mode}/{store}: replay of {sig} did not reproduce "
                   f"({res.get('diverged') or res.get('findings')})"):
            replayed += 1
    row["replayed"] = f"{replayed}/{len(bugs)}"

    exported = Path(s.cwd) / f"{name}.jsonl"
    s.cli(["corpus", "export", "--db", db, "--name", name, "-o", str(exported)],
          "corpus export")
    # the first line is the corpus header (corpus/jsonl.py), every other one an entry
    lines = sum(1 for _ in exported.open()) - 1 if exported.exists() else -1
    s.check(lines == st["corpus"], f"{mode}/{store}: corpus export wrote {lines} entries, "
            f"fuzz says {st['corpus']}")

    with dashboard(db, s.cwd) as base:
        pages = ["/", f"/campaigns/{name}", "/bugs", "/corpus", "/metrics"]
        pages += [f"/bugs/{b['signature']}" for b in bugs]
        bad = []
        for page in pages:
            code, body = _get(base + page)
            if code != 200 or "Traceback" in body:
                bad.append(f"{page} -> {code}")
            if page == "/metrics":
                dash = metric_sum(body, "migfuzz_campaign_bugs", name)
                s.check(dash == st["bugs"], f"{mode}/{store}: fuzz says {st['bugs']} bugs, "
                        f"the dashboard's migfuzz_campaign_bugs {dash}")
        s.check(not bad, f"{mode}/{store}: dashboard pages failed: {bad}")
        row["pages"] = len(pages) - len(bad)
    return row


@contextlib.contextmanager
def postgres():
    url = os.environ.get("MIGFUZZ_TEST_PG_URL")
    if url:
        yield url
        return
    from pgserver import start_throwaway_pg
    url, stop = start_throwaway_pg(_free_port())
    try:
        yield url
    finally:
        stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0,
                    help="length of each campaign (default 10)")
    ap.add_argument("--modes", default="in-process,ray",
                    help="comma-separated: in-process, ray (default both)")
    ap.add_argument("--stores", default="sqlite,postgresql",
                    help="comma-separated: sqlite, postgresql (default both)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "soak.md"),
                    help="Markdown summary (default bench/results/soak.md)")
    a = ap.parse_args(argv)
    modes = [m for m in a.modes.split(",") if m]
    stores = [x for x in a.stores.split(",") if x]
    if not set(modes) <= {"in-process", "ray"} or not set(stores) <= {"sqlite", "postgresql"}:
        print("soak: --modes takes in-process,ray and --stores sqlite,postgresql",
              file=sys.stderr)
        return 2
    if a.minutes <= 0:
        print("soak: --minutes must be positive", file=sys.stderr)
        return 2

    def log(msg):
        print(msg, flush=True)

    s = Soak(log)
    rows = []
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="soak.") as tmp:
        s.cwd = tmp
        with contextlib.ExitStack() as stack:
            for store in stores:
                db = (f"sqlite:///{tmp}/soak.db" if store == "sqlite"
                      else stack.enter_context(postgres()))
                for mode in modes:
                    rows.append(soak_one(s, mode, store, db, a.minutes, a.seed))
    total = time.monotonic() - t0
    cols = ["mode", "store", "fuzz_seconds", "executions", "bugs", "duplicates",
            "crashes", "corpus", "replayed", "pages"]
    md = [f"# Soak check (`python bench/soak.py --minutes {a.minutes:g}`)", "",
          f"{len(rows)} campaigns of {a.minutes:g} min each, v5.16, seed {a.seed}; "
          f"{total / 60:.1f} min in all, {time.strftime('%Y-%m-%d', time.gmtime())}. "
          + ("**PASSED**: no traceback, every stored bug replayed, every count agreed "
             "(fuzz summary, bugs, campaigns, corpus export, dashboard /metrics)."
             if not s.failures else f"**FAILED** ({len(s.failures)} problems, below)."),
          "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    md += ["| " + " | ".join(str(r.get(c, "-")) for c in cols) + " |" for r in rows]
    if s.failures:
        md += ["", "Problems:", ""] + ["- " + re.sub(r"\s+", " ", f)[:400]
                                        for f in s.failures]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(md) + "\n")
    print("\n".join(md))
    return 1 if s.failures else 0


if __name__ == "__main__":
    sys.exit(main())
