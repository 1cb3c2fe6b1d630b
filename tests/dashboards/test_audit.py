"""The page audit log (issue 11, item 27): every row shows the page's refcount and mapcount
after its own change, and a mapcount change is a row of its own ("+mapcount" /
"-mapcount"), in the engine's log and in the bug page's table. ("+map" is a reference
owned by a mapping: it moves the refcount, not the mapcount.)"""
from __future__ import annotations

import html
import re
from urllib.parse import quote

import httpx
import pytest

from migfuzz.corpus.builtin import get_scenario, scenario_names
from migfuzz.fuzzer.execute import execute
from migfuzz.fuzzer.scheduler import RandomWalk

NO_CHANGE = ("lock", "unlock", "free")


def deltas(op: str) -> tuple[int, int]:
    """(refcount, mapcount) change an audit operation makes."""
    if op in NO_CHANGE:
        return 0, 0
    if op in ("+mapcount", "-mapcount"):
        return 0, 1 if op[0] == "+" else -1
    assert op[0] in "+-", op
    return (1 if op[0] == "+" else -1), 0


def check_rows(rows) -> int:
    """rows: (pfn, op, refcount, mapcount) in log order. Between two rows of a page, the
    counts move by exactly what the later row's operation does. Returns rows checked."""
    last: dict[int, tuple[int, int]] = {}
    n = 0
    for pfn, op, ref, mc in rows:
        if pfn in last:
            dref, dmc = deltas(op)
            pref, pmc = last[pfn]
            assert (ref - pref, mc - pmc) == (dref, dmc), \
                f"page {pfn}: {op} row reads ref {ref}, map {mc} after ref {pref}, map {pmc}"
            n += 1
        last[pfn] = (ref, mc)
    return n


def test_engine_audit_rows_show_the_state_after_their_own_change():
    checked, mapcount_rows = 0, 0
    for name in scenario_names():
        sc = get_scenario(name)
        for variant in ("v5.15", "v5.16", "v6.1"):
            for seed in range(6):
                r = execute(sc, variant, RandomWalk(seed), seed=seed)
                rows = [(p, op, ref, mc) for _, _, _, p, op, ref, mc in r.kernel.audit]
                checked += check_rows(rows)
                mapcount_rows += sum(op.endswith("mapcount") for _, op, _, _ in rows)
    assert checked > 1000 and mapcount_rows > 100, (checked, mapcount_rows)


def test_mapping_a_page_is_a_reference_row_then_a_mapcount_row():
    """The issue's case: the layout maps a device page ("+map" then the mapcount); the
    "+map" row reads map 0 and the next row, "+mapcount", reads map 1."""
    r = execute(get_scenario("dp-fault-race"), "v5.16", RandomWalk(0), seed=0)
    rows = [(site, op, ref, mc) for _, who, site, _, op, ref, mc in r.kernel.audit
            if who == "init" and site == "layout:device"]
    ops = [op for _, op, _, _ in rows]
    i = ops.index("+map")
    assert ops[i + 1] == "+mapcount"
    assert rows[i][3] + 1 == rows[i + 1][3] and rows[i][2] == rows[i + 1][2]


def _audit_table(body: str) -> list[tuple]:
    t = re.search(r'<table class="grid" id="audit">(.*?)</table>', body, re.S).group(1)
    out = []
    for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", t.split("</thead>")[1], re.S):
        cells = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
                 for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)]
        step, actor, site, pfn, op, ref, mc = cells
        out.append((int(pfn), op, int(ref), int(mc)))
    return out


def test_bug_page_audit_table(server):
    """The bug page's audit table: the same rule, and mapcount rows are there."""
    seen_mapcount = False
    for sig in server["bugs"]:
        body = httpx.get(server["base"] + "/bugs/" + quote(sig, safe=""), timeout=60).text
        if 'id="audit"' not in body:
            continue
        rows = _audit_table(body)
        check_rows(rows)
        seen_mapcount |= any(op.endswith("mapcount") for _, op, _, _ in rows)
    if not seen_mapcount:
        pytest.fail("no bug page shows a mapcount change")
