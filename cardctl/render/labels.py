"""What a table shows for stored English values: terms, column headers; system reasons are
worded by ``domain.reasons``.

Records keep their English keys and values (JSON, JSON lines and CSV carry them as they are);
only a table translates them, through ``i18n.tr``. Every term is marked with ``N_`` so the
catalog test knows it needs a translation.
"""

from __future__ import annotations

import re

from ..domain import reasons
from ..domain.results import FAMILIES
from ..domain.times import duration  # noqa: F401  (records and tables word durations alike)
from ..i18n import N_, NC_, tr

ROLE = "role"  # the context of role names: "admin" the role is not "admin" the lock

TERMS = (
    # card status
    N_("pending"), N_("active"), N_("lost"), N_("void"),
    # lock kinds, and no lock at all (status --summary)
    N_("pin"), N_("arrears"), N_("admin"), N_("none"),
    # roles
    NC_("role", "auditor"), NC_("role", "staff"), NC_("role", "admin"),
    # loss reports, and why a card was replaced
    N_("temporary"), N_("formal"), N_("damaged"),
    # insurance types
    N_("employee"), N_("resident"),
    # channels
    N_("counter"), N_("bank"), N_("terminal"), N_("online"), N_("hotline"), N_("system"),
    # results of every command family, marked where they are defined (domain/results.py)
    *(result.term for family in FAMILIES for result in family),
    # what a payment did to the locks beside the entry (arrears_panel)
    N_("released"), N_("still locked"),
    # how a lock ended (report), beside expired, unlocked and reset above
    N_("replaced"),
    # how long a lock lasted (report), between "up to 1h" and "over 30d" (marked where they are made)
    N_("1h-6h"), N_("6h-12h"), N_("12h-24h"), N_("24h-48h"), N_("2d-7d"), N_("7d-30d"),
    # a policy row that is not for one region, and yes/no cells
    N_("default"), N_("yes"), N_("no"),
    # a policy whose PIN locks never end by themselves (lock_hours 0)
    N_("until unlocked"),
    # a policy that never escalates a PIN lock to a counter visit (escalate_after 0)
    N_("off"),
)

# result_table headers by record key; the English is the key as it always read
COLUMNS = {
    "card_no": N_("Card no"), "result": N_("Result"), "detail": N_("Detail"), "line": N_("Line"),
    "ended_at": N_("Ended at"), "region": N_("Region"), "area_code": N_("Area code"), "from": N_("From"),
    "max_attempts": N_("Max attempts"), "lock_hours": N_("Lock hours"), "temp_loss_days": N_("Temp loss days"),
    "default_pin": N_("Default pin"), "minor_age": N_("Minor age"), "login": N_("Login"), "role": N_("Role"),
    "active": N_("Active"), "created_at": N_("Created at"), "created_by": N_("Created by"),
    "disabled_at": N_("Disabled at"), "seq": N_("Seq"), "at": N_("At"), "operator": N_("Operator"),
    "actor": N_("Actor"), "os_user": N_("OS user"), "channel": N_("Channel"), "action": N_("Action"), "outcome": N_("Outcome"),
    "reason": N_("Reason"), "status": N_("Status"), "lock": N_("Lock"), "cards": N_("Cards"),
    "kind": N_("Kind"), "loss_kind": N_("Loss kind"), "count": N_("Count"),
    # report sections
    "day": N_("Day"), "pin_opened": N_("Pin opened"), "pin_ended": N_("Pin ended"),
    "arrears_opened": N_("Arrears opened"), "arrears_ended": N_("Arrears ended"),
    "admin_opened": N_("Admin opened"), "admin_ended": N_("Admin ended"), "ended": N_("Ended"),
    "median_s": N_("Median s"), "p95_s": N_("P95 s"), "median": N_("Median"), "p95": N_("P95"),
    "duration": N_("Duration"), "pin": N_("Pin"), "arrears": N_("Arrears"), "admin": N_("Admin"),
    "ended_by": N_("Ended by"), "locks": N_("Locks"), "share": N_("Share"), "holder_name": N_("Holder name"),
    "first": N_("First"), "last": N_("Last"), "unit": N_("Unit"), "owed": N_("Owed"), "debtor": N_("Debtor"),
    "events": N_("Events"), "refused": N_("Refused"), "total": N_("Total"),
    "kept": N_("Kept"),  # unlock: the locks in force it does not clear
    # settings show; audit log's flag on an event damaged outside cardctl
    "setting": N_("Setting"), "value": N_("Value"), "this_client": N_("This client"), "stored": N_("Stored"),
    "damaged": N_("Damaged"),
    # report sources: where wrong PINs came from (audit log shows the terminal too)
    "terminal": N_("Terminal"), "wrong_pins": N_("Wrong PINs"), "flagged": N_("Flagged"),
    # escalation to a counter visit: policy settings, and repeat_locked's count of escalated locks
    "escalate_after": N_("Escalate after"), "escalate_window_days": N_("Window days"),
    "escalated": N_("Escalated"),
    # batch runs: the report's runs section, audit log --run
    "run_id": N_("Run id"), "command": N_("Command"), "started_at": N_("Started at"), "finished": N_("Finished"),
    "input": N_("Input"), "input_sha256": N_("Input SHA-256"), "rows": N_("Rows"), "results": N_("Results"),
}
# record keys whose values are moments (ISO-8601 UTC): a table shows them in the configured zone
TIME_COLUMNS = frozenset({"at", "created_at", "disabled_at", "ended_at", "first", "last", "since", "until",
                          "lost_at", "loss_lapses_at", "as_of", "generated_at", "started_at"})
