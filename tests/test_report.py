"""``cardctl report``: every section counted exactly over a scripted month, in every output format,
now and ``--as-of``, by region, and only for those allowed to read."""

from __future__ import annotations

import csv
import io
import json
import shutil
import statistics
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cardctl.domain.identity import make_id_number
from cardctl.domain.model import iso
from cardctl.services.report import SECTIONS, QuantilePicker, columns, human_seconds
from helpers_security import Office

PIN, NEW_PIN, WRONG = "583920", "702614", "271828"
UNIT = "91350100M000100Y43"
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
CARDS = {  # card_no: (ID number, region, issue options)
    "A00000001": (make_id_number("110105", date(1980, 1, 2), 11), "110105", []),
    "B00000002": (make_id_number("440305", date(1981, 2, 3), 12), "440305", ["--type", "employee", "--unit", UNIT]),
    "C00000003": (make_id_number("330106", date(1982, 3, 4), 13), "330106", []),
    "D00000004": (make_id_number("440305", date(1983, 4, 5), 14), "440305", ["--type", "employee", "--unit", UNIT]),
}


class Month:
    def __init__(self, office: Office, clock) -> None:
        self.office, self.clock = office, clock

    def __call__(self, *args: str, input: str | None = None, code: int = 0, operator: str = "clerk-1"):
        result = self.office(*args, input=input, env={"CARDCTL_OPERATOR": operator})
        assert result.exit_code == code, (args, result.stderr)
        return result

    def at(self, moment: datetime) -> "Month":
        self.clock.now = moment
        return self

    def wrong(self, card: str, times: int = 3) -> None:
        for _ in range(times):
            self.office("verify", card, "--pin-stdin", input=WRONG + "\n")

    def report(self, *args: str) -> dict:
        return json.loads(self("report", *args, "-o", "json").stdout)


def play_month(m: Month) -> None:
    m.at(T0 - timedelta(hours=1))
    m("init")
    for card_no, (id_number, region, extra) in CARDS.items():
        m("issue", card_no, "--name", f"holder {card_no[0]}", "--id-number", id_number, "--region", region, *extra)
    for card_no in ("A00000001", "B00000002", "C00000003"):
        m("activate", card_no, "--id-number", CARDS[card_no][0], "--pin-stdin", input=PIN + "\n")
    m.at(T0).wrong("A00000001")  # L1, 10:00 local
    m.at(T0 + timedelta(hours=1))("verify", "A00000001", "--pin-stdin", input=WRONG + "\n", code=4)  # refused
    m.at(T0 + timedelta(hours=2))("unlock", "A00000001", "--reason", "checked", "--channel", "bank",
                                  operator="clerk-2")  # L1 lasted 2h
    m.wrong("A00000001")  # L2, 12:00 local
    m.at(T0 + timedelta(hours=3))("reset-pin", "A00000001", "--id-number", CARDS["A00000001"][0], "--pin-stdin",
                                  input=NEW_PIN + "\n")  # L2 lasted 1h
    m.wrong("A00000001")  # L3, 13:00 local: ends by the clock 24h later, never recorded
    m.at(T0 + timedelta(hours=4))("add-arrears", "--unit", UNIT, "--amount", "500")  # B and D, 14:00 local
    m.at(T0 + timedelta(hours=5))("pay-arrears", "--unit", UNIT, "--amount", "200")
    m.at(datetime(2026, 11, 23, 15, 59, 59, tzinfo=timezone.utc))(  # 23:59:59 local
        "lock", "C00000003", "--kind", "admin", "--reason", "anomaly")
    m.at(datetime(2026, 11, 23, 16, 0, tzinfo=timezone.utc))(  # midnight local: the next day
        "unlock", "C00000003", "--kind", "admin", "--reason", "cleared", "--channel", "hotline", operator="clerk-2")
    m("add-arrears", "A00000001", "--amount", "50")


