"""The installed ``cardctl`` run as a real process: console script, pipes, and the wall clock
moved forward with faketime for the 24-hour PIN-lock expiry, seen from outside."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import empty_database
from realproc import cardctl_command

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "cards.csv"
CARD, ID_NUMBER = "GK4175892", "110105195205127044"  # first row of examples/cards.csv
PIN, WRONG = "583920", "271828"


def environment(folder: Path, db_url: str) -> dict[str, str]:
    return {**os.environ, "CARDCTL_DB": db_url, "CARDCTL_KEY_FILE": str(folder / "cardctl.key"),
            "CARDCTL_BCRYPT_COST": "4", "CARDCTL_OPERATOR": "tester", "COLUMNS": "200"}


@pytest.fixture
def env(tmp_path: Path, database) -> dict[str, str]:
    return environment(tmp_path, database.url)


def run(env: dict, *args: str, input: str | None = None, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, *cardctl_command(), *args], input=input, env=env, capture_output=True,
                          text=True, timeout=60)


@pytest.fixture(scope="module")
def locked_template(engine, tmp_path_factory) -> tuple[Path, object, dict]:
    """Built once per engine, by the real commands: the example cards, the first active and locked
    by three wrong PINs. Returns the key's folder, the database and the lock as ``status -o json`` shows it."""
    folder = tmp_path_factory.mktemp("locked")
    template = empty_database(engine, folder, "locked_template")
    env = environment(folder, template.url)
    assert run(env, "init").returncode == 0
    assert run(env, "import", str(EXAMPLES)).returncode == 0
    assert run(env, "activate", CARD, "--id-number", ID_NUMBER, "--pin-stdin", input=PIN + "\n").returncode == 0
    for _ in range(3):
        assert run(env, "verify", CARD, "--pin-stdin", input=WRONG + "\n").returncode == 3
    (card,) = json.loads(run(env, "status", CARD, "-o", "json").stdout)
    (lock,) = card["locks"]
    return folder, template, lock


@pytest.fixture
def locked(locked_template, database, tmp_path: Path) -> dict:
    """This test's own copy of the locked database and its key."""
    folder, template, lock = locked_template
    shutil.copy2(folder / "cardctl.key", tmp_path / "cardctl.key")
    database.copy_from(template)
    return lock


def test_help_works_and_names_the_commands(env):
    result = run(env, "--help")
    assert result.returncode == 0 and result.stderr == ""
    for command in ("init", "import", "activate", "verify", "unlock", "status", "audit"):
        assert command in result.stdout


def test_python_dash_m_cardctl_works(env):
    result = subprocess.run([sys.executable, "-m", "cardctl", "unlock", "--help"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "--expired" in result.stdout


def test_a_missing_database_is_one_line_naming_cardctl_init(env, database):
    database.drop()
    result = run(env, "status")
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and "cardctl init" in result.stderr
    assert "Traceback" not in result.stderr
    assert not database.exists()


def test_locked_cards_pipe_into_unlock_through_a_real_shell(env, locked):
    pipeline = " ".join(cardctl_command()) + " status --locked -o jsonl | " + " ".join(cardctl_command()) + \
        " unlock --from - --reason 'terminal fault' -o jsonl"
    result = subprocess.run(pipeline, shell=True, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["result"] for line in result.stdout.splitlines()] == ["unlocked"]
    assert run(env, "verify", CARD, "--pin-stdin", input=PIN + "\n").returncode == 0


# --- the 24-hour lock ends by the clock, with or without cron -------------------------------

FAKETIME = shutil.which("faketime")
needs_faketime = pytest.mark.skipif(FAKETIME is None, reason="faketime (libfaketime) is not on PATH; "
                                    "install it (apt-get install faketime) to run the black-box expiry tests")
# faketime moves the client's clock only: on PostgreSQL the server's clock decides locks and a client
# whose clock is hours off is refused (tests/test_clock.py), so these run where the host's clock governs
host_clock_governs = pytest.mark.sqlite_only("on PostgreSQL the server's clock governs, not faketime's")


def later(env: dict, offset: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    # DONT_FAKE_MONOTONIC keeps SQLite's busy-wait and Python's timeouts on the real clock
    faked = {**env, "FAKETIME_DONT_RESET": "1", "DONT_FAKE_MONOTONIC": "1"}
    return run(faked, *args, input=input, prefix=(FAKETIME, "-f", offset))


@needs_faketime
def test_faketime_moves_the_clock_that_python_sees():
    before = time.time()
    faked = subprocess.run([FAKETIME, "-f", "+25h", sys.executable, "-c", "import time; print(time.time())"],
                           capture_output=True, text=True, timeout=60)
    assert faked.returncode == 0, faked.stderr
    assert 24.9 * 3600 < float(faked.stdout) - before < 25.1 * 3600


@needs_faketime
@host_clock_governs
def test_a_day_later_the_lock_no_longer_binds_even_before_cron(env, locked):
    assert locked["remaining_s"] > 86_000
    still = json.loads(later(env, "+23h", "status", CARD, "-o", "json").stdout)[0]
    assert still["usable"] is False and 0 < still["locks"][0]["remaining_s"] <= 3600

    result = later(env, "+25h", "status", CARD, "-o", "json")
    assert result.returncode == 0, result.stderr
    (card,) = json.loads(result.stdout)
    assert card["locks"] == [] and card["usable"] is True
    assert card["failures"] == 0 and card["attempts_left"] == 3
    assert later(env, "+25h", "status", "--locked", "-o", "jsonl").stdout == ""


@needs_faketime
@host_clock_governs
def test_the_cron_sweep_records_the_end_at_the_locks_end_time(env, locked):
    result = later(env, "+25h", "unlock", "--expired", "-o", "json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"card_no": CARD, "result": "expired", "ended_at": locked["until"]}]
    assert "1 expired lock(s)" in result.stderr

    again = later(env, "+25h", "unlock", "--expired", "-o", "json")
    assert again.returncode == 0 and json.loads(again.stdout) == []

    events = json.loads(run(env, "audit", "log", "--card", CARD, "-o", "json").stdout)
    (expiry,) = [e for e in events if e["action"] == "lock.expire"]
    assert expiry["at"] == locked["until"]
    assert (expiry["outcome"], expiry["channel"]) == ("ended", "system")
    assert run(env, "audit", "verify").returncode == 0

    assert later(env, "+25h", "verify", CARD, "--pin-stdin", input=PIN + "\n").returncode == 0


@needs_faketime
@host_clock_governs
def test_a_pin_tried_after_the_end_records_the_expiry_at_the_end_time_too(env, locked):
    assert later(env, "+30h", "verify", CARD, "--pin-stdin", input=PIN + "\n").returncode == 0
    assert json.loads(later(env, "+30h", "unlock", "--expired", "-o", "json").stdout) == []
    events = json.loads(run(env, "audit", "log", "--card", CARD, "-o", "json").stdout)
    assert [e["at"] for e in events if e["action"] == "lock.expire"] == [locked["until"]]


@needs_faketime
@host_clock_governs
def test_before_its_end_the_cron_sweep_leaves_the_lock_alone(env, locked):
    result = later(env, "+23h", "unlock", "--expired", "-o", "json")
    assert result.returncode == 0 and json.loads(result.stdout) == []
    assert later(env, "+23h", "verify", CARD, "--pin-stdin", input=PIN + "\n").returncode == 4
