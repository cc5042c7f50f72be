"""The command line as an operator or a script sees it: exit codes, stdout and stderr, each checked apart.

Click >= 8.2 always keeps stderr apart: ``result.stdout`` is stdout only, ``result.stderr`` is stderr only.
Every test gets its own database and key file through CARDCTL_DB / CARDCTL_KEY_FILE.
"""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cardctl.cli import app
from cardctl.cli.common import Runtime
from cardctl.domain.identity import make_id_number
from cardctl.storage.db import SCHEMA_REVISION
from conftest import TestDatabase

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "cards.csv"
# the first row of examples/cards.csv
CARD, NAME, ID_NUMBER, REGION = "GK4175892", "于凤英", "110105195205127044", "110105"
ID_MASKED = "110***********7044"
OTHER = ("EQ7133854", "310115195904073129")  # the second row
PIN, WRONG = "583920", "271828"
START = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)

CARD_KEYS = {"card_no", "holder_name", "id_number", "region", "status", "usable", "failures",
             "attempts_left", "locks"}
LOCK_KEYS = {"kind", "reason", "since", "until", "remaining_s"}
VERIFY_KEYS = {"card_no", "result", "attempts_left", "reason", "status", "locks", "loss_kind", "loss_lapses_at",
               "void_reason", "replaced_by"}


class FakeClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


class Cli:
    """Runs ``cardctl`` in-process against one test's database."""

    def __init__(self, tmp_path: Path, database: TestDatabase) -> None:
        self.db = database
        self.key_file = tmp_path / "cardctl.key"
        self.env = {"CARDCTL_DB": database.url, "CARDCTL_KEY_FILE": str(self.key_file),
                    "CARDCTL_BCRYPT_COST": "4", "CARDCTL_OPERATOR": "tester", "CARDCTL_TZ": "Asia/Shanghai"}
        self.runner = CliRunner()
        self.clock = None
        self.outputs: list[str] = []

    def __call__(self, *args: str, input: str | bytes | None = None, env: dict | None = None):
        extra = {"obj": Runtime(clock=self.clock)} if self.clock else {}
        result = self.runner.invoke(app, list(args), input=input, env={**self.env, **(env or {})},
                                    catch_exceptions=False, **extra)
        self.outputs += [result.stdout, result.stderr]
        return result

    def ok(self, *args: str, input: str | None = None):
        result = self(*args, input=input)
        assert result.exit_code == 0, result.stderr
        return result

    def json(self, *args: str, input: str | None = None, code: int = 0):
        result = self(*args, "-o", "json", input=input)
        assert result.exit_code == code, result.stderr
        return json.loads(result.stdout)

    def dump(self) -> dict[str, list]:
        """Every row of every table, to prove a refused command wrote nothing."""
        return self.db.dump()


@pytest.fixture
def cli(tmp_path: Path, database: TestDatabase) -> Cli:
    return Cli(tmp_path, database)


@pytest.fixture
def cards(cli: Cli) -> Cli:
    """An initialised database holding examples/cards.csv; the first card active with PIN."""
    cli.ok("init")
    cli.ok("import", str(EXAMPLES))
    cli.ok("activate", CARD, "--id-number", ID_NUMBER, "--pin-stdin", input=PIN + "\n")
    return cli


def lock_by_pin(cli: Cli, card: str = CARD) -> None:
    for _ in range(3):
        assert cli("verify", card, "--pin-stdin", input=WRONG + "\n").exit_code == 3


def issue(cli: Cli, card_no: str, name: str, id_number: str, region: str = "110105"):
    return cli.ok("issue", card_no, "--name", name, "--id-number", id_number, "--region", region)


# --- the whole flow -------------------------------------------------------------------------


