"""``status --as-of T`` rebuilds the population from the audit trail exactly as ``status`` showed it at T.

A scripted history (injected clock) goes through every kind of state change: activation, wrong
PINs and PIN locks (with and without an end time), expiry decided on read and then recorded by
the sweep, unlocks, resets, admin locks, holder and unit arrears with their locks, temporary loss
reports that are withdrawn, lapse on read and are recorded, a formal report, a reissue that
carries locks over, a legacy-imported card and policy changes. ``status -o json`` (and
``--summary``, and a filter) is snapshotted after every step; at the end ``--as-of`` must give
back every snapshot byte for byte. One black-box check does the same with real processes under
``faketime``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import bcrypt
import pytest

from cardctl.domain.identity import make_id_number
from cardctl.domain.model import iso
from helpers_security import Office
from realproc import cardctl_command, cli_env

PIN, NEW_PIN, WRONG = "583920", "702614", "271828"
UNIT = "91350100M000100Y43"
ADULT = date(1980, 5, 17)


def holder(area: str, seq: int) -> str:
    return make_id_number(area, ADULT, seq)


CARDS = {  # card_no: (name, ID number, region, extra issue options)
    "A00000001": ("张伟", holder("110105", 11), "110105", []),
    "B00000002": ("<b>王芳</b>", holder("440305", 12), "440305", ["--type", "employee", "--unit", UNIT]),
    "C00000003": ("李娜", holder("330106", 13), "330106", []),
    "D00000004": ("刘洋", holder("110105", 14), "110105", []),
    "F00000006": ("[bold red]x[/]", holder("110105", 16), "110105", []),
    "G00000007": ("Robert'); DROP TABLE cards;--", holder("440305", 17), "440305",
                  ["--type", "employee", "--unit", UNIT]),
}
LEGACY = ("E00000005", "陈静", holder("310115", 15), "310115")
NEW_CARD = "H00000008"


class History:
    """The office, its clock, and what ``status`` printed at each moment."""

    def __init__(self, office: Office, clock) -> None:
        self.office, self.clock = office, clock
        self.snapshots: list[tuple[datetime, dict[str, str]]] = []

    def __call__(self, *args: str, input: str | None = None, code: int = 0):
        result = self.office(*args, input=input)
        assert result.exit_code == code, (args, result.stderr)
        return result

    def snap(self) -> None:
        """What an auditor would have seen now; then a second passes, so the next step is later."""
        seen = {"all": self("status", "-o", "json").stdout,
                "summary": self("status", "--summary", "-o", "json").stdout,
                "locked": self("status", "--locked", "--region", "4403", "-o", "json").stdout,
                "lost": self("status", "--status", "lost", "-o", "json").stdout,
                "cards": self("status", "A00000001", "G00000007", "-o", "json").stdout}
        self.snapshots.append((self.clock.now, seen))
        self.clock.advance(seconds=1)

    def wrong(self, card: str, times: int = 1) -> None:
        for _ in range(times):
            assert self.office("verify", card, "--pin-stdin", input=WRONG + "\n").exit_code in (3, 4)


@pytest.fixture(scope="module")
def recorded(engine, tmp_path_factory) -> tuple[Path, object, list, datetime]:
    """The scripted history, played once per engine: (key folder, database, snapshots, end time)."""
    from conftest import FakeClock, empty_database

    folder = tmp_path_factory.mktemp("history")
    template = empty_database(engine, folder, "asof_template")
    clock = FakeClock()
    with pytest.MonkeyPatch.context() as monkeypatch:
        office = Office(template, folder, monkeypatch)
        office.clock = clock
        played = run_history(History(office, clock), folder)
        office.close()
    return folder, template, played.snapshots, clock.now


@pytest.fixture
def history(recorded, database, tmp_path, monkeypatch, clock) -> History:
    """This test's own copy of the recorded history, its clock where the history ended."""
    folder, template, snapshots, ended = recorded
    shutil.copy2(folder / "cardctl.key", tmp_path / "cardctl.key")
    database.copy_from(template)
    office = Office(database, tmp_path, monkeypatch)
    clock.now = ended
    office.clock = clock
    played = History(office, clock)
    played.snapshots = snapshots
    yield played
    office.close()


