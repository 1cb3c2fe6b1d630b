"""Initial schema: campaigns, corpus entries, crashes, bugs (titles, variants), stats.

Revision ID: 0001
Revises: 
"""
import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('bugs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('signature', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('duplicate_of', sa.String(length=64), nullable=True),
    sa.Column('count', sa.Integer(), nullable=False),
    sa.Column('first_seen', sa.Float(), nullable=False),
    sa.Column('last_seen', sa.Float(), nullable=False),
    sa.Column('reproducer', sa.Text(), nullable=True),
    sa.Column('reproducer_hash', sa.String(length=64), nullable=True),
    sa.Column('reproducer_steps', sa.Integer(), nullable=True),
    sa.Column('minimized', sa.Boolean(), nullable=False),
    sa.Column('notes', sa.Text(), nullable=False),
    sa.Column('labels', sa.JSON(), nullable=False),
    sa.Column('repro_attempts', sa.Integer(), nullable=False),
    sa.Column('repro_successes', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bugs')),
    sa.UniqueConstraint('signature', name=op.f('uq_bugs_signature'))
    )
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('variant', sa.String(length=200), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('engine_version', sa.String(length=32), nullable=False),
    sa.Column('started_at', sa.Float(), nullable=False),
    sa.Column('ended_at', sa.Float(), nullable=True),
    sa.Column('updated_at', sa.Float(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
    sa.UniqueConstraint('name', name=op.f('uq_campaigns_name'))
    )
    op.create_table('bug_titles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('signature', sa.String(length=64), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['signature'], ['bugs.signature'], name=op.f('fk_bug_titles_signature_bugs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bug_titles')),
    sa.UniqueConstraint('signature', 'title', name=op.f('uq_bug_titles_signature_title'))
    )
    op.create_table('bug_variants',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('signature', sa.String(length=64), nullable=False),
    sa.Column('variant', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['signature'], ['bugs.signature'], name=op.f('fk_bug_variants_signature_bugs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bug_variants')),
    sa.UniqueConstraint('signature', 'variant', name=op.f('uq_bug_variants_signature_variant'))
    )
    op.create_table('corpus_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('input_hash', sa.String(length=64), nullable=False),
    sa.Column('input', sa.Text(), nullable=False),
    sa.Column('scenario', sa.String(length=200), nullable=False),
    sa.Column('variant', sa.String(length=200), nullable=False),
    sa.Column('coverage', sa.JSON(), nullable=False),
    sa.Column('new_coverage', sa.Integer(), nullable=False),
    sa.Column('parent_hash', sa.String(length=64), nullable=True),
    sa.Column('worker', sa.String(length=200), nullable=False),
    sa.Column('found_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_corpus_entries_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_corpus_entries')),
    sa.UniqueConstraint('campaign_id', 'input_hash', name=op.f('uq_corpus_entries_campaign_id_input_hash'))
    )
    op.create_table('crashes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('input_hash', sa.String(length=64), nullable=False),
    sa.Column('signature', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('trace_hash', sa.String(length=64), nullable=False),
    sa.Column('variant', sa.String(length=200), nullable=False),
    sa.Column('steps', sa.Integer(), nullable=False),
    sa.Column('input', sa.Text(), nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=False),
    sa.Column('found_at', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_crashes_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crashes')),
    sa.UniqueConstraint('campaign_id', 'input_hash', 'signature', name=op.f('uq_crashes_campaign_id_input_hash_signature'))
    )
    op.create_index(op.f('ix_crashes_signature'), 'crashes', ['signature'], unique=False)
    op.create_table('stats',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('worker', sa.String(length=200), nullable=False),
    sa.Column('t', sa.Float(), nullable=False),
    sa.Column('executions', sa.BigInteger(), nullable=False),
    sa.Column('coverage', sa.Integer(), nullable=False),
    sa.Column('corpus_size', sa.Integer(), nullable=False),
    sa.Column('buckets', sa.Integer(), nullable=False),
    sa.Column('crashes', sa.Integer(), nullable=False),
    sa.Column('extra', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], name=op.f('fk_stats_campaign_id_campaigns'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_stats')),
    sa.UniqueConstraint('campaign_id', 'worker', 't', name=op.f('uq_stats_campaign_id_worker_t'))
    )


def downgrade() -> None:
    op.drop_table('stats')
    op.drop_index(op.f('ix_crashes_signature'), table_name='crashes')
    op.drop_table('crashes')
    op.drop_table('corpus_entries')
    op.drop_table('bug_variants')
    op.drop_table('bug_titles')
    op.drop_table('campaigns')
    op.drop_table('bugs')
