"""Identity numbers a holder and a card carry: parse them, refuse bad ones, mask them.

The resident ID number (GB 11643-1999) is sensitive personal data (PIPL art. 28): an
``IdNumber`` prints only its masked form, and refusal messages never show more than the
first 3 and last 4 characters of what was typed. Card numbers, unit credit codes and
area codes are not secret and are echoed as typed.

Pure functions over ``str`` and ``date``; no Typer, Rich or SQLAlchemy here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from operator import mul

# stdnum is imported where it is used: it pulls in ssl and friends, and commands
# that never validate an ID number (status, unlock --expired) should not pay for it.

from cardctl.errors import InvalidInput
from cardctl.i18n import _

ID_LENGTH = 18
CARD_NO_LENGTH = 9
EARLIEST_BIRTH = date(1900, 1, 1)

# ISO 7064 MOD 11-2 as GB 11643-1999 spells it out: weight 2**(17-i) mod 11.
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_DIGITS = frozenset("0123456789")
_CARD_CHARS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_PERIOD = re.compile(r"\[(\d*)-(\d*)\]")
_SHOWN_IN_CLEAR = 7  # first 3 + last 4

# GB 32100-2015 as stdnum.cn.uscc has it (no I, O, S, V, Z), for the fast path of
# parse_uscc: a code these accept is one stdnum accepts; anything else goes to stdnum.
_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_VALUES = {char: value for value, char in enumerate(_USCC_ALPHABET)}
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_SHAPE = re.compile(f"[0-9]{{8}}[{_USCC_ALPHABET}]{{10}}")

Period = tuple[int | None, int | None]

# What could be an ID number inside any text: a run of 15 or more digits (18-character numbers,
# the 15-digit first generation, and 17 digits, which give away the 18th), with an X after it.
_ID_SHAPED = re.compile(r"[0-9]{15,}[Xx]?")


@dataclass(frozen=True, slots=True, repr=False)
class IdNumber:
    """A checked resident ID number; ``value`` is the normalized form (upper-case X)."""

    value: str

    def __post_init__(self) -> None:
        # Direct construction skips parse_id_number, so at least keep the shape honest.
        if not _is_checksum_valid(self.value):
            raise ValueError("IdNumber needs a normalized, checksum-valid number; parse one")

    @classmethod
    def _parsed(cls, value: str) -> IdNumber:
        """For parse_id_number only, which has just made every check ``__post_init__`` makes."""
        number = object.__new__(cls)
        object.__setattr__(number, "value", value)
        return number

    @property
    def birth_date(self) -> date:
        return date(int(self.value[6:10]), int(self.value[10:12]), int(self.value[12:14]))

    @property
    def male(self) -> bool:
        return int(self.value[16]) % 2 == 1

    @property
    def area(self) -> str:
        return self.value[:6]

    @property
    def masked(self) -> str:
        return mask_id(self.value)

    @property
    def last6(self) -> str:
        return self.value[-6:]

    def age(self, on: date) -> int:
        """Full years on ``on``; a 29 February birthday comes on 1 March in common years."""
        birth = self.birth_date
        if on < birth:
            raise ValueError("age asked for a day before the birth date")
        return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))

    # Both return the mask so the number cannot leak into logs, tracebacks or
    # pytest's assertion rewriting.
    def __repr__(self) -> str:
        return self.masked

    def __str__(self) -> str:
        return self.masked


def mask_id(value: str) -> str:
    """``110***********002X`` for ``11010519491231002X``."""
    if len(value) != ID_LENGTH:
        raise ValueError("mask_id expects a normalized 18-character ID number")
    return _mask(value)


def mask_id_shapes(text: str) -> str:
    """``text`` with everything shaped like an ID number masked as ``mask_id`` does: for every
    message and row cardctl prints or records, whatever was typed into whichever option."""
    if not isinstance(text, str) or len(text) < 15 or not _ID_SHAPED.search(text):
        return text  # as it is: a message still to be translated stays one
    return _ID_SHAPED.sub(lambda found: _mask(found[0]), text)


def parse_id_number(raw: str, today: date) -> IdNumber:
    """Check and normalize a typed ID number; ``today`` bounds the birth date."""
    text = raw.strip()
    _refuse_bad_id_shape(text)
    value = text.upper()
    birth = _birth_date(value)
    _refuse_birth_out_of_range(value, birth, today)
    _refuse_area_not_in_use(value, birth, today)
    return IdNumber._parsed(value)


def parse_card_no(raw: str) -> str:
    """A card number is exactly 9 characters from 0-9 and A-Z, with no checksum."""
    text = raw.strip()
    if not text:
        raise InvalidInput(_("card number is empty"))
    problem = _card_no_problem(text)
    if problem:
        raise InvalidInput(_("card number {card}: {problem}").format(card=shown_card_no(text), problem=problem))
    return text


def shown_card_no(raw: str) -> str:
    """A typed card number as it may be echoed: as typed, unless too long to be one,
    then masked, since an ID number pasted in its place must never be printed in full."""
    text = _printable(raw.strip())
    return _mask(text) if len(text) > CARD_NO_LENGTH else text


def parse_uscc(raw: str) -> str:
    """An employer unit's unified social credit code (GB 32100-2015), upper-cased."""
    text = raw.strip().upper()
    if not text:
        raise InvalidInput(_("credit code is empty"))
    # stdnum would silently drop inner spaces and dashes; refuse them as everywhere else.
    problem = _separator_problem(text)
    if not problem and _USCC_SHAPE.fullmatch(text) and text[17] == _uscc_check_char(text[:17]):
        return text  # the common case, without stdnum's character-by-character clean-up
    if not problem:
        from stdnum.cn import uscc
        from stdnum.exceptions import ValidationError

        try:
            return uscc.validate(text)
        except ValidationError as error:
            problem = _uscc_problem(error, text)
    raise InvalidInput(_("credit code {code}: {problem}").format(code=_printable(text), problem=problem))


