"""On PostgreSQL the database itself enforces the roles: a login gets exactly its role's
privileges, so an operator's own SQL client can do no more than cardctl lets it.

These tests run on the PostgreSQL engine only (on SQLite the file's permissions are the
boundary; see docs/security.md).
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Iterator

import psycopg
import pytest
from psycopg import errors

from cardctl.keys import load_keys
from cardctl.storage.audit import chain_hash
from cardctl.storage.pg_access import scram_verifier
from helpers_security import CARD, ID_NUMBER, OTHER, OTHER_ID, PASSWORD, Office
from pg_cluster import conninfo

WRITES = {
    "cards": ["INSERT INTO cards SELECT * FROM cards LIMIT 0", "UPDATE cards SET failures = 0",
              "DELETE FROM cards"],
    "events": ["UPDATE events SET reason = 'edited'", "DELETE FROM events"],
    "audit_head": ["UPDATE audit_head SET seq = seq", "UPDATE audit_head SET seq = seq - 1, hash = 'f'",
                   "DELETE FROM audit_head"],
    "locks": ["DELETE FROM locks", "UPDATE locks SET ended_at = NULL WHERE false"],
    "holders": ["UPDATE holders SET name = name", "DELETE FROM holders"],
    "arrears": ["INSERT INTO arrears (holder_id, unit, amount_fen, at, operator) VALUES (NULL, 'x', -1, now(), 'x')",
                "DELETE FROM arrears"],
    "policies": ["UPDATE policies SET max_attempts = 10", "DELETE FROM policies"],
    "operators": ["UPDATE operators SET role = 'admin'", "DELETE FROM operators"],
    "meta": ["UPDATE meta SET value = value", "DELETE FROM meta"],
    "alembic_version": ["UPDATE alembic_version SET version_num = '9999'"],
}
# the head moves only with an appended event (the events trigger): no login may set it
STAFF_MAY = {"UPDATE cards SET failures = 0", "UPDATE holders SET name = name", WRITES["locks"][1],
             "INSERT INTO cards SELECT * FROM cards LIMIT 0", WRITES["arrears"][0]}  # the ledger only grows
pytestmark = pytest.mark.postgresql_only("on SQLite there are no database logins to grant to")

# meta: the settings rows only (row security; test_an_admin_login_cannot_touch_the_key_fingerprint)
ADMIN_ALSO_MAY = {"UPDATE policies SET max_attempts = 10", "UPDATE operators SET role = 'admin'",
                  "UPDATE meta SET value = value"}


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


def test_an_admin_login_cannot_touch_the_key_fingerprint(office):
    """An admin may change the settings in meta (cardctl settings set), with its own psql too, but no
    other row: not the key fingerprint every client checks its key file against."""
    before = office.dump()["meta"]
    with connect(office, office.logins["admin"]) as conn:
        assert conn.execute("UPDATE meta SET value = 'forged' WHERE key = 'key_fingerprint'").rowcount == 0
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("INSERT INTO meta (key, value) VALUES ('key_fingerprint2', 'x')")
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("UPDATE meta SET key = 'x' WHERE key = 'bcrypt_cost'")
        assert conn.execute("SELECT count(*) FROM meta").fetchone()[0] == len(before)  # reading is untouched
    assert office.dump()["meta"] == before
    assert office("status", CARD).exit_code == 0


def test_an_auditors_refusal_is_chained_into_the_trail_by_the_definer_function(office):
    auditor = office.logins["auditor"]
    assert office("unlock", CARD, "--reason", "x", as_=auditor).exit_code == 6
    (event,) = [e for e in office.events() if e["action"] == "access.refused"]
    assert event["detail"]["login"] == auditor
    assert office("audit", "verify").exit_code == 0


def test_a_login_cannot_record_a_refusal_under_another_login(office):
    staff = office.logins["staff"]
    before = office.dump()
    with connect(office, office.logins["auditor"]) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("SELECT cardctl_record_refusal('x', 'x', 'counter', 'x', %s)", ('{"login":"%s"}' % staff,))
    assert office.dump() == before


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


# --- no login of any role reaches the owner, moves the head or edits the trail ----------------------


def _role_names(office: Office) -> dict[str, str]:
    from sqlalchemy.engine import make_url

    database = make_url(office.database.url).database
    return {"owner": office.admin, **{role: f"{database}_{role}" for role in ("auditor", "staff", "admin", "manager")}}


ROLE_ATTACKS = [
    'GRANT "{owner}" TO "{me}"', 'GRANT "{admin}" TO "{me}"', 'GRANT "{manager}" TO "{me}"',
    'SET ROLE "{owner}"', 'SET ROLE "{manager}"',
    'ALTER ROLE "{me}" CREATEROLE', 'ALTER ROLE "{admin}" LOGIN', "ALTER ROLE \"{manager}\" LOGIN PASSWORD 'x'",
    'CREATE ROLE "{me}_2" LOGIN',
    "UPDATE events SET reason = 'edited'", "DELETE FROM events", "TRUNCATE events",
    "UPDATE audit_head SET seq = seq - 1", "DELETE FROM audit_head", "DELETE FROM locks",
    "ALTER TABLE events DISABLE TRIGGER events_append", "DROP TRIGGER events_append ON events",
    "SELECT key FROM cardctl_chain_key", "DELETE FROM operator_logins",
]


@pytest.mark.parametrize("role", ["auditor", "staff", "admin"])
def test_no_login_of_any_role_can_reach_the_owner_change_the_trail_or_make_roles(office, role):
    me = office.logins[role]
    names = {**_role_names(office), "me": me}
    before = office.dump()
    with connect(office, me) as conn:
        allowed = [sql for sql in (attack.format(**names) for attack in ROLE_ATTACKS) if attempt(conn, sql)]
        # and for real, outside a transaction that is rolled back anyway
        for attack in ROLE_ATTACKS[:3]:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(attack.format(**names))
        member_of = {row[0] for row in conn.execute(
            "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
            "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s", (me,))}
        attributes = conn.execute("SELECT rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = %s", (me,)).fetchone()
    assert allowed == []
    assert member_of == {names[role]} and attributes == (False, False)
    assert office.dump() == before
    assert office("audit", "verify").exit_code == 0


def test_only_an_admin_may_call_the_operator_function_and_only_on_logins_cardctl_created(office):
    names = _role_names(office)
    stranger = office.stranger()
    for role in ("auditor", "staff"):
        with connect(office, office.logins[role]) as conn, pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT cardctl_set_operator(%s, 'admin', NULL)", (office.logins[role],))
    with connect(office, office.logins["admin"]) as conn:
        for target in (names["owner"], names["staff"], names["manager"], stranger, "postgres"):
            refused = attempt(conn, "SELECT cardctl_set_operator('%s', 'admin', NULL)" % target)
            assert not refused or target == names["owner"], target  # the owner's login is left alone
        with pytest.raises(errors.InvalidParameterValue):
            conn.execute("SELECT cardctl_set_operator('x; DROP TABLE events', 'admin', NULL)")
        can_login = dict(conn.execute("SELECT rolname, rolcanlogin FROM pg_roles WHERE rolname = ANY(%s)",
                                      ([names["staff"], names["manager"], stranger],)).fetchall())
    assert can_login == {names["staff"]: False, names["manager"]: False, stranger: True}


def test_operator_add_refuses_an_existing_role_cardctl_did_not_create(office):
    stranger = office.stranger()
    before = office.dump()
    result = office("operator", "add", stranger, "--role", "admin", as_=office.logins["admin"])
    assert result.exit_code == 6 and "not created by cardctl" in result.stderr
    assert office.dump() == before


def test_an_admin_of_one_database_cannot_make_another_databases_group_role_a_login(
        office, new_database, tmp_path, monkeypatch):
    other_folder = tmp_path / "other"
    other_folder.mkdir()
    other = Office(new_database("other"), other_folder, monkeypatch)
    other.ok("init")
    other_names = _role_names(other)
    admin = office.logins["admin"]
    try:
        for role in ("staff", "admin", "manager"):
            result = office("operator", "add", other_names[role], "--role", "auditor", "--password-stdin",
                            input="pw\n", as_=admin)
            assert result.exit_code == 6, result.stderr
            with connect(office, admin) as conn, pytest.raises(errors.InsufficientPrivilege):
                conn.execute("SELECT cardctl_set_operator(%s, 'auditor', NULL)", (other_names[role],))
        with connect(office, admin) as conn:
            logins = conn.execute("SELECT count(*) FROM pg_roles WHERE rolcanlogin AND rolname = ANY(%s)",
                                  ([other_names[r] for r in ("auditor", "staff", "admin", "manager")],)).fetchone()
        assert logins == (0,)
    finally:
        other.close()


def test_upgrading_takes_createrole_and_admin_option_from_operators_made_before(office):
    """Before migration 0004 ``operator add --role admin`` gave the login CREATEROLE and ADMIN
    OPTION on the groups; init takes both away."""
    admin = office.logins["admin"]
    names = _role_names(office)
    with psycopg.connect(conninfo(office.url_for("postgres"), "postgres"), autocommit=True) as su:
        su.execute(f'ALTER ROLE "{admin}" CREATEROLE')
        for role in ("auditor", "staff", "admin"):
            su.execute(f'GRANT "{names[role]}" TO "{admin}" WITH ADMIN OPTION')
    with connect(office, admin) as conn:  # what that admin could do then
        assert attempt(conn, f'GRANT "{names["owner"]}" TO "{admin}"')
    office.ok("init")
    with connect(office, admin) as conn:
        assert not attempt(conn, f'GRANT "{names["owner"]}" TO "{admin}"')
        assert not attempt(conn, f'GRANT "{names["admin"]}" TO "{names["auditor"]}"')
        assert conn.execute("SELECT rolcreaterole FROM pg_roles WHERE rolname = %s", (admin,)).fetchone() == (False,)
    assert office("operator", "add", office.name("later"), "--role", "staff", "--password-stdin",
                  input="pw\n", as_=admin).exit_code == 0


def test_an_admin_login_with_its_own_psql_cannot_rewrite_the_trail(office):
    """The attack of docs/security.md, as typed: take the owner's role, delete the trail and
    rewind the head. Every statement is refused and audit verify still checks every event."""
    import shutil
    import subprocess

    admin = office.logins["admin"]
    owner = _role_names(office)["owner"]
    count = len(office.events())
    script = (f'GRANT "{owner}" TO "{admin}";\nSET ROLE "{owner}";\nDELETE FROM events WHERE seq > 1;\n'
              f"UPDATE audit_head SET seq = 1, hash = (SELECT hash FROM events WHERE seq = 1);\n"
              f"DELETE FROM locks;\nCREATE ROLE helper_{office.token} LOGIN;\n")
    psql = shutil.which("psql") or "/usr/lib/postgresql/15/bin/psql"
    done = subprocess.run([psql, "-X", "-v", "ON_ERROR_STOP=0", conninfo(office.url_for(admin))], input=script,
                          capture_output=True, text=True, timeout=60)
    assert done.stderr.count("ERROR:") == 6 and done.stdout.strip() == "", done.stdout + done.stderr
    assert len(office.events()) == count
    verified = office("audit", "verify")
    assert verified.exit_code == 0 and f"{count} event" in verified.stderr + verified.stdout


# --- who really acted ------------------------------------------------------------------------------


def test_a_staff_login_acting_as_operator_adm1_is_recorded_as_itself(office):
    staff = office.logins["staff"]
    result = office("issue", OTHER, "--name", "李娜", "--id-number", OTHER_ID, "--region", "310115", as_=staff,
                    env={"CARDCTL_OPERATOR": "adm1"})
    assert result.exit_code == 0, result.stderr
    event = office.events()[-1]
    assert (event["action"], event["actor"], event["operator"]) == ("card.issue", staff, "adm1")
    report = json.loads(office("report", "--section", "actions", "-o", "json").stdout)
    assert {"actor": staff, "operator": "adm1", "channel": "counter", "action": "card.issue", "events": 1,
            "refused": 0} in report["sections"]["actions"]
    assert not [row for row in report["sections"]["actions"] if row["actor"] == "adm1"]


@pytest.mark.parametrize("claimed", ["itself", "the admin"])
def test_the_server_writes_the_actor_and_a_client_claiming_another_is_detected(office, claimed):
    """A staff login with the key file writes an event from its own client, hashed with the
    actor it claims. The trigger records the real login; a claim of another name no longer
    matches its hash."""
    staff = office.logins["staff"]
    claim = staff if claimed == "itself" else office.logins["admin"]
    keys = load_keys(office.key_file)
    with connect(office, staff) as conn:
        seq, prev = conn.execute("SELECT seq, hash FROM audit_head").fetchone()
        now = datetime.now(timezone.utc)
        row = {"at": now, "recorded_at": now, "operator": "clerk-1", "os_user": "clerk", "channel": "counter",
               "action": "card.note", "card_no": None, "outcome": "ok", "reason": None, "detail": None,
               "actor": claim}
        conn.execute("INSERT INTO events (seq, at, recorded_at, operator, os_user, channel, action, outcome, "
                     "actor, prev_hash, hash) VALUES (%s, %s, %s, 'clerk-1', 'clerk', 'counter', 'card.note', "
                     "'ok', %s, %s, %s)", (seq + 1, now.replace(tzinfo=None), now.replace(tzinfo=None), claim,
                                           prev, chain_hash(keys.audit_key, prev, row)))
        stored = conn.execute("SELECT actor FROM events WHERE seq = %s", (seq + 1,)).fetchone()[0]
        head = conn.execute("SELECT seq FROM audit_head").fetchone()[0]
    assert (stored, head) == (staff, seq + 1)  # the head moved with the event, by the server
    verified = office("audit", "verify")
    if claimed == "itself":
        assert verified.exit_code == 0, verified.stderr
    else:
        assert verified.exit_code == 6 and f"event {seq + 1} was edited" in verified.stderr


@pytest.mark.parametrize("wrong", ["seq", "prev_hash"])
def test_an_event_that_does_not_continue_the_head_is_refused(office, wrong):
    before = office.dump()
    with connect(office, office.logins["staff"]) as conn:
        seq, prev = conn.execute("SELECT seq, hash FROM audit_head").fetchone()
        values = (seq + 5, prev) if wrong == "seq" else (seq + 1, "0" * 64)
        with pytest.raises(errors.SerializationFailure):
            conn.execute("INSERT INTO events (seq, at, recorded_at, operator, os_user, channel, action, outcome, "
                         "prev_hash, hash) VALUES (%s, now(), now(), 'x', 'x', 'counter', 'x', 'ok', %s, %s)",
                         (*values, "0" * 64))
    assert office.dump() == before


# --- the refusal function computes the hash and caps every field ----------------------------------


def test_a_hostile_caller_of_the_refusal_function_plants_no_hash_and_no_5_mb_reason(office, tmp_path):
    auditor = office.logins["auditor"]
    with connect(office, auditor) as conn:
        with pytest.raises(errors.UndefinedFunction):  # the old signature took the caller's hash
            conn.execute("SELECT cardctl_record_refusal(%s, now()::timestamp, 'x', 'x', 'counter', 'x', %s, %s, %s)",
                         (auditor, '{"login":"%s"}' % auditor, "0" * 64, "f" * 64))
    with connect(office, auditor) as conn:
        seq = conn.execute("SELECT cardctl_record_refusal(%s, %s, 'counter', %s, %s)",
                           ("o" * 100_000, "u" * 100_000, "r" * 5_000_000, '{"login":"%s"}' % auditor)).fetchone()[0]
        sizes = conn.execute("SELECT length(operator), length(os_user), length(reason), actor FROM events "
                             "WHERE seq = %s", (seq,)).fetchone()
        for hostile in ('{"login":"%s","pad":"%s"}' % (auditor, "x" * 5_000_000), "[1]", '{"login":null}'):
            with pytest.raises(psycopg.Error):
                conn.execute("SELECT cardctl_record_refusal('x', 'x', 'counter', 'x', %s)", (hostile,))
        with pytest.raises(errors.InvalidParameterValue):
            conn.execute("SELECT cardctl_record_refusal('x', 'x', 'system; --', 'x', %s)",
                         ('{"login":"%s"}' % auditor,))
    assert sizes == (64, 64, 1000, auditor)
    assert office("audit", "verify").exit_code == 0
    assert office("audit", "export", str(tmp_path / "trail.jsonl")).exit_code == 0
    assert office("audit", "verify", "--file", str(tmp_path / "trail.jsonl")).exit_code == 0


def test_the_server_hashes_a_refusal_byte_for_byte_as_cardctl_does(office):
    """The canonical JSON built in SQL matches storage/audit.py's for every kind of character."""
    auditor = office.logins["auditor"]
    tricky = 'quote " backslash \\ newline \n tab \t bell \x07 esc \x1b del \x7f 中文 😀 \u2028 </script> \u00e9'
    detail = json.dumps({"login": auditor, "note": tricky}, ensure_ascii=False)
    with connect(office, auditor) as conn:
        for channel in ("counter", "hotline", "system"):
            conn.execute("SELECT cardctl_record_refusal(%s, %s, %s, %s, %s)",
                         ('王芳 "x" \\', tricky, channel, tricky, detail))
    verified = office("audit", "verify")
    assert verified.exit_code == 0, verified.stderr


