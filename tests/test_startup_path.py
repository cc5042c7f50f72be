"""The sqlite3 start-up path (storage/lite.py) answers exactly as SQLAlchemy does, or steps aside.

``status CARD`` and the idle cron sweep run their named statements (storage/statements.py)
compiled ahead of time, without importing SQLAlchemy: the read store's second implementation. These tests pin down that the
compiled text is current, that every statement gives the same rows and types both ways on
cards in every state, that the commands print the same, and that anything the path does
not handle (another key, a login without the role, an old schema, a busy or missing file)
is left to the usual path, which words the error and records the refusal.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from datetime import timedelta

import pytest

from cardctl.domain.roles import Role
from cardctl.services.arrears import Debtor, add_arrears
from cardctl.services.cards import activate
from cardctl.services.context import Context
from cardctl.services.lifecycle import lock_admin
from cardctl.services.loss import report_lost
from cardctl.services.reads import cards_by_number, count_due
from cardctl.services.verify import verify_pin
from cardctl.storage import statements
from cardctl.storage.lite import LiteDatabase, LiteReads, Unavailable
from cardctl.storage.reads import CardRow, Filters
from cardctl.storage.stores.reads import CoreReads
from conftest import GOOD_PIN, HOLDERS, issue

pytestmark = pytest.mark.sqlite_only("the sqlite3 start-up path serves SQLite databases only")

UNIT = "915101076383496662"
MORE = [("ZN2699519", "唐磊", "51010719841206311X", "510107"), ("C42780183", "萧霞", "510107197806161789", "510107"),
        ("D52623652", "林欣怡", "510107201409246067", "510107")]
EVERY_CARD = [row[0] for row in HOLDERS + MORE] + ["X99999999"]  # the last: no such card


def test_the_compiled_statements_are_current():
    assert statements.TARGET.read_text(encoding="utf-8") == statements.render_module(), \
        "run: python -m cardctl.storage.statements"


@pytest.fixture
def population(ctx, clock) -> Context:
    """Cards in every state the status of a card shows: a PIN lock in force, one past its end,
    an admin lock, a holder's and a unit's arrears, a temporary loss report past its lapse,
    a pending card."""
    for card_no, name, id_number, region in HOLDERS + MORE:
        issue(ctx, card_no, name, id_number, region, unit=UNIT if card_no == "ZN2699519" else None)
    for card_no, name, id_number, region in HOLDERS + MORE[:2]:
        from cardctl.services.cards import parse_card_input

        person = parse_card_input({"card_no": card_no, "name": name, "id_number": id_number, "region": region},
                                  clock().date()).id_number
        activate(ctx, card_no, person, GOOD_PIN)
    for _ in range(3):
        verify_pin(ctx, "A00000001", "000000")  # locked for 24 h
    report_lost(ctx, "A00000003", temporary=True)  # lapses after the region's 7 days
    clock.advance(days=8)
    for _ in range(3):
        verify_pin(ctx, "A00000002", "000000")  # locked now; A00000001's lock is past its end
    lock_admin(ctx, "ZN2699519", "case 2026-118")
    add_arrears(ctx, Debtor(unit=UNIT), 12_345, None)
    add_arrears(ctx, Debtor(card_no="C42780183"), 500, None)
    return ctx


def test_the_card_row_names_the_columns_of_the_card_query():
    assert CardRow._fields == tuple(column.key for column in statements.card_query(Filters(), None).selected_columns)


def test_list_parameters_are_compiled_without_private_markers():
    # the start-up path widens the placeholder SQLAlchemy renders for a one-element list
    for sql, binds, _constants, _columns in (statements.compile_sqlite(name) for name in statements.BUILDERS):
        assert "POSTCOMPILE" not in sql
        for kind in binds.values():
            if isinstance(kind, tuple):
                assert sql.count(kind[1]) == 1


@pytest.fixture
def run_cli(run):
    """conftest's ``run`` (cardctl in-process)."""
    return run


def both(ctx: Context):
    """The read stores of a SQLAlchemy Core transaction and of a start-up path transaction on
    the same database."""
    quick = Context.open_quick(ctx.settings, ctx.clock, Role.AUDITOR)
    assert quick is not None and isinstance(quick.db, LiteDatabase)
    return ctx.source.read_store(), quick.source.read_store()


