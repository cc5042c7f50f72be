"""The attack on a copy of the database: rebuild each holder's ID number from what is in clear.

An attacker with a dump (the SQLite file and its WAL, or ``pg_dump``) and no key file knows of
each holder the mask (digits 1-3 and 15-18: sequence, sex digit and check character), the
card's region (usually digits 1-6), and whatever the trail or the holders row says about the
birth date: a date column, an age in a refusal reason, a ``"guardian": true`` (so: a minor at
that time, under the region's minor age from ``policies``). Each holder's candidates are the
numbers consistent with all of that and with the check character; docs/security.md promises
no holder has fewer than ``ENOUGH``.

The count is exact and fast: the check character depends on a weighted digit sum mod 11, so
births and areas are counted per residue and the residues combined.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

from cardctl.domain.identity import EARLIEST_BIRTH, _area_periods

ENOUGH = 1000
PG_DUMP = "/usr/lib/postgresql/15/bin/pg_dump"
WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK = "10X98765432"
# what the trail has said (or could say) about a holder's age, in any wording cardctl used
AGE_IS = re.compile(r"holder is (\d+)")
MINOR = re.compile(r"under the region's minor age|minor's card|a guardian must act")
DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")

Tables = dict[str, list[dict[str, str | None]]]


# --- reading a dump ----------------------------------------------------------------------------


def sqlite_tables(files: list[Path], folder: Path) -> Tables:
    """The tables as an attacker reads them from a copied database file and its -wal."""
    folder.mkdir(parents=True, exist_ok=True)
    main = folder / "stolen.db"
    for source in files:
        suffix = source.name[len(files[0].name):]  # "", "-wal", "-shm"
        (folder / f"stolen.db{suffix}").write_bytes(source.read_bytes())
    conn = sqlite3.connect(main)
    try:
        names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        tables = {}
        for name in names:
            cursor = conn.execute(f'SELECT * FROM "{name}"')
            columns = [c[0] for c in cursor.description]
            tables[name] = [{col: _text(value) for col, value in zip(columns, row)} for row in cursor]
        return tables
    finally:
        conn.close()


def _text(value) -> str | None:
    if value is None:
        return None
    return value.hex() if isinstance(value, bytes) else str(value)


def pg_dump(conninfo: str) -> str:
    return subprocess.run([PG_DUMP, "--data-only", "--no-owner", conninfo], check=True, capture_output=True,
                          text=True, timeout=120).stdout


def pg_tables(dump: str) -> Tables:
    """The COPY blocks of a ``pg_dump`` as rows of text."""
    tables: Tables = {}
    lines = iter(dump.splitlines())
    for line in lines:
        match = re.match(r"COPY (?:\w+\.)?\"?(\w+)\"? \((.*)\) FROM stdin;", line)
        if not match:
            continue
        columns = [c.strip().strip('"') for c in match[2].split(",")]
        rows = tables.setdefault(match[1], [])
        for row in lines:
            if row == "\\.":
                break
            values = [None if v == "\\N" else v.replace("\\\\", "\\") for v in row.split("\t")]
            rows.append(dict(zip(columns, values)))
    return tables


# --- the attack --------------------------------------------------------------------------------


def candidates(tables: Tables) -> dict[str, int]:
    """Candidates per holder (keyed by id_masked and row id) from every clear column."""
    cards_of: dict[str, list[dict]] = {}
    for card in tables.get("cards", []):
        cards_of.setdefault(card["holder_id"], []).append(card)
    events_of: dict[str, list[dict]] = {}
    for event in tables.get("events", []):
        if event.get("card_no"):
            events_of.setdefault(event["card_no"], []).append(event)
    policies = {p["region_prefix"] or "": int(p["minor_age"]) for p in tables.get("policies", [])}
    result = {}
    for holder in tables["holders"]:
        cards = cards_of.get(holder["id"], [])
        events = [e for c in cards for e in events_of.get(c["card_no"], [])]
        result[f'{holder["id"]}:{holder["id_masked"]}'] = _count(holder, cards, events, policies)
    return result


def _count(holder: dict, cards: list[dict], events: list[dict], policies: dict[str, int]) -> int:
    mask = holder["id_masked"]
    prefix, seq, check = mask[:3], mask[14:17], mask[17]
    low, high = EARLIEST_BIRTH, min([_day(c["issued_at"]) for c in cards] or [date.today()])
    exact: set[date] = set()
    for column, value in holder.items():
        if column not in ("id", "id_hash", "id_masked", "id_tail_hash", "name") and value:
            found = DATE.match(value.strip()[:10]) if len(value.strip()) in (8, 10) else None
            if found:
                exact.add(date(int(found[1]), int(found[2]), int(found[3])))
    regions = {c["region"] for c in cards}
    minor_age = max((age for prefix_, age in policies.items() if any(r.startswith(prefix_) for r in regions)),
                    default=18)
    for event in events:
        at = _day(event["at"])
        said = " ".join(filter(None, (event.get("reason"), event.get("detail"))))
        detail = _json(event.get("detail"))
        age = AGE_IS.search(said)
        if age:  # exactly N years old that day
            years = int(age[1])
            low, high = max(low, _years_before(at, years + 1) + timedelta(days=1)), min(high, _years_before(at, years))
        elif detail.get("guardian") is True or MINOR.search(said):
            low = max(low, _years_before(at, minor_age) + timedelta(days=1))
        elif detail.get("guardian") is False:
            high = min(high, _years_before(at, minor_age))
    births = [b for b in exact if low <= b <= high] if exact else _days(low, high)
    by_birth = Counter(_weighted(f"{b:%Y%m%d}", 6) for b in births)
    tail = _weighted(seq, 14)
    # first guess: the holder was registered where the card was issued; if no number fits
    # that, every area code with the mask's first three digits
    for areas in ([r for r in regions if r.startswith(prefix)], _areas(prefix)):
        by_area = Counter(_weighted(a, 0) for a in areas)
        found = sum(n * m for b, n in by_birth.items() for a, m in by_area.items()
                    if CHECK[(a + b + tail) % 11] == check)
        if found:
            return found
    return 0


def _weighted(digits: str, start: int) -> int:
    return sum(int(d) * w for d, w in zip(digits, WEIGHTS[start:])) % 11


def _areas(prefix: str) -> list[str]:
    return [code for code in (f"{prefix}{n:03d}" for n in range(1000)) if _area_periods(code) is not None]


def _days(low: date, high: date) -> list[date]:
    return [low + timedelta(days=n) for n in range((high - low).days + 1)]


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _day(text: str) -> date:
    return datetime.fromisoformat(str(text).replace(" ", "T")[:19]).date()


def _json(text: str | None) -> dict:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def birth_spellings(birth: date) -> list[bytes]:
    """How a birth date would sit in the raw bytes of a file: as SQLite and PostgreSQL write a date."""
    return [f"{birth:%Y-%m-%d}".encode(), f"{birth:%Y%m%d}".encode()]
