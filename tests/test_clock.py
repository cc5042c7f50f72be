"""Times that decide locks come from one clock (cardctl.clock, docs/security.md "A wrong clock").

On PostgreSQL the server's clock governs: a host whose clock is off by more than
CARDCTL_CLOCK_TOLERANCE is refused (exit 1) and writes nothing, and within the tolerance every
time written is the server's. On SQLite a write whose clock is earlier than the newest event by
more than the tolerance is refused ("the clock went back"). In process the wrong clock is a
``HostClock`` with a skew; the black-box tests set a real process's clock with faketime.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from cardctl.clock import HostClock, WrongClock, system_clock
from cardctl.config import Settings, os_user
from cardctl.errors import InvalidInput
from cardctl.domain.identity import parse_id_number
from cardctl.services.cards import activate
from cardctl.services.context import Context
from cardctl.services.setup import init_database
from cardctl.services.unlock import expire_due
from cardctl.services.verify import verify_pin
from conftest import GOOD_PIN, HOLDERS, issue
from realproc import cardctl_command, cli_env

WRONG = "271828"
FAKETIME = shutil.which("faketime")
needs_faketime = pytest.mark.skipif(FAKETIME is None, reason="faketime (libfaketime) is not on PATH")


def server_now(ctx: Context) -> datetime:
    with ctx.db.connect_read() as conn:
        if ctx.db.is_sqlite:
            return datetime.now(timezone.utc)
        return conn.execute(text("SELECT clock_timestamp()")).scalar()


@pytest.fixture
def real(settings) -> Context:
    """A database written with the real clock by this OS user (its admin, as for a real process):
    one active card, locked by three wrong PINs."""
    settings = dataclasses.replace(settings, os_user=os_user())
    init_database(settings, system_clock)
    ctx = Context.open(settings, system_clock)
    card_no, name, id_number, region = HOLDERS[0]
    issue(ctx, card_no, name, id_number, region)
    activate(ctx, card_no, parse_id_number(id_number, ctx.now().date()), GOOD_PIN)
    for _ in range(3):
        verify_pin(ctx, card_no, WRONG)
    return ctx


def with_clock(ctx: Context, skew: timedelta, **settings) -> Context:
    return Context.open(dataclasses.replace(ctx.settings, **settings), HostClock(skew))


def lock_rows(ctx: Context) -> list:
    with ctx.db.connect_read() as conn:
        return list(conn.execute(text("SELECT started_at, ends_at, ended_at FROM locks")))


# --- PostgreSQL: the server's clock ----------------------------------------------------------


@pytest.mark.postgresql_only("the server's clock is PostgreSQL's")
def test_a_host_a_day_fast_is_refused_and_ends_no_lock(real):
    before = lock_rows(real)
    with pytest.raises(WrongClock) as refused:
        list(expire_due(with_clock(real, timedelta(hours=25))))
    assert "25.0 h ahead of the database server's" in refused.value.message
    assert lock_rows(real) == before and before[0].ended_at is None


@pytest.mark.postgresql_only("the server's clock is PostgreSQL's")
def test_a_clock_that_jumps_during_a_run_is_refused_at_the_next_write(real):
    ctx = with_clock(real, timedelta(0))
    ctx.clock = HostClock(timedelta(hours=-3))  # NTP stepped it, or someone did, after the start
    before = lock_rows(real)
    with pytest.raises(WrongClock, match="3.0 h behind"):
        list(expire_due(ctx))
    assert lock_rows(real) == before


@pytest.mark.postgresql_only("the server's clock is PostgreSQL's")
def test_within_the_tolerance_every_time_written_is_the_servers(real):
    ctx = with_clock(real, timedelta(seconds=240))  # four minutes fast: allowed, but not believed
    card_no = HOLDERS[1][0]
    issue(ctx, card_no, *HOLDERS[1][1:])
    activate(ctx, card_no, parse_id_number(HOLDERS[1][2], ctx.now().date()), GOOD_PIN)
    for _ in range(3):
        verify_pin(ctx, card_no, WRONG)
    server = server_now(ctx)
    with ctx.db.connect_read() as conn:
        started = conn.execute(text("SELECT started_at FROM locks WHERE card_no = :c"), {"c": card_no}).scalar()
        recorded = conn.execute(text("SELECT max(recorded_at) FROM events")).scalar()
    for written in (started, recorded):
        assert abs((server.replace(tzinfo=None) - written).total_seconds()) < 60, (server, written)
    # and a read decides by the server's time as well
    assert abs((ctx.now() - server_now(ctx)).total_seconds()) < 60


@pytest.mark.postgresql_only("the server's clock is PostgreSQL's")
def test_the_tolerance_is_configurable(real):
    ctx = with_clock(real, timedelta(minutes=10), clock_tolerance_s=900)
    assert list(expire_due(ctx)) == []  # nothing due by the server's time; allowed to write
    with pytest.raises(WrongClock, match="CARDCTL_CLOCK_TOLERANCE=60"):
        with_clock(real, timedelta(minutes=10), clock_tolerance_s=60)


# --- SQLite: the clock went back -------------------------------------------------------------


@pytest.mark.sqlite_only("on PostgreSQL the server's clock is compared instead")
def test_a_write_two_hours_behind_the_trail_is_refused_and_writes_nothing(real, database):
    before = database.dump()
    with pytest.raises(WrongClock) as refused:
        verify_pin(with_clock(real, timedelta(hours=-2)), HOLDERS[0][0], GOOD_PIN)
    assert "the clock went back" in refused.value.message and "2.0 h before the newest event" in refused.value.message
    assert database.dump() == before


@pytest.mark.sqlite_only("on PostgreSQL the server's clock is compared instead")
def test_a_clock_slightly_behind_or_a_wider_tolerance_may_write(real, database):
    verify_pin(with_clock(real, timedelta(minutes=-4)), HOLDERS[0][0], GOOD_PIN)
    verify_pin(with_clock(real, timedelta(hours=-2), clock_tolerance_s=3 * 3600), HOLDERS[0][0], GOOD_PIN)


def test_an_injected_clock_is_the_tests_authority(ctx, clock, active_card):
    clock.advance(days=-30)  # a test may drive time anywhere; only the machine's clock is watched
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"


def test_a_tolerance_that_is_no_number_is_a_usage_error(monkeypatch):
    monkeypatch.setenv("CARDCTL_CLOCK_TOLERANCE", "5min")
    with pytest.raises(InvalidInput, match="CARDCTL_CLOCK_TOLERANCE"):
        Settings.resolve(None, None, None)


# --- black box: real processes with faketime --------------------------------------------------


@pytest.fixture
def env(real, settings) -> dict[str, str]:
    return cli_env(settings.db_url, settings.key_file, DONT_FAKE_MONOTONIC="1")


def faked(env: dict, offset: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([FAKETIME, "-f", offset, *cardctl_command(), *args], input=input, env=env,
                          capture_output=True, text=True, timeout=60)


@needs_faketime
@pytest.mark.postgresql_only("the server's clock is PostgreSQL's")
def test_a_cron_host_25_hours_fast_does_not_end_a_lock(env, database):
    before = database.dump()
    result = faked(env, "+25h", "unlock", "--expired", "-o", "json")
    assert result.returncode == 1, result.stderr
    assert "25.0 h ahead of the database server's" in result.stderr and len(result.stderr.splitlines()) == 1
    assert result.stdout == "" and database.dump() == before
    status = json.loads(faked(env, "+0h", "status", HOLDERS[0][0], "-o", "json").stdout)[0]
    assert status["usable"] is False and status["locks"][0]["kind"] == "pin"


@needs_faketime
@pytest.mark.sqlite_only("on PostgreSQL the server's clock is compared instead")
def test_a_counter_pc_two_hours_behind_writes_nothing(env, database):
    before = database.dump()
    result = faked(env, "-2h", "verify", HOLDERS[0][0], "--pin-stdin", input=GOOD_PIN + "\n")
    assert result.returncode == 1, result.stderr
    assert "the clock went back" in result.stderr and len(result.stderr.splitlines()) == 1
    assert database.dump() == before
