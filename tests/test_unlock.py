"""Rules for clearing locks: unlock by operators and the cron expiry sweep (cardctl.services.unlock)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import insert, select, text

from cardctl.config import Settings
from cardctl.domain import pins
from cardctl.domain.identity import make_id_number, mask_id, parse_id_number
from cardctl.domain.model import EndCause, LockKind
from cardctl.errors import InvalidInput
from cardctl.services import unlock as unlock_service
from cardctl.services.cards import activate
from cardctl.services.context import Context
from cardctl.services.lifecycle import Agent
from cardctl.services.policies import set_policy
from cardctl.services.setup import init_database
from cardctl.services.unlock import UnlockRequest, expire_due, unlock_cards
from cardctl.services.verify import verify_pin
from orm import Card, Event, Holder, Lock, orm_write, orm_read
from conftest import GOOD_PIN, HOLDERS, issue

WRONG = "271828"
PIN_UNLOCK = UnlockRequest(LockKind.PIN, "holder verified at counter")


def unlock(ctx, *card_nos: str, request: UnlockRequest = PIN_UNLOCK) -> list[tuple[str, str]]:
    return [(item.card_no, item.result) for item in unlock_cards(ctx, card_nos, request)]


def lock_by_pin(ctx, card_no: str) -> None:
    for _ in range(3):
        verify_pin(ctx, card_no, WRONG)


def add_lock(ctx, card_no: str, kind: str, *, started=None, ends=None) -> int:
    started = started or ctx.now()
    with orm_write(ctx.db) as session:
        return session.execute(insert(Lock).returning(Lock.id).values(
            card_no=card_no, kind=kind, reason=f"{kind} set in test", started_at=started, ends_at=ends,
            created_by="tester")).scalar_one()


def lock_rows(ctx, card_no: str | None = None) -> list[Lock]:
    stmt = select(Lock).order_by(Lock.id)
    if card_no:
        stmt = stmt.where(Lock.card_no == card_no)
    with orm_read(ctx.db) as session:
        return list(session.scalars(stmt))


def open_kinds(ctx, card_no: str) -> list[str]:
    return [lock.kind for lock in lock_rows(ctx, card_no) if lock.ended_at is None]


def failures(ctx, card_no: str) -> int:
    with orm_read(ctx.db) as session:
        return session.get(Card, card_no).failures


def events(ctx, action: str) -> list[Event]:
    with orm_read(ctx.db) as session:
        return list(session.scalars(select(Event).where(Event.action == action).order_by(Event.seq)))


def dump(ctx) -> dict[str, list[tuple]]:
    """Every row of the tables an unlock could touch, in a fixed order."""
    with orm_read(ctx.db) as session:
        return {table: [tuple(row) for row in session.execute(text(f"SELECT * FROM {table} ORDER BY 1"))]
                for table in ("cards", "locks", "events", "audit_head")}


def issue_all(ctx) -> list[str]:
    for card_no, name, id_number, region in HOLDERS:
        issue(ctx, card_no, name, id_number, region)
    return [card_no for card_no, *_ in HOLDERS]


# --- one card ---------------------------------------------------------------------------


def test_unlock_clears_a_pin_lock_and_resets_failures(ctx, active_card):
    lock_by_pin(ctx, active_card)
    assert unlock(ctx, active_card) == [(active_card, "unlocked")]
    [lock] = lock_rows(ctx, active_card)
    assert lock.ended_at == ctx.now()
    assert (lock.end_cause, lock.ended_by) == (EndCause.UNLOCKED, "tester")
    assert failures(ctx, active_card) == 0
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"


def test_the_unlock_is_audited_with_its_reason(ctx, active_card):
    lock_by_pin(ctx, active_card)
    unlock(ctx, active_card)
    [event] = events(ctx, "lock.unlock")
    assert (event.card_no, event.outcome, event.reason) == (active_card, "unlocked", PIN_UNLOCK.reason)


def test_unlock_never_clears_an_arrears_lock(ctx, active_card):
    add_lock(ctx, active_card, LockKind.ARREARS.value)
    [item] = unlock_cards(ctx, [active_card], PIN_UNLOCK)
    # kept and said so, not a failure of the batch: there was no PIN lock to clear
    assert (item.result, item.detail) == ("not locked", "kept: arrears lock (only pay-arrears lifts it)")
    assert [lock.kind for lock in item.kept] == ["arrears"]
    assert open_kinds(ctx, active_card) == ["arrears"]
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "locked"


def test_unlock_cannot_even_be_asked_for_arrears(ctx, active_card):
    add_lock(ctx, active_card, LockKind.ARREARS.value)
    with pytest.raises(InvalidInput):
        unlock(ctx, active_card, request=UnlockRequest(LockKind.ARREARS, "paid in cash"))
    assert open_kinds(ctx, active_card) == ["arrears"]


def test_unlocking_a_pin_lock_leaves_the_arrears_lock_in_place(ctx, active_card):
    add_lock(ctx, active_card, LockKind.ARREARS.value)
    pin_lock = add_lock(ctx, active_card, LockKind.PIN.value, ends=ctx.now() + timedelta(hours=24))
    items = list(unlock_cards(ctx, [active_card], PIN_UNLOCK))
    assert [(i.result, i.detail) for i in items] == [("unlocked", "still locked: arrears")]
    assert open_kinds(ctx, active_card) == ["arrears"]
    assert [l.id for l in lock_rows(ctx, active_card) if l.ended_at] == [pin_lock]


def test_an_admin_lock_is_cleared_only_when_asked_by_kind(ctx, active_card):
    add_lock(ctx, active_card, LockKind.ADMIN.value)
    assert unlock(ctx, active_card) == [(active_card, "not locked")]  # kept: admin
    assert open_kinds(ctx, active_card) == ["admin"]
    admin = UnlockRequest(LockKind.ADMIN, "anomaly checked")
    assert unlock(ctx, active_card, request=admin) == [(active_card, "unlocked")]
    assert open_kinds(ctx, active_card) == []


def test_an_admin_unlock_does_not_clear_a_pin_lock(ctx, active_card):
    lock_by_pin(ctx, active_card)
    admin = UnlockRequest(LockKind.ADMIN, "anomaly checked")
    assert unlock(ctx, active_card, request=admin) == [(active_card, "not locked")]  # kept: pin
    assert open_kinds(ctx, active_card) == ["pin"]
    assert failures(ctx, active_card) == 3


def test_a_wrong_id_number_refuses_the_unlock(ctx, active_card):
    lock_by_pin(ctx, active_card)
    someone_else = parse_id_number(HOLDERS[1][2], date(2026, 11, 23))
    request = UnlockRequest(LockKind.PIN, "counter", id_number=someone_else)
    assert unlock(ctx, active_card, request=request) == [(active_card, "refused")]
    assert open_kinds(ctx, active_card) == ["pin"]
    assert [e.outcome for e in events(ctx, "lock.unlock")] == ["refused"]


def test_the_holders_id_number_allows_the_unlock(ctx, active_card):
    lock_by_pin(ctx, active_card)
    holder = parse_id_number(HOLDERS[0][2], date(2026, 11, 23))
    request = UnlockRequest(LockKind.PIN, "counter", id_number=holder)
    assert unlock(ctx, active_card, request=request) == [(active_card, "unlocked")]


# --- at a counter: the holder, an agent, a minor's guardian -------------------------------

HOLDER_ID = HOLDERS[0][2]
STRANGER_ID = HOLDERS[1][2]  # a valid number, but not the holder of A00000001
MINOR_ID = make_id_number("110105", date(2016, 5, 1), 12)  # 10 years old at the test clock
GUARDIAN = (HOLDERS[1][2], "王芳")
MINOR_CARD = "M00000001"


def person(ctx, raw: str):
    return parse_id_number(raw, ctx.now().date())


def counter(ctx, id_number: str, agent: tuple[str, str] | None = None, dry_run: bool = False) -> UnlockRequest:
    acting = Agent(person(ctx, agent[0]), agent[1]) if agent else None
    return UnlockRequest(LockKind.PIN, "at the counter", person(ctx, id_number), dry_run, acting)


def detail_of(event: Event) -> dict:
    return json.loads(event.detail)


@pytest.fixture
def minor_card(ctx) -> str:
    """A 10-year-old's active card, activated by the guardian, locked by three wrong PINs."""
    issue(ctx, MINOR_CARD, "小明", MINOR_ID, "110105")
    activate(ctx, MINOR_CARD, person(ctx, MINOR_ID), GOOD_PIN, Agent(person(ctx, GUARDIAN[0]), GUARDIAN[1]))
    lock_by_pin(ctx, MINOR_CARD)
    return MINOR_CARD


