"""Rules for PIN verification and the consecutive-failure PIN lock (cardctl.services.verify)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import bcrypt
import pytest
from sqlalchemy import select

from cardctl.domain import pins
from cardctl.domain.model import EndCause
from cardctl.errors import CardNotFound
from cardctl.services.cards import activate, parse_card_input
from cardctl.services.reads import cards_by_number
from cardctl.services.unlock import expire_due
from cardctl.services.verify import verify_pin
from orm import Card, Event, Lock, Policy, orm_write, orm_read
from conftest import GOOD_PIN, HOLDERS, issue

WRONG = "271828"  # never appears by chance in timestamps or counts


def set_policy(ctx, prefix: str, **changes) -> None:
    """Give a region prefix its own policy and drop the context's cached copy."""
    values = {"max_attempts": 3, "lock_hours": 24, "temp_loss_days": 7, "default_pin": "123456",
              "minor_age": 16, **changes}
    with orm_write(ctx.db) as session:
        session.add(Policy(region_prefix=prefix, **values))
    ctx._policies = None


def card_row(ctx, card_no: str) -> Card:
    with orm_read(ctx.db) as session:
        return session.get(Card, card_no)


def pin_locks(ctx, card_no: str) -> list[Lock]:
    with orm_read(ctx.db) as session:
        return list(session.scalars(select(Lock).where(Lock.card_no == card_no, Lock.kind == "pin")
                                    .order_by(Lock.id)))


def events(ctx, action: str, card_no: str | None = None) -> list[Event]:
    stmt = select(Event).where(Event.action == action).order_by(Event.seq)
    if card_no:
        stmt = stmt.where(Event.card_no == card_no)
    with orm_read(ctx.db) as session:
        return list(session.scalars(stmt))


def fail(ctx, card_no: str, times: int) -> list[str]:
    return [verify_pin(ctx, card_no, WRONG).result for _ in range(times)]


@pytest.fixture
def pin_not_checked(monkeypatch):
    """Any bcrypt check from here on fails the test."""
    def refuse(*_args, **_kwargs):
        raise AssertionError("the PIN was checked")

    monkeypatch.setattr(pins, "check_pin", refuse)


def second_active_card(ctx) -> str:
    card_no, name, id_number, region = HOLDERS[1]
    issue(ctx, card_no, name, id_number, region)
    activate(ctx, card_no, parse_card_input({"card_no": card_no, "name": name, "id_number": id_number,
                                             "region": region}, ctx.now().date()).id_number, GOOD_PIN)
    return card_no


# --- counting and locking ---------------------------------------------------------


def test_the_right_pin_is_ok_and_leaves_all_attempts(ctx, active_card):
    result = verify_pin(ctx, active_card, GOOD_PIN)
    assert (result.result, result.attempts_left, result.locks) == ("ok", 3, [])


def test_attempts_left_falls_by_one_per_wrong_pin(ctx, active_card):
    assert [verify_pin(ctx, active_card, WRONG).attempts_left for _ in range(2)] == [2, 1]
    assert pin_locks(ctx, active_card) == []
    assert card_row(ctx, active_card).failures == 2


def test_the_third_wrong_pin_locks_for_lock_hours(ctx, active_card, clock):
    fail(ctx, active_card, 2)
    third = verify_pin(ctx, active_card, WRONG)
    assert third.result == "wrong_pin"
    assert [lock.kind for lock in third.locks] == ["pin"]
    [lock] = pin_locks(ctx, active_card)
    assert lock.started_at == clock.now
    assert lock.ends_at == clock.now + timedelta(hours=24)
    assert lock.ended_at is None
    assert [e.outcome for e in events(ctx, "lock.pin", active_card)] == ["locked"]


def test_a_region_policy_of_five_attempts_locks_on_the_fifth_and_not_before(ctx, active_card):
    set_policy(ctx, "1101", max_attempts=5)  # the card's region is 110105
    assert [verify_pin(ctx, active_card, WRONG).attempts_left for _ in range(4)] == [4, 3, 2, 1]
    assert pin_locks(ctx, active_card) == []
    fifth = verify_pin(ctx, active_card, WRONG)
    assert fifth.locks and len(pin_locks(ctx, active_card)) == 1
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "locked"


def test_a_region_policy_does_not_apply_to_other_regions(ctx, active_card):
    other = second_active_card(ctx)  # region 440305
    set_policy(ctx, "1101", max_attempts=5)
    fail(ctx, other, 3)
    assert len(pin_locks(ctx, other)) == 1