def test_the_counter_flow_from_init_to_a_verified_pin_after_unlock(cli):
    init = cli("init")
    assert (init.exit_code, init.stdout) == (0, "")
    assert "key file" in init.stderr

    imported = cli("import", str(EXAMPLES))
    assert (imported.exit_code, imported.stdout) == (0, "")
    assert "imported 60 card(s); 0 row(s) failed" in imported.stderr

    activated = cli("activate", CARD, "--id-number", ID_NUMBER, "--pin-stdin", input=PIN + "\n")
    assert (activated.exit_code, activated.stdout) == (0, "")
    assert f"card {CARD} activated" in activated.stderr

    codes, lefts = [], []
    for pin in (WRONG, WRONG, WRONG, PIN):  # the right PIN on the 4th try is refused unchecked
        result = cli("verify", CARD, "--pin-stdin", "-o", "json", input=pin + "\n")
        codes.append(result.exit_code)
        lefts.append(json.loads(result.stdout)[0]["attempts_left"])
    assert codes == [3, 3, 3, 4]
    assert lefts == [2, 1, 0, 0]

    (card,) = cli.json("status", CARD)
    assert (card["status"], card["usable"], card["failures"], card["attempts_left"]) == ("active", False, 3, 0)
    assert [lock["kind"] for lock in card["locks"]] == ["pin"]
    table = cli.ok("status", CARD)
    assert "pin" in table.stdout and "3 consecutive wrong PINs" in table.stdout

    unlocked = cli("unlock", CARD, "--reason", "holder verified at counter", "--id-number", ID_NUMBER,
                   "-o", "json")
    assert unlocked.exit_code == 0, unlocked.stderr
    assert json.loads(unlocked.stdout) == [{"card_no": CARD, "result": "unlocked", "detail": "", "kept": []}]

    verified = cli("verify", CARD, "--pin-stdin", input=PIN + "\n")
    assert verified.exit_code == 0
    assert "ok" in verified.stdout and "3 attempt(s) left" in verified.stdout
    assert cli("audit", "verify").exit_code == 0

    everything = "\n".join(cli.outputs)
    assert PIN not in everything and WRONG not in everything
    assert ID_NUMBER not in everything and ID_MASKED in everything


def test_neither_the_pin_nor_the_id_number_is_stored_in_clear(cards):
    lock_by_pin(cards)
    cards.ok("unlock", CARD, "--reason", "verified", "--id-number", ID_NUMBER)
    cards.ok("verify", CARD, "--pin-stdin", input=PIN + "\n")
    stored = "\n".join(row for rows in cards.dump().values() for row in rows)
    assert ID_NUMBER not in stored
    assert not re.search(rf"(?<![0-9A-Za-z./$]){PIN}(?![0-9A-Za-z./$])", stored)  # hashes may hold it by chance
    for log in cards.json("audit", "log"):
        assert PIN not in json.dumps(log, ensure_ascii=False)


def test_the_audit_log_masks_id_numbers(cards):
    issue(cards, "Q00000001", "张三", make_id_number("110105", date(1980, 1, 2), 11))
    text = json.dumps(cards.json("audit", "log"), ensure_ascii=False)
    assert ID_NUMBER not in text and make_id_number("110105", date(1980, 1, 2), 11) not in text
    assert "110***********" in text


# --- JSON shapes ----------------------------------------------------------------------------


def test_a_status_record_has_exactly_the_documented_fields(cards):
    cards.clock = FakeClock()
    lock_by_pin(cards)
    (card,) = cards.json("status", CARD)
    assert CARD_KEYS <= set(card)  # the issue's fields; later features may add more
    assert ID_NUMBER not in json.dumps(card)
    assert card["card_no"] == CARD and card["holder_name"] == NAME and card["region"] == REGION
    assert card["id_number"] == ID_MASKED
    assert card["usable"] is False and card["failures"] == 3 and card["attempts_left"] == 0
    assert card["locks"] == [{"kind": "pin", "reason": "3 consecutive wrong PINs", "since": "2026-11-23T02:00:00Z",
                              "until": "2026-11-24T02:00:00Z", "remaining_s": 86400}]


def test_remaining_seconds_count_down_with_the_clock(cards):
    cards.clock = FakeClock()
    lock_by_pin(cards)
    cards.clock.advance(hours=23)
    (card,) = cards.json("status", CARD)
    assert card["locks"][0]["remaining_s"] == 3600


def test_an_unlocked_card_has_no_locks_and_is_usable(cards):
    (card,) = cards.json("status", CARD)
    assert CARD_KEYS <= set(card)
    assert (card["status"], card["usable"], card["failures"], card["attempts_left"], card["locks"]) == (
        "active", True, 0, 3, [])


def test_a_pending_card_is_not_usable(cards):
    (card,) = cards.json("status", OTHER[0])
    assert (card["status"], card["usable"]) == ("pending", False)


