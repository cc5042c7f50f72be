"""PostgreSQL: an operator is a database login, and the server enforces the role.

Three NOLOGIN group roles per database carry the table privileges — auditor reads
everything; staff may also insert and update card data and append to the audit trail
(never update or delete an event, never move the head: the events trigger does that);
admin may also change policies and operators. Staff is a member of auditor and admin of
staff, so each role holds the one below it. An operator's login is made a member of one
group, so an auditor's login cannot write even from its own SQL client. The schema owner
(whoever ran ``cardctl init``) creates the groups and their grants at every init, so tables
added by later migrations are covered too.

No operator login holds CREATEROLE or ADMIN OPTION on any role: with either, a login
could grant itself the owner's role (docs/security.md). Operator logins are created,
moved and disabled by ``cardctl_set_operator`` (migration 0004), a SECURITY DEFINER
function owned by ``<db>_manager``, a NOLOGIN role with CREATEROLE that nobody is a
member of; admins may only execute it, and it changes only logins it created for this
database.

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
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from ..domain.roles import Role
from ..errors import AccessRefused, Refused
from ..i18n import _
from .tables import metadata

# privileges each group adds to the one below it; events are append-only, arrears a ledger
STAFF_WRITES = {"holders": "INSERT, UPDATE", "cards": "INSERT, UPDATE", "locks": "INSERT, UPDATE",
                "arrears": "INSERT", "events": "INSERT", "signed_heads": "INSERT"}
# meta: the database-wide settings (cardctl settings set), and only their rows (``_limit_meta``)
ADMIN_WRITES = {"policies": "INSERT, UPDATE", "operators": "INSERT, UPDATE", "meta": "INSERT, UPDATE"}
# what no group may hold, revoked at every init: databases made before migration 0004 let
# staff move the chain head
NEVER_GRANTED = {"audit_head": "INSERT, UPDATE, DELETE, TRUNCATE"}
SERIAL_COLUMNS = (("holders", "id"), ("locks", "id"), ("arrears", "id"))
# PostgreSQL-only tables of migration 0004, outside ``metadata``: the chain key is read by the
# owner's functions alone; the list of logins cardctl created is readable by every operator
CHAIN_KEY_TABLE, OPERATOR_LOGINS_TABLE = "cardctl_chain_key", "operator_logins"
REFUSAL_FUNCTION = "cardctl_record_refusal(text, text, text, text, text)"
OPERATOR_FUNCTION = "cardctl_set_operator(text, text, text)"
MANAGER = "manager"
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


def group_name(conn: Connection, role: Role | str) -> str:
    """The group role of ``role`` for this database, e.g. ``cardctl_staff`` for database cardctl
    (``manager``: the owner of the operator function). Migration 0004 computes the same names."""
    database = conn.exec_driver_sql("SELECT current_database()").scalar()
    base = database if _PLAIN_DB_NAME.fullmatch(database) else (
        "cardctl_" + hashlib.sha256(database.encode()).hexdigest()[:12])
    return f"{base}_{role}"


def current_login(conn: Connection) -> str:
    return conn.exec_driver_sql("SELECT current_user").scalar()


def login_exists(conn: Connection, login: str) -> bool:
    return conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :name"), {"name": login}).first() is not None


def can_create_roles(conn: Connection) -> bool:
    return bool(conn.exec_driver_sql(
        "SELECT rolcreaterole OR rolsuper FROM pg_roles WHERE rolname = current_user").scalar())


def ensure_groups(conn: Connection) -> bool:
    """Create the three groups and the manager, and (re)grant their privileges; run by the
    schema owner at init.

    Returns False, changing nothing, when the owner may not create roles (then operator
    logins cannot be managed by cardctl, only by a DBA).
    """
    sql = _sql()
    groups = {role: group_name(conn, role) for role in Role}
    manager = group_name(conn, MANAGER)
    missing = [name for name in (*groups.values(), manager) if not login_exists(conn, name)]
    if missing and not can_create_roles(conn):
        return False
    for name in missing:
        _run(conn, sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
    ident = {role: sql.Identifier(name) for role, name in groups.items()}
    schema = sql.Identifier(conn.exec_driver_sql("SELECT current_schema()").scalar())
    tables = sorted(metadata.tables) + ["alembic_version", OPERATOR_LOGINS_TABLE]
    table_list = sql.SQL(", ").join(sql.Identifier(name) for name in tables)
    _run(conn, sql.SQL("GRANT {} TO {}").format(ident[Role.AUDITOR], ident[Role.STAFF]))
    _run(conn, sql.SQL("GRANT {} TO {}").format(ident[Role.STAFF], ident[Role.ADMIN]))
    _run(conn, sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, ident[Role.AUDITOR]))
    _run(conn, sql.SQL("GRANT SELECT ON {} TO {}").format(table_list, ident[Role.AUDITOR]))
    _run(conn, sql.SQL("GRANT EXECUTE ON FUNCTION " + REFUSAL_FUNCTION + " TO {}").format(ident[Role.AUDITOR]))
    for role, writes in ((Role.STAFF, STAFF_WRITES), (Role.ADMIN, ADMIN_WRITES)):
        for table, privileges in writes.items():
            _run(conn, sql.SQL("GRANT " + privileges + " ON {} TO {}").format(sql.Identifier(table), ident[role]))
    _limit_meta(conn, ident)
    for table, privileges in NEVER_GRANTED.items():
        _run(conn, sql.SQL("REVOKE " + privileges + " ON {} FROM {}").format(
            sql.Identifier(table), sql.SQL(", ").join(ident.values())))
    for table, column in SERIAL_COLUMNS:
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table, "c": column}).scalar()
        if sequence:  # already a quoted, schema-qualified name from the server
            _run(conn, sql.SQL("GRANT USAGE ON SEQUENCE " + sequence + " TO {}").format(ident[Role.STAFF]))
    if can_create_roles(conn):  # roles made by a DBA for an owner without CREATEROLE: left to the DBA
        _hand_operators_to_manager(conn, manager, list(groups.values()), schema)
        _strip_operator_logins(conn, [*groups.values(), manager])
    return True


def _limit_meta(conn: Connection, ident: dict) -> None:
    """Row security on ``meta``: every operator reads it; an admin writes the settings rows only,
    never the key fingerprint (docs/security.md, "The PIN hashing cost"). The owner, who ran
    init, is not bound by it."""
    from ..domain.hashing import SETTING

    sql = _sql()
    settings = sql.SQL("key IN ({})").format(sql.Literal(SETTING))
    _run(conn, sql.SQL("ALTER TABLE meta ENABLE ROW LEVEL SECURITY"))
    for name, command, role, clause in (
            ("meta_read", "SELECT", Role.AUDITOR, sql.SQL("USING (true)")),
            ("meta_settings_update", "UPDATE", Role.ADMIN, sql.SQL("USING ({0}) WITH CHECK ({0})").format(settings)),
            ("meta_settings_insert", "INSERT", Role.ADMIN, sql.SQL("WITH CHECK ({})").format(settings))):
        _run(conn, sql.SQL("DROP POLICY IF EXISTS {} ON meta").format(sql.Identifier(name)))
        _run(conn, sql.SQL("CREATE POLICY {} ON meta FOR " + command + " TO {} ").format(
            sql.Identifier(name), ident[role]) + clause)


def _hand_operators_to_manager(conn: Connection, manager: str, groups: list[str], schema) -> None:
    """The manager role owns ``cardctl_set_operator`` and is the only holder of CREATEROLE that
    operators reach, through that function alone. Nobody logs in as it or is a member of it:
    a role of that name made beforehand by someone else is stripped of login, password and
    members here."""
    sql = _sql()
    who = sql.Identifier(manager)
    _run(conn, sql.SQL("ALTER ROLE {} NOLOGIN CREATEROLE NOCREATEDB PASSWORD NULL").format(who))
    for member in conn.execute(text(_MEMBERS_OF), {"role": manager}).scalars():
        _run(conn, sql.SQL("REVOKE {} FROM {}").format(who, sql.Identifier(member)))
    _run(conn, sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, who))
    _run(conn, sql.SQL("GRANT SELECT ON operators TO {}").format(who))
    _run(conn, sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(sql.Identifier(OPERATOR_LOGINS_TABLE), who))
    if int(conn.exec_driver_sql("SHOW server_version_num").scalar()) >= 160000:
        # PostgreSQL 16: CREATEROLE grants only the roles it holds with ADMIN OPTION
        for name in groups:
            _run(conn, sql.SQL("GRANT {} TO {} WITH ADMIN OPTION, INHERIT FALSE, SET FALSE").format(
                sql.Identifier(name), who))
    # ALTER ... OWNER TO needs the owner to be a member of the new owner, and the new owner
    # to be allowed to create in the schema: both only for this transaction's moment
    me = sql.Identifier(current_login(conn))
    _run(conn, sql.SQL("GRANT {} TO {}").format(who, me))
    _run(conn, sql.SQL("GRANT CREATE ON SCHEMA {} TO {}").format(schema, who))
    _run(conn, sql.SQL("ALTER FUNCTION " + OPERATOR_FUNCTION + " OWNER TO {}").format(who))
    _run(conn, sql.SQL("REVOKE ALL ON FUNCTION " + OPERATOR_FUNCTION + " FROM PUBLIC"))
    _run(conn, sql.SQL("GRANT EXECUTE ON FUNCTION " + OPERATOR_FUNCTION + " TO {}, {}").format(
        sql.Identifier(groups[-1]), me))  # the admin group, and the owner: the first admin
    _run(conn, sql.SQL("REVOKE CREATE ON SCHEMA {} FROM {}").format(schema, who))
    _run(conn, sql.SQL("REVOKE {} FROM {}").format(who, me))


def _strip_operator_logins(conn: Connection, roles: list[str]) -> None:
    """Operators added before migration 0004 got CREATEROLE and ADMIN OPTION on the groups
    (an admin's way to add operators then); with them a login could grant itself any role.
    Taken away at every init: no operator login keeps either, nor membership in the owner's
    role or the manager's."""
    sql = _sql()
    owner = current_login(conn)
    logins = conn.execute(text(
        "SELECT DISTINCT u.rolname FROM pg_roles u WHERE NOT u.rolsuper AND u.rolname <> :owner AND ("
        "u.rolname IN (SELECT login FROM operator_logins) OR u.rolname IN (SELECT login FROM operators) OR "
        "u.oid IN (SELECT m.member FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "WHERE g.rolname = ANY(:roles)))"), {"owner": owner, "roles": roles}).scalars().all()
    for login in logins:
        if login in roles:
            continue
        who = sql.Identifier(login)
        for name, admin_option in conn.execute(text(_MEMBERSHIPS), {"login": login}):
            if name == owner or name == roles[-1]:
                _run(conn, sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(name), who))
            elif admin_option and name in roles:
                _run(conn, sql.SQL("REVOKE ADMIN OPTION FOR {} FROM {}").format(sql.Identifier(name), who))
        _run(conn, sql.SQL("ALTER ROLE {} NOCREATEROLE NOCREATEDB").format(who))


