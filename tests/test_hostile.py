"""Hostile input, from tests/hostile/corpus.json: each entry goes through the command line and
must give its exit code, one line on stderr (no traceback), and exactly the writes it is
allowed — checked on a dump of every table before and after.

``writes`` in the corpus:
  nothing  malformed input (exit 2) and anything else that must not touch the database
  refusal  a well-formed but wrong request (exit 6, or a batch row refused): only new audit
           events, every one of them with outcome "refused"
  cards    some rows go in: only holders, cards and the trail change; ``cards`` must exist and
           ``names`` read back exactly as given
  events   accepted as given: only the trail changes

The second half checks what hostile text looks like on the way out: whatever is in the
database, no output carries a raw escape, C1 control, bidi override or line separator, and
CSV cells never start a spreadsheet formula.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import unicodedata
from datetime import date, timedelta
from pathlib import Path

import pytest

from cardctl.domain.identity import make_id_number
from helpers_security import CARD, ID_NUMBER, OTHER, OTHER_ID, Office, changed_tables

HOSTILE = Path(__file__).resolve().parent / "hostile"
CORPUS = json.loads((HOSTILE / "corpus.json").read_text(encoding="utf-8"))
ALLOWED = {"nothing": set(), "refusal": {"events", "audit_head"}, "events": {"events", "audit_head"},
           "cards": {"holders", "cards", "events", "audit_head"}}
HEADER = "card_no,name,id_number,region\n"


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    """The corpus's big files, made rather than checked in."""
    folder = tmp_path_factory.mktemp("hostile")
    one_mb = "x" * (1 << 20)
    (folder / "megafield.csv").write_text(
        HEADER + f"C00000030,{one_mb},110105196001011001,110105\nC00000031,ok,110105196102021022,110105\n")
    (folder / "gigafield.csv").write_text(
        HEADER + f"C00000032,\"{one_mb}yz\",110105196001011001,110105\nC00000033,ok,110105196102021022,110105\n")
    rows = "".join(f"P{n:08d},名{n},{make_id_number('110105', date(1950, 1, 1) + timedelta(days=n), n % 1000)},110105\n"
                   for n in range(2000))
    assert len(rows.encode()) > 64 * 1024  # past the encoding sniffer's window
    (folder / "nul-late.csv").write_bytes((HEADER + rows).encode() + b"C00000034,a\x00b,110105196203031043,110105\n")
    (folder / "megaline.txt").write_text(CARD + "A" * (1 << 20) + "\n")
    (folder / "endless.txt").write_text(CARD + "A" * (3 << 20))  # no line end at all
    (folder / "endless.csv").write_text(HEADER + "A" * (3 << 20))
    os.mknod(folder / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))  # /dev/zero's numbers (needs root)
    os.symlink(folder / "loop", folder / "loop")  # a link that names itself
    os.mkfifo(folder / "fifo")
    return folder


_TEMPLATES: dict[str, tuple] = {}  # engine -> (initialised database, its key file), built once


@pytest.fixture
def office(engine, database, new_database, tmp_path_factory, tmp_path, monkeypatch):
    """A copy of one counter (init, CARD active, OTHER pending): ~100 entries need the same start."""
    if engine not in _TEMPLATES:
        folder = tmp_path_factory.mktemp(f"hostile-template-{engine}")
        template = Office(new_database("hostile_template"), folder, monkeypatch).open_counter()
        template.close()
        _TEMPLATES[engine] = (template.database, template.key_file)
    template, key_file = _TEMPLATES[engine]
    database.copy_from(template)
    shutil.copy2(key_file, tmp_path / "cardctl.key")
    office = Office(database, tmp_path, monkeypatch)
    yield office
    office.close()


def _fill(text: str, generated: Path) -> str:
    return (text.replace("{CARD}", CARD).replace("{ID}", ID_NUMBER).replace("{OTHER_ID}", OTHER_ID)
            .replace("{OTHER}", OTHER).replace("{HOSTILE}", str(HOSTILE)).replace("{GEN}", str(generated)))


def test_every_corpus_entry_is_well_formed():
    ids = [entry["id"] for entry in CORPUS]
    assert len(ids) == len(set(ids))
    for entry in CORPUS:
        assert set(entry) <= {"id", "args", "stdin", "exit", "says", "writes", "cards", "names", "why"}, entry["id"]
        assert entry["writes"] in ALLOWED and isinstance(entry["exit"], int), entry["id"]
        assert (entry["writes"] == "cards") == bool(entry.get("cards")), entry["id"]


@pytest.mark.parametrize("entry", CORPUS, ids=[entry["id"] for entry in CORPUS])
def test_hostile_input_gets_its_exit_code_and_only_its_writes(office, generated, entry):
    args = [_fill(arg, generated) for arg in entry["args"]]
    before = office.dump()
    result = office(*args, input=entry.get("stdin"))
    assert result.exit_code == entry["exit"], (result.exit_code, result.stderr[-500:])
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    if entry["exit"] != 0:
        lines = result.stderr.splitlines()  # a usage error adds its hint: "try 'cardctl X --help'"
        assert lines[-1].startswith("cardctl: ") or (lines[-2].startswith("cardctl: ") and lines[-1].startswith(
            "try 'cardctl")), result.stderr
    if "says" in entry:
        assert entry["says"] in result.stderr + result.stdout, result.stderr
    for output in (result.stdout, result.stderr):
        assert not _unsafe_characters(output), (_unsafe_characters(output), output[-300:])
    after = office.dump()
    assert changed_tables(before, after) <= ALLOWED[entry["writes"]], changed_tables(before, after)
    if entry["writes"] == "refusal":
        new = office.events()[len(before["events"]):]
        assert new and all(event["outcome"] == "refused" for event in new), new
    if entry["writes"] == "cards":
        records = {r["card_no"]: r for r in json.loads(office.ok("status", *entry["cards"], "-o", "json").stdout)}
        assert set(records) == set(entry["cards"])
        for card_no, name in entry.get("names", {}).items():
            assert records[card_no]["holder_name"] == name
    if after != before:
        assert office("audit", "verify").exit_code == 0
    assert {"cards", "events", "holders"} <= set(after)  # no injected DROP TABLE ran


