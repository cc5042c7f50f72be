"""Tables a person can read at any width: every command's table at 60, 80 and 120 columns, in
English and Chinese, against golden files read as a person reads them (tests/golden/).

Each case checks what a person at that terminal relies on: no line is wider than the terminal,
every identifier the machine output carries (card and seq numbers, times in the table's zone,
amounts, statuses, kinds, counts) appears whole on one line, and the output is the one in the
golden file. ``CARDCTL_REGEN_GOLDEN=1`` rewrites the golden files; read the diff before keeping it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rich.cells import cell_len

from cardctl import i18n
from cardctl.render.tables import local

GOLDEN = Path(__file__).resolve().parent / "golden"
WIDTHS = (60, 80, 120)
LANGS = ("en", "zh")
TZ = "Asia/Shanghai"
REGENERATE = os.environ.get("CARDCTL_REGEN_GOLDEN") == "1"

# from examples/cards.csv: (card_no, name, id_number, region, type, unit)
PEOPLE = [
    ("GK4175892", "于凤英", "110105195205127044", "110105", "resident", None),
    ("EQ7133854", "谢美华", "310115195904073129", "310115", "resident", None),
    ("ZN2699519", "唐磊", "51010719841206311X", "510107", "employee", "915101076383496662"),
    ("C42780183", "萧霞", "510107197806161789", "510107", "resident", None),
    ("S37113264", "董永贵", "310115194511253271", "310115", "resident", None),
    ("HZ8971521", "Konstantin Alexandrovich Wellington-Smythe", "310115197505044098", "310115", "employee",
     "91310115284981540M"),
]
PIN, WRONG = "583920", "271828"
LONG_REASON = ("account anomaly under review: case 2026-118 opened by the fraud desk after repeated "
               "withdrawals at two terminals within one minute")


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    i18n.set_language(i18n.ENGLISH)


@pytest.fixture
def cli(ctx, settings, clock, monkeypatch):
    """cardctl in-process; ``width`` is the terminal's COLUMNS, ``lang`` the language."""
    from typer.testing import CliRunner

    from cardctl.cli import app
    from cardctl.cli.common import Runtime

    monkeypatch.setattr("cardctl.config.os_user", lambda: settings.os_user)
    runner = CliRunner()
    base = {"CARDCTL_DB": settings.db_url, "CARDCTL_KEY_FILE": str(settings.key_file), "CARDCTL_BCRYPT_COST": "4",
            "CARDCTL_OPERATOR": "tester", "CARDCTL_TZ": TZ, "CARDCTL_LANG": "en", "LANG": None, "LC_ALL": None}

    def invoke(*args: str, width: int = 120, lang: str = "en", input: str | None = None):
        env = {**base, "COLUMNS": str(width), "CARDCTL_LANG": lang}
        return runner.invoke(app, list(args), input=input, env=env, obj=Runtime(clock=clock),
                             catch_exceptions=False)

    return invoke


@pytest.fixture
def office(cli, clock):
    """Six holders: a PIN lock, an arrears lock through the employer unit, an admin lock with a long
    reason, a temporary loss report, a pending card, and a holder with a long name; a few minutes apart."""
    def ok(*args, input=None):
        result = cli(*args, input=input)
        assert result.exit_code in (0, 3, 4), (args, result.stderr)
        clock.advance(minutes=7, seconds=13)

    for card_no, name, id_number, region, kind, unit in PEOPLE:
        ok("issue", card_no, "--name", name, "--id-number", id_number, "--region", region, "--type", kind,
           *(("--unit", unit) if unit else ()))
    for card_no, _name, id_number, *_rest in PEOPLE[:5]:
        ok("activate", card_no, "--id-number", id_number, "--pin-stdin", input=PIN + "\n")
    for _attempt in range(3):
        ok("verify", "GK4175892", "--pin-stdin", "--channel", "terminal", input=WRONG + "\n")
    ok("add-arrears", "--unit", PEOPLE[2][5], "--amount", "12345.67", "--period", "2026-10")
    ok("lock", "S37113264", "--kind", "admin", "--reason", LONG_REASON)
    ok("report-lost", "C42780183", "--temporary", "--channel", "hotline")
    ok("policy", "set", "3101", "--lock-hours", "0", "--max-attempts", "5")
    return clock


# --- what a person relies on -------------------------------------------------------------------