def test_the_servers_hmac_is_pythons(office):
    import hmac

    with psycopg.connect(conninfo(office.database.url), autocommit=True) as owner:
        for key in (b"", b"k", bytes(range(32)), bytes(range(64)), bytes(range(100))):
            for message in (b"", b"a", "中文 \n".encode() * 50):
                server = owner.execute("SELECT cardctl_hmac_sha256(%s, %s)", (key, message)).fetchone()[0]
                assert server == hmac.digest(key, message, "sha256").hex()


def test_a_real_upgrade_from_before_0004_strips_an_old_admin_and_keeps_it_manageable(database, tmp_path, monkeypatch):
    """A database at 0003 whose admin login was made the old way (CREATEROLE, ADMIN OPTION on
    the groups): ``init`` upgrades it, takes both away, and cardctl can still manage it."""
    from alembic import command
    from sqlalchemy import create_engine, text

    from cardctl.storage.db import normalise_url
    from cardctl.storage.schema import alembic_config

    office = Office(database, tmp_path, monkeypatch)
    names = _role_names(office)
    old_admin = office.name("old_admin")
    engine = create_engine(normalise_url(database.url))
    with engine.begin() as conn:
        command.upgrade(alembic_config(conn), "0003")
        for role in ("auditor", "staff", "admin"):
            conn.execute(text(f'DO $$ BEGIN CREATE ROLE "{names[role]}" NOLOGIN; '
                              "EXCEPTION WHEN duplicate_object THEN NULL; END $$"))
        conn.execute(text(f'CREATE ROLE "{old_admin}" LOGIN CREATEROLE'))
        for role in ("auditor", "staff", "admin"):
            conn.execute(text(f'GRANT "{names[role]}" TO "{old_admin}" WITH ADMIN OPTION'))
        conn.execute(text("INSERT INTO operators (login, role, created_at, created_by) VALUES "
                          "(:owner, 'admin', now(), :by), (:old, 'admin', now(), :by)"),
                     {"owner": office.admin, "old": old_admin, "by": office.admin})
    engine.dispose()
    try:
        office.ok("init")
        with connect(office, old_admin) as conn:
            assert not attempt(conn, f'GRANT "{names["owner"]}" TO "{old_admin}"')
            assert conn.execute("SELECT rolcreaterole FROM pg_roles WHERE rolname = %s",
                                (old_admin,)).fetchone() == (False,)
            assert conn.execute("SELECT count(*) FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member "
                                "WHERE u.rolname = %s AND m.admin_option", (old_admin,)).fetchone() == (0,)
            assert conn.execute("SELECT login FROM operator_logins").fetchall() == [(old_admin,)]
        office.ok("operator", "set-role", old_admin, "--role", "staff")
        assert office("policy", "set", "default", "--max-attempts", "4", as_=old_admin).exit_code == 6
        assert office("audit", "verify").exit_code == 0
    finally:
        office.close()
