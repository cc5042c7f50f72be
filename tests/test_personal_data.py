"""A copy of the database alone gives back no holder's ID number (docs/security.md).

The attack (tests/id_attack.py) reads every clear column of a dump - the SQLite file with its
WAL, or ``pg_dump`` - and rebuilds each holder's candidate ID numbers from the mask, the card's
region, the check character and anything said about the birth date. The population has adults
of several areas (some with cards of another region), minors activated by guardians and one
refused without one, agents, wrong PINs and a counter unlock, loss reports and reissues.
"""

from __future__ import annotations

from datetime import date

import pytest
from alembic import command
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from cardctl.domain.identity import make_id_number, parse_id_number
from cardctl.domain.model import LockKind
from cardctl.errors import KeyFileError, Refused
from cardctl.keys import create_key_file, load_keys
from cardctl.services.cards import activate
from cardctl.services.context import Context
from cardctl.services.lifecycle import Agent, change_pin, reset_pin
from cardctl.services.loss import reissue, report_lost
from cardctl.services.setup import init_database
from cardctl.services.unlock import UnlockRequest, unlock_cards
from cardctl.services.verify import verify_pin
from cardctl.storage import SCHEMA_REVISION
from cardctl.storage.audit import EventDraft
from cardctl.storage.db import normalise_url
from cardctl.storage.schema import alembic_config
from conftest import GOOD_PIN, issue
from id_attack import ENOUGH, birth_spellings, candidates, pg_dump, pg_tables, sqlite_tables
from orm import orm_write

# (area of the ID number, region of the card, birth date, name): most cards are issued where
# the holder was registered, two where they moved to
ADULTS = [
    ("110105", "110105", date(1949, 12, 31), "张伟"), ("440305", "440305", date(1970, 1, 1), "王芳"),
    ("330106", "330106", date(1985, 2, 28), "李娜"), ("310104", "310104", date(1962, 7, 19), "刘洋"),
    ("320102", "320102", date(1993, 11, 3), "陈静"), ("510104", "510104", date(1978, 4, 25), "杨磊"),
    ("420102", "420102", date(2001, 9, 9), "赵敏"), ("440106", "440305", date(1956, 3, 14), "黄强"),
    ("110108", "330106", date(1988, 6, 1), "周婷"), ("370102", "370102", date(1999, 12, 12), "吴军"),
    ("110105", "110105", date(1940, 1, 1), "徐兰"), ("330106", "330106", date(2007, 8, 30), "孙浩"),
]
MINORS = [("110105", date(2016, 5, 1), "小明"), ("440305", date(2013, 10, 2), "小红"),
          ("330106", date(2011, 1, 20), "小刚"), ("310104", date(2019, 2, 28), "小丽")]
PIN, NEW_PIN = GOOD_PIN, "702614"


def _number(area: str, birth: date, n: int) -> str:
    return make_id_number(area, birth, 100 + 7 * n)


def populate(ctx) -> dict[str, date]:
    """The population through the services, as counters would build it; id_masked -> birth date."""
    today = ctx.now().date()
    births, adults = {}, []
    for n, (area, region, birth, name) in enumerate(ADULTS):
        number = _number(area, birth, n)
        card = f"P{n:08d}"
        issue(ctx, card, name, number, region)
        person = parse_id_number(number, today)
        with pytest.raises(Refused):  # the holder first offers the birth date as a PIN
            activate(ctx, card, person, f"{birth:%y%m%d}")
        activate(ctx, card, person, PIN)
        adults.append((card, person, name))
        births[person.masked] = birth
    guardian = Agent(adults[1][1], adults[1][2])
    for n, (area, birth, name) in enumerate(MINORS, start=len(ADULTS)):
        number = _number(area, birth, n)
        card = f"M{n:08d}"
        issue(ctx, card, name, number, area)
        person = parse_id_number(number, today)
        with pytest.raises(Refused):  # no guardian: refused, and the refusal is in the trail
            activate(ctx, card, person, PIN)
        activate(ctx, card, person, PIN, guardian)
        births[person.masked] = birth
        if n % 2:  # a guardian unlocks the card after three wrong PINs
            for _ in range(3):
                verify_pin(ctx, card, "000000")
            list(unlock_cards(ctx, [card], UnlockRequest(LockKind.PIN, "guardian at counter", person)))
            list(unlock_cards(ctx, [card], UnlockRequest(LockKind.PIN, "guardian at counter", person, agent=guardian)))
    card, person, _name = adults[2]
    reset_pin(ctx, card, person, NEW_PIN, Agent(adults[3][1], adults[3][2]))  # an agent for an adult
    change_pin(ctx, adults[4][0], PIN, NEW_PIN)
    for card, person, _name in adults[5:7]:  # lost and reissued, the new card activated
        report_lost(ctx, card, False, person)
        reissue(ctx, card, "R" + card[1:], person)
        activate(ctx, "R" + card[1:], person, PIN)
    minor_card = f"M{len(ADULTS):08d}"
    minor = parse_id_number(_number(MINORS[0][0], MINORS[0][1], len(ADULTS)), today)
    report_lost(ctx, minor_card, False, minor, guardian)
    reissue(ctx, minor_card, "R" + minor_card[1:], minor, agent=guardian)
    return births


def dump_tables(database, settings, tmp_path):
    """What an attacker copies: the SQLite file and its -wal, or what pg_dump gives."""
    if database.engine == "sqlite":
        return sqlite_tables(_sqlite_files(settings), tmp_path)
    from pg_cluster import conninfo

    return pg_tables(pg_dump(conninfo(database.url)))


def _sqlite_files(settings):
    from pathlib import Path

    main = Path(settings.db_url)
    return [main] + [path for path in (Path(f"{main}-wal"), Path(f"{main}-shm")) if path.exists()]


