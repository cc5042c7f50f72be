"""PostgreSQL: an operator is a database login, and the server enforces the role.

Three NOLOGIN group roles per database carry the table privileges — auditor reads
everything; staff may also insert and update card data and append to the audit trail
(never update or delete an event); admin may also change policies and operators. Staff is
a member of auditor and admin of staff, so each role holds the one below it. An operator's
login is made a member of one group, so an auditor's login cannot write even from its
own SQL client. The schema owner (whoever ran ``cardctl init``) creates the groups and
their grants at every init, so tables added by later migrations are covered too.

Names reach SQL only as quoted identifiers built by psycopg, after
``domain.roles.parse_login`` has checked them; passwords reach the server only as a
SCRAM-SHA-256 verifier computed here, never in clear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Connection, text

from ..domain.roles import Role
from ..errors import AccessRefused, Refused
from ..i18n import _
from .audit import chain_hash
from .tables import metadata

# privileges each group adds to the one below it; events are append-only, arrears a ledger
STAFF_WRITES = {"holders": "INSERT, UPDATE", "cards": "INSERT, UPDATE", "locks": "INSERT, UPDATE",
                "arrears": "INSERT", "events": "INSERT", "audit_head": "UPDATE", "signed_heads": "INSERT"}
ADMIN_WRITES = {"policies": "INSERT, UPDATE", "operators": "INSERT, UPDATE"}
SERIAL_COLUMNS = (("holders", "id"), ("locks", "id"), ("arrears", "id"))
REFUSAL_FUNCTION = ("cardctl_record_refusal(text, timestamp, text, text, text, text, text, "
                    "varchar, varchar)")
SCRAM_ITERATIONS = 4096
_PLAIN_DB_NAME = re.compile(r"[a-z_][a-z0-9_]{0,40}")


def _sql():
    from psycopg import sql  # imported late: SQLite users never load psycopg

    return sql


def _run(conn: Connection, statement) -> None:
    """A composed statement, on the driver connection of this transaction."""
    driver = conn.connection.driver_connection
    with driver.cursor() as cur:
        cur.execute(statement)


def group_name(conn: Connection, role: Role) -> str:
    """The group role of ``role`` for this database, e.g. ``cardctl_staff`` for database cardctl."""
    database = conn.exec_driver_sql("SELECT current_database()").scalar()
    base = database if _PLAIN_DB_NAME.fullmatch(database) else (
        "cardctl_" + hashlib.sha256(database.encode()).hexdigest()[:12])
    return f"{base}_{role.value}"


def current_login(conn: Connection) -> str:
    return conn.exec_driver_sql("SELECT current_user").scalar()


def login_exists(conn: Connection, login: str) -> bool:
    return conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": login}).first() is not None


def can_create_roles(conn: Connection) -> bool:
    return bool(conn.exec_driver_sql(
        "SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user").scalar())


def ensure_groups(conn: Connection) -> bool:
    """Create the three groups and (re)grant their privileges; run by the schema owner at init.

    Returns False, changing nothing, when the owner may not create roles (then operator
    logins cannot be managed by cardctl, only by a DBA).
    """
    sql = _sql()
    groups = {role: group_name(conn, role) for role in Role}
    missing = [name for name in groups.values() if not login_exists(conn, name)]
    if missing and not can_create_roles(conn):
        return False
    for name in missing:
        _run(conn, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    ident = {role: sql.Identifier(name) for role, name in groups.items()}
    schema = sql.Identifier(conn.exec_driver_sql("SELECT current_schema()").scalar())
    tables = sorted(metadata.tables) + ["alembic_version"]
    table_list = sql.SQL(", ").join(sql.Identifier(name) for name in tables)
    _run(conn, sql.SQL("GRANT {} TO {}").format(ident[Role.AUDITOR], ident[Role.STAFF]))
    _run(conn, sql.SQL("GRANT {} TO {}").format(ident[Role.STAFF], ident[Role.ADMIN]))
    _run(conn, sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, ident[Role.AUDITOR]))
    _run(conn, sql.SQL("GRANT SELECT ON {} TO {}").format(table_list, ident[Role.AUDITOR]))
    _run(conn, sql.SQL("GRANT EXECUTE ON FUNCTION " + REFUSAL_FUNCTION + " TO {}").format(ident[Role.AUDITOR]))
    for role, writes in ((Role.STAFF, STAFF_WRITES), (Role.ADMIN, ADMIN_WRITES)):
        for table, privileges in writes.items():
            _run(conn, sql.SQL("GRANT " + privileges + " ON {} TO {}").format(sql.Identifier(table), ident[role]))
    for table, column in SERIAL_COLUMNS:
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column}).scalar()
        if sequence:  # already a quoted, schema-qualified name from the server
            _run(conn, sql.SQL("GRANT USAGE ON SEQUENCE " + sequence + " TO {}").format(ident[Role.STAFF]))
    return True


def create_login(conn: Connection, login: str, role: Role, password: str | None) -> bool:
    """Make ``login`` a member of ``role``'s group, creating it first if absent; True if created."""
    sql = _sql()
    if login in {group_name(conn, group) for group in Role}:
        raise Refused(_("{login} is one of cardctl's group roles, not a person's login").format(login=login))
    if conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :name"), {"name": login}).scalar():
        raise Refused(_("{login} is a superuser; cardctl does not hand roles to superusers").format(login=login))
    created = not login_exists(conn, login)
    if created:
        if password is None:
            raise Refused(_("login {login} does not exist; a password is needed to create it").format(login=login))
        _run(conn, sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(login), sql.Literal(scram_verifier(password))))
    else:
        _run(conn, sql.SQL("ALTER ROLE {} LOGIN").format(sql.Identifier(login)))
    set_membership(conn, login, role)
    return created


