"""Rich tables for cards, verify results, batch results, summaries and events.

Tables are for people: headers, terms and messages are in the chosen language (``i18n``),
and Rich measures Chinese characters as two columns wide, so columns stay aligned.
"""

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

from ..i18n import N_, Msg, _, localize, term, tr
from .formats import literal
from .labels import header, stored_text, value
from .readable import readable

# Not a terminal (a pipe, a file, CI): Rich would assume 80 columns; allow a report width.
console = Console(highlight=False, soft_wrap=False,
                  width=None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 120)
STATUS_STYLE = {"active": "green", "pending": "yellow", "lost": "red", "void": "dim"}
RESULT_STYLE = {"ok": "green", "unlocked": "green", "expired": "green", "issued": "green",
                "wrong_pin": "red", "locked": "red", "refused": "red", "not found": "red",
                "invalid": "red", "unusable": "red", "not locked": "dim", "would unlock": "yellow",
                "would expire": "yellow", "would lapse": "yellow"}


def cell(value, style: str = "") -> Text:
    """A cell that is always literal: Rich markup and escapes in data are never interpreted.
    A message (``i18n.Msg``) is shown in the chosen language."""
    return Text(literal(localize(value)), style=style)


def styled(message: Msg, **styles: str) -> Text:
    """A message in the chosen language as Rich text, each field in its own style, all of it literal."""
    for template in (tr(message.template, message.context), message.template):
        try:
            return _assemble(template, message.params, styles)
        except (KeyError, IndexError, ValueError):  # a broken translation: fall back to the English
            continue
    return Text(literal(message))


def _assemble(template: str, params: dict, styles: dict[str, str]) -> Text:
    from string import Formatter

    text = Text()
    for before, field, spec, conversion in Formatter().parse(template):
        if before:
            text.append(before)
        if field is not None:
            shown = localize(params[field])
            shown = repr(shown) if conversion == "r" else shown
            text.append(literal(format(shown, spec or "")), style=styles.get(field, ""))
    return text


def local(iso_utc: str | None, tz: str) -> str:
    if not iso_utc:
        return "-"
    moment = datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone(ZoneInfo(tz))
    return moment.strftime("%Y-%m-%d %H:%M")


