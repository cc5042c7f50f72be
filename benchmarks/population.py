"""The synthetic card population: N valid cards spread over 50 real regions, written as CSV.

Deterministic for a given N. Every ID number carries a correct check character
(``make_id_number``), every region is a 6-digit area code that stdnum's ``cn/loc``
data lists as in use today (so any birth year passes cardctl's area check), and
every employee's unit is a unified social credit code with a correct check digit.
Which cards end up locked, in arrears or lost is chosen here too, as disjoint sets.
"""

from __future__ import annotations

import csv
import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Iterator

from stdnum import numdb
from stdnum.cn import uscc

from cardctl.domain.identity import make_id_number, parse_region

SEED = 20261123
# Urban districts of 50 cities and provinces; checked against stdnum by check_regions().
REGIONS = (
    "110101", "110102", "110105", "110106", "110108", "120101", "120103", "130102", "140105", "150102",
    "210102", "210103", "220102", "230102", "310101", "310104", "310106", "310112", "310115", "320102",
    "320104", "320106", "330102", "330106", "330108", "340102", "350102", "350203", "360102", "370102",
    "370202", "410102", "410103", "420102", "420106", "430102", "440103", "440106", "440303", "440305",
    "450102", "460105", "500103", "510104", "510107", "520102", "530102", "610113", "620102", "650102",
)
FIRST_BIRTH = date(1940, 1, 1)
BIRTH_DAYS = 25_567  # 1940-01-01 .. 2009-12-31
DAY_STEP = 7_919  # prime, so i * DAY_STEP mod BIRTH_DAYS walks every day once
UNITS_PER_REGION = 20
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧"
GIVEN = ("伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "涛", "明", "超",
         "秀英", "桂兰", "建国", "志强", "晓东", "海燕", "子轩", "梓涵", "浩然", "欣怡")
CARD_LETTERS = "ABCDEFGHJKLMNPQRSTUWXYZ"
COLUMNS = ("card_no", "name", "id_number", "region", "type", "unit")
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def check_regions() -> None:
    """Refuse to run with an area code cardctl would refuse or that is no longer in use."""
    places = numdb.get("cn/loc")
    for code in REGIONS:
        parse_region(code)
        county = {k: v for _, part in places.info(code) for k, v in part.items()}["county"]
        # "[1983-1989]old name,[1990-]new name": in use today if some entry has no end year
        if not any(re.fullmatch(r"(\[\d*-\])?[^\[\]]+", entry) for entry in county.split(",")):
            raise ValueError(f"area code {code} is not in use today ({county})")
    if len(set(REGIONS)) != 50:
        raise ValueError("expected 50 distinct regions")


def card_no(index: int) -> str:
    """Unique for index < 10**8: a letter, then the index in 8 digits."""
    return CARD_LETTERS[index % len(CARD_LETTERS)] + f"{index:08d}"


def id_number(index: int) -> str:
    """Unique per index: (area, birth day, sequence) never repeats below 50 * 25567 * 1000."""
    area = REGIONS[index % 50]
    rest = index // 50
    birth = FIRST_BIRTH + timedelta(days=rest * DAY_STEP % BIRTH_DAYS)
    return make_id_number(area, birth, rest // BIRTH_DAYS % 1000)


def _org_code(rng: random.Random) -> str:
    body = "".join(rng.choice("0123456789") for _ in range(8))
    check = 11 - sum(int(d) * w for d, w in zip(body, ORG_CODE_WEIGHTS)) % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def units() -> dict[str, list[str]]:
    rng = random.Random(SEED)
    found = {}
    for region in REGIONS:
        bodies = ["91" + region + _org_code(rng) for _ in range(UNITS_PER_REGION)]
        found[region] = [body + uscc.calc_check_digit(body) for body in bodies]
    return found


def rows(count: int) -> Iterator[tuple[str, ...]]:
    """(card_no, name, id_number, region, type, unit) for cards 0..count-1; 60% employees."""
    rng = random.Random(SEED + 1)
    by_region = units()
    for index in range(count):
        region = REGIONS[index % 50]
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        if rng.random() < 0.6:
            yield card_no(index), name, id_number(index), region, "employee", rng.choice(by_region[region])
        else:
            yield card_no(index), name, id_number(index), region, "resident", ""


def write_csv(path: Path, count: int) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows(count))
    return path


@dataclass(frozen=True)
class Shape:
    """Card indexes in each state; disjoint. ``pin_due`` locks are past their end time."""

    pin_due: list[int]
    pin_open: list[int]
    arrears: list[int]
    lost: list[int]

    @property
    def pin_locked(self) -> list[int]:
        return self.pin_due + self.pin_open


def choose_shape(count: int, locked=0.10, arrears=0.01, lost=0.005) -> Shape:
    """About 10% PIN-locked (half past their end), 1% with arrears, 0.5% reported lost."""
    n_locked, n_arrears, n_lost = round(count * locked), round(count * arrears), round(count * lost)
    picked = random.Random(SEED + 2).sample(range(count), n_locked + n_arrears + n_lost)
    half = n_locked // 2
    return Shape(
        pin_due=sorted(picked[:half]),
        pin_open=sorted(picked[half:n_locked]),
        arrears=sorted(picked[n_locked:n_locked + n_arrears]),
        lost=sorted(picked[n_locked + n_arrears:]),
    )
