"""Rules for ``audit export`` and ``audit verify --file``: the trail kept outside the database for
years, verifiable anywhere with the key file alone, and every way of damaging the file named
(cardctl.storage.audit_export, cardctl.services.audit).
"""

from __future__ import annotations

import gzip
import json
import tracemalloc
from pathlib import Path
from typing import Iterator

import pytest

from cardctl.keys import create_key_file
from cardctl.storage.audit import EventDraft
from cardctl.storage.audit_export import EVENT_FIELDS
from helpers_security import CARD, ID_NUMBER, OTHER_ID, PIN, WRONG, Office
from orm import orm_write


@pytest.fixture
def office(database, tmp_path, monkeypatch) -> Iterator[Office]:
    """Two cards, CARD active; a PIN lock by three wrong PINs and its unlock: about a dozen events."""
    office = Office(database, tmp_path, monkeypatch).open_counter()
    for _ in range(3):
        office("verify", CARD, "--pin-stdin", input=WRONG + "\n")
    office.ok("unlock", CARD, "--reason", "holder verified", "--id-number", ID_NUMBER)
    office.ok("verify", CARD, "--pin-stdin", input=PIN + "\n")
    yield office
    office.close()


def export(office: Office, path: Path, *args: str) -> Path:
    office.ok("audit", "export", str(path), *args)
    return path


def verify(office: Office, *files: Path | str, args: tuple[str, ...] = (), env: dict | None = None):
    return office("audit", "verify", *args, *(a for f in files for a in ("--file", str(f))), env=env)


def verify_json(office: Office, *files: Path | str, args: tuple[str, ...] = (), code: int = 0) -> dict:
    result = verify(office, *files, args=("-o", "json", *args))
    assert result.exit_code == code, result.stderr
    (report,) = json.loads(result.stdout)
    return report


def db_head(office: Office) -> str:
    (report,) = json.loads(office.ok("audit", "verify", "-o", "json").stdout)
    return report["head"]


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def event_line_no(path: Path, seq: int) -> int:
    """The 0-based index of event ``seq``'s line (line 1 is the header)."""
    return next(i for i, line in enumerate(lines(path)) if json.loads(line).get("seq") == seq)


def one_line_error(result, code: int, says: str) -> None:
    assert result.exit_code == code, (result.exit_code, result.stderr)
    assert says in result.stderr, result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""


# --- round trip -----------------------------------------------------------------------------


def test_an_export_verifies_with_the_key_file_alone_and_ends_at_the_database_head(office, tmp_path):
    path = export(office, tmp_path / "audit.jsonl")
    head = db_head(office)
    office.database.drop()  # no database at all: only the key file is needed
    nowhere = tmp_path / "nowhere.db"
    result = verify(office, path, env={"CARDCTL_DB": str(nowhere)})
    assert result.exit_code == 0, result.stderr
    assert f"head {head}" in result.stderr and "audit export intact" in result.stderr
    assert not nowhere.exists()


def test_the_export_holds_every_event_with_every_field_its_hash_covers(office, tmp_path):
    path = export(office, tmp_path / "audit.jsonl")
    header, *events, end = (json.loads(line) for line in lines(path))
    logged = office.events()
    assert (header["format"], header["version"], header["from_seq"], header["to_seq"]) == (
        "cardctl-audit-export", 1, 1, len(logged))
    assert [e["seq"] for e in events] == list(range(1, len(logged) + 1))
    assert all(tuple(e) == (*EVENT_FIELDS, "actor") for e in events)  # who really acted, hashed too
    assert [e["action"] for e in events] == [e["action"] for e in logged]
    assert events[0]["prev_hash"] == "0" * 64
    assert all(after["prev_hash"] == before["hash"] for before, after in zip(events, events[1:]))
    assert (end["count"], end["last_seq"], end["last_hash"]) == (len(events), len(events), events[-1]["hash"])


