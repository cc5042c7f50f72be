"""The store of operators (the roles table) and, on PostgreSQL, the database logins behind them.

Changing a login goes through ``storage/pg_access.py`` (the server's ``cardctl_set_operator``),
in the same transaction as the row (docs/security.md).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, insert, select, update

from ...domain.records import OperatorRecord
from ...domain.roles import Role, Standing
from ..tables import operators
from .base import Store


def _record(row) -> OperatorRecord:
    return OperatorRecord(row.login, row.role, row.created_at, row.created_by, row.disabled_at)


class OperatorStore(Store):
    def all(self) -> list[OperatorRecord]:
        """Every operator, by login."""
        return [_record(row) for row in self.conn.execute(select(operators).order_by(operators.c.login))]

    def get(self, login: str, for_update: bool = False) -> OperatorRecord | None:
        stmt = select(operators).where(operators.c.login == login)
        row = self.conn.execute(stmt.with_for_update() if for_update else stmt).first()
        return None if row is None else _record(row)

    def standing(self, login: str) -> Standing:
        """What the operators table says about ``login``."""
        row = self.conn.execute(select(operators.c.role, operators.c.disabled_at)
                                .where(operators.c.login == login)).first()
        if row is None:
            return Standing(login, None)
        return Standing(login, Role(row.role), row.disabled_at is not None)

    def any(self) -> bool:
        """Whether the table has any operator at all (init's bootstrap)."""
        return self.conn.execute(select(operators.c.login).limit(1)).first() is not None

    def other_active_admins(self, login: str) -> int:
        return self.conn.execute(select(func.count()).select_from(operators).where(
            operators.c.role == Role.ADMIN.value, operators.c.disabled_at.is_(None),
            operators.c.login != login)).scalar()

    def add(self, login: str, role: Role, created_at: datetime, created_by: str) -> None:
        self.conn.execute(insert(operators).values(login=login, role=role.value, created_at=created_at,
                                                   created_by=created_by))

    def set_role(self, login: str, role: Role) -> None:
        """The role of ``login``; a disabled operator is enabled again with it."""
        self.conn.execute(update(operators).where(operators.c.login == login)
                          .values(role=role.value, disabled_at=None))

    def disable(self, login: str, at: datetime) -> None:
        self.conn.execute(update(operators).where(operators.c.login == login).values(disabled_at=at))

    # -- who is acting, and the PostgreSQL login behind an operator --------------------------

    def session_login(self) -> str:
        """PostgreSQL: the login that authenticated (``session_user``), which the events
        trigger records as the actor."""
        return self.conn.exec_driver_sql("SELECT session_user").scalar()

    def login_exists(self, login: str) -> bool:
        from ..pg_access import login_exists

        return login_exists(self.conn, login)

    def create_login(self, login: str, role: Role, password: str | None) -> bool:
        from ..pg_access import create_login

        return create_login(self.conn, login, role, password)

    def set_membership(self, login: str, role: Role) -> None:
        from ..pg_access import set_membership

        set_membership(self.conn, login, role)

    def disable_login(self, login: str) -> None:
        from ..pg_access import disable_login

        disable_login(self.conn, login)
