"""Machine formats that parse: every command that acts on records speaks -o table|json|jsonl|csv,
and what it prints parses back (CSV with the csv module, every JSON-looking cell with json.loads),
with times in one form (ISO-8601 UTC to the second, Z) and nested values as JSON, never a Python repr.
Also: verify says why a card is unusable, status --locked --kind, and the README's batch pipeline
run as a script runs it, in real processes."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
import typer.main

from cardctl.cli import app
from cardctl.domain.identity import make_id_number
from cardctl.render.formats import OutputFormat, csv_cell, iso_utc
from conftest import FakeClock
from helpers_security import Office
from realproc import cardctl_command, cli_env

README = Path(__file__).resolve().parent.parent / "README.md"
# Commands that print no records: `audit export` writes its own file format (header, events, end line)
# to FILE or standard output, which `audit verify --file` reads back.
# they write a file of their own format (an export, a key file) and act on no record
# the export's own format, key files, and the Prometheus text format (tests/test_metrics.py)
NO_OUTPUT_OPTION = {("audit", "export"), ("key", "export"), ("key", "new-signing"), ("metrics",)}
FORMATS = ("json", "jsonl", "csv")
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
TIME_KEYS = {"at", "since", "until", "first", "last", "as_of"}
PIN, WRONG, NEW_PIN, OTHER_PIN = "583920", "271828", "702614", "849203"
UNIT = "91350100M000100Y43"
START = datetime(2026, 11, 23, 2, 0, 0, 123456, tzinfo=timezone.utc)  # a fraction the formats must drop


def person(n: int, area: str = "440305") -> str:
    return make_id_number(area, date(1970, 1 + n // 28, 1 + n % 28), 100 + 2 * n)


CARDS = {f"A0000000{n}": person(n) for n in range(1, 7)}
A1, A2, A3, A4, A5, A6 = CARDS  # pin-locked, unit arrears, admin-locked, temporarily lost, free, pending


def command_paths() -> dict[tuple[str, ...], object]:
    """Every leaf command of the Typer tree, by its path (('policy', 'show'), ('verify',), ...)."""
    found = {}

    def walk(command, path):
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))
        else:
            found[path] = command

    walk(typer.main.get_command(app), ())
    return found


def test_every_command_that_acts_on_records_takes_each_output_format():
    for path, command in command_paths().items():
        options = [param for param in command.params if "--output" in param.opts]
        if path in NO_OUTPUT_OPTION:
            assert not options, path
            continue
        assert options, f"cardctl {' '.join(path)} has no -o/--output"
        (option,) = options
        assert "-o" in option.opts and set(option.type.choices) == {fmt.value for fmt in OutputFormat}, path


# --- every command, every machine format, on a populated database ------------------------------


@pytest.fixture
def office(database, tmp_path, monkeypatch) -> Office:
    """Six cards in 440305: A1 PIN-locked, A2 locked by its unit's arrears, A3 admin-locked,
    A4 reported lost (temporary), A5 free, A6 pending."""
    office = Office(database, tmp_path, monkeypatch)
    office.clock = FakeClock(START)
    office.ok("init")
    for card_no, id_number in CARDS.items():
        office.ok("issue", card_no, "--name", "张伟", "--id-number", id_number, "--region", "440305",
                  *(["--unit", UNIT] if card_no == A2 else []))
        if card_no != A6:
            office.ok("activate", card_no, "--id-number", id_number, "--pin-stdin", input=PIN + "\n")
    for _ in range(3):
        office("verify", A1, "--pin-stdin", input=WRONG + "\n")
    office.ok("add-arrears", "--unit", UNIT, "--amount", "1200.00", "--period", "2026-10")
    office.ok("lock", A3, "--reason", "case 2026-118")
    office.ok("report-lost", A4, "--temporary")
    office.clock.advance(minutes=5, microseconds=654321)
    yield office
    office.close()


LATER = None  # a step of ``cases``: the clock moves 25 hours on


def cases(office: Office, fmt: str, folder: Path) -> list:
    """(arguments, standard input, exit code): each command once at least, in an order where each succeeds."""
    new_card, new_id = "B00000001", person(30)
    imported = folder / "more.csv"
    imported.write_text(f"card_no,name,id_number,region\nB00000002,王芳,{person(31)},440305\n", encoding="utf-8")
    operator = office.name("wangfang")
    office.os_logins.add(operator)  # on SQLite an operator is an OS login: as if made with useradd
    password = ("--password-stdin",) if office.postgresql else ()
    secret = "Str0ng-passphrase-2026!\n" if office.postgresql else None
    return [
        (("init",), None, 0),
        (("issue", new_card, "--name", "赵六", "--id-number", new_id, "--region", "440305"), None, 0),
        (("import", str(imported)), None, 0),
        (("activate", new_card, "--id-number", new_id, "--pin-stdin"), PIN + "\n", 0),
        (("verify", A1, "--pin-stdin"), PIN + "\n", 4),  # locked: its locks in the output
        (("verify", A4, "--pin-stdin"), PIN + "\n", 4),  # lost: why, and until when
        (("verify", new_card, "--pin-stdin"), WRONG + "\n", 3),
        (("status",), None, 0),
        (("status", A1, A2, A4), None, 0),
        (("status", "--summary"), None, 0),
        (("status", "--locked", "--kind", "arrears"), None, 0),
        LATER,  # A1's PIN lock is past its end: the sweep has something to record
        (("unlock", "--expired"), None, 0),
        (("unlock", A1, A2, A3, "--reason", "checked at counter"), None, 0),
        (("reset-pin", A5, "--id-number", CARDS[A5], "--pin-stdin"), NEW_PIN + "\n", 0),
        (("change-pin", A5, "--pin-stdin"), f"{NEW_PIN}\n{OTHER_PIN}\n", 0),
        (("cancel-loss", A4, "--id-number", CARDS[A4]), None, 0),
        (("report-lost", A4, "--temporary"), None, 0),
        (("reissue", A4, "--new-card-no", "B00000003", "--id-number", CARDS[A4]), None, 0),
        (("lock", A5, "--reason", "anomaly"), None, 0),
        (("add-arrears", A5, "--amount", "5.00"), None, 0),
        (("pay-arrears", A5, "--amount", "5.00", "--receipt", "BK-1"), None, 0),
        (("report", *(("--section", "pin_lock_endings") if fmt == "csv" else ())), None, 0),
        (("report", *(("--section", "lock_durations") if fmt == "csv" else ())), None, 0),
        (("policy", "show"), None, 0),
        (("policy", "show", "440305"), None, 0),
        (("policy", "set", "4403", "--max-attempts", "5"), None, 0),
        (("settings", "show"), None, 0),
        (("settings", "set", "bcrypt-cost", "13"), None, 0),
        (("audit", "sign"), None, 0),
        (("audit", "verify"), None, 0),
        (("audit", "log"), None, 0),
        (("key", "show"), None, 0),
        (("operator", "add", operator, "--role", "staff", *password), secret, 0),
        (("operator", "list"), None, 0),
        (("operator", "set-role", operator, "--role", "auditor"), None, 0),
        (("operator", "disable", operator, "--reason", "left the office"), None, 0),
    ]


def check_value(key, value, where: str) -> None:
    """Times in one form wherever they are; nothing that reads as a Python repr."""
    if isinstance(value, dict):
        for name, item in value.items():
            check_value(name, item, where)
    elif isinstance(value, list):
        for item in value:
            check_value(None, item, where)
    elif isinstance(value, str):
        if (key in TIME_KEYS or (key or "").endswith("_at")) and value:
            assert TIME.fullmatch(value), (where, key, value)
        assert not value.startswith(("{'", "[{'", "['")), (where, key, value)


def parse(fmt: str, text: str, where: str) -> list:
    if fmt == "json":
        found = json.loads(text)
        return found if isinstance(found, list) else [found]
    if fmt == "jsonl":
        return [json.loads(line) for line in text.splitlines()]
    rows = list(csv.DictReader(io.StringIO(text)))
    for row in rows:
        for key, cell in row.items():
            assert key is not None and cell is not None, (where, row)  # every row as wide as the header
            if cell.startswith(("[", "{")):
                row[key] = json.loads(cell)  # a nested value: JSON, not a Python repr
            elif cell.startswith("'"):  # the formula guard: only before what a spreadsheet would run
                assert cell[1:2] in ("=", "+", "-", "@", "\t", "\r"), (where, key, cell)
    return rows


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_command_prints_what_parses_back(office, tmp_path, fmt):
    run = cases(office, fmt, tmp_path)
    covered = {next(path for path in command_paths() if step[0][:len(path)] == path)
               for step in run if step is not LATER}
    assert covered == set(command_paths()) - NO_OUTPUT_OPTION  # a new command needs a case here
    for step in run:
        if step is LATER:
            office.clock.advance(hours=25)
            continue
        args, given, code = step
        where = f"cardctl {' '.join(args)} -o {fmt}"
        result = office(*args, "-o", fmt, input=given)
        assert result.exit_code == code, (where, result.stderr)
        assert result.stdout.strip(), where
        records = parse(fmt, result.stdout, where)
        assert records, where
        for record in records:
            check_value(None, record, where)


def test_nested_values_and_times_in_csv_are_json_and_utc_to_the_second(office):
    """A lock reads the same in the CSV of status, verify and unlock: compact JSON, keys sorted."""
    (card,) = list(csv.DictReader(io.StringIO(office.ok("status", A1, "-o", "csv").stdout)))
    verified = office("verify", A1, "--pin-stdin", "-o", "csv", input=PIN + "\n")
    (refusal,) = list(csv.DictReader(io.StringIO(verified.stdout)))
    assert verified.exit_code == 4
    lock = {"kind": "pin", "reason": "3 consecutive wrong PINs", "remaining_s": 86400 - 301,
            "since": "2026-11-23T02:00:00Z", "until": "2026-11-24T02:00:00Z"}
    assert json.loads(card["locks"]) == json.loads(refusal["locks"]) == [lock]
    assert card["locks"] == refusal["locks"] == json.dumps([lock], sort_keys=True, separators=(",", ":"))
    # a batch unlock keeps the arrears lock and writes it the same way
    office.clock.advance(hours=30)
    rows = list(csv.DictReader(io.StringIO(office.ok("unlock", A2, "--reason", "x", "-o", "csv").stdout)))
    (kept,) = json.loads(rows[0]["kept"])
    assert set(kept) == set(lock) and kept["kind"] == "arrears" and TIME.fullmatch(kept["since"])
    events = list(csv.DictReader(io.StringIO(office.ok("audit", "log", "--card", A1, "-o", "csv").stdout)))
    locked = next(e for e in events if e["action"] == "lock.pin")
    assert json.loads(locked["detail"]) == {"until": "2026-11-24T02:00:00Z"}
    assert all(TIME.fullmatch(e["at"]) for e in events)


def test_tables_show_nested_values_as_text_not_python(office):
    log = office.ok("audit", "log", "--card", A2).stdout
    assert "{'" not in log and "[{'" not in log
    table = office.ok("unlock", A2, A3, "--reason", "x").stdout
    assert "{'" not in table and "arrears" in table


@pytest.mark.parametrize("text, cell", [
    (None, ""), ("", ""), ("-", "-"), ("+", "+"), ("-5.00", "-5.00"), ("+12.5", "+12.5"), ("0.00", "0.00"),
    ("=1+2", "'=1+2"), ("-2+3", "'-2+3"), ("+SUM(A1)", "'+SUM(A1)"), ("@cmd", "'@cmd"),
    ("\tx", "\\tx"),  # a tab is shown escaped: nothing left to run
    ("-1e5", "'-1e5"), ("a-b", "a-b"), ([{"b": 1, "a": "x"}], '[{"a":"x","b":1}]'), ({}, "{}"),
    (True, "true"), ([], "[]"),
])
def test_a_csv_cell_is_empty_when_empty_and_guarded_only_where_a_spreadsheet_runs_it(text, cell):
    assert csv_cell(text) == cell


def test_one_time_form_whatever_the_precision_or_zone_it_came_in():
    for raw in ("2026-11-23T02:00:00.999999Z", "2026-11-23T02:00:00Z", "2026-11-23T10:00:00.5+08:00",
                datetime(2026, 11, 23, 2, 0, 0, 999999, tzinfo=timezone.utc)):
        assert iso_utc(raw) == "2026-11-23T02:00:00Z"


def test_the_report_csv_leaves_empty_values_empty(office):
    rows = list(csv.DictReader(io.StringIO(office.ok("report", "--section", "lock_durations", "-o", "csv").stdout)))
    assert [(row["kind"], row["median"], row["median_s"]) for row in rows] == [
        ("pin", "", ""), ("arrears", "", ""), ("admin", "", "")]
    endings = office.ok("report", "--section", "pin_lock_endings", "-o", "csv").stdout
    assert "'-" not in endings and "expired,0,\n" in endings


# --- verify says why ---------------------------------------------------------------------------


def test_verify_says_why_a_card_is_unusable_in_json_and_in_the_table(office):
    def refused(card_no):
        (record,) = json.loads(office("verify", card_no, "--pin-stdin", "-o", "json", input=PIN + "\n").stdout)
        table = office("verify", card_no, "--pin-stdin", input=PIN + "\n")
        assert table.exit_code == 4
        return record, table.stdout

    record, table = refused(A6)
    assert (record["result"], record["reason"], record["status"]) == ("unusable", "pending", "pending")
    assert "card is pending: activate it at a counter" in table
    record, table = refused(A4)
    assert (record["reason"], record["loss_kind"], record["loss_lapses_at"]) == (
        "lost", "temporary", "2026-11-30T02:00:00Z")
    assert "card is lost: temporary loss report, lapses 2026-11-30 10:00" in table
    record, table = refused(A3)
    assert (record["result"], record["reason"], [lock["kind"] for lock in record["locks"]]) == (
        "locked", "locked", ["admin"])
    assert re.search(r"admin\s+case 2026-118\s+2026-11-23 10:00\s+until cleared", table), table
    record, table = refused(A1)
    assert record["locks"][0]["until"] == "2026-11-24T02:00:00Z"
    assert re.search(r"pin\s+3 consecutive wrong PINs\s+2026-11-23 10:00\s+2026-11-24 10:00", table), table
    office.ok("report-lost", A5, "--id-number", CARDS[A5])  # formal: void for good
    record, table = refused(A5)
    assert (record["reason"], record["void_reason"]) == ("void", "reported lost (formal)")
    assert "card is void: reported lost (formal)" in table
    zh = office("--lang", "zh", "verify", A6, "--pin-stdin", input=PIN + "\n")
    assert "卡片待激活" in zh.stdout


# --- status --locked --kind and the batch pipeline ------------------------------------------------


def test_status_locked_kind_keeps_the_cards_holding_that_kind(office):
    def listed(*args):
        return [row["card_no"] for row in json.loads(office.ok("status", "--locked", *args, "-o", "json").stdout)]

    assert listed() == [A1, A2, A3]
    assert (listed("--kind", "pin"), listed("--kind", "arrears"), listed("--kind", "admin")) == ([A1], [A2], [A3])
    summary = json.loads(office.ok("status", "--summary", "--locked", "--kind", "admin", "-o", "json").stdout)
    assert summary == [{"region": "440305", "status": "active", "lock": "admin", "cards": 1}]
    at = json.loads(office.ok("status", "--locked", "--kind", "pin", "--as-of", "2026-11-23T02:03:00Z",
                              "-o", "json").stdout)
    assert [row["card_no"] for row in at] == [A1]
    alone = office("status", "--kind", "pin")
    assert alone.exit_code == 2 and "--locked" in alone.stderr


def readme_pipelines() -> list[str]:
    lines = [line for line in README.read_text(encoding="utf-8").splitlines()
             if line.startswith("cardctl status --locked") and "| cardctl unlock --from -" in line]
    assert len(lines) >= 2
    return lines


def test_the_readme_pipeline_runs_as_written_and_exits_0_past_arrears_and_admin_locks(database, tmp_path,
                                                                                    monkeypatch):
    """In real processes, through bash with pipefail: a script following the README sees success
    when the only locks left are ones unlock may not clear, and exit 7 when a row could not be done."""
    office = Office(database, tmp_path, monkeypatch)
    office.ok("init")
    for card_no, id_number in CARDS.items():
        office.ok("issue", card_no, "--name", "张伟", "--id-number", id_number, "--region", "440305",
                  *(["--unit", UNIT] if card_no == A2 else []))
        office.ok("activate", card_no, "--id-number", id_number, "--pin-stdin", input=PIN + "\n")
    for card_no in (A1, A2):
        for _ in range(3):
            office("verify", card_no, "--pin-stdin", input=WRONG + "\n")
    office.ok("add-arrears", "--unit", UNIT, "--amount", "1200.00")
    office.ok("lock", A3, "--reason", "case 2026-118")
    office.close()
    env = cli_env(office.database.url if office.engine == "sqlite" else office.url_for(office.admin),
                  office.key_file, CARDCTL_TZ="Asia/Shanghai")
    env["PATH"] = f"{Path(cardctl_command()[0]).parent}{os.pathsep}{env['PATH']}"  # `cardctl` as the README says
    full, pin_only = readme_pipelines()

    def bash(script: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-c", "set -o pipefail\n" + script], env=env, capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)

    result = bash(full.replace("--region 440305", "--region 4403"))
    assert result.returncode == 0, result.stderr
    rows = {row["card_no"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert {card: row["result"] for card, row in rows.items()} == {A1: "unlocked", A2: "unlocked", A3: "not locked"}
    assert [lock["kind"] for lock in json.loads(rows[A2]["kept"])] == ["arrears"]
    assert [lock["kind"] for lock in json.loads(rows[A3]["kept"])] == ["admin"]
    assert "still locked: arrears" in rows[A2]["detail"] and "unlock --kind admin" in rows[A3]["detail"]
    # the --kind pin line finds nothing left to do, and says so with exit 0
    assert bash(pin_only).returncode == 0
    # a row that could not be done still fails the batch
    failed = bash('(cardctl status --locked -o jsonl; echo \'{"card_no": "Z99999999"}\') '
                  '| cardctl unlock --from - --reason "terminal fault T-0042" -o csv')
    assert failed.returncode == 7 and "1 of 3 card(s) failed" in failed.stderr
    assert "Z99999999,not found" in failed.stdout