def test_a_correct_pin_resets_the_consecutive_count(ctx, active_card):
    fail(ctx, active_card, 2)
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"
    assert card_row(ctx, active_card).failures == 0
    assert fail(ctx, active_card, 2) == ["wrong_pin", "wrong_pin"]
    assert pin_locks(ctx, active_card) == []
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"


# --- while locked ------------------------------------------------------------------


def test_a_wrong_pin_while_locked_is_refused_and_not_counted(ctx, active_card):
    fail(ctx, active_card, 3)
    results = fail(ctx, active_card, 5)
    assert results == ["locked"] * 5
    assert card_row(ctx, active_card).failures == 3
    assert len(pin_locks(ctx, active_card)) == 1  # no second lock, no longer lock
    assert [e.outcome for e in events(ctx, "pin.verify", active_card)][-5:] == ["refused_locked"] * 5


def test_the_right_pin_while_locked_is_still_locked(ctx, active_card):
    fail(ctx, active_card, 3)
    result = verify_pin(ctx, active_card, GOOD_PIN)
    assert (result.result, result.attempts_left) == ("locked", 0)
    assert card_row(ctx, active_card).failures == 3


def test_while_locked_the_pin_is_not_checked_at_all(ctx, active_card, monkeypatch):
    fail(ctx, active_card, 3)
    checked = []
    monkeypatch.setattr(pins, "check_pin", lambda *args: checked.append(args) or True)
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "locked"
    assert verify_pin(ctx, active_card, WRONG).result == "locked"
    assert checked == []


def test_the_lock_does_not_move_while_attempts_keep_coming(ctx, active_card, clock):
    fail(ctx, active_card, 3)
    [lock] = pin_locks(ctx, active_card)
    for _ in range(4):
        clock.advance(hours=5)
        assert verify_pin(ctx, active_card, WRONG).result == "locked"
    assert [(l.id, l.ends_at) for l in pin_locks(ctx, active_card)] == [(lock.id, lock.ends_at)]


# --- expiry by the clock, without cron ------------------------------------------------


def test_the_lock_binds_until_the_last_second_of_lock_hours(ctx, active_card, clock):
    fail(ctx, active_card, 3)
    clock.advance(hours=24, seconds=-1)
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "locked"


def test_after_lock_hours_the_card_verifies_without_cron(ctx, active_card, clock):
    fail(ctx, active_card, 3)
    clock.advance(hours=24)
    [view], _ = cards_by_number(ctx, [active_card])
    assert view.usable and view.failures == 0  # decided on read, nothing recorded yet
    result = verify_pin(ctx, active_card, GOOD_PIN)
    assert (result.result, result.attempts_left, result.locks) == ("ok", 3, [])


def test_an_expired_lock_resets_the_failure_count(ctx, active_card, clock):
    fail(ctx, active_card, 3)
    clock.advance(hours=30)
    assert verify_pin(ctx, active_card, WRONG).attempts_left == 2
    assert card_row(ctx, active_card).failures == 1
    assert len(pin_locks(ctx, active_card)) == 1  # the old lock did not come back


def test_an_expiry_noticed_later_is_recorded_at_the_locks_end_time(ctx, active_card, clock):
    fail(ctx, active_card, 3)
    [lock] = pin_locks(ctx, active_card)
    clock.advance(hours=71)
    verify_pin(ctx, active_card, GOOD_PIN)
    [ended] = pin_locks(ctx, active_card)
    assert ended.ended_at == lock.ends_at and ended.end_cause == EndCause.EXPIRED
    [expiry] = events(ctx, "lock.expire", active_card)
    assert expiry.at == lock.ends_at
    assert expiry.recorded_at == clock.now
    assert list(expire_due(ctx)) == []  # cron finds nothing left to do


def test_lock_hours_zero_means_the_lock_never_ends_by_itself(ctx, active_card, clock):
    set_policy(ctx, "110105", lock_hours=0)
    fail(ctx, active_card, 3)
    [lock] = pin_locks(ctx, active_card)
    assert lock.ends_at is None
    clock.advance(days=1000)
    assert list(expire_due(ctx)) == []
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "locked"
    assert pin_locks(ctx, active_card)[0].ended_at is None


# --- cards that cannot be used --------------------------------------------------------