def run_history(h: History, tmp_path: Path) -> History:
    h("init")
    h("policy", "set", "3301", "--lock-hours", "0")  # PIN locks in 3301 never end by themselves
    for card_no, (name, id_number, region, extra) in CARDS.items():
        h("issue", card_no, "--name", name, "--id-number", id_number, "--region", region, *extra)
    legacy_hash = bcrypt.hashpw(PIN.encode(), bcrypt.gensalt(4)).decode()
    legacy = tmp_path / "legacy.csv"
    legacy.write_text("card_no,name,id_number,region,pin_hash\n" + ",".join([*LEGACY, legacy_hash]) + "\n")
    h("import", str(legacy))
    h.snap()
    for card_no in ("A00000001", "B00000002", "C00000003", "F00000006", "G00000007"):
        h("activate", card_no, "--id-number", CARDS[card_no][1], "--pin-stdin", input=PIN + "\n")
    h.snap()

    h.clock.advance(hours=1)
    h.wrong("A00000001", 2)
    h.wrong("B00000002")
    h.snap()
    h.wrong("A00000001")  # the third: a 24-hour PIN lock
    h.wrong("C00000003", 3)  # a PIN lock without an end
    h.wrong(LEGACY[0])
    h("policy", "set", "4403", "--max-attempts", "5")  # B has 4 attempts left from now
    h.snap()

    h.clock.advance(hours=2)
    h("lock", "G00000007", "--kind", "admin", "--reason", "<script>alert(1)</script> card sharing")
    h("lock", "B00000002", "--kind", "admin", "--reason", "anomaly")
    h("add-arrears", "--unit", UNIT, "--amount", "500", "--period", "2026-10")
    h("add-arrears", "A00000001", "--amount", "120.50")
    h("report-lost", "F00000006", "--temporary", "--channel", "hotline")
    h("report-lost", "G00000007", "--temporary", "--channel", "hotline")
    h.snap()

    h.clock.advance(hours=22)  # A's PIN lock is past its end: no longer binds, nothing recorded yet
    h.snap()
    h("pay-arrears", "--unit", UNIT, "--amount", "200", "--receipt", "R-1")
    h("unlock", "--expired")  # records A's expiry at its end time
    h("unlock", "C00000003", "--reason", "identity checked at the counter")
    h("report-lost", "G00000007", "--id-number", CARDS["G00000007"][1])  # made formal: void
    h.snap()
    h("reissue", "G00000007", "--new-card-no", NEW_CARD, "--id-number", CARDS["G00000007"][1])
    h.wrong("A00000001", 3)  # locked again
    h.snap()

    h.clock.advance(days=7)  # F's temporary report lapsed on read; A's second lock is past its end
    h.snap()
    h("unlock", "--expired")  # records both at the times they happened
    h.wrong("A00000001", 3)
    h("reset-pin", "A00000001", "--id-number", CARDS["A00000001"][1], "--pin-stdin", input=NEW_PIN + "\n")
    h("unlock", "B00000002", "--kind", "admin", "--reason", "checked")
    h.snap()

    h.clock.advance(hours=5)
    h("pay-arrears", "--unit", UNIT, "--amount", "300")
    h("pay-arrears", "A00000001", "--amount", "120.50")
    h("policy", "set", "4403", "--max-attempts", "4")
    h("report-lost", "A00000001", "--temporary")
    h.snap()
    h("cancel-loss", "A00000001", "--id-number", CARDS["A00000001"][1])
    h("activate", NEW_CARD, "--id-number", CARDS["G00000007"][1], "--pin-stdin", input=PIN + "\n")
    h("add-arrears", NEW_CARD, "--amount", "10")  # the holder's debt shows on the void card too
    h("change-pin", "A00000001", "--pin-stdin", input=f"{WRONG}\n{PIN}\n", code=3)
    h.wrong("B00000002", 2)
    h.snap()
    return h


def as_of(h: History, moment: datetime, *args: str) -> str:
    return h("status", *args, "--as-of", iso(moment), "-o", "json").stdout


def test_as_of_reproduces_every_snapshot_exactly(history):
    assert len(history.snapshots) == 12
    for moment, seen in history.snapshots:
        assert as_of(history, moment) == seen["all"], iso(moment)
        assert as_of(history, moment, "--summary") == seen["summary"], iso(moment)
        assert as_of(history, moment, "--locked", "--region", "4403") == seen["locked"], iso(moment)
        assert as_of(history, moment, "--status", "lost") == seen["lost"], iso(moment)
        assert as_of(history, moment, "A00000001", "G00000007") == seen["cards"], iso(moment)


def test_pages_of_one_card_give_the_same_answer(history, monkeypatch):
    """Every card its own page: a holder's debt recorded on the new card still shows on the old one."""
    from cardctl.services import history as replay

    monkeypatch.setattr(replay, "PAGE", 1)
    for moment, seen in history.snapshots[-3:]:
        assert as_of(history, moment) == seen["all"], iso(moment)
    last = {card["card_no"]: card for card in json.loads(history.snapshots[-1][1]["all"])}
    assert last["G00000007"]["owed"] == last[NEW_CARD]["owed"] == "10.00"


def test_the_history_covered_the_states_the_replay_must_rebuild(history):
    """The snapshots are only a test if they hold the hard cases."""
    cards = [card for _, seen in history.snapshots for card in json.loads(seen["all"])]
    locks = [lock for card in cards for lock in card["locks"]]
    assert {lock["kind"] for lock in locks} == {"pin", "arrears", "admin"}
    assert any(lock["kind"] == "pin" and lock["until"] is None for lock in locks)
    assert any(lock["reason"].endswith("(carried over from G00000007)") for lock in locks)
    assert {card["status"] for card in cards} == {"pending", "active", "lost", "void"}
    assert {card["failures"] for card in cards} >= {0, 1, 2, 3}
    assert {card["attempts_left"] for card in cards} >= {0, 1, 2, 3, 4}
    assert any(card["owed"] == "120.50" for card in cards) and any(card["unit_owed"] == "300.00" for card in cards)
    assert any(card["loss_kind"] == "formal" and card["replaced_by"] == NEW_CARD for card in cards)
    lapsed_on_read = json.loads(history.snapshots[8][1]["all"])
    f = next(card for card in lapsed_on_read if card["card_no"] == "F00000006")
    assert f["status"] == "active" and f["loss_kind"] is None  # lapsed, not yet recorded
    expired_on_read = json.loads(history.snapshots[5][1]["all"])
    a = next(card for card in expired_on_read if card["card_no"] == "A00000001")
    assert a["failures"] == 0 and [lock["kind"] for lock in a["locks"]] == ["arrears"]