def store_chain_key(conn: Connection, audit_key: bytes) -> None:
    """The owner keeps the audit-chain key where only its own functions read it, so the
    refusal function computes each refusal's hash itself (docs/security.md)."""
    conn.execute(text(f"INSERT INTO {CHAIN_KEY_TABLE} (id, key) VALUES (1, :key) "
                      "ON CONFLICT (id) DO UPDATE SET key = EXCLUDED.key"), {"key": audit_key})


def create_login(conn: Connection, login: str, role: Role, password: str | None) -> bool:
    """Make ``login`` a member of ``role``'s group, creating it first if absent; True if created."""
    _require_groups(conn)
    if login in {group_name(conn, group) for group in (*Role, MANAGER)}:
        raise Refused(_("{login} is one of cardctl's group roles, not a person's login").format(login=login))
    if conn.execute(text("SELECT rolsuper FROM pg_roles WHERE rolname = :name"), {"name": login}).scalar():
        raise Refused(_("{login} is a superuser; cardctl does not hand roles to superusers").format(login=login))
    exists = login_exists(conn, login)
    if exists and not owns_schema(conn, login) and not created_here(conn, login):
        raise Refused(_("role {login} exists but was not created by cardctl for this database; "
                        "cardctl hands roles only to logins it created").format(login=login))
    if not exists and password is None:
        raise Refused(_("login {login} does not exist; a password is needed to create it").format(login=login))
    return _set_operator(conn, login, role, None if exists else scram_verifier(password))