# free text a table wraps; every other column is an identifier, never broken (render/grid.py)
TEXT_COLUMNS = frozenset({"reason", "detail", "holder_name", "name", "problem", "changed", "file", "operator",
                          "note", "period", "receipt", "terminal"})
# amounts and shares, kept as text in records, aligned right as numbers are
NUMBER_COLUMNS = frozenset({"owed", "amount", "balance_before", "balance_after", "unit_owed", "share"})
# columns whose values are terms, not free text
TERM_COLUMNS = frozenset({"result", "status", "lock", "kind", "loss_kind", "channel", "region", "from", "type",
                          "ended_by", "duration", "debtor"})

# report columns that word a duration ('2h 05m'), and the column of seconds each is worded from
DURATION_SECONDS = {"median": "median_s", "p95": "p95_s"}


def header(key: str) -> str:
    return tr(COLUMNS[key]) if key in COLUMNS else key.replace("_", " ").capitalize()


def column_kind(key: str, rows: list[dict]) -> str:
    """How a table treats a column: 'time', 'number' (right-aligned), 'text' (wraps) or 'ident'."""
    if key in TIME_COLUMNS:
        return "time"
    if key in TEXT_COLUMNS:
        return "text"
    found = [row[key] for row in rows if row.get(key) not in (None, "", "-")]
    if key in NUMBER_COLUMNS or (found and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                               for v in found)):
        return "number"
    return "ident"


def yes_no(flag: bool) -> str:
    return tr(N_("yes") if flag else N_("no"))


_ISO_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)")


def readable(raw, moment=str) -> str:
    """A nested value (an event's detail, a list of locks) as text a person reads:
    'kind: pin, until: 2026-11-24 10:00'; ``moment`` shows an ISO-8601 time as the table does."""
    if isinstance(raw, dict):
        return ", ".join(f"{key}: {readable(_english(item) if key == 'reason' else item, moment)}"
                         for key, item in raw.items())
    if isinstance(raw, list):
        return "; ".join(readable(item, moment) for item in raw)
    if isinstance(raw, bool):
        return yes_no(raw)
    if isinstance(raw, str) and _ISO_TIME.fullmatch(raw):
        return moment(raw)
    return "-" if raw is None else str(raw)


def _english(reason):
    """A coded system reason in English, as records word it (docs/domain.md, "System reasons");
    any other value as it is. The audit log's table and a batch row's kept locks keep the
    trail's English, as they always showed it."""
    return reasons.worded(reason, translate=False) if reasons.decode(reason) is not None else reason


def value(key: str, raw):
    """A cell's value in the chosen language: terms and yes/no translated, anything else as it is."""
    if isinstance(raw, bool):
        return yes_no(raw)
    if key == "lock_hours" and raw == 0:  # 0: a PIN lock lasts until someone unlocks it
        return tr(N_("until unlocked"))
    if key == "escalate_after" and raw == 0:  # 0: no PIN lock escalates to a counter visit
        return tr(N_("off"))
    if key == "reason":
        return _english(raw)
    if key == "role" and isinstance(raw, str):
        return tr(raw, ROLE)
    if key in TERM_COLUMNS and isinstance(raw, str):
        return tr(raw)
    return raw


def worded_durations(row: dict) -> dict:
    """A report row whose worded durations are ``Msg``s, worded again from their seconds, so a
    table or page shows them translated; the record keeps its English."""
    if not DURATION_SECONDS.keys() & row.keys():
        return row
    return {key: duration(row[DURATION_SECONDS[key]]) if key in DURATION_SECONDS and DURATION_SECONDS[key] in row
            else raw for key, raw in row.items()}
