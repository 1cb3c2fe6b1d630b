"""Fixtures for the dashboard tests: a database filled by real engine runs (and by a real
``migfuzz fuzz`` campaign when that command exists), the dashboard served by uvicorn on
127.0.0.1 in a background thread, and Debian's Chromium driven by Playwright."""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from filldb import run_campaign, run_farm_campaign  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync",
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"]
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
MARKUP_NOTE = ('<script>window.__pwned = 1</script><b id="injected-b">bold</b>\n'
               'second line & "quotes"')
MARKUP_LABELS = ['<img src=x onerror="window.__pwned=2">', "<i>racy</i>"]


def _migfuzz() -> str:
    return str(Path(sys.executable).with_name("migfuzz"))


def _fuzz_with_db() -> bool:
    try:
        out = subprocess.run([_migfuzz(), "fuzz", "--help"], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and "--db" in out.stdout


def db_fingerprint(path: str) -> tuple[str, list]:
    """The main database file's bytes and every row of every table (read-only open)."""
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    c = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = list(c.iterdump())
    finally:
        c.close()
    return digest, rows


@pytest.fixture(scope="session")
def filled_db(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("dashdb")
    path = str(d / "dash.db")
    url = f"sqlite:///{path}"
    info = {"path": path, "url": url, "fuzz_command": False}
    if _fuzz_with_db():
        # 600 executions: enough for more generated scenarios than the corpus page shows
        # one by one (TOP_GENERATED) beside the 30-odd built-in ones
        r = subprocess.run([_migfuzz(), "fuzz", "--workers", "0", "--db", url, "--name", "fuzz-cli",
                            "--execs", "600", "--seed", "1", "--out", str(d / "repros")],
                           capture_output=True, text=True, timeout=300, cwd=d,
                           env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
                                "RAY_AUTH_MODE": "disabled"})
        if r.returncode in (0, 1):
            info["fuzz_command"] = True
        else:
            warnings.warn(f"migfuzz fuzz --db failed ({r.returncode}): {r.stderr[-500:]}; "
                          f"using the engine-driven campaigns only")
    info["smoke"] = run_campaign(url, "smoke-v5.16", variant="v5.16", workers=2, execs=300,
                                 seed=1, pause=0.001)
    info["v515"] = run_campaign(url, "smoke-v5.15", variant="v5.15", workers=3, execs=150,
                                seed=2)
    # written as the farm writes (coordinator + recorder), so its stats samples carry the
    # campaign-wide crash and bucket counts in every worker's row
    info["farm"] = run_farm_campaign(url, "farm-sim", workers=2, seed=7)
    from migfuzz.db.store import Store
    with Store.open(url) as s:
        bugs = s.list_bugs()
        assert bugs, "the real runs found no bug: the fill is broken"
        # the markup bug is one the campaign did not file as a duplicate (marking that
        # one triaged would undo the only duplicate the fill has)
        target = next(b.signature for b in bugs if b.status != "duplicate")
        s.update_bug(target, status="triaged", notes=MARKUP_NOTE, labels=MARKUP_LABELS)
        # a duplicate, filed as triage files one (neither the markup bug nor a
        # use-after-free: the browser test follows one of those), unless the fuzz
        # campaign already filed one
        if not any(b.status == "duplicate" for b in bugs):
            dup = next(b for b in reversed(bugs)
                       if b.signature != target and b.kind != "USE_AFTER_FREE")
            s.update_bug(dup.signature, status="duplicate", duplicate_of=target)
        bugs = s.list_bugs()
        info["bugs"] = [b.signature for b in bugs]
        # "bugs" as `migfuzz bugs` lists them: duplicates left out
        info["listed"] = [b.signature for b in bugs if b.status != "duplicate"]
        info["duplicates"] = [b.signature for b in bugs if b.status == "duplicate"]
        info["markup_bug"] = target
        info["counts"] = s.counts()
    return info


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(app):
    """Serve an app with uvicorn on 127.0.0.1:<free port> in a thread; yields the base URL."""
    import uvicorn
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                        lifespan="off"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.time() + 20
    while not srv.started:
        if time.time() > deadline or not t.is_alive():
            pytest.fail("the dashboard server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        t.join(10)


@pytest.fixture(scope="session")
def server(filled_db):
    """The dashboard over the filled database, served on 127.0.0.1:<free port>."""
    from migfuzz.dashboards import create_app
    before = db_fingerprint(filled_db["path"])
    app = create_app(filled_db["url"])
    try:
        with serve(app) as base:
            yield {"base": base, "app": app, "before": before, **filled_db}
    finally:
        app.state.store.close()


def _ensure_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{CHROMIUM} is missing: under CI .ci/run must install it "
                    f"(apt-get install -y chromium)", pytrace=False)
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "chromium"], capture_output=True,
                       timeout=600)
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing and could not be installed: run "
                    f"'apt-get install -y chromium' (as root) first", pytrace=False)


@pytest.fixture(scope="session")
def browser():
    _ensure_chromium()
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Watched:
    """A page whose console errors, page errors, failed requests, dialogs and requests to
    anything but the dashboard are recorded."""

    def __init__(self, page, base: str):
        self.page, self.base, self.problems = page, base, []
        page.on("console", lambda m: m.type == "error" and self.problems.append(
            f"console error: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(
            f"request failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(
            f"HTTP {r.status}: {r.url}"))
        page.on("request", lambda r: not r.url.startswith((base, "data:")) and
                self.problems.append(f"request off the dashboard: {r.url}"))
        page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"),
                                     d.dismiss()))

    def goto(self, path: str):
        resp = self.page.goto(self.base + path, wait_until="networkidle")
        assert resp is not None and resp.status == 200, (path, resp and resp.status)
        return resp

    def check(self) -> None:
        assert not self.problems, self.problems

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def page(browser, server):
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = ctx.new_page()
    w = Watched(pg, server["base"])
    yield w
    ctx.close()
