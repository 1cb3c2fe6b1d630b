"""The dashboard over HTTP (uvicorn on 127.0.0.1): metrics, the Grafana definition, the
bug list's filters, server-side escaping, and the replay command it shows."""
from __future__ import annotations

import html
import json
import re
import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from conftest import MARKUP_LABELS
from migfuzz.dashboards.metrics import METRICS

GRAFANA = Path(__file__).resolve().parents[2] / "dashboards" / "grafana" / "migfuzz.json"
PROMQL_WORDS = {"sum", "max", "min", "avg", "count", "rate", "irate", "increase", "by",
                "without", "time", "label_values", "and", "or", "unless", "on", "ignoring",
                "group_left", "group_right", "offset", "topk", "bottomk", "delta", "deriv",
                "histogram_quantile", "clamp_min", "clamp_max", "abs", "vector", "scalar"}


def get(server, path: str) -> httpx.Response:
    return httpx.get(server["base"] + path, timeout=30)


def parse_metrics(text: str) -> tuple[dict[str, str], list[tuple[str, dict, float]]]:
    types, samples = {}, []
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
        elif line and not line.startswith("#"):
            m = re.fullmatch(r'([a-zA-Z_:][a-zA-Z0-9_:]*)\{(.*)\} (\S+)', line)
            assert m, line
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
            samples.append((m.group(1), labels, float(m.group(3))))
    return types, samples


