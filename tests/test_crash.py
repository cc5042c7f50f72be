"""Crashes and faults, on SQLite and PostgreSQL alike: ``kill -9`` in the middle of an import or a
batch unlock and the same command again; a database that is busy, missing, not initialised or
newer than this cardctl; a key file that is missing, unreadable or another database's.

After a crash nothing is half-written, nothing is recorded twice, the audit chain verifies, and
the end state is the one an uninterrupted run reaches.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cardctl.cli import app
from cardctl.config import os_user
from cardctl.services.context import Context
from cardctl.services.setup import init_database
from orm import Card, Event, Holder, Lock, orm_read
from realproc import TIMEOUT, cli_env, person, run, seed_active_cards, seed_pin_locks, start, utc_now

ROWS = 10_000  # 5 transactions of IMPORT_CHUNK
IMPORT_CHUNK = 2000  # cardctl.cli.cards.IMPORT_CHUNK: one transaction each
UNLOCK_CHUNK = 5000  # cardctl.services.unlock.CHUNK


def kill_inside_a_write(proc, database, committed) -> int:
    """SIGKILL ``proc`` while it is inside a write transaction, once ``committed()`` is non-zero.

    Returns what ``committed()`` said just before the kill.
    """
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"finished before it could be killed (make the work bigger): {err[-500:]}")
        done = committed()
        if done and database.writer_busy():
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == -signal.SIGKILL
            return done
        time.sleep(0.002)
    proc.kill()
    raise AssertionError("no write transaction seen in time")


def snapshot(ctx: Context) -> dict:
    """The end state, without what differs between two runs of the same work: times, row ids, salts."""
    with orm_read(ctx.db) as session:
        return {
            "holders": sorted(session.execute(select(Holder.id_hash, Holder.id_masked, Holder.name,
                                                     Holder.id_tail_hash)).all()),
            "cards": sorted(session.execute(
                select(Card.card_no, Holder.id_hash, Card.region, Card.insurance_type, Card.unit, Card.issuer,
                       Card.status, Card.failures, Card.pin_scheme, Card.pin_hash.is_(None))  # salts differ
                .join(Holder, Holder.id == Card.holder_id)).all()),
            "locks": sorted(session.execute(select(Lock.card_no, Lock.kind, Lock.reason, Lock.end_cause,
                                                   Lock.ended_by, Lock.ended_at.is_(None))).all()),
            "events": Counter(session.execute(select(Event.action, Event.outcome, Event.card_no)).all()),
        }


def batch_runs(env) -> list[tuple[str, bool]]:
    """(command, finished) of every batch run, in start order (the report's runs section)."""
    result = run(env, "report", "--section", "runs", "-o", "jsonl")
    assert result.returncode == 0, result.stderr
    return [(row["command"], row["finished"]) for row in map(json.loads, result.stdout.splitlines())]


def unfinished_run_listed(env) -> None:
    """The run killed mid-way: a start, its committed chunks under its id, no end; said so."""
    [(killed_run,)] = {(json.loads(line)["run_id"],) for line in run(env, "audit", "log", "-o", "jsonl").stdout
                       .splitlines() if json.loads(line)["run_id"]}
    listed = run(env, "audit", "log", "--run", killed_run, "-o", "jsonl")
    assert listed.returncode == 0 and f"run {killed_run} is unfinished" in listed.stderr
    actions = [json.loads(line)["action"] for line in listed.stdout.splitlines()]
    assert actions[0] == "batch.start" and "batch.end" not in actions and len(actions) > 1


def without_runs(events: Counter) -> Counter:
    """The events but the runs' own: the crashed database has one run more, left unfinished."""
    return Counter({key: count for key, count in events.items() if not key[0].startswith("batch.")})


def results_of(out: str) -> Counter:
    return Counter(json.loads(line)["result"] for line in out.splitlines())


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "cardctl.key"  # both databases of a test share it, as two sites of one office would


# --- kill -9 during import -------------------------------------------------------------------


def test_kill_9_during_import_then_the_same_import_again_ends_as_an_uninterrupted_import(
        database, new_database, key_file, tmp_path):
    big = tmp_path / "big.csv"
    big.write_text("card_no,name,id_number,region,type,unit\n" + "".join(
        f"K{i:08d},持卡人{i},{person(i)},110105,{'employee' if i % 2 else 'resident'},\n" for i in range(ROWS)),
        encoding="utf-8")
    env = cli_env(database.url, key_file)
    assert run(env, "init").returncode == 0

    proc = start(env, "import", str(big), "-o", "jsonl", stdout=False)
    committed = kill_inside_a_write(proc, database, lambda: database.count("cards"))
    # whole chunks or nothing: no half-written card, holder or event
    assert 0 < committed < ROWS and committed % IMPORT_CHUNK == 0
    assert database.count("cards") == database.count("holders") == committed
    assert database.count("events", "WHERE action = 'card.issue'") == committed
    unfinished_run_listed(env)

    again = run(env, "import", str(big), "-o", "jsonl")
    assert again.returncode == 0, again.stderr[-500:]
    assert results_of(again.stdout) == {"already issued": committed, "issued": ROWS - committed}
    assert run(env, "audit", "verify").returncode == 0
    assert batch_runs(env) == [("import", False), ("import", True)]

    reference = new_database("reference")
    reference_env = cli_env(reference.url, key_file)
    assert run(reference_env, "init").returncode == 0
    assert run(reference_env, "import", str(big), "-o", "jsonl").returncode == 0
    crashed = snapshot(Context.open(settings_for(database.url, key_file)))
    whole = snapshot(Context.open(settings_for(reference.url, key_file)))
    assert {**crashed, "events": without_runs(crashed["events"])} == {**whole, "events": without_runs(whole["events"])}


def settings_for(db_url: str, key_file: Path):
    from cardctl.config import Settings

    return Settings(db_url=db_url, key_file=key_file, operator="tester", os_user=os_user(), bcrypt_cost=4)


# --- kill -9 during a batch unlock -----------------------------------------------------------

LOCKED = 12_000  # 3 transactions of UNLOCK_CHUNK


def locked_population(db_url: str, key_file: Path) -> list[str]:
    settings = settings_for(db_url, key_file)
    init_database(settings)
    ctx = Context.open(settings)
    cards = seed_active_cards(ctx, LOCKED, "583920")
    seed_pin_locks(ctx, cards, [utc_now() + timedelta(hours=24)] * LOCKED)
    return cards


def test_kill_9_during_a_batch_unlock_then_the_same_unlock_again_ends_as_an_uninterrupted_one(
        database, new_database, key_file, tmp_path):
    cards = locked_population(database.url, key_file)
    reference = new_database("reference")
    reference.copy_from(database)  # the same population, to unlock without a crash
    listing = tmp_path / "cards.txt"
    listing.write_text("\n".join(cards) + "\n")
    env = cli_env(database.url, key_file)
    command = ("unlock", "--from", str(listing), "--reason", "terminal fault T-0042", "-o", "jsonl")

    proc = start(env, *command, stdout=False)
    done = kill_inside_a_write(proc, database, lambda: database.count("locks", "WHERE ended_at IS NOT NULL"))
    assert 0 < done < LOCKED and done % UNLOCK_CHUNK == 0
    assert database.count("events", "WHERE action = 'lock.unlock'") == done
    assert database.count("cards", "WHERE failures = 0") == done
    unfinished_run_listed(env)

    again = run(env, *command)
    assert again.returncode == 0, again.stderr[-500:]  # "not locked" is not a failure
    assert results_of(again.stdout) == {"not locked": done, "unlocked": LOCKED - done}
    assert run(env, "audit", "verify").returncode == 0

    assert run(cli_env(reference.url, key_file), *command).returncode == 0
    crashed = snapshot(Context.open(settings_for(database.url, key_file)))
    whole = snapshot(Context.open(settings_for(reference.url, key_file)))
    # the rerun records its own "not locked" for the cards done before the kill; nothing else differs
    assert batch_runs(env) == [("unlock --from", False), ("unlock --from", True)]
    crashed["events"], whole["events"] = without_runs(crashed["events"]), without_runs(whole["events"])
    rerun_record = crashed["events"] - whole["events"]
    assert set(rerun_record) <= {("lock.unlock", "not_locked", card) for card in cards}
    assert sum(rerun_record.values()) == done and whole["events"] - crashed["events"] == Counter()
    assert {k: v for k, v in crashed.items() if k != "events"} == {k: v for k, v in whole.items() if k != "events"}
    assert Counter(e for e in crashed["events"].elements() if e[:2] == ("lock.unlock", "unlocked")) == \
        Counter(("lock.unlock", "unlocked", card) for card in cards)  # each lock ended once, with one event


# --- faults: busy, missing, not initialised, newer ---------------------------------------------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "cards.csv"
CARD, ID_NUMBER, PIN, WRONG = "GK4175892", "110105195205127044", "583920", "271828"


class Cli:
    def __init__(self, database, key_file: Path) -> None:
        self.database = database
        self.env = {"CARDCTL_DB": database.url, "CARDCTL_KEY_FILE": str(key_file), "CARDCTL_BCRYPT_COST": "4",
                    "CARDCTL_OPERATOR": "tester", "CARDCTL_BUSY_TIMEOUT": "1"}
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None, **env: str):
        return self.runner.invoke(app, list(args), input=input, env={**self.env, **env}, catch_exceptions=False)


