"""Regenerate examples/cards.csv, a made-up population of 60 cards.

    python examples/make_sample.py

Deterministic (fixed seed): running it again gives the same file. Every ID number is
synthetic but valid (make_id_number computes the check character), and every row is put
through cardctl's own parsers before it is written.
"""

from __future__ import annotations

import csv
import random
import sys
from datetime import date, timedelta
from pathlib import Path

# Lets the script run from a checkout without installing cardctl.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stdnum.cn import uscc  # noqa: E402

from cardctl.domain.identity import (  # noqa: E402
    make_id_number,
    parse_card_no,
    parse_id_number,
    parse_region,
    parse_uscc,
)

SEED = 20240601
COUNT = 60
AS_OF = date(2025, 1, 1)  # fixes who counts as working age, independent of the clock
OUT = Path(__file__).resolve().parent / "cards.csv"

# All five have no end year in stdnum's cn/loc data; the last three were created after
# some holders' births (which stdnum's own check would wrongly refuse).
REGIONS = {
    "110105": "北京市朝阳区",
    "310115": "上海市浦东新区",  # [1992-]
    "440305": "深圳市南山区",  # [1990-]
    "330106": "杭州市西湖区",  # [1983-]
    "510107": "成都市武侯区",  # [1990-]
}
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧"
# Given names by era and sex, so a 1945 holder is not called 子轩.
GIVEN = {
    ("old", True): ["建国", "国强", "德明", "振华", "卫东", "志刚", "长顺", "福生", "永贵", "树林"],
    ("old", False): ["秀英", "桂兰", "淑珍", "玉兰", "凤英", "秀珍", "桂英", "素芳", "美华", "金凤"],
    ("mid", True): ["伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "海峰", "志强", "晓东", "建华"],
    ("mid", False): ["芳", "娜", "敏", "静", "丽", "艳", "燕", "霞", "丽娟", "晓燕", "春梅", "海燕"],
    ("new", True): ["子轩", "浩然", "宇航", "梓豪", "俊杰", "一鸣", "博文", "子墨", "皓轩", "天佑"],
    ("new", False): ["梓涵", "欣怡", "诗琪", "雨桐", "佳怡", "子涵", "思彤", "可馨", "语嫣", "若曦"],
}
ORG_CODE_WEIGHTS = (3, 7, 9, 10, 5, 8, 4, 2)


def org_code(rng: random.Random) -> str:
    """A 9-character organisation code (GB 11714) with its own check character,
    which stdnum does not verify but real credit codes carry."""
    body = "".join(rng.choice("0123456789") for _ in range(8))
    check = 11 - sum(int(d) * w for d, w in zip(body, ORG_CODE_WEIGHTS)) % 11
    return body + {10: "X", 11: "0"}.get(check, str(check))


def make_unit(rng: random.Random, region: str) -> str:
    body = "91" + region + org_code(rng)  # 9 = market regulator, 1 = enterprise
    return body + uscc.calc_check_digit(body)


def birth_for(rng: random.Random, index: int) -> date:
    # One year band per holder, so births spread evenly over 1940-2015.
    year = 1940 + index * (2015 - 1940 + 1) // COUNT
    return date(year, 1, 1) + timedelta(days=rng.randrange(365))


def era(birth: date) -> str:
    return "old" if birth.year < 1965 else "mid" if birth.year < 1995 else "new"


def working_age(birth: date) -> bool:
    age = AS_OF.year - birth.year - ((AS_OF.month, AS_OF.day) < (birth.month, birth.day))
    return 18 <= age < 60


def make_card_no(rng: random.Random, taken: set[str]) -> str:
    letters = "ABCDEFGHJKLMNPQRSTUWXYZ"  # no I, O, V: easily misread at a counter
    while True:
        card_no = rng.choice(letters) + "".join(rng.choice("0123456789") for _ in range(8))
        if rng.random() < 0.25:  # some issuers put a second letter in
            card_no = card_no[0] + rng.choice(letters) + card_no[2:]
        if card_no not in taken:
            taken.add(card_no)
            return card_no


def make_rows(rng: random.Random) -> list[dict[str, str]]:
    units = {region: [make_unit(rng, region) for _ in range(2)] for region in REGIONS}
    regions = list(REGIONS)
    names: set[str] = set()
    card_nos: set[str] = set()
    rows = []
    for index in range(COUNT):
        region = rng.choice(regions)
        # Most holders were registered where they now hold a card; some moved.
        area = region if rng.random() < 0.8 else rng.choice(regions)
        birth = birth_for(rng, index)
        male = rng.random() < 0.5
        seq = rng.randrange(0, 499) * 2 + (1 if male else 2)  # 001-997 odd, 002-998 even
        name = rng.choice(SURNAMES) + rng.choice(GIVEN[(era(birth), male)])
        while name in names:
            name = rng.choice(SURNAMES) + rng.choice(GIVEN[(era(birth), male)])
        names.add(name)
        employee = working_age(birth) and rng.random() < 0.75
        rows.append({
            "card_no": make_card_no(rng, card_nos),
            "name": name,
            "id_number": make_id_number(area, birth, seq),
            "region": region,
            "type": "employee" if employee else "resident",
            "unit": rng.choice(units[region]) if employee else "",
        })
    rng.shuffle(rows)
    return rows


def check(rows: list[dict[str, str]]) -> None:
    """Refuse to write a sample that cardctl itself would refuse."""
    assert len({row["id_number"] for row in rows}) == len(rows), "two cards share a holder"
    for row in rows:
        parse_card_no(row["card_no"])
        parse_id_number(row["id_number"], AS_OF)
        parse_region(row["region"])
        if row["unit"]:
            parse_uscc(row["unit"])


def main() -> None:
    rows = make_rows(random.Random(SEED))
    check(rows)
    with OUT.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} cards to {OUT}", file=sys.stderr)


if __name__ == "__main__":
    main()
