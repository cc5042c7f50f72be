"""audit: verify the hash chain, list events."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated

import typer

from ..domain.identity import parse_card_no
from ..domain.model import iso
from ..domain.roles import Role
from ..errors import CardctlError, InvalidInput
from ..render.formats import OutputFormat, emit
from ..render.tables import result_table
from .common import OutputOpt, edge, message, runtime

audit_app = typer.Typer(help="The append-only, hash-chained audit trail.", no_args_is_help=True)


class ChainBroken(CardctlError):
    exit_code = 6


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


def parse_time(raw: str | None, option: str) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{option} {raw!r} is not an ISO-8601 time (e.g. 2026-11-23T08:00:00Z)") from None
    if moment.tzinfo is None:
        from zoneinfo import ZoneInfo

        import os

        moment = moment.replace(tzinfo=ZoneInfo(os.environ.get("CARDCTL_TZ") or "Asia/Shanghai"))
    return moment.astimezone(timezone.utc)


@audit_app.command("verify")
@edge
def verify(
    ctx: typer.Context,
    anchor: Annotated[list[str] | None, typer.Option(
        "--anchor", help="SEQ:HASH (16+ hex) printed by an earlier verify; proves no newer event was cut off.",
        show_default=False)] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """Check the whole chain; name the first event that was edited, deleted or reordered (exit 6).

    Prints the head as SEQ:HASH; keep it outside the database (a report, a ticket) and pass
    it back later with --anchor to prove the newest events were not removed.
    Example: cardctl audit verify --anchor 1520:3f9a0c4e2b7d81aa
    """
    from ..services.audit import verify_chain

    report = verify_chain(runtime(ctx).context(role=Role.AUDITOR), [parse_anchor(a) for a in anchor or []])
    head = f"{report.checked}:{(report.head_hash or '')[:16]}"
    if output is not OutputFormat.TABLE:
        emit([{"ok": report.ok, "checked": report.checked, "problem": report.problem,
               "first_bad_seq": report.first_bad_seq, "head": head}], output)
    if not report.ok:
        raise ChainBroken(f"audit chain broken: {report.problem}")
    if output is OutputFormat.TABLE:
        message(f"audit chain intact: {report.checked} event(s) verified; head {head}")


def parse_anchor(raw: str) -> tuple[int, str]:
    seq, _, prefix = raw.strip().partition(":")
    if not (seq.isascii() and seq.isdigit() and len(prefix) >= 16
            and all(c in "0123456789abcdefABCDEF" for c in prefix)):
        raise InvalidInput(f"--anchor {raw!r}: expected SEQ:HASH with at least 16 hex characters")
    return int(seq), prefix


def _event_record(event) -> dict:
    return {"seq": event.seq, "at": iso(event.at), "operator": event.operator, "os_user": event.os_user,
            "channel": event.channel, "action": event.action, "card_no": event.card_no,
            "outcome": event.outcome, "reason": event.reason,
            "detail": json.loads(event.detail) if event.detail else None}


@audit_app.command("log")
@edge
def log(
    ctx: typer.Context,
    card: Annotated[str | None, typer.Option("--card", help="Only this card's events.")] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO-8601 time (local if no zone).")] = None,
    until: Annotated[str | None, typer.Option("--until", help="ISO-8601 time, exclusive.")] = None,
    output: OutputOpt = OutputFormat.TABLE,
) -> None:
    """List audit events in order. Example: cardctl audit log --card A10000001 --since 2026-11-01"""
    from ..services.audit import event_log

    ctx_ = runtime(ctx).context(role=Role.AUDITOR)
    events = event_log(ctx_, parse_card_no(card) if card else None,
                       parse_time(since, "--since"), parse_time(until, "--until"))
    emit((_event_record(e) for e in events), output, table=lambda rows: result_table(rows, "Audit events"))