def test_metrics(server):
    r = get(server, "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    types, samples = parse_metrics(r.text)
    assert list(types) == list(METRICS)
    assert all(t in ("counter", "gauge") for t in types.values())
    by = {(n, tuple(sorted(lab.items()))): v for n, lab, v in samples}
    assert by[("migfuzz_executions_total",
               (("campaign", "smoke-v5.16"), ("worker", "w0")))] == 300
    assert sum(v for n, _, v in samples if n == "migfuzz_bugs") == len(server["listed"])
    assert sum(v for n, _, v in samples if n == "migfuzz_duplicate_bugs") == \
        len(server["duplicates"])
    corpus = sum(v for n, _, v in samples if n == "migfuzz_corpus_entries")
    assert corpus == server["counts"]["corpus_entries"]
    # every exported metric has samples in this database
    assert {n for n, _, _ in samples} == set(METRICS)


def promql_metrics(expr: str) -> set[str]:
    """Metric names a PromQL expression selects."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)                 # string literals
    e = re.sub(r"\{[^}]*\}", "", e)                             # label matchers
    e = re.sub(r"\[[^\]]*\]", "", e)                            # range selectors
    e = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", e)  # grouping labels
    e = re.sub(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,[^)]*\)", r"\1", e)
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", e))
    return {n for n in names if n not in PROMQL_WORDS and not re.fullmatch(r"\d+\w*", n)}


def grafana_queries(obj) -> list[str]:
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "expr" and isinstance(v, str):
                out.append(v)
            elif k == "query" and isinstance(v, str) and "(" in v:
                out.append(v)
            else:
                out.extend(grafana_queries(v))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(grafana_queries(v))
    return out


def test_grafana_definition_uses_exactly_exported_metrics(server):
    exported, _ = parse_metrics(get(server, "/metrics").text)
    dash = json.loads(GRAFANA.read_text())
    queries = grafana_queries(dash)
    assert len(queries) >= 10
    used = set()
    for q in queries:
        names = promql_metrics(q)
        assert names, f"no metric in {q!r}"
        assert names <= set(exported), f"{q!r} uses {sorted(names - set(exported))}"
        used |= names
    # and the definition shows the headline series
    assert {"migfuzz_executions_total", "migfuzz_coverage", "migfuzz_corpus_entries",
            "migfuzz_bugs", "migfuzz_campaign_bugs"} <= used


def test_promql_parser_catches_unknown_metrics():
    assert promql_metrics('sum by (campaign) (rate(foo_total{a="b"}[5m]))') == {"foo_total"}
    assert promql_metrics("label_values(migfuzz_campaign_info, campaign)") == \
        {"migfuzz_campaign_info"}
    assert promql_metrics("time() - x_seconds") == {"x_seconds"}


def test_bug_list_filters_and_sorting(server):
    r = get(server, "/bugs?status=triaged")
    assert r.status_code == 200
    sigs = re.findall(r'<tr data-signature="([^"]+)"', r.text)
    assert sigs == [server["markup_bug"]]
    r = get(server, "/bugs?variant=v5.15&sort=count&order=asc")
    sigs = re.findall(r'<tr data-signature="([^"]+)"', r.text)
    assert sigs and set(sigs) <= set(server["bugs"])
    assert get(server, "/bugs?variant=no-such").text.count("data-signature") == 0
    assert get(server, "/bugs?sort=nonsense&order=sideways").status_code == 200
    assert get(server, "/bugs?page=0").status_code == 422
    assert get(server, "/bugs/NOPE-000").status_code == 404
    assert get(server, "/campaigns/nope").status_code == 404


def test_user_markup_escaped_in_html(server):
    body = get(server, "/bugs/" + quote(server["markup_bug"], safe="")).text
    assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in body
    assert "<script>window.__pwned" not in body and '<b id="injected-b">' not in body
    for label in MARKUP_LABELS:
        assert label not in body
    assert "&lt;img src=x onerror=" in body and "&lt;i&gt;racy&lt;/i&gt;" in body
    csp = get(server, "/bugs").headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp


def _shown(body: str, pre_id: str) -> str:
    return html.unescape(re.search(rf'<pre id="{pre_id}">(.*?)</pre>', body, re.S).group(1))


def _migfuzz(args: list[str], cwd) -> subprocess.CompletedProcess:
    exe = str(Path(sys.executable).with_name("migfuzz"))
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_replay_command_shown_works(server, tmp_path):
    """The command the bug page shows, run as shown (from another directory): it replays
    the bug from the database and says it reproduced."""
    sig = server["bugs"][0]
    body = get(server, "/bugs/" + quote(sig, safe="")).text
    args = shlex.split(_shown(body, "replay-cmd"))
    assert args[:3] == ["migfuzz", "replay", sig] and "--db" in args
    p = _migfuzz(args[1:], tmp_path)
    assert p.returncode == 0, p.stderr
    assert sig in p.stdout
    p = _migfuzz(args[1:] + ["--json"], tmp_path)
    assert json.loads(p.stdout)["reproduced"] is True


def test_offline_replay_command_shown_works(server, tmp_path):
    """The download-then-replay commands (the download through httpx, as there may be no
    curl): the file carries the stored result, and replay reproduces it exactly."""
    sig = server["bugs"][0]
    body = get(server, "/bugs/" + quote(sig, safe="")).text
    fetch, run = _shown(body, "replay-offline").strip().splitlines()
    fargs = shlex.split(fetch)
    assert fargs[:3] == ["curl", "-fsS", "-o"]
    out, url = fargs[3], fargs[4]
    assert url.startswith(server["base"])
    (tmp_path / out).write_bytes(httpx.get(url, timeout=30).content)
    stored = json.loads((tmp_path / out).read_text())["result"]
    assert sig in [f["signature"] for f in stored["findings"]]
    rargs = shlex.split(run)
    assert rargs[:2] == ["migfuzz", "replay"]
    p = _migfuzz(rargs[1:], tmp_path)
    assert p.returncode == 0, p.stderr          # 0: the same trace and findings as stored
    assert sig in p.stdout
    p = _migfuzz(rargs[1:] + ["--json"], tmp_path)
    assert json.loads(p.stdout)["reproduced"] is True


def test_static_assets_are_local(server):
    body = get(server, "/").text
    assert not re.search(r'(src|href)="(https?:)?//', body)
    for asset in ("/static/charts.js", "/static/app.js", "/static/app.css",
                  "/static/favicon.svg"):
        assert get(server, asset).status_code == 200


# ---------------------------------------------------------------- one count everywhere
def _sql(server, q: str, *args) -> list:
    c = sqlite3.connect(f"file:{server['path']}?mode=ro", uri=True)
    try:
        return c.execute(q, args).fetchall()
    finally:
        c.close()


def _cli_json(server, *args) -> list:
    p = _migfuzz(["bugs", "--db", server["url"], "--json", *args], cwd=None)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def _rows(body: str, table_id: str) -> list[dict]:
    """Rows of an HTML table as {class or header: text}."""
    t = re.search(rf'<table class="grid" id="{table_id}">(.*?)</table>', body, re.S).group(1)
    heads = [re.sub(r"<[^>]+>|[▲▼]", "", h).strip()
             for h in re.findall(r"<th[^>]*>(.*?)</th>", t, re.S)]
    out = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", t.split("</thead>")[1], re.S):
        cells = re.findall(r"<td([^>]*)>(.*?)</td>", tr, re.S)
        row = {}
        for h, (attrs, cell) in zip(heads, cells):
            row[h] = html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            m = re.search(r'data-t="([^"]*)"', attrs)
            if m:
                row[h + "@t"] = float(m.group(1))
        out.append(row)
    return out


def _num(text: str) -> int:
    return int(text.split()[0].replace(",", ""))


def test_worker_numbers_are_each_workers_own(server):
    """Item 20: per worker, crashes and bugs are that worker's own (its stored crashes),
    in /metrics and the campaign page, for a farm-written campaign (whose stats samples
    carry the campaign-wide totals in every worker's row) and an in-process one (whose
    samples counted every hit)."""
    _, samples = parse_metrics(get(server, "/metrics").text)
    crashes = {(lab["campaign"], lab["worker"]): v for n, lab, v in samples
               if n == "migfuzz_worker_crashes_total"}
    wbugs = {(lab["campaign"], lab["worker"]): v for n, lab, v in samples
             if n == "migfuzz_worker_bugs"}
    stored = {lab["campaign"]: v for n, lab, v in samples if n == "migfuzz_crashes_stored"}
    own = {(c, w): n for c, w, n in _sql(
        server, "SELECT c.name, k.worker, count(*) FROM crashes k JOIN campaigns c "
                "ON c.id = k.campaign_id GROUP BY 1, 2")}
    own_bugs = {(c, w): n for c, w, n in _sql(
        server, "SELECT c.name, k.worker, count(DISTINCT k.signature) FROM crashes k "
                "JOIN campaigns c ON c.id = k.campaign_id JOIN bugs b "
                "ON b.signature = k.signature WHERE b.status != 'duplicate' GROUP BY 1, 2")}
    farm = [k for k in crashes if k[0] == "farm-sim"]
    assert len(farm) == 2
    # the defect: both farm workers' samples carry the same campaign-wide count
    sampled = dict(_sql(server, "SELECT s.worker, s.crashes FROM stats s JOIN campaigns c "
                                "ON c.id = s.campaign_id WHERE c.name = 'farm-sim' "
                                "ORDER BY s.t"))
    assert len(set(sampled.values())) == 1, "the fill no longer shows the farm's stats"
    assert own[farm[0]] != own[farm[1]], "both workers stored as many crashes: no test"
    for key, v in crashes.items():
        assert v == own.get(key, 0), key
        assert wbugs[key] == own_bugs.get(key, 0), key
    for camp, total in stored.items():
        assert sum(v for (c, _), v in crashes.items() if c == camp) == total, camp
    campaigns = {c for c, _ in crashes}
    if server["fuzz_command"]:
        assert "fuzz-cli" in campaigns
    # corpus entries and the coverage they added: each worker's own too
    own_corpus = {(c, w): (n, cov) for c, w, n, cov in _sql(
        server, "SELECT c.name, e.worker, count(*), sum(e.new_coverage) FROM corpus_entries e "
                "JOIN campaigns c ON c.id = e.campaign_id GROUP BY 1, 2")}
    entries = {(lab["campaign"], lab["worker"]): v for n, lab, v in samples
               if n == "migfuzz_worker_corpus_entries"}
    added = {(lab["campaign"], lab["worker"]): v for n, lab, v in samples
             if n == "migfuzz_worker_coverage_added"}
    for key in crashes:
        assert (entries[key], added[key]) == own_corpus.get(key, (0, 0)), key
    # the campaign page's worker table says the same
    for camp in sorted(campaigns):
        rows = _rows(get(server, "/campaigns/" + quote(camp, safe="")).text, "workers")
        for r in rows:
            key = (camp, r["worker"])
            assert _num(r["crashes"]) == own.get(key, 0), (camp, r)
            assert _num(r["bugs"]) == own_bugs.get(key, 0), (camp, r)
            assert (_num(r["corpus entries"]), _num(r["coverage added"])) == \
                own_corpus.get(key, (0, 0)), (camp, r)


def test_campaign_bugs_are_that_campaigns_own(server):
    """Item 21: a campaign page's bug table gives that campaign's hits, first and last
    seen (its crashes), not the bug's global ones."""
    per = {(c, s): (n, t0, t1) for c, s, n, t0, t1 in _sql(
        server, "SELECT c.name, k.signature, count(*), min(k.found_at), max(k.found_at) "
                "FROM crashes k JOIN campaigns c ON c.id = k.campaign_id GROUP BY 1, 2")}
    glob = {s: n for s, n in _sql(server, "SELECT signature, count FROM bugs")}
    shared = [(c, s) for (c, s), (n, _, _) in per.items() if n != glob[s]]
    assert shared, "no bug hit by two campaigns: the fill cannot show this"
    for camp in sorted({c for c, _ in per}):
        body = get(server, "/campaigns/" + quote(camp, safe="")).text
        sigs = re.findall(r'<tr data-signature="([^"]+)"', body)
        rows = _rows(body, "bugs")
        assert len(sigs) == len(rows)
        for sig, r in zip(sigs, rows):
            n, t0, t1 = per[(camp, sig)]
            assert _num(r["hits"]) == n, (camp, sig, r["hits"], n)
            assert r["first seen@t"] == pytest.approx(t0) and \
                r["last seen@t"] == pytest.approx(t1), (camp, sig)


def test_bug_counts_agree_with_the_cli(server):
    """Item 14's rule: "bugs" are distinct bugs with duplicates left out, as `migfuzz bugs`
    lists them, on every page and in /metrics; duplicates are counted apart."""
    assert server["duplicates"], "the fill has no duplicate: no test"
    cli = _cli_json(server)
    assert sorted(b["signature"] for b in cli) == sorted(server["listed"])
    n = len(cli)
    body = get(server, "/").text
    assert _num(re.search(r'id="bug-total">([^<]*)<', body).group(1)) == n
    assert f"+{len(server['duplicates'])} duplicate" in body
    body = get(server, "/bugs").text
    assert _num(re.search(r'<span id="bug-count">([^<]*)<', body).group(1)) == n
    assert sorted(re.findall(r'<tr data-signature="([^"]+)"', body)) == sorted(server["listed"])
    _, samples = parse_metrics(get(server, "/metrics").text)
    assert sum(v for m, _, v in samples if m == "migfuzz_bugs") == n
    camp_metric: dict[str, float] = {}
    for m, lab, v in samples:
        if m == "migfuzz_campaign_bugs":
            camp_metric[lab["campaign"]] = camp_metric.get(lab["campaign"], 0) + v
    listed = {r["campaign"]: r for r in _rows(get(server, "/").text, "campaigns")}
    assert "buckets" not in listed[next(iter(listed))]
    for camp, row in listed.items():
        want = len(_cli_json(server, "--campaign", camp))
        assert _num(row["bugs"]) == want, camp
        assert camp_metric.get(camp, 0) == want, camp
        page = get(server, "/campaigns/" + quote(camp, safe="")).text
        assert int(re.search(r'id="campaign-bug-total">(\d+)<', page).group(1)) == want
        assert "Buckets" not in page


def test_bug_list_hides_duplicates_by_default(server):
    """Item 26: /bugs hides duplicates, as `migfuzz bugs` does; a toggle shows them, and
    the status filter "duplicate" lists them."""
    dups = server["duplicates"]
    body = get(server, "/bugs").text
    shown = re.findall(r'<tr data-signature="([^"]+)"', body)
    assert not set(dups) & set(shown)
    assert f"{len(dups)} duplicate(s) hidden" in body
    assert 'name="duplicates"' in body                           # the toggle
    body = get(server, "/bugs?duplicates=1").text
    assert sorted(re.findall(r'<tr data-signature="([^"]+)"', body)) == sorted(server["bugs"])
    body = get(server, "/bugs?status=duplicate").text
    assert sorted(re.findall(r'<tr data-signature="([^"]+)"', body)) == sorted(dups)
    # sorting keeps the toggle
    body = get(server, "/bugs?duplicates=1").text
    assert "duplicates=1" in re.search(r'<a class="sort" href="([^"]+)"', body).group(1)
