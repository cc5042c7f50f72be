"""Arrears: money in exact fen, the ledger, and the arrears locks it sets and lifts."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from cardctl.domain.model import LockKind
from cardctl.domain.money import MAX_FEN, format_fen, parse_yuan
from cardctl.errors import InvalidInput, Refused
from cardctl.services.arrears import Debtor, add_arrears, pay_arrears
from cardctl.services.audit import event_log
from cardctl.services.reads import cards_by_number
from cardctl.services.unlock import UnlockRequest, unlock_cards
from orm import Arrears, Lock, orm_read
from conftest import HOLDERS, issue

UNIT = "91350100M000100Y43"
OTHER_UNIT = "91110000600037341L"


def kinds(ctx, card_no: str) -> list[str]:
    (view,), _ = cards_by_number(ctx, [card_no])
    return sorted(lock.kind for lock in view.locks)


def owed(ctx, card_no: str) -> tuple[str, str | None]:
    (view,), _ = cards_by_number(ctx, [card_no])
    record = view.record()
    return record["owed"], record["unit_owed"]


@pytest.fixture
def employees(ctx) -> list[str]:
    """Three pending cards of employees of UNIT; an arrears lock binds any live card."""
    for card_no, name, id_number, region in HOLDERS:
        issue(ctx, card_no, name, id_number, region, unit=UNIT)
    return [card_no for card_no, *_ in HOLDERS]


# --- money -------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["1e3", "-5", "0", "0.00", "0.001", "12.345", "１００", "NaN", "nan", "inf",
                                 "Infinity", "1" + "0" * 20, "10000000.01", "", " ", "1,000", "1_000", ".5",
                                 "5.", "+5", "0x10", "12 34", "¥12", "12元", "٣"])
def test_a_malformed_amount_is_refused(raw):
    with pytest.raises(InvalidInput):
        parse_yuan(raw)


@pytest.mark.parametrize("raw, fen", [("0.01", 1), ("0.1", 10), ("12.3", 1230), ("12.34", 1234), ("100", 10_000),
                                      (" 7.05 ", 705), ("10000000", MAX_FEN), ("0.29", 29), ("1.10", 110)])
def test_an_amount_is_read_as_exact_fen(raw, fen):
    assert parse_yuan(raw) == fen


@given(st.integers(min_value=1, max_value=MAX_FEN))
def test_format_and_parse_are_exact_inverses(fen):
    assert parse_yuan(format_fen(fen)) == fen


def test_money_is_exact_in_fen(ctx, employees):
    card = employees[0]
    for _ in range(3):
        add_arrears(ctx, Debtor(card), parse_yuan("0.10"), None)  # 0.1 + 0.1 + 0.1 != 0.3 in floats
    result = pay_arrears(ctx, Debtor(card), parse_yuan("0.30"), "R-1")
    assert (result.before_fen, result.after_fen, result.released) == (30, 0, [card])
    with orm_read(ctx.db) as session:
        assert session.scalar(select(func.sum(Arrears.amount_fen))) == 0


# --- a holder's own arrears --------------------------------------------------------------


def test_a_debt_locks_the_holders_card_once(ctx, employees):
    card = employees[0]
    first = add_arrears(ctx, Debtor(card), 10_000, "2026-10")
    second = add_arrears(ctx, Debtor(card), 5_000, "2026-11")
    assert (first.locked, second.locked) == ([card], [])
    assert (second.before_fen, second.after_fen) == (10_000, 15_000)
    assert kinds(ctx, card) == ["arrears"] and kinds(ctx, employees[1]) == []
    assert owed(ctx, card) == ("150.00", "0.00")


def test_a_partial_payment_lowers_the_balance_and_keeps_the_lock(ctx, employees):
    card = employees[0]
    add_arrears(ctx, Debtor(card), 10_000, None)
    result = pay_arrears(ctx, Debtor(card), 4_000, "R-1")
    assert (result.before_fen, result.after_fen, result.released, result.kept_locked) == (10_000, 6_000, [], [card])
    assert kinds(ctx, card) == ["arrears"]
    final = pay_arrears(ctx, Debtor(card), 6_000, "R-2")
    assert (final.after_fen, final.released) == (0, [card])
    assert kinds(ctx, card) == []


@pytest.mark.parametrize("paid", [10_001, 99_999_999])
def test_overpayment_is_refused_audited_and_records_nothing(ctx, employees, paid):
    card = employees[0]
    add_arrears(ctx, Debtor(card), 10_000, None)
    with pytest.raises(Refused, match="more than"):
        pay_arrears(ctx, Debtor(card), paid, None)
    with orm_read(ctx.db) as session:
        assert session.scalar(select(func.count()).select_from(Arrears)) == 1
    assert [e.outcome for e in event_log(ctx, card, None, None) if e.action == "arrears.pay"] == ["refused"]
    assert kinds(ctx, card) == ["arrears"]


@pytest.mark.parametrize("fen", [0, -100, MAX_FEN + 1])
def test_a_zero_negative_or_huge_amount_is_refused_by_the_service_too(ctx, employees, fen):
    with pytest.raises(InvalidInput):
        add_arrears(ctx, Debtor(employees[0]), fen, None)
    with pytest.raises(InvalidInput):
        pay_arrears(ctx, Debtor(employees[0]), fen, None)


def test_paying_when_nothing_is_owed_names_the_units_debt(ctx, employees):
    add_arrears(ctx, Debtor(unit=UNIT), 50_000, None)
    with pytest.raises(Refused, match=f"owes nothing; its unit {UNIT} owes 500.00"):
        pay_arrears(ctx, Debtor(employees[0]), 100, None)


def test_unlock_never_clears_an_arrears_lock(ctx, employees):
    card = employees[0]
    add_arrears(ctx, Debtor(card), 10_000, None)
    for kind in (LockKind.PIN, LockKind.ADMIN):
        (item,) = unlock_cards(ctx, [card], UnlockRequest(kind, "please"))
        # kept, and said so: no failure of a batch, and never cleared
        assert (item.result, [lock.kind for lock in item.kept]) == ("not locked", ["arrears"])
        assert "pay-arrears" in item.detail
    with pytest.raises(InvalidInput):
        list(unlock_cards(ctx, [card], UnlockRequest(LockKind.ARREARS, "please")))
    assert kinds(ctx, card) == ["arrears"]


# --- a unit's arrears --------------------------------------------------------------------


def test_unit_arrears_lock_every_employee_and_one_payment_releases_them_all(ctx, employees):
    added = add_arrears(ctx, Debtor(unit=UNIT), 1_200_000, "2026-10")
    assert added.locked == sorted(employees)
    assert all(kinds(ctx, card) == ["arrears"] for card in employees)
    assert owed(ctx, employees[0]) == ("0.00", "12000.00")

    paid = pay_arrears(ctx, Debtor(unit=UNIT), 1_200_000, "BK-0042")
    assert (paid.before_fen, paid.after_fen, paid.released) == (1_200_000, 0, sorted(employees))
    assert all(kinds(ctx, card) == [] for card in employees)
    with orm_read(ctx.db) as session:
        causes = session.scalars(select(Lock.end_cause).where(Lock.kind == "arrears")).all()
    assert causes == ["paid"] * 3


def test_a_unit_debt_does_not_touch_another_units_employees(ctx, employees):
    add_arrears(ctx, Debtor(unit=OTHER_UNIT), 1_000, None)
    assert all(kinds(ctx, card) == [] for card in employees)


def test_the_lock_ends_only_when_both_the_holders_and_the_units_balance_are_zero(ctx, employees):
    mine, colleague = employees[0], employees[1]
    add_arrears(ctx, Debtor(mine), 10_000, None)
    add_arrears(ctx, Debtor(unit=UNIT), 50_000, None)

    own_paid = pay_arrears(ctx, Debtor(mine), 10_000, None)
    assert (own_paid.released, own_paid.kept_locked) == ([], [mine])  # the unit still owes

    add_arrears(ctx, Debtor(mine), 2_000, None)
    unit_paid = pay_arrears(ctx, Debtor(unit=UNIT), 50_000, None)
    assert mine not in unit_paid.released and colleague in unit_paid.released
    assert kinds(ctx, mine) == ["arrears"] and kinds(ctx, colleague) == []

    assert pay_arrears(ctx, Debtor(mine), 2_000, None).released == [mine]


def test_the_unit_code_is_validated(run, employees):
    result = run("add-arrears", "--unit", "91350100M000100Y44", "--amount", "10")
    assert result.exit_code == 2 and "credit code" in result.stderr


# --- the command line --------------------------------------------------------------------


def test_pay_arrears_shows_the_balance_before_and_after_and_the_released_cards(run, employees):
    assert run("add-arrears", "--unit", UNIT, "--amount", "12000", "--period", "2026-10").exit_code == 0
    partial = run("pay-arrears", "--unit", UNIT, "--amount", "2000.50", "--receipt", "BK-1", "-o", "json")
    (record,) = json.loads(partial.stdout)
    assert (record["balance_before"], record["balance_after"], record["released"]) == ("12000.00", "9999.50", [])
    final = run("pay-arrears", "--unit", UNIT, "--amount", "9999.50")
    assert final.exit_code == 0
    assert "balance 9999.50 -> 0.00" in final.stdout and "released: " + ", ".join(sorted(employees)) in final.stdout


@pytest.mark.parametrize("args", [
    ["--amount", "10"],  # neither card nor unit
    [HOLDERS[0][0], "--unit", UNIT, "--amount", "10"],  # both
    [HOLDERS[0][0], "--amount", "1e3"],
    [HOLDERS[0][0], "--amount", "-5"],
    [HOLDERS[0][0], "--amount", "0"],
    [HOLDERS[0][0], "--amount", "0.001"],
    [HOLDERS[0][0], "--amount", "１００"],
])
def test_bad_arrears_input_exits_2_and_records_nothing(run, ctx, employees, args):
    for command in ("add-arrears", "pay-arrears"):
        result = run(command, *args)
        assert result.exit_code == 2, (command, args, result.stderr)
    with orm_read(ctx.db) as session:
        assert session.scalar(select(func.count()).select_from(Arrears)) == 0


def test_a_period_in_the_future_is_refused(run, employees):
    assert run("add-arrears", HOLDERS[0][0], "--amount", "10", "--period", "2027-01").exit_code == 2
    assert run("add-arrears", HOLDERS[0][0], "--amount", "10", "--period", "2026-13").exit_code == 2


def test_an_overpayment_exits_6(run, employees):
    run("add-arrears", HOLDERS[0][0], "--amount", "10")
    result = run("pay-arrears", HOLDERS[0][0], "--amount", "10.01")
    assert result.exit_code == 6 and "more than the 10.00" in result.stderr


def test_status_shows_the_amount_owed_with_the_arrears_lock(run, employees):
    run("add-arrears", HOLDERS[0][0], "--amount", "356.40")
    run("add-arrears", "--unit", UNIT, "--amount", "1000")
    (record,) = json.loads(run("status", HOLDERS[0][0], "-o", "json").stdout)
    assert (record["owed"], record["unit_owed"]) == ("356.40", "1000.00")
    assert [lock["kind"] for lock in record["locks"]] == ["arrears"]
    assert "Owed 356.40 yuan own + 1000.00 yuan unit" in run("status", HOLDERS[0][0]).stdout