@pytest.fixture(scope="module")
def played(engine, tmp_path_factory):
    """The month, played once per engine: (key folder, database)."""
    from conftest import FakeClock, empty_database

    folder = tmp_path_factory.mktemp("month")
    template = empty_database(engine, folder, "report_template")
    with pytest.MonkeyPatch.context() as monkeypatch:
        office = Office(template, folder, monkeypatch)
        office.clock = FakeClock()
        play_month(Month(office, office.clock))
        office.close()
    return folder, template


@pytest.fixture
def month(played, database, tmp_path, monkeypatch, clock) -> Month:
    """This test's copy of the month, two days after it began."""
    folder, template = played
    shutil.copy2(folder / "cardctl.key", tmp_path / "cardctl.key")
    database.copy_from(template)
    office = Office(database, tmp_path, monkeypatch)
    office.clock = clock
    yield Month(office, clock).at(T0 + timedelta(days=2))
    office.close()


def test_locks_are_counted_per_local_day_by_kind(month):
    rows = month.report("--section", "locks_per_day")["sections"]["locks_per_day"]
    assert rows == [
        {"day": "2026-11-23", "pin_opened": 3, "pin_ended": 2, "arrears_opened": 2, "arrears_ended": 0,
         "admin_opened": 1, "admin_ended": 0},
        {"day": "2026-11-24", "pin_opened": 0, "pin_ended": 1, "arrears_opened": 1, "arrears_ended": 0,
         "admin_opened": 0, "admin_ended": 1},
    ]


def test_lock_durations_have_an_exact_median_and_95th_percentile(month):
    sections = month.report("--section", "lock_durations", "--section", "duration_buckets")["sections"]
    by_kind = {row["kind"]: row for row in sections["lock_durations"]}
    # PIN locks lasted 2h (unlocked), 1h (reset) and 24h (expired by the clock)
    assert by_kind["pin"] == {"kind": "pin", "ended": 3, "median_s": 7200, "p95_s": 78480,
                              "median": "2h 00m", "p95": "21h 48m"}
    assert statistics.quantiles([7200, 3600, 86400], n=20, method="inclusive")[18] == 78480
    assert by_kind["admin"]["median_s"] == by_kind["admin"]["p95_s"] == 1
    assert by_kind["arrears"] == {"kind": "arrears", "ended": 0, "median_s": None, "p95_s": None,
                                  "median": None, "p95": None}
    buckets = {row["duration"]: row for row in sections["duration_buckets"]}
    assert (buckets["up to 1h"]["pin"], buckets["1h-6h"]["pin"], buckets["12h-24h"]["pin"]) == (1, 1, 1)
    assert buckets["up to 1h"]["admin"] == 1
    assert sum(row["pin"] + row["arrears"] + row["admin"] for row in sections["duration_buckets"]) == 4


def test_pin_lock_endings_count_an_expiry_nobody_recorded(month):
    rows = month.report("--section", "pin_lock_endings")["sections"]["pin_lock_endings"]
    assert rows == [{"ended_by": "expired", "locks": 1, "share": "33.3%"},
                    {"ended_by": "unlocked", "locks": 1, "share": "33.3%"},
                    {"ended_by": "reset", "locks": 1, "share": "33.3%"},
                    {"ended_by": "replaced", "locks": 0, "share": "0.0%"}]
    month("unlock", "--expired")  # recording it changes nothing
    assert month.report("--section", "pin_lock_endings")["sections"]["pin_lock_endings"] == rows


def test_a_card_locked_three_times_or_more_is_listed(month):
    (row,) = month.report("--section", "repeat_locked")["sections"]["repeat_locked"]
    assert row == {"card_no": "A00000001", "holder_name": "holder A", "region": "110105", "locks": 4,
                   "pin": 3, "arrears": 1, "admin": 0, "escalated": 0, "first": iso(T0),
                   "last": "2026-11-23T16:00:00Z"}
    assert month.report("--section", "repeat_locked", "--min-locks", "5")["sections"]["repeat_locked"] == []


