"""The store of facts about this database: the key fingerprint and the database-wide settings."""

from __future__ import annotations

from sqlalchemy import inspect, insert, select, update

from ..tables import meta
from .base import Store

KEY_FINGERPRINT = "key_fingerprint"


class MetaStore(Store):
    def get(self, key: str) -> str | None:
        return self.conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar()

    def put(self, key: str, value: str) -> None:
        """Set ``key`` to ``value``, adding it if absent (one writer at a time: the write lock)."""
        done = self.conn.execute(update(meta).where(meta.c.key == key).values(value=value)).rowcount
        if not done:
            self.conn.execute(insert(meta).values(key=key, value=value))

    def add(self, key: str, value: str) -> None:
        self.conn.execute(insert(meta).values(key=key, value=value))

    # -- what init asks before the schema is known to be cardctl's ---------------------------

    def table_names(self) -> set[str]:
        return set(inspect(self.conn).get_table_names())

    def schema_hidden(self) -> bool:
        """PostgreSQL: a cardctl schema exists in this database, and this login may not use it."""
        from ..pg_access import schema_hidden

        return schema_hidden(self.conn)

    def store_chain_key(self, audit_key: bytes) -> None:
        """PostgreSQL, as the schema owner: the key the refusal function hashes with
        (docs/security.md); nobody else may."""
        from ..pg_access import owns_schema, store_chain_key

        if owns_schema(self.conn):
            store_chain_key(self.conn, audit_key)
