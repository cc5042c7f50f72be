"""Rich tables for cards, verify results, batch results, summaries and events."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .formats import literal

console = Console(highlight=False, soft_wrap=False)
STATUS_STYLE = {"active": "green", "pending": "yellow", "lost": "red", "void": "dim"}
RESULT_STYLE = {"ok": "green", "unlocked": "green", "expired": "green", "issued": "green",
                "wrong_pin": "red", "locked": "red", "refused": "red", "not found": "red",
                "invalid": "red", "unusable": "red", "not locked": "dim", "would unlock": "yellow"}


def cell(value, style: str = "") -> Text:
    """A cell that is always literal: Rich markup and escapes in data are never interpreted."""
    return Text(literal(value), style=style)


def local(iso_utc: str | None, tz: str) -> str:
    if not iso_utc:
        return "-"
    moment = datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone(ZoneInfo(tz))
    return moment.strftime("%Y-%m-%d %H:%M")


def remaining(seconds: int | None) -> str:
    if seconds is None:
        return "no end"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m"


def lock_lines(locks: list[dict], tz: str) -> Text:
    if not locks:
        return Text("-", style="dim")
    text = Text()
    for i, lock in enumerate(locks):
        if i:
            text.append("\n")
        text.append(lock["kind"], style="bold red")
        text.append(f" {literal(lock['reason'])}; since {local(lock['since'], tz)}")
        text.append(f", until {local(lock['until'], tz)} ({remaining(lock['remaining_s'])} left)"
                    if lock["until"] else ", until cleared")
    return text


def card_table(records: Iterable[dict], tz: str, limit: int | None = None, total: int | None = None) -> int:
    table = Table(title=None, show_lines=False)
    for header in ("Card", "Holder", "ID number", "Region", "Status", "Failures", "Left", "Locks"):
        table.add_column(header, no_wrap=header not in ("Locks", "Holder"))
    count = 0
    for record in records:
        count += 1
        table.add_row(
            cell(record["card_no"], "bold"), cell(record["holder_name"]), cell(record["id_number"]),
            cell(record["region"]), cell(record["status"], STATUS_STYLE.get(record["status"], "")),
            cell(record["failures"]), cell(record["attempts_left"]), lock_lines(record["locks"], tz),
        )
    if count:
        console.print(table)
    if total is not None and total > count:
        console.print(f"… and {total - count} more (use -o jsonl or -o csv for all of them)", style="dim")
    return count


def result_table(records: Iterable[dict], title: str = "") -> int:
    table = Table(title=title or None)
    columns: list[str] = []
    count = 0
    for record in records:
        if not columns:
            columns = list(record)
            for name in columns:
                table.add_column(name.replace("_", " ").capitalize())
        count += 1
        table.add_row(*(cell(record[name], RESULT_STYLE.get(str(record[name]), "") if name == "result" else "")
                        for name in columns))
    if count:
        console.print(table)
    return count


def verify_panel(record: dict, tz: str) -> int:
    style = RESULT_STYLE.get(record["result"], "")
    text = Text.assemble(("Card ", ""), (literal(record["card_no"]), "bold"), (": ", ""),
                         (record["result"].replace("_", " "), style))
    if record["result"] in ("ok", "wrong_pin"):
        text.append(f"; {record['attempts_left']} attempt(s) left")
    console.print(text)
    if record["locks"]:
        console.print(lock_lines(record["locks"], tz))
    return 1
