"""The store API: what the fuzzer, the workers, the CLI and the dashboard call.

Plain dicts and dataclasses in and out; every write batch is one transaction; every write
is idempotent (keyed by content hash), so a retried batch adds nothing:

- corpus entries are unique per (campaign, input hash);
- crashes are unique per (campaign, input hash, signature);
- a bug is one row per signature, created or updated by ``INSERT ... ON CONFLICT`` in the
  same transaction as the crashes that are actually new, so its count is exactly the number
  of crash rows for that signature, however many writers race;
- stats samples are unique per (campaign, worker, t).

On PostgreSQL rows are written in sorted key order (no lock cycles between writers) and a
transaction that still hits a deadlock or serialization failure is retried whole.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable, Iterator, Sequence

from sqlalchemy import JSON, case, func, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, SQLAlchemyError

from migfuzz.corpus import input as inputs
from migfuzz.fuzzer import ENGINE_VERSION
from migfuzz.fuzzer.kernel.variants import VariantError, resolve_variant

from . import liveness, migrate, packing
from .engine import (READ_OPTION, check_intact, error_message, make_engine,
                     readonly_engine, resolve_url, where)
from .errors import CampaignBusy, CampaignExists, StoreError
from .models import (Bug as BugRow, BugTitle, BugVariant, Campaign as CampaignRow,
                     CorpusEntry, Crash, Scenario, StatsSample)

BUG_STATUSES = ("new", "triaged", "fixed", "invalid", "duplicate")
CAMPAIGN_STATUSES = ("running", "stopped", "finished", "failed")
STALE = "stale"          # shown for a running campaign whose owner is gone (db.liveness)
MAX_TITLE = 500
RETRIES = 6
MAX_CRASHES_PER_BUG = 100        # crash rows kept per bug (see Store._cap_crashes)
# PostgreSQL: a table's rows go through COPY (into a temporary table, then one INSERT ...
# SELECT ... ON CONFLICT) from this many rows in one write; fewer go as multi-row INSERTs.
# bench/results/store.md: COPY vs INSERT per row count
COPY_MIN = 64


@dataclass
class Campaign:
    name: str
    variant: str
    config: dict
    seed: int | None
    status: str
    engine_version: str
    started_at: float
    ended_at: float | None
    id: int = 0
    owner: str | None = None            # HOST:PID:TOKEN of its last writer (db.liveness)
    heartbeat_at: float | None = None
    updated_at: float | None = None

    def liveness(self, now: float | None = None) -> tuple[bool, str] | None:
        """For a running campaign: (owner alive, why); None when it is not running."""
        if self.status != "running":
            return None
        return liveness.owner_alive(self.owner, self.heartbeat_at, self.updated_at, now)

    def shown_status(self, now: float | None = None) -> str:
        """The status to show: 'stale' for a running campaign whose owner is gone."""
        live = self.liveness(now)
        return STALE if live is not None and not live[0] else self.status

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class Bug:
    signature: str
    kind: str
    title: str
    status: str
    duplicate_of: str | None
    count: int
    first_seen: float
    last_seen: float
    alt_titles: list[str]
    variants: list[str]
    reproducer: dict | None
    reproducer_hash: str | None
    reproducer_steps: int | None
    minimized: bool
    notes: str
    labels: list[str]
    repro_attempts: int
    repro_successes: int

    @property
    def reliability(self) -> float | None:
        """Fraction of reproduction attempts that showed the bug (None: never tried)."""
        return self.repro_successes / self.repro_attempts if self.repro_attempts else None

    def to_json(self) -> dict:
        return {**asdict(self), "reliability": self.reliability}


@dataclass
class CampaignState:
    """Everything a resumed campaign needs: its corpus (in the order found), the union of
    the coverage the corpus added, its buckets, and the counters of its last stats."""
    campaign: Campaign
    corpus: list[dict]
    coverage: list                       # sorted; list-valued keys come back as tuples
    buckets: dict[str, dict]             # signature -> kind, title, count, first_seen, ...
    executions: int                      # sum over workers of their last sample
    crashes: int
    workers: dict[str, dict] = field(default_factory=dict)   # worker -> its last sample


def _now() -> float:
    return time.time()


def _short(s: Any, n: int) -> str:
    """For denormalized text columns: a string, at most n characters, no NULs."""
    return str(s).replace("\x00", "")[:n]


def _text(obj: Any, what: str) -> str:
    """Canonical JSON text that both backends can store (valid UTF-8)."""
    try:
        t = inputs.canonical(obj)
        t.encode("utf-8")
        return t
    except (TypeError, ValueError) as e:
        raise StoreError(f"{what}: cannot be stored as JSON ({type(e).__name__})") from None


def _key(k: Any):
    return tuple(k) if isinstance(k, list) else k


def _require_schema(conn: Connection, url: str) -> None:
    """An existing database for a command that does not create one: it must have a
    migfuzz schema revision (an empty PostgreSQL database, or some other program's
    SQLite file, is refused instead of being given migfuzz's tables)."""
    if migrate.current(conn) is None:
        raise StoreError(f"database {where(url)} has no migfuzz schema (an empty or "
                         f"another program's database); 'migfuzz fuzz' or 'migfuzz db "
                         f"upgrade' creates one")


def liveness_busy(name: str, why: str) -> CampaignBusy:
    return CampaignBusy(f"campaign {name!r} is running ({why}); a campaign has one writer: "
                        f"stop that process first, or resume it once it has ended")


def _guarded(fn):
    """Database errors escaping a Store method become one-line StoreErrors naming the
    database (a damaged file, a read-only one, a lost connection, ...)."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def gen(self, *a, **kw):
            try:
                yield from fn(self, *a, **kw)
            except SQLAlchemyError as e:
                raise StoreError(error_message(self.url, e)) from None
        return gen

    @functools.wraps(fn)
    def wrapper(self, *a, **kw):
        try:
            return fn(self, *a, **kw)
        except SQLAlchemyError as e:
            raise StoreError(error_message(self.url, e)) from None
    return wrapper


class Store:
    """One database. ``Store.open(url)`` migrates (or refuses a newer schema) first."""

    def __init__(self, engine: Engine, url: str, *, check_inputs: bool = True,
                 max_crashes_per_bug: int = MAX_CRASHES_PER_BUG, readonly: bool = False):
        self.engine = engine
        self.readonly = readonly
        if max_crashes_per_bug < 1:
            raise StoreError("max_crashes_per_bug must be at least 1")
        self.max_crashes_per_bug = max_crashes_per_bug
        # False skips corpus.input.check (about 0.3 ms an input) for inputs this process
        # built itself with corpus.input.make from validated scenarios; hashing and the
        # database's own constraints still apply
        self.check_inputs = check_inputs
        self.url = url
        self.dialect = engine.dialect.name
        if self.dialect == "postgresql":
            self._reader = engine.execution_options(isolation_level="REPEATABLE READ",
                                                    postgresql_readonly=True)
        else:
            self._reader = engine.execution_options(**{READ_OPTION: True})
        self._insert = postgresql.insert if self.dialect == "postgresql" else sqlite.insert
        self._campaign_ids: dict[str, int] = {}
        self._checked: dict[int, tuple[dict, str, str, str]] = {}
        self._stmts: dict[str, Any] = {}
        self._scenarios_stored: set[str] = set()       # scenario hashes known committed
        self.copy_min = COPY_MIN
        self._owned: dict[str, str] = {}               # campaign -> our owner string
        self._beats: dict[str, liveness.Heartbeat] = {}

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    def open(cls, url: str | None = None, *, upgrade: bool = True,
             check_inputs: bool = True, create: bool = True,
             max_crashes_per_bug: int = MAX_CRASHES_PER_BUG) -> "Store":
        """Open for writing: migrate (``upgrade``) or refuse an older schema, refuse a
        newer one. ``create=False``: a missing (or 0-byte) SQLite file is an error."""
        url = resolve_url(url)
        engine = make_engine(url, create=create)
        delay = 0.05
        for attempt in range(8):
            try:
                check_intact(engine, url)
                with engine.begin() as conn:
                    if not create:
                        _require_schema(conn, url)
                    migrate.check_and_upgrade(conn, upgrade=upgrade)
                break
            except StoreError:
                engine.dispose()
                raise
            except DBAPIError as e:
                msg = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
                # two processes creating one SQLite file at once: switching a brand-new
                # file to WAL can fail with SQLITE_BUSY without waiting on busy_timeout
                # (seen in CI: 1 run in ~20 of the two-writer test); it clears at once
                if "database is locked" in msg and attempt < 7:
                    engine.dispose()
                    time.sleep(delay)
                    delay *= 2
                    continue
                engine.dispose()
                raise StoreError(error_message(url, e, opening=True)) from None
        return cls(engine, url, check_inputs=check_inputs,
                   max_crashes_per_bug=max_crashes_per_bug)

    @classmethod
    def open_readonly(cls, url: str | None = None, *, require_head: bool = True) -> "Store":
        """Open for reading only (reading commands): nothing is created, migrated or
        written, and an archived SQLite file in a read-only directory opens too (see
        ``db.engine.sqlite_readonly_engine``). A missing, empty or damaged database, or
        one without migfuzz's schema, is refused; ``require_head``: so is an older schema
        (whose tables may lack columns this code reads)."""
        url = resolve_url(url)
        engine = readonly_engine(url)
        try:
            with engine.connect() as conn:
                _require_schema(conn, url)
                rev, head = migrate.check(conn)
            if require_head and rev != head:
                raise StoreError(f"the database schema (revision {rev}) is older than this "
                                 f"migfuzz (head {head}); run 'migfuzz db upgrade'")
        except StoreError:
            engine.dispose()
            raise
        except SQLAlchemyError as e:
            engine.dispose()
            raise StoreError(error_message(url, e, opening=True)) from None
        return cls(engine, url, readonly=True)

    def close(self) -> None:
        for name in list(self._owned):
            self._let_go(name)
        self.engine.dispose()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def revision(self) -> tuple[str | None, str]:
        with self._reader.connect() as conn:
            return migrate.current(conn), migrate.head()

    def _write(self, fn: Callable[[Connection], Any]) -> Any:
        """Run fn in one write transaction, retrying transient conflicts."""
        delay = 0.02
        for attempt in range(RETRIES):
            try:
                with self.engine.begin() as conn:
                    return fn(conn)
            except OperationalError as e:
                code = getattr(e.orig, "sqlstate", None)
                transient = code in ("40P01", "40001") or "database is locked" in str(e.orig)
                if not transient or attempt == RETRIES - 1:
                    raise
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    # ---------------------------------------------------------------- campaigns
    def create_campaign(self, name: str, variant: str, config: dict | None = None,
                        seed: int | None = None, engine_version: str = ENGINE_VERSION,
                        *, exist_ok: bool = False, own: bool = False) -> Campaign:
        """A new campaign, status running. ``own``: this Store becomes its owner (see
        db.liveness): it beats its heartbeat until it ends the campaign or closes, and
        its writes fail once another process has taken the campaign over. A taken name
        raises CampaignExists (atomically: two creators of one name cannot both win)."""
        if not isinstance(name, str) or not name or len(name) > 200 or "\x00" in name:
            raise StoreError("a campaign name is a non-empty string of at most 200 characters")
        cfg_text = _text(config or {}, "campaign config")
        now = _now()
        owner = liveness.new_owner() if own else None
        row = dict(name=name, variant=_short(variant, 200), config=json.loads(cfg_text),
                   seed=seed, status="running", engine_version=_short(engine_version, 32),
                   started_at=now, ended_at=None, updated_at=now, owner=owner,
                   heartbeat_at=now if own else None)

        def tx(conn):
            ins = self._insert(CampaignRow).values(row).on_conflict_do_nothing(
                index_elements=["name"]).returning(CampaignRow.id)
            return conn.execute(ins).scalar()

        new_id = self._write(tx)
        if new_id is None and not exist_ok:
            raise CampaignExists(f"campaign {name!r} already exists (use --resume {name})")
        if new_id is not None and owner is not None:
            self._own(name, owner)
        c = self.get_campaign(name)
        assert c is not None
        return c

    def claim_campaign(self, name: str) -> Campaign:
        """Become the writer of an existing campaign (``--resume``) and mark it running.

        Refused (CampaignBusy) while it is running under a live owner (db.liveness);
        accepted when it is not running, or its owner is dead or silent. The claim is one
        conditional UPDATE (``WHERE owner`` is still what we read), so of two processes
        claiming at once exactly one wins; the other is refused."""
        old = self.campaign(name)
        if old.status == "running":
            alive, why = old.liveness()
            if alive:
                raise liveness_busy(name, why)
        owner = liveness.new_owner()
        now = _now()

        def tx(conn):
            same = (CampaignRow.owner.is_(None) if old.owner is None
                    else CampaignRow.owner == old.owner)
            return conn.execute(update(CampaignRow).where(
                CampaignRow.id == old.id, same, CampaignRow.status == old.status).values(
                status="running", ended_at=None, owner=owner, heartbeat_at=now,
                updated_at=now)).rowcount
        if self._write(tx) != 1:
            now_row = self.get_campaign(name)
            why = now_row.liveness()[1] if now_row and now_row.liveness() else "just now"
            raise liveness_busy(name, f"claimed by another process ({why})")
        self._own(name, owner)
        return self.campaign(name)

    def restore_campaign(self, name: str, before: Campaign) -> None:
        """Undo our claim (a resume that failed after claiming): status, end time, owner
        and heartbeat as they were, if the campaign is still ours."""
        owner = self._owned.get(name)
        if owner is None:
            return

        def tx(conn):
            conn.execute(update(CampaignRow).where(
                CampaignRow.name == name, CampaignRow.owner == owner).values(
                status=before.status, ended_at=before.ended_at, owner=before.owner,
                heartbeat_at=before.heartbeat_at))
        try:
            self._write(tx)
        finally:
            self._let_go(name)

    def heartbeat(self, name: str) -> bool:
        """Our campaign is alive: set its heartbeat. False if it is no longer ours."""
        owner = self._owned.get(name)
        if owner is None:
            return False

        def tx(conn):
            return conn.execute(update(CampaignRow).where(
                CampaignRow.name == name, CampaignRow.owner == owner).values(
                heartbeat_at=_now())).rowcount
        return self._write(tx) == 1

    def _own(self, name: str, owner: str) -> None:
        self._owned[name] = owner
        liveness.hold(owner)
        self._beats[name] = liveness.Heartbeat(lambda: self.heartbeat(name)).start()

    def _let_go(self, name: str) -> None:
        beat = self._beats.pop(name, None)
        if beat is not None:
            beat.stop()
        owner = self._owned.pop(name, None)
        if owner is not None:
            liveness.release(owner)

    def _owner_check(self, conn: Connection, cid: int, name: str, values: dict) -> None:
        """Within a write transaction on an owned campaign: update its row if it is still
        ours, else fail the transaction (another process took it over)."""
        owner = self._owned.get(name)
        q = update(CampaignRow).where(CampaignRow.id == cid)
        if owner is not None:
            q = q.where(CampaignRow.owner == owner)
        if conn.execute(q.values(values)).rowcount != 1 and owner is not None:
            taken = conn.execute(select(CampaignRow.owner).where(
                CampaignRow.id == cid)).scalar()
            raise CampaignBusy(f"campaign {name!r} was taken over by another process "
                               f"({taken}); this one stops writing it")

    def get_campaign(self, name: str) -> Campaign | None:
        with self._reader.begin() as conn:
            r = conn.execute(select(CampaignRow).where(CampaignRow.name == name)).first()
            return self._campaign(r) if r else None

    def campaign(self, name: str) -> Campaign:
        c = self.get_campaign(name)
        if c is None:
            raise StoreError(f"no campaign named {name!r}")
        return c

    @staticmethod
    def _campaign(r) -> Campaign:
        return Campaign(name=r.name, variant=r.variant, config=r.config, seed=r.seed,
                        status=r.status, engine_version=r.engine_version,
                        started_at=r.started_at, ended_at=r.ended_at, id=r.id,
                        owner=r.owner, heartbeat_at=r.heartbeat_at, updated_at=r.updated_at)

    def _cid(self, conn: Connection, name: str) -> int:
        cid = self._campaign_ids.get(name)
        if cid is None:
            cid = conn.execute(select(CampaignRow.id).where(CampaignRow.name == name)).scalar()
            if cid is None:
                raise StoreError(f"no campaign named {name!r}")
            self._campaign_ids[name] = cid
        return cid

    def set_campaign_status(self, name: str, status: str) -> None:
        if status not in CAMPAIGN_STATUSES:
            raise StoreError(f"campaign status must be one of {', '.join(CAMPAIGN_STATUSES)}")
        now = _now()

        def tx(conn):
            cid = self._cid(conn, name)
            vals = dict(status=status, updated_at=now,
                        ended_at=None if status == "running" else now)
            if name in self._owned:
                vals["heartbeat_at"] = now
            self._owner_check(conn, cid, name, vals)
        self._write(tx)
        if status != "running":
            self._let_go(name)         # the owner string stays: who ran it last

    def list_campaigns(self) -> list[dict]:
        """Campaigns with their corpus, crash, bug and duplicate counts, newest first."""
        with self._reader.begin() as conn:
            corpus = dict(conn.execute(select(CorpusEntry.campaign_id, func.count())
                                       .group_by(CorpusEntry.campaign_id)).all())
            crashes = dict(conn.execute(select(Crash.campaign_id, func.count())
                                        .group_by(Crash.campaign_id)).all())
            # "bugs" as 'migfuzz bugs' counts them: the distinct bugs a campaign hit,
            # those filed as duplicates of another apart (one word, one count everywhere)
            hit = (select(Crash.campaign_id, Crash.signature).distinct().subquery())
            bugs: dict[int, list[int]] = {}
            for cid, status, n in conn.execute(
                    select(hit.c.campaign_id, BugRow.status, func.count())
                    .join(BugRow, BugRow.signature == hit.c.signature)
                    .group_by(hit.c.campaign_id, BugRow.status)).all():
                bugs.setdefault(cid, [0, 0])[1 if status == "duplicate" else 0] += n
            out = []
            now = _now()
            for r in conn.execute(select(CampaignRow).order_by(CampaignRow.started_at.desc(),
                                                                CampaignRow.id.desc())):
                n = crashes.get(r.id, 0)
                b, d = bugs.get(r.id, (0, 0))
                c = self._campaign(r)
                live = c.liveness(now)
                # "status" is what to show (a running campaign whose owner is gone is
                # "stale"); "stored_status" is the column, "liveness" says why
                out.append({**c.to_json(), "status": c.shown_status(now),
                            "stored_status": c.status,
                            "liveness": live[1] if live else None,
                            "corpus": corpus.get(r.id, 0), "crashes": n, "bugs": b,
                            "duplicates": d})
            return out

    # ---------------------------------------------------------------- writes
    def add_corpus_entries(self, campaign: str, entries: Iterable[dict]) -> dict:
        """Entries: {"input": input dict, "coverage": [keys it added], "parent": hash or
        None, "worker": str, "found_at": epoch seconds (default now)}. Returns
        {"added": n, "new": [hashes stored by this call]}."""
        return self.write_batch(campaign, corpus=entries)["corpus"]

    def add_crashes(self, campaign: str, crashes: Iterable[dict]) -> dict:
        """Crashes: {"input": input dict, "signature", "kind", "title" (or "finding": a
        Finding), "trace_hash", "steps", "worker", "found_at"}. Returns {"added": n,
        "new": [[input hash, signature], ...], "new_bugs": [signatures first seen]}."""
        return self.write_batch(campaign, crashes=crashes)["crashes"]

    def add_stats(self, campaign: str, worker: str, samples: Iterable[dict]) -> int:
        """Samples: {"t", "executions", "coverage", "corpus_size", "buckets", "crashes",
        "extra"}; counters are cumulative per worker. Returns how many were new."""
        return self.write_batch(campaign, stats=[{**s, "worker": worker} for s in samples])[
            "stats"]

    def write_batch(self, campaign: str, *, corpus: Iterable[dict] = (),
                    crashes: Iterable[dict] = (), stats: Iterable[dict] = ()) -> dict:
        """Corpus entries, crashes and stats samples in ONE transaction: when this returns,
        all of it is stored; if the process dies before, none of it is."""
        now = _now()
        self._checked = {}          # an input object shared by an entry and a crash: once
        self._sc_texts = {}         # id(scenario dict) -> (dict, canonical text, hash)
        self._new_scenarios = {}    # scenario hash -> row, for this batch
        self._crash_inputs = {}     # input hash -> input dict, for bug reproducers
        try:
            crows = self._corpus_rows(corpus, now)
            xrows = self._crash_rows(crashes, now)
            srows = self._stats_rows(stats, now)
        finally:
            self._checked = {}
            self._sc_texts = {}
        scen = [self._new_scenarios[h] for h in sorted(self._new_scenarios)
                if h not in self._scenarios_stored]

        def tx(conn):
            cid = self._cid(conn, campaign)
            out = {"corpus": {"added": 0, "new": []},
                   "crashes": {"added": 0, "new": [], "new_bugs": [], "not_kept": 0},
                   "stats": 0}
            if scen:
                # a scenario row is immutable and keyed by its content: a conflict is the
                # same row written by another batch or writer
                conn.execute(self._memo("scenario", lambda: self._insert(
                    Scenario.__table__).on_conflict_do_nothing(index_elements=["hash"])),
                    scen)
            if crows:
                out["corpus"] = self._write_corpus(conn, cid, crows)
            if xrows:
                out["crashes"] = self._write_crashes(conn, cid, xrows, now)
            if srows:
                out["stats"] = self._write_stats(conn, cid, srows)
            if crows or xrows or srows or campaign in self._owned:
                vals = {"updated_at": now}
                if campaign in self._owned:
                    vals["heartbeat_at"] = now
                self._owner_check(conn, cid, campaign, vals)
            return out
        try:
            out = self._write(tx)
        except IntegrityError as e:
            raise StoreError(f"batch rejected by the database: "
                             f"{str(e.orig).strip().splitlines()[0]}") from None
        # only once committed: a rolled-back batch's scenarios are written again next time
        self._scenarios_stored.update(r["hash"] for r in scen)
        return out

    # rows are validated and hashed before the transaction starts
    def _cached(self, inp: Any, what: str, width: int) -> tuple | None:
        """This batch's earlier result for the same input object (``_input`` keeps 4
        fields, ``_packed`` 5), or None; refuses a non-object first."""
        if not isinstance(inp, dict):
            raise StoreError(f"{what}: 'input' must be an input object")
        hit = self._checked.get(id(inp))
        return hit if hit is not None and hit[0] is inp and len(hit) == width else None

    def _check_input(self, inp: dict, what: str) -> str:
        """Check an input (fully, or its keys only with check_inputs=False, as the farm's
        recorder writes what workers already checked); its canonical variant name."""
        if self.check_inputs:
            inputs.check(inp, what)
        elif not all(k in inp for k in ("scenario", "variant", "schedule")):
            raise StoreError(f"{what}: not an input (needs scenario, variant, schedule)")
        return resolve_variant(inp["variant"])[0]

    def _input(self, inp: Any, what: str) -> tuple[dict, str, str, str]:
        """(input, content hash, canonical text, canonical variant name), checked (the
        whole input's text: for a bug's reproducer)."""
        hit = self._cached(inp, what, 4)
        if hit is not None:
            return hit
        cache = self._checked
        try:
            vname = self._check_input(inp, what)
            h = inputs.content_hash(inp)
        except (inputs.InputError, VariantError) as e:
            raise StoreError(str(e)) from None
        except (UnicodeEncodeError, TypeError, KeyError, AttributeError) as e:
            raise StoreError(f"{what}: input cannot be stored ({type(e).__name__})") from None
        out = cache[id(inp)] = (inp, h, _text(inp, what), _short(vname, 200))
        return out

    def _packed(self, inp: Any, what: str) -> tuple[dict, str, str, str, str]:
        """(input, content hash, packed text, scenario hash, canonical variant name) for
        a corpus or crash row (db.packing), checked as ``_input`` checks; the scenario
        joins this batch's new scenarios. The content hash is composed from the
        scenario's canonical text, canonicalized once per scenario object per batch (a
        scenario is ~80% of an input's text): the same text ``corpus.input.content_hash``
        hashes (sorted keys: scenario, schedule, variant; tests/store checks the two
        agree)."""
        hit = self._cached(inp, what, 5)
        if hit is not None:
            return hit
        cache = self._checked
        try:
            vname = self._check_input(inp, what)
            sc = inp["scenario"]
            if not isinstance(sc, dict):
                raise StoreError(f"{what}: 'scenario' must be an object")
            got = self._sc_texts.get(id(sc))
            if got is None or got[0] is not sc:
                sc_text = packing.canonical(sc)
                sc_text.encode("utf-8")
                got = self._sc_texts[id(sc)] = (sc, sc_text, packing.scenario_hash(sc_text))
            _, sc_text, sc_hash = got
            core = (f'{{"scenario":{sc_text},"schedule":{packing.canonical(inp["schedule"])},'
                    f'"variant":{packing.canonical(vname)}}}')
            h = hashlib.sha256(core.encode()).hexdigest()[:24]
            rest = packing.pack_rest(inp)
            rest.encode("utf-8")
        except (inputs.InputError, VariantError) as e:
            raise StoreError(str(e)) from None
        except (UnicodeEncodeError, TypeError, KeyError, AttributeError, ValueError) as e:
            raise StoreError(f"{what}: input cannot be stored ({type(e).__name__})") from None
        if sc_hash not in self._new_scenarios:
            self._new_scenarios[sc_hash] = {"hash": sc_hash, "body": sc_text,
                                            "name": _short(sc.get("name", ""), 200)}
        out = cache[id(inp)] = (inp, h, rest, sc_hash, _short(vname, 200))
        return out

    def _corpus_rows(self, entries: Iterable[dict], now: float) -> list[dict]:
        rows: dict[str, dict] = {}
        for i, e in enumerate(entries):
            inp, h, txt, sch, vname = self._packed(e.get("input"), f"corpus entry {i}")
            if h in rows:
                continue
            cov = e.get("coverage") or []
            if isinstance(cov, int):
                cov, ncov = [], cov
            else:
                cov = json.loads(_text(list(cov), f"corpus entry {i} coverage"))
                ncov = len(cov)
            parent = e.get("parent")
            rows[h] = dict(input_hash=h, input=txt, scenario_hash=sch,
                           scenario=_short(inp["scenario"].get("name", ""), 200),
                           variant=vname, coverage=cov, new_coverage=int(e.get("new_coverage", ncov)),
                           parent_hash=_short(parent, 64) if parent else None,
                           worker=_short(e.get("worker", ""), 200),
                           found_at=float(e.get("found_at") or now))
        return [rows[h] for h in sorted(rows)]

    def _crash_rows(self, crashes: Iterable[dict], now: float) -> list[dict]:
        rows: dict[tuple[str, str], dict] = {}
        for i, c in enumerate(crashes):
            what = f"crash {i}"
            inp, h, txt, sch, vname = self._packed(c.get("input"), what)
            f = c.get("finding")
            if f is not None:
                f = f.to_json() if hasattr(f, "to_json") else dict(f)
                c = {**f, **{k: v for k, v in c.items() if k != "finding"}}
            sig, kind, title = c.get("signature"), c.get("kind"), c.get("title", "")
            if not (isinstance(sig, str) and 0 < len(sig) <= 64 and sig.isprintable()):
                raise StoreError(f"{what}: 'signature' must be a printable string of 1-64 "
                                 f"characters")
            if not (isinstance(kind, str) and 0 < len(kind) <= 40 and kind.isprintable()):
                raise StoreError(f"{what}: 'kind' must be a printable string of 1-40 "
                                 f"characters")
            if (h, sig) in rows:
                continue
            rows[(h, sig)] = dict(
                input_hash=h, signature=sig, kind=kind, title=_short(title, MAX_TITLE),
                trace_hash=_short(c.get("trace_hash", ""), 64),
                variant=vname, steps=int(c.get("steps") or 0), input=txt,
                scenario_hash=sch, worker=_short(c.get("worker", ""), 200),
                found_at=float(c.get("found_at") or now))
            self._crash_inputs[h] = inp       # a bug's reproducer is the whole input
        return [rows[k] for k in sorted(rows)]

    def _stats_rows(self, samples: Iterable[dict], now: float) -> list[dict]:
        rows: dict[tuple[str, float], dict] = {}
        for i, s in enumerate(samples):
            try:
                r = dict(worker=_short(s.get("worker", ""), 200), t=float(s.get("t") or now),
                         executions=int(s.get("executions", 0)),
                         coverage=int(s.get("coverage", 0)),
                         corpus_size=int(s.get("corpus_size", 0)),
                         buckets=int(s.get("buckets", 0)), crashes=int(s.get("crashes", 0)),
                         extra=json.loads(_text(s.get("extra") or {}, f"stats sample {i}")))
            except (TypeError, ValueError):
                raise StoreError(f"stats sample {i}: counters must be numbers") from None
            rows.setdefault((r["worker"], r["t"]), r)
        return [rows[k] for k in sorted(rows)]

    def _write_corpus(self, conn: Connection, cid: int, rows: list[dict]) -> dict:
        for r in rows:
            r["campaign_id"] = cid
        t = CorpusEntry.__table__
        if self._use_copy(rows):
            new = [h for (h,) in self._copy_insert(conn, t, rows, ["campaign_id", "input_hash"],
                                                   ["input_hash"])]
        else:
            stmt = self._memo("corpus", lambda: self._insert(t).on_conflict_do_nothing(
                index_elements=["campaign_id", "input_hash"]).returning(t.c.input_hash))
            new = [h for (h,) in conn.execute(stmt, rows if len(rows) > 1 else rows[0]).all()]
        return {"added": len(new), "new": sorted(new)}

    def _use_copy(self, rows: list) -> bool:
        return self.dialect == "postgresql" and len(rows) >= self.copy_min

    def _copy_insert(self, conn: Connection, table, rows: list[dict], key: list[str],
                     returning: list[str]) -> list[tuple]:
        """PostgreSQL's bulk path: COPY the rows into a temporary table (one per session,
        emptied at commit), then one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING
        RETURNING``: the same rows, the same idempotence and the same answer as the
        multi-row INSERT, without building one bound parameter per value (psycopg 3's
        COPY sends rows in its C text format)."""
        cols = [c.name for c in table.columns if c.name != "id"]
        tmp = f"mf_in_{table.name}"
        raw = conn.connection.driver_connection
        col_list = ", ".join(f'"{c}"' for c in cols)
        json_cols = {c.name for c in table.columns if isinstance(c.type, JSON)}
        with raw.cursor() as cur:
            # ON COMMIT DELETE ROWS: nothing is left for the next transaction; created by
            # this transaction it is also dropped by its rollback, so it is created (if
            # missing) every time rather than remembered
            cur.execute(f'CREATE TEMP TABLE IF NOT EXISTS {tmp} ON COMMIT DELETE ROWS AS '
                        f'SELECT {col_list} FROM {table.name} WITH NO DATA')
            with cur.copy(f"COPY {tmp} ({col_list}) FROM STDIN") as cp:
                for r in rows:
                    cp.write_row([json.dumps(r[c]) if c in json_cols else r[c] for c in cols])
            order = ", ".join(f'"{c}"' for c in key)
            cur.execute(f"INSERT INTO {table.name} ({col_list}) SELECT {col_list} FROM {tmp} "
                        f"ORDER BY {order} ON CONFLICT ({order}) DO NOTHING RETURNING "
                        + ", ".join(f'"{c}"' for c in returning))
            return [tuple(r) for r in cur.fetchall()]

    def _write_crashes(self, conn: Connection, cid: int, rows: list[dict], now: float) -> dict:
        for r in rows:
            r["campaign_id"] = cid
        rows, over = self._cap_crashes(conn, cid, rows)
        t = Crash.__table__
        if self._use_copy(rows):
            new = set(self._copy_insert(conn, t, rows,
                                        ["campaign_id", "input_hash", "signature"],
                                        ["input_hash", "signature"]))
        else:
            stmt = self._memo("crash", lambda: self._insert(t).on_conflict_do_nothing(
                index_elements=["campaign_id", "input_hash", "signature"])
                .returning(t.c.input_hash, t.c.signature))
            new = ({(h, s) for h, s in conn.execute(stmt, rows if len(rows) > 1 else rows[0])}
                   if rows else set())
        if not new and not over:
            return {"added": 0, "new": [], "new_bugs": [], "not_kept": 0}
        # aggregate the new crashes per signature, then one upsert per bug row; a crash
        # past the cap adds no row and no count (so a retried batch changes nothing), but
        # it moves last seen and may give a smaller reproducer (both idempotent)
        bugs: dict[str, dict] = {}
        titles: set[tuple[str, str]] = set()
        variants: set[tuple[str, str]] = set()
        fresh = [(r, True) for r in rows if (r["input_hash"], r["signature"]) in new]
        for r, kept in fresh + [(r, False) for r in over]:
            s = r["signature"]
            titles.add((s, r["title"]))
            variants.add((s, r["variant"]))
            b = bugs.get(s)
            if b is None:
                bugs[s] = dict(signature=s, kind=r["kind"], title=r["title"], status="new",
                               duplicate_of=None, count=int(kept), first_seen=r["found_at"],
                               last_seen=r["found_at"], reproducer=r["input_hash"],
                               reproducer_hash=r["input_hash"], reproducer_steps=r["steps"],
                               minimized=False, notes="", labels=[], repro_attempts=0,
                               repro_successes=0, updated_at=now)
                continue
            b["count"] += kept
            b["first_seen"] = min(b["first_seen"], r["found_at"])
            b["last_seen"] = max(b["last_seen"], r["found_at"])
            if r["steps"] < b["reproducer_steps"]:
                b.update(reproducer=r["input_hash"], reproducer_hash=r["input_hash"],
                         reproducer_steps=r["steps"])
        for b in bugs.values():       # the whole input, for the few rows that need it
            b["reproducer"] = _text(self._crash_inputs[b["reproducer"]], "reproducer")
        upsert = self._memo("bug", self._bug_upsert)
        params = [bugs[s] for s in sorted(bugs)]
        # each row is ours until commit: count == what we added means we created it
        new_bugs = sorted(sig for sig, count in conn.execute(
            upsert, params if len(params) > 1 else params[0]) if count == bugs[sig]["count"])
        conn.execute(self._memo("title", lambda: self._insert(BugTitle.__table__)
                                .on_conflict_do_nothing(index_elements=["signature", "title"])),
                     [dict(signature=s, title=t) for s, t in sorted(titles)])
        conn.execute(self._memo("variant", lambda: self._insert(BugVariant.__table__)
                                .on_conflict_do_nothing(index_elements=["signature",
                                                                        "variant"])),
                     [dict(signature=s, variant=v) for s, v in sorted(variants)])
        return {"added": len(new), "new": sorted([list(k) for k in new]),
                "new_bugs": new_bugs, "not_kept": len(over)}

    def _cap_crashes(self, conn: Connection, cid: int,
                     rows: list[dict]) -> tuple[list[dict], list[dict]]:
        """Split a batch into the crash rows to keep and those past the cap of crash rows
        per bug and campaign.

        Why a cap: nearly every schedule is a distinct input, so a bug hit in 9% of
        executions would add ~4,500 rows a second to a 50,000-executions/s farm; syzkaller
        keeps at most 100 crash logs per bug for the same reason. Past the cap a crash
        leaves no row and adds nothing to the bug's count (which stays equal to its rows,
        and a retried batch still changes nothing), but it moves the bug's last seen and
        can still give it a smaller reproducer. Writers are serialized on SQLite; two
        PostgreSQL writers filling the last free places at once may overshoot by a batch.
        Why per campaign: a campaign lists the bugs it hit through its own crash rows; with
        one cap per bug a second campaign in the same database kept no row of any bug the
        first had filled and showed 0 bugs (the soak check's 10-minute Ray campaign after
        a 10-minute in-process one: 4,500 crashes found, 0 stored).
        """
        cap = self.max_crashes_per_bug
        sigs = sorted({r["signature"] for r in rows})
        have: dict[str, int] = {}
        for i in range(0, len(sigs), 500):
            chunk = sigs[i:i + 500]
            have.update(conn.execute(
                select(Crash.signature, func.count())
                .where(Crash.campaign_id == cid, Crash.signature.in_(chunk))
                .group_by(Crash.signature)).all())
        room = {s: cap - have.get(s, 0) for s in sigs}
        if all(room[s] >= len(rows) for s in sigs):
            return rows, []
        keep: list[dict] = []
        over: list[dict] = []
        for r in rows:                       # sorted by (input, signature): deterministic
            if room[r["signature"]] > 0:
                room[r["signature"]] -= 1
                keep.append(r)
            else:
                over.append(r)
        return keep, over

    def _memo(self, key: str, build: Callable[[], Any]) -> Any:
        stmt = self._stmts.get(key)
        if stmt is None:
            stmt = self._stmts[key] = build()
        return stmt

    def _bug_upsert(self):
        ins = self._insert(BugRow.__table__)
        ex, cur = ins.excluded, BugRow.__table__.c
        better = (~cur.minimized) & ((cur.reproducer_steps.is_(None))
                                     | (ex.reproducer_steps < cur.reproducer_steps))
        return ins.on_conflict_do_update(index_elements=["signature"], set_={
            "count": cur.count + ex.count,
            "first_seen": case((ex.first_seen < cur.first_seen, ex.first_seen),
                               else_=cur.first_seen),
            "last_seen": case((ex.last_seen > cur.last_seen, ex.last_seen),
                              else_=cur.last_seen),
            "reproducer": case((better, ex.reproducer), else_=cur.reproducer),
            "reproducer_hash": case((better, ex.reproducer_hash), else_=cur.reproducer_hash),
            "reproducer_steps": case((better, ex.reproducer_steps),
                                     else_=cur.reproducer_steps),
            "updated_at": ex.updated_at,
        }).returning(cur.signature, cur.count)

    def _write_stats(self, conn: Connection, cid: int, rows: list[dict]) -> int:
        for r in rows:
            r["campaign_id"] = cid
        t = StatsSample.__table__
        if self._use_copy(rows):
            return len(self._copy_insert(conn, t, rows, ["campaign_id", "worker", "t"],
                                         ["id"]))
        stmt = self._memo("stats", lambda: self._insert(t).on_conflict_do_nothing(
            index_elements=["campaign_id", "worker", "t"]).returning(t.c.id))
        return len(conn.execute(stmt, rows if len(rows) > 1 else rows[0]).all())

    # ---------------------------------------------------------------- reads
    def load_campaign_state(self, name: str) -> CampaignState:
        with self._reader.begin() as conn:
            r = conn.execute(select(CampaignRow).where(CampaignRow.name == name)).first()
            if r is None:
                raise StoreError(f"no campaign named {name!r}")
            camp = self._campaign(r)
            corpus, cov = [], {}
            shared: dict[str, dict] = {}     # one parsed scenario per hash (read only)
            for e in conn.execute(
                    select(CorpusEntry, Scenario.body)
                    .outerjoin(Scenario, Scenario.hash == CorpusEntry.scenario_hash)
                    .where(CorpusEntry.campaign_id == r.id).order_by(CorpusEntry.id)):
                corpus.append(self._entry(e, e.body, shared))
                for k in e.coverage:
                    cov.setdefault(_key(k), None)
            buckets = {}
            q = (select(Crash.signature, Crash.kind, func.count(), func.min(Crash.found_at),
                        BugRow.title, BugRow.status)
                 .join(BugRow, BugRow.signature == Crash.signature)
                 .where(Crash.campaign_id == r.id)
                 .group_by(Crash.signature, Crash.kind, BugRow.title, BugRow.status)
                 .order_by(Crash.signature))
            ncrash = 0
            for sig, kind, n, first, title, status in conn.execute(q):
                buckets[sig] = {"kind": kind, "title": title, "count": n, "first_seen": first,
                                "status": status}
                ncrash += n
            workers = {}
            last = (select(StatsSample.worker, func.max(StatsSample.t).label("t"))
                    .where(StatsSample.campaign_id == r.id)
                    .group_by(StatsSample.worker).subquery())
            for s in conn.execute(select(StatsSample).join(
                    last, (StatsSample.worker == last.c.worker) & (StatsSample.t == last.c.t))
                    .where(StatsSample.campaign_id == r.id)).mappings():
                workers[s["worker"]] = {k: s[k] for k in ("t", "executions", "coverage",
                                                          "corpus_size", "buckets", "crashes",
                                                          "extra")}
        try:
            coverage = sorted(cov)
        except TypeError:                                  # mixed str / tuple keys
            coverage = sorted(cov, key=lambda k: json.dumps(k))
        return CampaignState(campaign=camp, corpus=corpus, coverage=coverage,
                             buckets=buckets, crashes=ncrash, workers=workers,
                             executions=sum(w["executions"] for w in workers.values()))

    @staticmethod
    def _row_input(text: str, scenario_hash: str | None, body: str | None,
                   shared: dict | None = None) -> dict:
        """A row's input as it was given (db.packing); ``shared``: parse each scenario
        once and share it between the inputs (for callers that only read them)."""
        if scenario_hash is None:
            return json.loads(text)             # written before revision 0003
        if body is None:
            raise StoreError(f"scenario {scenario_hash} of a stored input is missing")
        if shared is None:
            sc = json.loads(body)
        else:
            sc = shared.get(scenario_hash)
            if sc is None:
                sc = shared[scenario_hash] = json.loads(body)
        return packing.unpack(text, sc)

    @classmethod
    def _entry(cls, e, body: str | None = None, shared: dict | None = None) -> dict:
        return {"hash": e.input_hash,
                "input": cls._row_input(e.input, e.scenario_hash, body, shared),
                "coverage": e.coverage,
                "new_coverage": e.new_coverage, "parent": e.parent_hash, "worker": e.worker,
                "found_at": e.found_at}

    def iter_corpus(self, campaign: str, batch: int = 1000) -> Iterator[dict]:
        """The corpus in the order it was found (one snapshot, streamed)."""
        with self._reader.begin() as conn:
            cid = self._cid(conn, campaign)
            res = conn.execution_options(yield_per=batch).execute(
                select(CorpusEntry, Scenario.body)
                .outerjoin(Scenario, Scenario.hash == CorpusEntry.scenario_hash)
                .where(CorpusEntry.campaign_id == cid).order_by(CorpusEntry.id))
            for e in res:        # Core rows: the entry's columns, then the body
                yield self._entry(e, e.body)

    def list_crashes(self, campaign: str | None = None, signature: str | None = None,
                     limit: int | None = None, input_prefix: str | None = None) -> list[dict]:
        with self._reader.begin() as conn:
            q = (select(Crash, CampaignRow.name.label("campaign_name"), Scenario.body)
                 .join(CampaignRow, CampaignRow.id == Crash.campaign_id)
                 .outerjoin(Scenario, Scenario.hash == Crash.scenario_hash)
                 .order_by(Crash.id))
            if campaign is not None:
                q = q.where(Crash.campaign_id == self._cid(conn, campaign))
            if signature is not None:
                q = q.where(Crash.signature == signature)
            if input_prefix is not None:
                if not input_prefix or any(ch not in "0123456789abcdef" for ch in input_prefix):
                    raise StoreError("a crash id is c: and a hex prefix of its input hash")
                q = q.where(Crash.input_hash.startswith(input_prefix))
            if limit:
                q = q.limit(limit)
            return [{"campaign": c.campaign_name, "input_hash": c.input_hash, "signature": c.signature,
                     "kind": c.kind, "title": c.title, "trace_hash": c.trace_hash,
                     "variant": c.variant, "steps": c.steps, "input": self._row_input(c.input, c.scenario_hash, c.body),
                     "worker": c.worker, "found_at": c.found_at}
                    for c in conn.execute(q).all()]

    def crash_counts(self, campaign: str) -> dict[str, int]:
        """Crash rows per signature in one campaign (what its cap counts)."""
        with self._reader.begin() as conn:
            cid = self._cid(conn, campaign)
            return dict(conn.execute(select(Crash.signature, func.count())
                                     .where(Crash.campaign_id == cid)
                                     .group_by(Crash.signature)).all())

    def counts(self) -> dict[str, int]:
        """Rows per table (tests, the bench and `migfuzz campaigns --json` use it)."""
        with self._reader.begin() as conn:
            # an older schema (``migfuzz db status`` opens one) lacks the newer tables
            have = set(sa_inspect(conn).get_table_names())
            return {m.__tablename__: conn.execute(select(func.count()).select_from(m)).scalar()
                    for m in (CampaignRow, CorpusEntry, Crash, BugRow, BugTitle, BugVariant,
                              StatsSample, Scenario) if m.__tablename__ in have}

    # ---------------------------------------------------------------- bugs (triage)
    def get_bug(self, signature: str) -> Bug | None:
        bugs = self._bugs([BugRow.signature == signature])
        return bugs[0] if bugs else None

    def list_bugs(self, *, campaign: str | None = None, status: str | None = None,
                  kind: str | None = None) -> list[Bug]:
        where = []
        if status:
            where.append(BugRow.status == status)
        if kind:
            where.append(BugRow.kind == kind)
        if campaign is not None:
            with self._reader.begin() as conn:
                cid = self._cid(conn, campaign)
            where.append(BugRow.signature.in_(
                select(Crash.signature).where(Crash.campaign_id == cid)))
        return self._bugs(where)

    def _bugs(self, where: Sequence) -> list[Bug]:
        with self._reader.begin() as conn:
            rows = conn.execute(select(BugRow).where(*where).order_by(
                BugRow.first_seen, BugRow.signature)).all()
            sigs = [r.signature for r in rows]
            titles: dict[str, list[str]] = {s: [] for s in sigs}
            variants: dict[str, list[str]] = {s: [] for s in sigs}
            for i in range(0, len(sigs), 500):
                chunk = sigs[i:i + 500]
                for s, t in conn.execute(select(BugTitle.signature, BugTitle.title).where(
                        BugTitle.signature.in_(chunk)).order_by(BugTitle.id)):
                    titles[s].append(t)
                for s, v in conn.execute(select(BugVariant.signature, BugVariant.variant)
                                         .where(BugVariant.signature.in_(chunk))
                                         .order_by(BugVariant.variant)):
                    variants[s].append(v)
            return [Bug(signature=r.signature, kind=r.kind, title=r.title, status=r.status,
                        duplicate_of=r.duplicate_of, count=r.count, first_seen=r.first_seen,
                        last_seen=r.last_seen,
                        alt_titles=[t for t in titles[r.signature] if t != r.title],
                        variants=variants[r.signature],
                        reproducer=json.loads(r.reproducer) if r.reproducer else None,
                        reproducer_hash=r.reproducer_hash,
                        reproducer_steps=r.reproducer_steps, minimized=r.minimized,
                        notes=r.notes, labels=list(r.labels),
                        repro_attempts=r.repro_attempts, repro_successes=r.repro_successes)
                    for r in rows]

    def update_bug(self, signature: str, *, status: str | None = None,
                   duplicate_of: str | None = None, notes: str | None = None,
                   labels: Sequence[str] | None = None, title: str | None = None) -> Bug:
        """Triage: status (duplicate needs duplicate_of, another existing bug), notes,
        labels (replaced), title (the old one stays among the alternative titles)."""
        vals: dict[str, Any] = {"updated_at": _now()}
        if status is not None:
            if status not in BUG_STATUSES:
                raise StoreError(f"bug status must be one of {', '.join(BUG_STATUSES)}")
            if status == "duplicate" and not duplicate_of:
                raise StoreError("status 'duplicate' needs the signature it duplicates")
            vals["status"] = status
            vals["duplicate_of"] = duplicate_of if status == "duplicate" else None
        elif duplicate_of is not None:
            raise StoreError("duplicate_of goes with status 'duplicate'")
        if duplicate_of == signature:
            raise StoreError("a bug cannot duplicate itself")
        if notes is not None:
            vals["notes"] = str(notes).replace("\x00", "")
        if labels is not None:
            vals["labels"] = sorted({_short(x, 100) for x in labels})
        if title is not None:
            vals["title"] = _short(title, MAX_TITLE)

        def tx(conn):
            if conn.execute(select(BugRow.id).where(BugRow.signature == signature)).scalar() \
                    is None:
                raise StoreError(f"no bug with signature {signature!r}")
            if duplicate_of and conn.execute(select(BugRow.id).where(
                    BugRow.signature == duplicate_of)).scalar() is None:
                raise StoreError(f"no bug with signature {duplicate_of!r}")
            conn.execute(update(BugRow).where(BugRow.signature == signature).values(vals))
            if title is not None:
                conn.execute(self._insert(BugTitle).values(signature=signature,
                                                           title=vals["title"])
                             .on_conflict_do_nothing(index_elements=["signature", "title"]))
        self._write(tx)
        bug = self.get_bug(signature)
        assert bug is not None
        return bug

    def set_reproducer(self, signature: str, inp: dict, *, steps: int | None = None,
                       minimized: bool = True) -> None:
        """Store a (minimized) reproducer; the caller has checked it gives the signature."""
        _, h, txt, _ = self._input(inp, "reproducer")

        def tx(conn):
            n = conn.execute(update(BugRow).where(BugRow.signature == signature).values(
                reproducer=txt, reproducer_hash=h, reproducer_steps=steps,
                minimized=minimized, updated_at=_now())).rowcount
            if n != 1:
                raise StoreError(f"no bug with signature {signature!r}")
        self._write(tx)

    def record_reproduction(self, signature: str, attempts: int, successes: int) -> None:
        """Add reproduction attempts (atomic increments; reliability = successes/attempts)."""
        if not 0 <= successes <= attempts:
            raise StoreError("successes must be between 0 and attempts")

        def tx(conn):
            n = conn.execute(update(BugRow).where(BugRow.signature == signature).values(
                repro_attempts=BugRow.repro_attempts + attempts,
                repro_successes=BugRow.repro_successes + successes,
                updated_at=_now())).rowcount
            if n != 1:
                raise StoreError(f"no bug with signature {signature!r}")
        self._write(tx)


def crash_records(inp: dict, result: Any, worker: str = "",
                  found_at: float | None = None) -> list[dict]:
    """One crash record per finding of an execution result (fuzzer.execute.Result)."""
    return [{"input": inp, "finding": f, "trace_hash": result.trace_hash,
             "steps": result.steps, "worker": worker, "found_at": found_at}
            for f in result.findings]


for _name, _fn in list(vars(Store).items()):
    if not _name.startswith("_") and inspect.isfunction(_fn):
        setattr(Store, _name, _guarded(_fn))
