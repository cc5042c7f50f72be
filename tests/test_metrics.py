"""``cardctl metrics``: the Prometheus text format, read back with the library's own parser.

A known population (every card status, every lock kind, an escalated PIN lock, a PIN lock
past its end the sweep has not recorded, a temporary loss report past its lapse) is counted
as ``status`` decides it at read time, on both engines; the start-up path and SQLAlchemy
Core give the same figures; the last sweep is found among other batch runs. A textfile is
replaced whole or not at all, a closed pipe is a clean exit, and no card number, name or ID
number ever reaches the output (docs/domain.md, "Metrics").
"""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cardctl.domain.events import Action, Outcome
from cardctl.domain.roles import Role
from cardctl.services.arrears import Debtor, add_arrears
from cardctl.services.cards import activate, parse_card_input
from cardctl.services.context import Context
from cardctl.services.lifecycle import lock_admin
from cardctl.services.loss import report_lost
from cardctl.services.metrics import gather
from cardctl.services.verify import verify_pin
from cardctl.storage.audit import EventDraft
from conftest import GOOD_PIN, HOLDERS, issue
from realproc import TIMEOUT, cardctl_command, cli_env
from realproc import run as run_process

MORE = [("ZN2699519", "唐磊", "51010719841206311X", "510107"), ("C42780183", "萧霞", "510107197806161789", "510107"),
        ("D52623652", "林欣怡", "510107201409246067", "510107")]
EVERY = HOLDERS + MORE
DAY = 86400.0


def parsed(text: str) -> dict[str, dict[tuple, float]]:
    """{family: {sorted label pairs: value}}, read by prometheus_client's own parser."""
    families = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        assert family.documentation, family.name
        families[family.name] = {tuple(sorted(sample.labels.items())): sample.value for sample in family.samples}
    return families


@pytest.fixture
def population(ctx: Context, clock) -> Context:
    """Eight days of a small office: see the expected figures in the first test."""
    for card_no, name, id_number, region in EVERY:
        issue(ctx, card_no, name, id_number, region)
    for card_no, name, id_number, region in EVERY[:-1]:  # D52623652 stays pending
        person = parse_card_input({"card_no": card_no, "name": name, "id_number": id_number, "region": region},
                                  clock().date()).id_number
        activate(ctx, card_no, person, GOOD_PIN)
    for _ in range(3):
        verify_pin(ctx, "A00000001", "000000")  # a 24-hour PIN lock, 8 days ago
    report_lost(ctx, "A00000003", temporary=True)  # lapses after 7 days: active again by now
    clock.advance(days=8)
    for _ in range(3):
        verify_pin(ctx, "A00000002", "000000")  # a PIN lock now, escalated below
    lock_admin(ctx, "ZN2699519", "case 2026-118")
    add_arrears(ctx, Debtor(card_no="C42780183"), 500, None)
    report_lost(ctx, "C42780183", temporary=True)
    clock.advance(hours=1)
    return ctx


def escalate(database, card_no: str) -> None:
    """As escalation leaves it: a PIN lock that only a counter visit ends (docs/domain.md)."""
    database.run_sql("UPDATE locks SET escalated = true, ends_at = NULL WHERE card_no = :card AND kind = 'pin' "
                     "AND ended_at IS NULL", card=card_no)


def test_the_figures_count_the_population_as_status_decides_it_now(population, database, run, clock):
    escalate(database, "A00000002")
    done = run("metrics")

    assert done.exit_code == 0, done.output
    figures = parsed(done.stdout)
    assert figures["cardctl_cards"] == {
        (("region", "110105"), ("status", "active")): 1,  # its PIN lock ended by itself: still active
        (("region", "330106"), ("status", "active")): 1,  # a temporary loss report past its lapse
        (("region", "440305"), ("status", "active")): 1,
        (("region", "510107"), ("status", "active")): 1,
        (("region", "510107"), ("status", "lost")): 1,
        (("region", "510107"), ("status", "pending")): 1,
    }
    assert figures["cardctl_cards_locked"] == {(("kind", "pin"),): 1, (("kind", "arrears"),): 1,
                                               (("kind", "admin"),): 1}
    assert figures["cardctl_cards_locked_escalated"] == {(): 1}
    # A00000001's lock ended 7 days and 1 hour ago, and no sweep has recorded it
    assert figures["cardctl_locks_expired_unrecorded"] == {(): 1}
    assert figures["cardctl_locks_expired_unrecorded_oldest_age_seconds"] == {(): 7 * DAY + 3600}
    assert figures["cardctl_locks_opened_last_24h"] == {(("kind", "pin"),): 1, (("kind", "arrears"),): 1,
                                                        (("kind", "admin"),): 1}
    assert figures["cardctl_audit_head_seq"] == {(): database.count("events")}
    assert figures["cardctl_audit_head_timestamp_seconds"] == {(): (clock() - timedelta(hours=1)).timestamp()}
    assert math.isnan(figures["cardctl_last_sweep_timestamp_seconds"][()])


