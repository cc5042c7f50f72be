"""System reasons: stored as a code plus parameters, worded (and translated) only when shown;
legacy English sentences still shown as before; operator text can never pass for one."""

from __future__ import annotations

import pytest

from cardctl import i18n
from cardctl.domain import reasons
from cardctl.domain.names import parse_reason
from cardctl.domain.reasons import MARKER, Reason
from cardctl.errors import InvalidInput
from cardctl.i18n import Msg, localize

# every encoder, with the English it must read as (the sentence stored before codes existed)
CASES = [
    (reasons.pin_failures(3), Reason.PIN_FAILURES, "3 consecutive wrong PINs", "连续 3 次密码错误"),
    (reasons.unpaid(True, False), Reason.UNPAID, "unpaid contributions (own)", None),
    (reasons.unpaid(False, True), Reason.UNPAID, "unpaid contributions (unit)", None),
    (reasons.unpaid(True, True), Reason.UNPAID, "unpaid contributions (own and unit)", None),
    (reasons.paid(), Reason.PAID, "paid", "已缴清"),
    (reasons.lost_formal(), Reason.LOST_FORMAL, "reported lost (formal)", None),
    (reasons.reissued("B00000001", "damaged"), Reason.REISSUED, "reissued as B00000001 (damaged)", None),
    (reasons.carried_over("fraud review", "A00000001"), Reason.CARRIED,
     "fraud review (carried over from A00000001)", "fraud review（由 A00000001 转来）"),
    (reasons.carried_over(reasons.carried_over("fraud review", "A1"), "B2"), Reason.CARRIED,
     "fraud review (carried over from A1) (carried over from B2)", None),
    (reasons.carried_over("3 consecutive wrong PINs (carried over from A1)", "B2"), Reason.CARRIED,
     "3 consecutive wrong PINs (carried over from A1) (carried over from B2)", None),
    (reasons.pin_escalated(3, 3, 30), Reason.PIN_ESCALATED,
     "3 consecutive wrong PINs; PIN lock 3 in 30 days: needs a counter visit",
     "连续 3 次密码错误；30 天内第 3 次密码锁定：须到窗口办理"),
]


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    i18n.set_language(i18n.ENGLISH)


@pytest.mark.parametrize("stored, code, english, chinese", CASES)
def test_a_coded_reason_decodes_to_its_code_and_reads_as_the_sentence_stored_before(stored, code, english, chinese):
    assert stored.startswith(MARKER) and stored != english
    assert reasons.decode(stored)[0] is code
    assert reasons.encode(*reasons.decode(stored)) == stored
    shown = reasons.worded(stored)
    assert isinstance(shown, Msg) and shown == english
    assert reasons.worded(stored, translate=False) == english and type(reasons.worded(stored, False)) is str
    assert reasons.for_record(stored) == english
    if chinese:
        i18n.set_language(i18n.CHINESE)
        assert localize(shown) == chinese


def test_every_code_has_an_encoder_a_wording_and_a_translation():
    encoded = {reasons.decode(stored)[0] for stored, *_ in CASES}
    assert encoded == set(Reason) == set(reasons.PARAMS)
    i18n.set_language(i18n.CHINESE)
    for stored, *_ in CASES:
        assert localize(reasons.worded(stored)) != str(reasons.worded(stored))


@pytest.mark.parametrize("stored, code, english, chinese", CASES)
def test_a_legacy_sentence_is_shown_as_before_and_translated_as_its_code(stored, code, english, chinese):
    if code is Reason.PAID:  # 'paid' was never translated from an old row: it may be an operator's word
        assert reasons.worded(english) == english and not isinstance(reasons.worded(english), Msg)
        return
    if code is Reason.PIN_ESCALATED:  # born coded: its sentence in a row is someone's text, not cardctl's
        assert reasons.worded(english) is english
        return
    assert reasons.decode(english) is None
    legacy = reasons.worded(english)
    assert isinstance(legacy, Msg) and legacy == english
    assert reasons.worded(english, translate=False) is english  # records: exactly as stored
    assert reasons.for_record(english) is english
    i18n.set_language(i18n.CHINESE)
    assert localize(legacy) == localize(reasons.worded(stored))


