"""Escalation to a counter visit (docs/domain.md): the Nth PIN lock of a card within the region's
window has no end time; the cron sweep never ends it, a clerk's plain unlock is refused, and
only the holder's identity (unlock --id-number / --id-stdin, reset-pin) ends it.

Attacked as people would: a holder locking the card again and again, cron on a host whose clock
runs a day ahead (faketime, a real process), a clerk trying a plain unlock, someone else's ID
number, a batch file, an admin clearing the flag with sqlite3 or psql.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from rich.cells import cell_len
from sqlalchemy import text

from cardctl.config import os_user
from cardctl.domain import reasons
from cardctl.domain.identity import parse_id_number
from cardctl.services.cards import activate
from cardctl.services.context import Context
from cardctl.services.lifecycle import change_pin, reset_pin
from cardctl.services.policies import set_policy
from cardctl.services.setup import init_database
from cardctl.services.unlock import expire_due
from cardctl.services.verify import verify_pin
from cardctl.errors import WrongPin
from conftest import GOOD_PIN, HOLDERS, FakeClock, issue
from realproc import cardctl_command, cli_env

WRONG = "271828"
CARD, NAME, ID_NUMBER, REGION = HOLDERS[0]
OTHER, OTHER_NAME, OTHER_ID, OTHER_REGION = HOLDERS[1]
FAKETIME = shutil.which("faketime")


# --- the office: two active cards, a region policy that escalates the third PIN lock in 30 days ---


def open_office(settings, clock) -> Context:
    """A database made by this OS user (so real processes may act on it), both cards active,
    escalate_after 3 within 30 days set on the default policy."""
    settings = dataclasses.replace(settings, os_user=os_user())
    init_database(settings, clock)
    ctx = Context.open(settings, clock)
    for card_no, name, id_number, region in HOLDERS[:2]:
        issue(ctx, card_no, name, id_number, region)
        activate(ctx, card_no, parse_id_number(id_number, ctx.now().date()), GOOD_PIN)
    set_policy(ctx, "", {"escalate_after": 3, "escalate_window_days": 30})
    return ctx


@pytest.fixture
def office(settings, clock):
    return open_office(settings, clock)


def lock(ctx, card_no: str = CARD) -> None:
    for _ in range(3):
        verify_pin(ctx, card_no, WRONG)


def lock_and_expire(ctx, clock, card_no: str = CARD) -> None:
    """A PIN lock that ran its 24 hours and was recorded as ended by the sweep."""
    lock(ctx, card_no)
    clock.advance(hours=25)
    list(expire_due(ctx))


def unlocks(cli) -> list[dict]:
    """CARD's lock.unlock events as audit log lists them."""
    logged = json.loads(cli("audit", "log", "--card", CARD, "-o", "json").stdout)
    return [event for event in logged if event["action"] == "lock.unlock"]


def pin_locks(database, card_no: str = CARD) -> list:
    with database_conn(database) as conn:
        return list(conn.execute(text(
            "SELECT reason, ends_at, ended_at, end_cause, escalated FROM locks "
            "WHERE card_no = :card AND kind = 'pin' ORDER BY id"), {"card": card_no}))


class database_conn:
    def __init__(self, database) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        from cardctl.storage.db import normalise_url

        self.engine = create_engine(normalise_url(database.url), poolclass=NullPool)

    def __enter__(self):
        self.conn = self.engine.connect()
        return self.conn

    def __exit__(self, *exc) -> None:
        self.conn.close()
        self.engine.dispose()


@pytest.fixture
def cli(office, settings, clock, monkeypatch):
    """``cardctl`` in-process against the office's database and clock; ``lang``/``columns`` as a
    clerk's terminal would set them."""
    from typer.testing import CliRunner

    from cardctl.cli import app
    from cardctl.cli.common import Runtime

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None, lang: str = "en", columns: int = 200):
        env = {"CARDCTL_DB": settings.db_url, "CARDCTL_KEY_FILE": str(settings.key_file),
               "CARDCTL_BCRYPT_COST": "4", "CARDCTL_OPERATOR": "clerk", "CARDCTL_LANG": lang,
               "COLUMNS": str(columns)}
        return runner.invoke(app, list(args), input=input, env=env, obj=Runtime(clock=clock),
                             catch_exceptions=False)

    return invoke


