"""Batch provenance (docs/domain.md, "Batch provenance"): a batch is one run in the audit trail,
``batch.start`` … its cards' events … ``batch.end``, all carrying the run id, the end holding the
SHA-256 of the input exactly as ``sha256sum`` sees it. The auditor's proof "this file did these
cards" rests on it, so the tests attack it as an auditor, a tamperer and a crash would.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest

from cardctl.domain.identity import make_id_number

HEADER = "card_no,name,id_number,region,type,unit"
PIN, WRONG = "583920", "271828"
RUN_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}")


def person(n: int) -> str:
    return make_id_number("110105", date(1960, 1, 1) + timedelta(days=n // 999), n % 999 + 1)


def rows(first: int, count: int, prefix: str = "R") -> list[str]:
    return [f"{prefix}{n:08d},持卡人{n},{person(n)},110105,employee," for n in range(first, first + count)]


def events(cli, *args: str) -> list[dict]:
    result = cli("audit", "log", *args, "-o", "jsonl")
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def runs_of(cli) -> list[dict]:
    result = cli("report", "--section", "runs", "-o", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["sections"]["runs"]


def run_id_said(result) -> str:
    found = RUN_ID.findall(result.stderr)
    assert found, result.stderr
    return found[0]


def write(cli, name: str, lines: list[str]) -> Path:
    path = cli.tmp / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sha256sum(path: Path) -> str:
    """What the auditor runs: the real tool, not cardctl's code."""
    return subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]


def pin_locked(cli, *numbers: int) -> list[str]:
    """Cards R<n> imported, activated and locked by three wrong PINs (events outside any run)."""
    cards = []
    for n in numbers:
        card = f"R{n:08d}"
        issued = cli("issue", card, "--name", f"持卡人{n}", "--region", "110105", "--id-number", person(n))
        assert issued.exit_code == 0
        assert cli("activate", card, "--id-number", person(n), "--pin-stdin", input=PIN + "\n").exit_code == 0
        for _ in range(3):
            cli("verify", card, "--pin-stdin", input=WRONG + "\n")
        cards.append(card)
    return cards


# --- the auditor's proof ---------------------------------------------------------------------


def test_the_trail_proves_which_file_imported_which_cards(cli):
    path = write(cli, "december.csv", [HEADER, *rows(1, 4), "R00000009,坏行,not-an-id,110105,employee,"])
    result = cli("import", str(path))
    assert result.exit_code == 7  # one row failed; the run still ended
    run_id = run_id_said(result)

    trail = events(cli, "--run", run_id)
    assert [e["action"] for e in trail] == ["batch.start", *["card.issue"] * 4, "batch.end"]
    assert {e["run_id"] for e in trail} == {run_id}
    assert [e["card_no"] for e in trail if e["action"] == "card.issue"] == [f"R{n:08d}" for n in range(1, 5)]
    start, end = trail[0]["detail"], trail[-1]["detail"]
    assert start == {"command": "import", "input": str(path)}
    assert end["input_sha256"] == sha256sum(path) and end["input_bytes"] == path.stat().st_size
    assert end["rows"] == 5 and end["results"] == {"invalid": 1, "issued": 4}
    # the events of no other command carry it
    assert all(e["run_id"] is None for e in events(cli) if e not in trail)
    [row] = runs_of(cli)
    assert row["run_id"] == run_id and row["finished"] is True and row["input_sha256"] == sha256sum(path)
    assert (row["command"], row["rows"], row["results"]) == ("import", 5, {"invalid": 1, "issued": 4})


def test_an_unlock_from_a_file_proves_which_cards_it_unlocked(cli):
    locked = pin_locked(cli, 1, 2, 3)
    path = write(cli, "cleared.txt", [locked[0], locked[2], "R00000077"])
    result = cli("unlock", "--from", str(path), "--reason", "terminal fault")
    assert result.exit_code == 7  # R00000077 is not found
    run_id = run_id_said(result)
    trail = events(cli, "--run", run_id)
    unlocked = [e["card_no"] for e in trail if e["action"] == "lock.unlock" and e["outcome"] == "unlocked"]
    assert unlocked == [locked[0], locked[2]]
    end = trail[-1]["detail"]
    assert trail[-1]["action"] == "batch.end" and end["command"] == "unlock --from"
    assert end["input_sha256"] == sha256sum(path)
    assert end["results"] == {"not found": 1, "unlocked": 2}
    # the card left out is still locked, and nothing of the run names it
    assert locked[1] not in {e["card_no"] for e in trail}


