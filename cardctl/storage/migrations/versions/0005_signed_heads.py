"""signed chain heads (Ed25519)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-05 23:00:00

``signed_heads`` records chain heads signed with the signing key, which counter PCs do not
hold (storage/signing.py). Append only: operator groups may insert (staff) and read, never
update or delete (storage/pg_access.py grants it at init).
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('signed_heads',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('key_id', sa.String(length=16), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.Column('signed_at', sa.DateTime(), nullable=False),
    sa.Column('signature', sa.String(length=128), nullable=False),
    sa.PrimaryKeyConstraint('seq', 'key_id', name=op.f('pk_signed_heads'))
    )


def downgrade() -> None:
    op.drop_table('signed_heads')