def test_a_lock_is_counted_by_the_time_it_is_read_not_by_what_was_recorded(population, run, clock):
    clock.advance(days=1)  # A00000002's 24-hour lock (not escalated here) is past its end too
    figures = parsed(run("metrics").stdout)

    assert figures["cardctl_cards_locked"][(("kind", "pin"),)] == 0
    assert figures["cardctl_locks_expired_unrecorded"] == {(): 2}
    assert figures["cardctl_locks_expired_unrecorded_oldest_age_seconds"] == {(): 8 * DAY + 3600}
    assert figures["cardctl_locks_opened_last_24h"] == {(("kind", "pin"),): 0, (("kind", "arrears"),): 0,
                                                        (("kind", "admin"),): 0}


def test_the_sweep_records_what_was_lag_and_the_lag_is_gone(population, run, clock):
    assert run("unlock", "--expired", "-q").exit_code == 0
    figures = parsed(run("metrics").stdout)

    assert figures["cardctl_locks_expired_unrecorded"] == {(): 0}
    assert figures["cardctl_locks_expired_unrecorded_oldest_age_seconds"] == {(): 0}
    # the sweep that just ran is the last sweep: its run's batch.end (services/runs.py)
    assert figures["cardctl_last_sweep_timestamp_seconds"] == {(): clock().timestamp()}


def batch_end(ctx: Context, run_id: str, command: str) -> None:
    """A batch run's last event, as services/runs.py writes it (docs/domain.md, "Batch provenance")."""
    ctx.run_id = run_id
    try:
        with ctx.write() as tx:
            tx.record([EventDraft(Action.BATCH_END, Outcome.OK,
                                  detail={"command": command, "rows": 1, "results": {"unlocked": 1}})], ctx.now())
    finally:
        ctx.run_id = None


def test_the_last_sweep_is_the_newest_batch_end_of_unlock_expired_among_other_runs(ctx, run, clock):
    batch_end(ctx, "20261123T020000Z-00000001", "unlock --expired")
    clock.advance(minutes=5)
    swept = clock()
    batch_end(ctx, "20261123T020500Z-00000002", "unlock --expired")
    for n in range(70):  # more than one page of other batches after it
        clock.advance(seconds=1)
        batch_end(ctx, f"20261123T0206{n:02d}Z-{n:08x}", "import" if n % 2 else "unlock --from")

    figures = parsed(run("metrics").stdout)

    assert figures["cardctl_last_sweep_timestamp_seconds"] == {(): swept.timestamp()}


def test_the_start_up_path_and_core_give_the_same_figures(population, database, engine):
    escalate(database, "A00000002")
    batch_end(population, "20261201T000000Z-0000000a", "unlock --expired")
    core = gather(population)
    quick = Context.open_quick(population.settings, population.clock, Role.AUDITOR)

    if engine == "postgresql":
        assert quick is None  # the start-up path serves SQLite files only
        return
    assert quick is not None and quick.source is quick.db  # really the sqlite3 path
    assert gather(quick) == core
    assert core.escalated == 1 and core.unrecorded == 1 and core.last_sweep_at is not None


def test_the_output_names_no_card_holder_or_id_number(population, run):
    text = run("metrics").stdout

    for card_no, name, id_number, _region in EVERY:
        assert card_no not in text and name not in text
        assert id_number[-4:] not in text.replace("cardctl", "")  # not even the masked ID's tail
    labels = {key for family in text_string_to_metric_families(text) for sample in family.samples
              for key in sample.labels}
    assert labels == {"region", "status", "kind"}


@pytest.mark.sqlite_only("on SQLite the acting login is the OS user, which the test can choose")
def test_an_auditor_may_read_the_metrics_and_a_stranger_may_not(population, run, monkeypatch):
    from cardctl.services.operators import add_operator

    monkeypatch.setattr("cardctl.config.os_login_exists", lambda _login: True)
    add_operator(population, "auditor1", Role.AUDITOR)
    monkeypatch.setattr("cardctl.config.os_user", lambda: "auditor1")
    done = run("metrics")

    assert done.exit_code == 0, done.output
    assert "cardctl_cards_locked" in done.stdout
    monkeypatch.setattr("cardctl.config.os_user", lambda: "stranger")
    refused = run("metrics")
    assert refused.exit_code == 6
    assert refused.stdout == ""


# --- the textfile ---------------------------------------------------------------------------------


def test_the_textfile_is_replaced_whole_and_readable_by_the_exporter(population, run, tmp_path):
    target = tmp_path / "cardctl.prom"
    target.write_text("# the previous scrape\n")

    done = run("metrics", "--textfile", str(target))

    assert done.exit_code == 0, done.output
    assert done.stdout == ""
    assert "cardctl_cards_locked" in parsed(target.read_text())
    assert target.stat().st_mode & 0o777 == 0o644 & ~current_umask()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_a_textfile_of_dash_is_standard_output_as_for_every_output_option(population, run):
    # found by the fuzzer: '-' reached the temporary-file code, which asked stdout for a file descriptor
    done = run("metrics", "--textfile", "-")

    assert done.exit_code == 0, done.output
    assert "cardctl_cards_locked" in parsed(done.stdout)


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def disk_full(_fd):
    raise OSError(28, "No space left on device")


