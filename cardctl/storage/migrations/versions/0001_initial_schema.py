"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-23 14:27:00.650239
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('seq', sa.BigInteger(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('events',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('operator', sa.Text(), nullable=False),
    sa.Column('os_user', sa.Text(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=32), nullable=False),
    sa.Column('card_no', sa.String(length=9), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('detail', sa.Text(), nullable=True),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_at'), ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_card_no'), ['card_no'], unique=False)

    op.create_table('holders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('id_masked', sa.String(length=18), nullable=False),
    sa.Column('id_tail_hash', sa.String(length=64), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holders')),
    sa.UniqueConstraint('id_hash', name=op.f('uq_holders_id_hash'))
    )
    op.create_table('meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_meta'))
    )
    op.create_table('policies',
    sa.Column('region_prefix', sa.String(length=6), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('lock_hours', sa.Integer(), nullable=False),
    sa.Column('temp_loss_days', sa.Integer(), nullable=False),
    sa.Column('default_pin', sa.String(length=6), nullable=False),
    sa.Column('minor_age', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('region_prefix', name=op.f('pk_policies'))
    )
    op.create_table('arrears',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=True),
    sa.Column('unit', sa.String(length=18), nullable=True),
    sa.Column('amount_fen', sa.BigInteger(), nullable=False),
    sa.Column('period', sa.String(length=7), nullable=True),
    sa.Column('receipt', sa.Text(), nullable=True),
    sa.Column('at', sa.DateTime(), nullable=False),
    sa.Column('operator', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['holder_id'], ['holders.id'], name=op.f('fk_arrears_holder_id_holders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_arrears'))
    )
    with op.batch_alter_table('arrears', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_arrears_holder_id'), ['holder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_arrears_unit'), ['unit'], unique=False)

    op.create_table('cards',
    sa.Column('card_no', sa.String(length=9), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('region', sa.String(length=6), nullable=False),
    sa.Column('insurance_type', sa.String(length=10), nullable=False),
    sa.Column('issuer', sa.String(length=64), nullable=False),
    sa.Column('unit', sa.String(length=18), nullable=True),
    sa.Column('status', sa.String(length=8), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('pin_hash', sa.String(length=80), nullable=True),
    sa.Column('pin_scheme', sa.String(length=16), nullable=True),
    sa.Column('issued_at', sa.DateTime(), nullable=False),
    sa.Column('activated_at', sa.DateTime(), nullable=True),
    sa.Column('loss_kind', sa.String(length=10), nullable=True),
    sa.Column('lost_at', sa.DateTime(), nullable=True),
    sa.Column('loss_lapses_at', sa.DateTime(), nullable=True),
    sa.Column('void_reason', sa.Text(), nullable=True),
    sa.Column('replaced_by', sa.String(length=9), nullable=True),
    sa.Column('replaces', sa.String(length=9), nullable=True),
    sa.ForeignKeyConstraint(['holder_id'], ['holders.id'], name=op.f('fk_cards_holder_id_holders')),
    sa.PrimaryKeyConstraint('card_no', name=op.f('pk_cards'))
    )
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cards_holder_id'), ['holder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_region'), ['region'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_status'), ['status'], unique=False)
        batch_op.create_index(batch_op.f('ix_cards_unit'), ['unit'], unique=False)
        batch_op.create_index('uq_cards_live_holder', ['holder_id'], unique=True, sqlite_where=sa.text("status <> 'void'"), postgresql_where=sa.text("status <> 'void'"))

    op.create_table('locks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('card_no', sa.String(length=9), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(), nullable=False),
    sa.Column('ends_at', sa.DateTime(), nullable=True),
    sa.Column('ended_at', sa.DateTime(), nullable=True),
    sa.Column('end_cause', sa.String(length=16), nullable=True),
    sa.Column('ended_by', sa.Text(), nullable=True),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['card_no'], ['cards.card_no'], name=op.f('fk_locks_card_no_cards')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_locks'))
    )
    with op.batch_alter_table('locks', schema=None) as batch_op:
        batch_op.create_index('ix_locks_card_all', ['card_no', 'started_at'], unique=False)
        batch_op.create_index('ix_locks_card_open', ['card_no'], unique=False, sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
        batch_op.create_index('ix_locks_pin_due', ['ends_at'], unique=False, sqlite_where=sa.text("ended_at IS NULL AND kind = 'pin'"), postgresql_where=sa.text("ended_at IS NULL AND kind = 'pin'"))




def downgrade() -> None:
    
    with op.batch_alter_table('locks', schema=None) as batch_op:
        batch_op.drop_index('ix_locks_pin_due', sqlite_where=sa.text("ended_at IS NULL AND kind = 'pin'"), postgresql_where=sa.text("ended_at IS NULL AND kind = 'pin'"))
        batch_op.drop_index('ix_locks_card_open', sqlite_where=sa.text('ended_at IS NULL'), postgresql_where=sa.text('ended_at IS NULL'))
        batch_op.drop_index('ix_locks_card_all')

    op.drop_table('locks')
    with op.batch_alter_table('cards', schema=None) as batch_op:
        batch_op.drop_index('uq_cards_live_holder', sqlite_where=sa.text("status <> 'void'"), postgresql_where=sa.text("status <> 'void'"))
        batch_op.drop_index(batch_op.f('ix_cards_unit'))
        batch_op.drop_index(batch_op.f('ix_cards_status'))
        batch_op.drop_index(batch_op.f('ix_cards_region'))
        batch_op.drop_index(batch_op.f('ix_cards_holder_id'))

    op.drop_table('cards')
    with op.batch_alter_table('arrears', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_arrears_unit'))
        batch_op.drop_index(batch_op.f('ix_arrears_holder_id'))

    op.drop_table('arrears')
    op.drop_table('policies')
    op.drop_table('meta')
    op.drop_table('holders')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_card_no'))
        batch_op.drop_index(batch_op.f('ix_events_at'))

    op.drop_table('events')
    op.drop_table('audit_head')

