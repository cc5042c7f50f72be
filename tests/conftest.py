"""Fixtures: every test gets its own initialised database, a fast bcrypt cost and a clock it controls."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

os.environ.setdefault("CARDCTL_BCRYPT_COST", "4")  # tests only: bcrypt's minimum cost

from cardctl.config import Settings  # noqa: E402
from cardctl.services.cards import activate, issue_card, parse_card_input  # noqa: E402
from cardctl.services.context import Context  # noqa: E402
from cardctl.services.setup import init_database  # noqa: E402

START = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai

# valid holders: (card_no, name, id_number, region)
HOLDERS = [
    ("A00000001", "张伟", "11010519491231002X", "110105"),
    ("A00000002", "王芳", "440305197001010019", "440305"),
    ("A00000003", "李娜", "33010619850228002X", "330106"),
]
GOOD_PIN = "583920"


@dataclass
class FakeClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(db_url=str(tmp_path / "cards.db"), key_file=tmp_path / "cardctl.key",
                    operator="tester", os_user="tester", bcrypt_cost=4)


@pytest.fixture
def ctx(settings: Settings, clock: FakeClock) -> Context:
    init_database(settings, clock)
    return Context.open(settings, clock)


def issue(ctx: Context, card_no: str, name: str, id_number: str, region: str, **extra) -> None:
    fields = {"card_no": card_no, "name": name, "id_number": id_number, "region": region, **extra}
    issue_card(ctx, parse_card_input(fields, ctx.now().date()))


@pytest.fixture
def active_card(ctx: Context) -> str:
    """One active card (A00000001) with PIN GOOD_PIN."""
    card_no, name, id_number, region = HOLDERS[0]
    issue(ctx, card_no, name, id_number, region)
    activate(ctx, card_no, parse_card_input({"card_no": card_no, "name": name, "id_number": id_number,
                                             "region": region}, ctx.now().date()).id_number, GOOD_PIN)
    return card_no
