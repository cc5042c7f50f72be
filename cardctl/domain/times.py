"""How a moment is written in machine output (JSON, JSON lines, CSV): one format for every
record, whichever layer builds it (domain records, services, renderers); and how a duration
is worded."""

from __future__ import annotations

from datetime import datetime, timezone

from ..i18n import _


def iso_utc(moment: datetime | str | None) -> str | None:
    """A moment as JSON, JSON lines and CSV carry it in every command: ISO-8601 UTC with ``Z``,
    always to the second (``2026-12-05T21:58:01Z``), so one pattern parses every time printed.
    Whole seconds are what people type into --since and --as-of; the database and the audit
    export keep the fraction. Tables show the configured zone instead (``render.tables.local``)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:  # stored times are UTC; a naive one must not be read as the host's zone
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def duration(seconds: int | None):
    """Seconds worded as the report words them ('1d 1h', '2h 05m', '1m 05s', '5s'), as a ``Msg``."""
    if seconds is None:
        return "-"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return _("{days}d {hours}h").format(days=days, hours=hours)
    if hours:
        return _("{hours}h {minutes:02d}m").format(hours=hours, minutes=minutes)
    if minutes:
        return _("{minutes}m {seconds:02d}s").format(minutes=minutes, seconds=secs)
    return _("{seconds}s").format(seconds=secs)
