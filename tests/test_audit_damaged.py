"""A damaged or poisoned trail: ``audit verify`` (database and ``--file``) and ``audit export`` never
crash on it, exit 6 naming the seq, and go on past the first bad event to count them all
(cardctl.storage.audit_walk, docs/security.md "A damaged or poisoned trail").

The damage is done as an insider would: sqlite3 or psql on the database behind cardctl's back
(wrongly typed and garbage values, NULLs after dropping the constraints, bytes that are no
UTF-8, a missing head row), or a text editor on an export file.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Iterator

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cardctl.storage.audit_export import EVENT_FIELDS
from helpers_security import CARD, ID_NUMBER, PIN, WRONG, Office


@pytest.fixture(scope="module")
def recorded(engine, tmp_path_factory) -> tuple[Path, object]:
    """About a dozen events, played once per engine: two cards, a PIN lock by three wrong PINs,
    its unlock, a right PIN."""
    from conftest import empty_database

    folder = tmp_path_factory.mktemp("trail")
    template = empty_database(engine, folder, "damaged_template")
    with pytest.MonkeyPatch.context() as monkeypatch:
        office = Office(template, folder, monkeypatch).open_counter()
        for _ in range(3):
            office("verify", CARD, "--pin-stdin", input=WRONG + "\n")
        office.ok("unlock", CARD, "--reason", "holder verified", "--id-number", ID_NUMBER)
        office.ok("verify", CARD, "--pin-stdin", input=PIN + "\n")
        office.close()
    return folder, template


@pytest.fixture
def office(recorded, database, tmp_path, monkeypatch) -> Iterator[Office]:
    """This test's own copy of the recorded trail."""
    folder, template = recorded
    shutil.copy2(folder / "cardctl.key", tmp_path / "cardctl.key")
    database.copy_from(template)
    office = Office(database, tmp_path, monkeypatch)
    yield office
    office.close()


def relax_constraints(office: Office) -> None:
    """What the owner of the database (or of the file) can do first: drop NOT NULL, so that
    any column of events and the head can be NULL."""
    if office.postgresql:
        for column in EVENT_FIELDS[1:]:
            office.database.run_sql(f"ALTER TABLE events ALTER COLUMN {column} DROP NOT NULL")
        office.database.run_sql("ALTER TABLE audit_head ALTER COLUMN hash DROP NOT NULL")
        return
    with sqlite3.connect(office.database.path) as conn:
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = replace(sql, 'NOT NULL', '') "
                     "WHERE name IN ('events', 'audit_head')")
        conn.execute("PRAGMA writable_schema = OFF")
    sqlite3.connect(office.database.path).close()


def broken(result, seq: int) -> dict | None:
    """Exit 6, one line on stderr naming ``seq``, never a traceback."""
    assert result.exit_code == 6, (result.exit_code, result.stderr)
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert str(seq) in result.stderr, result.stderr
    return json.loads(result.stdout)[0] if result.stdout.strip().startswith("[") else None


# (engine, column, SQL value) as sqlite3 or psql would write them
SQLITE_DAMAGE = [
    ("at", "'garbage'"), ("at", "12345"), ("recorded_at", "''"), ("at", "X'00ff'"),
    ("detail", "CAST(X'c328ff' AS TEXT)"), ("reason", "CAST(X'fffe' AS TEXT)"), ("detail", "3.5"),
    ("seq", "'abc'"), ("hash", "NULL"), ("prev_hash", "42"), ("operator", "NULL"), ("at", "NULL"),
    ("detail", "'" + "[" * 100_000 + "'"), ("reason", "'" + "x" * 5_000_000 + "'"),
]
POSTGRESQL_DAMAGE = [
    ("at", "'infinity'"), ("recorded_at", "'-infinity'"), ("at", "'4713-01-01 BC'"),
    ("at", "'294276-12-31 23:59:59'"), ("hash", "NULL"), ("hash", "'not a hash'"), ("detail", "NULL"),
    ("operator", "NULL"), ("detail", "'" + "[" * 100_000 + "'"), ("reason", "repeat('x', 5000000)"),
    ("at", "NULL"),
]


@pytest.mark.sqlite_only("values of another type than the column's: only SQLite stores them")
@pytest.mark.parametrize("column, value", SQLITE_DAMAGE, ids=[f"{c}-{v[:12]}" for c, v in SQLITE_DAMAGE])
def test_a_damaged_column_written_with_sqlite3_is_named_by_its_seq(office, column, value):
    a_damaged_column_is_named_by_its_seq(office, column, value)


@pytest.mark.postgresql_only("values a PostgreSQL column of its type accepts but no driver converts")
@pytest.mark.parametrize("column, value", POSTGRESQL_DAMAGE, ids=[f"{c}-{v[:12]}" for c, v in POSTGRESQL_DAMAGE])
def test_a_damaged_column_written_with_psql_is_named_by_its_seq(office, column, value):
    a_damaged_column_is_named_by_its_seq(office, column, value)


