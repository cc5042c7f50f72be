"""-q/--quiet: no confirmation or summary line on stderr, so cron's error log holds only errors.

The shipped examples/crontab line is run as cron runs it (a shell, stdout and stderr appended to
files) against a real database: with nothing due, with a lock due, and with the database gone.
"""

from __future__ import annotations

import shlex
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import GOOD_PIN, HOLDERS
from realproc import TIMEOUT, Where, cardctl_command, cli_env, seed_active_cards, seed_pin_locks

ROOT = Path(__file__).resolve().parent.parent


def crontab_command() -> str:
    """The command of the sweep's line in examples/crontab (after the five time fields)."""
    lines = [line for line in (ROOT / "examples" / "crontab").read_text().splitlines()
             if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
             and "unlock --expired" in line]  # the sweep's, not the metrics line
    (line,) = lines
    return line.split(None, 5)[5]


def run_cron_line(env: dict, logs: Path) -> int:
    """The crontab line through a shell, its log paths moved into ``logs`` and ``cardctl`` the one under test."""
    command = crontab_command().replace("/var/log/cardctl", str(logs))
    assert command.startswith("cardctl ")
    command = " ".join(map(shlex.quote, cardctl_command())) + command.removeprefix("cardctl")
    return subprocess.run(["sh", "-c", command], env=env, timeout=TIMEOUT).returncode


@pytest.fixture
def cron(tmp_path: Path, database) -> tuple[dict, Path, Where]:
    env = cli_env(database.url, tmp_path / "cardctl.key")
    init = subprocess.run([*cardctl_command(), "init"], env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert init.returncode == 0, init.stderr
    logs = tmp_path / "log"
    logs.mkdir()
    return env, logs, Where(database.url, str(tmp_path / "cardctl.key"))


def test_the_shipped_crontab_line_uses_quiet():
    assert " -q " in f" {crontab_command()} " or " --quiet " in f" {crontab_command()} "


def test_cron_with_nothing_due_leaves_stderr_empty(cron):
    env, logs, _where = cron
    for _run in range(3):  # every five minutes, nothing due
        assert run_cron_line(env, logs) == 0
    assert (logs / "expire.err").read_text() == ""
    assert (logs / "expire.jsonl").read_text() == ""


def test_cron_records_a_due_lock_on_stdout_and_still_nothing_on_stderr(cron):
    env, logs, where = cron
    ctx = where.context("tester")
    cards = seed_active_cards(ctx, 2, GOOD_PIN)
    seed_pin_locks(ctx, cards, [datetime.now(timezone.utc) - timedelta(hours=1)] * 2)
    assert run_cron_line(env, logs) == 0
    assert (logs / "expire.err").read_text() == ""
    assert [line.count('"expired"') for line in (logs / "expire.jsonl").read_text().splitlines()] == [1, 1]


def test_cron_still_writes_an_error_to_stderr_with_quiet(cron, tmp_path):
    env, logs, _where = cron
    broken = {**env, "CARDCTL_KEY_FILE": str(tmp_path / "missing.key")}
    assert run_cron_line(broken, logs) == 1
    error = (logs / "expire.err").read_text()
    assert error.startswith("cardctl: ") and len(error.splitlines()) == 1


# --- in process: every command that confirms, and what -q keeps ------------------------------


@pytest.mark.parametrize("args, said", [
    (("unlock", "--expired"), "expired lock(s) recorded as ended"),
    (("policy", "set", "4403", "--max-attempts", "5"), "policy 4403"),
    (("issue", "B00000001", "--name", "赵六", "--id-number", HOLDERS[1][2], "--region", "440305"), "issued"),
    (("audit", "verify"), "audit chain intact"),
    (("init",), "schema"),
])
def test_quiet_drops_the_confirmation_line(run, active_card, args, said):
    if args[0] != "issue":  # the others say the same again when run twice
        assert said in run(*args).stderr
    quiet = run(*args, "-q")
    assert quiet.exit_code == 0, quiet.stderr
    assert quiet.stderr == ""


def test_quiet_is_also_spelled_out(run, active_card):
    assert run("unlock", "--expired", "--quiet").stderr == ""


def test_quiet_keeps_the_error_and_the_failed_rows(run, active_card):
    result = run("unlock", active_card, "NOPE00001", "--reason", "counter", "-q")
    assert result.exit_code == 7
    assert result.stderr.startswith("cardctl: ") and "failed" in result.stderr
    assert "NOPE00001" in result.stdout


def test_quiet_keeps_the_rows_of_an_import_that_failed(run, tmp_path):
    source = tmp_path / "cards.csv"
    source.write_text("card_no,name,id_number,region\nB00000002,钱七,11010519491231002Y,110105\n", encoding="utf-8")
    result = run("import", str(source), "-q")
    assert result.exit_code == 7
    assert "line 2" in result.stderr and "110***********002Y" in result.stderr


def test_quiet_is_reset_for_the_next_command_in_the_same_process(run, active_card):
    assert run("unlock", "--expired", "-q").stderr == ""
    assert "expired lock(s) recorded as ended" in run("unlock", "--expired").stderr


def test_every_command_documents_quiet_in_its_help():
    from cardctl.cli import app
    import typer

    group = typer.main.get_command(app)
    seen = 0
    for name, command in group.commands.items():
        for sub in getattr(command, "commands", {None: command}).values():
            assert any("--quiet" in param.opts and "-q" in param.opts for param in sub.params), (name, sub)
            seen += 1
    assert seen > 20