@pytest.mark.parametrize(("name", "params"), [
    ("schema_revision", {}),
    ("key_fingerprint", {}),
    ("operator_standing", {"login": "tester"}),
    ("operator_standing", {"login": "nobody"}),
    ("policies", {}),
    ("cards_by_number", {"card_nos": EVERY_CARD}),
    ("cards_by_number", {"card_nos": []}),
    ("open_locks", {"card_nos": EVERY_CARD}),
    ("expired_pin_cards", {"card_nos": EVERY_CARD}),
    ("holder_balances", {"holder_ids": [1, 2, 3, 4, 5, 6, 99]}),
    ("unit_balances", {"units": [UNIT, "91000000000000000X"]}),
    ("due_pin_locks", {}),
    ("lapsed_losses", {}),
])
def test_every_statement_gives_the_same_rows_and_types_both_ways(population, name, params):
    now = population.now()
    if name in ("cards_by_number", "open_locks", "expired_pin_cards", "due_pin_locks", "lapsed_losses"):
        params = {**params, "now": now}
    full, quick = both(population)
    with full as store:
        assert isinstance(store, CoreReads)
        expected = [tuple(row) for row in store._rows(name, params)]
    with quick as store:
        assert isinstance(store, LiteReads)
        got = [tuple(row) for row in store._rows(name, params)]

    assert got == expected
    assert [[type(value) for value in row] for row in got] == [[type(value) for value in row] for row in expected]
    assert any(expected) or params.get("card_nos") == [] or name == "operator_standing", "a case that tests nothing"


def test_the_population_covers_what_the_statements_distinguish(population):
    # the comparison above means something only if these rows exist
    assert count_due(population) == 2  # A00000001's PIN lock, A00000003's lapsed report
    with population.read() as tx:
        assert tx.reads.expired_pin_cards(EVERY_CARD, population.now()) == {"A00000001"}


@pytest.mark.parametrize("output", ["table", "json", "csv"])
def test_status_of_cards_prints_the_same_on_both_paths(population, run_cli, monkeypatch, output):
    args = ["status", *EVERY_CARD[:-1], "-o", output]
    quick = run_cli(*args)
    monkeypatch.setattr(Context, "open_quick", classmethod(lambda cls, *a, **k: None))
    full = run_cli(*args)

    assert (quick.exit_code, quick.stdout) == (full.exit_code, full.stdout) == (0, full.stdout)
    if output == "json":
        shown = {card["card_no"]: card for card in json.loads(quick.stdout)}
        assert shown["A00000001"]["failures"] == 0 and shown["A00000001"]["locks"] == []  # expired on read
        assert shown["A00000003"]["status"] == "active"  # the report lapsed
        assert shown["ZN2699519"]["unit_owed"] == "123.45" and shown["C42780183"]["owed"] == "5.00"


def test_an_unknown_card_is_reported_alike_on_both_paths(population, run_cli, monkeypatch):
    quick = run_cli("status", "A00000001", "X99999999")
    monkeypatch.setattr(Context, "open_quick", classmethod(lambda cls, *a, **k: None))
    full = run_cli("status", "A00000001", "X99999999")

    assert (quick.exit_code, quick.stdout, quick.stderr) == (full.exit_code, full.stdout, full.stderr)
    assert quick.exit_code != 0 and "X99999999" in quick.stderr


@pytest.mark.parametrize("output", ["table", "json", "jsonl", "csv"])
def test_the_idle_sweep_prints_what_the_full_sweep_prints(population, run_cli, monkeypatch, output):
    run_cli("unlock", "--expired")  # records the two due items; now nothing is due
    quick = run_cli("unlock", "--expired", "-o", output)
    monkeypatch.setattr(Context, "open_quick", classmethod(lambda cls, *a, **k: None))
    full = run_cli("unlock", "--expired", "-o", output)

    assert (quick.exit_code, quick.stdout, quick.stderr) == (full.exit_code, full.stdout, full.stderr)
    assert quick.exit_code == 0


def test_the_sweep_with_something_due_records_it(population, run_cli):
    done = run_cli("unlock", "--expired", "-o", "jsonl")

    assert done.exit_code == 0
    assert sorted((row["card_no"], row["result"]) for row in map(json.loads, done.stdout.splitlines())) == [
        ("A00000001", "expired"), ("A00000003", "lapsed")]
    assert count_due(population) == 0