def test_a_minors_card_is_not_unlocked_at_a_counter_without_a_guardian(ctx, minor_card):
    [item] = unlock_cards(ctx, [minor_card], counter(ctx, MINOR_ID))
    assert item.result == "refused"
    assert item.detail == ("the holder is 10, under the region's minor age of 16; a guardian must act "
                           "(--agent-id-number and --agent-name)")
    assert open_kinds(ctx, minor_card) == ["pin"] and failures(ctx, minor_card) == 3
    [event] = events(ctx, "lock.unlock")
    # the trail is told that someone must act for the holder, never the holder's age
    assert (event.outcome, detail_of(event)) == ("refused", {"kind": "pin", "note": (
        "a guardian or an adult agent other than the holder must act (--agent-id-number and --agent-name)")})


def test_a_guardian_unlocks_a_minors_card_and_is_recorded_masked(ctx, minor_card):
    assert unlock(ctx, minor_card, request=counter(ctx, MINOR_ID, GUARDIAN)) == [(minor_card, "unlocked")]
    assert open_kinds(ctx, minor_card) == [] and failures(ctx, minor_card) == 0
    [event] = events(ctx, "lock.unlock")
    assert detail_of(event) == {"kind": "pin", "agent": mask_id(GUARDIAN[0]), "agent_name": GUARDIAN[1]}
    assert GUARDIAN[0] not in event.detail and MINOR_ID not in event.detail


