"""Rich tables for cards, verify results, batch results, summaries and events."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from typing import Iterable
from zoneinfo import ZoneInfo

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .formats import literal

# Not a terminal (a pipe, a file, CI): Rich would assume 80 columns; allow a report width.
console = Console(highlight=False, soft_wrap=False,
                  width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 120)
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
    """One line per lock in force: kind, reason, start, end and time left."""
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


def owed_text(record: dict) -> str | None:
    """'120.00 yuan own + 5000.00 yuan unit' from a card record, or None when nothing is owed."""
    parts = [f"{amount} yuan {whose}" for whose, amount in (("own", record.get("owed")),
                                                             ("unit", record.get("unit_owed")))
             if amount and amount != "0.00"]
    return " + ".join(parts) if parts else None


def status_note(record: dict, tz: str) -> str:
    """What the status alone does not say: the loss report, or why a card is void and what replaced it."""
    notes = []
    if record["status"] == "lost" and record.get("loss_kind"):
        lapse = f", lapses {local(record['loss_lapses_at'], tz)}" if record.get("loss_lapses_at") else ""
        notes.append(f"{record['loss_kind']} loss report{lapse}")
    if record["status"] == "void" and record.get("void_reason"):
        notes.append(literal(record["void_reason"]))
    if record.get("replaced_by"):
        notes.append(f"replaced by {literal(record['replaced_by'])}")
    if record.get("replaces"):
        notes.append(f"replaces {literal(record['replaces'])}")
    return "; ".join(notes)


def lock_brief(locks: list[dict], tz: str) -> Text:
    """Locks in a list row: kind and end, e.g. 'pin → 11-24 10:00 (23h 59m)'."""
    if not locks:
        return Text("-", style="dim")
    text = Text()
    for i, lock in enumerate(locks):
        if i:
            text.append(", ")
        text.append(lock["kind"], style="bold red")
        if lock["until"]:
            text.append(f" → {local(lock['until'], tz)[5:]} ({remaining(lock['remaining_s'])})")
    return text


def card_table(records: Iterable[dict], tz: str, limit: int | None = None, total: int | None = None) -> int:
    """Many cards, one row each; a single card gets the detailed view."""
    records = iter(records)
    first = next(records, None)
    second = next(records, None) if first is not None else None
    if first is not None and second is None and total is None:
        card_detail(first, tz)
        return 1
    table = Table(box=box.SIMPLE_HEAVY)
    for header in ("Card", "Holder", "ID number", "Region", "Status", "Failures", "Left", "Locks (local time)"):
        table.add_column(header, no_wrap=True, overflow="ellipsis" if header == "Holder" else "fold")
    count = 0
    for record in (r for r in (first, second) if r is not None):
        count += 1
        _list_row(table, record, tz)
    for record in records:
        count += 1
        _list_row(table, record, tz)
    if count:
        console.print(table)
    else:
        console.print("no cards match", style="dim")
    if total is not None and total > count:
        console.print(f"… and {total - count} more (use -o jsonl or -o csv for all of them)", style="dim")
    return count


def _list_row(table: Table, record: dict, tz: str) -> None:
    status = cell(record["status"], STATUS_STYLE.get(record["status"], ""))
    if record["status"] == "lost" and record.get("loss_kind"):
        status.append(f" ({record['loss_kind']})")
    elif record.get("replaced_by"):
        status.append(f" → {literal(record['replaced_by'])}", style="dim")
    table.add_row(
        cell(record["card_no"], "bold"), cell(record["holder_name"]), cell(record["id_number"]),
        cell(record["region"]), status,
        cell(record["failures"]), cell(record["attempts_left"]), lock_brief(record["locks"], tz),
    )


def card_detail(record: dict, tz: str) -> None:
    """One card: who, what state, and a table of its locks."""
    usable = Text("usable", style="green") if record["usable"] else Text("not usable", style="red")
    console.print(Text.assemble(
        ("Card ", ""), (literal(record["card_no"]), "bold"), ("  ", ""), cell(record["holder_name"]),
        ("  ", ""), cell(record["id_number"]), (f"  region {record['region']}  {record.get('type', '')}", "")))
    console.print(Text.assemble(
        ("Status ", ""), (record["status"], STATUS_STYLE.get(record["status"], "")), (" · ", ""), usable,
        (f" · failures {record['failures']}, {record['attempts_left']} attempt(s) left", "")))
    note, owed = status_note(record, tz), owed_text(record)
    if note:
        console.print(Text(note, style="dim"))
    if owed:
        console.print(Text(f"Owed {owed}", style="red"))
    if not record["locks"]:
        console.print("No lock in force.", style="dim")
        return
    table = Table(box=box.SIMPLE_HEAVY)
    for header in ("Lock", "Reason", "Since (local)", "Until (local)", "Left"):
        table.add_column(header)
    for lock in record["locks"]:
        table.add_row(cell(lock["kind"], "bold red"), cell(lock["reason"]), cell(local(lock["since"], tz)),
                      cell(local(lock["until"], tz) if lock["until"] else "until cleared"),
                      cell(remaining(lock["remaining_s"]) if lock["until"] else "-"))
    console.print(table)


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


def arrears_panel(record: dict, shown: int = 20) -> int:
    """A debt or payment: the balance before and after, and which cards were locked or released."""
    who = f"card {record['card_no']}" if record["card_no"] else f"unit {record['unit']}"
    console.print(Text(f"{record['entry']} of {record['amount']} yuan for {literal(who)}: "
                       f"balance {record['balance_before']} -> {record['balance_after']}"))
    for label, style in (("locked", "red"), ("released", "green"), ("still_locked", "yellow")):
        cards = record[label]
        if cards:
            more = f" … and {len(cards) - shown} more" if len(cards) > shown else ""
            console.print(Text(f"{label.replace('_', ' ')}: ", style=style)
                          + Text(literal(", ".join(cards[:shown])) + more))
    return 1
