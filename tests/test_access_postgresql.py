"""On PostgreSQL the database itself enforces the roles: a login gets exactly its role's
privileges, so an operator's own SQL client can do no more than cardctl lets it.

These tests run on the PostgreSQL engine only (on SQLite the file's permissions are the
boundary; see docs/security.md).
"""

from __future__ import annotations

import base64
from typing import Iterator

import psycopg
import pytest
from psycopg import errors

from cardctl.storage.pg_access import scram_verifier
from helpers_security import CARD, ID_NUMBER, PASSWORD, Office
from pg_cluster import conninfo

WRITES = {
    "cards": ["INSERT INTO cards SELECT * FROM cards LIMIT 0", "UPDATE cards SET failures = 0",
              "DELETE FROM cards"],
    "events": ["UPDATE events SET reason = 'edited'", "DELETE FROM events"],
    "audit_head": ["UPDATE audit_head SET seq = seq"],
    "locks": ["DELETE FROM locks"],
    "holders": ["UPDATE holders SET name = name", "DELETE FROM holders"],
    "arrears": ["INSERT INTO arrears (holder_id, unit, amount_fen, at, operator) VALUES (NULL, 'x', -1, now(), 'x')",
                "DELETE FROM arrears"],
    "policies": ["UPDATE policies SET max_attempts = 10", "DELETE FROM policies"],
    "operators": ["UPDATE operators SET role = 'admin'", "DELETE FROM operators"],
    "meta": ["UPDATE meta SET value = value", "DELETE FROM meta"],
    "alembic_version": ["UPDATE alembic_version SET version_num = '9999'"],
}
STAFF_MAY = {"UPDATE cards SET failures = 0", "UPDATE holders SET name = name", "UPDATE audit_head SET seq = seq",
             "INSERT INTO cards SELECT * FROM cards LIMIT 0", WRITES["arrears"][0]}  # the ledger only grows
pytestmark = pytest.mark.postgresql_only("on SQLite there are no database logins to grant to")

ADMIN_ALSO_MAY = {"UPDATE policies SET max_attempts = 10", "UPDATE operators SET role = 'admin'"}


@pytest.fixture
def office(engine, database, tmp_path, monkeypatch) -> Iterator[Office]:
    office = Office(database, tmp_path, monkeypatch)
    office.ok("init")
    office.ok("issue", CARD, "--name", "于凤英", "--id-number", ID_NUMBER, "--region", "110105")
    office.logins = {role: office.add_operator(role[:3], role) for role in ("auditor", "staff", "admin")}
    yield office
    office.close()


def connect(office: Office, login: str) -> psycopg.Connection:
    return psycopg.connect(conninfo(office.url_for(login)), autocommit=True)


def attempt(conn: psycopg.Connection, statement: str) -> bool:
    """True if the statement was allowed (run in a transaction that is rolled back)."""
    try:
        with conn.transaction(force_rollback=True):
            conn.execute(statement)
        return True
    except errors.InsufficientPrivilege:
        return False


def allowed_statements(office: Office, role: str) -> set[str]:
    with connect(office, office.logins[role]) as conn:
        return {sql for statements in WRITES.values() for sql in statements if attempt(conn, sql)}


def test_an_auditor_login_cannot_write_anything_even_with_its_own_sql_client(office):
    assert allowed_statements(office, "auditor") == set()


def test_an_auditor_login_can_read_every_table(office):
    with connect(office, office.logins["auditor"]) as conn:
        for table in WRITES:
            conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()


def test_a_staff_login_writes_card_data_but_never_edits_or_deletes_an_event(office):
    assert allowed_statements(office, "staff") == STAFF_MAY


def test_an_admin_login_may_also_change_policy_and_operators_but_still_delete_nothing(office):
    assert allowed_statements(office, "admin") == STAFF_MAY | ADMIN_ALSO_MAY


def test_an_auditors_refusal_is_chained_into_the_trail_by_the_definer_function(office):
    auditor = office.logins["auditor"]
    assert office("unlock", CARD, "--reason", "x", as_=auditor).exit_code == 6
    (event,) = [e for e in office.events() if e["action"] == "access.refused"]
    assert event["detail"]["login"] == auditor
    assert office("audit", "verify").exit_code == 0


def test_a_login_cannot_record_a_refusal_under_another_login(office):
    with connect(office, office.logins["auditor"]) as conn:
        prev = conn.execute("SELECT hash FROM audit_head").fetchone()[0]
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT cardctl_record_refusal(%s, now()::timestamp, 'x', 'x', 'counter', 'x', %s, %s, %s)",
                         (office.logins["staff"], '{"login":"%s"}' % office.logins["staff"], prev, "0" * 64))


def test_a_refusal_forged_without_the_key_breaks_the_chain_visibly(office):
    auditor = office.logins["auditor"]
    with connect(office, auditor) as conn:
        prev = conn.execute("SELECT hash FROM audit_head").fetchone()[0]
        seq = conn.execute("SELECT cardctl_record_refusal(%s, now()::timestamp, 'x', 'x', 'counter', 'x', %s, %s, %s)",
                           (auditor, '{"login":"%s"}' % auditor, prev, "f" * 64)).fetchone()[0]
    result = office("audit", "verify")
    assert result.exit_code == 6 and f"event {seq} was edited" in result.stderr


def test_the_password_reaches_the_server_only_as_a_scram_verifier(office):
    with psycopg.connect(conninfo(office.url_for("postgres"), "postgres"), autocommit=True) as conn:
        stored = conn.execute("SELECT rolpassword FROM pg_authid WHERE rolname = %s",
                              (office.logins["staff"],)).fetchone()[0]
    assert stored.startswith("SCRAM-SHA-256$4096:")
    salt = base64.b64decode(stored.split(":", 1)[1].split("$", 1)[0])
    assert stored == scram_verifier(PASSWORD, salt)  # the verifier of the password, not of some string


def test_a_disabled_login_can_no_longer_connect(office):
    staff = office.logins["staff"]
    office.ok("operator", "disable", staff, "--reason", "left")
    with pytest.raises(psycopg.OperationalError, match="not permitted to log in"):
        connect(office, staff).close()


def test_set_role_moves_the_login_between_groups(office):
    auditor = office.logins["auditor"]
    office.ok("operator", "set-role", auditor, "--role", "staff")
    assert allowed_statements(office, "auditor") == STAFF_MAY
    office.ok("operator", "set-role", auditor, "--role", "auditor")
    assert allowed_statements(office, "auditor") == set()


def test_an_admin_login_can_add_operators_itself(office):
    admin = office.logins["admin"]
    newcomer = office.name("new")
    result = office("operator", "add", newcomer, "--role", "auditor", "--password-stdin", input="pw\n", as_=admin)
    assert result.exit_code == 0, result.stderr
    assert office("status", CARD, as_=newcomer).exit_code == 0


@pytest.mark.parametrize("whose", ["group", "superuser"])
def test_a_group_role_or_a_superuser_cannot_be_made_an_operator(office, whose):
    from sqlalchemy.engine import make_url

    name = f"{make_url(office.database.url).database}_staff" if whose == "group" else "postgres"
    before = office.dump()
    result = office("operator", "add", name, "--role", "auditor")
    assert result.exit_code == 6 and ("group roles" in result.stderr or "superuser" in result.stderr)
    assert office.dump() == before