def test_the_minor_age_of_an_unlock_is_the_card_regions(ctx):
    seventeen = make_id_number("110105", date(2009, 1, 1), 31)
    issue(ctx, MINOR_CARD, "小刚", seventeen, "110105")
    activate(ctx, MINOR_CARD, person(ctx, seventeen), GOOD_PIN)  # 17: no guardian under the default 16
    lock_by_pin(ctx, MINOR_CARD)
    set_policy(ctx, "11", {"minor_age": 18})
    [item] = unlock_cards(ctx, [MINOR_CARD], counter(ctx, seventeen))
    assert (item.result, "minor age of 18" in item.detail) == ("refused", True)
    assert unlock(ctx, MINOR_CARD, request=counter(ctx, seventeen, GUARDIAN)) == [(MINOR_CARD, "unlocked")]


def test_an_agent_unlocks_an_adults_card_with_both_id_numbers_recorded(ctx, active_card):
    lock_by_pin(ctx, active_card)
    agent = (STRANGER_ID, "王芳")
    assert unlock(ctx, active_card, request=counter(ctx, HOLDER_ID, agent)) == [(active_card, "unlocked")]
    [event] = events(ctx, "lock.unlock")
    assert detail_of(event) == {"kind": "pin", "agent": mask_id(STRANGER_ID), "agent_name": "王芳"}


