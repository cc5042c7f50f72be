"""the trail records who really acted; operators managed without CREATEROLE

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05 23:00:00

Every event gets ``actor``: who really acted, as the system established it (the OS user
on SQLite; on PostgreSQL the database login, written by the server). The rest is
PostgreSQL only (docs/security.md, "Going around cardctl with an SQL client"):

- ``cardctl_event_append`` (a BEFORE INSERT trigger on events, SECURITY DEFINER, owned by
  the schema owner) overwrites ``actor`` with ``session_user`` and refuses an event that
  does not continue the newest one; ``cardctl_event_head`` (deferred to commit) moves the
  head to the newest event. Operator logins lose UPDATE on ``audit_head``
  (storage/pg_access.py), so no login can move it.
- ``cardctl_record_refusal`` is replaced by one that takes no hash and no time: it stamps
  the server's time, caps every field, and computes the event's HMAC itself with the
  audit-chain key kept in ``cardctl_chain_key``, a table only the schema owner can read
  (filled by ``cardctl init``).
- ``cardctl_set_operator`` creates, moves and disables operator logins. Init hands it to
  a dedicated NOLOGIN role with CREATEROLE (``<db>_manager``), so operator logins need no
  CREATEROLE; it changes only logins listed in ``operator_logins`` (those cardctl created
  for this database), never a group role, the owner, a superuser or another database's role.
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

OLD_REFUSAL_ARGS = "text, timestamp, text, text, text, text, text, varchar, varchar"
REFUSAL_ARGS = "text, text, text, text, text"
OPERATOR_ARGS = "text, text, text"
# what a refusal event may carry; longer text is cut (reason, names) or refused (detail)
MAX_NAME, MAX_REASON, MAX_DETAIL = 64, 1000, 1000
# the channels of services' refusals: an operator's five, and cardctl's own
CHANNELS = ("counter", "bank", "terminal", "online", "hotline", "cron", "system")

EVENT_APPEND = """
CREATE OR REPLACE FUNCTION cardctl_event_append() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
DECLARE
    last_seq bigint := 0;
    last_hash varchar := repeat('0', 64);
BEGIN
    NEW.actor := session_user;  -- who really acts: no client can write another name
    SELECT seq, hash INTO last_seq, last_hash FROM events ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        last_seq := 0;
        last_hash := repeat('0', 64);
    END IF;
    IF NEW.seq IS DISTINCT FROM last_seq + 1 OR NEW.prev_hash IS DISTINCT FROM last_hash THEN
        RAISE EXCEPTION 'event % does not continue the audit chain after event %', NEW.seq, last_seq
            USING ERRCODE = '40001';
    END IF;
    RETURN NEW;
END
$fn$
"""

# Moving the head once per event would update one row thousands of times in one import,
# each update slower than the last; deferred to commit, the first firing moves it to the
# newest event and the rest find nothing to do.
EVENT_HEAD = """
CREATE OR REPLACE FUNCTION cardctl_event_head() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
BEGIN
    UPDATE audit_head SET (seq, hash) = (SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1)
        WHERE id = 1 AND seq < NEW.seq;
    RETURN NULL;
END
$fn$
"""

HMAC = """
CREATE OR REPLACE FUNCTION cardctl_hmac_sha256(p_key bytea, p_message bytea) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    block bytea := CASE WHEN length(p_key) > 64 THEN sha256(p_key) ELSE p_key END;
    inner_pad bytea;
    outer_pad bytea;
