"""Scenarios stored once, by hash; inputs packed (db/packing.py).

- ``scenarios``: one row per distinct scenario (hash of its canonical JSON, name, body);
- ``corpus_entries.scenario_hash`` and ``crashes.scenario_hash``: the row's scenario; its
  ``input`` then holds the rest of the input, schedule packed.

Existing rows are converted here, 2,000 at a time (a database written before 0003 keeps
every input, only smaller); the downgrade puts every scenario back into its rows.

Revision ID: 0003
Revises: 0002
"""
import json

import sqlalchemy as sa
from alembic import op

from migfuzz.db import packing

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

CHUNK = 2000
TABLES = ("corpus_entries", "crashes")


def upgrade() -> None:
    op.create_table('scenarios',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scenarios')),
    sa.UniqueConstraint('hash', name=op.f('uq_scenarios_hash'))
    )
    for t in TABLES:
        with op.batch_alter_table(t) as b:
            b.add_column(sa.Column('scenario_hash', sa.String(length=64), nullable=True))
    conn = op.get_bind()
    scen = sa.table('scenarios', sa.column('hash'), sa.column('name'), sa.column('body'))
    known: set[str] = set()
    for t in TABLES:
        tab = sa.table(t, sa.column('id'), sa.column('input'), sa.column('scenario_hash'))
        last = 0
        while True:
            rows = conn.execute(sa.select(tab.c.id, tab.c.input)
                                .where(tab.c.id > last, tab.c.scenario_hash.is_(None))
                                .order_by(tab.c.id).limit(CHUNK)).all()
            if not rows:
                break
            last = rows[-1].id
            new_sc, updates = [], []
            for r in rows:
                inp = json.loads(r.input)
                if not isinstance(inp, dict) or not isinstance(inp.get("scenario"), dict):
                    continue                   # not an input object: left as it is
                sc_text, h, rest = packing.pack(inp)
                if h not in known:
                    known.add(h)
                    new_sc.append({"hash": h, "name": str(inp["scenario"].get("name", ""))[:200],
                                   "body": sc_text})
                updates.append({"rid": r.id, "inp": rest, "h": h})
            if new_sc:
                conn.execute(scen.insert(), new_sc)
            if updates:
                conn.execute(sa.update(tab).where(tab.c.id == sa.bindparam("rid"))
                             .values(input=sa.bindparam("inp"),
                                     scenario_hash=sa.bindparam("h")), updates)


def downgrade() -> None:
    conn = op.get_bind()
    bodies = {h: json.loads(b) for h, b in conn.execute(sa.text(
        "SELECT hash, body FROM scenarios"))}
    for t in TABLES:
        tab = sa.table(t, sa.column('id'), sa.column('input'), sa.column('scenario_hash'))
        last = 0
        while True:
            rows = conn.execute(sa.select(tab.c.id, tab.c.input, tab.c.scenario_hash)
                                .where(tab.c.id > last, tab.c.scenario_hash.is_not(None))
                                .order_by(tab.c.id).limit(CHUNK)).all()
            if not rows:
                break
            last = rows[-1].id
            conn.execute(sa.update(tab).where(tab.c.id == sa.bindparam("rid"))
                         .values(input=sa.bindparam("inp")),
                         [{"rid": r.id, "inp": packing.canonical(
                             packing.unpack(r.input, bodies[r.scenario_hash]))} for r in rows])
        with op.batch_alter_table(t) as b:
            b.drop_column('scenario_hash')
    op.drop_table('scenarios')
