"""The path a page's holder took: who took a reference or lock on a page (from the audit
log), and the decisions that actor took about the page since (Page.trail, written by
Kernel.branch).

Why: a leak is seen where nothing drops what was taken, at the end or in a hang, and the
site that took it is the symptom, not the culprit (issue 13, item 3). The culprit is the
path the holder took afterwards: a trylock that failed and a failure path that forgot its
put_page, a restore that skipped its putback. The kernel's page_owner and ref_tracker
record the taking stack; the decisions after it are what a reviewer asks for next, so a
leak's title names them and its signature carries the last one (a leak on a failure path
is a different bug from one on the success path, even when both took the reference at the
same site: measured on the THP path, a put skipped after a failed split and the known leak
after a failed trylock were one bucket before).
"""
from __future__ import annotations

from .state import Kernel, Page

# labels a title shows: the last three are the failure path and what led to it
_SHOWN = 3


def taker(k: Kernel, page: Page, op: str, site: str) -> tuple[int, str] | None:
    """(step, actor) of the last audit row for ``page`` with operation ``op`` ("+migrate",
    "lock", ...) at ``site``: who took the reference or lock still held."""
    pfn = page.pfn
    for row in reversed(k.audit):
        if row[3] == pfn and row[4] == op and row[2] == site:
            return row[0], row[1]
    return None


def path(page: Page, who: str, since: int) -> list[str]:
    """The decisions ``who`` took about ``page`` from step ``since`` on, oldest first, a
    label repeated back to back (a retry loop) kept once."""
    out: list[str] = []
    for step, actor, label in page.trail:
        if actor == who and step >= since and (not out or out[-1] != label):
            out.append(label)
    return out


def describe(labels: list[str]) -> str:
    """A path for a title: its last labels, oldest first."""
    return " > ".join(labels[-_SHOWN:])


def holder_path(k: Kernel, page: Page, op: str, site: str) -> tuple[str, list[str]]:
    """(actor, path) of whoever holds what ``op`` at ``site`` took on ``page``: the
    decisions it took about the page after taking it ("?" and [] if the audit log has no
    such row, e.g. state the scenario set up before the first step)."""
    found = taker(k, page, op, site)
    if found is None:
        return "?", []
    step, who = found
    return who, path(page, who, step)


def recent_path(k: Kernel, page: Page) -> list[str]:
    """The running actor's decisions about ``page`` so far (for a check that fires while
    it works on the page: a bad put, a bad unlock)."""
    return path(page, k.who, 0)


def leak_suffix(holder: str, labels: list[str]) -> tuple[str, tuple[str, ...]]:
    """The title text and extra signature site of a leak whose holder took ``labels``
    after taking it: nothing when it took no decision about the page since."""
    if not labels:
        return "", ()
    return (f" (its holder {holder} then took the path {describe(labels)})",
            ("path:" + labels[-1],))