def parse_region(raw: str) -> str:
    """A 6-digit area code that stdnum's cn/loc data knows, in any period."""
    text = raw.strip()
    if not text:
        raise InvalidInput(_("region is empty"))
    if not (len(text) == 6 and set(text) <= _DIGITS):
        raise InvalidInput(_("region {region}: expected a 6-digit area code").format(region=_printable(text)))
    if _area_periods(text) is None:
        raise InvalidInput(_("region {region}: unknown area code").format(region=text))
    return text


def birth_date_pins(birth: date) -> set[str]:
    """The 6-digit spellings of a birth date that a weak-PIN check must refuse."""
    yyyymmdd = f"{birth:%Y%m%d}"
    # The last 6 of YYYYMMDD coincide with YYMMDD; both are listed in docs/domain.md.
    return {yyyymmdd[2:], f"{birth:%m%d%y}", f"{birth:%d%m%y}", yyyymmdd[-6:]}


def make_id_number(area: str, birth: date, seq: int) -> str:
    """Build an 18-character number with its check character, for tests and samples.

    The area code is not looked up, so tests can also build numbers the parser refuses.
    """
    if not (len(area) == 6 and set(area) <= _DIGITS):
        raise ValueError(f"area must be 6 ASCII digits, got {area!r}")
    if not 0 <= seq <= 999:
        raise ValueError(f"seq must be 0..999, got {seq}")
    if birth.year < 1000:
        raise ValueError("birth year must have 4 digits")
    first17 = f"{area}{birth:%Y%m%d}{seq:03d}"
    return first17 + _check_char(first17)


# --- ID number checks, in the order a clerk would want to hear about them ---------


def _refuse_bad_id_shape(text: str) -> None:
    if not text:
        raise InvalidInput(_("ID number is empty"))
    problem = _separator_problem(text) or _id_shape_problem(text)
    if problem:
        raise InvalidInput(_id_message(text, problem))


def _id_shape_problem(text: str) -> str | None:
    if len(text) != ID_LENGTH:
        if len(text) == 15:
            return _("wrong length ({length}, expected {expected}); 15-digit first-generation numbers "
                     "must be converted").format(length=len(text), expected=ID_LENGTH)
        return _("wrong length ({length}, expected {expected})").format(length=len(text), expected=ID_LENGTH)
    if not (set(text[:17]) <= _DIGITS and text[17] in "0123456789Xx"):
        return _("only digits are allowed, and X as the last character")
    if text[17].upper() != _check_char(text[:17]):
        return _("wrong check character (mistyped digit?)")
    return None


def _birth_date(value: str) -> date:
    try:
        return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        problem = _("digits 7-14 are not a real date (YYYYMMDD)")
        raise InvalidInput(_id_message(value, problem)) from None


def _refuse_birth_out_of_range(value: str, birth: date, today: date) -> None:
    # stdnum accepts any calendar date; a future or pre-1900 birth is a typo.
    if birth > today:
        raise InvalidInput(_id_message(value, _("birth date is in the future")))
    if birth < EARLIEST_BIRTH:
        raise InvalidInput(_id_message(value, _("birth date is before 1900")))


