"""--dry-run writes nothing: on every command that offers it (today: ``unlock`` in each of its forms,
the cron sweep ``unlock --expired`` included) every row of every table is the same before and after,
and on SQLite not one byte of the database file changes. What a dry run lists is still there for
the real run afterwards.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from conftest import FakeClock
from helpers_security import CARD, ID_NUMBER, OTHER, OTHER_ID, WRONG, Office
from realproc import cardctl_command, cli_env

FAKETIME = shutil.which("faketime")


def dry_run_commands() -> set[str]:
    """Every command (and group command) of the app that has a --dry-run option."""
    from cardctl.cli import app
    import typer

    found = set()

    def walk(command, path: str) -> None:
        if any("--dry-run" in getattr(param, "opts", ()) for param in command.params):
            found.add(path.strip())
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "")
    return found


# Each form of each command with --dry-run, and what its output must say it would do.
SCENARIOS = {
    "unlock CARD (PIN lock)": (("unlock", CARD, "--reason", "checking"), "would unlock"),
    "unlock --from FILE": (("unlock", "--from", "{cards}", "--reason", "batch check"), "would unlock"),
    "unlock at the counter (--id-number)": (("unlock", CARD, "--reason", "at the counter", "--id-number", ID_NUMBER),
                                            "would unlock"),
    "unlock --kind admin": (("unlock", OTHER, "--kind", "admin", "--reason", "case closed"), "would unlock"),
    "unlock --expired": (("unlock", "--expired"), "would expire"),
}
COVERED = {"unlock"}


def test_every_command_that_offers_dry_run_is_tested_here():
    assert dry_run_commands() == COVERED, "a command gained --dry-run: add its scenarios to SCENARIOS"


def file_hash(office: Office) -> str | None:
    if office.engine != "sqlite":
        return None
    return hashlib.sha256(Path(office.database.url).read_bytes()).hexdigest()


@pytest.fixture
def office(database, tmp_path, monkeypatch) -> Iterator[Office]:
    """CARD PIN-locked by three wrong PINs, OTHER activated and admin-locked, both on a clock
    that then stands 25 hours later; so CARD's PIN lock is due for the sweep."""
    office = Office(database, tmp_path, monkeypatch)
    office.clock = FakeClock()
    office.open_counter()
    office.ok("activate", OTHER, "--id-number", OTHER_ID, "--pin-stdin", input="702614\n")
    office.ok("lock", OTHER, "--kind", "admin", "--reason", "suspected card sharing")
    for _ in range(3):
        office("verify", CARD, "--pin-stdin", input=WRONG + "\n")
    (tmp_path / "cards.txt").write_text(f"{CARD}\n{OTHER}\nZ99999999\n")
    yield office
    office.close()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_dry_run_changes_no_row_of_any_table(office, tmp_path, scenario):
    args, says = SCENARIOS[scenario]
    args = tuple(a.replace("{cards}", str(tmp_path / "cards.txt")) for a in args)
    if "--expired" in args:
        office.clock.advance(hours=25)
    before, file_before = office.dump(), file_hash(office)
    result = office(*args, "--dry-run", "-o", "jsonl")
    assert result.exit_code in (0, 7), result.stderr
    assert says in [json.loads(line)["result"] for line in result.stdout.splitlines()]
    assert office.dump() == before
    assert file_hash(office) == file_before, "the database file changed"


def test_the_sweeps_dry_run_leaves_its_work_to_the_real_sweep(office):
    office.ok("report-lost", OTHER, "--temporary", "--channel", "hotline")
    office.clock.advance(days=8)  # the PIN lock is past its end and the temporary report has lapsed
    before = office.dump()
    dry = office("unlock", "--expired", "--dry-run", "-o", "jsonl")
    assert dry.exit_code == 0, dry.stderr
    listed = sorted((r["card_no"], r["result"]) for r in map(json.loads, dry.stdout.splitlines()))
    assert listed == sorted([(CARD, "would expire"), (OTHER, "would lapse")])
    assert office.dump() == before
    table = office("unlock", "--expired", "--dry-run")
    assert "dry run, nothing changed: 1 expired lock(s) would be recorded as ended; 1" in table.stderr
    assert office.dump() == before
    real = office("unlock", "--expired", "-o", "jsonl")
    assert sorted((r["card_no"], r["result"]) for r in map(json.loads, real.stdout.splitlines())) == sorted([
        (CARD, "expired"), (OTHER, "lapsed")])


@pytest.mark.skipif(FAKETIME is None, reason="faketime (libfaketime) is not on PATH; apt-get install faketime")
@pytest.mark.sqlite_only("on PostgreSQL the server's clock governs: a client 25 h fast is refused (test_clock.py)")
def test_faketime_dry_run_sweep_in_a_real_process_writes_no_expiry(database, tmp_path, monkeypatch):
    """The report: ``faketime -f +25h cardctl unlock --expired --dry-run`` printed `expired` and wrote
    lock.expire events, and the next real sweep found nothing due."""
    office = Office(database, tmp_path, monkeypatch).open_counter()
    try:
        for _ in range(3):
            office("verify", CARD, "--pin-stdin", input=WRONG + "\n")
        env = {**cli_env(database.url, office.key_file), "DONT_FAKE_MONOTONIC": "1"}
        before, file_before = office.dump(), file_hash(office)

        def sweep(*more: str) -> subprocess.CompletedProcess:
            return subprocess.run([FAKETIME, "-f", "+25h", *cardctl_command(), "unlock", "--expired", *more],
                                  env=env, capture_output=True, text=True, timeout=60)

        dry = sweep("--dry-run")
        assert dry.returncode == 0, dry.stderr
        assert "would expire" in dry.stdout and "nothing changed" in dry.stderr
        assert office.dump() == before
        assert file_hash(office) == file_before
        real = sweep("-o", "jsonl")
        assert real.returncode == 0, real.stderr
        assert [json.loads(line)["result"] for line in real.stdout.splitlines()] == ["expired"]
        assert [e["action"] for e in office.events()].count("lock.expire") == 1
    finally:
        office.close()


def test_the_idle_dry_run_sweep_stays_on_the_read_only_start_up_path(database, tmp_path, engine):
    """Nothing due: on SQLite the dry run is answered by the sqlite3 start-up path (storage/lite.py,
    read-only) and never loads SQLAlchemy, let alone the sweep."""
    from realproc import run
    from test_startup import loaded_by

    env = {**cli_env(database.url, tmp_path / "cardctl.key"), "CARDCTL_LANG": "en"}
    assert run(env, "init").returncode == 0
    modules, done = loaded_by(env, tmp_path, "unlock", "--expired", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "dry run, nothing changed: 0 expired lock(s)" in done.stderr
    assert ("sqlalchemy" in modules) is (engine == "postgresql")
    assert "cardctl.services.unlock" not in modules or engine == "postgresql"
