"""Tables (SQLAlchemy 2 typed mappings). The schema is created and changed only by the
Alembic migrations in ``db/migrations``; ``tests/store`` checks the two agree.

Times are seconds since the epoch (float): portable, and ordered the same on both backends.
Inputs are stored as canonical JSON text (``corpus.input.canonical``) and given back as the
same object, so an exported input is byte-for-byte what was stored and its content hash can
be re-checked. Since revision 0003 a corpus entry or crash stores its scenario once, by hash,
in ``scenarios`` (``scenario_hash``), and its ``input`` column holds the rest of the input
with a compact schedule (``db.packing``): a scenario was ~60-85% of every stored input.
Rows with ``scenario_hash`` NULL hold the whole input (0003 converts them; the readers
accept both).
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import (JSON, BigInteger, Boolean, Float, ForeignKey, Index, Integer,
                        MetaData, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {"ix": "ix_%(table_name)s_%(column_0_N_name)s",
          "uq": "uq_%(table_name)s_%(column_0_N_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
          "pk": "pk_%(table_name)s"}

HASH = 64        # content hashes are 24 hex digits today; room to grow
NAME = 200


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Campaign(Base):
    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME), unique=True)
    variant: Mapped[str] = mapped_column(String(NAME))
    config: Mapped[dict[str, Any]]
    seed: Mapped[Optional[int]] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    engine_version: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[Optional[float]] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    owner: Mapped[Optional[str]] = mapped_column(String(NAME))       # HOST:PID:TOKEN
    heartbeat_at: Mapped[Optional[float]] = mapped_column(Float)


class Scenario(Base):
    """A scenario stored once, by the hash of its canonical JSON (``db.packing``)."""
    __tablename__ = "scenarios"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hash: Mapped[str] = mapped_column(String(HASH), unique=True)
    name: Mapped[str] = mapped_column(String(NAME))
    body: Mapped[str] = mapped_column(Text)                # canonical JSON of the scenario


class CorpusEntry(Base):
    __tablename__ = "corpus_entries"
    __table_args__ = (UniqueConstraint("campaign_id", "input_hash"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    input_hash: Mapped[str] = mapped_column(String(HASH))
    input: Mapped[str] = mapped_column(Text)               # packed input (db.packing)
    scenario_hash: Mapped[Optional[str]] = mapped_column(String(HASH))
    scenario: Mapped[str] = mapped_column(String(NAME))
    variant: Mapped[str] = mapped_column(String(NAME))
    coverage: Mapped[list[Any]]                            # the coverage keys it added
    new_coverage: Mapped[int] = mapped_column(Integer)
    parent_hash: Mapped[Optional[str]] = mapped_column(String(HASH))
    worker: Mapped[str] = mapped_column(String(NAME))
    found_at: Mapped[float] = mapped_column(Float)


class Crash(Base):
    __tablename__ = "crashes"
    __table_args__ = (UniqueConstraint("campaign_id", "input_hash", "signature"),
                      Index(None, "signature"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    input_hash: Mapped[str] = mapped_column(String(HASH))
    signature: Mapped[str] = mapped_column(String(HASH))   # the bug (bugs.signature)
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(Text)
    trace_hash: Mapped[str] = mapped_column(String(HASH))
    variant: Mapped[str] = mapped_column(String(NAME))
    steps: Mapped[int] = mapped_column(Integer)
    input: Mapped[str] = mapped_column(Text)               # packed input (db.packing)
    scenario_hash: Mapped[Optional[str]] = mapped_column(String(HASH))
    worker: Mapped[str] = mapped_column(String(NAME))
    found_at: Mapped[float] = mapped_column(Float)


class Bug(Base):
    __tablename__ = "bugs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signature: Mapped[str] = mapped_column(String(HASH), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    title: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    duplicate_of: Mapped[Optional[str]] = mapped_column(String(HASH))
    count: Mapped[int] = mapped_column(Integer)            # crashes stored for it
    first_seen: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)
    reproducer: Mapped[Optional[str]] = mapped_column(Text)
    reproducer_hash: Mapped[Optional[str]] = mapped_column(String(HASH))
    reproducer_steps: Mapped[Optional[int]] = mapped_column(Integer)
    minimized: Mapped[bool] = mapped_column(Boolean)
    notes: Mapped[str] = mapped_column(Text)
    labels: Mapped[list[Any]]
    repro_attempts: Mapped[int] = mapped_column(Integer)
    repro_successes: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[float] = mapped_column(Float)


class BugTitle(Base):
    """Every title a bug was reported under (the first is ``bugs.title``)."""
    __tablename__ = "bug_titles"
    __table_args__ = (UniqueConstraint("signature", "title"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signature: Mapped[str] = mapped_column(
        ForeignKey("bugs.signature", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(500))


class BugVariant(Base):
    """A variant on which a bug showed."""
    __tablename__ = "bug_variants"
    __table_args__ = (UniqueConstraint("signature", "variant"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signature: Mapped[str] = mapped_column(
        ForeignKey("bugs.signature", ondelete="CASCADE"))
    variant: Mapped[str] = mapped_column(String(NAME))


class StatsSample(Base):
    __tablename__ = "stats"
    __table_args__ = (UniqueConstraint("campaign_id", "worker", "t"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    worker: Mapped[str] = mapped_column(String(NAME))
    t: Mapped[float] = mapped_column(Float)
    executions: Mapped[int] = mapped_column(BigInteger)
    coverage: Mapped[int] = mapped_column(Integer)
    corpus_size: Mapped[int] = mapped_column(Integer)
    buckets: Mapped[int] = mapped_column(Integer)
    crashes: Mapped[int] = mapped_column(Integer)
    extra: Mapped[dict[str, Any]]


class KernelVerdict(Base):
    """What ``migfuzz kernel repro`` saw on a real kernel for a bug: ``hits`` of
    ``iterations`` runs of the racing program, ``control_hits`` of ``control_iterations``
    runs of the same program made non-concurrent."""
    __tablename__ = "kernel_verdicts"
    __table_args__ = (Index(None, "signature"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    signature: Mapped[str] = mapped_column(
        ForeignKey("bugs.signature", ondelete="CASCADE"))
    release: Mapped[str] = mapped_column(String(64))       # e.g. 6.1.192
    config: Mapped[str] = mapped_column(String(64))        # config fragment name + hash
    reproduced: Mapped[bool] = mapped_column(Boolean)
    iterations: Mapped[int] = mapped_column(Integer)
    hits: Mapped[int] = mapped_column(Integer)
    control_iterations: Mapped[int] = mapped_column(Integer)
    control_hits: Mapped[int] = mapped_column(Integer)
    mode: Mapped[str] = mapped_column(String(32))          # stress | enforced
    command: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str] = mapped_column(Text)             # console lines that show it
    detail: Mapped[dict[str, Any]]
    created_at: Mapped[float] = mapped_column(Float)
