"""A real-kernel verdict stored by 'kernel repro' shows in 'bugs', 'show' and the
dashboard's bug page (issue 14, item 4)."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from migfuzz.dashboards.app import create_app
from migfuzz.db.store import Store
from migfuzz.db.verdicts import add_verdict


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "migfuzz", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    d = tmp_path_factory.mktemp("verdicts")
    url = f"sqlite:///{d}/v.db"
    p = _cli("fuzz", "--workers", "0", "--variant", "v6.1", "--scenario", "thp-collect-race",
             "--execs", "200", "--seed", "1", "--db", url, "--no-minimize",
             "--out", str(d / "r"), "--json")
    assert p.returncode == 0, p.stderr
    st = Store.open(url)
    try:
        sig = next(b.signature for b in st.list_bugs() if b.kind == "REFCOUNT_LEAK")
        add_verdict(st, sig, release="6.1.192", config="base", reproduced=True,
                    iterations=20, hits=19, control_iterations=20, control_hits=0,
                    mode="stress", command="migfuzz kernel repro ... --release 6.1",
                    excerpt='MIGFUZZ {"mfr":"leak","pfn":"0x3600"}', detail={})
    finally:
        st.close()
    return url, sig


def test_bugs_lists_the_newest_verdict_per_release(db):
    url, sig = db
    p = _cli("bugs", "--db", url)
    row = next(x for x in p.stdout.splitlines() if x.startswith(sig))
    assert row.rstrip().endswith("6.1.192 19/20"), row
    js = json.loads(_cli("bugs", "--db", url, "--json").stdout)
    v = next(b for b in js if b["signature"] == sig)["kernel_verdicts"]
    assert [(x["release"], x["hits"], x["control_hits"]) for x in v] == [("6.1.192", 19, 0)]


def test_show_prints_the_verdict_with_its_control(db):
    url, sig = db
    p = _cli("show", sig, "--db", url)
    assert p.returncode == 0, p.stderr
    assert "reproduced on 6.1.192 (base, stress) in 19 of 20 (control: 0 of 20)" in p.stdout


def test_the_dashboards_bug_page_has_the_verdict(db):
    url, sig = db
    client = TestClient(create_app(url))
    html = client.get(f"/bugs/{sig}").text
    assert 'id="kernel-verdicts"' in html and "19 of 20" in html and "0 of 20" in html