def identifiers(record: dict, lang: str) -> set[str]:
    """What must appear whole in a table of ``record``: numbers, codes, times (as the table shows
    them), amounts, and the terms a table translates."""
    found: set[str] = set()
    shown_apart = ("owed", "unit", "unit_owed", "type") if "usable" in record else ()  # a card's detail lines
    for key, value in record.items():
        if key in shown_apart:
            continue
        if key in ("locks",) and isinstance(value, list):
            for lock in value:
                found |= identifiers({k: lock[k] for k in ("kind", "until") if lock.get(k)}, lang)
            continue
        if value is None or isinstance(value, (bool, dict, list)) or value == "":
            continue
        if key in ("at", "since", "until", "created_at", "ended_at", "first", "last", "disabled_at"):
            found.add(local(value, TZ))
        elif key in ("card_no", "seq", "id_number", "amount", "owed", "cards", "count", "failures",
                     "attempts_left", "events", "refused", "locks", "max_attempts", "temp_loss_days", "minor_age",
                     "unit", "line", "ended", "share"):
            found.add(str(value))
        elif key in ("status", "kind", "lock", "result", "channel", "region", "from"):
            found.add(term_in(value, lang))
    return found


def term_in(value: str, lang: str) -> str:
    previous = i18n.language()
    i18n.set_language(lang)
    try:
        return i18n.tr(value)
    finally:
        i18n.set_language(previous)


def check(name: str, shown: dict[tuple[str, int], str], records: list[dict]) -> None:
    """Every width and language: no line too wide, every identifier whole; then the golden files."""
    for (lang, width), text in shown.items():
        lines = text.splitlines()
        too_wide = [line for line in lines if cell_len(line.rstrip()) > width]
        assert not too_wide, f"{name} {lang} {width}:\n" + "\n".join(too_wide)
        for record in records:
            for ident in identifiers(record, lang):
                assert any(ident in line for line in lines), f"{name} {lang} {width}: {ident!r} not whole\n{text}"
    for lang in LANGS:
        text = "".join(f"=== COLUMNS={width} ===\n" + "\n".join(line.rstrip() for line in
                                                                  shown[(lang, width)].splitlines()) + "\n"
                       for width in WIDTHS)
        path = GOLDEN / f"{name}.{lang}.txt"
        if REGENERATE or not path.exists():
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
        assert text == path.read_text(encoding="utf-8"), f"{path} differs (CARDCTL_REGEN_GOLDEN=1 to rewrite)"


def every_width(cli, *args: str, codes=(0,)) -> dict[tuple[str, int], str]:
    shown = {}
    for lang in LANGS:
        for width in WIDTHS:
            result = cli(*args, width=width, lang=lang)
            assert result.exit_code in codes, (args, lang, width, result.stderr)
            shown[(lang, width)] = result.stdout
    return shown


def records_of(cli, *args: str, codes=(0,)) -> list[dict]:
    result = cli(*args, "-o", "json")
    assert result.exit_code in codes, result.stderr
    return json.loads(result.stdout)


# --- one test per command's table ---------------------------------------------------------------


@pytest.mark.parametrize("name, args", [
    ("status", ("status",)),
    ("status-locked", ("status", "--locked")),
    ("status-summary", ("status", "--summary")),
    ("status-card", ("status", "GK4175892")),
    ("status-card-admin", ("status", "S37113264")),
    ("audit-log", ("audit", "log")),  # these two name the bootstrap admin: the OS user or database login
    ("operator-list", ("operator", "list")),
    ("policy-show", ("policy", "show")),
    ("policy-show-region", ("policy", "show", "310115")),
])
def test_read_tables_fit_every_width_with_identifiers_whole(cli, office, database, name, args):
    if name in ("audit-log", "operator-list") and database.engine != "sqlite":
        name = f"{name}.{database.engine}"
    check(name, every_width(cli, *args), records_of(cli, *args))


def test_status_as_of_a_past_moment(cli, office):
    """Between the PIN lock and the admin lock, shown as it stood then."""
    events = records_of(cli, "audit", "log")
    pin = next(event["at"] for event in events if event["action"] == "lock.pin")
    admin = next(event["at"] for event in events if event["action"] == "lock.admin")
    assert pin < admin
    args = ("status", "--locked", "--as-of", pin)
    records = records_of(cli, *args)
    assert [record["card_no"] for record in records] == ["GK4175892"]
    check("status-as-of", every_width(cli, *args), records)


def test_report_sections(cli, office, database):
    args = ("report", "--since", "2026-11-23T00:00", "--section", "cards", "--section", "lock_durations",
            "--section", "arrears_units", "--section", "actions")
    records = [row for rows in records_of(cli, *args)["sections"].values() for row in rows]
    # the actions section names the acting login: the OS user, or the PostgreSQL login
    check("report" if database.engine == "sqlite" else f"report.{database.engine}", every_width(cli, *args), records)


def test_batch_unlock_results(cli, office):
    args = ("unlock", "GK4175892", "S37113264", "ZN2699519", "EQ7133854", "NOPE00001", "--reason",
            "holder verified at the counter", "--dry-run")
    check("unlock-batch", every_width(cli, *args, codes=(7,)), records_of(cli, *args, codes=(7,)))


