"""The dashboard in a real headless Chromium (Debian's, through Playwright): every page
loads with no console errors and no request leaving the dashboard, charts are drawn, a bug
in the table leads to its page and its swimlane, and user markup is shown as text."""
from __future__ import annotations

from urllib.parse import quote

import pytest

from conftest import MARKUP_LABELS, MARKUP_NOTE, Watched


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


# ---------------------------------------------------------------- layout (issue 11, item 26)
def _box(page, selector: str) -> dict:
    return page.page.locator(selector).first.bounding_box()


@pytest.fixture
def narrow(browser, server):
    ctx = browser.new_context(viewport={"width": 420, "height": 900})
    pg = ctx.new_page()
    w = Watched(pg, server["base"])
    yield w
    ctx.close()


def test_narrow_viewport_header_and_pages_fit(narrow, server):
    """At 420 px the header wraps: the database label stays inside the (blue) header and
    the viewport, and no page scrolls sideways as a whole."""
    sig = server["bugs"][0]
    for path, name in [("/", "campaigns"), ("/bugs", "bugs"), ("/corpus", "corpus"),
                       ("/campaigns/smoke-v5.16", "campaign"),
                       ("/bugs/" + quote(sig, safe=""), "bug")]:
        narrow.goto(path)
        header, label = _box(narrow, "header.top"), _box(narrow, "header.top .db")
        assert label["x"] >= header["x"] - 0.5 and \
            label["x"] + label["width"] <= min(header["x"] + header["width"], 420) + 0.5, \
            (path, label, header)
        assert label["y"] >= header["y"] - 0.5 and \
            label["y"] + label["height"] <= header["y"] + header["height"] + 0.5, \
            (path, label, header)
        width = narrow.page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 420, (path, width)
        narrow.shot(f"narrow-{name}")
    narrow.check()


def test_swimlane_uses_the_width_and_has_tooltips(page, server):
    """The overview swimlane fills the figure (it was 338x80 px on a 1280 px page), and
    every step has a <title> tooltip; so does every step of the step table."""
    page.page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/bugs?kind=USE_AFTER_FREE")
    page.page.locator("#bugs a.bug-link").first.click()
    page.page.wait_for_load_state("networkidle")
    fig, svg = _box(page, "#chart-lanes"), _box(page, "#chart-lanes svg")
    assert svg["width"] >= 0.9 * fig["width"], (svg, fig)
    actors = page.page.locator("#swimlane thead th.lane-head").count()
    assert svg["height"] >= actors * 26, svg
    ticks = page.page.locator("#chart-lanes rect.tickmark")
    n = ticks.count()
    assert n == page.page.locator("#swimlane .step").count() > 0
    titles = page.page.eval_on_selector_all(
        "#chart-lanes rect.tickmark", "els => els.map(e => e.querySelector('title') && "
        "e.querySelector('title').textContent)")
    assert all(t and t.startswith(f"step {i}: ") for i, t in enumerate(titles)), titles[:3]
    marked = page.page.eval_on_selector_all(
        "#chart-lanes rect.tickmark.mark", "els => els.map(e => e.querySelector('title')"
        ".textContent)")
    assert marked and all("decisive" in t for t in marked)
    tips = page.page.eval_on_selector_all("#swimlane .step", "els => els.map(e => e.title)")
    assert all(t.startswith(f"step {i}: ") for i, t in enumerate(tips)), tips[:3]
    # a tick is wide enough to point at
    assert _box(page, "#chart-lanes rect.tickmark")["width"] >= 3
    page.shot("bug-1280")
    page.check()


def test_corpus_groups_generated_scenarios_with_a_legend(page, server):
    """Generated scenarios (gen-<hash>) beyond the top few are one "other generated" bar,
    bar colours mean the scenario's group and a legend says so, and the page stays short
    (it was 5,500 px tall with ~90 bars)."""
    from migfuzz.dashboards.queries import TOP_GENERATED
    page.page.set_viewport_size({"width": 1280, "height": 900})
    page.goto("/corpus")
    names = page.page.eval_on_selector_all("#by-scenario tbody td:first-child",
                                           "els => els.map(e => e.textContent)")
    all_gen = page.page.locator("#all-generated tbody tr").count()
    assert all_gen > TOP_GENERATED, "the fill has too few generated scenarios: no test"
    gen = [n for n in names if n.startswith("gen-")]
    assert len(gen) == TOP_GENERATED
    assert any(n.startswith("other generated (") for n in names)
    bars = page.page.locator("#chart-scenarios rect.bar")
    assert bars.count() == len(names)
    # one colour per group, explained by the legend
    labels = page.page.eval_on_selector_all(
        "#chart-scenarios svg text.tick[text-anchor=end]", "els => els.map(e => "
        "e.querySelector('title') ? e.querySelector('title').textContent : e.textContent)")
    classes = page.page.eval_on_selector_all("#chart-scenarios rect.bar",
                                             "els => els.map(e => e.getAttribute('class'))")
    by_group: dict[str, set] = {}
    for label, cls in zip(labels, classes):
        group = ("other" if label.startswith("other generated") else
                 "generated" if label.startswith("gen-") else "builtin")
        by_group.setdefault(group, set()).add(cls)
    assert all(len(c) == 1 for c in by_group.values()), by_group
    assert len({next(iter(c)) for c in by_group.values()}) == len(by_group)
    legend = page.page.locator("#chart-scenarios ul.legend li").all_inner_texts()
    assert any(t.startswith("built-in") for t in legend)
    assert any(t.startswith("generated by the fuzzer") for t in legend)
    assert any(t.startswith("the other generated") for t in legend)
    height = page.page.evaluate("() => document.documentElement.scrollHeight")
    assert height < 2600, height
    page.shot("corpus-1280")
    page.check()


def test_corpus_growth_is_per_campaign(page, server):
    """The growth chart draws one line per campaign, each from its own start (not all
    campaigns merged on one time axis); picking a campaign draws that one alone."""
    page.goto("/corpus")
    with_corpus = ["farm-sim", "smoke-v5.15", "smoke-v5.16"] + \
        (["fuzz-cli"] if server["fuzz_command"] else [])
    legend = page.page.locator("#chart-growth ul.legend li").all_inner_texts()
    assert sorted(legend) == sorted(with_corpus)
    assert page.page.locator("#chart-growth path.series").count() == len(with_corpus)
    data = page.page.eval_on_selector("#chart-growth script", "e => JSON.parse(e.textContent)")
    for s in data["series"]:
        assert s["points"][0] == [0, 0]
        assert s["points"][-1][0] < 120, s["name"]       # each short campaign's own clock
    with page.page.expect_navigation():
        page.page.select_option("#filters select[name=campaign]", "smoke-v5.15")
    page.page.wait_for_load_state("networkidle")
    assert page.page.locator("#chart-growth path.series").count() == 1
    assert page.page.locator("#chart-growth ul.legend li").all_inner_texts() == ["smoke-v5.15"]
    page.check()
