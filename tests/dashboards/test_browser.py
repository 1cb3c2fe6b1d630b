"""The dashboard in a real headless Chromium (Debian's, through Playwright): every page
loads with no console errors and no request leaving the dashboard, charts are drawn, a bug
in the table leads to its page and its swimlane, and user markup is shown as text."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from conftest import MARKUP_LABELS, MARKUP_NOTE


def drawn(page, selector: str = "figure.chart svg[data-points]") -> list[int]:
    """data-points of every drawn chart SVG on the page."""
    return page.page.eval_on_selector_all(
        selector, "els => els.map(e => Number(e.getAttribute('data-points')))")


def test_campaigns_page_and_campaign_charts(page, server):
    page.goto("/")
    rows = page.page.locator("#campaigns tbody tr")
    assert rows.count() >= 2
    assert "smoke-v5.16" in page.page.locator("#campaigns").inner_text()
    page.shot("campaigns")
    page.page.click("a.campaign-link:text-is('smoke-v5.16')")
    page.page.wait_for_load_state("networkidle")
    assert page.page.url.endswith("/campaigns/smoke-v5.16")
    charts = {fid: page.page.locator(f"#{fid} svg[data-points]").count()
              for fid in ("chart-rate", "chart-workers", "chart-coverage", "chart-corpus",
                          "chart-bugs", "chart-executions")}
    assert all(n == 1 for n in charts.values()), charts
    assert all(n > 0 for n in drawn(page)), drawn(page)
    # one line per worker in the per-worker throughput chart, with a legend
    assert page.page.locator("#chart-workers path.series").count() == 2
    assert page.page.locator("#chart-workers ul.legend li").count() == 2
    assert page.page.locator("#workers tbody tr").count() == 2
    page.shot("campaign")
    page.check()


def test_bug_table_to_bug_page_and_swimlane(page, server):
    page.goto("/bugs")
    rows = page.page.locator("#bugs tbody tr")
    assert rows.count() == len(server["listed"])
    # hits-over-time sparklines are drawn
    assert page.page.locator("#bugs span.spark svg[data-points]").count() == rows.count()
    page.shot("bugs")
    # sort by hits, ascending then descending, by clicking the header
    page.page.click("#bugs th a.sort:has-text('hits')")
    page.page.wait_for_load_state("networkidle")
    assert "sort=count" in page.page.url
    counts = [int(t.replace(",", "")) for t in
              page.page.locator("#bugs tbody td.hits").all_inner_texts()]
    assert counts == sorted(counts, reverse=True)
    # filter by kind through the select (it submits on change); a use-after-free always
    # has two or more actors, so its swimlane has lanes to compare
    kind = "USE_AFTER_FREE"
    with page.page.expect_navigation():
        page.page.select_option("#filters select[name=kind]", kind)
    page.page.wait_for_load_state("networkidle")
    assert f"kind={kind}" in page.page.url
    kinds = set(page.page.locator("#bugs tbody .kind").all_inner_texts())
    assert kinds == {kind}
    # navigate from the table to the bug page
    link = page.page.locator("#bugs a.bug-link").first
    title = link.inner_text()
    sig = page.page.locator("#bugs tbody tr").first.get_attribute("data-signature")
    link.click()
    page.page.wait_for_load_state("networkidle")
    assert page.page.url.endswith("/bugs/" + quote(sig, safe=""))
    assert title in page.page.locator("h1.bug-title").inner_text()
    # the swimlane: one lane per actor, decisive steps highlighted
    lanes = page.page.locator("#swimlane thead th.lane-head")
    assert lanes.count() >= 2
    assert page.page.locator("#swimlane .step").count() > 0
    assert page.page.locator("#swimlane .step.mark").count() > 0
    # the overview lanes chart: one tick per step, marks in red
    steps = page.page.locator("#swimlane .step").count()
    assert drawn(page, "#chart-lanes svg[data-points]") == [steps]
    assert page.page.locator("#chart-lanes rect.tickmark.mark").count() == \
        page.page.locator("#swimlane .step.mark").count()
    # audit log and the replay command
    assert page.page.locator("#audit tbody tr").count() > 0
    cmd = page.page.locator("#replay-cmd").inner_text()
    assert cmd.startswith(f"migfuzz replay {sig} --db ")
    assert "reproducer.json" in page.page.locator("#replay-offline").inner_text()
    # clicking a decisive tick in the overview scrolls to and flashes that step
    mark = page.page.locator("#chart-lanes rect.tickmark.mark").first
    n = mark.get_attribute("data-step")
    mark.click()
    assert "flash" in (page.page.locator(f"#step-{n}").get_attribute("class") or "")
    # hits over time chart
    assert drawn(page, "#chart-hits svg[data-points]")[0] > 0
    page.page.click("button.copy[data-copy=replay-cmd]")
    page.shot("bug")
    page.check()


def test_corpus_page(page, server):
    page.goto("/corpus")
    assert all(n > 0 for n in drawn(page)) and len(drawn(page)) == 2
    assert page.page.locator("#by-scenario tbody tr").count() >= 3
    page.shot("corpus")
    with page.page.expect_navigation():
        page.page.select_option("#filters select[name=campaign]", "smoke-v5.15")
    page.page.wait_for_load_state("networkidle")
    assert "campaign=smoke-v5.15" in page.page.url
    assert len(drawn(page)) == 2
    page.check()


def test_markup_in_notes_and_labels_is_text(page, server):
    sig = server["markup_bug"]
    page.goto("/bugs/" + quote(sig, safe=""))
    notes = page.page.locator("#notes")
    assert notes.inner_text() == MARKUP_NOTE
    assert page.page.locator("#notes b, #notes script, #injected-b").count() == 0
    labels = page.page.locator("#labels .label").all_inner_texts()
    assert sorted(labels) == sorted(MARKUP_LABELS)
    assert page.page.locator("#labels img, #labels i").count() == 0
    assert page.page.evaluate("() => window.__pwned") is None
    # also in the bug list
    page.goto("/bugs")
    row = page.page.locator(f"#bugs tr[data-signature='{sig}']")
    assert sorted(row.locator(".label").all_inner_texts()) == sorted(MARKUP_LABELS)
    assert row.locator("img, i").count() == 0
    assert page.page.evaluate("() => window.__pwned") is None
    page.check()


def test_campaign_from_the_fuzz_command(page, server):
    """The campaign `migfuzz fuzz --db` wrote (when that command exists) is shown too."""
    if not server["fuzz_command"]:
        pytest.skip("this migfuzz has no 'fuzz --db' (or it failed: see the warning)")
    page.goto("/")
    assert "fuzz-cli" in page.page.locator("#campaigns").inner_text()
    page.goto("/campaigns/fuzz-cli")
    points = drawn(page)
    assert len(points) == 6 and sum(points) > 0, points
    page.shot("campaign-fuzz-cli")
    page.check()