def test_the_export_holds_no_pin_and_no_full_id_number(office, tmp_path):
    content = export(office, tmp_path / "audit.jsonl").read_text()
    for secret in (PIN, WRONG, ID_NUMBER, OTHER_ID):
        assert secret not in content
    assert ID_NUMBER[:3] + "*" * 11 + ID_NUMBER[-4:] in content


def test_the_export_file_is_private_to_its_owner(office, tmp_path):
    assert export(office, tmp_path / "audit.jsonl").stat().st_mode & 0o777 == 0o600


def test_an_export_to_stdout_verifies_from_stdin(office):
    result = office.ok("audit", "export", "-")
    assert result.stdout.startswith('{"format":"cardctl-audit-export"') and '"end":true' in result.stdout
    assert "exported" in result.stderr
    checked = office("audit", "verify", "--file", "-", input=result.stdout)
    assert checked.exit_code == 0 and f"head {db_head(office)}" in checked.stderr


def test_a_gzip_export_round_trips_and_a_cut_one_is_truncated(office, tmp_path):
    path = export(office, tmp_path / "audit.jsonl.gz")
    assert gzip.decompress(path.read_bytes()).startswith(b'{"format":"cardctl-audit-export"')
    assert verify_json(office, path)["head"] == db_head(office)
    path.write_bytes(path.read_bytes()[:-40])
    one_line_error(verify(office, path), 6, "truncated")


def test_an_export_interrupted_half_way_leaves_no_file_behind(office, tmp_path, monkeypatch):
    from cardctl.storage.audit_export import ExportWriter

    written = []

    def event_then_interrupt(self, record):
        if len(written) == 3:
            raise KeyboardInterrupt
        written.append(record["seq"])
        self.out.write(json.dumps(record) + "\n")

    monkeypatch.setattr(ExportWriter, "event", event_then_interrupt)
    result = office("audit", "export", str(tmp_path / "audit.jsonl"))
    assert result.exit_code == 130 and written == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir() if "audit" in p.name] == []  # nor a temporary file


def test_an_existing_file_is_kept_unless_force_is_given(office, tmp_path):
    path = tmp_path / "audit.jsonl"
    path.write_text("keep me\n")
    one_line_error(office("audit", "export", str(path)), 2, "exists")
    assert path.read_text() == "keep me\n"
    export(office, path, "--force")
    assert verify(office, path).exit_code == 0


def test_export_is_an_auditor_action_that_writes_nothing(office, tmp_path):
    auditor = office.add_operator("aud", "auditor")
    before = office.dump()
    assert office("audit", "export", str(tmp_path / "a.jsonl"), as_=auditor).exit_code == 0
    assert office.dump() == before
    stranger = office.stranger()
    refused = office("audit", "export", str(tmp_path / "b.jsonl"), as_=stranger)
    assert refused.exit_code == 6 and "needs role auditor" in refused.stderr
    assert not (tmp_path / "b.jsonl").exists()


# --- incremental archives -------------------------------------------------------------------


def test_two_incremental_exports_verify_as_a_pair_in_either_order(office, tmp_path):
    first = export(office, tmp_path / "1.jsonl")
    cut = json.loads(lines(first)[-1])["last_seq"]
    office.ok("verify", CARD, "--pin-stdin", input=PIN + "\n")
    office.ok("report-lost", CARD, "--temporary")
    second = export(office, tmp_path / "2.jsonl", "--from-seq", str(cut + 1))
    for pair in ((first, second), (second, first)):
        report = verify_json(office, *pair)
        assert (report["checked"], report["head"], report["files"]) == (cut + 2, db_head(office), 2)
    listed = office("audit", "verify", "--file", str(second), str(first))  # as a shell glob gives them
    assert listed.exit_code == 0 and f"head {db_head(office)}" in listed.stderr