def test_input_read_from_stdin_is_hashed_too(cli):
    data = "\n".join([HEADER, *rows(1, 3)]) + "\n"
    result = cli("import", "-", input=data.encode())
    assert result.exit_code == 0, result.stderr
    end = events(cli, "--run", run_id_said(result))[-1]["detail"]
    assert end["input"] == "stdin" and end["input_sha256"] == hashlib.sha256(data.encode()).hexdigest()

    locked = pin_locked(cli, 5, 6)
    listing = f"{locked[0]}\r\n\r\n{locked[1]}"  # CRLF, a blank line, no final newline: hashed as given
    result = cli("unlock", "--from", "-", "--reason", "batch", input=listing.encode())
    assert result.exit_code == 0, result.stderr
    end = events(cli, "--run", run_id_said(result))[-1]["detail"]
    assert end["input_sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    assert end["input_bytes"] == len(listing.encode()) and end["results"] == {"unlocked": 2}


def test_a_gb18030_file_is_hashed_as_its_bytes_not_as_decoded_text(cli):
    path = cli.tmp / "excel.csv"
    path.write_bytes(("\r\n".join([HEADER, *rows(1, 2)]) + "\r\n").encode("gb18030"))
    result = cli("import", str(path))
    assert result.exit_code == 0, result.stderr
    assert events(cli, "--run", run_id_said(result))[-1]["detail"]["input_sha256"] == sha256sum(path)


# --- cut short -----------------------------------------------------------------------------


def test_a_batch_cut_short_by_a_fatal_error_shows_as_unfinished(cli, monkeypatch):
    """Chunks of 10 rows; past the first 64 KiB (what the encoding sniff sees) a byte that is not
    UTF-8: the import stops with exit 2 after committing whole chunks. The run has a start and
    no end, and both audit log --run and the report say it is unfinished."""
    monkeypatch.setattr("cardctl.cli.cards.IMPORT_CHUNK", 10)
    good = "\n".join([HEADER, *rows(1, 1200)]) + "\n"
    assert len(good.encode()) > 64 * 1024
    result = cli("import", "-", input=good.encode() + b"R99999999,\xff\xfe,x,110105,employee,\n")
    assert result.exit_code == 2 and "not valid utf-8" in result.stderr
    trail = [e for e in events(cli) if e["run_id"]]
    run_id = trail[0]["run_id"]
    assert trail[0]["action"] == "batch.start" and "batch.end" not in {e["action"] for e in trail}
    issued = sum(e["action"] == "card.issue" for e in trail)
    assert issued and issued % 10 == 0  # whole chunks, each under the run id

    listed = cli("audit", "log", "--run", run_id, "-o", "jsonl")
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == issued + 1
    assert f"run {run_id} is unfinished" in listed.stderr
    [row] = runs_of(cli)
    assert (row["run_id"], row["finished"], row["ended_at"], row["rows"]) == (run_id, False, None, None)

    # the same input again finishes the job as a new run; the first stays unfinished
    again = cli("import", "-", input=good.encode())
    assert again.exit_code == 0
    assert [r["finished"] for r in runs_of(cli)] == [False, True]
    assert cli("audit", "verify").exit_code == 0


def test_a_batch_that_changes_nothing_leaves_no_run(cli):
    """No trace before runs existed, none now: an input refused before its first row, a file of
    invalid rows, the same file imported again, a list of card numbers none of which is one."""
    path = write(cli, "cards.csv", [HEADER, *rows(1, 2)])
    assert cli("import", str(path)).exit_code == 0
    before = cli.db.dump()
    for args, stdin in ((("import", "-"), b"card_no,name\nA1,x\n"),  # a header without id_number
                        (("import", str(cli.tmp / "missing.csv")), None),
                        (("import", "-"), b"\x00\x01binary"),
                        (("import", "-"), f"{HEADER}\nR1,x,123,110105,employee,\n".encode()),
                        (("import", str(path)), None),  # already issued, all of it
                        (("unlock", "--from", "-", "--reason", "x"), b"nonsense\n???\n")):
        result = cli(*args, input=stdin)
        assert result.exit_code in (0, 2, 7), (args, result.stderr)
        assert not RUN_ID.search(result.stderr), args
    assert cli.db.dump() == before


# --- what is a run, and what writes nothing ----------------------------------------------------


def test_a_dry_run_writes_no_batch_events_nor_anything_else(cli):
    locked = pin_locked(cli, 1, 2)
    cli.db.run_sql("UPDATE locks SET ends_at = started_at WHERE card_no = :card", card=locked[0])
    path = write(cli, "list.txt", locked)
    before = cli.db.dump()
    for args in (("unlock", "--from", str(path), "--reason", "x", "--dry-run"),
                 ("unlock", *locked, "--reason", "x", "--dry-run"),
                 ("unlock", "--expired", "--dry-run")):
        result = cli(*args)
        assert result.exit_code == 0, (args, result.stderr)
        assert not RUN_ID.search(result.stderr)
    assert cli.db.dump() == before


def test_an_idle_sweep_writes_nothing_and_a_busy_one_is_a_run(cli):
    locked = pin_locked(cli, 1, 2, 3)
    before = cli.db.dump()
    assert cli("unlock", "--expired").exit_code == 0  # nothing due
    assert cli.db.dump() == before

    cli.db.run_sql("UPDATE locks SET ends_at = started_at WHERE card_no <> :card", card=locked[2])
    result = cli("unlock", "--expired", "-o", "jsonl")
    assert result.exit_code == 0, result.stderr
    trail = events(cli, "--run", run_id_said(result))
    assert [e["action"] for e in trail] == ["batch.start", "lock.expire", "lock.expire", "batch.end"]
    assert {e["channel"] for e in trail} == {"system"}
    assert trail[0]["detail"] == {"command": "unlock --expired", "rows": 2}
    assert trail[-1]["detail"] == {"command": "unlock --expired", "rows": 2, "results": {"expired": 2}}
    assert sorted(e["card_no"] for e in trail[1:3]) == locked[:2]


def test_several_cards_named_are_a_run_and_one_card_is_not(cli):
    locked = pin_locked(cli, 1, 2, 3)
    one = cli("unlock", locked[0], "--reason", "counter")
    assert one.exit_code == 0 and not RUN_ID.search(one.stderr)
    assert events(cli)[-1]["run_id"] is None
    several = cli("unlock", locked[1], locked[2], locked[1], "--reason", "counter")
    assert several.exit_code == 0
    trail = events(cli, "--run", run_id_said(several))
    assert trail[0]["detail"] == {"command": "unlock", "rows": 3}  # as named; the repeat is one row
    assert trail[-1]["detail"] == {"command": "unlock", "rows": 2, "results": {"unlocked": 2}}
    assert "input_sha256" not in trail[-1]["detail"]


def test_runs_have_distinct_sortable_ids(cli):
    ids = [run_id_said(cli("import", "-", input=("\n".join([HEADER, *rows(n, 1)]) + "\n").encode()))
           for n in (1, 2, 3)]
    assert len(set(ids)) == 3 and all(len(i) <= 40 for i in ids)
    assert [r["run_id"] for r in runs_of(cli)] == ids  # in start order


# --- audit log --run: wrong ids; a tampered run id ------------------------------------------------


def test_audit_log_run_unknown_exits_5_and_malformed_exits_2(cli):
    unknown = cli("audit", "log", "--run", "20261206T051500Z-3f9a2c1b")
    assert unknown.exit_code == 5 and unknown.stdout == ""
    assert unknown.stderr.startswith("cardctl: no batch run 20261206T051500Z-3f9a2c1b")
    for bad in ("3f9a2c1b", "20261206T051500Z-3f9a2c1", "x' OR 1=1 --", ""):
        result = cli("audit", "log", "--run", bad)
        assert result.exit_code == 2 and "expected a run id" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("tamper", ["another run", "no run", "into a run", "another digest"])
def test_a_tampered_run_id_breaks_audit_verify(cli, tamper):
    """Moving an event into or out of a run, or changing the digest of its input (to say another
    file did it), is an edit the chain names."""
    data = ("\n".join([HEADER, *rows(1, 2)]) + "\n").encode()
    run_id = run_id_said(cli("import", "-", input=data))
    assert cli("unlock", "R00000001", "--reason", "not a batch").exit_code == 0
    trail = events(cli)
    issue = next(e for e in trail if e["action"] == "card.issue")
    end = next(e for e in trail if e["action"] == "batch.end")
    if tamper == "another digest":
        digest = hashlib.sha256(data).hexdigest()
        cli.db.run_sql("UPDATE events SET detail = replace(detail, :d, :o) WHERE seq = :s",
                       d=digest, o=hashlib.sha256(b"another file").hexdigest(), s=end["seq"])
        target = end
    else:
        target, value = {"another run": (issue, "20260101T000000Z-00000000"), "no run": (issue, None),
                         "into a run": (trail[-1], run_id)}[tamper]
        cli.db.run_sql("UPDATE events SET run_id = :v WHERE seq = :s", v=value, s=target["seq"])
    verified = cli("audit", "verify")
    assert verified.exit_code == 6 and f"event {target['seq']} was edited" in verified.stderr


# --- the report ----------------------------------------------------------------------------------


def test_the_report_shows_runs_in_every_format(cli):
    path = write(cli, "cards.csv", [HEADER, *rows(1, 2)])
    run_id = run_id_said(cli("import", str(path)))
    csv = cli("report", "--section", "runs", "-o", "csv")
    header, line = csv.stdout.splitlines()
    assert header.split(",")[:3] == ["run_id", "command", "operator"] and line.startswith(f"{run_id},import,")
    assert sha256sum(path) in line
    [jsonl] = [json.loads(x) for x in cli("report", "-o", "jsonl").stdout.splitlines() if '"runs"' in x]
    assert jsonl["run_id"] == run_id and jsonl["section"] == "runs"
    table = cli("report", "--section", "runs")
    assert run_id in table.stdout and sha256sum(path) in table.stdout
    page = cli.tmp / "report.html"
    assert cli("report", "--html", str(page)).exit_code == 0
    assert run_id in page.read_text() and sha256sum(path) in page.read_text()
    empty = cli("report", "--section", "runs", "-o", "csv", "--until", "2020-01-01")
    assert empty.exit_code == 0 and empty.stdout.startswith("run_id,command,")
