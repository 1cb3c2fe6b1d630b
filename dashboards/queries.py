"""Read-only queries the Store API does not have: time series for the charts, the bug list
with variant filter, sorting, paging and hits over time, corpus growth and composition.

SQLAlchemy Core SELECTs against the store's tables (db/models.py), always through the
store's reader engine inside one transaction, so a page shows one snapshot. Nothing here
writes. Times are seconds since the epoch, as stored.

One word, one count: "bugs" are distinct bugs with duplicates left out, as ``migfuzz bugs``
lists them; duplicates are counted apart where they are shown at all. A worker's crashes and
bugs are that worker's own, read from the crashes it stored (the ``worker`` column), never
from its stats samples, whose ``crashes`` and ``buckets`` are the whole campaign's.
"""
from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, cast, exists, func, select
from sqlalchemy.engine import Connection

from migfuzz.db.models import (Bug, BugVariant, Campaign, CorpusEntry, Crash,
                       StatsSample)
from migfuzz.db.store import Store

MAX_POINTS = 300            # a chart series is thinned to about this many points
HIT_BUCKETS = 24            # time buckets for "hits over time"
BUG_SORTS = {"last_seen": Bug.last_seen, "first_seen": Bug.first_seen, "count": Bug.count,
             "kind": Bug.kind, "status": Bug.status, "title": Bug.title}
PAGE_SIZE = 500


def _conn(store: Store):
    return store._reader.begin()          # the store's read-only, snapshot transaction


