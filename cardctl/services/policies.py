"""Per-region policy: list it, resolve it for an area code, change it (audited)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

from ..domain import policy as rules
from ..domain.events import Action, Outcome
from ..domain.identity import parse_region
from ..domain.policy import Policy
from ..errors import InvalidInput
from ..i18n import _
from ..storage.audit import EventDraft
from .context import POLICY_FIELDS, Context

DEFAULT_NAME = "default"
# area codes are province (2), prefecture (4) and county (6) digits
PREFIX_LENGTHS = (2, 4, 6)


@dataclass(frozen=True)
class PolicyEntry:
    prefix: str  # '' is the default
    policy: Policy

    def record(self) -> dict[str, Any]:
        return {"region": self.prefix or DEFAULT_NAME, **asdict(self.policy)}


@dataclass(frozen=True)
class PolicyChange:
    entry: PolicyEntry
    outcome: str  # created | changed | unchanged
    changes: dict[str, list]

    def record(self) -> dict[str, Any]:
        return {**self.entry.record(), "result": self.outcome,
                "changed": ", ".join(f"{name} {old} -> {new}" for name, (old, new) in self.changes.items())}


def parse_prefix(raw: str) -> str:
    """'default' (or '') for the default, else a 2-, 4- or 6-digit area-code prefix."""
    text = raw.strip()
    if text.lower() in (DEFAULT_NAME, ""):
        return ""
    if not (text.isascii() and text.isdigit() and len(text) in PREFIX_LENGTHS):
        raise InvalidInput(_("region {region!r}: expected 'default' or a 2-, 4- or 6-digit area-code prefix").format(
            region=text[:12]))
    return parse_region(text) if len(text) == 6 else text


def list_policies(ctx: Context) -> list[PolicyEntry]:
    with ctx.read() as tx:
        return [PolicyEntry(prefix, policy) for prefix, policy in tx.policies.all().items()]


def policy_for_region(ctx: Context, region: str) -> PolicyEntry:
    """The policy that applies to a 6-digit area code, and the prefix it comes from."""
    with ctx.read() as tx:
        by_prefix = tx.policies.all()
    for length in range(len(region), -1, -1):
        if region[:length] in by_prefix:
            return PolicyEntry(region[:length], by_prefix[region[:length]])
    return PolicyEntry("", rules.DEFAULT)


def set_policy(ctx: Context, prefix: str, changes: dict[str, Any]) -> PolicyChange:
    """Change settings for one prefix; a new prefix starts from the policy it would inherit."""
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise InvalidInput(_("unknown policy setting(s): {names}").format(names=", ".join(sorted(unknown))))
    with ctx.write() as tx:
        stored = tx.policies.get(prefix, for_update=True)
        # read afresh: the context's cached copy may predate this process's last change
        before = stored if stored is not None else rules.resolve(tx.policies.all(), prefix)
        after = replace(before, **changes)
        rules.check_limits(after)
        diff = {name: [getattr(before, name), value] for name, value in asdict(after).items()
                if getattr(before, name) != value}
        if stored is None:
            tx.policies.add(prefix, after)
            outcome = Outcome.CREATED
        else:
            tx.policies.update(prefix, **{name: value for name, (_old, value) in diff.items()})
            outcome = Outcome.CHANGED if diff else Outcome.UNCHANGED
        # old values are kept so an auditor can see, and undo, what a change did
        tx.record([EventDraft(Action.POLICY_SET, outcome, detail={"region": prefix or DEFAULT_NAME, "changes": diff})])
    ctx._policies = None  # the cached copy is stale now
    return PolicyChange(PolicyEntry(prefix, after), outcome.value, diff)
