"""Rules for the audit trail: a keyed hash chain that shows edits, deletions and reordering,
and holds no secrets (cardctl.storage.audit, cardctl.services.audit)."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from cardctl.domain.identity import parse_id_number
from cardctl.domain.model import LockKind
from cardctl.errors import KeyFileError, Refused
from cardctl.keys import create_key_file
from cardctl.services.audit import verify_chain
from cardctl.services.cards import activate
from cardctl.services.context import Context
from cardctl.services.unlock import UnlockRequest, expire_due, unlock_cards
from cardctl.services.verify import verify_pin
from conftest import GOOD_PIN, HOLDERS, issue
from orm import orm_write, orm_read

WRONG_PINS = ("271828", "314159")  # digits that never occur by chance in timestamps or counts
WEAK_PIN = "520520"  # offered at activation and refused

# Columns meant to hold digests; their random-looking text may contain any six digits
# by chance, so instead of a substring search they must have the shape of a digest.
DIGESTS = {
    ("cards", "pin_hash"): re.compile(r"\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}"),
    ("holders", "id_hash"): re.compile(r"[0-9a-f]{64}"),
    ("holders", "id_tail_hash"): re.compile(r"[0-9a-f]{64}"),
    ("events", "hash"): re.compile(r"[0-9a-f]{64}"),
    ("events", "prev_hash"): re.compile(r"[0-9a-f]{64}"),
    ("audit_head", "hash"): re.compile(r"[0-9a-f]{64}"),
}


@pytest.fixture
def busy(ctx, clock) -> Context:
    """A database with issues, a refused weak PIN, activations, verifies, a lock, an unlock and an expiry."""
    for card_no, name, id_number, region in HOLDERS:
        issue(ctx, card_no, name, id_number, region)
    today = clock.now.date()
    first, second, third = ([card_no, parse_id_number(id_number, today)] for card_no, _, id_number, _ in HOLDERS)
    with pytest.raises(Refused):
        activate(ctx, *first, WEAK_PIN)
    for card_no, id_number in (first, second, third):
        activate(ctx, card_no, id_number, GOOD_PIN)
    verify_pin(ctx, first[0], GOOD_PIN)
    for pin in (*WRONG_PINS, WRONG_PINS[0]):
        verify_pin(ctx, first[0], pin)
        verify_pin(ctx, second[0], pin)
    with pytest.raises(Refused):  # the wrong holder's ID at the counter
        activate(ctx, third[0], second[1], GOOD_PIN)
    list(unlock_cards(ctx, [first[0]], UnlockRequest(LockKind.PIN, "holder verified",
                                                     id_number=first[1])))
    clock.advance(hours=25)
    list(expire_due(ctx))
    return ctx


def run_sql(ctx: Context, sql: str, **params) -> None:
    with orm_write(ctx.db) as session:
        session.execute(text(sql), params)


def event_count(ctx: Context) -> int:
    with orm_read(ctx.db) as session:
        return session.scalar(text("SELECT count(*) FROM events"))


def text_cells(ctx: Context):
    """(table, column, value) for every non-empty text value in the database."""
    with orm_read(ctx.db) as session:
        tables = inspect(session.connection()).get_table_names()
        for table in tables:
            columns = [column["name"] for column in inspect(session.connection()).get_columns(table)]
            for row in session.execute(text(f'SELECT * FROM "{table}"')):
                for column, value in zip(columns, row):
                    if value is not None:
                        yield table, column, str(value)


# --- the chain ----------------------------------------------------------------------------


def test_after_normal_activity_the_chain_verifies(busy):
    report = verify_chain(busy)
    assert report.ok and report.problem is None
    assert report.checked == event_count(busy) >= 15
    with orm_read(busy.db) as session:
        actions = set(session.scalars(text("SELECT action || ':' || outcome FROM events")))
    assert {"card.activate:refused", "lock.pin:locked", "lock.unlock:unlocked", "lock.expire:ended"} <= actions


def test_an_edited_event_is_named_by_its_seq(busy):
    run_sql(busy, "UPDATE events SET outcome = 'ok' WHERE seq = 7")
    report = verify_chain(busy)
    # every event is still read, and the one edited is the only one counted
    assert (report.ok, report.first_bad_seq, report.last_bad_seq, report.bad) == (False, 7, 7, 1)
    assert report.checked == event_count(busy)
    assert "edited" in report.problem


@pytest.mark.parametrize("column, value", [
    ("operator", "someone else"), ("card_no", "A00000009"), ("reason", "made up"),
    ("at", "2026-01-01 00:00:00.000000"), ("detail", '{"failures":0}'), ("prev_hash", "0" * 64),
])
def test_editing_any_column_is_detected(busy, column, value):
    run_sql(busy, f"UPDATE events SET {column} = :value WHERE seq = 12", value=value)
    report = verify_chain(busy)
    assert (report.ok, report.first_bad_seq) == (False, 12)


def test_an_edit_with_a_recomputed_plain_hash_is_still_detected(busy):
    # without the audit key nobody can forge the HMAC; a SHA-256 in its place does not pass
    run_sql(busy, "UPDATE events SET outcome = 'ok', hash = :fake WHERE seq = 9", fake="ab" * 32)
    report = verify_chain(busy)
    assert (report.ok, report.first_bad_seq) == (False, 9)


def test_a_deleted_middle_event_is_detected_as_deleted(busy):
    run_sql(busy, "DELETE FROM events WHERE seq = 10")
    report = verify_chain(busy)
    assert (report.ok, report.first_bad_seq, report.last_bad_seq, report.bad) == (False, 10, 10, 1)
    assert "deleted" in report.problem


def test_a_deletion_hidden_by_renumbering_is_detected_as_deleted(busy):
    last = event_count(busy)
    run_sql(busy, "DELETE FROM events WHERE seq = 10")
    for seq in range(11, last + 1):
        run_sql(busy, "UPDATE events SET seq = :new WHERE seq = :old", new=seq - 1, old=seq)
    report = verify_chain(busy)
    assert (report.ok, report.first_bad_seq) == (False, 10)
    assert "deleted" in report.problem


def test_a_deleted_last_event_is_detected(busy):
    last = event_count(busy)
    run_sql(busy, "DELETE FROM events WHERE seq = :seq", seq=last)
    report = verify_chain(busy)
    assert (report.ok, report.first_bad_seq) == (False, last)
    assert "deleted" in report.problem


def test_swapped_events_are_detected_as_reordered(busy):
    run_sql(busy, "UPDATE events SET seq = -1 WHERE seq = 5")
    run_sql(busy, "UPDATE events SET seq = 5 WHERE seq = 6")
    run_sql(busy, "UPDATE events SET seq = 6 WHERE seq = -1")
    report = verify_chain(busy)
    assert (report.ok, report.first_bad_seq) == (False, 5)
    assert "reordered" in report.problem


def test_the_chain_keeps_verifying_as_events_are_appended(busy):
    verify_pin(busy, HOLDERS[2][0], GOOD_PIN)
    assert verify_chain(busy).ok


def test_the_chain_fails_under_another_audit_key(busy):
    other = dataclasses.replace(busy.keys, audit_key=b"\x01" * 32)
    report = verify_chain(dataclasses.replace(busy, keys=other))
    assert (report.ok, report.first_bad_seq) == (False, 1)


# --- no secrets ---------------------------------------------------------------------------


def test_no_table_holds_a_pin_in_clear(busy):
    secrets = (GOOD_PIN, WEAK_PIN, *WRONG_PINS)
    seen_digests = 0
    for table, column, value in text_cells(busy):
        shape = DIGESTS.get((table, column))
        if shape is not None:
            assert shape.fullmatch(value), (table, column)
            seen_digests += 1
        else:
            assert not any(pin in value for pin in secrets), (table, column)
    assert seen_digests > 0


def test_no_table_holds_a_full_id_number(busy):
    numbers = [id_number for _, _, id_number, _ in HOLDERS]
    for table, column, value in text_cells(busy):
        assert not any(number in value.upper() for number in numbers), (table, column)


@pytest.mark.sqlite_only("reads the bytes of the SQLite file and its WAL")
def test_the_database_files_hold_no_full_id_number(busy, settings):
    db_path = Path(settings.db_url)
    files = [path for path in db_path.parent.iterdir() if path.name.startswith(db_path.name)]
    assert db_path in files
    numbers = [id_number.encode() for _, _, id_number, _ in HOLDERS]
    for path in files:  # the main file and the WAL, where fresh pages live
        content = path.read_bytes().upper()
        assert not any(number in content for number in numbers), path.name


def test_events_show_the_masked_id_number(busy):
    masked = [value for table, column, value in text_cells(busy) if table == "events" and "***" in value]
    assert any("110***********002X" in value for value in masked)


# --- the key belongs to the database ---------------------------------------------------------


def test_opening_with_a_different_key_file_is_refused(ctx, settings, clock, tmp_path):
    other_key = tmp_path / "other.key"
    assert create_key_file(other_key)
    with pytest.raises(KeyFileError) as caught:
        Context.open(dataclasses.replace(settings, key_file=other_key), clock)
    assert "does not belong to this database" in caught.value.message
    assert Context.open(settings, clock).keys.fingerprint == ctx.keys.fingerprint


def test_an_anchor_detects_the_newest_events_cut_off_with_the_head(ctx, active_card):
    from sqlalchemy import text

    from cardctl.services.audit import verify_chain
    from cardctl.services.verify import verify_pin

    verify_pin(ctx, active_card, "000000")
    report = verify_chain(ctx)
    anchor = (report.checked, report.head_hash[:16])
    assert verify_chain(ctx, [anchor]).ok
    # cut the newest event and rewind the head to the previous one: the chain alone looks intact
    with ctx.db.engine.begin() as conn:
        last = conn.execute(text("SELECT seq, prev_hash FROM events ORDER BY seq DESC LIMIT 1")).one()
        conn.execute(text("DELETE FROM events WHERE seq = :s"), {"s": last.seq})
        conn.execute(text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": last.seq - 1, "h": last.prev_hash})
    assert verify_chain(ctx).ok
    cut = verify_chain(ctx, [anchor])
    assert not cut.ok and cut.first_bad_seq == anchor[0] and "cut back" in cut.problem