def thin(points: list, limit: int = MAX_POINTS) -> list:
    """Every k-th point and always the last, so a long series stays drawable."""
    if len(points) <= limit:
        return points
    k = -(-len(points) // limit)
    out = points[::k]
    if out[-1] is not points[-1]:
        out.append(points[-1])
    return out


def _bucket_expr(conn: Connection, col, t0: float, width: float):
    x = (col - t0) / width
    if conn.dialect.name == "postgresql":
        return cast(func.floor(x), Integer)
    return cast(x, Integer)               # SQLite truncates toward zero; x >= 0 here


# ------------------------------------------------------------------ campaigns
RATE_POINTS = 60


def _interp(times: list[float], counts: list[int], t: float) -> float:
    """A worker's cumulative executions at time t, linear between its samples."""
    i = bisect_left(times, t)
    if i >= len(times):
        return float(counts[-1])
    if times[i] == t or i == 0:
        return float(counts[i]) if times[i] == t else 0.0
    t_a, t_b, n_a, n_b = times[i - 1], times[i], counts[i - 1], counts[i]
    return n_a + (n_b - n_a) * (t - t_a) / (t_b - t_a)


def campaign_id(conn: Connection, name: str) -> int | None:
    return conn.execute(select(Campaign.id).where(Campaign.name == name)).scalar()


NOT_DUPLICATE = Bug.status != "duplicate"


def worker_own(conn: Connection, cid: int | None = None) -> dict[tuple, dict]:
    """(campaign id, worker) -> that worker's own numbers, from the rows it stored:
    ``crashes`` (crash records), ``bugs`` (distinct bugs among them, duplicates left out),
    ``corpus`` (corpus entries) and ``coverage`` (the coverage those entries added first).
    Each sums over a campaign's workers to the campaign's number (bugs excepted: a bug two
    workers hit counts for each)."""
    def blank():
        return {"crashes": 0, "bugs": 0, "corpus": 0, "coverage": 0}
    where = [] if cid is None else [Crash.campaign_id == cid]
    out: dict[tuple, dict] = {}
    for c, w, n in conn.execute(select(Crash.campaign_id, Crash.worker, func.count())
                                .where(*where).group_by(Crash.campaign_id, Crash.worker)):
        out.setdefault((c, w), blank())["crashes"] = n
    for c, w, n in conn.execute(
            select(Crash.campaign_id, Crash.worker, func.count(Crash.signature.distinct()))
            .join(Bug, Bug.signature == Crash.signature).where(NOT_DUPLICATE, *where)
            .group_by(Crash.campaign_id, Crash.worker)):
        out.setdefault((c, w), blank())["bugs"] = n
    cwhere = [] if cid is None else [CorpusEntry.campaign_id == cid]
    for c, w, n, cov in conn.execute(
            select(CorpusEntry.campaign_id, CorpusEntry.worker, func.count(),
                   func.sum(CorpusEntry.new_coverage))
            .where(*cwhere).group_by(CorpusEntry.campaign_id, CorpusEntry.worker)):
        row = out.setdefault((c, w), blank())
        row["corpus"], row["coverage"] = n, int(cov or 0)
    return out


def campaign_bug_counts(conn: Connection) -> dict[int, dict]:
    """campaign id -> {"bugs": distinct bugs it hit, duplicates left out, "duplicates":
    distinct duplicates it hit}."""
    per = select(Crash.campaign_id, Crash.signature).distinct().subquery()
    out: dict[int, dict] = {}
    for c, status, n in conn.execute(
            select(per.c.campaign_id, Bug.status, func.count())
            .join(Bug, Bug.signature == per.c.signature)
            .group_by(per.c.campaign_id, Bug.status)):
        key = "duplicates" if status == "duplicate" else "bugs"
        out.setdefault(c, {"bugs": 0, "duplicates": 0})[key] += n
    return out


def campaign_rows(store: Store) -> list[dict]:
    """The campaigns page: each campaign with its executions (the workers' last samples),
    workers, and bugs counted as ``migfuzz bugs --campaign`` lists them."""
    camps = store.list_campaigns()
    with _conn(store) as conn:
        ids = dict(conn.execute(select(Campaign.name, Campaign.id)).all())
        counts = campaign_bug_counts(conn)
    snap = metrics_snapshot(store)
    execs: dict[str, int] = {}
    workers: dict[str, int] = {}
    for w in snap["workers"]:
        execs[w["campaign"]] = execs.get(w["campaign"], 0) + w["executions"]
        workers[w["campaign"]] = workers.get(w["campaign"], 0) + 1
    for c in camps:
        c["executions"] = execs.get(c["name"], 0)
        c["workers"] = workers.get(c["name"], 0)
        n = counts.get(ids.get(c["name"]), {})
        c["bugs"] = n.get("bugs", 0)
        c["duplicates"] = n.get("duplicates", 0)
        c.pop("buckets", None)              # the store's count, duplicates included
    return camps


def bug_totals(store: Store) -> dict[str, int]:
    """All bugs: distinct ones (duplicates left out) and duplicates."""
    with _conn(store) as conn:
        rows = conn.execute(select(Bug.status, func.count()).group_by(Bug.status)).all()
    return {"bugs": sum(n for st, n in rows if st != "duplicate"),
            "duplicates": sum(n for st, n in rows if st == "duplicate")}


def campaign_series(store: Store, name: str) -> dict[str, Any]:
    """Charts of one campaign; x is seconds since the campaign started.

    - ``rate``: executions/s of the whole campaign: the workers' cumulative executions,
      interpolated onto a common time grid and summed, differentiated between grid points;
    - ``worker_rate``: executions/s per worker; ``worker_totals``: each worker's last sample;
    - ``coverage``: sum of the coverage each corpus entry added (the union the campaign
      reached), falling back to the largest per-worker stats value when there is no corpus;
    - ``corpus``: corpus entries stored; ``bugs``: distinct bugs found (duplicates left
      out; ``duplicates`` counts those);
    - ``worker_totals``' crashes and bugs are each worker's own (``worker_own``).
    """
    with _conn(store) as conn:
        c = conn.execute(select(Campaign).where(Campaign.name == name)).first()
        if c is None:
            return {}
        t0 = c.started_at
        samples = conn.execute(
            select(StatsSample.worker, StatsSample.t.label("at"), StatsSample.executions,
                   StatsSample.coverage, StatsSample.corpus_size, StatsSample.buckets,
                   StatsSample.crashes)
            .where(StatsSample.campaign_id == c.id)
            .order_by(StatsSample.t, StatsSample.worker)).all()
        corpus = conn.execute(
            select(CorpusEntry.found_at, CorpusEntry.new_coverage)
            .where(CorpusEntry.campaign_id == c.id)
            .order_by(CorpusEntry.found_at, CorpusEntry.id)).all()
        firsts = conn.execute(
            select(func.min(Crash.found_at).label("t"))
            .join(Bug, Bug.signature == Crash.signature)
            .where(Crash.campaign_id == c.id, NOT_DUPLICATE).group_by(Crash.signature)
            .order_by("t")).scalars().all()
        own = worker_own(conn, c.id)
        dups = campaign_bug_counts(conn).get(c.id, {}).get("duplicates", 0)

    workers: dict[str, list] = {}
    for s in samples:
        workers.setdefault(s.worker, []).append(s)
    worker_rate: list[dict] = []
    for w, rows in sorted(workers.items()):
        pts, prev = [], None
        for s in rows:
            if prev is not None and s.at > prev.at:
                pts.append([round(s.at - t0, 3),
                            round((s.executions - prev.executions) / (s.at - prev.at), 2)])
            prev = s
        worker_rate.append({"name": w, "points": thin(pts)})
    # campaign totals on a common time grid: each worker's cumulative executions,
    # interpolated between its samples, summed; the rate is the slope between grid points
    total, rate = [], []
    if samples:
        ta, tb = samples[0].at, samples[-1].at
        k = min(RATE_POINTS, max(len(samples) // max(len(workers), 1), 1))
        grid = [ta + (tb - ta) * i / k for i in range(k + 1)] if tb > ta else [ta]
        # each worker starts from 0 executions when the campaign starts
        curves = [([min(t0, rows[0].at)] + [r.at for r in rows], [0] + [r.executions for r in rows])
                  for rows in workers.values()]
        prev = None
        for g in grid:
            n = sum(_interp(ts, ns, g) for ts, ns in curves)
            total.append([round(g - t0, 3), round(n)])
            if prev is not None and g > prev[0]:
                rate.append([round(g - t0, 3), round((n - prev[1]) / (g - prev[0]), 2)])
            prev = (g, n)
    cov, corp, acc = [], [], 0
    for i, e in enumerate(corpus, 1):
        acc += e.new_coverage
        cov.append([round(e.found_at - t0, 3), acc])
        corp.append([round(e.found_at - t0, 3), i])
    if not corpus and samples:
        best: dict[str, int] = {}
        for s in samples:
            best[s.worker] = s.coverage
            cov.append([round(s.at - t0, 3), max(best.values())])
    buckets = [[round(t - t0, 3), i] for i, t in enumerate(firsts, 1)]
    end = max([c.ended_at or 0] + [s.at for s in samples[-1:]] + [e.found_at for e in corpus[-1:]])
    if buckets and end - t0 > buckets[-1][0]:
        buckets.append([round(end - t0, 3), len(firsts)])      # flat until the end
    totals = {}
    for w, rows in workers.items():
        a, b = rows[0], rows[-1]
        span = b.at - a.at
        mine = own.get((c.id, w), {})
        totals[w] = {"executions": b.executions, "coverage": b.coverage,
                     "corpus_size": b.corpus_size, "bugs": mine.get("bugs", 0),
                     "corpus_added": mine.get("corpus", 0),
                     "coverage_added": mine.get("coverage", 0),
                     "crashes": mine.get("crashes", 0), "last_sample": b.at,
                     "rate": round((b.executions - a.executions) / span, 1) if span > 0
                     else None}
    return {"started_at": t0, "rate": thin(rate), "executions": thin(total),
            "worker_rate": worker_rate, "worker_totals": totals, "coverage": thin(cov),
            "corpus": thin(corp), "bugs": buckets, "bug_count": len(firsts),
            "duplicates": dups}


# ------------------------------------------------------------------ bugs
@dataclass
class BugFilter:
    status: str = ""
    kind: str = ""
    variant: str = ""
    campaign: str = ""
    sort: str = "last_seen"
    order: str = "desc"
    page: int = 1
    duplicates: bool = False     # show duplicates too (as `migfuzz bugs --all`)

    @property
    def hides_duplicates(self) -> bool:
        """Duplicates are hidden unless asked for, or unless the status filter asks for
        them (as `migfuzz bugs` does)."""
        return not self.duplicates and not self.status


def bug_facets(store: Store) -> dict[str, list[str]]:
    with _conn(store) as conn:
        return {
            "status": list(conn.execute(select(Bug.status).distinct().order_by(Bug.status))
                           .scalars()),
            "kind": list(conn.execute(select(Bug.kind).distinct().order_by(Bug.kind))
                         .scalars()),
            "variant": list(conn.execute(select(BugVariant.variant).distinct()
                                         .order_by(BugVariant.variant)).scalars()),
            "campaign": list(conn.execute(select(Campaign.name).order_by(Campaign.name))
                             .scalars()),
        }


def bug_list(store: Store, flt: BugFilter) -> dict[str, Any]:
    """One page of bugs (no reproducer text is loaded), each with its variants and its hits
    per time bucket over the span of all crashes shown. Duplicates are left out unless
    ``flt`` asks for them (``hidden`` says how many were). With a campaign, a bug's hits,
    first and last seen and hits over time are that campaign's own (its crashes), and the
    sort uses them."""
    where = []
    if flt.status:
        where.append(Bug.status == flt.status)
    if flt.kind:
        where.append(Bug.kind == flt.kind)
    if flt.variant:
        where.append(exists().where(and_(BugVariant.signature == Bug.signature,
                                         BugVariant.variant == flt.variant)))
    with _conn(store) as conn:
        count, first, last = Bug.count, Bug.first_seen, Bug.last_seen
        src = Bug
        crash_where = []
        if flt.campaign:
            cid = campaign_id(conn, flt.campaign) or -1
            crash_where = [Crash.campaign_id == cid]
            own = (select(Crash.signature.label("sig"), func.count().label("n"),
                          func.min(Crash.found_at).label("first"),
                          func.max(Crash.found_at).label("last"))
                   .where(Crash.campaign_id == cid).group_by(Crash.signature).subquery())
            src = Bug.__table__.join(own, own.c.sig == Bug.signature)
            count, first, last = own.c.n, own.c.first, own.c.last
        hidden = 0
        if flt.hides_duplicates:
            hidden = conn.execute(select(func.count()).select_from(src)
                                  .where(*where, Bug.status == "duplicate")).scalar()
            where.append(NOT_DUPLICATE)
        sorts = {**BUG_SORTS, "count": count, "first_seen": first, "last_seen": last}
        col = sorts.get(flt.sort, last)
        key = col.asc() if flt.order == "asc" else col.desc()
        total = conn.execute(select(func.count()).select_from(src).where(*where)).scalar()
        page = max(1, flt.page)
        rows = conn.execute(
            select(Bug.signature, Bug.kind, Bug.title, Bug.status, count.label("count"),
                   first.label("first_seen"), last.label("last_seen"), Bug.labels,
                   Bug.minimized, Bug.reproducer_steps, Bug.duplicate_of)
            .select_from(src).where(*where).order_by(key, Bug.signature)
            .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
        sigs = [r.signature for r in rows]
        variants: dict[str, list[str]] = {s: [] for s in sigs}
        hits: dict[str, list[int]] = {s: [0] * HIT_BUCKETS for s in sigs}
        span = None
        for i in range(0, len(sigs), 500):
            chunk = sigs[i:i + 500]
            for s, v in conn.execute(select(BugVariant.signature, BugVariant.variant)
                                     .where(BugVariant.signature.in_(chunk))
                                     .order_by(BugVariant.variant)):
                variants[s].append(v)
        if sigs:
            t0, t1 = min(r.first_seen for r in rows), max(r.last_seen for r in rows)
            if t0 is not None:
                width = max((t1 - t0) / HIT_BUCKETS, 1e-6)
                span = [t0, t1]
                b = _bucket_expr(conn, Crash.found_at, t0, width).label("b")
                for i in range(0, len(sigs), 500):
                    chunk = sigs[i:i + 500]
                    for s, k, n in conn.execute(
                            select(Crash.signature, b, func.count())
                            .where(Crash.signature.in_(chunk), *crash_where)
                            .group_by(Crash.signature, b)):
                        hits[s][min(max(int(k), 0), HIT_BUCKETS - 1)] += n
    bugs = [{"signature": r.signature, "kind": r.kind, "title": r.title, "status": r.status,
             "count": r.count, "first_seen": r.first_seen, "last_seen": r.last_seen,
             "labels": list(r.labels or []), "minimized": r.minimized,
             "steps": r.reproducer_steps, "duplicate_of": r.duplicate_of,
             "variants": variants[r.signature], "hits": hits[r.signature]} for r in rows]
    return {"bugs": bugs, "total": total, "page": page, "hidden": hidden,
            "pages": max(1, -(-total // PAGE_SIZE)), "span": span,
            "campaign": flt.campaign}


def bug_hits(store: Store, signature: str, n: int = 40) -> dict[str, Any]:
    """Crashes of one bug per time bucket, and per campaign and variant."""
    with _conn(store) as conn:
        t0, t1 = conn.execute(select(func.min(Crash.found_at), func.max(Crash.found_at))
                              .where(Crash.signature == signature)).one()
        series = []
        if t0 is not None:
            width = max((t1 - t0) / n, 1e-6)
            b = _bucket_expr(conn, Crash.found_at, t0, width).label("b")
            counts = [0] * n
            for k, c in conn.execute(select(b, func.count()).where(Crash.signature == signature)
                                     .group_by(b)):
                counts[min(max(int(k), 0), n - 1)] += c
            series = [[round(i * width, 3), c] for i, c in enumerate(counts)]
        by = conn.execute(
            select(Campaign.name, Crash.variant, func.count(), func.min(Crash.found_at))
            .join(Campaign, Campaign.id == Crash.campaign_id)
            .where(Crash.signature == signature)
            .group_by(Campaign.name, Crash.variant).order_by(Campaign.name, Crash.variant)
        ).all()
    return {"start": t0, "series": series,
            "by": [{"campaign": c, "variant": v, "count": k, "first": f} for c, v, k, f in by]}


def reproducer_result(store: Store, input_hash: str | None) -> dict | None:
    """What the run that stored this input gave (trace hash, findings), from its crashes."""
    if not input_hash:
        return None
    with _conn(store) as conn:
        rows = conn.execute(select(Crash.trace_hash, Crash.signature, Crash.kind, Crash.title)
                            .where(Crash.input_hash == input_hash)
                            .order_by(Crash.id)).all()
    if not rows:
        return None
    seen, findings = set(), []
    for r in rows:
        if r.signature not in seen:
            seen.add(r.signature)
            findings.append({"kind": r.kind, "title": r.title, "signature": r.signature})
    return {"trace_hash": rows[0].trace_hash, "findings": findings}


# ------------------------------------------------------------------ corpus
TOP_GENERATED = 8           # generated scenarios shown one by one; the rest are summed
GROWTH_CAMPAIGNS = 8        # campaigns drawn in the growth chart (the most recent ones)
# a scenario's group: how the corpus page colours and explains it
SCENARIO_GROUPS = {
    "builtin": "built-in scenario (corpus/scenarios, see 'migfuzz scenarios')",
    "generated": "generated by the fuzzer (a mutated scenario, named gen-<hash of its "
                 "content>)",
    "other": "the other generated scenarios, summed",
    "user": "a user's scenario (--scenario FILE) or a minimized one",
}


def scenario_group(name: str) -> str:
    from migfuzz.corpus.builtin import scenario_names
    if name in scenario_names():
        return "builtin"
    return "generated" if name.startswith("gen-") else "user"


def group_scenarios(rows: list[dict], top: int = TOP_GENERATED) -> list[dict]:
    """Per-scenario rows (most entries first) with generated scenarios past the first
    ``top`` summed into one "other generated" row; each row gets its ``group``."""
    out, rest = [], []
    shown = 0
    for r in rows:
        g = scenario_group(r["scenario"])
        if g == "generated":
            if shown >= top:
                rest.append(r)
                continue
            shown += 1
        out.append({**r, "group": g})
    if rest:
        out.append({"scenario": f"other generated ({len(rest)} scenarios)", "group": "other",
                    "entries": sum(r["entries"] for r in rest),
                    "coverage": sum(r["coverage"] for r in rest), "count": len(rest)})
    return out


def corpus_overview(store: Store, campaign: str = "") -> dict[str, Any]:
    """The corpus page. ``growth``: one series per campaign (the most recent
    GROWTH_CAMPAIGNS when all are shown), x in seconds since that campaign started, so
    campaigns run at different times are not drawn on one time axis. ``by_scenario``:
    generated scenarios past the first TOP_GENERATED summed (``generated`` lists them all)."""
    with _conn(store) as conn:
        where = []
        if campaign:
            where.append(CorpusEntry.campaign_id == (campaign_id(conn, campaign) or -1))
        total = conn.execute(select(func.count()).select_from(CorpusEntry).where(*where)
                             ).scalar()
        start = conn.execute(select(func.min(CorpusEntry.found_at)).where(*where)).scalar()
        camps = conn.execute(
            select(Campaign.id, Campaign.name, Campaign.started_at)
            .where(exists().where(CorpusEntry.campaign_id == Campaign.id), *(
                [Campaign.name == campaign] if campaign else []))
            .order_by(Campaign.started_at.desc(), Campaign.id.desc())).all()
        growth = []
        for c in camps[:GROWTH_CAMPAIGNS]:
            times = conn.execute(select(CorpusEntry.found_at)
                                 .where(CorpusEntry.campaign_id == c.id)
                                 .order_by(CorpusEntry.found_at)).scalars().all()
            t0 = min(c.started_at, times[0]) if times else c.started_at
            growth.append({"name": c.name,
                           "points": thin([[0, 0]] + [[round(t - t0, 3), i]
                                                      for i, t in enumerate(times, 1)])})
        by_scenario = conn.execute(
            select(CorpusEntry.scenario, func.count(), func.sum(CorpusEntry.new_coverage))
            .where(*where).group_by(CorpusEntry.scenario)
            .order_by(func.count().desc(), CorpusEntry.scenario)).all()
        by_variant = conn.execute(
            select(CorpusEntry.variant, func.count()).where(*where)
            .group_by(CorpusEntry.variant).order_by(CorpusEntry.variant)).all()
        by_worker = conn.execute(
            select(Campaign.name, CorpusEntry.worker, func.count())
            .join(Campaign, Campaign.id == CorpusEntry.campaign_id).where(*where)
            .group_by(Campaign.name, CorpusEntry.worker)
            .order_by(Campaign.name, CorpusEntry.worker)).all()
    rows = [{"scenario": s, "entries": n, "coverage": int(c or 0)} for s, n, c in by_scenario]
    return {"start": start, "total": total, "growth": growth,
            "growth_campaigns": len(camps),
            "by_scenario": group_scenarios(rows),
            "generated": [r for r in rows if scenario_group(r["scenario"]) == "generated"],
            "groups": SCENARIO_GROUPS,
            "by_variant": [{"variant": v, "entries": n} for v, n in by_variant],
            "by_worker": [{"campaign": c, "worker": w, "entries": n}
                          for c, w, n in by_worker]}


# ------------------------------------------------------------------ metrics
def metrics_snapshot(store: Store) -> dict[str, Any]:
    """Everything /metrics exports, read in one transaction. A worker's executions,
    coverage and corpus size are from its last stats sample; its crashes and bugs are its
    own (``worker_own``). Bugs leave duplicates out; duplicates are counted apart."""
    with _conn(store) as conn:
        camps = conn.execute(select(Campaign.id, Campaign.name, Campaign.variant,
                                    Campaign.status, Campaign.started_at)).all()
        names = {c.id: c.name for c in camps}
        last = (select(StatsSample.campaign_id, StatsSample.worker,
                       func.max(StatsSample.t).label("t"))
                .group_by(StatsSample.campaign_id, StatsSample.worker).subquery())
        workers = conn.execute(
            select(StatsSample.campaign_id, StatsSample.worker, StatsSample.t.label("at"),
                   StatsSample.executions, StatsSample.coverage, StatsSample.corpus_size)
            .join(last, and_(StatsSample.campaign_id == last.c.campaign_id,
                             StatsSample.worker == last.c.worker,
                             StatsSample.t == last.c.t))
            .order_by(StatsSample.campaign_id, StatsSample.worker)).all()
        own = worker_own(conn)
        corpus = dict(conn.execute(select(CorpusEntry.campaign_id, func.count())
                                   .group_by(CorpusEntry.campaign_id)).all())
        crashes = dict(conn.execute(select(Crash.campaign_id, func.count())
                                    .group_by(Crash.campaign_id)).all())
        bugs = conn.execute(select(Bug.kind, Bug.status, func.count())
                            .group_by(Bug.kind, Bug.status)
                            .order_by(Bug.kind, Bug.status)).all()
        per_campaign = (select(Crash.campaign_id, Crash.signature).distinct().subquery())
        camp_bugs = conn.execute(
            select(per_campaign.c.campaign_id, Bug.kind, Bug.status, func.count())
            .join(Bug, Bug.signature == per_campaign.c.signature)
            .group_by(per_campaign.c.campaign_id, Bug.kind, Bug.status)
            .order_by(per_campaign.c.campaign_id, Bug.kind, Bug.status)).all()
    return {"campaigns": [{"name": c.name, "variant": c.variant, "status": c.status,
                           "started_at": c.started_at, "corpus": corpus.get(c.id, 0),
                           "crashes": crashes.get(c.id, 0)} for c in camps],
            "workers": [{"campaign": names.get(w.campaign_id, ""), "worker": w.worker,
                         "t": w.at, "executions": w.executions, "coverage": w.coverage,
                         "corpus_size": w.corpus_size,
                         "bugs": own.get((w.campaign_id, w.worker), {}).get("bugs", 0),
                         "corpus_added": own.get((w.campaign_id, w.worker), {}).get("corpus", 0),
                         "coverage_added": own.get((w.campaign_id, w.worker), {}).get(
                             "coverage", 0),
                         "crashes": own.get((w.campaign_id, w.worker), {}).get("crashes", 0)}
                        for w in workers],
            "bugs": [{"kind": k, "status": s, "count": n} for k, s, n in bugs
                     if s != "duplicate"],
            "duplicates": [{"kind": k, "count": n} for k, s, n in bugs if s == "duplicate"],
            "campaign_bugs": [{"campaign": names.get(cid, ""), "kind": k, "status": s,
                               "count": n} for cid, k, s, n in camp_bugs
                              if s != "duplicate"],
            "campaign_duplicates": [{"campaign": names.get(cid, ""), "kind": k, "count": n}
                                    for cid, k, s, n in camp_bugs if s == "duplicate"]}
