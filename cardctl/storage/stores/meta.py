"""The store of facts about this database (key fingerprint, settings)."""

from __future__ import annotations

from .base import Store


class MetaStore(Store):
    pass
