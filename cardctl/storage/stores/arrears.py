"""The store of the arrears ledger."""

from __future__ import annotations

from .base import Store


class ArrearsStore(Store):
    pass