def ctrl_c(_fd):
    raise KeyboardInterrupt


@pytest.mark.parametrize(("failure", "code", "said"), [(disk_full, 1, "No space left on device"),
                                                        (ctrl_c, 130, "interrupted")])
def test_a_textfile_write_that_fails_leaves_the_old_file(population, run, tmp_path, monkeypatch, failure, code,
                                                         said):
    target = tmp_path / "cardctl.prom"
    target.write_text("cardctl_audit_head_seq 41\n")

    monkeypatch.setattr("cardctl.output_file.os.fsync", failure)  # the new text is written, not yet synced
    done = run("metrics", "--textfile", str(target))

    assert done.exit_code == code
    assert said in done.output
    assert target.read_text() == "cardctl_audit_head_seq 41\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_textfile_naming_the_database_or_the_key_is_refused(population, run, settings, database):
    protected = [str(settings.key_file)] + ([database.url] if database.engine == "sqlite" else [])
    for path in protected:
        before = Path(path).read_bytes()
        done = run("metrics", "--textfile", path)

        assert done.exit_code == 2
        assert "one of cardctl's own files" in done.output
        assert Path(path).read_bytes() == before


def test_a_scrape_is_not_held_up_by_a_writer(population, run, database):
    with database.hold_write_lock():
        done = run("metrics")

    assert done.exit_code == 0, done.output
    assert "cardctl_audit_head_seq" in done.stdout


# --- real processes: a closed pipe, a missing database, the start-up path's imports --------------


@pytest.fixture
def env(database, tmp_path) -> dict:
    env = cli_env(database.url, tmp_path / "cardctl.key", CARDCTL_LANG="en")
    assert run_process(env, "init").returncode == 0
    return env


def shell(env: dict, pipeline: str) -> subprocess.CompletedProcess:
    command = " ".join(shlex.quote(part) for part in [*cardctl_command(), "metrics"])
    return subprocess.run(["bash", "-c", pipeline.format(cardctl=command) + "; exit ${PIPESTATUS[0]}"], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)


@pytest.mark.parametrize("reader", ["head -1", "true"])
def test_a_closed_pipe_is_a_clean_exit(env, reader):
    # `true` exits before cardctl writes a byte: the write meets a closed pipe for certain
    done = shell(env, f"{{cardctl}} | {reader}")

    assert done.returncode == 0
    assert done.stderr == ""
    if reader == "head -1":
        assert done.stdout.startswith("# HELP cardctl_")


def test_an_auditor_key_file_is_enough(env, tmp_path):
    auditor_key = tmp_path / "auditor.key"
    assert run_process(env, "key", "export", "--role", "auditor", str(auditor_key)).returncode == 0
    done = run_process({**env, "CARDCTL_KEY_FILE": str(auditor_key)}, "metrics")

    assert done.returncode == 0, done.stderr
    assert parsed(done.stdout)["cardctl_audit_head_seq"] == {(): 1}


def test_a_missing_database_is_exit_1_and_keeps_the_old_textfile(env, tmp_path):
    target = tmp_path / "cardctl.prom"
    target.write_text("cardctl_audit_head_seq 7\n")
    done = run_process({**env, "CARDCTL_DB": str(tmp_path / "gone.db")}, "metrics", "--textfile", str(target))

    assert done.returncode == 1
    assert done.stderr.startswith("cardctl: database ") and "does not exist" in done.stderr
    assert done.stdout == ""
    assert target.read_text() == "cardctl_audit_head_seq 7\n"


def test_a_scrape_on_sqlite_loads_no_sqlalchemy(env, tmp_path, engine):
    from test_startup import PROBE

    out = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", PROBE, str(out), "metrics"], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)

    assert done.returncode == 0, done.stderr
    assert "cardctl_audit_head_seq 1.0" in done.stdout
    modules = set(json.loads(out.read_text()))
    assert ("sqlalchemy" in modules) is (engine == "postgresql")
    assert "bcrypt" not in modules and "alembic" not in modules


def test_the_shipped_crontab_line_writes_a_textfile_node_exporter_can_read(env, tmp_path):
    line = next(line for line in (Path(__file__).resolve().parent.parent / "examples" / "crontab").read_text()
                .splitlines() if not line.startswith("#") and " metrics " in line)
    command = line.split(None, 5)[5]  # after the five time fields, as cron runs it: through sh
    target = tmp_path / "textfile" / "cardctl.prom"
    target.parent.mkdir()
    command = (command.replace("/var/lib/node_exporter/textfile", str(target.parent))
               .replace("/var/log/cardctl", str(tmp_path)))
    command = " ".join(map(shlex.quote, cardctl_command())) + command.removeprefix("cardctl")
    for _minute in range(2):  # the second run replaces the first one's file
        assert subprocess.run(["sh", "-c", command], env=env, timeout=TIMEOUT).returncode == 0

    assert parsed(target.read_text())["cardctl_audit_head_seq"] == {(): 1}
    assert [p.name for p in target.parent.iterdir()] == ["cardctl.prom"]
    assert (tmp_path / "metrics.err").read_text() == ""