def test_a_later_export_alone_verifies_and_says_what_it_follows(office, tmp_path):
    first = export(office, tmp_path / "1.jsonl")
    anchor = verify_json(office, first)["head"]
    office.ok("report-lost", CARD, "--temporary")
    second = export(office, tmp_path / "2.jsonl", "--from-seq", str(int(anchor.split(":")[0]) + 1))
    alone = verify(office, second)
    assert alone.exit_code == 0 and f"it follows {anchor}" in alone.stderr
    assert verify_json(office, second, args=("--anchor", anchor))["follows"] == anchor
    wrong = anchor.split(":")[0] + ":" + "0" * 16
    assert "the hash differs" in verify_json(office, second, args=("--anchor", wrong), code=6)["problem"]


def test_a_missing_middle_archive_is_named_as_a_gap(office, tmp_path):
    first = export(office, tmp_path / "1.jsonl", "--to-seq", "4")
    export(office, tmp_path / "2.jsonl", "--from-seq", "5", "--to-seq", "8")
    third = export(office, tmp_path / "3.jsonl", "--from-seq", "9")
    result = verify(office, first, third)
    one_line_error(result, 6, "events 5-8 are in none of the files")


def test_overlapping_exports_are_a_usage_error(office, tmp_path):
    first = export(office, tmp_path / "1.jsonl", "--to-seq", "6")
    second = export(office, tmp_path / "2.jsonl", "--from-seq", "4")
    one_line_error(verify(office, first, second), 2, "overlaps")


def test_an_export_with_nothing_new_is_empty_and_still_chains_on(office, tmp_path):
    first = export(office, tmp_path / "1.jsonl")
    head = verify_json(office, first)["head"]
    empty = export(office, tmp_path / "2.jsonl", "--from-seq", str(int(head.split(":")[0]) + 1))
    assert len(lines(empty)) == 2
    report = verify_json(office, first, empty)
    assert (report["ok"], report["head"]) == (True, head)


@pytest.mark.parametrize("args, says", [
    (("--to-seq", "999"), "the trail ends at seq"),
    (("--from-seq", "999"), "the trail ends at seq"),
    (("--from-seq", "5", "--to-seq", "3"), "after --to-seq"),
    (("--from-seq", "0"), "--from-seq"),
], ids=["to-beyond-head", "from-beyond-head", "from-after-to", "from-zero"])
def test_an_impossible_range_is_a_usage_error_and_writes_no_file(office, tmp_path, args, says):
    path = tmp_path / "audit.jsonl"
    result = office("audit", "export", str(path), *args)
    assert result.exit_code == 2 and says in result.stderr, result.stderr
    assert list(tmp_path.glob("*.jsonl*")) == [] and list(tmp_path.glob(".audit.jsonl*")) == []


# --- a file that was tampered with ----------------------------------------------------------


def _edit_field(path: Path) -> None:
    rows = lines(path)
    i = event_line_no(path, 5)
    rows[i] = rows[i].replace('"outcome":"', '"outcome":"x', 1)
    path.write_text("".join(rows))


def _delete_line(path: Path) -> None:
    rows = lines(path)
    del rows[event_line_no(path, 5)]
    path.write_text("".join(rows))


def _swap_lines(path: Path) -> None:
    rows = lines(path)
    i = event_line_no(path, 5)
    rows[i], rows[i + 1] = rows[i + 1], rows[i]
    path.write_text("".join(rows))


def _renumber(path: Path) -> None:
    """Delete event 5 and renumber the rest so the seqs still count up without a gap."""
    records = [json.loads(line) for line in lines(path)]
    kept = [r for r in records if r.get("seq") != 5]
    for r in kept:
        if r.get("seq", 0) > 5:
            r["seq"] -= 1
    path.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in kept))


def _edit_seq(path: Path) -> None:
    rows = lines(path)
    i = event_line_no(path, 5)
    rows[i] = rows[i].replace('"seq":5,', '"seq":50,', 1)
    path.write_text("".join(rows))


def _duplicate_line(path: Path) -> None:
    rows = lines(path)
    i = event_line_no(path, 5)
    rows.insert(i, rows[i])
    path.write_text("".join(rows))