@pytest.fixture
def escalated(office, clock) -> Context:
    """CARD's third PIN lock within 30 days (the first two ran out and were recorded)."""
    lock_and_expire(office, clock)
    lock_and_expire(office, clock)
    lock(office)
    return office


# --- the rule ----------------------------------------------------------------------------------


def test_the_third_pin_lock_in_the_window_has_no_end_and_says_why(escalated, database, clock):
    first, second, third = pin_locks(database)
    assert [row.escalated for row in (first, second, third)] == [False, False, True]
    assert first.ends_at is not None and second.ends_at is not None
    assert third.ends_at is None and third.ended_at is None
    assert reasons.decode(third.reason) == (reasons.Reason.PIN_ESCALATED, {"failures": 3, "locks": 3, "days": 30})
    assert str(reasons.worded(third.reason)) == "3 consecutive wrong PINs; PIN lock 3 in 30 days: needs a counter visit"
    # a year later, swept again and again, the right PIN still meets the lock
    for _ in range(3):
        clock.advance(days=120)
        assert list(expire_due(escalated)) == []
    assert verify_pin(escalated, CARD, GOOD_PIN).result == "locked"
    assert pin_locks(database)[-1].ended_at is None


def test_the_lock_event_in_the_trail_says_escalated(escalated, cli):
    logged = json.loads(cli("audit", "log", "--card", CARD, "-o", "json").stdout)
    pin_locks_logged = [event for event in logged if event["action"] == "lock.pin"]
    assert [event["detail"].get("escalated") for event in pin_locks_logged] == [None, None, True]
    assert pin_locks_logged[-1]["detail"]["until"] is None


def test_escalation_is_off_by_default_and_every_lock_then_ends_by_itself(office, database, clock):
    set_policy(office, "", {"escalate_after": 0})
    for _ in range(5):
        lock_and_expire(office, clock)
    rows = pin_locks(database)
    assert len(rows) == 5 and not any(row.escalated for row in rows)
    assert all(row.end_cause == "expired" for row in rows)


def test_a_lock_outside_the_window_does_not_count(office, database, clock):
    lock_and_expire(office, clock)  # day 0
    clock.advance(days=10)
    lock_and_expire(office, clock)  # day 11
    clock.advance(days=20)  # day 32: the first lock started more than 30 days ago
    lock(office)
    assert [row.escalated for row in pin_locks(database)] == [False, False, False]
    assert pin_locks(database)[-1].ends_at is not None
    clock.advance(hours=25)
    list(expire_due(office))
    lock(office)  # day 33: locks of day 11, day 32 and this one are within 30 days
    assert [row.escalated for row in pin_locks(database)] == [False, False, False, True]


def test_locks_are_counted_per_card_not_per_holder_or_office(office, database, clock):
    lock_and_expire(office, clock)
    lock_and_expire(office, clock, OTHER)
    lock_and_expire(office, clock)
    lock(office, OTHER)  # OTHER's second lock, the office's fourth
    assert not any(row.escalated for row in pin_locks(database, OTHER))


def test_wrong_old_pins_at_change_pin_count_the_same_way(office, database, clock):
    for _ in range(3):
        for _ in range(3):
            with pytest.raises(WrongPin):
                change_pin(office, CARD, WRONG, "702614")
        clock.advance(hours=25)
        list(expire_due(office))
    rows = pin_locks(database)
    assert [row.escalated for row in rows] == [False, False, True] and rows[-1].ended_at is None


# --- the cron sweep, a real process on a host whose clock runs 25 hours ahead ----------------------