def test_arrears_are_totalled_by_unit_and_holder(month):
    sections = month.report("--section", "arrears_units", "--section", "arrears_totals")["sections"]
    assert sections["arrears_units"] == [{"unit": UNIT, "owed": "300.00", "cards": 2}]
    assert sections["arrears_totals"] == [{"debtor": "units", "count": 1, "owed": "300.00"},
                                          {"debtor": "holders", "count": 1, "owed": "50.00"},
                                          {"debtor": "all", "count": 2, "owed": "350.00"}]


def test_actions_are_counted_per_operator_and_channel_with_refusals(month):
    rows = {(r["operator"], r["channel"], r["action"]): (r["events"], r["refused"])
            for r in month.report("--section", "actions")["sections"]["actions"]}
    assert rows[("clerk-1", "counter", "pin.verify")] == (10, 1)  # 9 wrong PINs and one refused
    assert rows[("clerk-2", "bank", "lock.unlock")] == (1, 0)
    assert rows[("clerk-2", "hotline", "lock.unlock")] == (1, 0)
    assert rows[("clerk-1", "counter", "lock.pin")] == (3, 0)


def test_the_cards_section_is_status_summary(month):
    summary = json.loads(month("status", "--summary", "-o", "json").stdout)
    assert month.report("--section", "cards")["sections"]["cards"] == summary


def test_the_period_limits_locks_and_events_but_not_the_population(month):
    since = "2026-11-24T00:00"  # local time, as --since is read
    report = month.report("--since", since)
    assert report["period"]["since"] == "2026-11-23T16:00:00Z"
    assert [row["day"] for row in report["sections"]["locks_per_day"]] == ["2026-11-24"]
    assert report["sections"]["repeat_locked"] == []
    assert report["sections"]["arrears_units"][0]["owed"] == "300.00"
    assert {row["action"] for row in report["sections"]["actions"]} == {"lock.unlock", "lock.arrears",
                                                                         "arrears.add"}


def test_a_region_limits_every_section(month):
    sections = month.report("--region", "4403")["sections"]
    assert {row["region"] for row in sections["cards"]} == {"440305"}
    assert [row["day"] for row in sections["locks_per_day"]] == ["2026-11-23"]
    assert sections["locks_per_day"][0]["arrears_opened"] == 2 and sections["locks_per_day"][0]["pin_opened"] == 0
    assert sections["arrears_totals"][1] == {"debtor": "holders", "count": 0, "owed": "0.00"}
    assert {row["action"] for row in sections["actions"]} >= {"lock.arrears", "card.activate"}
    assert sections["arrears_units"] == [{"unit": UNIT, "owed": "300.00", "cards": 2}]
    assert month.report("--region", "3301")["sections"]["arrears_units"] == []


def test_as_of_now_gives_the_same_population_as_now(month):
    now, as_of = month.report(), month.report("--as-of", iso(month.clock.now))
    assert as_of["period"]["as_of"] == iso(month.clock.now)
    assert as_of["sections"] == now["sections"]


def test_as_of_shows_the_population_and_debts_as_they_stood(month):
    moment = iso(T0 + timedelta(hours=4, minutes=30))  # the unit owed 500, nothing paid yet
    report = month.report("--as-of", moment)
    assert report["period"]["until"] == moment
    assert report["sections"]["arrears_units"] == [{"unit": UNIT, "owed": "500.00", "cards": 2}]
    summary = month("status", "--summary", "--as-of", moment, "-o", "json").stdout
    assert report["sections"]["cards"] == json.loads(summary)
    assert [row["day"] for row in report["sections"]["locks_per_day"]] == ["2026-11-23"]
    assert report["sections"]["repeat_locked"][0]["locks"] == 3


def test_jsonl_is_one_row_per_line_named_by_section(month):
    month("unlock", "--expired")  # the sweep of the lock nobody recorded: a batch run, for the runs section
    month.at(T0 + timedelta(days=2, minutes=1))  # the period ends now, exclusive: a minute after the sweep
    lines = [json.loads(line) for line in month("report", "-o", "jsonl").stdout.splitlines()]
    assert {line["section"] for line in lines} == set(SECTIONS)
    assert sum(1 for line in lines if line["section"] == "pin_lock_endings") == 4