def _refuse_area_not_in_use(value: str, birth: date, today: date) -> None:
    # Not stdnum's own place check: that wants the code to exist in the birth year,
    # but codes are given when the number is issued, often years after birth.
    periods = _area_periods(value[:6])
    if periods is None:
        raise InvalidInput(_id_message(value, _("unknown area code (digits 1-6)")))
    if not any(_overlaps(period, birth.year, today.year) for period in periods):
        problem = _("area code (digits 1-6) was not in use from the birth year to today")
        raise InvalidInput(_id_message(value, problem))


@lru_cache(maxsize=4096)
def _area_periods(code: str) -> tuple[Period, ...] | None:
    """Years in which ``code`` was in use per stdnum's cn/loc data; None if never.

    The county field reads like ``[1983-1989]南头区办事处,[1990-]南山区``; an entry
    without brackets has been in use throughout.
    """
    from stdnum import numdb

    props = {key: val for _, part in numdb.get("cn/loc").info(code) for key, val in part.items()}
    county = props.get("county")  # a known province with an unknown county has none
    if county is None:
        return None
    periods = []
    for entry in county.split(","):
        match = _PERIOD.match(entry)
        periods.append((_year(match[1]), _year(match[2])) if match else (None, None))
    return tuple(periods)


def _year(text: str) -> int | None:
    return int(text) if text else None


def _overlaps(period: Period, first_year: int, last_year: int) -> bool:
    start, end = period
    return (start is None or start <= last_year) and (end is None or end >= first_year)


def _check_char(first17: str) -> str:
    total = sum(map(mul, map(int, first17), _WEIGHTS))
    return _CHECK_CHARS[total % 11]


def _uscc_check_char(first17: str) -> str:
    total = sum(map(mul, map(_USCC_VALUES.__getitem__, first17), _USCC_WEIGHTS))
    return _USCC_ALPHABET[-total % 31]


def _is_checksum_valid(value: str) -> bool:
    return (
        isinstance(value, str)
        and len(value) == ID_LENGTH
        and set(value[:17]) <= _DIGITS
        and value[17] == _check_char(value[:17])
    )


# --- messages ------------------------------------------------------------------------


def _separator_problem(text: str) -> str | None:
    if text.isascii() and text.isalnum():
        return None  # the common case, decided without a loop in Python
    if any(char.isspace() or char == "-" for char in text):
        return _("contains spaces or dashes; type it without separators")
    if not text.isascii():
        return _("contains full-width or other non-ASCII characters; type ASCII digits and letters")
    return None


def _card_no_problem(text: str) -> str | None:
    problem = _separator_problem(text)
    if problem:
        return problem
    if not set(text.upper()) <= _CARD_CHARS:
        return _("only digits 0-9 and letters A-Z are allowed")
    if len(text) != CARD_NO_LENGTH:
        return _("wrong length ({length}, expected {expected})").format(length=len(text), expected=CARD_NO_LENGTH)
    if text != text.upper():
        return _("letters must be upper case: {card}").format(card=text.upper())
    return None


def _uscc_problem(error: Exception, text: str) -> str:
    from stdnum.exceptions import InvalidChecksum, InvalidFormat, InvalidLength

    if isinstance(error, InvalidLength):
        return _("wrong length ({length}, expected {expected})").format(length=len(text), expected=18)
    if isinstance(error, InvalidFormat):
        return _("expected 8 digits, then digits or letters other than I, O, S, V, Z")
    if isinstance(error, InvalidChecksum):
        return _("wrong check character (mistyped character?)")
    return _("not a valid unified social credit code")


def _id_message(text: str, problem: str) -> str:
    return _("ID number {id_number}: {problem}").format(id_number=_shown_id(text), problem=problem)


def _shown_id(text: str) -> str:
    """Anything long enough to be (most of) an ID number is masked, whatever its length:
    17 typed digits give away the 18th, since it is only a checksum."""
    text = _printable(text)
    return _mask(text) if len(text) > _SHOWN_IN_CLEAR else text


def _mask(text: str) -> str:
    return text[:3] + "*" * (len(text) - _SHOWN_IN_CLEAR) + text[-4:]


def _printable(text: str) -> str:
    # Keeps every refusal on one line, whatever control characters were pasted in.
    return "".join(char if char.isprintable() else "?" for char in text)