def set_membership(conn: Connection, login: str, role: Role | None) -> None:
    """Leave every cardctl group of this database, then join ``role``'s (None: join none).

    An admin also gets CREATEROLE and ADMIN OPTION on the groups, to add operators; a
    login that no longer holds ADMIN OPTION on any role loses CREATEROLE again.
    """
    sql = _sql()
    _require_groups(conn)
    who = sql.Identifier(login)
    groups = [group_name(conn, group) for group in Role]
    for name in conn.execute(text(_MEMBER_OF + " AND g.rolname = ANY(:groups)"),
                             {"login": login, "groups": groups}).scalars():
        _run(conn, sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(name), who))
    if role is Role.ADMIN:
        for name in groups:
            _run(conn, sql.SQL("GRANT {} TO {} WITH ADMIN OPTION").format(sql.Identifier(name), who))
    elif role is not None:
        _run(conn, sql.SQL("GRANT {} TO {}").format(sql.Identifier(group_name(conn, role)), who))
    if owns_schema(conn, login):
        return  # the owner's attributes are the DBA's business
    keeps_admin = conn.execute(text(_MEMBER_OF + " AND m.admin_option"), {"login": login}).first() is not None
    _run(conn, sql.SQL("ALTER ROLE {} " + ("CREATEROLE" if keeps_admin else "NOCREATEROLE")).format(who))


# the roles a login is a direct member of
_MEMBER_OF = ("SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
              "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = :login")


def disable_login(conn: Connection, login: str) -> None:
    """No more logins and no group; the schema owner keeps its login (only a DBA may end it)."""
    sql = _sql()
    set_membership(conn, login, None)
    if not owns_schema(conn, login):
        _run(conn, sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(login)))


def _require_groups(conn: Connection) -> None:
    if not login_exists(conn, group_name(conn, Role.AUDITOR)):
        raise Refused(_("this database has no cardctl group roles: the login that ran 'cardctl init' "
                        "may not create roles; give it CREATEROLE and run 'cardctl init' again"))


def owns_schema(conn: Connection, login: str | None = None) -> bool:
    """Whether ``login`` (default: the current one) owns cardctl's tables, as the one who ran init does."""
    owner = conn.exec_driver_sql("SELECT tableowner FROM pg_tables WHERE schemaname = current_schema() "
                                 "AND tablename = 'events'").scalar()
    return owner == (login or current_login(conn))


def scram_verifier(password: str, salt: bytes | None = None) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores (RFC 5802/7677), made client-side."""
    salt = salt or os.urandom(16)
    normalised = unicodedata.normalize("NFKC", password).encode()  # close to SASLprep
    salted = hashlib.pbkdf2_hmac("sha256", normalised, salt, SCRAM_ITERATIONS)
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")
    b64 = lambda raw: base64.b64encode(raw).decode()  # noqa: E731
    return f"SCRAM-SHA-256${SCRAM_ITERATIONS}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def record_refusal(conn: Connection, key: bytes, login: str, row: dict[str, Any]) -> int:
    """Append one access.refused event through the SECURITY DEFINER function (migration 0002).

    ``row`` holds the event's content as AuditTrail builds it; the caller's write
    transaction already queues behind other writers, so the head read here stays the head.
    """
    prev = conn.exec_driver_sql("SELECT hash FROM audit_head WHERE id = 1").scalar()
    row = {**row, "recorded_at": row["at"], "action": "access.refused", "card_no": None, "outcome": "refused"}
    digest = chain_hash(key, prev, row)
    return conn.execute(text(
        "SELECT cardctl_record_refusal(:login, :at, :operator, :os_user, :channel, :reason, :detail, :prev, :hash)"),
        {"login": login, "at": _naive_utc(row["at"]), "operator": row["operator"],
         "os_user": row["os_user"], "channel": row["channel"], "reason": row["reason"],
         "detail": row["detail"], "prev": prev, "hash": digest}).scalar()


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def refuse_login_without_rights(conn: Connection, db, error) -> None:
    """Raise AccessRefused when cardctl's schema exists but this login may not use it: it was
    never made an operator here. (Without USAGE on the schema PostgreSQL does not say
    "permission denied" but skips the schema, so the tables seem missing.)"""
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate not in ("42501", "42P01"):
        return
    conn.rollback()
    if sqlstate == "42501" or schema_hidden(conn):
        login = current_login(conn)
        raise AccessRefused(_("login {login} has no rights on {db}: it is not a cardctl operator").format(
            login=login, db=db.display), login)


def schema_hidden(conn: Connection) -> bool:
    """A cardctl schema exists in this database, and this login may not use it."""
    return bool(conn.exec_driver_sql(
        "SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relname = 'alembic_version' AND NOT has_schema_privilege(n.oid, 'USAGE'))").scalar())
