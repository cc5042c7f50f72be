"""personal data: no birth date or ID-derived digits in clear

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-05 23:00:00

``holders.birth_date`` together with the masked ID number (digits 1-3 and 15-18) and the
card's region (digits 1-6) spells the whole ID number. It is replaced by ``birth_sealed``:
the same date, AES-GCM-encrypted under the key file's data key and bound to the holder's
keyed ID hash (cardctl/domain/sealed.py). Converting rows needs the key file: ``cardctl
init`` passes its keys in ``config.attributes["keys"]`` (storage/schema.py). Afterwards
``schema.scrub`` rewrites the files so the dropped dates are not left in free pages (SQLite:
VACUUM, then the WAL truncated; PostgreSQL: VACUUM FULL of holders).

Events recorded before this revision are part of the hash chain and stay as they were.
"""
from alembic import context, op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

CHUNK = 5000


def _keys():
    """The key file's keys, which must be the database's own: a wrong data key would seal
    every birth date so that no cardctl could open it again."""
    from cardctl.errors import KeyFileError
    from cardctl.i18n import _

    keys = context.config.attributes.get("keys")
    if keys is None:
        raise KeyFileError(_("converting the holders' personal data needs the key file; run 'cardctl init'"))
    stored = op.get_bind().execute(sa.text("SELECT value FROM meta WHERE key = 'key_fingerprint'")).scalar()
    if stored is not None and stored != keys.fingerprint:
        raise KeyFileError(_("the key file does not belong to this database; the holders' personal data "
                             "cannot be converted with it"))
    return keys


def _rows(bind, column: str):
    last = 0
    while True:
        chunk = bind.execute(sa.text(f"SELECT id, id_hash, {column} FROM holders WHERE id > :last "
                                     "ORDER BY id LIMIT :n"), {"last": last, "n": CHUNK}).all()
        if not chunk:
            return
        yield chunk
        last = chunk[-1][0]


def _add_column(bind, column: sa.Column, sqlite_default: str) -> None:
    """NOT NULL at once on SQLite, which can add such a column only with a default (every row
    gets its value below), and after the rows are filled on PostgreSQL. Not batch mode: its copy,
    drop and rename of ``holders`` trips the foreign keys of ``cards`` on SQLite."""
    if bind.dialect.name == "sqlite":
        column.nullable, column.server_default = False, sa.DefaultClause(sa.text(sqlite_default))
    op.add_column('holders', column)


def upgrade() -> None:
    from datetime import date

    from cardctl.domain.sealed import birth_sealer

    bind = op.get_bind()
    filled = bind.execute(sa.text("SELECT 1 FROM holders LIMIT 1")).first() is not None
    seal = birth_sealer(_keys().data_key) if filled else None  # before any change
    _add_column(bind, sa.Column('birth_sealed', sa.LargeBinary(length=64), nullable=True), "x''")
    if filled:
        update = sa.text("UPDATE holders SET birth_sealed = :sealed WHERE id = :id").bindparams(
            sa.bindparam("sealed", type_=sa.LargeBinary()))
        for chunk in _rows(bind, "birth_date"):
            # SQLite hands a DATE column back as text
            bind.execute(update, [{"id": row_id, "sealed": seal(id_hash, birth if isinstance(birth, date)
                                                                  else date.fromisoformat(str(birth)[:10]))}
                                  for row_id, id_hash, birth in chunk])
    if bind.dialect.name != "sqlite":
        op.alter_column('holders', 'birth_sealed', existing_type=sa.LargeBinary(length=64), nullable=False)
    op.drop_column('holders', 'birth_date')


def downgrade() -> None:
    """Back to a clear birth date: only with the key file, since only it opens the sealed dates."""
    from cardctl.domain.sealed import open_birth_date

    bind = op.get_bind()
    filled = bind.execute(sa.text("SELECT 1 FROM holders LIMIT 1")).first() is not None
    data_key = _keys().data_key if filled else None
    _add_column(bind, sa.Column('birth_date', sa.Date(), nullable=True), "'1900-01-01'")
    if filled:
        update = sa.text("UPDATE holders SET birth_date = :birth WHERE id = :id").bindparams(
            sa.bindparam("birth", type_=sa.Date()))
        for chunk in _rows(bind, "birth_sealed"):
            bind.execute(update, [{"id": row_id, "birth": open_birth_date(data_key, id_hash, sealed)}
                                  for row_id, id_hash, sealed in chunk])
    if bind.dialect.name != "sqlite":
        op.alter_column('holders', 'birth_date', existing_type=sa.Date(), nullable=False)
    op.drop_column('holders', 'birth_sealed')
