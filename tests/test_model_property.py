"""Random command sequences against a small reference model of docs/domain.md.

The model below is written from the rules in docs/domain.md, not from the code: a card
is usable exactly when it is active with no lock in force; a PIN lock comes from
N consecutive failures and ends after lock_hours (resetting the count); an admin
lock ends only by an admin unlock; an arrears lock is there exactly while the
holder or their unit owes; a temporary loss report lapses after temp_loss_days;
void is terminal. With escalate_after set, the card's PIN lock that makes escalate_after of
them started within escalate_window_days has no end: time and a plain unlock leave it, only
an identity-checked reset-pin or unlock --id-number ends it. After every step the
services must agree with the model, and the audit chain must verify.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sqlite3
import tempfile
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from cardctl.config import Settings
from cardctl.domain.identity import parse_id_number
from cardctl.domain.model import LockKind
from cardctl.domain.roles import Role
from cardctl.errors import CardLocked, Refused, WeakPin, WrongPin
from cardctl.services.arrears import Debtor, add_arrears, pay_arrears
from cardctl.services.audit import verify_chain
from cardctl.services.cards import activate
from cardctl.services.context import Context
from cardctl.services.lifecycle import change_pin, lock_admin, reset_pin
from cardctl.services.loss import cancel_loss, reissue, report_lost
from cardctl.services.policies import set_policy
from cardctl.services.reads import cards_by_number
from cardctl.services.unlock import UnlockRequest, expire_due, unlock_cards
from cardctl.services.setup import init_database
from cardctl.services.verify import verify_pin
from conftest import HOLDERS, START, FakeClock, engines, issue, pg_server

UNIT = "91350100M000100Y43"
# (name, ID number, region, unit): two colleagues of one unit, one resident without a unit
PEOPLE = [(name, id_number, region, unit)
          for (_, name, id_number, region), unit in zip(HOLDERS, (UNIT, UNIT, None))]
STRONG_PINS = ["583920", "702614", "864209", "315972"]
WRONG_PIN = "000000"

holders = st.integers(min_value=0, max_value=len(PEOPLE) - 1)
pins = st.sampled_from(STRONG_PINS)


def _settings(folder: Path) -> Settings:
    return Settings(db_url=str(folder / "cards.db"), key_file=folder / "cardctl.key",
                    operator="model", os_user="model", bcrypt_cost=4)


@lru_cache(maxsize=1)
def _template() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="cardctl-model-template-"))
    atexit.register(shutil.rmtree, folder, True)
    init_database(_settings(folder), FakeClock(START))
    return folder


@dataclass
class ModelCard:
    card_no: str
    holder: int
    status: str = "active"
    pin: str | None = None
    failures: int = 0
    pin_lock: bool = False
    pin_lock_ends: object = None  # None with pin_lock: no end (lock_hours 0, or escalated)
    pin_lock_escalated: bool = False  # only an identity check ends it
    pin_lock_starts: list = None  # when each of the card's PIN locks started
    admin: bool = False
    loss_kind: str | None = None
    lapses_at: object = None
    replaced_by: str | None = None


class CardModel(RuleBasedStateMachine):
    """The reference model and the real services, driven side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="cardctl-model-"))
        self.clock = FakeClock(START)
        # a copy of one initialised database, since init (Alembic) is the slowest step
        shutil.copy(_template() / "cardctl.key", self.folder / "cardctl.key")
        self.ctx = Context.open(self.copy_of_template(), self.clock)
        self.cards: list[ModelCard] = []
        self.own = [0] * len(PEOPLE)
        self.unit_owed = 0
        self.ever_void: set[str] = set()
        self.next_no = 1

    def copy_of_template(self) -> Settings:
        with closing(sqlite3.connect(_template() / "cards.db")) as source, \
                closing(sqlite3.connect(self.folder / "cards.db")) as copy:
            source.backup(copy)
        return _settings(self.folder)

    def teardown(self) -> None:
        self.ctx.db.engine.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    # --- the model's rules -----------------------------------------------------------

    @property
    def now(self):
        return self.clock.now

    def person(self, holder: int):
        return parse_id_number(PEOPLE[holder][1], self.now.date())

    def current(self, holder: int) -> ModelCard:
        return [card for card in self.cards if card.holder == holder][-1]

    def owes(self, holder: int) -> bool:
        return self.own[holder] > 0 or (PEOPLE[holder][3] is not None and self.unit_owed > 0)

    def settle_time(self) -> None:
        """What the passing of time does, decided on read in the real system too."""
        for card in self.cards:
            if card.pin_lock and card.pin_lock_ends is not None and card.pin_lock_ends <= self.now:
                card.pin_lock, card.failures = False, 0
            if card.status == "lost" and card.loss_kind == "temporary" and card.lapses_at <= self.now:
                card.status, card.loss_kind = "active", None

    def locks(self, card: ModelCard) -> set[str]:
        kinds = {"pin"} if card.pin_lock else set()
        kinds |= {"admin"} if card.admin else set()
        kinds |= {"arrears"} if card.status != "void" and self.owes(card.holder) else set()
        return kinds

    def attempt(self, card: ModelCard, pin: str) -> str:
        """One PIN attempt (verify, or the old PIN at change-pin)."""
        if card.status != "active" or card.pin is None:
            return "unusable"
        if self.locks(card):
            return "locked"
        if pin == card.pin:
            card.failures = 0
            return "ok"
        card.failures += 1
        if card.failures >= self.max_attempts:
            starts = card.pin_lock_starts = [*(card.pin_lock_starts or []), self.now]
            window = self.now - timedelta(days=self.escalate_window_days)
            card.pin_lock = True
            card.pin_lock_escalated = bool(self.escalate_after) and sum(
                start > window for start in starts) >= self.escalate_after
            card.pin_lock_ends = (self.now + timedelta(hours=self.lock_hours)
                                  if self.lock_hours and not card.pin_lock_escalated else None)
        return "wrong_pin"

    # --- set-up ----------------------------------------------------------------------

    @initialize(max_attempts=st.integers(1, 6), lock_hours=st.sampled_from([0, 1, 24]),
                temp_loss_days=st.integers(1, 10), escalate_after=st.sampled_from([0, 0, 1, 2, 3]),
                escalate_window_days=st.sampled_from([1, 2, 30]))
    def set_up(self, max_attempts: int, lock_hours: int, temp_loss_days: int, escalate_after: int,
               escalate_window_days: int) -> None:
        self.max_attempts, self.lock_hours, self.temp_loss_days = max_attempts, lock_hours, temp_loss_days
        self.escalate_after, self.escalate_window_days = escalate_after, escalate_window_days
        set_policy(self.ctx, "", {"max_attempts": max_attempts, "lock_hours": lock_hours,
                                  "temp_loss_days": temp_loss_days, "escalate_after": escalate_after,
                                  "escalate_window_days": escalate_window_days})
        for holder, (name, id_number, region, unit) in enumerate(PEOPLE):
            card_no = self.new_card_no()
            issue(self.ctx, card_no, name, id_number, region, **({"unit": unit} if unit else {}))
            activate(self.ctx, card_no, self.person(holder), STRONG_PINS[0])
            self.cards.append(ModelCard(card_no, holder, pin=STRONG_PINS[0]))

    def new_card_no(self) -> str:
        self.next_no += 1
        return f"P{self.next_no:08d}"

    # --- commands --------------------------------------------------------------------

    @rule(holder=holders, correct=st.booleans())
    def verify(self, holder: int, correct: bool) -> None:
        card = self.current(holder)
        pin = card.pin if correct and card.pin else WRONG_PIN
        assert verify_pin(self.ctx, card.card_no, pin).result == self.attempt(card, pin)

    @rule(holder=holders, old_correct=st.booleans(), new=pins)
    def change(self, holder: int, old_correct: bool, new: str) -> None:
        card = self.current(holder)
        old = card.pin if old_correct and card.pin else WRONG_PIN
        if old == new:
            expected, error = None, WeakPin  # the same PIN again is no new PIN: refused as weak
        else:
            expected = self.attempt(card, old)
            error = {"ok": None, "wrong_pin": WrongPin}.get(expected, CardLocked)
        try:
            change_pin(self.ctx, card.card_no, old, new)
        except (Refused, WrongPin, CardLocked) as raised:
            assert type(raised) is error, (raised, expected)
        else:
            assert error is None, expected
            card.pin = new

    @rule(holder=holders, by_holder=st.booleans(), new=pins)
    def reset(self, holder: int, by_holder: bool, new: str) -> None:
        card = self.current(holder)
        allowed = by_holder and card.status == "active"
        who = holder if by_holder else (holder + 1) % len(PEOPLE)
        try:
            reset_pin(self.ctx, card.card_no, self.person(who), new)
        except Refused:
            assert not allowed
        else:
            assert allowed
            card.pin, card.failures, card.pin_lock, card.pin_lock_escalated = new, 0, False, False

    @rule(holder=holders, kind=st.sampled_from([LockKind.PIN, LockKind.ADMIN]),
          id_of=st.sampled_from([None, "holder", "other"]))
    def unlock(self, holder: int, kind: LockKind, id_of: str | None) -> None:
        """A plain unlock, or a counter unlock with the holder's (or someone else's) ID number."""
        card = self.current(holder)
        locks = self.locks(card)
        person = None if id_of is None else self.person(holder if id_of == "holder" else (holder + 1) % len(PEOPLE))
        if card.status in ("lost", "void") or id_of == "other":
            expected = "refused"
        elif kind is LockKind.PIN and card.pin_lock and card.pin_lock_escalated and id_of is None:
            expected = "refused"  # escalated to a counter visit: only the holder's identity ends it
        elif kind.value in locks:
            expected = "unlocked"
            if kind is LockKind.PIN:
                card.pin_lock, card.failures, card.pin_lock_escalated = False, 0, False
            else:
                card.admin = False
        else:
            expected = "not locked"  # any lock of another kind is kept, and reported as kept
        (item,) = unlock_cards(self.ctx, [card.card_no], UnlockRequest(kind, "model", person))
        assert item.result == expected, item
        if expected != "refused":
            assert sorted({lock.kind for lock in item.kept}) == sorted(set(locks) - {kind.value}), item

    @rule(holder=holders)
    def lock(self, holder: int) -> None:
        card = self.current(holder)
        try:
            lock_admin(self.ctx, card.card_no, "model")
        except Refused:
            assert card.status == "void"
        else:
            card.admin = True

    @rule(holder=holders, temporary=st.booleans())
    def report_loss(self, holder: int, temporary: bool) -> None:
        card = self.current(holder)
        allowed = card.status == "active" or (card.status == "lost" and not temporary)
        try:
            report_lost(self.ctx, card.card_no, temporary, None if temporary else self.person(holder))
        except Refused:
            assert not allowed
            return
        assert allowed
        if temporary:
            card.status, card.loss_kind = "lost", "temporary"
            card.lapses_at = self.now + timedelta(days=self.temp_loss_days)
        else:
            card.status, card.loss_kind = "void", "formal"

    @rule(holder=holders, by_holder=st.booleans())
    def withdraw_loss(self, holder: int, by_holder: bool) -> None:
        card = self.current(holder)
        allowed = by_holder and card.status == "lost" and card.loss_kind == "temporary"
        try:
            cancel_loss(self.ctx, card.card_no, self.person(holder if by_holder else (holder + 1) % 3))
        except Refused:
            assert not allowed
        else:
            assert allowed
            card.status, card.loss_kind = "active", None

    @rule(holder=holders, damaged=st.booleans())
    def replace(self, holder: int, damaged: bool) -> None:
        card = self.current(holder)
        allowed = card.replaced_by is None and (
            card.status == "lost" or (card.status == "void" and card.loss_kind == "formal")
            or (damaged and card.status in ("active", "pending")))
        new_no = self.new_card_no()
        try:
            reissue(self.ctx, card.card_no, new_no, self.person(holder), damaged)
        except Refused:
            assert not allowed
            return
        assert allowed
        card.status, card.replaced_by, card.pin_lock = "void", new_no, False
        self.cards.append(ModelCard(new_no, holder, status="pending", admin=card.admin))

    @rule(holder=holders, pin=pins)
    def activate_card(self, holder: int, pin: str) -> None:
        card = self.current(holder)
        try:
            activate(self.ctx, card.card_no, self.person(holder), pin)
        except Refused:
            assert card.status != "pending"
        else:
            assert card.status == "pending"
            card.status, card.pin, card.failures = "active", pin, 0

    @rule(holder=st.one_of(st.none(), holders), fen=st.integers(1, 500_000))
    def add_debt(self, holder: int | None, fen: int) -> None:
        debtor = Debtor(unit=UNIT) if holder is None else Debtor(self.current(holder).card_no)
        add_arrears(self.ctx, debtor, fen, None)
        if holder is None:
            self.unit_owed += fen
        else:
            self.own[holder] += fen

    @rule(holder=st.one_of(st.none(), holders), share=st.sampled_from(["all", "half", "over"]))
    def pay_debt(self, holder: int | None, share: str) -> None:
        balance = self.unit_owed if holder is None else self.own[holder]
        fen = {"all": balance, "half": balance // 2, "over": balance + 1}[share] or 1
        debtor = Debtor(unit=UNIT) if holder is None else Debtor(self.current(holder).card_no)
        try:
            pay_arrears(self.ctx, debtor, fen, "model")
        except Refused:
            assert fen > balance
            return
        assert fen <= balance
        if holder is None:
            self.unit_owed -= fen
        else:
            self.own[holder] -= fen

    @rule(hours=st.sampled_from([1, 5, 23, 25, 24 * 7 + 1, 24 * 11]))
    def time_passes(self, hours: int) -> None:
        self.clock.advance(hours=hours)
        self.settle_time()

    @rule(offset=st.sampled_from([-1, 0, 1]))
    def until_the_next_deadline(self, offset: int) -> None:
        """Land on (or a second either side of) the next PIN-lock end or loss-report lapse."""
        due = [moment for card in self.cards
               for moment in (card.pin_lock_ends if card.pin_lock else None,
                              card.lapses_at if card.status == "lost" else None)
               if moment is not None and moment + timedelta(seconds=offset) > self.now]
        if due:
            self.clock.now = min(due) + timedelta(seconds=offset)
            self.settle_time()

    @rule()
    def cron(self) -> None:
        list(expire_due(self.ctx))

    # --- what must hold after every step ---------------------------------------------

    @invariant()
    def services_agree_with_the_model(self) -> None:
        if not self.cards:
            return
        views, missing = cards_by_number(self.ctx, [card.card_no for card in self.cards])
        assert not missing
        for card, view in zip(self.cards, views):
            assert view.status == card.status, (card, view)
            assert view.failures <= self.max_attempts, view  # never more than the policy allows
            # void is terminal: once void, always void
            assert view.card_no not in self.ever_void or view.status == "void", view
            if card.status == "void":
                self.ever_void.add(card.card_no)
                assert not view.usable
                continue
            kinds = sorted(lock.kind for lock in view.locks)
            assert view.failures == card.failures, (card, view)
            assert kinds == sorted(self.locks(card)), (card, kinds)  # e.g. unlock never clears arrears
            # an escalated PIN lock is shown as one, with no end time
            assert [(lock.escalated, lock.until is None) for lock in view.locks if lock.kind == "pin"] == (
                [(True, True)] if card.pin_lock and card.pin_lock_escalated else
                [(False, card.pin_lock_ends is None)] if card.pin_lock else []), (card, view)
            # usable exactly when active with no lock in force
            assert view.usable == (card.status == "active" and not self.locks(card))

    @invariant()
    def the_start_up_path_shows_what_the_services_show(self) -> None:
        # status CARD on SQLite reads through sqlite3 (storage/lite.py): same views, every state
        if not self.cards or not self.ctx.db.is_sqlite:
            return
        quick = Context.open_quick(self.ctx.settings, self.clock, Role.AUDITOR)
        assert quick is not None
        numbers = [card.card_no for card in self.cards]
        try:
            assert cards_by_number(quick, numbers) == cards_by_number(self.ctx, numbers)
        finally:
            quick.db.close()

    @invariant()
    def the_audit_chain_verifies(self) -> None:
        report = verify_chain(self.ctx)
        assert report.ok, report.problem


# Each example is a fresh database and ~30 commands; CARDCTL_MODEL_EXAMPLES=500 for a deeper run.
CardModel.TestCase.settings = settings(
    max_examples=int(os.environ.get("CARDCTL_MODEL_EXAMPLES", "20")), stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestCardModel = CardModel.TestCase


@lru_cache(maxsize=1)
def _pg_template() -> str:
    """The PostgreSQL twin of ``_template()``: a database initialised once, with the same key."""
    server = pg_server()
    name = server.name("model_template")
    server.empty(name)
    init_database(replace(_settings(_template()), db_url=server.url(name)), FakeClock(START))
    return name


class PostgresCardModel(CardModel):
    """The same model and rules, the services running on PostgreSQL."""

    def copy_of_template(self) -> Settings:
        server = pg_server()
        url = server.clone(_pg_template(), server.name("model"))
        return replace(_settings(self.folder), db_url=url)


if "postgresql" in engines():
    PostgresCardModel.TestCase.settings = CardModel.TestCase.settings
    TestCardModelPostgres = PostgresCardModel.TestCase
