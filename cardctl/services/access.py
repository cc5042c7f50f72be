"""The one access check every command passes: who is acting, the role they hold, and the refusal
of anything above it (exit 6, recorded in the audit trail as ``access.refused``).

The acting identity is the OS login running cardctl on SQLite (``--operator`` only names the
person at the counter and is recorded beside it) and the database login on PostgreSQL, where
the server enforces the same role through its privileges (storage/pg_access.py). Commands
that need no more than ``auditor`` open the database read-only.
"""

from __future__ import annotations

import json

from typing import TYPE_CHECKING

from ..clock import Clock
from ..config import Settings
from ..domain.events import Action, Outcome
from ..domain.roles import Role, Standing
from ..errors import AccessRefused, CardctlError, DatabaseError, KeyFileError
from ..i18n import _, term
from ..keys import Keys, load_keys
from ..storage.audit import Actor, AuditTrail, EventDraft
from ..storage.db import Database
from ..storage.stores import direct
from .context import Context

if TYPE_CHECKING:
    from ..storage.stores import Tx


def acting_login(tx: Tx, settings: Settings) -> str:
    """The OS user on SQLite; the database login on PostgreSQL (``session_user``, the login
    that authenticated, which is also what the events trigger records as the actor)."""
    if tx.dialect == "sqlite":
        return settings.os_user
    return tx.operators.session_login()


def open_for(settings: Settings, clock: Clock, needed: Role, command: str, read_only: bool = False) -> Context:
    """Open the database for ``command`` if the acting login holds ``needed``; refuse otherwise.
    Read-only for an auditor's command and whenever ``read_only`` (a dry run)."""
    try:
        ctx = Context.open(settings, clock, read_only=read_only or needed is Role.AUDITOR)
    except AccessRefused as refused:  # PostgreSQL: a login with no rights at all on the schema
        raise AccessRefused(_("{command} needs role {role}; {problem} (the refusal could not be recorded: the login "
                              "cannot reach the audit trail)").format(
            command=command, role=term(needed.value, "role"), problem=refused.message), refused.login) from None
    with ctx.read() as tx:
        standing = tx.operators.standing(acting_login(tx, settings))
    if not standing.allows(needed):
        raise refusal(ctx.db, ctx.keys, settings, clock, standing, needed, command)
    if needed is not Role.AUDITOR and not ctx.keys.checks_identity and command not in AUDIT_KEY_ENOUGH:
        raise KeyFileError(_("{command} needs a staff key file; {path} is an auditor key file (it cannot check PINs "
                             "or ID numbers)").format(command=command, path=settings.key_file))
    return ctx


# commands above auditor that use the audit key alone (docs/security.md, "Keys by role")
AUDIT_KEY_ENOUGH = frozenset({"audit sign"})


def refusal(db: Database, keys: Keys | None, settings: Settings, clock: Clock, standing: Standing,
            needed: Role, command: str) -> AccessRefused:
    """Record the refusal in the audit trail (as far as possible) and return the error to raise."""
    message = _("{command} needs role {role}; {problem}").format(
        command=command, role=term(needed.value, "role"), problem=standing.describe())
    detail = {"command": command, "needed": needed.value, "login": standing.login,
              "role": standing.role.value if standing.role else None}
    if standing.disabled:
        detail["disabled"] = True
    problem = None
    if keys is None and db.is_sqlite:  # on PostgreSQL the refusal function hashes it
        problem = _("no key file to chain it with")
    else:
        try:
            _append_refusal(db, keys, settings, clock, message, detail)
        except CardctlError as error:
            problem = error.message
    if problem:
        message = _("{refusal} (the refusal could not be recorded: {problem})").format(refusal=message, problem=problem)
    return AccessRefused(message, standing.login)


def _append_refusal(db: Database, keys: Keys | None, settings: Settings, clock: Clock, message: str,
                    detail: dict) -> None:
    writer = Database(settings.db_url, settings.busy_timeout_s) if db.read_only else db
    actor = Actor(settings.operator, settings.os_user, settings.channel)
    trail = AuditTrail(keys.audit_key, actor) if keys is not None else None
    try:
        with direct.write(writer, clock, trail) as tx:
            if writer.is_sqlite:
                tx.record([EventDraft(Action.ACCESS_REFUSED, Outcome.REFUSED, reason=message, detail=detail)])
                return
            row = {"operator": settings.operator, "os_user": settings.os_user,
                   "channel": settings.channel, "reason": message,
                   # the form AuditTrail gives a detail, so the hash is computed alike
                   "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"))}
            tx.trail.record_refusal(row)
    finally:
        if writer is not db:
            writer.engine.dispose()


# --- init: the one command that runs before the schema is at this version ----------------------


def check_may_init(db: Database, settings: Settings, clock: Clock) -> None:
    """``init`` on a database that has operators is an admin's job; on one without, anyone's
    (the bootstrap: whoever runs it becomes admin). Checked before anything is written."""
    if not db.exists():
        return
    with direct.probe(db, clock) as tx:
        if not db.is_sqlite and tx.meta.schema_hidden():
            raise AccessRefused(_("init needs role admin; the login has no rights on {db}").format(db=db.display))
        if "operators" not in tx.meta.table_names() or not tx.operators.any():
            return
        standing = tx.operators.standing(acting_login(tx, settings))
    if standing.allows(Role.ADMIN):
        return
    keys = _keys_if_any(settings)
    raise refusal(db, keys, settings, clock, standing, Role.ADMIN, "init")


def _keys_if_any(settings: Settings) -> Keys | None:
    try:
        return load_keys(settings.key_file)
    except (KeyFileError, DatabaseError):
        return None
