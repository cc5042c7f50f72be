"""Operators: add, list, change role, disable (admin only; every change audited).

On SQLite an operator is an OS login and this table is all there is. On PostgreSQL it is a
database login: adding one creates the login (if absent) and puts it in the role's group,
changing the role moves it between groups, disabling it takes its LOGIN away, all in the same
transaction as the table row and the audit event. The server makes each of those changes
through ``cardctl_set_operator`` (storage/pg_access.py), so an admin needs no CREATEROLE, and
a role that exists but was not created by cardctl for this database is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..domain.results import OperatorResult
from ..domain.events import Action, Outcome
from ..domain.model import iso
from ..domain.records import OperatorRecord
from ..domain.roles import Role
from .. import config
from ..errors import Conflict, InvalidInput, NotAllowed, NotFound, Refused
from ..i18n import N_, _, term
from ..storage.audit import EventDraft
from .access import acting_login
from .context import Context

if TYPE_CHECKING:
    from ..storage.stores import Tx

MAX_PASSWORD = 256


class OperatorNotFound(NotFound):

    def __init__(self, login: str) -> None:
        super().__init__(_("operator {login} not found").format(login=login))


@dataclass(frozen=True)
class OperatorView:
    login: str
    role: str
    created_at: datetime
    created_by: str
    disabled_at: datetime | None

    def record(self) -> dict[str, Any]:
        return {"login": self.login, "role": self.role, "active": self.disabled_at is None,
                "created_at": iso(self.created_at), "created_by": self.created_by,
                "disabled_at": iso(self.disabled_at) if self.disabled_at else None}


@dataclass(frozen=True)
class OperatorChange:
    login: str
    result: str  # added | re-enabled | role changed | unchanged | disabled
    role: str
    login_created: bool = False

    def record(self) -> dict[str, Any]:
        return {"login": self.login, "result": self.result, "role": self.role,
                "login_created": self.login_created}


def _view(row: OperatorRecord) -> OperatorView:
    return OperatorView(row.login, row.role, row.created_at, row.created_by, row.disabled_at)


def list_operators(ctx: Context) -> list[OperatorView]:
    with ctx.read() as tx:
        return [_view(row) for row in tx.operators.all()]


def needs_password(ctx: Context, login: str) -> bool:
    """PostgreSQL only: adding ``login`` creates a database login, which needs a password."""
    if ctx.db.is_sqlite:
        return False
    with ctx.read() as tx:
        return not tx.operators.login_exists(login)


def check_password(password: str) -> str:
    if not password or not password.strip():
        raise InvalidInput(_("the password is empty"))
    if len(password) > MAX_PASSWORD or not password.isprintable():
        raise InvalidInput(_("the password must be printable and at most {max_len} characters").format(
            max_len=MAX_PASSWORD))
    return password


def add_operator(ctx: Context, login: str, role: Role, password: str | None = None) -> OperatorChange:
    """Register ``login`` with ``role``; a disabled operator comes back with the new role."""
    if ctx.db.is_sqlite and not config.os_login_exists(login):
        # on SQLite the role belongs to an OS login (docs/security.md): a name no one can log in
        # as would be an operator nobody is, or, worse, one waiting for whoever creates that login
        raise InvalidInput(_("{login} is not a login on this computer (no such OS user); on SQLite an "
                             "operator is an OS login: create it first, or check the spelling").format(login=login))
    with ctx.write() as tx:
        row = tx.operators.get(login, for_update=True)
        if row is not None and row.disabled_at is None:
            raise Conflict(_("{login} is already an operator ({role}); change it with operator set-role").format(
                login=login, role=term(row.role, "role")))
        if row is None:
            tx.operators.add(login, role, tx.now, acting_login(tx, ctx.settings))
            result = OperatorResult.ADDED
        else:
            tx.operators.set_role(login, role)
            result = OperatorResult.RE_ENABLED
        created = False if ctx.db.is_sqlite else tx.operators.create_login(login, role, password)
        tx.record([EventDraft(Action.OPERATOR_ADD, result.outcome, detail={
            "login": login, "role": role.value, "login_created": created})])
    return OperatorChange(login, result, role.value, created)


def set_role(ctx: Context, login: str, role: Role) -> OperatorChange:
    with ctx.write() as tx:
        before = Role(_active(tx, login).role)
        if before is role:
            return OperatorChange(login, "unchanged", role.value)
        if before is Role.ADMIN:
            _keep_an_admin(tx, login, N_("demote"))
        tx.operators.set_role(login, role)
        if not ctx.db.is_sqlite:
            tx.operators.set_membership(login, role)
        tx.record([EventDraft(Action.OPERATOR_SET_ROLE, Outcome.CHANGED, detail={
            "login": login, "from": before.value, "to": role.value})])
    return OperatorChange(login, "role changed", role.value)


def disable_operator(ctx: Context, login: str, reason: str) -> OperatorChange:
    with ctx.write() as tx:
        row = _active(tx, login)
        if row.role == Role.ADMIN:
            _keep_an_admin(tx, login, N_("disable"))
        tx.operators.disable(login, tx.now)
        if not ctx.db.is_sqlite:
            tx.operators.disable_login(login)
        tx.record([EventDraft(Action.OPERATOR_DISABLE, Outcome.DISABLED, reason=reason,
                              detail={"login": login, "role": row.role})])
    return OperatorChange(login, "disabled", row.role)


def _active(tx: Tx, login: str) -> OperatorRecord:
    row = tx.operators.get(login, for_update=True)
    if row is None:
        raise OperatorNotFound(login)
    if row.disabled_at is not None:
        raise NotAllowed(_("operator {login} is disabled; add it again with operator add").format(login=login))
    return row


def _keep_an_admin(tx: Tx, login: str, verb: str) -> None:
    """Nobody could manage operators any more: a lock-out of the whole office."""
    if not tx.operators.other_active_admins(login):
        raise Refused(_("{login} is the last active admin; make another admin before you {verb} it").format(
            login=login, verb=term(verb)))