def test_csv_is_one_section_with_its_header(month):
    out = month("report", "--section", "arrears-units", "-o", "csv").stdout
    assert list(csv.DictReader(io.StringIO(out))) == [{"unit": UNIT, "owed": "300.00", "cards": "2"}]
    empty = month("report", "--section", "repeat_locked", "--min-locks", "9", "-o", "csv").stdout
    assert empty == ",".join(columns("repeat_locked")) + "\n"


@pytest.mark.parametrize("args, says", [
    (["-o", "csv"], "--section"),
    (["--section", "cards", "--section", "actions", "-o", "csv"], "--section"),
    (["--section", "nonsense"], "unknown section"),
    (["--since", "2026-11-24T00:00Z", "--until", "2026-11-23T00:00Z"], "earlier"),
    (["--since", "last week"], "ISO-8601"),
    (["--as-of", "2999-01-01T00:00Z"], "future"),
    (["--as-of", "2026-11-24T00:00Z", "--until", "2026-11-24T01:00Z"], "--as-of"),
    (["--region", "44x"], "--region"),
    (["--min-locks", "1"], "--min-locks"),
])
def test_bad_options_are_one_line_and_exit_2(month, args, says):
    result = month.office("report", *args)
    assert result.exit_code == 2 and says in result.stderr and result.stdout == ""
    assert "Traceback" not in result.stderr


def test_the_table_names_each_section(month):
    out = month("report").stdout
    for title in ("Cards by region, status and lock", "How PIN locks ended", "Cards locked 3 or more times",
                  "Arrears outstanding by unit", "Actions per acting login, operator and channel"):
        assert title in out
    assert "A00000001" in out and "holder A" in out


def test_an_auditor_may_run_it_and_a_stranger_may_not(database, tmp_path, monkeypatch):
    # its own database: on PostgreSQL the operator groups belong to the database init made them for
    office = Office(database, tmp_path, monkeypatch)
    office.open_counter()
    auditor = office.add_operator("auditor_1", "auditor")
    before = database.count("events")
    result = office("report", "-o", "json", as_=auditor)
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["sections"]["cards"]
    assert database.count("events") == before  # read-only: nothing recorded
    refused = office("report", as_=office.stranger())
    assert refused.exit_code == 6 and "auditor" in refused.stderr
    office.close()


# --- percentiles -------------------------------------------------------------------------


@given(st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=300))
def test_quantiles_from_runs_match_the_statistics_module(values):
    runs = sorted((v, values.count(v)) for v in set(values))
    picker = QuantilePicker(len(values), (0.5, 0.95))
    for value, count in runs:
        picker.feed(value, count)
    if len(values) == 1:
        assert picker.values() == [values[0], values[0]]
        return
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    assert picker.values() == [round(cuts[9]), round(cuts[18])]


def test_no_values_have_no_quantiles():
    assert QuantilePicker(0, (0.5, 0.95)).values() == [None, None]


@pytest.mark.parametrize("seconds, shown", [(0, "0s"), (59, "59s"), (61, "1m 01s"), (3600, "1h 00m"),
                                            (86_399, "23h 59m"), (90_000, "1d 1h"), (None, None)])
def test_durations_are_shown_for_people(seconds, shown):
    assert human_seconds(seconds) == shown


def test_every_section_declares_the_columns_its_rows_have(month):
    """A CSV of a section without rows still gets its header from ``columns``."""
    month("unlock", "--expired")  # a batch run, for the runs section
    month.at(T0 + timedelta(days=2, minutes=1))
    for name, rows in month.report()["sections"].items():
        assert rows and all(list(row) == columns(name) for row in rows), name



def test_the_help_names_every_section():
    from typer.testing import CliRunner

    from cardctl.cli import app

    shown = " ".join(CliRunner().invoke(app, ["report", "--help"], env={"COLUMNS": "200"}).stdout.split())
    assert all(name in shown for name in SECTIONS)
