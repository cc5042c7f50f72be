"""Who may do what: auditor reads, staff acts on cards, admin sets policy, admin locks and operators.

A refused action exits 6, names the role it needs, changes nothing but the audit trail, where
it is recorded as ``access.refused``. Every test runs on SQLite (identity: the OS login) and on
PostgreSQL (identity: the database login).
"""

from __future__ import annotations

import json
import os
import pwd
from datetime import date
from typing import Iterator

import pytest
import typer.main

from cardctl.cli import app
from cardctl.config import os_user
from cardctl.domain.identity import make_id_number
from helpers_security import (CARD, ID_NUMBER, OTHER, OTHER_ID, PIN, Office, changed_tables, new_events)

NEW_ID = make_id_number("110105", date(1981, 2, 3), 11)
RANKS = {"auditor": 0, "staff": 1, "admin": 2}


@pytest.fixture
def office(database, tmp_path, monkeypatch) -> Iterator[Office]:
    """An initialised database with two cards (CARD active), and one operator of each role."""
    office = Office(database, tmp_path, monkeypatch)
    office.ok("init")
    office.ok("issue", CARD, "--name", "于凤英", "--id-number", ID_NUMBER, "--region", "110105")
    office.ok("issue", OTHER, "--name", "李娜", "--id-number", OTHER_ID, "--region", "310115")
    office.ok("activate", CARD, "--id-number", ID_NUMBER, "--pin-stdin", input=PIN + "\n")
    office.logins = {"auditor": office.add_operator("aud", "auditor"),
                     "staff": office.add_operator("stf", "staff"),
                     "admin": office.add_operator("adm", "admin")}
    yield office
    office.close()


# (the command, its arguments, stdin, the role it needs). {AUD} and {NEW} are logins;
# {PW} is --password-stdin on PostgreSQL, where a new operator is a new database login.
MATRIX = [
    ("status", [CARD], None, "auditor"),
    ("report", ["-o", "json"], None, "auditor"),
    ("metrics", [], None, "auditor"),
    ("audit verify", [], None, "auditor"),
    ("audit log", [], None, "auditor"),
    ("audit export", ["-"], None, "auditor"),
    ("audit sign", [], None, "staff"),
    ("policy show", [], None, "auditor"),
    ("settings show", [], None, "auditor"),
    ("verify", [CARD, "--pin-stdin"], PIN + "\n", "staff"),
    ("issue", ["N00000001", "--name", "x", "--id-number", NEW_ID, "--region", "110105"], None, "staff"),
    ("import", ["-"], f"card_no,name,id_number,region\nN00000002,y,{NEW_ID},110105\n", "staff"),
    ("activate", [OTHER, "--id-number", OTHER_ID, "--pin-stdin"], "702614\n", "staff"),
    ("unlock", [CARD, "--reason", "holder verified"], None, "staff"),
    ("unlock", ["--expired"], None, "staff"),
    ("reset-pin", [CARD, "--id-number", ID_NUMBER, "--pin-stdin"], "702614\n", "staff"),
    ("change-pin", [CARD, "--pin-stdin"], f"{PIN}\n702614\n", "staff"),
    ("report-lost", [CARD, "--temporary"], None, "staff"),
    ("cancel-loss", [CARD, "--id-number", ID_NUMBER], None, "staff"),
    ("reissue", [CARD, "--new-card-no", "R00000001", "--id-number", ID_NUMBER, "--damaged"], None, "staff"),
    ("add-arrears", [CARD, "--amount", "10"], None, "staff"),
    ("pay-arrears", [CARD, "--amount", "10"], None, "staff"),
    ("lock", [CARD, "--reason", "case 2026-118"], None, "admin"),
    ("unlock", [CARD, "--reason", "case closed", "--kind", "admin"], None, "admin"),
    ("policy set", ["default", "--max-attempts", "5"], None, "admin"),
    ("settings set", ["bcrypt-cost", "13", "--yes"], None, "admin"),
    ("operator list", [], None, "admin"),
    ("operator add", ["{NEW}", "--role", "auditor", "{PW}"], "pw for a new login\n", "admin"),
    ("operator set-role", ["{AUD}", "--role", "staff"], None, "admin"),
    ("operator disable", ["{AUD}", "--reason", "left the office"], None, "admin"),
    ("init", [], None, "admin"),
]
IDS = [" ".join([row[0], *(a for a in row[1] if a.startswith("--"))][:3]) for row in MATRIX]