def set_membership(conn: Connection, login: str, role: Role) -> None:
    """Leave every cardctl group of this database, then join ``role``'s."""
    _require_groups(conn)
    _set_operator(conn, login, role, None)


def disable_login(conn: Connection, login: str) -> None:
    """No more logins and no group; the schema owner keeps its login (only a DBA may end it)."""
    _require_groups(conn)
    _set_operator(conn, login, None, None)


def created_here(conn: Connection, login: str) -> bool:
    return conn.execute(text(f"SELECT 1 FROM {OPERATOR_LOGINS_TABLE} WHERE login = :name"),
                        {"name": login}).first() is not None


def _set_operator(conn: Connection, login: str, role: Role | None, verifier: str | None) -> bool:
    """The one way cardctl changes a login (migration 0004); its refusals become exit 6."""
    try:
        return bool(conn.execute(text("SELECT cardctl_set_operator(:login, :role, :verifier)"),
                                 {"login": login, "role": role.value if role else None,
                                  "verifier": verifier}).scalar())
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) not in ("42501", "22023"):
            raise
        problem = error.orig.diag.message_primary or str(error.orig)
        raise Refused(_("the database refused to change login {login}: {problem}").format(
            login=login, problem=problem)) from None


# the roles a login is a direct member of, and whether it may grant them; the direct members of a role
_MEMBERSHIPS = ("SELECT g.rolname, m.admin_option FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = :login")
_MEMBERS_OF = ("SELECT u.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
               "JOIN pg_roles u ON u.oid = m.member WHERE g.rolname = :role")


def _require_groups(conn: Connection) -> None:
    if not login_exists(conn, group_name(conn, MANAGER)):
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


def record_refusal(conn: Connection, row: dict[str, Any]) -> int:
    """Append one access.refused event through the SECURITY DEFINER function (migration 0004),
    which stamps the server's time, caps the fields and computes the hash: a caller can plant
    neither a hash nor a field that would stop ``audit verify`` or ``audit export``."""
    return conn.execute(text("SELECT cardctl_record_refusal(:operator, :os_user, :channel, :reason, :detail)"),
                        {"operator": row["operator"], "os_user": row["os_user"], "channel": row["channel"],
                         "reason": row["reason"], "detail": row["detail"]}).scalar()


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
