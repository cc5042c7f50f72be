"""The store of facts about this database: the key fingerprint and the database-wide settings."""

from __future__ import annotations

from sqlalchemy import insert, select, update

from ..tables import meta
from .base import Store

KEY_FINGERPRINT = "key_fingerprint"
BCRYPT_COST = "bcrypt_cost"


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