def _delete_last_event(path: Path) -> None:
    rows = lines(path)
    del rows[-2]
    path.write_text("".join(rows))


def _cut_mid_line(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _cut_end_line(path: Path) -> None:
    path.write_text("".join(lines(path)[:-1]))


def _garbage_line(path: Path) -> None:
    rows = lines(path)
    rows.insert(4, "this is not json\n")
    path.write_text("".join(rows))


def _wrong_shape_line(path: Path) -> None:
    rows = lines(path)
    rows.insert(4, '{"seq":"four"}\n')
    path.write_text("".join(rows))


def _edit_header(path: Path) -> None:
    rows = lines(path)
    rows[0] = rows[0].replace('"from_seq":1', '"from_seq":2')
    path.write_text("".join(rows))


def _edit_end(path: Path) -> None:
    rows = lines(path)
    end = json.loads(rows[-1])
    end["count"] += 1
    rows[-1] = json.dumps(end, separators=(",", ":")) + "\n"
    path.write_text("".join(rows))


def _append(path: Path) -> None:
    with path.open("a") as out:
        out.write(lines(path)[3])


TAMPERING = [
    (_edit_field, "event 5 was edited", 5),
    (_delete_line, "event 5 is missing: deleted", 5),
    (_swap_lines, "event 5 is out of order: reordered", 5),
    (_renumber, "the event before 5 was deleted", 5),
    (_edit_seq, "event 5 carries seq 50: its seq was edited", 5),
    (_duplicate_line, "event 5 appears twice: duplicated", 5),
    (_delete_last_event, "missing before the end line: deleted", None),
    (_cut_mid_line, "is truncated", None),
    (_cut_end_line, "is truncated", None),
    (_garbage_line, "line 5 is not an audit event (not JSON)", None),
    (_wrong_shape_line, "line 5 is not an audit event", None),
    (_edit_header, "the header was edited", None),
    (_edit_end, "the end line was edited", None),
    (_append, "more after the end line: appended", None),
]


@pytest.mark.parametrize("tamper, says, seq", TAMPERING, ids=[t[0].__name__.strip("_") for t in TAMPERING])
def test_each_kind_of_tampering_with_the_file_is_named_and_exits_6(office, tmp_path, tamper, says, seq):
    path = export(office, tmp_path / "audit.jsonl")
    assert verify(office, path).exit_code == 0
    tamper(path)
    one_line_error(verify(office, path), 6, says)
    report = verify_json(office, path, code=6)
    assert report["ok"] is False and report["file"] == str(path) and report["head"] is None
    if seq is not None:
        assert report["first_bad_seq"] == seq


def test_an_edit_names_the_line_it_is_on(office, tmp_path):
    path = export(office, tmp_path / "audit.jsonl")
    _edit_field(path)
    report = verify_json(office, path, code=6)
    assert report["line"] == event_line_no(path, 5) + 1 and f"line {report['line']}:" in report["problem"]


def test_a_wrong_key_file_is_called_a_wrong_key_and_exits_1(office, tmp_path):
    path = export(office, tmp_path / "audit.jsonl")
    other = tmp_path / "other.key"
    assert create_key_file(other)
    result = verify(office, path, env={"CARDCTL_KEY_FILE": str(other)})
    one_line_error(result, 1, "wrong key")
    assert "tamper" not in result.stderr and "edited" not in result.stderr


@pytest.mark.parametrize("content, says", [
    (b"", "is empty"),
    (b"card_no,name\nA00000001,x\n", "not a cardctl audit export"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "not a cardctl audit export"),
    (b'{"format":"cardctl-audit-export","version":2}\n', "version 2 export"),
], ids=["empty", "csv", "binary", "newer-version"])
def test_a_file_that_is_no_export_is_a_usage_error(office, tmp_path, content, says):
    path = tmp_path / "not-an-export.jsonl"
    path.write_bytes(content)
    one_line_error(verify(office, path), 2, says)


@pytest.mark.parametrize("args, says", [
    (("--file", "{F}", "--file", "{F}"), "given twice"),
    (("{F}",), "need --file"),
    (("--file", "{F}", "--anchor", "999:0123456789abcdef"), "outside the exported range"),
    (("--file", "/nonexistent/audit.jsonl"), "cannot read"),
], ids=["twice", "no-file-option", "anchor-outside", "missing-file"])
def test_bad_verify_arguments_are_usage_errors(office, tmp_path, args, says):
    path = str(export(office, tmp_path / "audit.jsonl"))
    result = office("audit", "verify", *(a.replace("{F}", path) for a in args))
    one_line_error(result, 2, says)


# --- a database whose chain was tampered with ------------------------------------------------


def test_an_export_of_a_tampered_chain_is_refused_and_leaves_no_file(office, tmp_path):
    office.database.run_sql("UPDATE events SET outcome = 'ok' WHERE seq = 4")
    path = tmp_path / "audit.jsonl"
    result = office("audit", "export", str(path))
    one_line_error(result, 6, "audit chain broken: event 4 was edited")
    assert "nothing was exported" in result.stderr
    assert [p.name for p in tmp_path.iterdir() if "audit" in p.name] == []  # nor a temporary file


def test_an_export_of_a_tampered_chain_to_stdout_does_not_verify(office, tmp_path):
    office.database.run_sql("UPDATE events SET outcome = 'ok' WHERE seq = 4")
    result = office("audit", "export", "-")
    assert result.exit_code == 6 and "does not verify" in result.stderr
    assert '"end":true' not in result.stdout
    checked = office("audit", "verify", "--file", "-", input=result.stdout)
    assert checked.exit_code == 6 and "truncated" in checked.stderr


@pytest.mark.parametrize("sql, says", [
    ("DELETE FROM events WHERE seq = (SELECT max(seq) FROM events)", "are missing: deleted (head says"),
    ("UPDATE audit_head SET hash = '" + "ab" * 32 + "'", "the head does not match event"),
    ("DELETE FROM events WHERE seq = 5", "event 5 is missing: deleted"),
], ids=["newest-deleted", "head-rewritten", "middle-deleted"])
def test_an_export_names_what_broke_in_the_database(office, tmp_path, sql, says):
    office.database.run_sql(sql)
    one_line_error(office("audit", "export", str(tmp_path / "audit.jsonl")), 6, says)
    assert not (tmp_path / "audit.jsonl").exists()


def test_an_incremental_export_checks_its_link_to_the_event_before_it(office, tmp_path):
    office.database.run_sql("DELETE FROM events WHERE seq = 6")
    result = office("audit", "export", str(tmp_path / "audit.jsonl"), "--from-seq", "7")
    one_line_error(result, 6, "event 6, which the export would follow, is missing")


# --- streaming ------------------------------------------------------------------------------


def _peak_export_bytes(ctx, path: Path, batch: int) -> int:
    from cardctl.services.audit import export_trail

    tracemalloc.start()
    try:
        result = export_trail(ctx, str(path), batch=batch)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert result.broken is None


def _append_events(ctx, count: int) -> None:
    drafts = [EventDraft("pin.verify", "wrong_pin", "A00000001", detail={"failures": i % 3}) for i in range(count)]
    with ctx.db.connect_write() as conn:
        ctx.audit.append(conn, drafts, ctx.now())


def test_export_memory_stays_flat_as_the_trail_grows(ctx, tmp_path):
    _append_events(ctx, 4000)
    small = _peak_export_bytes(ctx, tmp_path / "small.jsonl", batch=500)
    _append_events(ctx, 16000)
    large = _peak_export_bytes(ctx, tmp_path / "large.jsonl", batch=500)
    assert len(lines(tmp_path / "large.jsonl")) == 20001 + 2
    # five times the events: a streamed export peaks at about the same (one batch), a list would not
    assert large < 1.5 * small, (small, large)
