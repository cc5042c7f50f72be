"""The store of region policies ('' is the default; the longest matching prefix wins)."""

from __future__ import annotations

from dataclasses import asdict, fields

from sqlalchemy import insert, select, update

from ...domain.policy import Policy
from ..tables import policies
from .base import Store

FIELDS = tuple(field.name for field in fields(Policy))


def _policy(row) -> Policy:
    return Policy(**{name: getattr(row, name) for name in FIELDS})


class PolicyStore(Store):
    def all(self) -> dict[str, Policy]:
        """Every stored policy by its prefix, in prefix order."""
        rows = self.conn.execute(select(policies).order_by(policies.c.region_prefix))
        return {row.region_prefix: _policy(row) for row in rows}

    def get(self, prefix: str, for_update: bool = False) -> Policy | None:
        stmt = select(policies).where(policies.c.region_prefix == prefix)
        row = self.conn.execute(stmt.with_for_update() if for_update else stmt).first()
        return None if row is None else _policy(row)

    def add(self, prefix: str, policy: Policy) -> None:
        self.conn.execute(insert(policies).values(region_prefix=prefix, **asdict(policy)))

    def update(self, prefix: str, **values) -> None:
        """Set these settings of ``prefix``'s policy (names of ``Policy`` fields)."""
        if values:
            self.conn.execute(update(policies).where(policies.c.region_prefix == prefix).values(**values))