@pytest.fixture
def cli(database, key_file) -> Cli:
    return Cli(database, key_file)


@pytest.fixture
def ready(cli) -> Cli:
    for args, stdin in ((("init",), None), (("import", str(EXAMPLES)), None),
                        (("activate", CARD, "--id-number", ID_NUMBER, "--pin-stdin"), PIN + "\n")):
        result = cli(*args, input=stdin)
        assert result.exit_code == 0, result.stderr
    return cli


COMMANDS = {  # what a counter, a batch job and cron would be running
    "verify": (("verify", CARD, "--pin-stdin"), WRONG + "\n"),
    "import": (("import", str(EXAMPLES)), None),
    "unlock": (("unlock", CARD, "--reason", "verified"), None),
    "cron": (("unlock", "--expired"), None),
    "init": (("init",), None),
}


def one_line(result, *says: str) -> None:
    assert result.exit_code == 1 and result.stdout == "", (result.exit_code, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("cardctl: "), result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    for phrase in says:
        assert phrase in lines[0], (phrase, lines[0])


def lock_past_its_end(cli: Cli) -> None:
    """CARD locked by wrong PINs, its end time already passed: something for cron to record."""
    for _ in range(3):
        cli("verify", CARD, "--pin-stdin", input=WRONG + "\n")
    cli.database.run_sql("UPDATE locks SET ends_at = started_at WHERE card_no = :card", card=CARD)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_database_locked_past_the_busy_timeout_exits_1_naming_the_setting_and_writes_nothing(ready, command):
    args, stdin = COMMANDS[command]
    if command == "cron":  # with nothing due it has nothing to write: see the test below
        lock_past_its_end(ready)
    before = ready.database.dump()
    with ready.database.hold_write_lock():
        started = time.monotonic()
        result = ready(*args, input=stdin)
        waited = time.monotonic() - started
        one_line(result, "busy", "CARDCTL_BUSY_TIMEOUT")
        assert waited >= 0.9  # it waited CARDCTL_BUSY_TIMEOUT=1 before giving up
        # readers are not blocked by a writer
        assert ready("audit", "verify").exit_code == 0
    assert ready.database.dump() == before


def test_cron_with_nothing_due_is_not_held_up_by_a_writer(ready):
    # it only reads (WAL: a reader is never blocked by a writer); with a lock due it must
    # write, and then it waits and gives up like any writer (the test above)
    before = ready.database.dump()
    with ready.database.hold_write_lock():
        started = time.monotonic()
        result = ready("unlock", "--expired")
        waited = time.monotonic() - started
    assert (result.exit_code, result.stdout) == (0, "")
    assert result.stderr == "0 expired lock(s) recorded as ended\n"
    assert waited < 0.9
    assert ready.database.dump() == before


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_missing_database_exits_1_naming_the_fix_and_is_not_created(cli, engine, command):
    if engine == "sqlite" and command == "init":
        pytest.skip("on SQLite, init creating the missing file is the fix itself")
    cli.database.drop()
    args, stdin = COMMANDS[command]
    one_line(cli(*args, input=stdin), "cardctl init", *(["createdb"] if engine == "postgresql" else []))
    assert not cli.database.exists()


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - {"init"}))
def test_an_uninitialised_database_exits_1_naming_cardctl_init_and_stays_empty(cli, command):
    cli.database.create_empty()
    args, stdin = COMMANDS[command]
    one_line(cli(*args, input=stdin), "not initialised", "cardctl init")
    assert cli.database.dump() == {}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_database_newer_than_this_cardctl_exits_1_naming_the_upgrade_and_is_left_alone(ready, command):
    ready.database.run_sql("UPDATE alembic_version SET version_num = '9999'")
    before = ready.database.dump()
    args, stdin = COMMANDS[command]
    one_line(ready(*args, input=stdin), "newer than this cardctl", "upgrade cardctl")
    assert ready.database.dump() == before