@pytest.mark.skipif(FAKETIME is None, reason="faketime (libfaketime) is not on PATH")
def test_cron_a_day_later_ends_the_ordinary_lock_and_never_the_escalated_one(settings, database):
    """Real processes: the locks are made with the real clock (on PostgreSQL 26 hours before the
    server's now, since a client under faketime is refused there), then ``unlock --expired`` runs
    as cron runs it, on SQLite under ``faketime +25h``."""
    postgresql = database.engine == "postgresql"
    start = datetime.now(timezone.utc) - (timedelta(hours=26) if postgresql else timedelta(0))
    clock = FakeClock(start - timedelta(days=3))
    ctx = open_office(settings, clock)
    lock_and_expire(ctx, clock)
    lock_and_expire(ctx, clock)
    clock.now = start
    lock(ctx)  # the third: escalated
    lock(ctx, OTHER)  # an ordinary lock beside it, due in 24 hours
    ctx.db.engine.dispose()
    env = cli_env(settings.db_url, settings.key_file, DONT_FAKE_MONOTONIC="1")
    command = [*cardctl_command(), "unlock", "--expired", "-o", "json"]
    if not postgresql:
        command = [FAKETIME, "-f", "+25h", *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [row["card_no"] for row in json.loads(done.stdout)] == [OTHER]  # the sweep did run
    assert pin_locks(database)[-1].ended_at is None and pin_locks(database, OTHER)[-1].end_cause == "expired"
    status = subprocess.run([*([FAKETIME, "-f", "+25h"] if not postgresql else []), *cardctl_command(),
                             "status", CARD, "-o", "json"], env=env, capture_output=True, text=True, timeout=120)
    (card,) = json.loads(status.stdout)
    assert card["usable"] is False and card["locks"][0]["escalated"] is True and card["locks"][0]["until"] is None


# --- at the counter ------------------------------------------------------------------------------------


def test_a_clerks_plain_unlock_is_refused_audited_and_the_lock_still_binds(escalated, cli, database):
    result = cli("unlock", CARD, "--reason", "holder asked nicely")
    assert result.exit_code == 6, result.output
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert "counter visit" in result.stderr and "--id-number" in result.stderr and "reset-pin" in result.stderr
    assert pin_locks(database)[-1].ended_at is None
    assert verify_pin(escalated, CARD, GOOD_PIN).result == "locked"
    logged = unlocks(cli)
    assert [event["outcome"] for event in logged] == ["refused"]
    assert "counter visit" in logged[0]["detail"]["note"]
    # a dry run says the same and writes nothing
    before = database.dump()
    dry = cli("unlock", CARD, "--reason", "try", "--dry-run")
    assert dry.exit_code == 6 and "counter visit" in dry.stderr and database.dump() == before


def test_a_wrong_id_number_is_refused_at_unlock_and_at_reset_pin(escalated, cli, database):
    result = cli("unlock", CARD, "--reason", "at counter", "--id-stdin", input=OTHER_ID + "\n")
    assert result.exit_code == 6 and "does not match the holder" in result.stderr, result.output
    reset = cli("reset-pin", CARD, "--id-stdin", "--pin-stdin", input=f"{OTHER_ID}\n702614\n702614\n")
    assert reset.exit_code == 6, reset.output
    assert pin_locks(database)[-1].ended_at is None
    assert ID_NUMBER not in result.output + reset.output and OTHER_ID not in result.output + reset.output


def test_unlock_with_the_holders_id_number_ends_it(escalated, cli, database):
    result = cli("unlock", CARD, "--reason", "holder at counter", "--id-stdin", "-o", "json",
                 input=ID_NUMBER + "\n")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["result"] == "unlocked"
    assert pin_locks(database)[-1].end_cause == "unlocked"
    assert verify_pin(escalated, CARD, GOOD_PIN).result == "ok"
    assert unlocks(cli)[-1]["detail"]["escalated"] is True


def test_reset_pin_with_the_holders_identity_ends_it(escalated, database):
    done = reset_pin(escalated, CARD, parse_id_number(ID_NUMBER, escalated.now().date()), "702614")
    assert done.pin_lock_cleared and pin_locks(database)[-1].end_cause == "reset"
    assert verify_pin(escalated, CARD, "702614").result == "ok"


def test_a_batch_unlock_reports_the_escalated_card_as_a_failed_row(escalated, cli, clock, database, tmp_path):
    lock(escalated, OTHER)  # OTHER: an ordinary lock
    listing = tmp_path / "cards.txt"
    listing.write_text(f"{OTHER}\n{CARD}\n", encoding="utf-8")
    result = cli("unlock", "--from", str(listing), "--reason", "terminal fault", "-o", "csv")
    assert result.exit_code == 7, result.output
    rows = {row["card_no"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert rows[OTHER]["result"] == "unlocked"
    assert rows[CARD]["result"] == "refused" and "counter visit" in rows[CARD]["detail"]
    assert pin_locks(database)[-1].ended_at is None
    several = cli("unlock", OTHER, CARD, "--reason", "again")
    assert several.exit_code == 7, several.output


# --- what people see ------------------------------------------------------------------------------------


def test_status_shows_it_in_json_csv_and_a_table_in_english_and_chinese(escalated, cli):
    (card,) = json.loads(cli("status", CARD, "-o", "json").stdout)
    (held,) = card["locks"]
    assert held["escalated"] is True and held["until"] is None and held["remaining_s"] is None
    assert "needs a counter visit" in held["reason"]
    (row,) = csv.DictReader(io.StringIO(cli("status", CARD, "-o", "csv").stdout))
    assert json.loads(row["locks"])[0]["escalated"] is True
    listed = json.loads(cli("status", "--locked", "-o", "json").stdout)
    assert [held.get("escalated", False) for card in listed for held in card["locks"]] == [True]
    lock(escalated, OTHER)  # an ordinary lock beside it in the list
    for lang, words in (("en", "until counter visit"), ("zh_CN", "直至到窗口办理")):
        for args in ((CARD,), ("--locked",), (CARD, OTHER)):
            shown = cli("status", *args, lang=lang, columns=80)
            assert shown.exit_code == 0, shown.output
            assert words in shown.stdout.replace("\n", ""), (lang, args, shown.stdout)
            assert max(cell_len(line) for line in shown.stdout.splitlines()) <= 80, shown.stdout


def test_status_as_of_replays_the_escalated_lock_as_still_in_force(escalated, cli, clock):
    locked_at = clock.now
    clock.advance(days=90)
    later = (locked_at + timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ")
    before = (locked_at - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (then,) = json.loads(cli("status", CARD, "--as-of", later, "-o", "json").stdout)
    assert then["usable"] is False and then["locks"][0]["escalated"] is True and then["locks"][0]["until"] is None
    (now,) = json.loads(cli("status", CARD, "-o", "json").stdout)
    assert then["locks"] == [{**now["locks"][0], "remaining_s": None}]
    (earlier,) = json.loads(cli("status", CARD, "--as-of", before, "-o", "json").stdout)
    assert earlier["locks"] == []
    cli("unlock", CARD, "--reason", "holder at counter", "--id-stdin", input=ID_NUMBER + "\n")
    clock.advance(minutes=5)
    after = (clock.now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (ended,) = json.loads(cli("status", CARD, "--as-of", after, "-o", "json").stdout)
    assert ended["locks"] == [] and ended["usable"] is True


def test_the_repeat_locked_section_counts_escalated_locks(escalated, cli, clock):
    clock.advance(minutes=1)  # the period ends now, exclusive: the third lock started this very moment
    (row,) = json.loads(cli("report", "--section", "repeat_locked", "-o", "json").stdout)["sections"]["repeat_locked"]
    assert row["card_no"] == CARD and row["locks"] == 3 and row["pin"] == 3 and row["escalated"] == 1
    table = cli("report", "--section", "repeat_locked", columns=80)
    assert table.exit_code == 0 and "Escalat" in table.stdout, table.output
    assert max(cell_len(line) for line in table.stdout.splitlines()) <= 80


# --- the policy ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, says", [
    (("--escalate-after", "21"), "escalate-after must be from 0 to 20, not 21"),
    (("--escalate-after", "-1"), "escalate-after must be from 0 to 20, not -1"),
    (("--escalate-window-days", "0"), "escalate-window-days must be from 1 to 365, not 0"),
    (("--escalate-window-days", "366"), "escalate-window-days must be from 1 to 365, not 366"),
    (("--escalate-after", "three"), "invalid value 'three' for --escalate-after"),
])
def test_bad_escalation_settings_are_one_line_and_change_nothing(cli, database, args, says):
    before = database.dump()
    result = cli("policy", "set", "4403", *args, "--yes")
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("cardctl: ") and says in result.stderr.splitlines()[0], result.stderr
    assert "Traceback" not in result.output and database.dump() == before


def test_policy_set_and_show_carry_the_settings_and_the_change_is_audited(cli):
    done = cli("policy", "set", "4403", "--escalate-after", "4", "--escalate-window-days", "14", "--yes", "-o", "json")
    assert done.exit_code == 0, done.output
    (shown,) = json.loads(cli("policy", "show", "440305", "-o", "json").stdout)
    assert shown["from"] == "4403" and shown["escalate_after"] == 4 and shown["escalate_window_days"] == 14
    (default,) = json.loads(cli("policy", "show", "default", "-o", "json").stdout)
    assert default["escalate_after"] == 3 and default["escalate_window_days"] == 30  # the office's
    logged = [event for event in json.loads(cli("audit", "log", "-o", "json").stdout)
              if event["action"] == "policy.set"]
    assert logged[-1]["detail"] == {"region": "4403", "changes": {
        "escalate_after": [3, 4], "escalate_window_days": [30, 14]}}
    off = cli("policy", "show", "-o", "json")
    assert all("escalate_after" in row for row in json.loads(off.stdout))
    table = cli("policy", "show", columns=80)
    assert "Escalate" in table.stdout and max(cell_len(line) for line in table.stdout.splitlines()) <= 80


def test_the_region_policy_decides_escalation(office, database, clock):
    set_policy(office, "", {"escalate_after": 0})
    set_policy(office, "4403", {"escalate_after": 2})  # OTHER is of 440305; CARD of 110105
    for _ in range(2):
        lock_and_expire(office, clock)
        lock_and_expire(office, clock, OTHER)
    assert [row.escalated for row in pin_locks(database)] == [False, False]
    assert [row.escalated for row in pin_locks(database, OTHER)] == [False, True]


# --- an insider with the database's own client ---------------------------------------------------------


def _tamper(database, sql: str) -> None:
    """The insider's own tool: the sqlite3 shell on the file, psql on the server."""
    if database.engine == "postgresql":
        from pg_cluster import conninfo

        tool = [shutil.which("psql") or "psql", "-X", "-v", "ON_ERROR_STOP=1", conninfo(database.url)]
    else:
        tool = [shutil.which("sqlite3") or "sqlite3", str(database.path)]
    done = subprocess.run(tool, input=sql + ";\n", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "rror" not in done.stderr, done.stderr


def test_clearing_the_flag_behind_cardctls_back_neither_ends_nor_hides_it(escalated, cli, database):
    """An admin with sqlite3 or psql clears ``escalated``: the lock's reason still names the
    counter visit, so a plain unlock is still refused and status still shows it."""
    _tamper(database, "UPDATE locks SET escalated = " + ("false" if database.engine == "postgresql" else "0")
            + f" WHERE card_no = '{CARD}'")
    assert not pin_locks(database)[-1].escalated
    result = cli("unlock", CARD, "--reason", "flag cleared")
    assert result.exit_code == 6 and "counter visit" in result.stderr, result.output
    (card,) = json.loads(cli("status", CARD, "-o", "json").stdout)
    assert card["locks"][0]["escalated"] is True


def test_rewriting_flag_and_reason_is_still_in_the_trail(escalated, cli, database):
    """Clearing the flag and rewriting the reason makes it an ordinary lock without an end (a
    staff login may write lock rows, docs/security.md): the trail's hash-chained lock.pin event
    still records the escalation, and the unlock that followed."""
    _tamper(database, "UPDATE locks SET escalated = " + ("false" if database.engine == "postgresql" else "0")
            + f", reason = 'x' WHERE card_no = '{CARD}'")
    assert cli("unlock", CARD, "--reason", "rewritten").exit_code == 0
    logged = json.loads(cli("audit", "log", "--card", CARD, "-o", "json").stdout)
    escalations = [event for event in logged if event["action"] == "lock.pin" and event["detail"].get("escalated")]
    assert len(escalations) == 1 and "needs a counter visit" in escalations[0]["reason"]
    assert logged[-1]["action"] == "lock.unlock" and logged[-1]["outcome"] == "unlocked"
    assert cli("audit", "verify").exit_code == 0  # the trail itself was not touched