def _argv(office: Office, command: str, args: list[str]) -> list[str]:
    out = command.split()
    for arg in args:
        if arg == "{PW}":
            out += ["--password-stdin"] if office.postgresql else []
        else:
            out.append(arg.replace("{AUD}", office.logins["auditor"]).replace("{NEW}", office.name("newbie")))
    return out


def _refused(office: Office, argv: list[str], stdin, login: str, needed: str, recorded: bool) -> None:
    before, count = office.dump(), len(office.events())
    result = office(*argv, input=stdin, as_=login)
    assert result.exit_code == 6, (argv, login, result.stderr)
    assert f"needs role {needed}" in result.stderr and result.stdout == ""
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    after = office.dump()
    if not recorded:
        assert after == before
        return
    assert changed_tables(before, after) <= {"events", "audit_head"}
    (event,) = new_events(office, count)
    assert (event["action"], event["outcome"]) == ("access.refused", "refused")
    assert event["detail"]["login"] == login and event["detail"]["needed"] == needed


@pytest.mark.parametrize("command, args, stdin, needed", MATRIX, ids=IDS)
def test_each_command_is_refused_below_its_role_and_allowed_at_it(office, command, args, stdin, needed):
    argv = _argv(office, command, args)
    stranger = office.stranger()
    # a login that is no operator: on PostgreSQL it cannot even reach the audit trail to be recorded
    _refused(office, argv, stdin, stranger, needed, recorded=not office.postgresql)
    for role, login in office.logins.items():
        if RANKS[role] < RANKS[needed]:
            _refused(office, argv, stdin, login, needed, recorded=True)
    count = len(office.events())
    allowed = office(*argv, input=stdin, as_=office.logins[needed])
    assert "needs role" not in allowed.stderr, allowed.stderr
    assert all(e["action"] != "access.refused" for e in new_events(office, count))
    assert office("audit", "verify").exit_code == 0


def _command_paths(group, prefix: str = "") -> set[str]:
    paths = set()
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            paths |= _command_paths(command, f"{prefix}{name} ")
        else:
            paths.add(prefix + name)
    return paths


# commands that open no database: they work on key files alone (README, "Files and keys")
NO_DATABASE = {"key export", "key show", "key new-signing"}


def test_every_command_has_a_row_in_the_role_matrix():
    declared = {row[0] for row in MATRIX} | NO_DATABASE
    assert _command_paths(typer.main.get_command(app)) == declared


def test_the_refusal_says_which_role_is_needed_and_which_the_login_has(office):
    result = office("unlock", CARD, "--reason", "x", as_=office.logins["auditor"])
    assert result.stderr.strip() == f"cardctl: unlock needs role staff; {office.logins['auditor']} is auditor"
    result = office("policy", "set", "default", "--max-attempts", "4", as_=office.logins["staff"])
    assert result.stderr.strip() == f"cardctl: policy set needs role admin; {office.logins['staff']} is staff"


def test_whoever_runs_init_first_is_admin_and_it_is_recorded(office):
    operators = {row["login"]: row for row in json.loads(office.ok("operator", "list", "-o", "json").stdout)}
    assert operators[office.admin]["role"] == "admin" and operators[office.admin]["created_by"] == office.admin
    (init,) = [e for e in office.events() if e["action"] == "db.init"]
    assert init["detail"]["bootstrap_admin"] == office.admin


def test_a_second_init_by_the_admin_adds_no_admin(office):
    (report,) = json.loads(office.ok("init", "-o", "json").stdout)
    assert report["bootstrap_admin"] is None


def test_a_disabled_operator_is_refused_even_for_reading(office):
    staff = office.logins["staff"]
    office.ok("operator", "disable", staff, "--reason", "moved to another branch")
    result = office("status", CARD, as_=staff)
    if office.postgresql:  # the login itself is disabled: the server refuses the connection
        assert result.exit_code == 1 and "not permitted to log in" in result.stderr
    else:
        assert result.exit_code == 6 and f"operator {staff} is disabled" in result.stderr
    listed = {r["login"]: r for r in json.loads(office.ok("operator", "list", "-o", "json").stdout)}
    assert listed[staff]["active"] is False and listed[staff]["disabled_at"]