def test_a_card_not_yet_issued_at_the_moment_is_not_found(history):
    before = history.snapshots[0][0] - timedelta(seconds=1)
    result = history.office("status", NEW_CARD, "--as-of", iso(history.snapshots[5][0]), "-o", "json")
    assert result.exit_code == 5 and NEW_CARD in result.stderr
    assert history("status", "--as-of", iso(before), "-o", "json").stdout == "[]\n"


def test_as_of_now_is_status_now(history):
    now = history.clock.now
    assert as_of(history, now) == history("status", "-o", "json").stdout
    assert as_of(history, now, "--summary") == history("status", "--summary", "-o", "json").stdout


def test_a_time_without_offset_is_local_time(history):
    moment, seen = history.snapshots[3]
    local = moment.astimezone(ZoneInfo("Asia/Shanghai")).replace(tzinfo=None)
    assert history("status", "--as-of", local.isoformat(), "-o", "json").stdout == seen["all"]


@pytest.mark.parametrize("raw, says", [("yesterday", "ISO-8601"), ("2999-01-01T00:00:00Z", "future")])
def test_a_bad_or_future_as_of_is_refused(history, raw, says):
    result = history.office("status", "--as-of", raw)
    assert result.exit_code == 2 and says in result.stderr and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_issue_event_says_how_the_card_started(history):
    issued = {e["card_no"]: e["detail"] for e in history.office.events() if e["action"] == "card.issue"}
    assert issued[LEGACY[0]]["status"] == "active" and issued["A00000001"]["status"] == "pending"


def test_a_legacy_issue_event_without_its_status_falls_back_on_the_card_row(history, database):
    """Events written before the field existed: a PIN hash without activation means a legacy import."""
    moment, seen = history.snapshots[0]
    for card_no in (LEGACY[0], "A00000001"):
        database.run_sql("UPDATE events SET detail = replace(detail, :old, '') WHERE card_no = :card "
                         "AND action = 'card.issue'", old=',"status":"active"' if card_no == LEGACY[0]
                         else ',"status":"pending"', card=card_no)
    assert as_of(history, moment) == seen["all"]


# --- black box: real processes, the wall clock set with faketime -------------------------

FAKETIME = shutil.which("faketime")


def at(env: dict, moment: str, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    """``cardctl ARGS`` with the wall clock stopped at ``moment`` (UTC): -f with an absolute time
    freezes it, so the moment a snapshot was taken is known to the microsecond."""
    faked = {**env, "TZ": "UTC", "DONT_FAKE_MONOTONIC": "1"}
    return subprocess.run([FAKETIME, "-f", moment, *cardctl_command(), *args], input=input, env=faked,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(FAKETIME is None, reason="faketime (libfaketime) is not on PATH; apt-get install faketime")
@pytest.mark.sqlite_only("on PostgreSQL the server's clock governs: a client under faketime is refused")
def test_real_processes_under_faketime_are_reproduced_by_as_of(tmp_path, database):
    env = cli_env(database.url, tmp_path / "cardctl.key")
    card, (name, id_number, region, _) = "A00000001", CARDS["A00000001"]
    steps = [("2026-11-23 08:00:00", ("init",), None), ("2026-11-23 08:00:00",
              ("issue", card, "--name", name, "--id-number", id_number, "--region", region), None),
             ("2026-11-23 08:01:00", ("activate", card, "--id-number", id_number, "--pin-stdin"), PIN + "\n")]
    steps += [("2026-11-23 09:00:00", ("verify", card, "--pin-stdin"), WRONG + "\n")] * 3
    for moment, args, stdin in steps:
        assert at(env, moment, *args, input=stdin).returncode in (0, 3), args
    snapshots = {moment: at(env, moment, "status", "-o", "json").stdout
                 for moment in ("2026-11-23 09:30:00", "2026-11-24 09:30:00")}
    assert at(env, "2026-11-24 10:00:00", "unlock", "--expired").returncode == 0
    assert json.loads(snapshots["2026-11-23 09:30:00"])[0]["locks"][0]["remaining_s"] == 23 * 3600 + 1800
    assert json.loads(snapshots["2026-11-24 09:30:00"])[0]["locks"] == []  # ended by the clock, not recorded
    for moment, seen in snapshots.items():
        stamp = moment.replace(" ", "T") + "Z"
        replayed = at(env, "2026-11-25 12:00:00", "status", "--as-of", stamp, "-o", "json")
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stdout == seen
