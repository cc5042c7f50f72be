"""The one source of "now": UTC, aware, and replaceable in tests.

Times that decide locks come from one clock (docs/security.md, "A wrong clock"). The clock of
the machine cardctl runs on (``HostClock``; ``system_clock`` is the real one) is not trusted
alone: on PostgreSQL the server's clock governs every write and every read that decides a lock,
and a host whose clock is off by more than the tolerance may not write; on SQLite a write whose
clock is earlier than the newest event by more than the tolerance is refused ("the clock went
back"). A clock a test injects (any other callable) is the test's authority and is used as is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable

from .errors import WrongClock
from .i18n import _

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class HostClock:
    """The clock of this machine; ``skew`` makes a wrong one for tests, as faketime does."""

    skew: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(timezone.utc) + self.skew


system_clock = HostClock()


def is_host_clock(clock: Clock) -> bool:
    return isinstance(clock, HostClock)


def span(delta: timedelta) -> str:
    """A duration as a person reads it: 42 s, 17 min, 25.0 h."""
    seconds = abs(delta.total_seconds())
    if seconds < 120:
        return _("{n} s").format(n=round(seconds))
    if seconds < 5400:
        return _("{n} min").format(n=round(seconds / 60))
    return _("{n} h").format(n=f"{seconds / 3600:.1f}")


def check_skew(host: datetime, server: datetime, tolerance_s: int) -> None:
    """Refuse a host whose clock is off from the database server's by more than the tolerance."""
    off = host - server
    if abs(off.total_seconds()) <= tolerance_s:
        return
    text = (_("the clock of this computer is {difference} ahead of the database server's (tolerance "
              "CARDCTL_CLOCK_TOLERANCE={tolerance} s); nothing was written: set this computer's clock right (NTP)")
            if off > timedelta(0) else
            _("the clock of this computer is {difference} behind the database server's (tolerance "
              "CARDCTL_CLOCK_TOLERANCE={tolerance} s); nothing was written: set this computer's clock right (NTP)"))
    raise WrongClock(text.format(difference=span(off), tolerance=tolerance_s))


def check_not_back(host: datetime, newest: datetime | None, tolerance_s: int) -> None:
    """Refuse a write whose clock is earlier than the newest event in the trail by more than the tolerance."""
    if newest is None or (newest - host).total_seconds() <= tolerance_s:
        return
    raise WrongClock(_("the clock went back: this computer says {now}, {difference} before the newest event in the "
                       "audit trail ({newest}); nothing was written: set the clock right (tolerance "
                       "CARDCTL_CLOCK_TOLERANCE={tolerance} s)").format(
        now=host.isoformat(timespec="seconds"), difference=span(newest - host),
        newest=newest.isoformat(timespec="seconds"), tolerance=tolerance_s))
