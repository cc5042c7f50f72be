"""Database-wide settings (admin only to change; every change audited): today the bcrypt cost of
PIN hashes (domain/hashing.py, docs/security.md "The PIN hashing cost")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..domain import hashing
from ..domain.events import Action, Outcome
from ..storage.audit import EventDraft
from .context import Context

NAMES = {hashing.SETTING: "bcrypt-cost"}  # stored name -> the name on the command line


@dataclass(frozen=True)
class SettingView:
    name: str
    value: int
    effective: int  # what this client hashes with: the value, raised by CARDCTL_BCRYPT_COST
    stored: bool  # False: the database predates the setting and has the default

    def record(self) -> dict[str, Any]:
        return {"setting": self.name, "value": self.value, "this_client": self.effective, "stored": self.stored}


@dataclass(frozen=True)
class SettingChange:
    name: str
    before: int
    after: int
    outcome: str  # changed | unchanged

    def record(self) -> dict[str, Any]:
        return {"setting": self.name, "from": self.before, "to": self.after, "result": self.outcome}


def show_settings(ctx: Context) -> list[SettingView]:
    with ctx.read() as tx:
        raw = tx.meta.get(hashing.SETTING)
    value = hashing.stored_cost(raw)
    effective = hashing.effective_cost(value, ctx.settings.bcrypt_cost, ctx.settings.test_low_cost)
    return [SettingView(NAMES[hashing.SETTING], value, effective, raw is not None)]


def bcrypt_cost_now(ctx: Context) -> int:
    """The database's cost as stored now (for the question ``settings set`` asks)."""
    return show_settings(ctx)[0].value


def set_bcrypt_cost(ctx: Context, cost: int) -> SettingChange:
    """Set the database's bcrypt cost (``hashing.parse_cost`` checked it). Every PIN set from now on
    gets it; a PIN hashed at a lower cost is re-hashed at its holder's next correct PIN."""
    with ctx.write() as tx:
        before = hashing.stored_cost(tx.meta.get(hashing.SETTING))
        outcome = Outcome.CHANGED if cost != before else Outcome.UNCHANGED
        if outcome is Outcome.CHANGED:
            tx.meta.put(hashing.SETTING, str(cost))
        tx.record([EventDraft(Action.SETTINGS_SET, outcome, detail={
            "setting": hashing.SETTING, "from": before, "to": cost})])
    ctx._database_cost = cost
    return SettingChange(NAMES[hashing.SETTING], before, cost, outcome.value)