HOSTILE = [
    MARKER + 'pin.failures{"failures": 3}',  # not the compact form
    MARKER + 'pin.failures{"failures":"3"}',  # a string where a number belongs
    MARKER + 'pin.failures{"failures":true}',  # a bool is no count
    MARKER + 'pin.failures{"failures":0}',
    MARKER + 'pin.failures{"failures":3,"x":1}',  # a parameter the code does not take
    MARKER + 'pin.failures',  # its parameter missing
    MARKER + 'pin.failures{"failures":3} and more',
    MARKER + 'arrears.unpaid{"own":false,"unit":false}',
    MARKER + 'card.reissued{"card":"B1","cause":"stolen by aliens"}',
    MARKER + 'card.reissued{"cause":"lost","card":"B1"}',  # keys not sorted
    MARKER + 'loss.formal{}',
    MARKER + 'nosuch.code',
    MARKER + 'loss.formal\n',
    MARKER,
    ' ' + reasons.lost_formal(),
    'pin.failures{"failures":3}',  # the encoding without its mark
    'x' + reasons.pin_failures(3),
]


@pytest.mark.parametrize("text", HOSTILE)
def test_text_that_imitates_the_encoding_is_no_system_reason(text):
    assert reasons.decode(text) is None
    assert reasons.worded(text) == text and not isinstance(reasons.worded(text), Msg)
    assert reasons.for_record(text) == text


@pytest.mark.parametrize("typed", [reasons.pin_failures(3), reasons.lost_formal(), "  " + reasons.paid(),
                                   MARKER + "anything at all", MARKER])
def test_an_operator_reason_may_not_start_with_the_mark(typed):
    with pytest.raises(InvalidInput, match="must not start with"):
        parse_reason(typed)


def test_the_mark_inside_an_operator_reason_is_kept_and_shown_as_typed():
    typed = "case 7 " + reasons.pin_failures(3)
    assert parse_reason(typed) == typed
    assert reasons.worded(typed) == typed and reasons.decode(typed) is None


def test_a_carried_reason_keeps_a_hostile_inner_text_as_typed():
    inner = MARKER + 'pin.failures{"failures": 3}'
    assert reasons.worded(reasons.carried_over(inner, "A1"), False) == f"{inner} (carried over from A1)"


def test_an_encoder_refuses_parameters_its_code_does_not_take():
    with pytest.raises(ValueError):
        reasons.unpaid(False, False)
    with pytest.raises(ValueError):
        reasons.reissued("B1", "stolen")
    with pytest.raises(ValueError):
        reasons.pin_failures(0)


# --- through stored rows -------------------------------------------------------------------------


def _store(ctx, card_no: str) -> None:
    """A card's rows as the writers store them with these functions: a PIN lock, an arrears lock
    and a carried admin lock, with their events."""
    from cardctl.storage.audit import EventDraft
    from cardctl.storage.tables import locks

    with ctx.write() as tx:
        now = tx.now
        rows = [("pin", reasons.pin_failures(3)), ("arrears", reasons.unpaid(True, True)),
                ("admin", reasons.carried_over("fraud review", "Z00000009"))]
        for kind, reason in rows:
            tx.conn.execute(locks.insert().values(card_no=card_no, kind=kind, reason=reason, started_at=now,
                                                  ends_at=None, created_by="tester"))
        tx.record([EventDraft("lock.pin", "locked", card_no, reason=reasons.pin_failures(3)),
                   EventDraft("lock.arrears", "ended", card_no, reason=reasons.paid())])


def test_a_stored_coded_lock_shows_worded_in_english_and_translated_in_chinese(ctx, run, active_card):
    _store(ctx, active_card)
    english = run("status", active_card)
    for text in ("3 consecutive wrong PINs", "unpaid contributions (own and unit)",
                 "fraud review (carried over from Z00000009)"):
        assert text in english.stdout
    chinese = run("--lang", "zh", "status", active_card)
    for text in ("连续 3 次密码错误", "欠缴社保费", "fraud review（由 Z00000009 转来）"):
        assert text in chinese.stdout
    assert MARKER not in english.stdout + chinese.stdout
    assert "consecutive" not in chinese.stdout


def test_the_audit_log_table_words_a_coded_reason_in_the_trails_english(ctx, run, active_card):
    _store(ctx, active_card)
    for lang in ("en", "zh"):
        shown = run("--lang", lang, "audit", "log", "--card", active_card).stdout
        assert "3 consecutive wrong PINs" in shown and MARKER not in shown
