"""The lock store: the one statement that ends a set of locks, and the expiry of PIN locks
(cardctl.storage.stores.locks)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from cardctl.domain.model import EndCause, LockKind
from cardctl.domain.records import LockRecord
from cardctl.storage.stores import base
from cardctl.storage.stores import locks as lock_store
from cardctl.storage.tables import locks
from conftest import HOLDERS, issue


def _issue_all(ctx) -> list[str]:
    for card_no, name, id_number, region in HOLDERS:
        issue(ctx, card_no, name, id_number, region)
    return [card_no for card_no, *_ in HOLDERS]


def _all_locks(ctx, card_nos):
    with ctx.read() as tx:
        return {lock.id: lock for card_no in card_nos for lock in _every_lock(tx, card_no)}


def _every_lock(tx, card_no):
    """Ended locks too, read from the table the store writes."""
    return [LockRecord(**row._mapping)
            for row in tx.conn.execute(select(locks).where(locks.c.card_no == card_no).order_by(locks.c.id))]


def test_ending_locks_keeps_the_end_of_a_lock_another_writer_already_ended(ctx, clock):
    card_nos = _issue_all(ctx)
    now = ctx.now()
    with ctx.write() as tx:
        first = tx.locks.open(card_nos[0], LockKind.ADMIN, "anomaly", now, None, "tester")
        second = tx.locks.open(card_nos[1], LockKind.ADMIN, "anomaly", now, None, "tester")
        tx.locks.end([second], now, EndCause.UNLOCKED, "earlier")
    clock.advance(hours=1)
    later = ctx.now()
    with ctx.write() as tx:
        tx.locks.end([first, second], later, EndCause.RESET, "clerk")
    ended = _all_locks(ctx, card_nos)
    assert (ended[first].ended_at, ended[first].end_cause, ended[first].ended_by) == (later, "reset", "clerk")
    assert (ended[second].ended_at, ended[second].end_cause, ended[second].ended_by) == (now, "unlocked", "earlier")


def test_a_list_longer_than_one_in_list_is_split_and_every_lock_ends(ctx, monkeypatch):
    card_nos = _issue_all(ctx)
    now = ctx.now()
    with ctx.write() as tx:
        ids = [tx.locks.open(card_no, kind, "r", now, None, "tester")
               for card_no in card_nos for kind in (LockKind.ADMIN, LockKind.ARREARS)]
    slices = []

    def two_at_a_time(values):
        parts = list(base.chunks(values, 2))
        slices.extend(parts)
        return iter(parts)

    monkeypatch.setattr(lock_store, "chunks", two_at_a_time)
    with ctx.write() as tx:
        tx.locks.end(ids, now, EndCause.UNLOCKED, "clerk")
    assert [len(part) for part in slices] == [2, 2, 2]
    assert all(lock.ended_at == now for lock in _all_locks(ctx, card_nos).values())


def test_due_pin_locks_end_at_their_own_end_time_oldest_first_and_nothing_else_ends(ctx, clock):
    card_nos = _issue_all(ctx)
    now = ctx.now()
    with ctx.write() as tx:
        late = tx.locks.open(card_nos[0], LockKind.PIN, "3 wrong", now, now + timedelta(hours=2), "system")
        early = tx.locks.open(card_nos[1], LockKind.PIN, "3 wrong", now, now + timedelta(hours=1), "system")
        running = tx.locks.open(card_nos[2], LockKind.PIN, "3 wrong", now, now + timedelta(hours=5), "system")
        admin = tx.locks.open(card_nos[0], LockKind.ADMIN, "anomaly", now, now + timedelta(hours=1), "tester")
    clock.advance(hours=3)
    with ctx.write() as tx:
        ended = tx.locks.end_due_pin(tx.now)
        assert tx.locks.effective(card_nos[0], tx.now) == []  # the admin lock passed its end too
        assert tx.locks.any_effective(card_nos[2], tx.now)
    assert ended == [(early, card_nos[1], now + timedelta(hours=1)), (late, card_nos[0], now + timedelta(hours=2))]
    rows = _all_locks(ctx, card_nos)
    assert (rows[early].ended_at, rows[early].end_cause, rows[early].ended_by) == (
        now + timedelta(hours=1), "expired", "system")
    assert rows[running].ended_at is None and rows[admin].ended_at is None  # not due / not a PIN lock
