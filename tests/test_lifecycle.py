"""PIN reset and change, loss reports, reissue and the admin lock — one rule per test."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from cardctl.domain import reasons
from cardctl.domain.identity import make_id_number, mask_id, parse_id_number
from cardctl.domain.model import CardStatus, LockKind
from cardctl.errors import CardLocked, InvalidInput, Refused, WrongPin
from cardctl.services.arrears import Debtor, add_arrears
from cardctl.services.audit import event_log
from cardctl.services.cards import activate
from cardctl.services.lifecycle import Agent, change_pin, lock_admin, reset_pin
from cardctl.services.loss import cancel_loss, reissue, report_lost
from cardctl.services.policies import set_policy
from cardctl.services.reads import cards_by_number
from cardctl.services.unlock import NOT_LOCKED, REFUSED, UNLOCKED, UnlockRequest, expire_due, unlock_cards
from cardctl.services.verify import verify_pin
from orm import Lock, orm_read
from conftest import GOOD_PIN, HOLDERS, issue

NEW_PIN = "702614"
OTHER_PIN = "864209"
HOLDER_ID = HOLDERS[0][2]
STRANGER_ID = HOLDERS[1][2]  # a valid number, but not this card's holder
MINOR_ID = make_id_number("110105", date(2016, 5, 1), 12)  # 10 years old at the test clock
GUARDIAN = (HOLDERS[1][2], "王芳")


def person(ctx, raw: str):
    return parse_id_number(raw, ctx.now().date())


def view(ctx, card_no: str):
    (found,), _ = cards_by_number(ctx, [card_no])
    return found


def events(ctx, card_no: str, action: str | None = None) -> list:
    found = list(event_log(ctx, card_no, None, None))
    return [e for e in found if action is None or e.action == action]


def lock_kinds(ctx, card_no: str) -> list[str]:
    return sorted(lock.kind for lock in view(ctx, card_no).locks)


def lock_by_pin(ctx, card_no: str, times: int = 3) -> None:
    for _ in range(times):
        verify_pin(ctx, card_no, "000000")


@pytest.fixture
def minor_card(ctx) -> str:
    issue(ctx, "M00000001", "小明", MINOR_ID, "110105")
    activate(ctx, "M00000001", person(ctx, MINOR_ID), GOOD_PIN, Agent(person(ctx, GUARDIAN[0]), GUARDIAN[1]))
    return "M00000001"


def test_a_minors_card_is_not_activated_without_a_guardian_and_the_refusal_is_audited(ctx):
    issue(ctx, "M00000002", "小红", MINOR_ID, "110105")
    with pytest.raises(Refused, match="guardian"):
        activate(ctx, "M00000002", person(ctx, MINOR_ID), GOOD_PIN)
    assert events(ctx, "M00000002", "card.activate")[-1].outcome == "refused"
    assert cards_by_number(ctx, ["M00000002"])[0][0].status == CardStatus.PENDING


def test_a_guardian_activates_a_minors_card_and_is_recorded_masked(ctx, minor_card):
    event = events(ctx, minor_card, "card.activate")[-1]
    assert event.outcome == "activated"
    detail = json.loads(event.detail)
    assert detail == {"agent": mask_id(GUARDIAN[0]), "agent_name": GUARDIAN[1]}  # no "guardian": it tells the age
    assert cards_by_number(ctx, [minor_card])[0][0].status == CardStatus.ACTIVE


# --- reset-pin ---------------------------------------------------------------------------


def test_a_pin_reset_by_someone_other_than_the_holder_is_refused_and_audited(ctx, active_card):
    with pytest.raises(Refused) as refused:
        reset_pin(ctx, active_card, person(ctx, STRANGER_ID), NEW_PIN)
    assert refused.value.exit_code == 6
    (event,) = events(ctx, active_card, "pin.reset")
    assert event.outcome == "refused" and "does not match the holder" in event.reason
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"  # the PIN did not change


def test_a_pin_reset_by_the_wrong_person_exits_6_on_the_command_line(run, active_card):
    result = run("reset-pin", active_card, "--id-number", STRANGER_ID, "--pin-stdin", input=f"{NEW_PIN}\n")
    assert result.exit_code == 6
    assert "does not match the holder" in result.stderr and STRANGER_ID not in result.stderr


def test_a_pin_reset_clears_the_pin_lock_and_the_count_and_nothing_else(ctx, active_card):
    lock_by_pin(ctx, active_card)
    lock_admin(ctx, active_card, "suspected card sharing")
    add_arrears(ctx, Debtor(active_card), 12_000, None)
    assert lock_kinds(ctx, active_card) == ["admin", "arrears", "pin"]

    result = reset_pin(ctx, active_card, person(ctx, HOLDER_ID), NEW_PIN)

    assert result.pin_lock_cleared
    assert sorted(lock.kind for lock in result.still_locked) == ["admin", "arrears"]
    assert result.owed_fen == 12_000
    assert lock_kinds(ctx, active_card) == ["admin", "arrears"]
    assert view(ctx, active_card).failures == 0


def test_the_new_pin_works_and_the_old_does_not_after_a_reset(ctx, active_card):
    lock_by_pin(ctx, active_card)
    reset_pin(ctx, active_card, person(ctx, HOLDER_ID), NEW_PIN)
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "wrong_pin"
    assert verify_pin(ctx, active_card, NEW_PIN).result == "ok"


def test_the_reset_says_which_locks_stay(run, ctx, active_card):
    add_arrears(ctx, Debtor(active_card), 5_050, None)
    result = run("reset-pin", active_card, "--id-number", HOLDER_ID, "--pin-stdin", input=f"{NEW_PIN}\n")
    assert result.exit_code == 0, result.stderr
    assert "still locked: arrears (owed 50.50 yuan)" in result.stderr


@pytest.mark.parametrize("weak", ["123456", "111111", "491231", "147258"])
def test_a_weak_pin_is_refused_at_reset_and_nothing_changes(ctx, active_card, weak):
    with pytest.raises(Refused, match="PIN refused"):
        reset_pin(ctx, active_card, person(ctx, HOLDER_ID), weak)
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"


def test_a_minors_pin_reset_without_a_guardian_is_refused(ctx, minor_card):
    with pytest.raises(Refused, match="guardian"):
        reset_pin(ctx, minor_card, person(ctx, MINOR_ID), NEW_PIN)
    assert events(ctx, minor_card, "pin.reset")[-1].outcome == "refused"


def test_a_guardian_resets_a_minors_pin_and_is_recorded_masked(ctx, minor_card):
    guardian = Agent(person(ctx, GUARDIAN[0]), GUARDIAN[1])
    reset_pin(ctx, minor_card, person(ctx, MINOR_ID), NEW_PIN, guardian)
    detail = json.loads(events(ctx, minor_card, "pin.reset")[-1].detail)
    assert "guardian" not in detail and detail["agent"] == mask_id(GUARDIAN[0])
    assert GUARDIAN[0] not in json.dumps(detail)


def test_a_minor_cannot_be_the_guardian(ctx, minor_card):
    other_minor = make_id_number("110105", date(2012, 1, 1), 21)
    with pytest.raises(Refused, match="18 or older"):
        reset_pin(ctx, minor_card, person(ctx, MINOR_ID), NEW_PIN, Agent(person(ctx, other_minor), "小红"))


def test_the_minor_age_comes_from_the_regions_policy(ctx):
    seventeen = make_id_number("110105", date(2009, 1, 1), 31)
    issue(ctx, "M00000002", "小刚", seventeen, "110105")
    activate(ctx, "M00000002", person(ctx, seventeen), GOOD_PIN)
    reset_pin(ctx, "M00000002", person(ctx, seventeen), NEW_PIN)  # 17 >= the default 16
    set_policy(ctx, "11", {"minor_age": 18})
    with pytest.raises(Refused, match="under the region's minor age of 18"):
        reset_pin(ctx, "M00000002", person(ctx, seventeen), OTHER_PIN)


def test_an_agent_needs_both_id_number_and_name(run, active_card):
    result = run("reset-pin", active_card, "--id-number", HOLDER_ID, "--agent-id-number", STRANGER_ID,
                 "--pin-stdin", input=f"{NEW_PIN}\n")
    assert result.exit_code == 2 and "--agent-name" in result.stderr


def test_a_pending_card_gets_its_pin_from_activate_not_reset(ctx):
    issue(ctx, *HOLDERS[2])
    with pytest.raises(Refused, match="activate"):
        reset_pin(ctx, HOLDERS[2][0], person(ctx, HOLDERS[2][2]), NEW_PIN)


# --- change-pin --------------------------------------------------------------------------


def test_change_pin_with_the_right_old_pin_sets_the_new_one(ctx, active_card):
    change_pin(ctx, active_card, GOOD_PIN, NEW_PIN)
    assert verify_pin(ctx, active_card, NEW_PIN).result == "ok"
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "wrong_pin"
    assert [e.outcome for e in events(ctx, active_card, "pin.change")] == ["ok", "changed"]


def test_a_wrong_old_pin_at_change_pin_counts_and_locks_on_the_nth_try(ctx, active_card):
    for left in (2, 1):
        with pytest.raises(WrongPin, match=f"{left} attempt"):
            change_pin(ctx, active_card, "000000", NEW_PIN)
    with pytest.raises(WrongPin, match="now locked"):
        change_pin(ctx, active_card, "000000", NEW_PIN)
    assert lock_kinds(ctx, active_card) == ["pin"]
    with pytest.raises(CardLocked):
        change_pin(ctx, active_card, GOOD_PIN, NEW_PIN)  # locked: refused, not counted
    assert view(ctx, active_card).failures == 3


def test_change_pin_and_verify_share_one_failure_counter(ctx, active_card):
    lock_by_pin(ctx, active_card, times=2)
    with pytest.raises(WrongPin, match="now locked"):
        change_pin(ctx, active_card, "000000", NEW_PIN)


def test_a_weak_new_pin_is_refused_only_after_the_old_pin_is_proven(ctx, active_card):
    with pytest.raises(WrongPin):  # a wrong old PIN is counted, whatever the new one
        change_pin(ctx, active_card, "000000", "123456")
    assert view(ctx, active_card).failures == 1
    with pytest.raises(Refused, match="PIN refused: it is the holder's birth date"):
        change_pin(ctx, active_card, GOOD_PIN, "491231")
    assert view(ctx, active_card).failures == 0  # the right old PIN reset the count
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"  # and nothing changed


def _oracle_forms(id_number: str) -> list[str]:
    from cardctl.domain.identity import birth_date_pins

    return sorted(birth_date_pins(parse_id_number(id_number, date(2026, 1, 1)).birth_date)) + [id_number[-6:]]


@pytest.mark.parametrize("locked", [False, True], ids=["unlocked", "locked"])
def test_change_pin_without_the_pin_reveals_no_birth_date_or_id_tail(run, ctx, locked):
    """A staff member with a card number and no PIN offers each birth-date form and the ID tail as
    the new PIN, with a wrong old PIN: the answers for those are the answers for any other PIN."""
    card_no, name, id_number, region = HOLDERS[1]  # its ID number ends in six digits: 010019
    issue(ctx, card_no, name, id_number, region)
    activate(ctx, card_no, person(ctx, id_number), GOOD_PIN)
    forms = _oracle_forms(id_number)
    assert set(forms) == {"700101", "010170", "010019"}
    if locked:
        lock_by_pin(ctx, card_no)

    def answer(new: str) -> tuple[int, str]:
        result = run("change-pin", card_no, "--pin-stdin", input=f"000000\n{new}\n")
        return result.exit_code, result.stderr

    for new in [*forms, NEW_PIN]:
        before = view(ctx, card_no).failures
        code, said = answer(new)
        assert "birth" not in said and "ID number" not in said and "PIN refused" not in said, said
        if locked:  # refused without checking, not counted, the same words for every guess
            assert (code, said) == answer(NEW_PIN) and code == 4
            assert view(ctx, card_no).failures == 3
        else:  # counted like verify; the card locks on the third, as for any wrong PIN
            assert code == 3 and view(ctx, card_no).failures == min(before + 1, 3)
            if view(ctx, card_no).failures == 3:
                run("unlock", card_no, "--reason", "test: next guess")
    reasons = " ".join(e.reason or "" for e in events(ctx, card_no, "pin.change"))
    assert "birth" not in reasons and "ID number" not in reasons


def test_change_pin_on_the_command_line_reads_two_lines(run, ctx, active_card):
    wrong = run("change-pin", active_card, "--pin-stdin", input=f"000000\n{NEW_PIN}\n")
    assert wrong.exit_code == 3 and "2 attempt(s) left" in wrong.stderr
    right = run("change-pin", active_card, "--pin-stdin", "--channel", "terminal", input=f"{GOOD_PIN}\n{NEW_PIN}\n")
    assert right.exit_code == 0, right.stderr
    assert events(ctx, active_card, "pin.change")[-1].channel == "terminal"


# --- loss reports ------------------------------------------------------------------------


def test_a_lost_card_cannot_be_verified_unlocked_or_have_its_pin_reset(ctx, active_card):
    lock_by_pin(ctx, active_card)
    report_lost(ctx, active_card, temporary=True)
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "unusable"
    (unlocked,) = unlock_cards(ctx, [active_card], UnlockRequest(LockKind.PIN, "at counter"))
    assert unlocked.result == REFUSED and "lost" in unlocked.detail
    with pytest.raises(Refused, match="lost"):
        reset_pin(ctx, active_card, person(ctx, HOLDER_ID), NEW_PIN)
    card = view(ctx, active_card)
    assert (card.status, card.usable, card.loss_kind) == ("lost", False, "temporary")


def test_a_lost_card_verifies_with_exit_4(run, ctx, active_card):
    assert run("report-lost", active_card, "--temporary", "--channel", "hotline").exit_code == 0
    assert run("verify", active_card, "--pin-stdin", input=f"{GOOD_PIN}\n").exit_code == 4
    assert events(ctx, active_card, "loss.report")[-1].channel == "hotline"


def test_a_temporary_loss_report_lapses_by_the_clock_before_cron_records_it(ctx, clock, active_card):
    report_lost(ctx, active_card, temporary=True)
    reported_at = clock.now
    clock.advance(days=7, seconds=-1)
    assert view(ctx, active_card).status == "lost"
    clock.advance(seconds=1)
    card = view(ctx, active_card)
    assert (card.status, card.usable, card.loss_kind) == ("active", True, None)
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"  # not yet recorded, already lapsed

    clock.advance(days=3)
    swept = [item.record() for item in expire_due(ctx)]
    assert swept == [{"card_no": active_card, "result": "lapsed",
                      "ended_at": (reported_at + timedelta(days=7)).isoformat().replace("+00:00", "Z")}]
    (lapse,) = events(ctx, active_card, "loss.lapse")
    assert lapse.at == reported_at + timedelta(days=7)  # recorded at the time it happened
    assert list(expire_due(ctx)) == []  # idempotent


def test_the_lapse_takes_the_regions_temp_loss_days(ctx, clock, active_card):
    set_policy(ctx, "110105", {"temp_loss_days": 15})
    result = report_lost(ctx, active_card, temporary=True)
    assert result.lapses_at == clock.now + timedelta(days=15)


def test_a_temporary_loss_report_can_be_withdrawn(ctx, active_card):
    report_lost(ctx, active_card, temporary=True)
    cancel_loss(ctx, active_card, person(ctx, HOLDER_ID))
    assert view(ctx, active_card).status == "active"
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"


def test_a_withdrawal_by_the_wrong_person_is_refused(ctx, active_card):
    report_lost(ctx, active_card, temporary=True)
    with pytest.raises(Refused, match="does not match the holder"):
        cancel_loss(ctx, active_card, person(ctx, STRANGER_ID))
    assert view(ctx, active_card).status == "lost"


def test_a_lapsed_report_has_nothing_left_to_withdraw(ctx, clock, active_card):
    report_lost(ctx, active_card, temporary=True)
    clock.advance(days=8)
    with pytest.raises(Refused, match="lapsed"):
        cancel_loss(ctx, active_card, person(ctx, HOLDER_ID))


def test_a_formal_loss_report_voids_the_card_and_cannot_be_withdrawn(ctx, active_card):
    report_lost(ctx, active_card, temporary=False, person=person(ctx, HOLDER_ID))
    card = view(ctx, active_card)
    assert (card.status, card.loss_kind, card.record()["void_reason"]) == ("void", "formal", "reported lost (formal)")
    assert card.void_reason == reasons.lost_formal()  # stored as a code, worded when shown
    with pytest.raises(Refused, match="cannot be withdrawn"):
        cancel_loss(ctx, active_card, person(ctx, HOLDER_ID))
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "unusable"


def test_a_temporary_report_made_formal_voids_the_card_and_keeps_the_first_report_time(ctx, clock, active_card):
    report_lost(ctx, active_card, temporary=True)
    first = clock.now
    clock.advance(days=2)
    report_lost(ctx, active_card, temporary=False, person=person(ctx, HOLDER_ID))
    card = view(ctx, active_card)
    assert (card.status, card.lost_at) == ("void", first)
    clock.advance(days=30)
    assert view(ctx, active_card).status == "void"  # a formal report never lapses


def test_a_formal_report_needs_the_holders_id_number(ctx, active_card):
    with pytest.raises(InvalidInput, match="--id-number"):
        report_lost(ctx, active_card, temporary=False)


def test_a_second_temporary_report_is_refused(ctx, active_card):
    report_lost(ctx, active_card, temporary=True)
    with pytest.raises(Refused, match="already reported lost"):
        report_lost(ctx, active_card, temporary=True)


def test_a_void_card_stays_void(ctx, active_card):
    report_lost(ctx, active_card, temporary=False, person=person(ctx, HOLDER_ID))
    for attempt in (lambda: report_lost(ctx, active_card, temporary=True),
                    lambda: reset_pin(ctx, active_card, person(ctx, HOLDER_ID), NEW_PIN),
                    lambda: lock_admin(ctx, active_card, "anomaly")):
        with pytest.raises(Refused):
            attempt()
    assert view(ctx, active_card).status == "void"


# --- reissue -----------------------------------------------------------------------------


def test_reissue_voids_the_old_card_and_the_new_one_needs_activation(ctx, active_card):
    report_lost(ctx, active_card, temporary=True)
    result = reissue(ctx, active_card, "B00000001", person(ctx, HOLDER_ID))
    assert (result.cause, result.carried_locks) == ("lost", [])
    old, new = view(ctx, active_card), view(ctx, "B00000001")
    assert (old.status, old.replaced_by) == ("void", "B00000001")
    assert (new.status, new.replaces, new.id_masked, new.usable) == ("pending", active_card, old.id_masked, False)
    assert verify_pin(ctx, "B00000001", GOOD_PIN).result == "unusable"
    activate(ctx, "B00000001", person(ctx, HOLDER_ID), NEW_PIN)
    assert verify_pin(ctx, "B00000001", NEW_PIN).result == "ok"
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "unusable"


def test_a_formally_lost_card_is_reissued_once(ctx, active_card):
    report_lost(ctx, active_card, temporary=False, person=person(ctx, HOLDER_ID))
    reissue(ctx, active_card, "B00000001", person(ctx, HOLDER_ID))
    with pytest.raises(Refused, match="already replaced by B00000001"):
        reissue(ctx, active_card, "B00000002", person(ctx, HOLDER_ID))


def test_a_live_card_is_reissued_only_when_damaged(ctx, active_card):
    with pytest.raises(Refused, match="--damaged"):
        reissue(ctx, active_card, "B00000001", person(ctx, HOLDER_ID))
    assert reissue(ctx, active_card, "B00000001", person(ctx, HOLDER_ID), damaged=True).cause == "damaged"
    assert view(ctx, active_card).record()["void_reason"] == "reissued as B00000001 (damaged)"


def test_reissue_by_the_wrong_person_is_refused_and_changes_nothing(ctx, active_card):
    report_lost(ctx, active_card, temporary=True)
    with pytest.raises(Refused, match="does not match the holder"):
        reissue(ctx, active_card, "B00000001", person(ctx, STRANGER_ID))
    assert view(ctx, active_card).status == "lost"
    assert cards_by_number(ctx, ["B00000001"])[1] == ["B00000001"]
    assert events(ctx, active_card, "card.reissue")[-1].outcome == "refused"


def test_reissue_refuses_a_card_number_already_taken(ctx, active_card):
    issue(ctx, *HOLDERS[1])
    report_lost(ctx, active_card, temporary=True)
    with pytest.raises(Refused, match="already taken"):
        reissue(ctx, active_card, HOLDERS[1][0], person(ctx, HOLDER_ID))


def test_what_is_owed_and_the_admin_lock_carry_over_to_the_new_card(ctx, active_card):
    add_arrears(ctx, Debtor(active_card), 30_000, "2026-10")
    lock_admin(ctx, active_card, "anomaly")
    lock_by_pin(ctx, active_card)
    report_lost(ctx, active_card, temporary=True)
    result = reissue(ctx, active_card, "B00000001", person(ctx, HOLDER_ID))
    assert (result.carried_locks, result.owed_fen) == (["admin", "arrears"], 30_000)
    assert lock_kinds(ctx, "B00000001") == ["admin", "arrears"]
    assert view(ctx, "B00000001").owed_fen == 30_000
    with orm_read(ctx.db) as session:  # nothing stays open on the void card
        assert session.scalars(select(Lock.end_cause).where(Lock.card_no == active_card)).all() == \
            ["replaced", "replaced"]


def test_reissue_on_the_command_line(run, ctx, active_card):
    run("report-lost", active_card, "--temporary")
    result = run("reissue", active_card, "--new-card-no", "B00000001", "--id-number", HOLDER_ID, "-o", "json")
    assert result.exit_code == 0, result.stderr
    (record,) = json.loads(result.stdout)
    assert (record["new_card_no"], record["new_status"]) == ("B00000001", "pending")
    shown = run("status", active_card, "B00000001", "-o", "json")
    old, new = json.loads(shown.stdout)
    assert (old["status"], old["replaced_by"], new["replaces"]) == ("void", "B00000001", active_card)


# --- the admin lock ----------------------------------------------------------------------


def test_an_admin_lock_blocks_use_until_an_explicit_admin_unlock(ctx, active_card):
    assert lock_admin(ctx, active_card, "account anomaly") == "locked"
    assert lock_admin(ctx, active_card, "account anomaly") == "already locked"
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "locked"
    (pin_unlock,) = unlock_cards(ctx, [active_card], UnlockRequest(LockKind.PIN, "counter"))
    assert (pin_unlock.result, [lock.kind for lock in pin_unlock.kept]) == (NOT_LOCKED, ["admin"])
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "locked"  # kept, not cleared
    (admin_unlock,) = unlock_cards(ctx, [active_card], UnlockRequest(LockKind.ADMIN, "cleared by review"))
    assert admin_unlock.result == UNLOCKED
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"


def test_lock_sets_only_admin_locks_and_needs_a_reason(run, active_card):
    assert run("lock", active_card, "--kind", "pin", "--reason", "x").exit_code == 2
    assert run("lock", active_card, "--kind", "admin").exit_code == 2
    locked = run("lock", active_card, "--kind", "admin", "--reason", "violation 2026-7")
    assert locked.exit_code == 0 and "admin lock set" in locked.stderr
    unlocked = run("unlock", active_card, "--kind", "admin", "--reason", "review done")
    assert unlocked.exit_code == 0


def test_status_shows_a_loss_report_with_its_kind_and_lapse_date(run, active_card):
    run("report-lost", active_card, "--temporary")
    (record,) = json.loads(run("status", active_card, "-o", "json").stdout)
    assert (record["status"], record["loss_kind"], record["loss_lapses_at"]) == \
        ("lost", "temporary", "2026-11-30T02:00:00Z")
    table = run("status", active_card).stdout
    assert "temporary loss report, lapses 2026-11-30 10:00" in table


def test_every_action_records_its_channel(ctx, run, active_card):
    run("lock", active_card, "--reason", "x", "--channel", "bank")
    run("report-lost", active_card, "--temporary", "--channel", "online")
    run("cancel-loss", active_card, "--id-number", HOLDER_ID, "--channel", "hotline")
    channels = {e.action: e.channel for e in events(ctx, active_card)}
    assert (channels["lock.admin"], channels["loss.report"], channels["loss.cancel"]) == ("bank", "online", "hotline")
    assert run("lock", active_card, "--reason", "x", "--channel", "fax").exit_code == 2


def test_a_pending_card_cannot_be_reported_lost(ctx):
    issue(ctx, *HOLDERS[2])
    with pytest.raises(Refused, match="pending"):
        report_lost(ctx, HOLDERS[2][0], temporary=True)
    assert view(ctx, HOLDERS[2][0]).status == CardStatus.PENDING


def test_cron_records_lapsed_loss_reports_and_says_so(run, clock, active_card):
    run("report-lost", active_card, "--temporary")
    clock.advance(days=7)
    swept = run("unlock", "--expired")
    assert swept.exit_code == 0 and "1 temporary loss report(s) recorded as lapsed" in swept.stderr
    again = run("unlock", "--expired", "-o", "json")
    assert (again.exit_code, json.loads(again.stdout)) == (0, [])


def test_status_filters_and_counts_a_lapsed_report_as_active(ctx, run, clock, active_card):
    report_lost(ctx, active_card, temporary=True)
    listed = lambda status: [r["card_no"] for r in json.loads(run("status", "--status", status, "-o", "json").stdout)]
    assert (listed("lost"), listed("active")) == ([active_card], [])
    clock.advance(days=7)
    assert (listed("lost"), listed("active")) == ([], [active_card])
    counts = json.loads(run("status", "--summary", "-o", "json").stdout)
    assert [(row["status"], row["cards"]) for row in counts] == [("active", 1)]
