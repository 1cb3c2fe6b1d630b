"""Campaign liveness (who runs it, last heartbeat) and real-kernel verdicts on bugs.

- ``campaigns.owner``: ``HOST:PID:TOKEN`` of the process writing a running campaign, so a
  second writer (``--resume`` of a live campaign) is refused, and a dead owner on this host
  is recognised at once.
- ``campaigns.heartbeat_at``: the owner's last sign of life (every batch write and at least
  every few seconds); a ``running`` campaign whose heartbeat is old is shown as stale.
- ``kernel_verdicts``: what ``migfuzz kernel repro`` saw on a real kernel for a bug.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('campaigns') as b:
        b.add_column(sa.Column('owner', sa.String(length=200), nullable=True))
        b.add_column(sa.Column('heartbeat_at', sa.Float(), nullable=True))
    op.create_table('kernel_verdicts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('signature', sa.String(length=64), nullable=False),
    sa.Column('release', sa.String(length=64), nullable=False),
    sa.Column('config', sa.String(length=64), nullable=False),
    sa.Column('reproduced', sa.Boolean(), nullable=False),
    sa.Column('iterations', sa.Integer(), nullable=False),
    sa.Column('hits', sa.Integer(), nullable=False),
    sa.Column('control_iterations', sa.Integer(), nullable=False),
    sa.Column('control_hits', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=32), nullable=False),
    sa.Column('command', sa.Text(), nullable=False),
    sa.Column('excerpt', sa.Text(), nullable=False),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['signature'], ['bugs.signature'], name=op.f('fk_kernel_verdicts_signature_bugs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_kernel_verdicts'))
    )
    with op.batch_alter_table('kernel_verdicts') as b:
        b.create_index(b.f('ix_kernel_verdicts_signature'), ['signature'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('kernel_verdicts') as b:
        b.drop_index(b.f('ix_kernel_verdicts_signature'))
    op.drop_table('kernel_verdicts')
    with op.batch_alter_table('campaigns') as b:
        b.drop_column('heartbeat_at')
        b.drop_column('owner')