def test_a_verify_record_has_exactly_the_documented_fields(cards):
    cards.clock = FakeClock()
    records = [cards.json("verify", CARD, "--pin-stdin", input=WRONG + "\n", code=3)[0] for _ in range(3)]
    for record in records:
        assert set(record) == VERIFY_KEYS
    assert [(r["result"], r["attempts_left"], len(r["locks"])) for r in records] == [
        ("wrong_pin", 2, 0), ("wrong_pin", 1, 0), ("wrong_pin", 0, 1)]
    assert set(records[-1]["locks"][0]) == LOCK_KEYS
    (refused,) = cards.json("verify", CARD, "--pin-stdin", input=PIN + "\n", code=4)
    assert refused == {"card_no": CARD, "result": "locked", "attempts_left": 0, "reason": "locked",
                       "status": "active", "locks": records[-1]["locks"], "loss_kind": None, "loss_lapses_at": None,
                       "void_reason": None, "replaced_by": None}


def test_a_pending_card_verifies_as_unusable_with_exit_4(cards):
    (record,) = cards.json("verify", OTHER[0], "--pin-stdin", input=PIN + "\n", code=4)
    assert record == {"card_no": OTHER[0], "result": "unusable", "attempts_left": 0, "reason": "pending",
                      "status": "pending", "locks": [], "loss_kind": None, "loss_lapses_at": None,
                      "void_reason": None, "replaced_by": None}


# --- machine output: stdout holds the data and nothing else --------------------------------