def remaining(seconds: int | None) -> str:
    if seconds is None:
        return tr(N_("no end"))
    hours, rest = divmod(seconds, 3600)
    return localize(_("{hours}h {minutes:02d}m").format(hours=hours, minutes=rest // 60))


def lock_lines(locks: list[dict], tz: str) -> Text:
    """One line per lock in force: kind, reason, start, end and time left."""
    if not locks:
        return Text("-", style="dim")
    text = Text()
    for i, lock in enumerate(locks):
        if i:
            text.append("\n")
        text.append(tr(lock["kind"]), style="bold red")
        reason, since = literal(localize(stored_text(lock["reason"]))), local(lock["since"], tz)
        shown = (_("{reason}; since {since}, until {until} ({left} left)").format(
            reason=reason, since=since, until=local(lock["until"], tz), left=remaining(lock["remaining_s"]))
            if lock["until"] else _("{reason}; since {since}, until cleared").format(reason=reason, since=since))
        text.append(" " + localize(shown))
    return text


def owed_text(record: dict) -> str | None:
    """'120.00 yuan own + 5000.00 yuan unit' from a card record, or None when nothing is owed."""
    parts = [localize(template.format(amount=amount))
             for template, amount in ((_("{amount} yuan own"), record.get("owed")),
                                      (_("{amount} yuan unit"), record.get("unit_owed")))
             if amount and amount != "0.00"]
    return " + ".join(parts) if parts else None


def status_note(record: dict, tz: str) -> str:
    """What the status alone does not say: the loss report, or why a card is void and what replaced it."""
    notes = []
    if record["status"] == "lost" and record.get("loss_kind"):
        kind = term(record["loss_kind"])
        notes.append(_("{kind} loss report, lapses {at}").format(kind=kind, at=local(record["loss_lapses_at"], tz))
                     if record.get("loss_lapses_at") else _("{kind} loss report").format(kind=kind))
    if record["status"] == "void" and record.get("void_reason"):
        notes.append(literal(localize(stored_text(record["void_reason"]))))
    if record.get("replaced_by"):
        notes.append(_("replaced by {card}").format(card=literal(record["replaced_by"])))
    if record.get("replaces"):
        notes.append(_("replaces {card}").format(card=literal(record["replaces"])))
    return "; ".join(localize(note) for note in notes)


def lock_brief(locks: list[dict], tz: str) -> Text:
    """Locks in a list row: kind and end, e.g. 'pin → 11-24 10:00 (23h 59m)'."""
    if not locks:
        return Text("-", style="dim")
    text = Text()
    for i, lock in enumerate(locks):
        if i:
            text.append(", ")
        if lock["until"]:
            text.append_text(styled(_("{kind} → {until} ({left})").format(
                kind=term(lock["kind"]), until=local(lock["until"], tz)[5:], left=remaining(lock["remaining_s"])),
                kind="bold red"))
        else:
            text.append(tr(lock["kind"]), style="bold red")
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
    for name in (N_("Card"), N_("Holder"), N_("ID number"), N_("Region"), N_("Status"), N_("Failures"), N_("Left"),
                 N_("Locks (local time)")):
        table.add_column(tr(name), no_wrap=True, overflow="ellipsis" if name == "Holder" else "fold")
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
        console.print(tr(N_("no cards match")), style="dim")
    if total is not None and total > count:
        more = _("… and {count} more (use -o jsonl or -o csv for all of them)").format(count=total - count)
        console.print(localize(more), style="dim")
    return count


def _list_row(table: Table, record: dict, tz: str) -> None:
    status = cell(tr(record["status"]), STATUS_STYLE.get(record["status"], ""))
    if record["status"] == "lost" and record.get("loss_kind"):
        status = cell(_("{status} ({kind})").format(status=term(record["status"]), kind=term(record["loss_kind"])),
                      STATUS_STYLE["lost"])
    elif record.get("replaced_by"):
        status.append(f" → {literal(record['replaced_by'])}", style="dim")
    table.add_row(
        cell(record["card_no"], "bold"), cell(record["holder_name"]), cell(record["id_number"]),
        cell(record["region"]), status,
        cell(record["failures"]), cell(record["attempts_left"]), lock_brief(record["locks"], tz),
    )


def card_detail(record: dict, tz: str) -> None:
    """One card: who, what state, and a table of its locks."""
    console.print(styled(_("Card {card}  {name}  {id_number}  region {region}  {type}").format(
        card=record["card_no"], name=record["holder_name"], id_number=record["id_number"], region=record["region"],
        type=term(record.get("type") or "")), card="bold"))
    usable = N_("usable") if record["usable"] else N_("not usable")
    console.print(styled(_("Status {status} · {usable} · failures {failures}, {left} attempt(s) left").format(
        status=term(record["status"]), usable=term(usable), failures=record["failures"], left=record["attempts_left"]),
        status=STATUS_STYLE.get(record["status"], ""), usable="green" if record["usable"] else "red"))
    note, owed = status_note(record, tz), owed_text(record)
    if note:
        console.print(Text(note, style="dim"))
    if owed:
        console.print(Text(localize(_("Owed {owed}").format(owed=owed)), style="red"))
    if not record["locks"]:
        console.print(tr(N_("No lock in force.")), style="dim")
        return
    table = Table(box=box.SIMPLE_HEAVY)
    for name in (N_("Lock"), N_("Reason"), N_("Since (local)"), N_("Until (local)"), N_("Left")):
        table.add_column(tr(name))
    for lock in record["locks"]:
        table.add_row(cell(tr(lock["kind"]), "bold red"), cell(stored_text(lock["reason"])),
                      cell(local(lock["since"], tz)),
                      cell(local(lock["until"], tz) if lock["until"] else tr(N_("until cleared"))),
                      cell(remaining(lock["remaining_s"]) if lock["until"] else "-"))
    console.print(table)


def result_table(records: Iterable[dict], title: str = "") -> int:
    """Any records, one row each; headers and term columns in the chosen language."""
    table = Table(title=localize(title) or None)
    columns: list[str] = []
    count = 0
    for record in records:
        if not columns:
            columns = list(record)
            for name in columns:
                table.add_column(header(name))
        count += 1
        table.add_row(*(cell(readable(record[name]) if isinstance(record[name], (list, dict))  # one line each
                             else value(name, record[name]),
                             RESULT_STYLE.get(str(record[name]), "") if name == "result" else "")
                        for name in columns))
    if count:
        console.print(table)
    return count


def verify_panel(record: dict, tz: str) -> int:
    shown = (_("Card {card}: {result}; {left} attempt(s) left") if record["result"] in ("ok", "wrong_pin")
             else _("Card {card}: {result}"))
    console.print(styled(shown.format(card=record["card_no"], result=term(record["result"].replace("_", " ")),
                                      left=record["attempts_left"]),
                         card="bold", result=RESULT_STYLE.get(record["result"], "")))
    why = verify_why(record, tz)
    if why:
        console.print(Text(why, style="red"))
    if record["locks"]:
        console.print(lock_lines(record["locks"], tz))
    return 1


WHY = {"pending": N_("card is pending: activate it at a counter (identity checked, PIN set)"),
       "no_pin": N_("card has no PIN: set one with reset-pin at a counter")}


def verify_why(record: dict, tz: str) -> str:
    """Why verify refused a card that is not active, in the words of ``status`` (``status_note``);
    locks are listed under it by ``lock_lines``."""
    reason = record.get("reason")
    if reason in WHY:
        return tr(WHY[reason])
    if reason in ("lost", "void"):
        note = status_note(record, tz)
        shown = (_("card is {status}: {note}").format(status=term(reason), note=note) if note
                 else _("card is {status}").format(status=term(reason)))
        return localize(shown)
    return ""


def arrears_panel(record: dict, shown: int = 20) -> int:
    """A debt or payment: the balance before and after, and which cards were locked or released."""
    who = (_("card {card}").format(card=literal(record["card_no"])) if record["card_no"]
           else _("unit {unit}").format(unit=literal(record["unit"])))
    console.print(Text(localize(_("{entry} of {amount} yuan for {who}: balance {before} -> {after}").format(
        entry=term(record["entry"]), amount=record["amount"], who=who, before=record["balance_before"],
        after=record["balance_after"]))))
    for key, label, style in (("locked", N_("locked"), "red"), ("released", N_("released"), "green"),
                              ("still_locked", N_("still locked"), "yellow")):
        cards = record[key]
        if cards:
            more = (" " + localize(_("… and {count} more").format(count=len(cards) - shown))
                    if len(cards) > shown else "")
            console.print(Text(f"{tr(label)}: ", style=style)
                          + Text(literal(", ".join(cards[:shown])) + more))
    return 1
