"""The store of region policies."""

from __future__ import annotations

from .base import Store


class PolicyStore(Store):
    pass
