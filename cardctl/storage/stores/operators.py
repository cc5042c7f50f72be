"""The store of operators (the roles table)."""

from __future__ import annotations

from .base import Store


class OperatorStore(Store):
    pass