def test_a_disabled_operator_can_be_added_again_with_a_new_role(office):
    staff = office.logins["staff"]
    office.ok("operator", "disable", staff, "--reason", "on leave")
    office.ok("operator", "add", staff, "--role", "auditor")
    assert office("status", CARD, as_=staff).exit_code == 0
    assert office("unlock", CARD, "--reason", "x", as_=staff).exit_code == 6


def test_set_role_takes_effect_at_once(office):
    auditor = office.logins["auditor"]
    assert office("add-arrears", CARD, "--amount", "5", as_=auditor).exit_code == 6
    office.ok("operator", "set-role", auditor, "--role", "staff")
    done = office("add-arrears", CARD, "--amount", "5", as_=auditor)
    assert done.exit_code == 0, done.stderr
    office.ok("operator", "set-role", auditor, "--role", "auditor")
    assert office("add-arrears", CARD, "--amount", "5", as_=auditor).exit_code == 6


def test_the_last_admin_can_be_neither_disabled_nor_demoted(office):
    office.ok("operator", "disable", office.logins["admin"], "--reason", "one admin is enough")
    before = office.dump()
    for args in (("operator", "disable", office.admin, "--reason", "x"),
                 ("operator", "set-role", office.admin, "--role", "staff")):
        result = office(*args)
        assert result.exit_code == 6 and "last active admin" in result.stderr
    assert office.dump() == before


def test_adding_an_existing_operator_is_refused(office):
    result = office("operator", "add", office.logins["staff"], "--role", "admin")
    assert result.exit_code == 6 and "already an operator (staff)" in result.stderr


def test_an_unknown_operator_is_not_found(office):
    result = office("operator", "set-role", office.name("ghost"), "--role", "staff")
    assert result.exit_code == 5 and "not found" in result.stderr


HOSTILE_NAMES = ["robert'); DROP TABLE events;--", "a b", 'x"y', "", "-rf", "é", "x" * 64,
                 "Admin\x1b[31m", "name\n2", "x;y", "uid:x"]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=range(len(HOSTILE_NAMES)))
def test_hostile_operator_names_are_refused_before_any_sql(office, name):
    before = office.dump()
    result = office("operator", "add", "--role", "staff", "--", name)
    assert result.exit_code == 2, result.stderr
    assert "\x1b" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert office.dump() == before


@pytest.mark.parametrize("name", ["Zhang.Wei", "pg_monitor", "public"])
def test_names_postgresql_cannot_take_are_fine_as_os_logins(office, name):
    office.os_logins.add(name)  # useradd took it
    result = office("operator", "add", name, "--role", "auditor")
    assert result.exit_code == (2 if office.postgresql else 0), result.stderr


def test_the_counter_operator_is_recorded_beside_the_acting_login(office):
    staff = office.logins["staff"]
    assert office("--operator", "clerk-7", "unlock", CARD, "--reason", "checked", as_=staff).exit_code == 0
    event = [e for e in office.events() if e["action"] == "lock.unlock"][-1]
    assert event["operator"] == "clerk-7"
    if not office.postgresql:
        assert event["os_user"] == staff


def test_init_by_someone_who_is_not_admin_is_refused_and_only_recorded(office):
    before, count = office.dump(), len(office.events())
    result = office("init", as_=office.logins["staff"])
    assert result.exit_code == 6 and "init needs role admin" in result.stderr
    assert changed_tables(before, office.dump()) <= {"events", "audit_head"}
    assert [e["action"] for e in new_events(office, count)] == ["access.refused"]


def test_upgrading_a_database_without_operators_makes_the_upgrader_admin(database, tmp_path, monkeypatch):
    from alembic import command
    from sqlalchemy import create_engine

    from cardctl.storage.db import normalise_url
    from cardctl.storage import SCHEMA_REVISION
    from cardctl.storage.schema import alembic_config

    office = Office(database, tmp_path, monkeypatch)
    engine = create_engine(normalise_url(database.url))
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0001")
    engine.dispose()
    (report,) = json.loads(office.ok("init", "-o", "json").stdout)
    assert (report["schema_before"], report["schema"], report["bootstrap_admin"]) == ("0001", SCHEMA_REVISION, office.admin)
    assert office("status", "--summary").exit_code == 0
    office.close()


def test_the_os_login_comes_from_the_uid_not_from_the_environment(monkeypatch):
    monkeypatch.setenv("USER", "mallory")
    monkeypatch.setenv("LOGNAME", "mallory")
    assert os_user() == pwd.getpwuid(os.geteuid()).pw_name
