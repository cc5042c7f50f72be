"""Nested record values (a card's locks, what a batch kept, an event's detail) as one line a
person reads in a table cell: ``pin until 12-07 06:00; arrears``, ``kind: pin; note: ...``.

JSON and CSV carry the same values as JSON (``formats.json_cell``); only tables word them,
in the chosen language, with times in the configured zone.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..i18n import _, localize, tr
from .formats import _ISO_TIME, _is_time_key, literal
from .labels import header


def display_zone() -> str:
    """The zone tables show times in: CARDCTL_TZ as ``Settings`` reads it (already checked there)."""
    from ..config import DEFAULT_TIMEZONE

    return os.environ.get("CARDCTL_TZ") or DEFAULT_TIMEZONE


def _local(raw: str, tz: str) -> str:
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(ZoneInfo(tz))
    return moment.strftime("%m-%d %H:%M")


def _lock(lock: dict, tz: str) -> str:
    kind = tr(str(lock["kind"]))
    until = lock.get("until")
    if isinstance(until, str) and _ISO_TIME.fullmatch(until):
        return localize(_("{kind} until {until}").format(kind=kind, until=_local(until, tz)))
    return kind


def readable(value: Any, tz: str | None = None, key: str | None = None) -> str:
    """A value as table text; nested values flattened to one line, terms translated."""
    tz = tz or display_zone()
    if value is None:
        return "-"
    if isinstance(value, bool):
        return tr(str(value))
    if isinstance(value, dict):
        if "kind" in value and "until" in value:  # a lock
            return _lock(value, tz)
        return "; ".join(f"{literal(header(name))}: {readable(item, tz, name)}" for name, item in value.items())
    if isinstance(value, (list, tuple)):
        return "; ".join(readable(item, tz) for item in value) if value else "-"
    if isinstance(value, str) and _is_time_key(key) and _ISO_TIME.fullmatch(value):
        return _local(value, tz)
    return literal(tr(value) if isinstance(value, str) else localize(value))
