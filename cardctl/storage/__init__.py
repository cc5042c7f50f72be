"""Storage layer: models, engine set-up, migrations and the audit chain."""

# Bumped with every Alembic revision; checked on open without loading Alembic (storage/db.py)
# or SQLAlchemy (storage/lite.py).
SCHEMA_REVISION = "0006"
