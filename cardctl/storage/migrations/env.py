"""Alembic environment: runs on the connection cardctl hands it (see storage/schema.py)."""

from alembic import context

from cardctl.storage.tables import metadata

config = context.config


def run_migrations_online() -> None:
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("cardctl migrations run online only")
run_migrations_online()