@pytest.mark.parametrize("args", [
    ("status",), ("status", CARD), ("status", "--locked"), ("status", "--summary"), ("audit", "log"),
    ("audit", "verify"), ("init",), ("unlock", "--expired"),
])
def test_json_output_parses_and_messages_go_to_stderr(cards, args):
    result = cards(*args, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert isinstance(json.loads(result.stdout), list)


def test_import_as_json_prints_records_on_stdout_and_the_summary_on_stderr(cli):
    cli.ok("init")
    result = cli("import", str(EXAMPLES), "-o", "json")
    assert result.exit_code == 0
    records = json.loads(result.stdout)
    assert len(records) == 60 and {r["result"] for r in records} == {"issued"}
    assert "imported 60 card(s)" in result.stderr and "imported" not in result.stdout


def test_jsonl_output_is_one_object_per_line(cards):
    result = cards.ok("status", "-o", "jsonl")
    lines = result.stdout.splitlines()
    assert len(lines) == 60
    assert all(CARD_KEYS <= set(json.loads(line)) for line in lines)


def test_a_missing_card_among_found_ones_still_gives_valid_json_and_exit_5(cards):
    result = cards("status", CARD, "ZZZZZZZZZ", "-o", "json")
    assert result.exit_code == 5
    assert [r["card_no"] for r in json.loads(result.stdout)] == [CARD]
    assert result.stderr.strip() == "cardctl: card ZZZZZZZZZ not found"


def test_status_as_csv_has_a_header_and_one_row_per_card(cards):
    rows = list(csv.DictReader(io.StringIO(cards.ok("status", "-o", "csv").stdout)))
    assert len(rows) == 60
    assert CARD_KEYS <= set(rows[0])
    assert {row["id_number"][3:14] for row in rows} == {"*" * 11}


# --- piping ---------------------------------------------------------------------------------


def _lock_two(cards: Cli) -> None:
    cards.ok("activate", OTHER[0], "--id-number", OTHER[1], "--pin-stdin", input=PIN + "\n")
    lock_by_pin(cards, CARD)
    lock_by_pin(cards, OTHER[0])


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_locked_cards_piped_into_unlock_are_all_unlocked(cards, fmt):
    _lock_two(cards)
    listed = cards.ok("status", "--locked", "-o", fmt).stdout
    result = cards("unlock", "--from", "-", "--reason", "terminal fault", "-o", "json", input=listed)
    assert result.exit_code == 0, result.stderr
    assert sorted((r["card_no"], r["result"]) for r in json.loads(result.stdout)) == [
        (OTHER[0], "unlocked"), (CARD, "unlocked")]
    assert cards.ok("status", "--locked", "-o", "jsonl").stdout == ""
    assert cards("verify", CARD, "--pin-stdin", input=PIN + "\n").exit_code == 0


def test_a_plain_list_of_card_numbers_on_stdin_unlocks_them(cards):
    _lock_two(cards)
    result = cards("unlock", "--from", "-", "--reason", "list from the branch", input=f"{CARD}\n{OTHER[0]}\n")
    assert result.exit_code == 0, result.stderr
    assert cards.json("status", "--locked") == []


def test_an_unknown_card_in_a_piped_list_gives_exit_7_and_the_rest_are_unlocked(cards):
    lock_by_pin(cards)
    result = cards("unlock", "--from", "-", "--reason", "batch", "-o", "jsonl", input=f"{CARD}\nZZZZZZZZZ\nbad\n")
    assert result.exit_code == 7
    assert [(r["card_no"], r["result"]) for r in map(json.loads, result.stdout.splitlines())] == [
        (CARD, "unlocked"), ("ZZZZZZZZZ", "not found"), ("bad", "invalid")]
    assert "2 of 3 card(s) failed" in result.stderr


def test_a_dry_run_unlock_changes_nothing(cards):
    lock_by_pin(cards)
    before = cards.dump()
    (record,) = cards.json("unlock", CARD, "--reason", "checking", "--dry-run")
    assert record["result"] == "would unlock"
    assert cards.dump() == before


# --- tables ---------------------------------------------------------------------------------


def test_the_table_lists_the_first_100_cards_and_says_how_many_more(cli, tmp_path):
    cli.ok("init")
    rows = ["card_no,name,id_number,region"] + [
        f"T{n:08d},持卡人{n},{make_id_number('110105', date(1960, 1, 1) + timedelta(days=n), n)},110105"
        for n in range(105)]
    (tmp_path / "many.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    cli.ok("import", str(tmp_path / "many.csv"))
    table = cli.ok("status")
    assert "and 5 more" in table.stdout
    assert "T00000099" in table.stdout and "T00000100" not in table.stdout
    assert len(cli.ok("status", "-o", "jsonl").stdout.splitlines()) == 105
    assert len(cli.ok("status", "-o", "csv").stdout.splitlines()) == 106


def test_rich_markup_in_a_name_is_shown_literally(cards):
    markup = "[bold red]x[/]"
    issued = issue(cards, "M00000001", markup, make_id_number("110105", date(1990, 3, 4), 7))
    assert markup in issued.stderr
    assert markup in cards.ok("status", "M00000001").stdout
    assert markup in cards.ok("status", "M00000001", CARD).stdout
    assert markup in cards.ok("status", "--region", "110105").stdout


def test_spreadsheet_formulas_in_csv_output_are_neutralised(cards):
    names = ["=1+2", "+SUM(A1)", "-2+3", "@cmd"]
    for n, name in enumerate(names):
        issue(cards, f"F0000000{n}", name, make_id_number("110105", date(1980, 1, 1 + n), n))
    rows = {row["card_no"]: row for row in csv.DictReader(io.StringIO(cards.ok("status", "-o", "csv").stdout))}
    assert [rows[f"F0000000{n}"]["holder_name"] for n in range(len(names))] == ["'" + name for name in names]
    assert rows[CARD]["failures"] == "0" and rows[CARD]["holder_name"] == NAME


def test_formulas_in_the_unlock_reason_are_not_passed_to_csv_either(cards):
    lock_by_pin(cards)
    cards.ok("unlock", CARD, "--reason", "=HYPERLINK(\"x\")")
    reasons = [row["reason"] for row in csv.DictReader(io.StringIO(cards.ok("audit", "log", "-o", "csv").stdout))]
    assert "'=HYPERLINK(\"x\")" in reasons


# --- init -----------------------------------------------------------------------------------


def test_init_twice_is_fine_and_keeps_key_and_cards(cards):
    key = cards.key_file.read_text()
    again = cards("init", "-o", "json")
    assert again.exit_code == 0, again.stderr
    (report,) = json.loads(again.stdout)
    assert (report["key_created"], report["schema_before"], report["schema"]) == (False, SCHEMA_REVISION, SCHEMA_REVISION)
    assert cards.key_file.read_text() == key
    assert len(cards.json("status")) == 60
    assert cards("verify", CARD, "--pin-stdin", input=PIN + "\n").exit_code == 0
    assert cards("audit", "verify").exit_code == 0


@pytest.mark.sqlite_only("WAL is SQLite's journal mode")
def test_init_puts_the_database_in_wal_mode(cards):
    import sqlite3

    con = sqlite3.connect(cards.db.path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


# --- bad input: one line on stderr, the documented exit code, nothing written --------------

BAD = [
    pytest.param(("activate", CARD, "--id-number", "110105195205127045", "--pin-stdin"), PIN, 2,
                 "wrong check character", id="activate-bad-id-checksum"),
    pytest.param(("activate", OTHER[0], "--id-number", "1101051952051270", "--pin-stdin"), PIN, 2,
                 "wrong length", id="activate-short-id"),
    pytest.param(("activate", "ZZZZZZZZZ", "--id-number", ID_NUMBER, "--pin-stdin"), PIN, 5, "not found",
                 id="activate-unknown-card"),
    pytest.param(("activate", OTHER[0], "--id-number", OTHER[1], "--pin-stdin"), "12345", 2, "6 digits",
                 id="activate-short-pin"),
    pytest.param(("verify", "ZZZZZZZZZ", "--pin-stdin"), PIN, 5, "card ZZZZZZZZZ not found", id="verify-unknown"),
    pytest.param(("verify", "gk417589", "--pin-stdin"), PIN, 2, "card number", id="verify-bad-card-no"),
    pytest.param(("verify", CARD, "--pin-stdin"), "12345", 2, "6 digits", id="verify-5-digit-pin"),
    pytest.param(("verify", CARD, "--pin-stdin"), "1234567", 2, "6 digits", id="verify-7-digit-pin"),
    pytest.param(("verify", CARD, "--pin-stdin"), "12345a", 2, "6 digits", id="verify-letter-pin"),
    pytest.param(("verify", CARD, "--pin-stdin"), "", 2, "PIN line", id="verify-no-pin-on-stdin"),
    pytest.param(("verify", CARD), None, 2, "--pin-stdin", id="verify-no-terminal"),
    pytest.param(("status", "ZZZZZZZZZ"), None, 5, "not found", id="status-unknown"),
    pytest.param(("status", "abc"), None, 2, "card number abc", id="status-bad-card-no"),
    pytest.param(("status", "--region", "11x"), None, 2, "--region", id="status-bad-region"),
    pytest.param(("issue", "N00000001", "--name", "x", "--id-number", "11010519491231002Y", "--region", "110105"),
                 None, 2, "ID number", id="issue-bad-id"),
    pytest.param(("issue", "n1", "--name", "x", "--id-number", "11010519491231002X", "--region", "110105"),
                 None, 2, "card number", id="issue-bad-card-no"),
    pytest.param(("issue", "N00000001", "--name", "x", "--id-number", "11010519491231002X", "--region", "999999"),
                 None, 2, "region", id="issue-unknown-region"),
    pytest.param(("issue", "N00000001", "--name", "a\x1bb", "--id-number", "11010519491231002X",
                  "--region", "110105"), None, 2, "control", id="issue-control-char-name"),
    pytest.param(("issue", "N00000001", "--name", "x", "--id-number", ID_NUMBER, "--region", "110105"), None, 6,
                 "already has a live card", id="issue-second-live-card"),
    pytest.param(("import", "/nonexistent/cards.csv"), None, 2, "not found", id="import-missing-file"),
    pytest.param(("import", "-"), "card_no,name\nX,Y\n", 2, "lacks column", id="import-missing-columns"),
    pytest.param(("unlock", CARD), None, 2, "--reason", id="unlock-without-reason"),
    pytest.param(("unlock", "--reason", "x"), None, 2, "card numbers", id="unlock-nothing-named"),
    pytest.param(("unlock", CARD, "--reason", "x", "--id-number", "110105195205127045"), None, 2, "ID number",
                 id="unlock-bad-id"),
    pytest.param(("unlock", CARD, "--reason", "x", "--kind", "arrears"), None, 2, "pay-arrears",
                 id="unlock-arrears"),
    pytest.param(("unlock", "--expired", CARD), None, 2, "--expired", id="unlock-expired-with-cards"),
    pytest.param(("audit", "log", "--since", "yesterday"), None, 2, "ISO-8601", id="audit-bad-since"),
    pytest.param(("audit", "log", "--card", "abc"), None, 2, "card number", id="audit-bad-card"),
    pytest.param(("verify", CARD, "--pin-stdin", "--channel", "fax"), PIN, 2, "channel", id="bad-channel"),
]


@pytest.mark.parametrize("args, stdin, code, says", BAD)
def test_bad_input_is_one_line_with_its_exit_code_and_changes_nothing(cards, args, stdin, code, says):
    if args[0] == "unlock":
        lock_by_pin(cards)
    before = cards.dump()
    result = cards(*args, input=None if stdin is None else (stdin + "\n" if stdin else ""))
    assert result.exit_code == code, result.stderr
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cardctl: ") and says in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert ID_NUMBER not in result.stderr
    assert cards.dump() == before


@pytest.mark.parametrize("args", [
    ("verify", CARD, PIN), ("status", "-o", "xml"), ("unlock", CARD, "--reason", "x", "--kind", "nope"),
    ("status", "--status", "broken"), ("nosuchcommand",),
])
def test_usage_errors_exit_2_and_change_nothing(cards, args):
    before = cards.dump()
    result = cards(*args, input=PIN + "\n")
    assert result.exit_code == 2
    assert result.stdout == "" and "Traceback" not in result.stderr and result.stderr
    assert cards.dump() == before


def test_a_wrong_length_pin_is_not_counted_as_a_wrong_pin(cards):
    assert cards("verify", CARD, "--pin-stdin", input="12345\n").exit_code == 2
    (card,) = cards.json("status", CARD)
    assert card["failures"] == 0


def test_a_broken_csv_with_no_good_row_exits_7_and_writes_nothing(cards, tmp_path):
    broken = tmp_path / "broken.csv"
    broken.write_text("card_no,name,id_number,region\nB00000001,王五\nB00000002,赵六,123,110105\n", encoding="utf-8")
    before = cards.dump()
    result = cards("import", str(broken))
    assert result.exit_code == 7 and result.stdout == ""
    assert "line 2: expected 4 fields, found 2" in result.stderr
    assert "line 3: ID number 123: wrong length" in result.stderr
    assert result.stderr.splitlines()[-1] == f"cardctl: 2 row(s) of {broken} were not imported"
    assert cards.dump() == before


def test_a_missing_database_names_cardctl_init_and_is_not_created(cli):
    cli.db.drop()
    result = cli("status")
    assert result.exit_code == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "cardctl init" in result.stderr
    assert not cli.db.exists()


def test_a_missing_key_file_exits_1_and_changes_nothing(cards):
    before = cards.dump()
    result = cards("verify", CARD, "--pin-stdin", input=PIN + "\n",
                   env={"CARDCTL_KEY_FILE": str(cards.key_file) + ".gone"})
    assert result.exit_code == 1 and result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "key file" in result.stderr
    assert cards.dump() == before


def test_another_databases_key_file_is_refused(cards, tmp_path, new_database):
    (tmp_path / "other").mkdir()
    other = Cli(tmp_path / "other", new_database("other"))
    other.ok("init")
    before = cards.dump()
    result = cards("status", CARD, env={"CARDCTL_KEY_FILE": str(other.key_file)})
    assert result.exit_code == 1 and result.stdout == ""
    assert "does not belong to this database" in result.stderr and len(result.stderr.splitlines()) == 1
    assert cards.dump() == before


def test_a_busy_database_exits_1_and_the_attempt_is_not_counted(cards):
    with cards.db.hold_write_lock():  # another process in the middle of a write
        before = cards.dump()
        result = cards("verify", CARD, "--pin-stdin", input=WRONG + "\n", env={"CARDCTL_BUSY_TIMEOUT": "0"})
        assert result.exit_code == 1 and result.stdout == ""
        assert len(result.stderr.splitlines()) == 1 and "busy" in result.stderr
        assert "CARDCTL_BUSY_TIMEOUT" in result.stderr
    assert cards.dump() == before


def test_an_uninitialised_database_file_names_cardctl_init(cli):
    cli.db.create_empty()
    result = cli("status")
    assert result.exit_code == 1 and "cardctl init" in result.stderr and result.stdout == ""


def test_operator_and_channel_are_recorded(cards):
    lock_by_pin(cards)
    cards.ok("--operator", "clerk-7", "unlock", CARD, "--reason", "verified", "--channel", "bank")
    event = [e for e in cards.json("audit", "log", "--card", CARD) if e["action"] == "lock.unlock"][-1]
    assert (event["operator"], event["channel"], event["reason"]) == ("clerk-7", "bank", "verified")


def test_the_db_option_overrides_the_environment(cards, new_database):
    other = new_database("elsewhere", create=False)
    result = cards("--db", other.url, "status")
    assert result.exit_code == 1 and other.url.split("?")[0].rsplit("/", 1)[-1] in result.stderr
