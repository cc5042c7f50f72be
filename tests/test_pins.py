"""Rules for PINs: the format, which PINs are too weak to set, and refusal at activation
(cardctl.domain.pins, cardctl.services.cards.activate)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from cardctl.domain.identity import birth_date_pins, parse_id_number
from cardctl.domain.pins import COMMON_PINS, parse_pin, weakness
from cardctl.errors import InvalidInput, Refused
from cardctl.services.cards import activate
from orm import Card, Event, Policy, orm_write, orm_read
from conftest import GOOD_PIN, HOLDERS, issue

BIRTH = date(1949, 12, 31)  # the first holder's, from 11010519491231002X
TODAY = date(2026, 11, 23)


def why(pin: str, *, default_pin: str = "123456", birth: date = BIRTH, id_tail: str = "") -> str | None:
    return weakness(pin, default_pin=default_pin, birth_pins=birth_date_pins(birth),
                    is_id_tail=lambda candidate: candidate == id_tail)


# --- weak PINs, by rule ------------------------------------------------------------------------


@pytest.mark.parametrize("pin", [str(digit) * 6 for digit in range(10)])
def test_one_digit_repeated_is_weak(pin):
    assert why(pin) == "it is one digit repeated or a run of digits"


@pytest.mark.parametrize("pin", ["012345", "123456", "234567", "345678", "456789",
                                 "987654", "876543", "765432", "654321", "543210"])
def test_ascending_and_descending_runs_are_weak(pin):
    assert why(pin) == "it is one digit repeated or a run of digits"


# Decision: a run that wraps from 9 to 0 (or 0 to 9) counts as a run. On a keypad
# and in a person's head "7-8-9-0-1-2" is the same sweep as "1-2-3-4-5-6", so it is
# as guessable, and refusing it costs only 10 of the 10^6 PINs.
@pytest.mark.parametrize("pin", ["567890", "678901", "789012", "890123", "901234",
                                 "098765", "109876", "210987", "321098", "432109"])
def test_runs_that_wrap_past_zero_are_weak(pin):
    assert why(pin) == "it is one digit repeated or a run of digits"


@pytest.mark.parametrize("pin", ["123457", "135791", "112345", "123321", "024680", "010101"])
def test_near_runs_are_not_runs(pin):
    assert why(pin) != "it is one digit repeated or a run of digits"


def test_the_regions_default_pin_is_weak():
    assert why("802417", default_pin="802417") == "it is the region's default PIN"
    assert why("802417", default_pin="661394") is None


@pytest.mark.parametrize("form, pin", [("YYMMDD", "491231"), ("MMDDYY", "123149"), ("DDMMYY", "311249"),
                                       ("last 6 of YYYYMMDD", "491231")])
def test_every_six_digit_form_of_the_birth_date_is_weak(form, pin):
    assert why(pin) == "it is the holder's birth date", form


def test_birth_date_forms_with_a_leading_zero_keep_it():
    assert birth_date_pins(date(2001, 2, 3)) == {"010203", "020301", "030201"}


def test_someone_elses_birth_date_is_not_refused_as_a_birth_date():
    assert why("491231", birth=date(1985, 2, 28)) is None


def test_the_end_of_the_id_number_is_weak():
    assert why("010019", id_tail="010019") == "it is the end of the holder's ID number"
    assert why("010019", id_tail="280028") is None


@pytest.mark.parametrize("pin", ["123123", "147258", "159753", "520520", "112233", "666888"])
def test_the_most_common_pins_are_weak(pin):
    assert why(pin) == "it is one of the most common PINs"


@pytest.mark.parametrize("pin", sorted(COMMON_PINS))
def test_every_pin_on_the_common_list_is_refused(pin):
    assert why(pin) is not None


@pytest.mark.parametrize("pin", [GOOD_PIN, "730518", "264093", "908172"])
def test_an_unremarkable_pin_is_accepted(pin):
    assert why(pin) is None


@pytest.mark.parametrize("pin", ["111111", "890123", "802417", "491231", "010019", "520520"])
def test_no_refusal_message_contains_the_pin(pin):
    reason = why(pin, default_pin="802417", id_tail="010019")
    assert reason is not None and pin not in reason


# --- weak PINs at activation -----------------------------------------------------------------


def pending_card(ctx, index: int = 0):
    card_no, name, id_number, region = HOLDERS[index]
    issue(ctx, card_no, name, id_number, region)
    return card_no, parse_id_number(id_number, TODAY)


def card_state(ctx, card_no: str) -> tuple:
    with orm_read(ctx.db) as session:
        card = session.get(Card, card_no)
        return card.status, card.pin_hash, card.failures


def activation_events(ctx, card_no: str) -> list[tuple]:
    with orm_read(ctx.db) as session:
        return session.execute(select(Event.outcome, Event.reason).where(
            Event.action == "card.activate", Event.card_no == card_no).order_by(Event.seq)).all()


@pytest.mark.parametrize("pin, reason", [
    ("222222", "one digit repeated or a run of digits"),
    ("123456", "one digit repeated or a run of digits"),
    ("491231", "birth date"),
    ("311249", "birth date"),
    ("159753", "most common PINs"),
])
def test_activation_refuses_a_weak_pin_and_the_card_stays_pending(ctx, pin, reason):
    card_no, id_number = pending_card(ctx)
    with pytest.raises(Refused) as caught:
        activate(ctx, card_no, id_number, pin)
    assert caught.value.exit_code == 6
    assert reason in caught.value.message and pin not in caught.value.message
    assert card_state(ctx, card_no) == ("pending", None, 0)
    [(outcome, recorded)] = activation_events(ctx, card_no)
    assert outcome == "refused" and reason in recorded and pin not in recorded


def test_activation_refuses_the_end_of_the_holders_id_number(ctx):
    card_no, id_number = pending_card(ctx, 1)  # 440305197001010019
    with pytest.raises(Refused, match="end of the holder's ID number"):
        activate(ctx, card_no, id_number, "010019")
    assert card_state(ctx, card_no)[0] == "pending"


def test_activation_refuses_the_default_pin_of_the_cards_region(ctx):
    with orm_write(ctx.db) as session:
        session.add(Policy(region_prefix="110105", max_attempts=3, lock_hours=24, temp_loss_days=7,
                           default_pin="802417", minor_age=16))
    ctx._policies = None
    card_no, id_number = pending_card(ctx)
    with pytest.raises(Refused, match="default PIN"):
        activate(ctx, card_no, id_number, "802417")
    assert card_state(ctx, card_no)[0] == "pending"


def test_after_a_weak_pin_is_refused_a_strong_one_activates(ctx):
    card_no, id_number = pending_card(ctx)
    with pytest.raises(Refused):
        activate(ctx, card_no, id_number, "111111")
    activate(ctx, card_no, id_number, GOOD_PIN)
    status, pin_hash, _ = card_state(ctx, card_no)
    assert status == "active" and pin_hash.startswith("$2b$")
    assert [outcome for outcome, _ in activation_events(ctx, card_no)] == ["refused", "activated"]


# --- the format ---------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [GOOD_PIN, GOOD_PIN + "\n", GOOD_PIN + "\r\n"])
def test_six_ascii_digits_are_a_pin(raw):
    assert parse_pin(raw) == GOOD_PIN


@pytest.mark.parametrize("raw", [
    "58392",  # 5 digits
    "5839201",  # 7 digits
    "58392a",  # a letter
    "ABCDEF",
    "５８３９２０",  # full-width digits
    "٥٨٣٩٢٠",  # Arabic-Indic digits: str.isdigit() says yes
    "583 920",
    " 583920",
    "+58392",
    "",
])
def test_anything_but_six_ascii_digits_is_refused_without_echoing_it(raw):
    with pytest.raises(InvalidInput) as caught:
        parse_pin(raw)
    assert caught.value.exit_code == 2
    assert caught.value.message == "a PIN must be exactly 6 digits (0-9)"
    if raw:
        assert raw.strip() not in caught.value.message
