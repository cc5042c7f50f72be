"""Rules for ID numbers, card numbers, credit codes and area codes (cardctl.domain.identity)."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum.cn import ric, uscc

from cardctl.domain.identity import (
    IdNumber,
    birth_date_pins,
    make_id_number,
    mask_id,
    parse_card_no,
    parse_id_number,
    parse_region,
    parse_uscc,
)
from cardctl.errors import InvalidInput

TODAY = date(2026, 11, 23)  # injected clock: no test depends on the real date
EXAMPLE = "11010519491231002X"
EXAMPLE_MASKED = "110***********002X"
# Area codes in use from 1900 to now in stdnum's data (no end year).
OPEN_AREAS = ["110105", "310115", "440305", "330106", "510107", "110000", "440300"]
SAMPLE_CSV = Path(__file__).resolve().parent.parent / "examples" / "cards.csv"


def refusal(raw: str, today: date = TODAY) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_id_number(raw, today)
    return str(caught.value)


def with_check_char(first17: str) -> str:
    # stdnum's own (independent) implementation, so tests do not grade our homework.
    return first17 + ric.calc_check_digit(first17 + "0")


# --- ID numbers: what is accepted -------------------------------------------------


def test_the_standard_example_is_accepted():
    id_number = parse_id_number(EXAMPLE, TODAY)
    assert id_number.value == EXAMPLE
    assert id_number.birth_date == date(1949, 12, 31)
    assert id_number.area == "110105"
    assert id_number.last6 == "31002X"


def test_lowercase_x_means_X():
    assert parse_id_number(EXAMPLE.lower(), TODAY).value == EXAMPLE


@pytest.mark.parametrize("padded", [f"  {EXAMPLE}  ", f"\t{EXAMPLE}\n", f"\u3000{EXAMPLE}"])
def test_surrounding_whitespace_is_ignored(padded):
    assert parse_id_number(padded, TODAY).value == EXAMPLE


def test_an_even_17th_digit_is_female_and_odd_is_male():
    assert parse_id_number(EXAMPLE, TODAY).male is False
    assert parse_id_number(make_id_number("110105", date(1980, 5, 6), 13), TODAY).male is True


def test_age_counts_full_years():
    holder = parse_id_number(make_id_number("110105", date(2010, 6, 15), 1), TODAY)
    assert holder.age(date(2026, 6, 14)) == 15
    assert holder.age(date(2026, 6, 15)) == 16


def test_a_29_february_birthday_comes_on_1_march_in_common_years():
    holder = parse_id_number(make_id_number("110105", date(2008, 2, 29), 1), TODAY)
    assert holder.age(date(2026, 2, 28)) == 17
    assert holder.age(date(2026, 3, 1)) == 18


def test_age_before_birth_is_a_programming_error():
    with pytest.raises(ValueError):
        parse_id_number(EXAMPLE, TODAY).age(date(1949, 12, 30))


@pytest.mark.parametrize("area", ["440305", "330106", "510107", "310115"])
def test_an_area_code_created_after_the_birth_year_is_accepted(area):
    # stdnum insists on the code existing in the birth year and refuses these real numbers.
    number = make_id_number(area, date(1970, 3, 8), 21)
    assert not ric.is_valid(number)
    assert parse_id_number(number, TODAY).area == area


def test_an_area_code_abolished_before_birth_is_refused():
    number = make_id_number("110103", date(2012, 1, 1), 1)  # Chongwen district, [-2010]
    assert "area code" in refusal(number)


def test_an_area_code_abolished_after_birth_is_accepted():
    assert parse_id_number(make_id_number("110103", date(1960, 1, 1), 1), TODAY).area == "110103"


def test_an_area_code_created_after_today_is_refused():
    number = make_id_number("500157", date(1990, 1, 1), 1)  # Liangjiang new area, [2025-]
    assert "area code" in refusal(number, today=date(2024, 12, 31))
    assert parse_id_number(number, date(2025, 1, 1)).area == "500157"


@pytest.mark.parametrize("area", ["119999", "990000", "000000"])
def test_an_unknown_area_code_is_refused(area):
    assert "unknown area code" in refusal(make_id_number(area, date(1970, 1, 1), 1))


def test_a_birth_today_is_accepted():
    assert parse_id_number(make_id_number("110105", TODAY, 2), TODAY).birth_date == TODAY


def test_a_birth_on_1_january_1900_is_accepted():
    assert parse_id_number(make_id_number("110105", date(1900, 1, 1), 2), TODAY).age(TODAY) == 126


# --- ID numbers: what is refused --------------------------------------------------


def test_a_birth_date_in_the_future_is_refused():
    assert "future" in refusal(make_id_number("110105", TODAY + timedelta(days=1), 2))


def test_a_birth_date_before_1900_is_refused():
    assert "before 1900" in refusal(make_id_number("110105", date(1899, 12, 31), 2))


@pytest.mark.parametrize(
    "yyyymmdd", ["19490230", "19000229", "19491301", "19490001", "19490100", "00000101"]
)
def test_an_impossible_calendar_date_is_refused(yyyymmdd):
    assert "not a real date" in refusal(with_check_char(f"110105{yyyymmdd}002"))


def test_29_february_of_a_leap_year_is_accepted():
    leap_day = parse_id_number(with_check_char("11010520000229002"), TODAY)
    assert leap_day.birth_date == date(2000, 2, 29)


def test_a_wrong_check_character_is_refused():
    assert "check character" in refusal("110105194912310021")


@pytest.mark.parametrize("raw", ["１1010519491231002X", "１１０１０５１９４９１２３１００２Ｘ", "11010519491231002Ｘ"])
def test_full_width_characters_are_refused(raw):
    assert "full-width" in refusal(raw)


@pytest.mark.parametrize(
    "raw", ["110105 19491231002X", "110105-19491231 002X", "110105\t19491231002X"]
)
def test_inner_spaces_and_dashes_are_refused(raw):
    assert "spaces or dashes" in refusal(raw)


@pytest.mark.parametrize("raw", [EXAMPLE[:-1], EXAMPLE + "1", "1101051949"])
def test_a_wrong_length_is_refused_and_names_both_lengths(raw):
    assert f"wrong length ({len(raw)}, expected 18)" in refusal(raw)


def test_a_15_digit_first_generation_number_is_refused_with_a_hint():
    assert "first-generation" in refusal("110105491231002")


@pytest.mark.parametrize(
    "raw", ["11010519491231A02X", "X10105194912310021", "1101051949123100XX", "110105194912.1002X"]
)
def test_letters_other_than_a_final_X_are_refused(raw):
    assert "only digits" in refusal(raw)


@pytest.mark.parametrize("raw", ["", "   ", "\n"])
def test_an_empty_id_number_is_refused(raw):
    assert refusal(raw) == "ID number is empty"


# --- masking ----------------------------------------------------------------------


def test_mask_keeps_the_first_3_and_last_4():
    assert mask_id(EXAMPLE) == EXAMPLE_MASKED
    assert parse_id_number(EXAMPLE, TODAY).masked == EXAMPLE_MASKED


def test_mask_id_wants_a_normalized_number():
    with pytest.raises(ValueError):
        mask_id("1234")


def test_repr_and_str_show_only_the_mask():
    id_number = parse_id_number(EXAMPLE, TODAY)
    containers = (repr([id_number]), repr({"holder": id_number}), repr((id_number,)))
    for shown in (repr(id_number), str(id_number), f"{id_number}", *containers):
        assert EXAMPLE not in shown
        assert EXAMPLE_MASKED in shown


def test_an_id_number_can_only_be_built_around_a_checksum_valid_value():
    with pytest.raises(ValueError) as caught:
        IdNumber("110105194912310021")
    assert "110105194912310021" not in str(caught.value)


def test_an_id_number_is_immutable_and_compares_by_value():
    id_number = parse_id_number(EXAMPLE, TODAY)
    with pytest.raises(AttributeError):
        id_number.value = "x"  # type: ignore[misc]
    assert id_number == parse_id_number(EXAMPLE.lower(), TODAY)


BAD_18_CHARACTER_NUMBERS = [
    "110105194912310021",  # wrong check character
    make_id_number("110105", date(2099, 1, 1), 2),  # future
    make_id_number("110105", date(1899, 1, 1), 2),  # before 1900
    with_check_char("11010519490230002"),  # 30 February
    make_id_number("119999", date(1970, 1, 1), 2),  # unknown area
    make_id_number("110103", date(2012, 1, 1), 2),  # area no longer in use
    "110105１9491231002X",  # full-width
    "11010519491231A02X",  # letter
]


@pytest.mark.parametrize("raw", BAD_18_CHARACTER_NUMBERS)
def test_a_refusal_never_echoes_the_number(raw):
    message = refusal(raw)
    assert raw not in message and raw[:17] not in message
    assert f"{raw[:3]}{'*' * 11}{raw[-4:]}" in message


def test_a_refusal_never_echoes_a_number_one_digit_short():
    # 17 digits give away the 18th, which is only a checksum.
    expected = "ID number 110**********100X: wrong length (17, expected 18)"
    assert refusal("1101051949123100X") == expected
    assert "11010519491231002" not in refusal("11010519491231002")


@pytest.mark.parametrize(
    "raw", [*BAD_18_CHARACTER_NUMBERS, "110105\n19491231002X", "1\r2", EXAMPLE[:-1]]
)
def test_a_refusal_is_one_line(raw):
    assert "\n" not in refusal(raw) and "\r" not in refusal(raw)


# --- the property: every number make_id_number builds parses, and no typo does -------

KNOWN_AREAS = st.sampled_from(OPEN_AREAS)
BIRTHS = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
SEQS = st.integers(min_value=0, max_value=999)


@settings(deadline=None)
@given(area=KNOWN_AREAS, birth=BIRTHS, seq=SEQS)
def test_built_numbers_parse_and_round_trip(area, birth, seq):
    number = make_id_number(area, birth, seq)
    id_number = parse_id_number(number, TODAY)
    assert id_number.value == number
    assert (id_number.area, id_number.birth_date, id_number.male) == (area, birth, seq % 2 == 1)
    assert number[-1] == ric.calc_check_digit(number)


@settings(deadline=None)
@given(area=KNOWN_AREAS, birth=BIRTHS, seq=SEQS, position=st.integers(0, 17), data=st.data())
def test_changing_any_single_character_is_caught_by_the_check_character(
    area, birth, seq, position, data
):
    number = make_id_number(area, birth, seq)
    alphabet = "0123456789X" if position == 17 else "0123456789"
    replacement = data.draw(st.sampled_from([c for c in alphabet if c != number[position]]))
    typo = number[:position] + replacement + number[position + 1 :]
    assert "wrong check character" in refusal(typo)


def test_make_id_number_builds_the_standard_example():
    assert make_id_number("110105", date(1949, 12, 31), 2) == EXAMPLE


@pytest.mark.parametrize(
    ("area", "seq"),
    [("11010", 1), ("11010a", 1), ("１10105", 1), ("110105", -1), ("110105", 1000)],
)
def test_make_id_number_refuses_bad_arguments(area, seq):
    with pytest.raises(ValueError):
        make_id_number(area, date(1970, 1, 1), seq)


# --- card numbers -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("A10000001", "A10000001"), (" 0AZ9B8C7D\n", "0AZ9B8C7D"), ("123456789", "123456789")],
)
def test_a_9_character_upper_case_card_number_is_accepted(raw, expected):
    assert parse_card_no(raw) == expected


def card_refusal(raw: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_card_no(raw)
    return str(caught.value)


def test_a_lower_case_card_number_is_refused_with_the_upper_case_form():
    assert "ABC123DEF" in card_refusal("abc123def")
    assert "upper case" in card_refusal("abc123def")


def test_a_card_number_with_an_inner_space_is_refused():
    assert "spaces" in card_refusal("ABC 12345")


@pytest.mark.parametrize("raw", ["ABC1234567", "ABC1234", "abc1234567"])
def test_a_card_number_of_the_wrong_length_is_refused(raw):
    assert f"wrong length ({len(raw)}, expected 9)" in card_refusal(raw)


@pytest.mark.parametrize("raw", ["ABC_12345", "ABC.12345", "ABC/12345"])
def test_a_card_number_with_other_characters_is_refused(raw):
    assert "only digits 0-9 and letters A-Z" in card_refusal(raw)


@pytest.mark.parametrize("raw", ["ＡBC123456", "ABC12345６", "ABC１２３４５"])
def test_a_card_number_with_full_width_characters_is_refused(raw):
    assert "full-width" in card_refusal(raw)


def test_an_empty_card_number_is_refused():
    assert card_refusal("  ") == "card number is empty"


# --- unit credit codes (USCC) -----------------------------------------------------


def valid_uscc(body17: str = "91110105MA01ABCD0") -> str:
    return body17 + uscc.calc_check_digit(body17)


def test_a_valid_credit_code_is_accepted_upper_cased_and_stripped():
    code = valid_uscc()
    assert parse_uscc(code) == code
    assert parse_uscc(f"  {code.lower()}\n") == code


def uscc_refusal(raw: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        parse_uscc(raw)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_a_credit_code_with_a_wrong_check_character_is_refused():
    code = valid_uscc()
    wrong = "0" if code[-1] != "0" else "1"
    assert "check character" in uscc_refusal(code[:-1] + wrong)


def test_a_credit_code_of_the_wrong_length_is_refused():
    assert "wrong length (17, expected 18)" in uscc_refusal(valid_uscc()[:-1])


@pytest.mark.parametrize("raw", ["9111010SMA01ABCD0X", "91110105MA01ABCDO1"])
def test_a_credit_code_with_forbidden_characters_is_refused(raw):
    assert "expected 8 digits" in uscc_refusal(raw)


def test_a_credit_code_with_inner_separators_is_refused_not_silently_joined():
    code = valid_uscc()
    assert "spaces or dashes" in uscc_refusal(f"{code[:8]} {code[8:]}")
    assert "spaces or dashes" in uscc_refusal(f"{code[:8]}-{code[8:]}")


def test_a_credit_code_with_full_width_characters_is_refused():
    assert "full-width" in uscc_refusal("９" + valid_uscc()[1:])


def test_an_empty_credit_code_is_refused():
    assert uscc_refusal("") == "credit code is empty"


USCC_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100-2015: no I, O, S, V, Z


@settings(max_examples=500)
@given(digits=st.text("0123456789", min_size=8, max_size=8),
       rest=st.text(USCC_ALPHABET, min_size=9, max_size=9),
       typo=st.one_of(st.none(), st.tuples(st.integers(0, 17), st.sampled_from(USCC_CHARS))))
def test_a_credit_code_is_accepted_exactly_when_stdnum_accepts_it(digits, rest, typo):
    # parse_uscc checks the common case itself, for speed; stdnum stays the judge
    code = valid_uscc(digits + rest)
    if typo is not None:
        position, char = typo
        code = code[:position] + char + code[position + 1:]
    if uscc.is_valid(code):
        assert parse_uscc(code) == code
    else:
        uscc_refusal(code)


# --- regions --------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["110105", "440305", "110103", " 310115 ", "110000"])
def test_a_known_area_code_of_any_period_is_a_region(code):
    assert parse_region(code) == code.strip()


@pytest.mark.parametrize(
    "raw", ["119999", "990000", "11010", "1101050", "11010a", "１10105", "110 105", ""]
)
def test_anything_else_is_not_a_region(raw):
    with pytest.raises(InvalidInput):
        parse_region(raw)


# --- weak-PIN material ---------------------------------------------------------------


def test_birth_date_pins_are_the_6_digit_spellings_of_the_birth_date():
    assert birth_date_pins(date(1949, 12, 31)) == {"491231", "123149", "311249"}
    assert birth_date_pins(date(2005, 3, 7)) == {"050307", "030705", "070305"}


# --- the sample data -----------------------------------------------------------------


def sample_rows() -> list[dict[str, str]]:
    with SAMPLE_CSV.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_every_sample_card_passes_the_parsers():
    rows = sample_rows()
    assert len(rows) == 60
    for row in rows:
        assert parse_card_no(row["card_no"]) == row["card_no"]
        assert parse_id_number(row["id_number"], TODAY).value == row["id_number"]
        assert parse_region(row["region"]) == row["region"]
        assert row["name"].strip() and not row["name"].isascii()
        if row["type"] == "employee":
            assert parse_uscc(row["unit"]) == row["unit"]
        else:
            assert row["type"] == "resident" and row["unit"] == ""


def test_no_two_sample_cards_share_a_card_number_or_a_holder():
    rows = sample_rows()
    assert len({row["card_no"] for row in rows}) == len(rows)
    assert len({row["id_number"] for row in rows}) == len(rows)


def test_the_sample_includes_minors_and_the_elderly():
    ages = [parse_id_number(row["id_number"], TODAY).age(TODAY) for row in sample_rows()]
    assert min(ages) < 16 and max(ages) >= 80