BEGIN
    -- RFC 2104 with SHA-256, as Python's hmac.digest(key, message, "sha256")
    block := block || decode(repeat('00', 64 - length(block)), 'hex');
    inner_pad := block;
    outer_pad := block;
    FOR i IN 0..63 LOOP
        inner_pad := set_byte(inner_pad, i, get_byte(block, i) # 54);
        outer_pad := set_byte(outer_pad, i, get_byte(block, i) # 92);
    END LOOP;
    RETURN encode(sha256(outer_pad || sha256(inner_pad || p_message)), 'hex');
END
$fn$
"""

REFUSAL_FUNCTION = """
CREATE OR REPLACE FUNCTION cardctl_record_refusal(
    p_operator text, p_os_user text, p_channel text, p_reason text, p_detail text) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
DECLARE
    moment timestamp := date_trunc('microseconds', now() AT TIME ZONE 'UTC');
    at_text text;
    operator_name text := left(coalesce(nullif(btrim(p_operator), ''), session_user::text), {max_name});
    os_user_name text := left(coalesce(nullif(btrim(p_os_user), ''), session_user::text), {max_name});
    reason text := left(p_reason, {max_reason});
    detail jsonb;
    chain_key bytea;
    head_seq bigint;
    head_hash varchar;
    content text;
BEGIN
    IF p_channel IS NULL OR p_channel NOT IN ({channels}) THEN
        RAISE EXCEPTION 'unknown channel' USING ERRCODE = '22023';
    END IF;
    IF p_detail IS NULL OR length(p_detail) > {max_detail} THEN
        RAISE EXCEPTION 'the refusal detail is missing or too long' USING ERRCODE = '22023';
    END IF;
    detail := p_detail::jsonb;
    IF jsonb_typeof(detail) <> 'object' OR (detail ->> 'login') IS DISTINCT FROM session_user::text THEN
        RAISE EXCEPTION 'a refusal is recorded under the caller''s own login' USING ERRCODE = '42501';
    END IF;
    SELECT key INTO chain_key FROM cardctl_chain_key WHERE id = 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'the audit key is not in this database: run cardctl init as its owner'
            USING ERRCODE = '55000';
    END IF;
    PERFORM 1 FROM audit_head WHERE id = 1 FOR UPDATE;  -- one refusal at a time
    SELECT seq, hash INTO head_seq, head_hash FROM events ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := repeat('0', 64);
    END IF;
    -- the content storage/audit.py hashes (_content), byte for byte: a compact JSON array,
    -- times as Python's isoformat of an aware UTC datetime, the actor last
    at_text := to_char(moment, 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN extract(microseconds FROM moment)::bigint % 1000000 <> 0
                THEN '.' || to_char(moment, 'US') ELSE '' END || '+00:00';
    content := '[' || to_json(at_text)::text || ',' || to_json(at_text)::text || ','
        || to_json(operator_name)::text || ',' || to_json(os_user_name)::text || ','
        || to_json(p_channel)::text || ',"access.refused",null,"refused",'
        || coalesce(to_json(reason)::text, 'null') || ',' || to_json(p_detail)::text || ','
        || to_json(session_user::text)::text || ']';
    INSERT INTO events (seq, at, recorded_at, operator, os_user, channel, action, card_no,
                        outcome, reason, detail, actor, prev_hash, hash)
    VALUES (head_seq + 1, moment, moment, operator_name, os_user_name, p_channel, 'access.refused',
            NULL, 'refused', reason, p_detail, session_user, head_hash,
            cardctl_hmac_sha256(chain_key, convert_to(head_hash || content, 'UTF8')));
    RETURN head_seq + 1;
END
$fn$
"""

SET_OPERATOR = """
CREATE OR REPLACE FUNCTION cardctl_set_operator(p_login text, p_role text, p_verifier text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = {schema}, pg_temp AS $fn$
DECLARE
    base text := current_database();
    schema_owner name;
    existing pg_roles%ROWTYPE;
    group_role text;
    created boolean := false;
BEGIN
    -- the same names as storage/pg_access.py group_name()
    IF base !~ '^[a-z_][a-z0-9_]{{0,40}}$' THEN
        base := 'cardctl_' || left(encode(sha256(convert_to(base, 'UTF8')), 'hex'), 12);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM operators WHERE login = session_user AND role = 'admin'
                   AND disabled_at IS NULL) THEN
        RAISE EXCEPTION 'only an active cardctl admin manages operators' USING ERRCODE = '42501';
    END IF;
    IF p_login IS NULL OR p_login !~ '^[a-z_][a-z0-9_]{{0,62}}$' OR p_login LIKE 'pg\\_%'
            OR p_login IN ('public', 'none', 'current_user', 'session_user', 'current_role') THEN
        RAISE EXCEPTION 'not an operator login name' USING ERRCODE = '22023';
    END IF;
    IF p_role IS NOT NULL AND p_role NOT IN ('auditor', 'staff', 'admin') THEN
        RAISE EXCEPTION 'not an operator role' USING ERRCODE = '22023';
    END IF;
    SELECT tableowner INTO schema_owner FROM pg_tables
        WHERE schemaname = current_schema() AND tablename = 'events';
    IF p_login = schema_owner THEN
        RETURN false;  -- the owner holds every privilege by ownership; its login is the DBA's business
    END IF;
    SELECT * INTO existing FROM pg_roles WHERE rolname = p_login;
    IF FOUND THEN
        IF NOT EXISTS (SELECT 1 FROM operator_logins WHERE login = p_login) THEN
            RAISE EXCEPTION 'role % was not created by cardctl for this database', p_login
                USING ERRCODE = '42501';
        END IF;
        IF existing.rolsuper THEN
            RAISE EXCEPTION 'role % is a superuser', p_login USING ERRCODE = '42501';
        END IF;
    ELSE
        IF p_role IS NULL OR p_verifier IS NULL
                OR p_verifier !~ '^SCRAM-SHA-256\\$[0-9]{{1,7}}:[A-Za-z0-9+/=]{{1,64}}\\$[A-Za-z0-9+/=]{{1,64}}:[A-Za-z0-9+/=]{{1,64}}$' THEN
            RAISE EXCEPTION 'a new login needs a role and a SCRAM-SHA-256 verifier' USING ERRCODE = '22023';
        END IF;
        EXECUTE format('CREATE ROLE %I LOGIN NOCREATEROLE NOCREATEDB INHERIT PASSWORD %L', p_login, p_verifier);
        INSERT INTO operator_logins (login, created_by) VALUES (p_login, session_user);
        created := true;
    END IF;
    FOR group_role IN
        SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
        WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = p_login)
          AND g.rolname IN (base || '_auditor', base || '_staff', base || '_admin')
    LOOP
        EXECUTE format('REVOKE %I FROM %I', group_role, p_login);
    END LOOP;
    IF p_role IS NULL THEN
        EXECUTE format('ALTER ROLE %I NOLOGIN NOCREATEROLE NOCREATEDB', p_login);
    ELSE
        EXECUTE format('ALTER ROLE %I LOGIN NOCREATEROLE NOCREATEDB INHERIT', p_login);
        EXECUTE format('GRANT %I TO %I', base || '_' || p_role, p_login);
    END IF;
    RETURN created;
END
$fn$
"""


def upgrade() -> None:
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('actor', sa.Text(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    schema = bind.dialect.identifier_preparer.quote(bind.exec_driver_sql("SELECT current_schema()").scalar())
    op.execute("CREATE TABLE cardctl_chain_key (id integer PRIMARY KEY CHECK (id = 1), key bytea NOT NULL)")
    op.execute("REVOKE ALL ON cardctl_chain_key FROM PUBLIC")
    op.execute("CREATE TABLE operator_logins (login varchar(64) PRIMARY KEY, "
               "created_at timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'UTC'), created_by text NOT NULL)")
    # operators added before this revision: cardctl created or adopted their logins
    op.execute("INSERT INTO operator_logins (login, created_by) "
               "SELECT o.login, o.created_by FROM operators o JOIN pg_roles r ON r.rolname = o.login "
               "WHERE NOT r.rolsuper AND r.rolname <> (SELECT tableowner FROM pg_tables "
               "WHERE schemaname = current_schema() AND tablename = 'events')")
    op.execute(sa.text(EVENT_APPEND.format(schema=schema)))
    op.execute("REVOKE ALL ON FUNCTION cardctl_event_append() FROM PUBLIC")
    op.execute("CREATE TRIGGER events_append BEFORE INSERT ON events "
               "FOR EACH ROW EXECUTE FUNCTION cardctl_event_append()")
    op.execute(sa.text(EVENT_HEAD.format(schema=schema)))
    op.execute("REVOKE ALL ON FUNCTION cardctl_event_head() FROM PUBLIC")
    op.execute("CREATE CONSTRAINT TRIGGER events_head AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED "
               "FOR EACH ROW EXECUTE FUNCTION cardctl_event_head()")
    op.execute(f"DROP FUNCTION IF EXISTS cardctl_record_refusal({OLD_REFUSAL_ARGS})")
    op.execute(sa.text(HMAC))
    op.execute("REVOKE ALL ON FUNCTION cardctl_hmac_sha256(bytea, bytea) FROM PUBLIC")
    channels = ", ".join(f"'{name}'" for name in CHANNELS)
    op.execute(sa.text(REFUSAL_FUNCTION.format(schema=schema, channels=channels, max_name=MAX_NAME,
                                               max_reason=MAX_REASON, max_detail=MAX_DETAIL)))
    op.execute(f"REVOKE ALL ON FUNCTION cardctl_record_refusal({REFUSAL_ARGS}) FROM PUBLIC")
    op.execute(sa.text(SET_OPERATOR.format(schema=schema)))
    op.execute(f"REVOKE ALL ON FUNCTION cardctl_set_operator({OPERATOR_ARGS}) FROM PUBLIC")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION IF EXISTS cardctl_set_operator({OPERATOR_ARGS})")
        op.execute(f"DROP FUNCTION IF EXISTS cardctl_record_refusal({REFUSAL_ARGS})")
        op.execute("DROP FUNCTION IF EXISTS cardctl_hmac_sha256(bytea, bytea)")
        op.execute("DROP TRIGGER IF EXISTS events_head ON events")
        op.execute("DROP FUNCTION IF EXISTS cardctl_event_head()")
        op.execute("DROP TRIGGER IF EXISTS events_append ON events")
        op.execute("DROP FUNCTION IF EXISTS cardctl_event_append()")
        op.execute("DROP TABLE IF EXISTS operator_logins")
        op.execute("DROP TABLE IF EXISTS cardctl_chain_key")
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_column('actor')
