"""``cardctl import``: CSV or JSON lines, any of the encodings Chinese offices export, bad rows
reported by line number while the good ones go in (exit 7 when any failed)."""

from __future__ import annotations

import json
import random
from datetime import date

import pytest

from cardctl.domain.identity import make_id_number

HEADER = "card_no,name,id_number,region,type,unit"
ID1 = make_id_number("110105", date(1949, 12, 31), 2)
ID2 = make_id_number("440305", date(1970, 1, 1), 1)
ID3 = make_id_number("330106", date(1985, 2, 28), 2)
ID4 = make_id_number("510107", date(1978, 6, 16), 178)
UNIT = "915101076383496662"
GOOD = [  # names chosen to need more than ASCII: a 4-byte GB18030 character (𠮷), a middle dot
    f"A00000001,张伟,{ID1},110105,employee,{UNIT}",
    f"A00000002,王𠮷,{ID2},440305,resident,",
    f"A00000003,阿卜杜·热合曼,{ID3},330106,resident,",
]


def write(cli, text: str, encoding: str = "utf-8", name: str = "cards.csv") -> str:
    path = cli.tmp / name
    path.write_bytes(text.encode(encoding))
    return str(path)


def cards_in(cli) -> dict[str, dict]:
    result = cli("status", "-o", "jsonl")
    assert result.exit_code == 0, result.stderr
    return {record["card_no"]: record for record in map(json.loads, result.stdout.splitlines())}


def failures(result) -> dict[int, str]:
    """line number -> detail, from ``import -o jsonl`` output."""
    return {r["line"]: r["detail"] for r in map(json.loads, result.stdout.splitlines()) if r["result"] != "issued"}


def dump(db) -> dict[str, list]:
    return db.dump()


# --- encodings and line endings -------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_every_office_encoding_and_line_ending_reads_the_same(cli, encoding, newline):
    path = write(cli, newline.join([HEADER, *GOOD]) + newline, encoding)
    result = cli("import", path)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert "imported 3 card(s); 0 row(s) failed" in result.stderr
    cards = cards_in(cli)
    assert [cards[n]["holder_name"] for n in ("A00000001", "A00000002", "A00000003")] == [
        "张伟", "王𠮷", "阿卜杜·热合曼"]
    assert cards["A00000001"]["unit"] == UNIT and cards["A00000001"]["type"] == "employee"
    assert all(card["status"] == "pending" for card in cards.values())


def test_a_bom_before_the_header_does_not_hide_the_first_column(cli):
    path = write(cli, "card_no,name,id_number,region\n" + f"A00000001,张伟,{ID1},110105\n", "utf-8-sig")
    assert cli("import", path).exit_code == 0
    assert list(cards_in(cli)) == ["A00000001"]


def test_header_names_are_matched_whatever_their_case_and_spacing(cli):
    path = write(cli, " Card_No , NAME,Id_Number,Region\n" + f"A00000001,张伟,{ID1},110105\n")
    assert cli("import", path).exit_code == 0
    assert list(cards_in(cli)) == ["A00000001"]


# --- bad rows: reported with their line, the rest go in, exit 7 ----------------------------


def test_a_quoted_newline_in_a_name_fails_that_row_only(cli):
    text = "\n".join([HEADER, GOOD[0], f'A00000002,"王\n芳",{ID2},440305,resident,', GOOD[2]]) + "\n"
    result = cli("import", write(cli, text), "-o", "jsonl")
    assert result.exit_code == 7
    assert failures(result) == {3: "line 3: name contains a control or invisible character (U+000A)"}
    assert sorted(cards_in(cli)) == ["A00000001", "A00000003"]


def test_line_numbers_count_physical_lines_after_a_multiline_field(cli):
    text = "\n".join([HEADER, f'A00000002,"王\n芳",{ID2},440305,resident,', "A0000000X,x,1,110105,,"]) + "\n"
    result = cli("import", write(cli, text), "-o", "jsonl")
    assert sorted(failures(result)) == [2, 4]