# --- the way out: hostile text already in the database ---------------------------------------

NASTY = {
    "N00000001": "ev\x1b[31mil\x1b[0m",  # ANSI colour
    "N00000002": "abc\u202edcba.exe",  # right-to-left override
    "N00000003": "first\nsecond\rthird",  # line breaks
    "N00000004": "csi\x9b2J c1",  # C1 control: ESC [ in one byte
    "N00000005": "sep\u2028line\u2029para",  # Unicode line and paragraph separators
    "N00000006": "[bold red]x[/] [link=http://evil]y[/link]",  # Rich markup
    "N00000007": "zero\u200bwidth\u2066isolate\u2069",  # invisible and isolates
    "N00000008": "=HYPERLINK(\"http://evil\",\"x\")",  # spreadsheet formula
    "N00000009": "tag\U000e0041\U000e0042s",  # invisible tag characters, outside the BMP
}
UNSAFE = ("Cc", "Cf", "Zl", "Zp")


def _unsafe_characters(text: str) -> list[str]:
    """Characters a terminal would act on (newlines and tabs between records are fine)."""
    return sorted({f"U+{ord(ch):04X}" for ch in text
                   if ch not in "\n\t" and unicodedata.category(ch) in UNSAFE})


@pytest.fixture
def nasty(office) -> Office:
    """Holders whose names came from another system, written straight into the database:
    input validation would have refused most of them."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from cardctl.storage.db import normalise_url

    for n, card_no in enumerate(NASTY):
        office.ok("issue", card_no, "--name", f"placeholder {n}",
                  "--id-number", make_id_number("110105", date(1970, 1, 1 + n), 2 * n + 1), "--region", "110105")
    engine = create_engine(normalise_url(office.database.url), poolclass=NullPool)
    with engine.begin() as conn:
        for card_no, name in NASTY.items():
            conn.execute(text("UPDATE holders SET name = :name WHERE id = (SELECT holder_id FROM cards "
                              "WHERE card_no = :card)"), {"name": name, "card": card_no})
    engine.dispose()
    return office


def _escaped(name: str) -> str:
    return "".join(ch.encode("unicode_escape").decode() if unicodedata.category(ch) in UNSAFE else ch
                   for ch in name)


@pytest.mark.parametrize("card_no", NASTY)
def test_a_card_shows_its_hostile_name_escaped_never_interpreted(nasty, card_no):
    out = nasty.ok("status", card_no).stdout
    assert not _unsafe_characters(out)
    assert _escaped(NASTY[card_no]) in out  # Rich markup included: printed, not applied


@pytest.mark.parametrize("args", [("status",), ("status", "--region", "1101"), ("status", *NASTY),
                                  ("status", "--summary"), ("audit", "log")], ids=lambda a: " ".join(a)[:30])
def test_lists_show_hostile_names_without_a_single_raw_control(nasty, args):
    out = nasty.ok(*args).stdout
    assert not _unsafe_characters(out)
    assert "\\x1b" in out or args[-1] in ("--summary", "log")  # the escaped form is what shows


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_json_carries_hostile_names_exactly_yet_escaped(nasty, fmt):
    out = nasty.ok("status", *NASTY, "-o", fmt).stdout
    assert not _unsafe_characters(out)
    records = json.loads(out) if fmt == "json" else [json.loads(line) for line in out.splitlines()]
    assert {r["card_no"]: r["holder_name"] for r in records} == NASTY  # lossless


def test_csv_cells_are_escaped_and_never_start_a_formula(nasty):
    out = nasty.ok("status", *NASTY, "-o", "csv").stdout
    assert not _unsafe_characters(out)
    rows = {row["card_no"]: row["holder_name"] for row in csv.DictReader(io.StringIO(out))}
    assert rows["N00000008"] == "'" + NASTY["N00000008"]
    assert rows["N00000001"] == "ev\\x1b[31mil\\x1b[0m"
    assert all(not value.startswith(("=", "+", "-", "@")) for value in rows.values())


def test_imported_formulas_are_neutralised_in_every_csv_export(office):
    office.ok("import", str(HOSTILE / "formulas.csv"))
    cards = ["C00000018", "C00000019", "C00000020", "C00000021"]
    rows = list(csv.DictReader(io.StringIO(office.ok("status", *cards, "-o", "csv").stdout)))
    assert [row["holder_name"] for row in rows] == ["'=1+2", "'+SUM(A1)", "'-2+3", "'@cmd"]
    office.ok("unlock", CARD, "--reason", "@SUM(1+1)*cmd|' /C calc'!A0")
    reasons = [row["reason"] for row in csv.DictReader(io.StringIO(office.ok("audit", "log", "-o", "csv").stdout))]
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in reasons


def test_error_messages_echo_hostile_input_escaped(office):
    result = office("status", "\x1b[2J\u202e")
    assert result.exit_code == 2 and not _unsafe_characters(result.stderr)
