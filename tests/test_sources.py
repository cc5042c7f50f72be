"""PIN guessing from one place: ``verify`` and ``change-pin --terminal`` name where a PIN was
typed, the trail keeps it under its hash, and ``report --section sources`` counts the wrong PINs
per terminal, operator and channel, flagging a place whose wrong PINs hit ``--min-cards`` distinct
cards (docs/domain.md, "PIN guessing from one place").

The attacks: one wrong PIN on each of many cards from one pharmacy terminal (no card ever locks),
an insider who edits or erases the terminal of an event with sqlite3 or psql, a terminal name that
would steer a screen or overflow the column, and a report that must count in the database.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from rich.cells import cell_len

from cardctl.domain.identity import make_id_number
from cardctl.services.report import columns
from helpers_security import Office

PIN, WRONG, NEW_PIN = "583920", "271828", "702614"
T0 = datetime(2026, 12, 1, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
# twelve cards: C01-C08 in Beijing Xicheng, C09-C12 in Shenzhen Nanshan
CARDS = {f"C{n:08d}": (make_id_number("110105" if n <= 8 else "440305", date(1970, 1, n), 100 + n),
                       "110105" if n <= 8 else "440305") for n in range(1, 13)}
NUMBERS = list(CARDS)
SINCE = ["--since", "2026-12-01T00:00Z", "--until", "2026-12-02T00:00Z"]


class Place:
    """The office of a test: ``wrong`` types a wrong PIN from a place, ``sources`` reads the section."""

    def __init__(self, office: Office, clock) -> None:
        self.office, self.clock = office, clock

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None):
        return self.office(*args, input=input, env=env)

    def wrong(self, card: str, terminal: str | None = None, channel: str = "counter", operator: str = "clerk-1",
              command: str = "verify") -> None:
        self.clock.advance(minutes=1)
        where = ["--terminal", terminal] if terminal is not None else []
        typed = WRONG + "\n" if command == "verify" else f"{WRONG}\n{NEW_PIN}\n{NEW_PIN}\n"
        result = self(command, card, "--pin-stdin", "--channel", channel, *where, input=typed,
                      env={"CARDCTL_OPERATOR": operator})
        assert result.exit_code == 3, result.stderr

    def sources(self, *args: str) -> list[dict]:
        result = self("report", "--section", "sources", *SINCE, *args, "-o", "json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)["sections"]["sources"]

    def row(self, terminal: str | None, *args: str) -> dict:
        (found,) = [row for row in self.sources(*args) if row["terminal"] == terminal]
        return found


@pytest.fixture(scope="module")
def counter(engine, tmp_path_factory):
    """Twelve active cards, made once per engine: (key folder, database)."""
    from conftest import FakeClock, empty_database

    folder = tmp_path_factory.mktemp("sources")
    template = empty_database(engine, folder, "sources_template")
    with pytest.MonkeyPatch.context() as monkeypatch:
        office = Office(template, folder, monkeypatch)
        office.clock = FakeClock(T0 - timedelta(days=1))  # before the period the tests look at
        office.ok("init")
        for card_no, (id_number, region) in CARDS.items():
            office.ok("issue", card_no, "--name", f"holder {card_no[-2:]}", "--id-number", id_number,
                      "--region", region)
            office.ok("activate", card_no, "--id-number", id_number, "--pin-stdin", input=PIN + "\n")
        office.close()
    return folder, template


@pytest.fixture
def place(counter, database, tmp_path, monkeypatch, clock) -> Place:
    folder, template = counter
    shutil.copy2(folder / "cardctl.key", tmp_path / "cardctl.key")
    database.copy_from(template)
    office = Office(database, tmp_path, monkeypatch)
    office.clock = clock
    clock.now = T0
    yield Place(office, clock)
    office.close()


# --- the signal: distinct cards from one place ------------------------------------------------


def test_one_wrong_pin_on_each_of_six_cards_from_one_pharmacy_terminal_is_flagged(place):
    for card in NUMBERS[:6]:
        place.wrong(card, "PHARM-07", channel="terminal", operator="kiosk")
    row = place.row("PHARM-07")
    assert row == {"terminal": "PHARM-07", "operator": "kiosk", "channel": "terminal", "wrong_pins": 6, "cards": 6,
                   "locks": 0, "first": "2026-12-01T02:01:00Z", "last": "2026-12-01T02:06:00Z", "flagged": True}
    # invisible per card: one wrong PIN each, far below the lockout, nothing locked
    locked = json.loads(place("status", "--locked", "-o", "json").stdout)
    assert locked == []


def test_a_holder_who_mistypes_until_locked_is_one_card_however_many_tries(place):
    for _ in range(3):
        place.wrong(NUMBERS[0], "COUNTER-3")
    row = place.row("COUNTER-3", "--min-cards", "1")
    assert (row["wrong_pins"], row["cards"], row["locks"], row["flagged"]) == (3, 1, 1, True)
    assert place.row("COUNTER-3")["flagged"] is False  # at the default of 5 cards: an ordinary morning


@pytest.mark.parametrize("min_cards, flagged", [(5, False), (4, True), (3, True)])
def test_the_flag_is_at_min_cards_distinct_cards_exactly(place, min_cards, flagged):
    """A busy counter where four holders each mistype once hits four cards: below a threshold of
    five, flagged at four. The threshold is the auditor's: set it above the place's normal day."""
    for card in NUMBERS[:4]:
        place.wrong(card, "COUNTER-3")
    row = place.row("COUNTER-3", "--min-cards", str(min_cards))
    assert (row["cards"], row["flagged"]) == (4, flagged)
    assert json.loads(place("report", "--section", "sources", *SINCE, "--min-cards", str(min_cards),
                            "-o", "json").stdout)["period"]["min_cards"] == min_cards


def test_the_default_threshold_is_five_cards(place):
    for card in NUMBERS[:4]:
        place.wrong(card, "A")
    for card in NUMBERS[:5]:
        place.wrong(card, "B")
    assert (place.row("A")["flagged"], place.row("B")["flagged"]) == (False, True)


def test_the_same_cards_from_two_terminals_are_two_places_and_flagged_ones_come_first(place):
    for card in NUMBERS[:3]:
        place.wrong(card, "PHARM-07")
    for card in NUMBERS[:6]:
        place.wrong(card, "PHARM-08")
    place.wrong(NUMBERS[7], "PHARM-07", operator="clerk-2")  # another operator at the same PC: its own row
    place.wrong(NUMBERS[8], "PHARM-07", channel="bank")
    rows = place.sources()
    assert [(row["terminal"], row["operator"], row["channel"], row["cards"], row["flagged"]) for row in rows] == [
        ("PHARM-08", "clerk-1", "counter", 6, True), ("PHARM-07", "clerk-1", "counter", 3, False),
        ("PHARM-07", "clerk-1", "bank", 1, False), ("PHARM-07", "clerk-2", "counter", 1, False)]


def test_wrong_pins_without_a_terminal_are_one_place_with_terminal_null(place):
    for card in NUMBERS[:5]:
        place.wrong(card)
    place.wrong(NUMBERS[5], "PHARM-07")
    rows = place.sources()
    assert [(row["terminal"], row["cards"], row["flagged"]) for row in rows] == [(None, 5, True),
                                                                                ("PHARM-07", 1, False)]
    table = place("report", "--section", "sources", *SINCE).stdout
    assert "(none)" in table


def test_a_wrong_current_pin_at_change_pin_counts_like_one_at_verify(place):
    for card in NUMBERS[:3]:
        place.wrong(card, "KIOSK-1", command="change-pin")
    for card in NUMBERS[3:5]:
        place.wrong(card, "KIOSK-1")
    assert place.row("KIOSK-1") ["wrong_pins"] == 5 and place.row("KIOSK-1")["flagged"] is True


def test_correct_pins_and_refused_attempts_are_not_wrong_pins(place):
    """A busy pharmacy checks many cards with the right PIN; a locked card refuses without checking."""
    for card in NUMBERS:
        assert place("verify", card, "--pin-stdin", "--terminal", "PHARM-07", input=PIN + "\n").exit_code == 0
    for _ in range(3):
        place.wrong(NUMBERS[0], "COUNTER-3")
    refused = place("verify", NUMBERS[0], "--pin-stdin", "--terminal", "PHARM-07", input=WRONG + "\n")
    assert refused.exit_code == 4
    assert [row["terminal"] for row in place.sources()] == ["COUNTER-3"]


def test_only_wrong_pins_in_the_period_and_the_region_count(place):
    place.clock.now = datetime(2026, 11, 30, 23, 59, tzinfo=timezone.utc)
    place.wrong(NUMBERS[0], "PHARM-07")  # 2026-12-01T00:00Z: the first moment of the period
    place.clock.now = datetime(2026, 12, 1, 23, 59, tzinfo=timezone.utc)
    place.wrong(NUMBERS[1], "PHARM-07")  # 2026-12-02T00:00Z: the period ends before it
    place.wrong(NUMBERS[9], "PHARM-07")
    row = place.row("PHARM-07")
    assert (row["wrong_pins"], row["first"], row["last"]) == (1, "2026-12-01T00:00:00Z", "2026-12-01T00:00:00Z")
    wider = ["--until", "2026-12-03T00:00Z"]
    assert place.row("PHARM-07", *wider)["cards"] == 3
    assert place.row("PHARM-07", *wider, "--region", "4403")["cards"] == 1  # C00000010, Shenzhen


def test_the_section_counts_what_the_audit_log_shows(place):
    """The GROUP BY in the database agrees with the same count done by hand over ``audit log``."""
    plan = [("PHARM-07", "kiosk", "terminal"), (None, "clerk-1", "counter"), ("BANK-0451", "clerk-2", "bank")]
    for n, card in enumerate(NUMBERS):
        for where in plan[:1 + n % 3]:
            place.wrong(card, where[0], channel=where[2], operator=where[1],
                        command="change-pin" if n % 4 == 0 else "verify")
    place.wrong(NUMBERS[1], "PHARM-07", channel="terminal", operator="kiosk")  # C00000002 locks now
    events = json.loads(place("audit", "log", "-o", "json").stdout)
    expected: dict[tuple, dict] = defaultdict(lambda: {"wrong_pins": 0, "cards": set(), "locks": 0})
    for event in events:
        key = (event["terminal"], event["operator"], event["channel"])
        if event["outcome"] == "wrong_pin" and event["action"] in ("pin.verify", "pin.change"):
            expected[key]["wrong_pins"] += 1
            expected[key]["cards"].add(event["card_no"])
        elif event["action"] == "lock.pin":
            expected[key]["locks"] += 1
    found = {(row["terminal"], row["operator"], row["channel"]): row for row in place.sources()}
    assert set(found) == set(expected)
    for key, counts in expected.items():
        assert (found[key]["wrong_pins"], found[key]["cards"], found[key]["locks"]) == (
            counts["wrong_pins"], len(counts["cards"]), counts["locks"]), key
    assert found[("PHARM-07", "kiosk", "terminal")]["locks"] == 1


# --- the terminal in the trail ------------------------------------------------------------------


def test_the_terminal_is_on_every_event_the_command_writes(place):
    for _ in range(3):
        place.wrong(NUMBERS[0], "PHARM-07")  # the third locks: wrong_pin and lock.pin
    place.clock.advance(minutes=1)
    changed = place("change-pin", NUMBERS[1], "--pin-stdin", "--terminal", "BANK-0451-PC2",
                    input=f"{PIN}\n{NEW_PIN}\n{NEW_PIN}\n")
    assert changed.exit_code == 0, changed.stderr
    place("verify", NUMBERS[2], "--pin-stdin", input=PIN + "\n")
    events = json.loads(place("audit", "log", "--since", "2026-12-01T00:00Z", "-o", "json").stdout)
    shown = [(event["action"], event["outcome"], event["card_no"], event["terminal"]) for event in events]
    assert shown == [("pin.verify", "wrong_pin", NUMBERS[0], "PHARM-07")] * 3 + [
        ("lock.pin", "locked", NUMBERS[0], "PHARM-07"), ("pin.change", "ok", NUMBERS[1], "BANK-0451-PC2"),
        ("pin.change", "changed", NUMBERS[1], "BANK-0451-PC2"), ("pin.verify", "ok", NUMBERS[2], None)]


def test_cardctl_terminal_names_the_counter_pc_once_and_the_option_wins(place):
    env = {"CARDCTL_TERMINAL": "  COUNTER-PC-12 "}
    assert place("verify", NUMBERS[0], "--pin-stdin", input=WRONG + "\n", env=env).exit_code == 3
    assert place("verify", NUMBERS[1], "--pin-stdin", "--terminal", "PHARM-07", input=WRONG + "\n",
                 env=env).exit_code == 3
    events = json.loads(place("audit", "log", "--since", "2026-12-01T00:00Z", "-o", "json").stdout)
    assert [event["terminal"] for event in events] == ["COUNTER-PC-12", "PHARM-07"]




@pytest.mark.parametrize("edit", [
    "SET terminal = 'COUNTER-1' WHERE terminal = 'PHARM-07'",  # move the guessing to an innocent counter
    "SET terminal = NULL WHERE terminal = 'PHARM-07'",  # erase where it came from
    "SET terminal = 'PHARM-07' WHERE terminal IS NULL AND action = 'pin.verify'",  # blame a place
], ids=["moved", "erased", "added"])
def test_an_edited_terminal_breaks_audit_verify(place, edit):
    place.wrong(NUMBERS[0], "PHARM-07")
    place.wrong(NUMBERS[1])
    seqs = {event["terminal"]: event["seq"] for event in json.loads(place("audit", "log", "-o", "json").stdout)
            if event["action"] == "pin.verify"}
    assert place("audit", "verify").exit_code == 0
    place.office.insider_sql(f"UPDATE events {edit}")
    verified = place("audit", "verify")
    edited = seqs[None] if "IS NULL" in edit else seqs["PHARM-07"]
    assert verified.exit_code == 6 and f"event {edited} was edited" in verified.stderr, verified.stderr


BAD_TERMINALS = [
    pytest.param("PHARM\n07", "control", id="newline"),
    pytest.param("PHARM\x1b[31m07", "control", id="escape"),
    pytest.param("PHARM\u202e70", "control", id="bidi"),
    pytest.param("P" * 70, "70 characters", id="70-chars"),
    pytest.param("", "empty", id="empty"),
    pytest.param("   ", "empty", id="blank"),
]


@pytest.mark.parametrize("command", ["verify", "change-pin"])
@pytest.mark.parametrize("terminal, says", BAD_TERMINALS)
def test_a_bad_terminal_is_a_usage_error_and_nothing_is_written(place, command, terminal, says):
    before = place.office.dump()
    result = place(command, NUMBERS[0], "--pin-stdin", "--terminal", terminal, input=f"{WRONG}\n{NEW_PIN}\n{NEW_PIN}\n")
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.startswith("cardctl: ") and len(result.stderr.splitlines()) == 1, result.stderr
    assert "--terminal" in result.stderr and says in result.stderr
    assert "\x1b" not in result.stderr and "\u202e" not in result.stderr
    assert place.office.dump() == before  # no event, no failure counted


def test_a_bad_cardctl_terminal_is_a_usage_error_too(place):
    before = place.office.dump()
    result = place("verify", NUMBERS[0], "--pin-stdin", input=WRONG + "\n", env={"CARDCTL_TERMINAL": "x" * 65})
    assert result.exit_code == 2 and "--terminal" in result.stderr and len(result.stderr.splitlines()) == 1
    assert place.office.dump() == before


def test_a_64_character_terminal_in_any_script_is_kept_whole(place):
    name = "药店" * 16 + "X" * 32  # 64 characters, the column's size on PostgreSQL
    place.wrong(NUMBERS[0], name)
    assert place.row(name)["wrong_pins"] == 1


# --- the shapes -----------------------------------------------------------------------------------


def _guessing(place: Place) -> None:
    for card in NUMBERS[:6]:
        place.wrong(card, "PHARM-07", channel="terminal", operator="kiosk")
    place.wrong(NUMBERS[6])
    place.wrong(NUMBERS[7], "=HYPERLINK(\"http://x\")")  # a spreadsheet must not run it


def test_csv_is_the_section_with_its_header_null_as_empty_and_flags_as_words(place):
    _guessing(place)
    out = place("report", "--section", "sources", *SINCE, "-o", "csv").stdout
    header, *_rows = out.splitlines()
    assert header.split(",") == columns("sources") == [
        "terminal", "operator", "channel", "wrong_pins", "cards", "locks", "first", "last", "flagged"]
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0] == {"terminal": "PHARM-07", "operator": "kiosk", "channel": "terminal", "wrong_pins": "6",
                       "cards": "6", "locks": "0", "first": "2026-12-01T02:01:00Z", "last": "2026-12-01T02:06:00Z",
                       "flagged": "true"}
    assert {row["terminal"] for row in rows[1:]} == {"", "'=HYPERLINK(\"http://x\")"}
    assert all(row["flagged"] == "false" for row in rows[1:])
    empty = place("report", "--section", "sources", "--since", "2026-11-01T00:00Z", "--until", "2026-11-02T00:00Z",
                  "-o", "csv").stdout
    assert empty == ",".join(columns("sources")) + "\n"


def test_json_and_jsonl_carry_every_row_with_its_types(place):
    _guessing(place)
    report = json.loads(place("report", "--section", "sources", *SINCE, "-o", "json").stdout)
    assert list(report["sections"]) == ["sources"] and report["period"]["min_cards"] == 5
    rows = report["sections"]["sources"]
    assert len(rows) == 3 and all(list(row) == columns("sources") for row in rows)
    assert all(isinstance(row["flagged"], bool) and isinstance(row["cards"], int) for row in rows)
    lines = [json.loads(line) for line in place("report", "--section", "sources", *SINCE, "-o", "jsonl").stdout
             .splitlines()]
    assert lines == [{"section": "sources", **row} for row in rows]
    everything = json.loads(place("report", *SINCE, "-o", "json").stdout)["sections"]
    assert list(everything)[-2:] == ["sources", "runs"] and everything["sources"] == rows


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", ""])
def test_min_cards_below_one_or_not_a_number_is_exit_2(place, value):
    result = place("report", "--section", "sources", "--min-cards", value)
    assert result.exit_code == 2 and "--min-cards" in result.stderr and result.stdout == ""
    message, *hint = result.stderr.splitlines()  # click's usage error, worded by cardctl, then where to look
    assert message.startswith("cardctl: ") and "--min-cards" in message and hint == ["try 'cardctl report --help'"]


@pytest.mark.parametrize("lang, flagged, none", [("en", "yes", "(none)"), ("zh", "是", "（无）")])
def test_the_table_fits_80_columns_and_marks_the_flagged_place(place, lang, flagged, none):
    _guessing(place)
    for width in (80, 40, 132):
        result = place("--lang", lang, "report", "--section", "sources", *SINCE, env={"COLUMNS": str(width)})
        assert result.exit_code == 0, result.stderr
        lines = result.stdout.splitlines()
        assert lines and all(cell_len(line) <= width for line in lines), (width, max(lines, key=cell_len))
        text = result.stdout
        for whole in ("PHARM-07", none, "2026-12-01 10:01", "2026-12-01 10:06"):  # identifiers never broken
            assert whole in text, (width, whole, text)
        first = text.index("PHARM-07")
        assert re.search(rf"{flagged}\s", text[first:]), text  # the first record is the flagged one
        if width == 80:  # too narrow for nine columns: one block per record, as psql \x
            assert re.search(rf"(Flagged|标记):\s+{flagged}", text[first:]), text
    if lang == "zh":
        assert "各终端、操作员、渠道的错误密码（涉及 5 张及以上卡的已标记）" in text and "错误密码次数" in text


# --- in the database, through the events' time index -----------------------------------------------


def test_the_group_by_runs_in_the_database_through_the_events_at_index(place):
    """The section is one statement over the period's events, found through ``ix_events_at``:
    the engine's own plan for it says so (PostgreSQL told to avoid a sequential scan, as it would
    at the millions of events a city's trail holds)."""
    from sqlalchemy import event

    from cardctl.config import Settings
    from cardctl.services.context import Context

    office = place.office
    ctx = Context.open(Settings(db_url=office.database.url, key_file=office.key_file, operator="auditor",
                                os_user=office.admin), place.clock, read_only=True)
    statements = []

    def explain(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)
        prefix = "EXPLAIN " if conn.dialect.name == "postgresql" else "EXPLAIN QUERY PLAN "
        return prefix + statement, parameters

    with ctx.read() as tx:
        conn = tx.reports.conn
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        event.listen(conn, "before_cursor_execute", explain, retval=True)
        try:
            plan = " ".join(str(part) for row in tx.reports.wrong_pins_by_source(T0, T0 + timedelta(days=1), None)
                            for part in row)
        finally:
            event.remove(conn, "before_cursor_execute", explain)
    ctx.db.engine.dispose()
    assert len(statements) == 1 and "GROUP BY" in statements[0]
    assert "ix_events_at" in plan, plan