def test_a_database_whose_init_was_cut_short_says_run_init_and_init_finishes_it(cli, key_file):
    from cardctl.storage import schema
    from cardctl.storage.db import Database

    db = Database(cli.database.url)  # the schema committed, then the process died: no key, no head
    with db.engine.begin() as conn:
        schema.upgrade(conn)
    one_line(cli("status"), "cardctl init")
    assert cli("init").exit_code == 0
    assert cli("status").exit_code == 0 and cli("audit", "verify").exit_code == 0


# --- faults: the key file --------------------------------------------------------------------


def test_a_missing_key_file_is_refused_naming_the_fix(ready, key_file):
    before = ready.database.dump()
    one_line(ready("verify", CARD, "--pin-stdin", input=PIN + "\n", CARDCTL_KEY_FILE=str(key_file) + ".gone"),
             "not found", "CARDCTL_KEY_FILE")
    assert ready.database.dump() == before


def test_an_unreadable_key_file_is_refused(ready, tmp_path):
    folder = tmp_path / "a-folder.key"
    folder.mkdir()
    one_line(ready("status", CARD, CARDCTL_KEY_FILE=str(folder)), "is a directory, not a key file")
    garbage = tmp_path / "garbage.key"
    garbage.write_text("not a key\n")
    garbage.chmod(0o600)
    one_line(ready("status", CARD, CARDCTL_KEY_FILE=str(garbage)), "not a cardctl key")
    if os.geteuid() != 0:  # root reads any file whatever its mode
        locked = tmp_path / "locked.key"
        locked.write_text("0" * 64 + "\n")
        locked.chmod(0)  # unreadable even by its owner
        one_line(ready("status", CARD, CARDCTL_KEY_FILE=str(locked)), "cannot read key file")


def test_audit_verify_tells_a_wrong_key_file_apart_from_tampering(ready, tmp_path, new_database):
    other = Cli(new_database("other"), tmp_path / "other.key")
    assert other("init").exit_code == 0
    wrong_key = ready("audit", "verify", CARDCTL_KEY_FILE=str(tmp_path / "other.key"))
    one_line(wrong_key, "does not belong to this database")

    ready.database.run_sql("UPDATE events SET outcome = 'ok' WHERE seq = 3")
    tampered = ready("audit", "verify")
    assert tampered.exit_code == 6 and "audit chain broken: event 3 was edited" in tampered.stderr