def test_an_invalid_channel_is_refused_before_anything_is_read(population, run_cli):
    done = run_cli("unlock", "--expired", "--channel", "pigeon")

    assert done.exit_code == 2 and "pigeon" in done.stderr


# --- stepping aside ---------------------------------------------------------------------------


def test_it_steps_aside_for_a_login_without_the_role(population):
    stranger = dataclasses.replace(population.settings, os_user="nobody")
    assert Context.open_quick(stranger, population.clock, Role.AUDITOR) is None


def test_a_login_without_the_role_is_refused_and_recorded_by_the_usual_path(population, run_cli, monkeypatch):
    monkeypatch.setattr("cardctl.config.os_user", lambda: "nobody")
    done = run_cli("status", "A00000001")

    assert done.exit_code == 6 and "nobody" in done.stderr
    with population.db.connect_read() as conn:
        refusals = conn.exec_driver_sql("SELECT count(*) FROM events WHERE action = 'access.refused'").scalar()
    assert refusals == 1


def test_it_steps_aside_for_another_key(population, tmp_path):
    from cardctl.keys import create_key_file

    other = tmp_path / "other.key"
    create_key_file(other)
    settings = dataclasses.replace(population.settings, key_file=other)
    assert Context.open_quick(settings, population.clock, Role.AUDITOR) is None


def test_it_steps_aside_for_another_schema_revision(population):
    path = LiteDatabase(population.settings.db_url, 1).path
    with sqlite3.connect(path) as raw:
        raw.execute("UPDATE alembic_version SET version_num = '0001'")
    assert Context.open_quick(population.settings, population.clock, Role.AUDITOR) is None


@pytest.mark.parametrize("url", ["postgresql+psycopg://u@localhost/cards", "sqlite://", "sqlite:///:memory:",
                                 "sqlite:////tmp/x.db?timeout=3", "/nonexistent/folder/cards.db"])
def test_it_steps_aside_for_what_is_not_a_plain_sqlite_file(url):
    with pytest.raises(Unavailable):
        LiteDatabase(url, 1)


def test_a_sqlite_error_mid_command_makes_it_step_aside(population):
    quick = Context.open_quick(population.settings, population.clock, Role.AUDITOR)
    writer = sqlite3.connect(quick.db.path, isolation_level=None)
    try:
        writer.execute("ALTER TABLE arrears RENAME TO arrears_elsewhere")  # the balances query now fails
        with pytest.raises(Unavailable):
            cards_by_number(quick, ["C42780183"])
    finally:
        writer.execute("ALTER TABLE arrears_elsewhere RENAME TO arrears")
        writer.close()


def test_the_usual_path_answers_when_the_start_up_path_fails_mid_command(population, run_cli, monkeypatch):
    # the start-up path fails after the context opened; the context, not the command, runs
    # the whole read again on SQLAlchemy, and the command prints what it always prints
    expected = run_cli("status", "A00000002", "-o", "json").stdout
    used = []
    real_core = CoreReads.balances

    def fails(store, *args):
        used.append("lite")
        raise Unavailable("disk I/O error")

    def answers(store, *args):
        used.append("core")
        return real_core(store, *args)

    monkeypatch.setattr(LiteReads, "balances", fails)
    monkeypatch.setattr(CoreReads, "balances", answers)
    done = run_cli("status", "A00000002", "-o", "json")

    assert used == ["lite", "core"]
    assert done.exit_code == 0 and done.stdout == expected


def test_the_idle_sweep_counts_on_the_usual_path_when_the_start_up_path_fails(population, run_cli, monkeypatch):
    run_cli("unlock", "--expired")  # nothing due any more
    used = []

    def fails(store, now):
        used.append("lite")
        raise Unavailable("database is locked")

    real_core = CoreReads.count_due
    monkeypatch.setattr(LiteReads, "count_due", fails)
    monkeypatch.setattr(CoreReads, "count_due", lambda store, now: used.append("core") or real_core(store, now))
    done = run_cli("unlock", "--expired", "-o", "jsonl")

    assert used == ["lite", "core"]
    assert (done.exit_code, done.stdout) == (0, "")


def test_time_left_is_counted_from_the_clock_of_the_command(population, run_cli, clock):
    clock.advance(hours=1)
    shown = json.loads(run_cli("status", "A00000002", "-o", "json").stdout)[0]
    assert shown["locks"][0]["remaining_s"] == int(timedelta(hours=23).total_seconds())