# --- the HTML page ------------------------------------------------------------------------------------

FLAG_COLOUR = (0xFD, 0xEC, 0xEA)  # tr.flagged td's background in render/html.py


def _page_rows(page: Path) -> list[tuple[bool, list[str]]]:
    """(flagged?, cells) of the rows under the sources heading."""
    text = page.read_text(encoding="utf-8")
    body = text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [(marked == ' class="flagged"', re.findall(r"<td[^>]*>([^<]*)</td>", cells))
            for marked, cells in re.findall(r"<tr( class=\"flagged\")?>(.*?)</tr>", body)]


@pytest.mark.parametrize("lang, title, none", [
    ("en", "Wrong PINs per terminal, operator and channel (flagged: 5 or more cards)", "(none)"),
    ("zh", "各终端、操作员、渠道的错误密码（涉及 5 张及以上卡的已标记）", "（无）")])
def test_the_html_page_marks_the_flagged_rows(place, tmp_path, lang, title, none):
    _guessing(place)
    page = tmp_path / "sources.html"
    result = place("--lang", lang, "report", "--section", "sources", *SINCE, "--html", str(page))
    assert result.exit_code == 0, result.stderr
    assert f"<h2>{title}</h2>" in page.read_text(encoding="utf-8")
    rows = _page_rows(page)
    assert [flagged for flagged, _cells in rows] == [True, False, False]
    assert rows[0][1][0] == "PHARM-07" and none in [cells[0] for _flagged, cells in rows]
    assert '<td class="none">' in page.read_text(encoding="utf-8")


def test_chromium_paints_the_flagged_row(place, tmp_path):
    from test_html_report import BROWSER, browse, read_png

    if BROWSER is None:
        from conftest import IN_CI

        if IN_CI:
            pytest.fail("chromium is not installed (.ci/run installs it: apt-get install chromium)", pytrace=False)
        pytest.skip("chromium is not on PATH: apt-get install -y chromium to run the browser checks")
    _guessing(place)
    page, shot = tmp_path / "sources.html", tmp_path / "sources.png"
    assert place("report", "--section", "sources", *SINCE, "--html", str(page)).exit_code == 0
    result = browse(BROWSER, page, f"--screenshot={shot}", "--window-size=1000,600")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    _width, _height, pixels = read_png(shot.read_bytes())
    assert sum(1 for p in pixels if p == FLAG_COLOUR) > 5_000  # one row's width of the flag's background