def test_the_holder_acting_alone_records_no_agent(ctx, active_card):
    lock_by_pin(ctx, active_card)
    unlock(ctx, active_card, request=counter(ctx, HOLDER_ID))
    assert detail_of(events(ctx, "lock.unlock")[-1]) == {"kind": "pin"}


def test_an_agent_does_not_make_up_for_a_holder_who_does_not_match(ctx, active_card):
    lock_by_pin(ctx, active_card)
    [item] = unlock_cards(ctx, [active_card], counter(ctx, STRANGER_ID, (HOLDER_ID, "张伟")))
    assert (item.result, item.detail) == ("refused", "the ID number given does not match the holder")
    assert open_kinds(ctx, active_card) == ["pin"]


@pytest.mark.parametrize("agent, why", [
    ((HOLDER_ID, "张伟"), "the agent's ID number is the holder's own; an agent is someone else"),
    ((make_id_number("110105", date(2012, 1, 1), 21), "小红"),
     "the agent is 14; an agent or guardian must be 18 or older"),
], ids=["the holder", "a minor"])
def test_an_agent_who_may_not_act_is_refused(ctx, active_card, agent, why):
    lock_by_pin(ctx, active_card)
    [item] = unlock_cards(ctx, [active_card], counter(ctx, HOLDER_ID, agent))
    assert (item.result, item.detail) == ("refused", why)
    assert open_kinds(ctx, active_card) == ["pin"]


def test_an_agent_without_the_holders_id_number_is_refused(ctx, active_card):
    lock_by_pin(ctx, active_card)
    request = UnlockRequest(LockKind.PIN, "at the counter", agent=Agent(person(ctx, STRANGER_ID), "王芳"))
    with pytest.raises(InvalidInput, match="--id-number"):
        unlock(ctx, active_card, request=request)
    assert open_kinds(ctx, active_card) == ["pin"] and events(ctx, "lock.unlock") == []


def test_a_counter_batch_checks_the_same_holder_and_guardian_against_each_card(ctx, active_card, minor_card):
    lock_by_pin(ctx, active_card)
    request = counter(ctx, MINOR_ID, GUARDIAN)
    assert unlock(ctx, minor_card, active_card, request=request) == [
        (minor_card, "unlocked"), (active_card, "refused")]  # not the minor's card: the guardian cannot act on it
    assert open_kinds(ctx, active_card) == ["pin"]


def test_a_counter_dry_run_says_what_the_guardian_rule_would_do_and_changes_nothing(ctx, minor_card):
    before = dump(ctx)
    alone = list(unlock_cards(ctx, [minor_card], counter(ctx, MINOR_ID, dry_run=True)))
    assert [(item.result, "guardian" in item.detail) for item in alone] == [("refused", True)]
    assert unlock(ctx, minor_card, request=counter(ctx, MINOR_ID, GUARDIAN, dry_run=True)) == [
        (minor_card, "would unlock")]
    assert dump(ctx) == before


def test_unlock_at_the_command_line_takes_a_guardian(run, minor_card):
    base = ("unlock", minor_card, "--reason", "at the counter", "--id-number", MINOR_ID, "-o", "json")
    alone = run(*base)
    assert alone.exit_code == 6 and json.loads(alone.stdout)[0]["result"] == "refused"  # one card: no batch
    half = run(*base, "--agent-id-number", GUARDIAN[0])
    assert half.exit_code == 2 and "--agent-name" in half.stderr
    done = run(*base, "--agent-id-number", GUARDIAN[0], "--agent-name", GUARDIAN[1])
    assert done.exit_code == 0, done.stderr
    assert json.loads(done.stdout)[0]["result"] == "unlocked"


def test_agent_options_without_id_number_are_a_usage_error(run, active_card):
    result = run("unlock", active_card, "--reason", "at the counter",
                 "--agent-id-number", STRANGER_ID, "--agent-name", "王芳")
    assert result.exit_code == 2 and "--id-number" in result.stderr


# --- batches ----------------------------------------------------------------------------


