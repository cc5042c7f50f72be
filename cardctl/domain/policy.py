"""Per-region policy: most specific area-code prefix wins, then the default ('')."""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import InvalidInput
from ..i18n import _


@dataclass(frozen=True)
class Policy:
    max_attempts: int = 3
    lock_hours: int = 24  # 0 means a PIN lock never ends by itself
    temp_loss_days: int = 7
    default_pin: str = "123456"
    minor_age: int = 16
    # escalation to a counter visit (docs/domain.md): the Nth PIN lock of a card within the
    # window never ends by itself; 0 = off
    escalate_after: int = 0
    escalate_window_days: int = 30


DEFAULT = Policy()

# (low, high) for every numeric setting; checked when a policy is set
LIMITS = {
    "max_attempts": (1, 10),
    "lock_hours": (0, 24 * 365),
    "temp_loss_days": (1, 90),
    "minor_age": (14, 18),
    "escalate_after": (0, 20),
    "escalate_window_days": (1, 365),
}


def resolve(by_prefix: dict[str, Policy], region: str) -> Policy:
    for length in range(len(region), -1, -1):
        found = by_prefix.get(region[:length])
        if found is not None:
            return found
    return DEFAULT


def check_limits(policy: Policy) -> None:
    for field in fields(policy):
        if field.name in LIMITS:
            low, high = LIMITS[field.name]
            value = getattr(policy, field.name)
            if not low <= value <= high:
                raise InvalidInput(_("{setting} must be from {low} to {high}, not {value}").format(
                    setting=field.name.replace("_", "-"), low=low, high=high, value=value))
    if not (len(policy.default_pin) == 6 and policy.default_pin.isascii() and policy.default_pin.isdigit()):
        raise InvalidInput(_("default-pin must be 6 digits"))