def test_a_pending_card_is_unusable_and_the_attempt_is_not_counted(ctx, pin_not_checked):
    card_no, name, id_number, region = HOLDERS[1]
    issue(ctx, card_no, name, id_number, region)
    result = verify_pin(ctx, card_no, WRONG)
    assert (result.result, result.attempts_left) == ("unusable", 0)
    assert card_row(ctx, card_no).failures == 0
    assert [e.outcome for e in events(ctx, "pin.verify", card_no)] == ["refused_unusable"]


def test_a_pending_card_is_never_locked_by_attempts(ctx):
    card_no, name, id_number, region = HOLDERS[1]
    issue(ctx, card_no, name, id_number, region)
    assert {verify_pin(ctx, card_no, WRONG).result for _ in range(5)} == {"unusable"}
    assert pin_locks(ctx, card_no) == []


def test_an_unknown_card_raises_card_not_found(ctx, active_card):
    with pytest.raises(CardNotFound) as caught:
        verify_pin(ctx, "Z99999999", GOOD_PIN)
    assert caught.value.exit_code == 5 and caught.value.card_no == "Z99999999"
    assert events(ctx, "pin.verify") == []


# --- hash upgrades ----------------------------------------------------------------------


@pytest.fixture(params=["$2b$", "$2a$", "$2y$"])  # $2y$ is what PHP systems wrote
def legacy_card(ctx, request) -> str:
    """A card migrated from an older system with a plain bcrypt hash of GOOD_PIN (no pepper)."""
    card_no, name, id_number, region = HOLDERS[2]
    legacy = request.param + bcrypt.hashpw(GOOD_PIN.encode(), bcrypt.gensalt(rounds=4)).decode()[4:]
    issue(ctx, card_no, name, id_number, region, pin_hash=legacy)
    return card_no


def test_an_imported_plain_bcrypt_hash_is_active_and_legacy(ctx, legacy_card):
    card = card_row(ctx, legacy_card)
    assert (card.status, card.pin_scheme) == ("active", pins.SCHEME_LEGACY)


def test_a_legacy_hash_verifies_and_is_rehashed_with_the_pepper(ctx, legacy_card):
    old = card_row(ctx, legacy_card).pin_hash
    assert verify_pin(ctx, legacy_card, GOOD_PIN).result == "ok"
    card = card_row(ctx, legacy_card)
    assert card.pin_scheme == pins.SCHEME_PEPPERED and card.pin_hash != old
    assert not bcrypt.checkpw(GOOD_PIN.encode(), card.pin_hash.encode())  # no longer unkeyed
    assert pins.check_pin(GOOD_PIN, card.pin_hash, pins.SCHEME_PEPPERED, ctx.keys.pepper)
    assert [e.outcome for e in events(ctx, "pin.rehash", legacy_card)] == ["upgraded"]
    assert verify_pin(ctx, legacy_card, GOOD_PIN).result == "ok"
    assert verify_pin(ctx, legacy_card, WRONG).result == "wrong_pin"


def test_a_wrong_pin_does_not_rehash_a_legacy_hash(ctx, legacy_card):
    old = card_row(ctx, legacy_card).pin_hash
    assert verify_pin(ctx, legacy_card, WRONG).result == "wrong_pin"
    card = card_row(ctx, legacy_card)
    assert (card.pin_hash, card.pin_scheme) == (old, pins.SCHEME_LEGACY)
    assert events(ctx, "pin.rehash") == []


def test_a_raised_bcrypt_cost_rehashes_on_the_next_correct_pin(ctx, active_card):
    old = card_row(ctx, active_card).pin_hash
    assert old.startswith("$2b$04$")
    ctx.settings.bcrypt_cost = 5
    assert verify_pin(ctx, active_card, WRONG).result == "wrong_pin"
    assert card_row(ctx, active_card).pin_hash == old
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"
    new = card_row(ctx, active_card).pin_hash
    assert new.startswith("$2b$05$")
    assert pins.check_pin(GOOD_PIN, new, pins.SCHEME_PEPPERED, ctx.keys.pepper)


def test_a_hash_at_the_configured_cost_is_left_alone(ctx, active_card):
    old = card_row(ctx, active_card).pin_hash
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"
    assert card_row(ctx, active_card).pin_hash == old
    assert events(ctx, "pin.rehash") == []


# --- concurrency ---------------------------------------------------------------------------


def test_concurrent_wrong_pins_are_neither_lost_nor_let_past_the_limit(ctx, active_card):
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _: verify_pin(ctx, active_card, WRONG).result, range(12)))
    assert sorted(results) == ["locked"] * 9 + ["wrong_pin"] * 3
    assert card_row(ctx, active_card).failures == 3
    assert len(pin_locks(ctx, active_card)) == 1