def test_results_come_one_per_card_in_input_order(ctx, active_card):
    lock_by_pin(ctx, active_card)
    issue(ctx, *HOLDERS[1])
    assert unlock(ctx, "Z99999999", HOLDERS[1][0], "a00000001", active_card, "A0000001") == [
        ("Z99999999", "not found"),
        (HOLDERS[1][0], "not locked"),
        ("a00000001", "invalid"),  # lower case is refused, not silently upper-cased
        (active_card, "unlocked"),
        ("A0000001", "invalid"),  # 8 characters
    ]


def test_a_card_named_twice_is_reported_once(ctx, active_card):
    lock_by_pin(ctx, active_card)
    assert unlock(ctx, active_card, "Z99999999", active_card) == [
        (active_card, "unlocked"), ("Z99999999", "not found")]
    assert len(events(ctx, "lock.unlock")) == 2


def test_a_card_named_again_in_a_later_chunk_is_still_reported_once(ctx, active_card, monkeypatch):
    # a list of tens of thousands of cards is read in chunks; a repeat far down the file
    # must not come back as "not locked" (nor be audited twice)
    monkeypatch.setattr(unlock_service, "CHUNK", 2)
    lock_by_pin(ctx, active_card)
    assert unlock(ctx, active_card, "Z99999999", "Z99999998", "Z99999999", "Z99999997", active_card) == [
        (active_card, "unlocked"), ("Z99999999", "not found"), ("Z99999998", "not found"),
        ("Z99999997", "not found")]
    assert len(events(ctx, "lock.unlock")) == 4


def test_a_second_run_of_the_same_batch_changes_nothing(ctx):
    cards = issue_all(ctx)
    for card_no in cards:
        add_lock(ctx, card_no, LockKind.PIN.value, ends=ctx.now() + timedelta(hours=24))
    assert unlock(ctx, *cards) == [(card_no, "unlocked") for card_no in cards]
    ended = [(l.id, l.ended_at) for l in lock_rows(ctx)]
    assert unlock(ctx, *cards) == [(card_no, "not locked") for card_no in cards]
    assert [(l.id, l.ended_at) for l in lock_rows(ctx)] == ended


def test_a_dry_run_changes_nothing(ctx, active_card, clock):
    lock_by_pin(ctx, active_card)
    issue(ctx, *HOLDERS[1])
    add_lock(ctx, HOLDERS[1][0], LockKind.PIN.value, started=clock.now - timedelta(hours=30),
             ends=clock.now - timedelta(hours=6))  # expired, not yet recorded
    before = dump(ctx)
    request = UnlockRequest(LockKind.PIN, "just looking", dry_run=True)
    assert unlock(ctx, active_card, HOLDERS[1][0], "Z99999999", request=request) == [
        (active_card, "would unlock"), (HOLDERS[1][0], "not locked"), ("Z99999999", "not found")]
    assert dump(ctx) == before


def test_batches_larger_than_a_chunk_keep_order_and_count(ctx, monkeypatch):
    monkeypatch.setattr(unlock_service, "CHUNK", 2)
    cards = issue_all(ctx)
    add_lock(ctx, cards[2], LockKind.PIN.value, ends=ctx.now() + timedelta(hours=1))
    got = unlock(ctx, cards[0], "bad", cards[1], cards[2], "Z99999999")
    assert got == [(cards[0], "not locked"), ("bad", "invalid"), (cards[1], "not locked"),
                   (cards[2], "unlocked"), ("Z99999999", "not found")]


# --- the cron sweep ---------------------------------------------------------------------


