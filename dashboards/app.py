"""The FastAPI application: HTML pages, the reproducer download and ``/metrics``.

Every route is a GET over the read-only store (see readonly.py). Templates are autoescaped
(user text such as triage notes and labels is shown as text), and a Content-Security-Policy
allows scripts and styles from this server only: no inline script, no CDN, no network.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import shlex
from pathlib import Path
from urllib.parse import quote, urlencode

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, FileSystemLoader
from sqlalchemy.engine import make_url

from migfuzz.corpus import input as inputs
from migfuzz.db.engine import redact
from migfuzz.db.store import BUG_STATUSES, Store

from . import metrics, queries
from .readonly import open_readonly
from .swimlane import explain_bug

HERE = Path(__file__).parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")


def _ts(t) -> str:
    if t is None:
        return "-"
    return dt.datetime.fromtimestamp(float(t), dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _dur(s) -> str:
    if s is None:
        return "-"
    s = float(s)
    if round(s * 1000) < 1000:
        return f"{s * 1000:.0f} ms"
    if s < 120:
        return f"{s:.1f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _num(n) -> str:
    if n is None:
        return "-"
    if isinstance(n, float):
        return f"{n:,.1f}"
    return f"{n:,}"


def _safe_name(sig: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", sig)[:80]


def _db_for_command(url: str) -> str:
    """The --db to show in a command: a SQLite path made absolute, a password hidden."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database:
        return "sqlite:///" + os.path.abspath(u.database)
    return redact(url)


def _qs(flt, **changes) -> str:
    """The bug list's query string with some parameters changed (empty ones left out)."""
    p = {k: getattr(flt, k) for k in ("status", "kind", "variant", "campaign", "sort",
                                      "order", "page")}
    p["duplicates"] = "1" if flt.duplicates else ""
    p.update(changes)
    return urlencode({k: v for k, v in p.items() if v not in ("", None, False)})


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(HERE / "templates")), autoescape=True,
                      trim_blocks=True, lstrip_blocks=True)
    env.filters.update(ts=_ts, dur=_dur, num=_num, q=lambda s: quote(str(s), safe=""))
    env.globals["qs"] = _qs
    return env


def create_app(url: str | None = None, store: Store | None = None) -> FastAPI:
    """The dashboard over the database at ``url`` (opened read-only), or over ``store``."""
    store = store or open_readonly(url)
    templates = Jinja2Templates(env=_env())
    app = FastAPI(title="migfuzz dashboard", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.store = store
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    db_label = redact(store.url)
    db_arg = _db_for_command(store.url)

    @app.middleware("http")
    async def headers(request: Request, call_next):
        resp = await call_next(request)
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "no-referrer"
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    def page(request: Request, name: str, nav: str, **ctx) -> HTMLResponse:
        return templates.TemplateResponse(request, name, {"nav": nav, "db": db_label, **ctx})

    @app.get("/", response_class=HTMLResponse)
    def campaigns(request: Request):
        camps = queries.campaign_rows(store)
        return page(request, "campaigns.html", "campaigns", campaigns=camps,
                    counts=store.counts(), totals=queries.bug_totals(store))

    @app.get("/campaigns/{name:path}", response_class=HTMLResponse)
    def campaign(request: Request, name: str):
        c = store.get_campaign(name)
        if c is None:
            raise HTTPException(404, f"no campaign named {name!r}")
        series = queries.campaign_series(store, name)
        bugs = queries.bug_list(store, queries.BugFilter(campaign=name))
        return page(request, "campaign.html", "campaigns", c=c, s=series, bugs=bugs)

    @app.get("/bugs", response_class=HTMLResponse)
    def bugs(request: Request, status: str = "", kind: str = "", variant: str = "",
             campaign: str = "", sort: str = "last_seen", order: str = "desc",
             page_no: int = Query(1, alias="page", ge=1, le=1_000_000),
             duplicates: str = ""):
        if sort not in queries.BUG_SORTS:
            sort = "last_seen"
        order = "asc" if order == "asc" else "desc"
        flt = queries.BugFilter(status=status, kind=kind, variant=variant,
                                campaign=campaign, sort=sort, order=order, page=page_no,
                                duplicates=duplicates not in ("", "0"))
        data = queries.bug_list(store, flt)
        facets = queries.bug_facets(store)
        facets["status"] = sorted(set(facets["status"]) | set(BUG_STATUSES))
        return page(request, "bugs.html", "bugs", data=data, f=flt, facets=facets)

    @app.get("/bugs/{signature:path}/reproducer.json")
    def reproducer(signature: str):
        bug = store.get_bug(signature)
        if bug is None or bug.reproducer is None:
            raise HTTPException(404, "no reproducer for this bug")
        inp = dict(bug.reproducer)
        if "result" not in inp:
            res = queries.reproducer_result(store, bug.reproducer_hash)
            if res is None:                   # e.g. a minimized reproducer: replay it now
                ex = explain_bug(inp, signature)
                res = ex.get("result")
            if res is not None:
                inp["result"] = res
        name = f"repro-{_safe_name(signature)}.json"
        return Response(inputs.dumps(inp), media_type="application/json",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.get("/bugs/{signature:path}", response_class=HTMLResponse)
    def bug(request: Request, signature: str):
        b = store.get_bug(signature)
        if b is None:
            raise HTTPException(404, f"no bug with signature {signature!r}")
        ex = explain_bug(b.reproducer, signature) if b.reproducer else \
            {"error": "no reproducer stored"}
        hits = queries.bug_hits(store, signature)
        fname = f"repro-{_safe_name(signature)}.json"
        dl = f"{str(request.base_url).rstrip('/')}/bugs/{quote(signature, safe='')}/reproducer.json"
        cmd = f"migfuzz replay {shlex.quote(signature)} --db {shlex.quote(db_arg)} --trace"
        offline = (f"curl -fsS -o {shlex.quote(fname)} {shlex.quote(dl)}\n"
                   f"migfuzz replay {shlex.quote(fname)} --trace")
        lanes = ex.get("lanes")
        from migfuzz.db.verdicts import verdicts
        return page(request, "bug.html", "bugs", b=b, ex=ex, hits=hits, cmd=cmd,
                    offline=offline, download=dl, fname=fname, lanes=lanes,
                    kernel=verdicts(store, signature))

    @app.get("/corpus", response_class=HTMLResponse)
    def corpus(request: Request, campaign: str = ""):
        data = queries.corpus_overview(store, campaign)
        names = [c["name"] for c in store.list_campaigns()]
        return page(request, "corpus.html", "corpus", data=data, campaign=campaign,
                    campaigns=names)

    @app.get("/metrics")
    def prom():
        return PlainTextResponse(metrics.render(queries.metrics_snapshot(store)),
                                 media_type=metrics.CONTENT_TYPE)

    @app.get("/healthz")
    def healthz():
        rev, head = store.revision()
        return {"ok": True, "revision": rev, "head": head, "read_only": True}

    @app.exception_handler(HTTPException)
    async def not_found(request: Request, exc: HTTPException):
        if request.url.path.startswith(("/metrics", "/healthz", "/static")) or \
                request.url.path.endswith(".json"):
            return PlainTextResponse(str(exc.detail), status_code=exc.status_code)
        return templates.TemplateResponse(request, "error.html",
                                          {"nav": "", "db": db_label, "message": exc.detail},
                                          status_code=exc.status_code)

    return app
