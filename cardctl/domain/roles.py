"""Who may do what: the three operator roles and the names operators log in with.

``auditor`` reads (status, audit trail, policies), ``staff`` acts on cards, ``admin``
also sets policy, puts and lifts admin locks and manages operators. Each role can do
everything the one below it can. Pure rules; no database, no terminal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from ..errors import InvalidInput
from ..i18n import _, term


class Role(StrEnum):
    AUDITOR = "auditor"
    STAFF = "staff"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, needed: "Role") -> bool:
        return self.rank >= needed.rank


_RANKS = {Role.AUDITOR: 0, Role.STAFF: 1, Role.ADMIN: 2}


@dataclass(frozen=True)
class Standing:
    """What the operators table says about one login."""

    login: str
    role: Role | None  # None: not an operator
    disabled: bool = False

    def allows(self, needed: Role) -> bool:
        return self.role is not None and not self.disabled and self.role.allows(needed)

    def describe(self) -> str:
        if self.role is None:
            return _("{login} is not a cardctl operator").format(login=self.login)
        if self.disabled:
            return _("operator {login} is disabled").format(login=self.login)
        return _("{login} is {role}").format(login=self.login, role=term(self.role.value, "role"))

# A PostgreSQL login is created with this name, so it must be a plain lower-case identifier
# (no quoting games, at most 63 bytes); pg_ is reserved by PostgreSQL for its own roles.
PG_LOGIN = re.compile(r"[a-z_][a-z0-9_]{0,62}")
# On SQLite an operator is an OS login: POSIX portable user names (dots and dashes allowed),
# or "uid:N" where the system has no name for the user.
OS_LOGIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,62}|uid:[0-9]{1,10}")
_RESERVED = ("public", "none", "current_user", "session_user", "current_role")


def parse_role(raw: str) -> Role:
    try:
        return Role(raw.strip().lower())
    except ValueError:
        raise InvalidInput(_("role must be auditor, staff or admin, not {role!r}").format(role=_shown(raw))) from None


def parse_login(raw: str, postgresql: bool) -> str:
    """An operator's login name, checked before it goes near SQL or the operators table."""
    name = raw.strip()
    pattern = PG_LOGIN if postgresql else OS_LOGIN
    if not pattern.fullmatch(name):
        rule = (_("1-63 characters: lower-case letters, digits and _, not starting with a digit")
                if postgresql else _("an OS login name: letters, digits, _ . - (or uid:N)"))
        raise InvalidInput(_("operator name {name!r} is not valid: {rule}").format(name=_shown(raw), rule=rule))
    if postgresql and (name.startswith("pg_") or name in _RESERVED):
        raise InvalidInput(_("operator name {name!r} is reserved by PostgreSQL").format(name=name))
    return name


def _shown(raw: str) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in raw)
    return text if len(text) <= 40 else text[:40] + "…"
