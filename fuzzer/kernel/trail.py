"""The path a page's holder took: who took a reference (Page.takers) or the lock (the
audit log) on a page, and the decisions that actor took about the page since (Page.trail,
written by Kernel.branch).

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

from typing import TYPE_CHECKING

if TYPE_CHECKING:       # trail is used by the mixins state.py composes Kernel from
    from .state import Kernel, Page

# labels a title shows: the last four are the failure path and what led to it (a drain,
# a failed trylock or isolation, the restore that followed)
_SHOWN = 4


def lock_taker(k: Kernel, page: Page) -> tuple[str, int] | None:
    """(actor, step) that took the page lock still held, from the audit log."""
    pfn, who, site = page.pfn, page.locked_by, page.lock_site
    for row in reversed(k.audit):
        if row[3] == pfn and row[4] == "lock" and row[1] == who and row[2] == site:
            return who, row[0]
    return None


def ref_taker(page: Page, owner: str, i: int = -1) -> tuple[str, str, int] | None:
    """(site, actor, step) of the page's ``i``-th ``owner`` reference still held (by
    default the latest, the one a leak report names; Page.takers keeps them index for
    index with Page.refs)."""
    sites = page.refs.get(owner)
    if not sites:
        return None
    who, step = page.takers[owner][i]
    return sites[i], who, step


def path(k: Kernel, page: Page, who: str, since: int) -> list[str]:
    """The decisions ``who`` took about ``page`` from step ``since`` until the end of the
    command it was running then (a program's next command is other work: a reclaim after
    a migration is not the migration's failure path), oldest first, a label repeated
    back to back (a retry loop) kept once."""
    # a command begins inside the step its predecessor's last code runs in, so a
    # decision at the step the next command began belongs to the one before
    until = next((s for s in k.command_starts.get(who, ()) if s > since), None)
    out: list[str] = []
    for step, label in page.trail.get(who, ()):
        if step >= since and (until is None or step <= until) and (
                not out or out[-1] != label):
            out.append(label)
    return out


def describe(labels: list[str]) -> str:
    """A path for a title: its last labels, oldest first."""
    return " > ".join(labels[-_SHOWN:])


def leak_suffix(k: Kernel, page: Page, holder: tuple | None) -> tuple[str, tuple[str, ...]]:
    """The title text and extra signature site of a leak of what ``holder`` (actor,
    step) took on ``page``: the decisions it took about the page since; nothing when it
    took none (or is unknown)."""
    if holder is None:
        return "", ()
    holder, since = holder
    labels = path(k, page, holder, since)
    if not labels:
        return "", ()
    return (f" (its holder {holder} then took the path {describe(labels)})",
            ("path:" + labels[-1],))


def current_path(k: Kernel, page: Page) -> str:
    """The running actor's decisions about ``page`` in its current command, as title
    text ("" if none): where a check fires while the actor works on the page (a bad
    put, an unlock that leaves a migration entry), the path that led there."""
    who = k.who
    starts = k.command_starts.get(who)
    labels = path(k, page, who, starts[-1] if starts else 0)
    return f" (its path: {describe(labels)})" if labels else ""