def a_damaged_column_is_named_by_its_seq(office, column, value):
    relax_constraints(office)
    office.database.run_sql(f"UPDATE events SET {column} = {value} WHERE seq = 5")
    report = broken(office("audit", "verify", "-o", "json"), 5)
    assert (report["ok"], report["first_bad_seq"]) == (False, 5)
    # and an export of it is refused the same way, with nothing written
    assert broken(office("audit", "export", "-"), 5) is None


def test_one_poisoned_event_does_not_hide_an_edit_further_down(office):
    events = len(office.events())
    office.database.run_sql("UPDATE events SET at = 'poison' WHERE seq = 3" if not office.postgresql
                            else "UPDATE events SET at = 'infinity' WHERE seq = 3")
    office.database.run_sql("UPDATE events SET outcome = 'ok' WHERE seq = :seq", seq=events - 1)
    result = office("audit", "verify", "-o", "json")
    report = broken(result, 3)
    assert (report["bad"], report["first_bad_seq"], report["last_bad_seq"]) == (2, 3, events - 1)
    assert report["checked"] == events and "edited" in report["last_problem"]
    table = office("audit", "verify")
    assert f"2 bad events from seq 3 to {events - 1}" in table.stderr, table.stderr


def test_a_missing_head_row_is_a_broken_chain_not_a_crash(office):
    events = len(office.events())
    office.database.run_sql("DELETE FROM audit_head")
    report = broken(office("audit", "verify", "-o", "json"), events + 1)
    assert report["first_bad_seq"] == events + 1 and "head row" in report["problem"]
    broken(office("audit", "export", "-"), events + 1)


@pytest.mark.sqlite_only("only SQLite lets a column hold another type than it was declared with")
def test_a_head_of_the_wrong_type_is_a_broken_chain(office):
    office.database.run_sql("UPDATE audit_head SET seq = 'many', hash = X'ff'")
    report = broken(office("audit", "verify", "-o", "json"), len(office.events()) + 1)
    assert "head row" in report["problem"]


def test_swapped_events_count_the_links_they_break_and_no_more(office):
    events = len(office.events())
    for sql in ("UPDATE events SET seq = -1 WHERE seq = 5", "UPDATE events SET seq = 5 WHERE seq = 6",
                "UPDATE events SET seq = 6 WHERE seq = -1"):
        office.database.run_sql(sql)
    report = broken(office("audit", "verify", "-o", "json"), 5)
    # the links 4-5, 5-6 and 6-7 are broken in stored order; 8 onwards verifies again
    assert (report["first_bad_seq"], report["last_bad_seq"], report["bad"]) == (5, 7, 3)
    assert report["checked"] == events


# --- random damage: the walk's answer is always exit 0 or the first damaged seq ----------------


@pytest.fixture
def relaxed(office) -> Office:
    relax_constraints(office)
    return office


def _value(kind: str, column: str):
    sqlite = st.one_of(
        st.none(), st.integers(-10**18, 10**18), st.floats(allow_nan=False), st.text(max_size=80),
        st.binary(max_size=40).map(lambda b: ("blob", b)),
        st.binary(min_size=1, max_size=40).map(lambda b: ("text-bytes", b)),
        st.sampled_from(["", "infinity", "2026-11-23", "[" * 5000, "0" * 64]))
    if kind == "sqlite":
        return sqlite
    if column == "seq":
        return st.integers(-10**18, 10**18)
    if column in ("at", "recorded_at"):
        return st.one_of(st.none(), st.sampled_from(["infinity", "-infinity", "4713-01-01 BC", "1999-01-08 04:05:06",
                                                     "294276-12-31 23:59:59"]),
                         st.datetimes().map(lambda d: d.isoformat(sep=" ")))
    return st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                                        max_size=64))


@st.composite
def damage(draw, kind: str, events: int):
    seq = draw(st.integers(1, events))
    column = draw(st.sampled_from(EVENT_FIELDS))
    return seq, column, draw(_value(kind, column))


def _bind(value):
    """SQL and parameters for one stored value, as sqlite3 would store it."""
    if isinstance(value, tuple) and value[0] == "blob":
        return ":v", {"v": value[1]}
    if isinstance(value, tuple):
        return "CAST(:v AS TEXT)", {"v": value[1]}
    return ":v", {"v": value}


settings_ = settings(max_examples=60, deadline=None, derandomize=True,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                            HealthCheck.filter_too_much])


@pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")
def test_random_damage_gives_intact_or_the_first_damaged_seq(relaxed, engine, tmp_path):
    from cardctl.services.context import Context
    from cardctl.config import Settings
    from cardctl.storage.audit_walk import read_records, verify_stored

    settings = Settings(db_url=relaxed.database.url, key_file=relaxed.key_file, operator="auditor",
                        os_user=relaxed.admin)
    ctx = Context.open(settings)
    events = len(relaxed.events())
    engine_ = ctx.db.engine

    @settings_
    @given(damage(engine, events))
    def check(case):
        seq, column, value = case
        sql, params = _bind(value)
        with engine_.connect() as conn:
            outer = conn.begin()
            try:
                before = [r for r in read_records(conn, EVENT_FIELDS) if not isinstance(r, Exception)]
                try:
                    with conn.begin_nested():
                        conn.execute(text(f"UPDATE events SET {column} = {sql} WHERE seq = :seq"), {**params, "seq": seq})
                except DBAPIError:  # a constraint the damage cannot pass (a seq taken, a column too short)
                    assume(False)
                after = list(read_records(conn, EVENT_FIELDS))
                report = verify_stored(conn, ctx.keys.audit_key)
            finally:
                outer.rollback()
        unchanged = after == before
        if unchanged:
            assert report.ok, report
            return
        moved_first = column == "seq" and isinstance(value, int) and value < 1 and seq > 1
        assert not report.ok and report.bad >= 1
        assert report.first_bad_seq == (value if moved_first else seq), (case, report)

    check()


# --- export files -------------------------------------------------------------------------


def _export(office: Office, path: Path) -> list[bytes]:
    office.ok("audit", "export", str(path))
    return path.read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize("damage, says", [
    (b"[" * 200_000 + b"\n", "not JSON"),  # nested too deep for any parser's stack
    (b'{"seq": 3, "at": "\xff\xfe"}\n', "not JSON"),  # bytes that are no UTF-8
    (b"x" * (5 << 20) + b"\n", "longer than"),  # a line of 5 MiB
    (None, "edited"),  # a lone surrogate where text belongs: no hash can be taken of it
])
def test_a_damaged_export_line_is_counted_and_the_walk_goes_on(office, tmp_path, damage, says):
    path = tmp_path / "audit.jsonl"
    lines = _export(office, path)
    event3 = json.loads(lines[3])
    if damage is None:
        event3["reason"] = "\ud800"
        damage = (json.dumps(event3) + "\n").encode()
    lines[3] = damage  # line 4: event 3
    edited = json.loads(lines[8])
    edited["outcome"] = "ok" if edited["outcome"] != "ok" else "refused"
    lines[8] = (json.dumps(edited) + "\n").encode()  # and event 8, further down
    path.write_bytes(b"".join(lines))
    result = office("audit", "verify", "-o", "json", "--file", str(path))
    report = broken(result, 3)
    assert (report["first_bad_seq"], report["last_bad_seq"], report["bad"]) == (3, 8, 2)
    assert says in report["problem"] and "line 4" in report["problem"]
    assert (report["file"], report["line"]) == (str(path), 4)
    table = office("audit", "verify", "--file", str(path))
    assert "2 bad events from seq 3 to 8" in table.stderr and table.exit_code == 6


@pytest.mark.postgresql_only("DateStyle is a PostgreSQL setting")
def test_a_server_that_shows_dates_another_way_still_verifies(office):
    office.database.run_sql(f"ALTER DATABASE \"{office.database.name}\" SET datestyle = 'SQL, DMY'")
    result = office("audit", "verify")
    assert result.exit_code == 0 and "audit chain intact" in result.stderr, result.stderr


# --- audit log lists a damaged trail as it is stored ------------------------------------------




def test_audit_log_shows_an_event_with_an_unreadable_time_and_detail_as_stored(office):
    relax_constraints(office)
    garbage_time = "'infinity'" if office.postgresql else "'garbage'"
    office.insider_sql(f"UPDATE events SET at = {garbage_time}, detail = '{{not json' WHERE seq = 5")
    for output in ("table", "json", "jsonl", "csv"):
        result = office("audit", "log", "-o", output)
        assert result.exit_code == 0, (output, result.stderr)
        assert "Traceback" not in result.stderr + result.stdout and "internal error" not in result.stderr
        # one line on stderr names the damaged event and what to run
        assert len(result.stderr.splitlines()) == 1 and "5" in result.stderr and "audit verify" in result.stderr
    listed = json.loads(office("audit", "log", "-o", "json").stdout)
    damaged = next(event for event in listed if event["seq"] == 5)
    assert damaged["detail"] == "{not json" and "detail" in damaged["damaged"] and "at" in damaged["damaged"]
    assert damaged["at"] == (None if office.postgresql else "garbage")
    assert all("damaged" not in event for event in listed if event["seq"] != 5)
    assert len(listed) == len(office.events())


@pytest.mark.sqlite_only("bytes that are no UTF-8 in a text column: only SQLite stores them")
def test_audit_log_shows_bytes_that_are_no_text_escaped(office):
    office.insider_sql("UPDATE events SET reason = CAST(X'c328ff' AS TEXT) WHERE seq = 3")
    result = office("audit", "log", "-o", "json")
    assert result.exit_code == 0 and "Traceback" not in result.stderr, result.stderr
    event = next(event for event in json.loads(result.stdout) if event["seq"] == 3)
    assert event["reason"] == "\\xc3(\\xff" and event["damaged"] == "reason"
