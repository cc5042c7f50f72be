"""The store of locks: opening, ending, and the SQL conditions of their state."""

from __future__ import annotations

from .base import Store


class LockStore(Store):
    pass