def test_verify_a_locked_card(cli, office):
    args = ("verify", "GK4175892", "--pin-stdin")
    shown = {}
    for lang in LANGS:
        for width in WIDTHS:
            result = cli(*args, width=width, lang=lang, input=PIN + "\n")
            assert result.exit_code == 4, result.stderr
            shown[(lang, width)] = result.stdout
    record = json.loads(cli(*args, "-o", "json", input=PIN + "\n").stdout)
    record = record if isinstance(record, dict) else record[0]
    # the panel names the card and its result and lists the locks; "why" (reason, status and the
    # loss fields) is a line of its own for a card that is not active, tested in test_output_formats
    shown_fields = {k: v for k, v in record.items()
                    if k not in ("status", "reason", "loss_kind", "loss_lapses_at", "void_reason", "replaced_by")}
    check("verify-locked", shown, [shown_fields])


def test_the_cron_sweep_table(cli, office, monkeypatch):
    """The sweep changes what it records, so it runs once; its rows are then drawn at every width
    by the renderer the command uses."""
    office.advance(hours=25)
    records = records_of(cli, "unlock", "--expired")
    assert [record["card_no"] for record in records] == ["GK4175892"]
    from cardctl.cli.unlock import sweep_title
    from cardctl.render.tables import result_table

    shown = {}
    for lang in LANGS:
        for width in WIDTHS:
            monkeypatch.setenv("COLUMNS", str(width))
            monkeypatch.setenv("CARDCTL_TZ", TZ)
            i18n.set_language(lang)
            shown[(lang, width)] = _capture(lambda: result_table(records, sweep_title()))
    check("unlock-expired", shown, records)


def _capture(draw) -> str:
    from cardctl.render import tables

    with tables.console.capture() as captured:
        draw()
    return captured.get()


def test_a_table_that_cannot_fit_shows_blocks_and_never_cuts(cli, office):
    """At 60 columns the card list cannot fit: each card is a block of field: value lines."""
    text = cli("status", width=60).stdout
    assert "-[ record 1 ]" in text and "Card:" in text
    for card_no, *_rest in PEOPLE:
        assert any(line.split() and line.split()[-1] == card_no for line in text.splitlines()), card_no
    wide = cli("status", width=120).stdout
    assert "-[ record" not in wide and wide.splitlines()[1].startswith("━")


def test_the_summary_has_totals_per_status_per_lock_kind_and_of_all_cards(cli, office):
    text = cli("status", "--summary").stdout
    totals = text[text.index("Totals"):]
    assert "status active" in totals and "status pending" in totals and "status lost" in totals
    assert "lock pin" in totals and "lock arrears" in totals and "lock admin" in totals
    last = totals.strip().splitlines()[-1].split()
    assert last[:2] == ["all", "cards"] and last[-1] == str(len(PEOPLE))


def test_numbers_are_right_aligned(cli, office):
    text = cli("status", "--summary").stdout
    rows = [line for line in text.splitlines() if line.startswith(("110105", "310115", "510107"))]
    ends = {cell_len(line.rstrip()) for line in rows}
    assert len(ends) == 1, rows  # counts end in one column whatever their digits


def test_booleans_read_yes_or_no_and_the_os_user_header(cli, office):
    operators = cli("operator", "list").stdout
    assert " yes " in f"{operators} " and "True" not in operators
    assert "是" in cli("operator", "list", lang="zh").stdout
    assert "OS user" in cli("audit", "log", width=200).stdout


def test_lock_hours_zero_reads_until_unlocked(cli, office):
    assert "until unlocked" in cli("policy", "show", "310115").stdout
    assert "直至解锁" in cli("policy", "show", "310115", lang="zh").stdout
    assert json.loads(cli("policy", "show", "310115", "-o", "json").stdout)[0]["lock_hours"] == 0


def test_every_table_time_is_in_the_configured_zone_and_says_so(cli, office):
    """The same event on the same day in status and in the audit log: one zone, one format."""
    card = cli("status", "GK4175892").stdout
    log = cli("audit", "log", "--card", "GK4175892", width=200).stdout
    lock = json.loads(cli("status", "GK4175892", "-o", "json").stdout)[0]["locks"][0]
    since = local(lock["since"], TZ)
    assert since in card and since in log
    assert "(Asia/Shanghai)" in card and "(Asia/Shanghai)" in log
    utc = cli("status", "GK4175892", width=200, lang="en").stdout
    assert lock["since"].replace("T", " ")[:16] not in utc  # the UTC wall time is not what a table shows


def test_machine_formats_carry_utc_to_the_second_with_z(cli, office):
    import re

    pattern = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    for args in (("status",), ("audit", "log"), ("operator", "list")):
        text = cli(*args, "-o", "jsonl").stdout
        times = re.findall(r'"(\d{4}-\d\d-\d\dT[^"]*)"', text)
        assert times and all(pattern.fullmatch(moment) for moment in times), (args, times[:5])