@pytest.mark.parametrize("row, problem", [
    (f"A00000009,赵六,{ID4},510107", "expected 6 fields, found 4"),
    (f"A00000009,赵六,{ID4},510107,resident,,surplus", "expected 6 fields, found 7"),
    (f"A00000009,赵六,{ID4[:-1]},510107,resident,", "wrong length (17, expected 18)"),
    (f"A00000009,,{ID4},510107,resident,", "name is missing"),
    (f"a0000000,赵六,{ID4},510107,resident,", "card number"),
    (f"A00000009,赵六,{ID4},999999,resident,", "unknown area code"),
    (f"A00000009,赵六,{ID4},510107,retired,", "type must be employee or resident"),
    (f"A00000009,赵六,{ID4},510107,employee,915101076383496660", "credit code"),
])
def test_a_bad_row_is_reported_with_its_line_and_the_good_rows_go_in(cli, row, problem):
    text = "\n".join([HEADER, GOOD[0], row, GOOD[1]]) + "\n"
    table = cli("import", write(cli, text))
    assert table.exit_code == 7
    assert table.stdout == ""
    assert "line 3: " in table.stderr and problem in table.stderr
    assert "imported 2 card(s); 1 row(s) failed" in table.stderr
    assert table.stderr.splitlines()[-1].startswith("cardctl: 1 row(s) of ")
    assert ID4 not in table.stderr
    assert sorted(cards_in(cli)) == ["A00000001", "A00000002"]


def test_every_failing_row_is_listed_in_json_output(cli):
    text = "\n".join([HEADER, "x", GOOD[0], "A00000005,a,b,c,d,e", GOOD[1], "A00000006,王,1,1,1"]) + "\n"
    result = cli("import", write(cli, text), "-o", "json")
    assert result.exit_code == 7
    records = json.loads(result.stdout)
    assert sorted(r["line"] for r in records if r["result"] != "issued") == [2, 4, 6]
    assert sorted(r["line"] for r in records if r["result"] == "issued") == [3, 5]
    assert all(set(r) == {"line", "card_no", "result", "detail"} for r in records)
    assert "imported 2 card(s); 3 row(s) failed" in result.stderr


def test_a_card_number_twice_in_the_file_keeps_the_first(cli):
    text = "\n".join([HEADER, GOOD[0], f"A00000001,赵六,{ID4},510107,resident,"]) + "\n"
    result = cli("import", write(cli, text), "-o", "jsonl")
    assert result.exit_code == 7
    assert failures(result) == {3: "line 3: card A00000001 already exists"}
    assert cards_in(cli)["A00000001"]["holder_name"] == "张伟"


def test_importing_the_same_file_again_reports_already_issued_exits_0_and_writes_nothing(cli):
    first = write(cli, "\n".join([HEADER, *GOOD]) + "\n", name="first.csv")
    assert cli("import", first).exit_code == 0
    before = dump(cli.db)
    result = cli("import", first, "-o", "jsonl")
    assert result.exit_code == 0, result.stderr
    assert [r["result"] for r in map(json.loads, result.stdout.splitlines())] == ["already issued"] * 3
    assert "3 already issued; 0 row(s) failed" in result.stderr
    assert dump(cli.db) == before


def test_a_card_number_already_in_the_database_for_another_holder_or_details_is_refused(cli):
    assert cli("import", write(cli, "\n".join([HEADER, *GOOD]) + "\n", name="first.csv")).exit_code == 0
    before = dump(cli.db)
    text = "\n".join([HEADER, f"A00000001,赵六,{ID4},510107,resident,",  # another holder
                      f"A00000002,王𠮷,{ID2},440305,employee,{UNIT}"]) + "\n"  # same holder, other details
    result = cli("import", write(cli, text), "-o", "jsonl")
    assert result.exit_code == 7
    assert failures(result) == {2: "line 2: card A00000001 already exists", 3: "line 3: card A00000002 already exists"}
    assert dump(cli.db) == before


def test_a_holder_gets_one_live_card_only(cli):
    text = "\n".join([HEADER, GOOD[0], f"B00000001,张伟,{ID1},110105,employee,"]) + "\n"
    result = cli("import", write(cli, text), "-o", "jsonl")
    assert result.exit_code == 7
    assert failures(result) == {3: f"line 3: holder {ID1[:3]}{'*' * 11}{ID1[-4:]} already has a live card"}
    assert ID1 not in result.stdout + result.stderr
    assert sorted(cards_in(cli)) == ["A00000001"]


def test_a_holder_with_a_card_in_the_database_cannot_get_a_second_from_a_file(cli):
    assert cli("import", write(cli, "\n".join([HEADER, GOOD[0]]) + "\n", name="a.csv")).exit_code == 0
    result = cli("import", write(cli, "\n".join([HEADER, f"B00000001,张伟,{ID1},110105,,"]) + "\n"), "-o", "jsonl")
    assert result.exit_code == 7
    assert "already has a live card" in failures(result)[2]


def test_id_numbers_in_lowercase_x_are_the_same_holder(cli):
    assert ID1.endswith("X")
    lower = ID1[:-1] + "x"
    text = "\n".join([HEADER, GOOD[0], f"B00000001,张伟,{lower},110105,,"]) + "\n"
    result = cli("import", write(cli, text), "-o", "jsonl")
    assert result.exit_code == 7 and list(failures(result)) == [3]


