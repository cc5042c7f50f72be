"""operators: who may use cardctl and as what; on PostgreSQL the refusal recorder

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 16:00:00

On PostgreSQL an auditor's login may not write to the audit trail, yet a refused
action must be recorded. ``cardctl_record_refusal`` (SECURITY DEFINER, owned by the
schema owner) appends exactly one ``access.refused`` event under the caller's own
login, chained after the current head; it can write nothing else. Its EXECUTE right
goes to the operator group roles only (storage/pg_access.py grants it at init).
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

REFUSAL_ARGS = "text, timestamp, text, text, text, text, text, varchar, varchar"

REFUSAL_FUNCTION = """
CREATE OR REPLACE FUNCTION cardctl_record_refusal(
    p_login text, p_at timestamp, p_operator text, p_os_user text, p_channel text,
    p_reason text, p_detail text, p_prev_hash varchar, p_hash varchar) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
DECLARE
    head_seq bigint;
    head_hash varchar;
BEGIN
    IF p_login IS DISTINCT FROM session_user::text
            AND NOT pg_has_role(session_user, p_login::name, 'MEMBER') THEN
        RAISE EXCEPTION 'a refusal is recorded under the caller''s own login' USING ERRCODE = '42501';
    END IF;
    IF (p_detail::json ->> 'login') IS DISTINCT FROM p_login THEN
        RAISE EXCEPTION 'the refusal detail names another login' USING ERRCODE = '42501';
    END IF;
    SELECT seq, hash INTO head_seq, head_hash FROM audit_head WHERE id = 1 FOR UPDATE;
    IF head_hash IS DISTINCT FROM p_prev_hash THEN
        RAISE EXCEPTION 'the audit chain moved on; retry' USING ERRCODE = '40001';
    END IF;
    INSERT INTO events (seq, at, recorded_at, operator, os_user, channel, action, card_no,
                        outcome, reason, detail, prev_hash, hash)
    VALUES (head_seq + 1, p_at, p_at, p_operator, p_os_user, p_channel, 'access.refused', NULL,
            'refused', p_reason, p_detail, p_prev_hash, p_hash);
    UPDATE audit_head SET seq = head_seq + 1, hash = p_hash WHERE id = 1;
    RETURN head_seq + 1;
END
$fn$
"""


def upgrade() -> None:
    op.create_table('operators',
    sa.Column('login', sa.String(length=64), nullable=False),
    sa.Column('role', sa.String(length=8), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.Text(), nullable=False),
    sa.Column('disabled_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('login', name=op.f('pk_operators'))
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        schema = bind.exec_driver_sql("SELECT current_schema()").scalar()
        quoted = bind.dialect.identifier_preparer.quote(schema)
        op.execute(sa.text(REFUSAL_FUNCTION.format(schema=quoted)))
        op.execute(f"REVOKE ALL ON FUNCTION cardctl_record_refusal({REFUSAL_ARGS}) FROM PUBLIC")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS cardctl_record_refusal({REFUSAL_ARGS})")
    op.drop_table('operators')
