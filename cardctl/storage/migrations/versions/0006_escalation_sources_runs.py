"""escalation to a counter visit; where PINs were tried; batch runs

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 05:10:00

- ``policies.escalate_after`` / ``escalate_window_days``: the Nth PIN lock within the window
  does not end by itself (0, the default, is off: behaviour is unchanged until a region sets it).
- ``locks.escalated``: a PIN lock that escalated; only an identity-checked reset-pin or
  unlock ends it.
- ``events.terminal``: the counter PC, bank branch or self-service terminal a PIN was tried at.
- ``events.run_id``: the batch run (import, unlock --from, unlock --expired) an event belongs
  to, indexed for ``audit log --run``; ``ix_events_batches``, a partial index of the
  ``batch.start`` / ``batch.end`` events, finds the runs without reading the events between them.

Both event columns are hashed after the actor when either is set (storage/audit.py), so events
written before keep the content they were hashed with.
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

BATCHES = "action IN ('batch.start', 'batch.end')"


def upgrade() -> None:
    # plain ADD COLUMN on both engines, never batch mode (its copy of a table trips the foreign
    # keys on SQLite, 0003): the tables keep their rows and, on PostgreSQL, their triggers
    op.add_column('policies', sa.Column('escalate_after', sa.Integer(), server_default='0', nullable=False))
    op.add_column('policies', sa.Column('escalate_window_days', sa.Integer(), server_default='30',
                                        nullable=False))
    op.add_column('locks', sa.Column('escalated', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('events', sa.Column('terminal', sa.String(length=64), nullable=True))
    op.add_column('events', sa.Column('run_id', sa.String(length=40), nullable=True))
    op.create_index(op.f('ix_events_run_id'), 'events', ['run_id'], unique=False)
    # the runs themselves, newest first, without reading the events between them
    # (report's runs section, metrics' last sweep)
    op.create_index('ix_events_batches', 'events', ['seq'], unique=False, sqlite_where=sa.text(BATCHES),
                    postgresql_where=sa.text(BATCHES))


def downgrade() -> None:
    op.drop_index('ix_events_batches', table_name='events')
    op.drop_index(op.f('ix_events_run_id'), table_name='events')
    for table, column in (('events', 'run_id'), ('events', 'terminal'), ('locks', 'escalated'),
                          ('policies', 'escalate_window_days'), ('policies', 'escalate_after')):
        op.drop_column(table, column)