# --- whole-file problems: exit 2, nothing written ------------------------------------------


@pytest.mark.parametrize("garbage", [
    bytes(range(256)) * 8,  # NUL bytes: binary
    bytes(random.Random(7).randrange(0x80, 0x100) for _ in range(4096)),  # high bytes, no NUL
    b"\x89PNG\r\n\x1a\n" + bytes(random.Random(8).randrange(0, 256) for _ in range(2048)),
])
def test_a_binary_file_is_refused_whole_with_exit_2(cli, garbage):
    path = cli.tmp / "garbage.csv"
    path.write_bytes(garbage)
    before = dump(cli.db)
    result = cli("import", str(path))
    assert result.exit_code == 2
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1 and result.stderr.startswith("cardctl: ")
    assert "Traceback" not in result.stderr
    assert dump(cli.db) == before


def test_a_header_without_the_required_columns_is_refused_whole(cli):
    before = dump(cli.db)
    result = cli("import", write(cli, "card,name\nA00000001,张伟\n"))
    assert result.exit_code == 2
    assert "card_no" in result.stderr and "id_number" in result.stderr and "region" in result.stderr
    assert dump(cli.db) == before


def test_an_empty_file_imports_nothing_and_succeeds(cli):
    result = cli("import", write(cli, ""))
    assert result.exit_code == 0 and "imported 0 card(s)" in result.stderr


# --- JSON lines and stdin ------------------------------------------------------------------


def _jsonl(*records: dict | str) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records)


def test_json_lines_go_in_and_bad_lines_are_reported_by_number(cli):
    text = _jsonl(
        {"card_no": "A00000001", "name": "张伟", "id_number": ID1, "region": "110105", "type": "employee",
         "unit": UNIT},
        "not json",
        "[1, 2]",
        "",
        {"card_no": "A00000002", "name": "王芳", "id_number": "123", "region": "440305"},
        {"card_no": "A00000003", "name": "李娜", "id_number": ID3, "region": "330106", "unit": None},
    )
    result = cli("import", write(cli, text, name="cards.jsonl"), "-o", "jsonl")
    assert result.exit_code == 7
    assert {line: detail.split(": ", 1)[1] for line, detail in failures(result).items()} == {
        2: "not JSON: Expecting value", 3: "not a JSON object", 5: "ID number 123: wrong length (3, expected 18)"}
    assert sorted(cards_in(cli)) == ["A00000001", "A00000003"]
    assert cards_in(cli)["A00000001"]["unit"] == UNIT


def test_json_lines_in_gb18030_are_read(cli):
    text = _jsonl({"card_no": "A00000002", "name": "王𠮷", "id_number": ID2, "region": "440305"})
    assert cli("import", write(cli, text, "gb18030", "cards.jsonl")).exit_code == 0
    assert cards_in(cli)["A00000002"]["holder_name"] == "王𠮷"


def test_csv_from_stdin(cli):
    result = cli("import", "-", input="\n".join([HEADER, *GOOD]) + "\n")
    assert result.exit_code == 0, result.stderr
    assert sorted(cards_in(cli)) == ["A00000001", "A00000002", "A00000003"]


def test_gb18030_bytes_with_a_bad_row_from_stdin(cli):
    text = "\r\n".join([HEADER, GOOD[0], "A00000002,王芳,0,440305,,", GOOD[2]]) + "\r\n"
    result = cli("import", "-", "-o", "jsonl", input=text.encode("gb18030"))
    assert result.exit_code == 7
    assert list(failures(result)) == [3]
    assert sorted(cards_in(cli)) == ["A00000001", "A00000003"]


def test_json_lines_from_stdin(cli):
    text = _jsonl({"card_no": "A00000003", "name": "李娜", "id_number": ID3, "region": "330106"})
    result = cli("import", "-", input=text)
    assert result.exit_code == 0, result.stderr
    assert list(cards_in(cli)) == ["A00000003"]


def test_imported_cards_are_issued_pending_and_audited(cli):
    assert cli("import", write(cli, "\n".join([HEADER, *GOOD]) + "\n")).exit_code == 0
    events = json.loads(cli("audit", "log", "-o", "json").stdout)
    issued = [e for e in events if e["action"] == "card.issue"]
    assert sorted(e["card_no"] for e in issued) == ["A00000001", "A00000002", "A00000003"]
    assert all(e["operator"] == "tester" for e in issued)
    assert ID1 not in json.dumps(events)
    assert cli("audit", "verify").exit_code == 0