def test_expire_due_ends_only_locks_past_their_end(ctx, clock):
    a, b, c = issue_all(ctx)
    past = add_lock(ctx, a, "pin", started=clock.now - timedelta(hours=25), ends=clock.now - timedelta(hours=1))
    at_now = add_lock(ctx, b, "pin", started=clock.now - timedelta(hours=24), ends=clock.now)
    future = add_lock(ctx, c, "pin", ends=clock.now + timedelta(seconds=1))
    forever = add_lock(ctx, c, "pin", ends=None)
    admin = add_lock(ctx, a, "admin")
    assert sorted(item.card_no for item in expire_due(ctx)) == [a, b]
    still_open = {lock.id for lock in lock_rows(ctx) if lock.ended_at is None}
    assert still_open == {future, forever, admin}
    assert {past, at_now}.isdisjoint(still_open)


def test_expire_due_records_each_end_at_the_locks_end_time(ctx, clock):
    a, b, _ = issue_all(ctx)
    first_end, second_end = clock.now - timedelta(hours=3), clock.now - timedelta(minutes=7)
    add_lock(ctx, a, "pin", started=first_end - timedelta(hours=24), ends=first_end)
    add_lock(ctx, b, "pin", started=second_end - timedelta(hours=24), ends=second_end)
    reported = {item.card_no: item.ended_at for item in expire_due(ctx)}
    assert reported == {a: first_end, b: second_end}
    for lock in lock_rows(ctx):
        assert (lock.ended_at, lock.end_cause, lock.ended_by) == (lock.ends_at, EndCause.EXPIRED, "system")
    assert {(e.card_no, e.at, e.recorded_at) for e in events(ctx, "lock.expire")} == {
        (a, first_end, clock.now), (b, second_end, clock.now)}


def test_expire_due_resets_the_failure_count(ctx, active_card, clock):
    lock_by_pin(ctx, active_card)
    clock.advance(hours=25)
    assert [item.card_no for item in expire_due(ctx)] == [active_card]
    assert failures(ctx, active_card) == 0


def test_expire_due_twice_yields_nothing_the_second_time(ctx, active_card, clock):
    lock_by_pin(ctx, active_card)
    clock.advance(hours=25)
    assert len(list(expire_due(ctx))) == 1
    before = dump(ctx)
    assert list(expire_due(ctx)) == []
    assert dump(ctx) == before


def test_expire_due_with_nothing_due_records_nothing(ctx, active_card):
    lock_by_pin(ctx, active_card)
    before = dump(ctx)
    assert list(expire_due(ctx)) == []
    assert dump(ctx) == before


def test_an_unlock_after_the_end_records_expiry_not_an_operator_unlock(ctx, active_card, clock):
    lock_by_pin(ctx, active_card)
    clock.advance(hours=30)
    assert unlock(ctx, active_card) == [(active_card, "not locked")]
    [lock] = lock_rows(ctx, active_card)
    assert (lock.end_cause, lock.ended_at) == (EndCause.EXPIRED, lock.ends_at)


# --- fast path == single-card path ----------------------------------------------------------

MANY = 2000  # with chunks of 500-1000, so chunk edges are crossed


@pytest.fixture
def make_ctx(tmp_path, clock, new_database):
    def make(name: str) -> Context:
        settings = Settings(db_url=new_database(name).url, key_file=tmp_path / f"{name}.key",
                            operator="tester", os_user="tester", bcrypt_cost=4)
        init_database(settings, clock)
        return Context.open(settings, clock)

    return make


