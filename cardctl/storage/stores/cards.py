"""The store of cards and their holders."""

from __future__ import annotations

from .base import Store


class CardStore(Store):
    pass
