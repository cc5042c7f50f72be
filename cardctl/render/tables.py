"""Rich tables for cards, verify results, batch results, summaries and events.

Tables are for people: headers, terms and messages are in the chosen language (``i18n``),
times in the configured zone (``CARDCTL_TZ``), named in the header, in one format. Every
table is laid out by ``render.grid``: identifiers whole at any width, text wrapped, and one
block of ``field: value`` lines per record where a table cannot fit.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Iterable
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.text import Text

from ..config import DEFAULT_TIMEZONE
from ..domain import reasons
from ..domain.results import IssueResult, PinResult, SweepResult, UnlockResult
from ..i18n import NC_, N_, Msg, _, localize, term, tr
from . import grid
from .formats import literal
from .labels import column_kind, header, readable, value

TIME_FORMAT = "%Y-%m-%d %H:%M"  # the one way a table shows a moment, in the zone its header names
console = Console(highlight=False, soft_wrap=False, width=grid.REPORT_WIDTH)
STATUS_STYLE = {"pending": "yellow", "active": "green", "lost": "red", "void": "dim"}  # in lifecycle order
LOCK_ORDER = ("pin", "arrears", "admin", "none")
# keyed by result (a StrEnum member is its value: a record's plain string finds it)
RESULT_STYLE = {PinResult.OK: "green", UnlockResult.UNLOCKED: "green", SweepResult.EXPIRED: "green",
                IssueResult.ISSUED: "green", PinResult.WRONG_PIN: "red", PinResult.LOCKED: "red",
                UnlockResult.REFUSED: "red", UnlockResult.NOT_FOUND: "red", UnlockResult.INVALID: "red",
                PinResult.UNUSABLE: "red", UnlockResult.NOT_LOCKED: "dim", UnlockResult.WOULD_UNLOCK: "yellow",
                SweepResult.WOULD_EXPIRE: "yellow", SweepResult.WOULD_LAPSE: "yellow"}


def out() -> Console:
    """The console for data, as wide as the terminal (or ``COLUMNS``) is now."""
    console.width = grid.width()
    return console


def say(text: Text | str, style: str = "") -> None:
    """A line of prose on stdout, wrapped at the width like text in a table: times stay whole."""
    shown = text if isinstance(text, Text) else Text(literal(text), style=style)
    console = out()
    for line in grid.paragraph(shown, console.width) or [Text()]:
        console.print(line, crop=False)


def zone() -> str:
    """The zone tables show times in (``CARDCTL_TZ``, checked when the settings are read)."""
    return os.environ.get("CARDCTL_TZ") or DEFAULT_TIMEZONE


def zoned(shown: str, tz: str) -> str:
    """A header, already in the chosen language, that says which zone its times are in:
    'Since (Asia/Shanghai)'."""
    return localize(_("{header} ({zone})").format(header=shown, zone=tz))


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
    try:
        moment = datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone(ZoneInfo(tz))
    except ValueError:  # a time damaged outside cardctl (audit log lists it): shown as stored
        return iso_utc
    return moment.strftime(TIME_FORMAT)


def remaining(seconds: int | None) -> str:
    if seconds is None:
        return tr(N_("no end"))
    hours, rest = divmod(seconds, 3600)
    return localize(_("{hours}h {minutes:02d}m").format(hours=hours, minutes=rest // 60))


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
        notes.append(literal(localize(reasons.worded(record["void_reason"]))))
    if record.get("replaced_by"):
        notes.append(_("replaced by {card}").format(card=literal(record["replaced_by"])))
    if record.get("replaces"):
        notes.append(_("replaces {card}").format(card=literal(record["replaces"])))
    return "; ".join(localize(note) for note in notes)


# an escalated PIN lock's end (docs/domain.md, "Escalation to a counter visit")
COUNTER_VISIT = N_("until counter visit")


def lock_brief(locks: list[dict], tz: str) -> grid.Cell:
    """Locks in a list row, one a line: kind, end and time left ('pin → 2026-11-24 10:00 (23h 59m)'),
    breaking only between those three."""
    if not locks:
        return Text("-", style="dim")
    lines = []
    for lock in locks:
        kind = Text(tr(lock["kind"]), style="bold red")
        if lock.get("escalated"):  # no end time: it waits for the holder at a counter
            lines.append([kind, Text(f"→ {tr(COUNTER_VISIT)}", style="bold red")])
            continue
        lines.append([kind, Text(f"→ {local(lock['until'], tz)}"), Text(f"({remaining(lock['remaining_s'])})")]
                     if lock["until"] else [kind])
    return lines


def card_table(records: Iterable[dict], tz: str, limit: int | None = None, total: int | None = None) -> int:
    """Many cards, one row each; a single card gets the detailed view."""
    records = iter(records)
    first = next(records, None)
    second = next(records, None) if first is not None else None
    if first is not None and second is None and total is None:
        card_detail(first, tz)
        return 1
    rows = [_list_row(record, tz) for record in (*(r for r in (first, second) if r is not None), *records)]
    if rows:
        columns = [grid.Column(tr(N_("Card"))), grid.Column(tr(N_("Holder")), grid.TEXT),
                   grid.Column(tr(N_("ID number"))), grid.Column(tr(N_("Region"))), grid.Column(tr(N_("Status"))),
                   grid.Column(tr(N_("Failures")), grid.NUMBER), grid.Column(tr(N_("Left")), grid.NUMBER),
                   grid.Column(zoned(tr(NC_("card list", "Locks"), "card list"), tz))]
        grid.show(out(), columns, rows, record_label=tr(N_("record")))
    else:
        out().print(tr(N_("no cards match")), style="dim")
    if total is not None and total > len(rows):
        more = _("… and {count} more (use -o jsonl or -o csv for all of them)").format(count=total - len(rows))
        out().print(localize(more), style="dim")
    return len(rows)


def _list_row(record: dict, tz: str) -> list[grid.Cell]:
    status = cell(tr(record["status"]), STATUS_STYLE.get(record["status"], ""))
    if record["status"] == "lost" and record.get("loss_kind"):
        status = cell(_("{status} ({kind})").format(status=term(record["status"]), kind=term(record["loss_kind"])),
                      STATUS_STYLE["lost"])
    elif record.get("replaced_by"):
        status = [[status, Text(f"→ {literal(record['replaced_by'])}", style="dim")]]
    return [cell(record["card_no"], "bold"), cell(record["holder_name"]), cell(record["id_number"]),
            cell(record["region"]), status, cell(record["failures"]), cell(record["attempts_left"]),
            lock_brief(record["locks"], tz)]


def lock_table(locks: list[dict], tz: str) -> None:
    """The locks in force on one card: kind, reason, start, end and time left."""
    columns = [grid.Column(tr(N_("Lock"))), grid.Column(tr(N_("Reason")), grid.TEXT),
               grid.Column(zoned(tr(N_("Since")), tz)), grid.Column(zoned(tr(N_("Until")), tz)),
               grid.Column(tr(N_("Left")))]
    rows = [[cell(tr(lock["kind"]), "bold red"), cell(reasons.worded(lock["reason"])), cell(local(lock["since"], tz)),
             cell(local(lock["until"], tz) if lock["until"] else
                  tr(COUNTER_VISIT) if lock.get("escalated") else tr(N_("until cleared"))),
             cell(remaining(lock["remaining_s"]) if lock["until"] else "-")] for lock in locks]
    grid.show(out(), columns, rows, record_label=tr(N_("record")))


def card_detail(record: dict, tz: str) -> None:
    """One card: who, what state, and a table of its locks."""
    say(styled(_("Card {card}  {name}  {id_number}  region {region}  {type}").format(
        card=record["card_no"], name=record["holder_name"], id_number=record["id_number"], region=record["region"],
        type=term(record.get("type") or "")), card="bold"))
    usable = N_("usable") if record["usable"] else N_("not usable")
    say(styled(_("Status {status} · {usable} · failures {failures}, {left} attempt(s) left").format(
        status=term(record["status"]), usable=term(usable), failures=record["failures"], left=record["attempts_left"]),
        status=STATUS_STYLE.get(record["status"], ""), usable="green" if record["usable"] else "red"))
    note, owed = status_note(record, tz), owed_text(record)
    if note:
        say(Text(note, style="dim"))
    if owed:
        say(Text(localize(_("Owed {owed}").format(owed=owed)), style="red"))
    if not record["locks"]:
        say(tr(N_("No lock in force.")), style="dim")
        return
    out().print()
    lock_table(record["locks"], tz)


def result_table(records: Iterable[dict], title: str = "", tz: str | None = None) -> int:
    """Any records, one row each; headers and terms in the chosen language, times in ``tz``."""
    rows = list(records)
    if not rows:
        return 0
    tz = tz or zone()
    keys = list(rows[0])
    columns = [grid.Column(zoned(header(key), tz) if column_kind(key, rows) == "time" else header(key),
                           _grid_kind(column_kind(key, rows))) for key in keys]
    cells = [[_result_cell(key, record[key], tz) for key in keys] for record in rows]
    grid.show(out(), columns, cells, localize(title) or None, record_label=tr(N_("record")))
    return len(rows)


def summary_table(records: list[dict], by_status: dict[str, int], title: str) -> int:
    """``status --summary``: the counts, then their totals per status, per lock kind and of all cards
    (a card holding two kinds of lock is in both kinds' totals, and once in its status's)."""
    count = result_table(records, title)
    if not count:
        return 0
    by_kind: dict[str, int] = {}
    for record in records:
        by_kind[record["lock"]] = by_kind.get(record["lock"], 0) + record["cards"]
    totals = [{"total": _("status {status}").format(status=term(status)), "cards": by_status[status]}
              for status in (*STATUS_STYLE, *sorted(set(by_status) - set(STATUS_STYLE))) if by_status.get(status)]
    totals += [{"total": _("lock {kind}").format(kind=term(kind)), "cards": by_kind[kind]}
               for kind in (*LOCK_ORDER, *sorted(set(by_kind) - set(LOCK_ORDER))) if by_kind.get(kind)]
    totals.append({"total": _("all cards"), "cards": sum(by_status.values())})
    out().print()
    result_table(totals, _("Totals"))
    return count


def _grid_kind(kind: str) -> str:
    return {"number": grid.NUMBER, "text": grid.TEXT}.get(kind, grid.IDENT)


def _result_cell(key: str, raw, tz: str) -> Text:
    if column_kind(key, [{key: raw}]) == "time" and isinstance(raw, str):
        return cell(local(raw, tz))
    if isinstance(raw, (dict, list)):
        return cell(readable(raw, lambda moment: local(moment, tz)))
    if key == "flagged" and raw is True:  # a report source past --min-cards: seen at a glance
        return cell(value(key, raw), "bold red")
    return cell(value(key, raw), RESULT_STYLE.get(str(raw), "") if key == "result" else "")


def verify_panel(record: dict, tz: str) -> int:
    result = PinResult(record["result"])
    shown = (_("Card {card}: {result}; {left} attempt(s) left") if result in (PinResult.OK, PinResult.WRONG_PIN)
             else _("Card {card}: {result}"))
    say(styled(shown.format(card=record["card_no"], result=term(result.term),
                            left=record["attempts_left"]),
               card="bold", result=RESULT_STYLE.get(record["result"], "")))
    why = verify_why(record, tz)
    if why:
        say(Text(why, style="red"))
    if record["locks"]:
        lock_table(record["locks"], tz)
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
    say(Text(localize(_("{entry} of {amount} yuan for {who}: balance {before} -> {after}").format(
        entry=term(record["entry"]), amount=record["amount"], who=who, before=record["balance_before"],
        after=record["balance_after"]))))
    for key, label, style in (("locked", N_("locked"), "red"), ("released", N_("released"), "green"),
                              ("still_locked", N_("still locked"), "yellow")):
        cards = record[key]
        if cards:
            more = (" " + localize(_("… and {count} more").format(count=len(cards) - shown))
                    if len(cards) > shown else "")
            say(Text(f"{tr(label)}: ", style=style) + Text(literal(", ".join(cards[:shown])) + more))
    return 1
