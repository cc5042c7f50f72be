"""Start-up imports only what the command needs (README, "Performance").

``status CARD`` and the cron sweep with nothing due run, on SQLite, on the sqlite3 start-up
path (storage/lite.py): no SQLAlchemy at all. On PostgreSQL they run on SQLAlchemy Core:
never the ORM, bcrypt, Alembic or the code of other commands. Each is run as a real
process through the ``cardctl`` entry point, which reports at exit which modules it
loaded. No timings here: the benchmark measures those; this pins down the cause.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from cardctl import cli

CARD, NAME, ID_NUMBER, REGION = "A00000001", "张伟", "11010519491231002X", "110105"

# What a read or the idle sweep must never load. The ORM and its classes, bcrypt (PINs),
# Alembic (migrations), the write-path services, and the modules of other commands.
NEVER_ON_FAST_PATHS = (
    "sqlalchemy.orm", "bcrypt", "cardctl.domain.pins", "alembic",
    "cardctl.services.cards", "cardctl.services.loss", "cardctl.services.lifecycle", "cardctl.services.verify",
    "cardctl.services.guards",
    "cardctl.cli.cards", "cardctl.cli.operator", "cardctl.cli.lifecycle", "cardctl.cli.arrears",
    "cardctl.cli.usage", "cardctl.cli.version",  # loaded only for a usage error, only for --version
)

# Runs cardctl's console-script entry point and writes sys.modules to argv[1] at exit.
PROBE = """
import atexit, json, sys
out = sys.argv[1]
atexit.register(lambda: open(out, "w").write(json.dumps(sorted(sys.modules))))
sys.argv = ["cardctl", *sys.argv[2:]]
from cardctl.cli import main
main()
"""


@pytest.fixture
def env(tmp_path: Path, database) -> dict[str, str]:
    """A database initialised by the real ``init`` (its OS or database login is admin), one card."""
    environment = {**os.environ, "CARDCTL_DB": database.url, "CARDCTL_KEY_FILE": str(tmp_path / "cardctl.key"),
                   "CARDCTL_BCRYPT_COST": "4", "CARDCTL_OPERATOR": "tester", "CARDCTL_LANG": "en"}
    for args in (["init"], ["issue", CARD, "--name", NAME, "--id-number", ID_NUMBER, "--region", REGION]):
        done = subprocess.run([sys.executable, "-m", "cardctl", *args], env=environment,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    return environment


def loaded_by(env: dict[str, str], tmp_path: Path, *args: str,
              input: str | None = None) -> tuple[set[str], subprocess.CompletedProcess]:
    out = tmp_path / "modules.json"
    out.unlink(missing_ok=True)
    done = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], env=env, input=input,
                          capture_output=True, text=True, timeout=120)
    return set(json.loads(out.read_text())), done


def test_status_of_one_card_loads_no_orm_no_bcrypt_no_alembic(env, tmp_path, engine):
    modules, done = loaded_by(env, tmp_path, "status", CARD, "-o", "json")

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["card_no"] == CARD  # it really read the card
    assert "cardctl.services.reads" in modules
    assert ("sqlalchemy" in modules) is (engine == "postgresql")  # SQLite: the sqlite3 start-up path
    assert sorted(modules.intersection(NEVER_ON_FAST_PATHS)) == []


def test_the_idle_cron_sweep_loads_no_orm_no_bcrypt_no_alembic(env, tmp_path, engine):
    modules, done = loaded_by(env, tmp_path, "unlock", "--expired", "-o", "jsonl")

    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # nothing was due
    assert ("sqlalchemy" in modules) is (engine == "postgresql")
    assert "cardctl.services.unlock" not in modules  # counted, not swept: on either engine
    assert sorted(modules.intersection(NEVER_ON_FAST_PATHS)) == []


def test_the_probe_sees_the_write_path_where_a_command_does_load_it(env, tmp_path):
    # the control: a PIN check goes through bcrypt and the write-path services, and the probe
    # reports them
    modules, done = loaded_by(env, tmp_path, "verify", CARD, "--pin-stdin", input="583920\n")

    assert done.returncode == 4, done.stderr  # the card is pending: not usable yet
    assert {"bcrypt", "cardctl.domain.pins", "cardctl.services.verify", "cardctl.services.guards"} <= modules


# --- which module registers which command --------------------------------------------------------


def command_names(app: typer.Typer) -> set[str]:
    return set(typer.main.get_command(app).commands)


def test_every_command_is_registered_by_the_module_the_table_names():
    for module in cli.MODULES:
        expected = {name for name, owner in cli.COMMANDS.items() if owner == module}
        assert command_names(cli.build((module,))) == expected, module


def test_the_table_covers_every_command_of_the_full_app():
    assert command_names(cli.build()) == set(cli.COMMANDS)
    assert set(cli.COMMANDS.values()) == set(cli.MODULES)


@pytest.mark.parametrize(("args", "command"), [
    (["status", "A00000001"], "status"),
    (["--db", "status", "unlock", "--expired"], "unlock"),  # a database file named like a command
    (["--db=x.db", "--lang", "zh", "audit", "verify"], "audit"),
    (["--operator", "verify", "status"], "status"),
    (["--help"], None),
    ([], None),
    (["statsu", "A00000001"], None),  # a typo: every command is registered, so click can suggest
])
def test_the_command_is_found_after_the_global_options(args, command, monkeypatch):
    for key in [key for key in os.environ if key.endswith("_COMPLETE")]:
        monkeypatch.delenv(key)
    assert cli.invoked_command(args) == command


def test_shell_completion_sees_every_command(monkeypatch):
    monkeypatch.setenv("_CARDCTL_COMPLETE", "complete_bash")
    assert cli.invoked_command(["status"]) is None