def _downgrade_to_before_sealing(settings, keys) -> None:
    """The database as cardctl left it before revision 0003: birth dates in clear."""
    engine = create_engine(normalise_url(settings.db_url), poolclass=NullPool)
    try:
        with engine.begin() as conn:
            command.downgrade(alembic_config(conn, keys), "0002")
    finally:
        engine.dispose()


def test_a_copy_of_the_database_rebuilds_no_holders_id_number(ctx, database, settings, tmp_path):
    births = populate(ctx)
    found = candidates(dump_tables(database, settings, tmp_path))
    assert len(found) == len(births)
    fewest = min(found.values())
    assert fewest >= ENOUGH, sorted(found.items(), key=lambda item: item[1])[:5]


@pytest.mark.sqlite_only("the raw bytes of the SQLite file and its WAL")
def test_the_database_file_and_its_wal_hold_no_birth_date(ctx, settings):
    births = populate(ctx)
    for path in _sqlite_files(settings):
        content = path.read_bytes()
        leaked = [b for b in births.values() if any(spelled in content for spelled in birth_spellings(b))]
        assert not leaked, (path.name, leaked)


def test_before_the_migration_a_copy_rebuilds_holders_and_after_it_none(ctx, database, settings, clock, tmp_path):
    births = populate(ctx)
    ctx.db.engine.dispose()
    _downgrade_to_before_sealing(settings, ctx.keys)
    before = candidates(dump_tables(database, settings, tmp_path / "before"))
    # the attack works on the old schema: birth date, mask and region spell the number
    assert sum(count == 1 for count in before.values()) >= len(births) - 2
    assert min(before.values()) < ENOUGH

    report = init_database(settings, clock)  # the upgrade: seals the dates, drops the clear ones
    assert (report.revision_before, report.revision_after) == ("0002", SCHEMA_REVISION)
    after = candidates(dump_tables(database, settings, tmp_path / "after"))
    assert min(after.values()) >= ENOUGH
    if database.engine == "sqlite":  # nor in free pages of the file, nor in the WAL
        for path in _sqlite_files(settings):
            content = path.read_bytes()
            assert not [b for b in births.values() if any(s in content for s in birth_spellings(b))], path.name
    # the weak-PIN rule still knows each birth date: a holder cannot change to it
    fresh = Context.open(settings, clock)
    with pytest.raises(Refused, match="birth date"):
        change_pin(fresh, "P00000000", PIN, "491231")


def test_the_migration_needs_the_databases_own_key_file(ctx, database, settings, clock, tmp_path):
    import dataclasses

    populate(ctx)
    ctx.db.engine.dispose()
    _downgrade_to_before_sealing(settings, ctx.keys)
    other = tmp_path / "other.key"
    create_key_file(other)
    with pytest.raises(KeyFileError):
        init_database(dataclasses.replace(settings, key_file=other), clock)
    engine = create_engine(normalise_url(settings.db_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:  # nothing changed: still at 0002, dates still there
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == "0002"
            assert conn.execute(text("SELECT count(birth_date) FROM holders")).scalar() == len(ADULTS) + len(MINORS)
        with engine.begin() as conn, pytest.raises(KeyFileError):
            command.upgrade(alembic_config(conn, None), "head")
    finally:
        engine.dispose()
    assert init_database(settings, clock).revision_after == SCHEMA_REVISION


def test_the_attack_reads_a_guardian_flag_or_an_age_from_the_trail(ctx, database, settings, tmp_path):
    """The attack is not blind to what earlier versions wrote into the trail: each of these alone
    narrows a minor's number below the bar, which is why nothing of the kind is recorded now."""
    populate(ctx)
    minor = f"M{len(ADULTS) + 1:08d}"
    with ctx.db.connect_write() as conn:
        ctx.audit.append(conn, [EventDraft("card.activate", "activated", minor,
                                              detail={"agent": "440***********0019", "guardian": True})], ctx.now())
        ctx.audit.append(conn, [EventDraft("pin.reset", "refused", f"P{2:08d}", reason=(
            "the holder is 41, under the region's minor age of 16; a guardian must act"))], ctx.now())
    found = candidates(dump_tables(database, settings, tmp_path))
    narrowed = sorted(count for count in found.values() if count < ENOUGH)
    assert len(narrowed) == 2, narrowed


def test_holder_rows_keep_the_birth_date_only_sealed(ctx, database, tmp_path):
    populate(ctx)
    engine = create_engine(normalise_url(database.url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            columns = [c for c in conn.execute(text("SELECT * FROM holders LIMIT 1")).keys()]
            sealed = conn.execute(text("SELECT id_hash, birth_sealed FROM holders")).all()
    finally:
        engine.dispose()
    assert columns == ["id", "id_hash", "id_masked", "id_tail_hash", "name", "birth_sealed"]
    from cardctl.domain.sealed import SealBroken, open_birth_date

    opened = {open_birth_date(ctx.keys.data_key, id_hash, bytes(value)) for id_hash, value in sealed}
    assert len(opened) == len(ADULTS) + len(MINORS)
    first_hash, first_value = sealed[0]
    with pytest.raises(SealBroken):  # bound to its holder: moved to another row it does not open
        open_birth_date(ctx.keys.data_key, sealed[1][0], bytes(first_value))
    create_key_file(tmp_path / "other.key")
    with pytest.raises(SealBroken):  # and only the data key opens it
        open_birth_date(load_keys(tmp_path / "other.key").data_key, first_hash, bytes(first_value))
    assert len({bytes(value) for _, value in sealed}) == len(sealed)  # a fresh nonce each