def seed_locked_cards(ctx, count: int) -> list[str]:
    """``count`` active cards with PIN GOOD_PIN, 3 failures and a PIN lock.

    Even-numbered locks ended 1-72 hours ago, odd-numbered ones end 1-72 hours from now.
    """
    now = ctx.now()
    pin_hash = pins.hash_pin(GOOD_PIN, ctx.keys.pepper, ctx.settings.bcrypt_cost)
    card_nos = [f"M{i:08d}" for i in range(count)]
    ends = [now + timedelta(hours=(1 if i % 2 else -1) * (1 + i % 72)) for i in range(count)]
    from cardctl.domain.sealed import birth_sealer

    seal = birth_sealer(ctx.keys.data_key)
    with orm_write(ctx.db) as session:
        session.execute(insert(Holder), [
            {"id": i + 1, "id_hash": f"{i:064x}", "id_masked": "110***********0000", "id_tail_hash": "0" * 64,
             "name": f"持卡人{i}", "birth_sealed": seal(f"{i:064x}", date(1980, 1, 1))} for i in range(count)])
        session.execute(insert(Card), [
            {"card_no": card_no, "holder_id": i + 1, "region": "110105", "insurance_type": "employee",
             "issuer": "social-security", "unit": None, "status": "active", "failures": 3,
             "pin_hash": pin_hash, "pin_scheme": pins.SCHEME_PEPPERED, "issued_at": now}
            for i, card_no in enumerate(card_nos)])
        session.execute(insert(Lock), [
            {"card_no": card_no, "kind": "pin", "reason": "3 consecutive wrong PINs",
             "started_at": end - timedelta(hours=24), "ends_at": end, "created_by": "tester"}
            for card_no, end in zip(card_nos, ends)])
    return card_nos


def end_state(ctx, actions: tuple[str, ...]) -> dict:
    with orm_read(ctx.db) as session:
        locks = sorted(session.execute(select(Lock.card_no, Lock.kind, Lock.ends_at, Lock.ended_at,
                                              Lock.end_cause, Lock.ended_by)).all())
        cards = sorted(session.execute(select(Card.card_no, Card.status, Card.failures)).all())
        trail = sorted(session.execute(select(Event.card_no, Event.action, Event.outcome, Event.at,
                                              Event.reason).where(Event.action.in_(actions))).all())
    return {"locks": locks, "cards": cards, "events": trail}


def test_a_batch_unlock_ends_in_the_same_state_as_unlocking_one_by_one(make_ctx, monkeypatch):
    monkeypatch.setattr(unlock_service, "CHUNK", 600)
    batch, single = make_ctx("batch"), make_ctx("single")
    card_nos = seed_locked_cards(batch, MANY)
    seed_locked_cards(single, MANY)
    batch_results = unlock(batch, *card_nos)
    single_results = [result for card_no in card_nos for result in unlock(single, card_no)]
    assert batch_results == single_results
    assert sum(result == "unlocked" for _, result in batch_results) == MANY // 2
    actions = ("lock.unlock", "lock.expire")
    assert end_state(batch, actions) == end_state(single, actions)


def test_the_cron_sweep_ends_in_the_same_state_as_verifying_card_by_card(make_ctx):
    swept, single = make_ctx("swept"), make_ctx("single")
    card_nos = seed_locked_cards(swept, 300)  # fewer: a verify costs a bcrypt check each
    seed_locked_cards(single, 300)
    expired = list(expire_due(swept, chunk=64))  # several chunks
    assert len(expired) == len({item.card_no for item in expired}) == 150
    # the single-card path: a verify notices the passed end and records it before deciding
    results = [verify_pin(single, card_no, GOOD_PIN).result for card_no in card_nos]
    assert sorted(set(results)) == ["locked", "ok"]
    state = end_state(swept, ("lock.expire",))
    assert state == end_state(single, ("lock.expire",))
    ended = [(card_no, ends_at) for card_no, _, ends_at, ended_at, _, _ in state["locks"] if ended_at]
    assert ended == [(card_no, at) for card_no, _, _, at, _ in state["events"]]
    assert all(ended_at == ends_at for _, _, ends_at, ended_at, _, _ in state["locks"] if ended_at)
    assert list(expire_due(swept)) == []


def test_an_id_number_given_as_a_card_number_is_never_echoed_in_full(ctx, active_card):
    id_number = HOLDERS[0][2]
    [item] = unlock_cards(ctx, [id_number], PIN_UNLOCK)
    assert item.result == "invalid"
    assert id_number not in item.card_no and id_number not in item.detail
    assert item.card_no == "110***********002X"  # masked like every ID number on display
