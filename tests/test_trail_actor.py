"""Who acted is what the system established, and the channel is what the operator may name.

Every event records its ``actor``: the OS user of the process on SQLite, the database login on
PostgreSQL (written by the server). ``--operator`` names the person at the counter beside it.
The actor is hashed with the rest, so an edited actor is named by ``audit verify``; events
written before it existed keep verifying in their older form. ``--channel`` takes the five
channels an operator may name; ``system`` and ``cron`` are cardctl's own.
"""

from __future__ import annotations

import json
from typing import Iterator

import pytest
import typer.main

from cardctl.cli import app
from cardctl.keys import load_keys
from cardctl.storage.audit import chain_hash
from helpers_security import CARD, Office
from test_access import MATRIX, _argv


@pytest.fixture
def office(database, tmp_path, monkeypatch) -> Iterator[Office]:
    office = Office(database, tmp_path, monkeypatch).open_counter()
    office.logins = {"auditor": office.add_operator("aud", "auditor"), "staff": office.add_operator("stf", "staff"),
                     "admin": office.add_operator("adm", "admin")}
    yield office
    office.close()


def test_a_staff_login_acting_as_operator_adm1_is_recorded_as_itself_beside_adm1(office):
    staff = office.logins["staff"]
    result = office("--operator", "adm1", "unlock", CARD, "--reason", "checked", "--channel", "bank", as_=staff)
    assert result.exit_code == 0, result.stderr
    event = office.events()[-1]
    assert (event["action"], event["actor"], event["operator"], event["channel"]) == (
        "lock.unlock", staff, "adm1", "bank")
    assert "Actor" in office("audit", "log", "--card", CARD).stdout
    header, *rows = office("audit", "log", "--card", CARD, "-o", "csv").stdout.splitlines()
    assert header.split(",")[2] == "actor" and rows[-1].split(",")[2:4] == [staff, "adm1"]
    actions = json.loads(office("report", "--section", "actions", "-o", "json").stdout)["sections"]["actions"]
    assert {"actor": staff, "operator": "adm1", "channel": "bank", "action": "lock.unlock", "events": 1,
            "refused": 0} in actions
    assert all(row["actor"] != "adm1" for row in actions)


def test_every_event_has_an_actor(office):
    assert all(event["actor"] for event in office.events())


def test_an_edited_actor_is_named_by_audit_verify(office):
    seq = len(office.events())
    office.database.run_sql("UPDATE events SET actor = 'someone_else' WHERE seq = :seq", seq=seq)
    verified = office("audit", "verify")
    assert verified.exit_code == 6 and f"event {seq} was edited" in verified.stderr


def test_events_written_before_the_actor_existed_keep_verifying(office, tmp_path):
    """An event of schema 0003 has no actor and was hashed without one: rewrite the newest event
    so (as the key holder who wrote it then did), and the trail, its export included, verifies."""
    events = office.events()
    last = events[-1]
    from sqlalchemy import create_engine, select
    from sqlalchemy.pool import NullPool

    from cardctl.storage.db import normalise_url
    from cardctl.storage.tables import events as table

    engine = create_engine(normalise_url(office.database.url), poolclass=NullPool)
    with engine.connect() as conn:
        row = conn.execute(select(table).where(table.c.seq == last["seq"])).mappings().one()
    engine.dispose()
    old = {**row, "actor": None}
    digest = chain_hash(load_keys(office.key_file).audit_key, row["prev_hash"], old)
    office.database.run_sql("UPDATE events SET actor = NULL, hash = :h WHERE seq = :s", h=digest, s=last["seq"])
    office.database.run_sql("UPDATE audit_head SET hash = :h", h=digest)
    assert office("audit", "verify").exit_code == 0
    path = tmp_path / "old.jsonl"
    assert office("audit", "export", str(path)).exit_code == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert "actor" not in lines[-2] and "actor" in lines[-3]
    assert office("audit", "verify", "--file", str(path)).exit_code == 0
    lines[-2]["actor"] = "someone"  # an actor added to an older event changes its hashed content
    path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
    assert office("audit", "verify", "--file", str(path)).exit_code == 6


# --- --channel -------------------------------------------------------------------------------------


def _takes_channel(path: str) -> bool:
    command = typer.main.get_command(app)
    for name in path.split():
        command = command.commands[name]
    return any("--channel" in param.opts for param in command.params)


CHANNEL_ROWS = [row for row in MATRIX if _takes_channel(row[0])]


def test_every_command_with_a_channel_refuses_system_and_cron_and_writes_nothing(office):
    assert len(CHANNEL_ROWS) >= 15
    before = office.dump()
    for command, args, stdin, _needed in CHANNEL_ROWS:
        for channel in ("system", "cron"):
            argv = _argv(office, command, args) + ["--channel", channel]
            result = office(*argv, input=stdin)
            assert result.exit_code == 2, (argv, result.stderr)
            assert "channel must be one of counter, bank, terminal, online, hotline" in result.stderr, argv
    assert office.dump() == before


def test_the_sweep_records_channel_system_and_takes_no_channel(office):
    assert office("unlock", "--expired", "--channel", "counter").exit_code == 2
    assert office("unlock", "--expired").exit_code == 0
