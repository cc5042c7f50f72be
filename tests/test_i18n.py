"""The Chinese interface: tables, statuses, lock kinds, results and messages in Chinese on request,
machine formats the same in every language, and a catalog that cannot fall behind the code.

The same commands run in English and in Chinese (``--lang zh``, ``CARDCTL_LANG`` or the locale
environment); CliRunner keeps stdout and stderr apart, so each is checked on its own.
"""

from __future__ import annotations

import ast
import io
import json
import re
import string
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import pytest
from rich.cells import cell_len

from cardctl import i18n
from cardctl.i18n import _, from_environment, localize, parse_language
from conftest import GOOD_PIN, HOLDERS, issue
from cardctl.services.cards import activate, parse_card_input

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cardctl"
CATALOG = PACKAGE / "locale" / "zh_CN" / "LC_MESSAGES"
UNIT = "91350100M000100Y43"
NO_LOCALE = {"CARDCTL_LANG": None, "LANGUAGE": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": None}
WRONG_PIN = "271828"
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def english_afterwards():
    """The language is process state; leave English for whatever test runs next."""
    yield
    i18n.set_language(i18n.ENGLISH)


@pytest.fixture
def cli(ctx, settings, clock, monkeypatch):
    """cardctl in-process against the test's database and clock; ``env`` adds or (None) removes variables."""
    from typer.testing import CliRunner

    from cardctl.cli import app
    from cardctl.cli.common import Runtime

    monkeypatch.setattr("cardctl.config.os_user", lambda: settings.os_user)
    runner = CliRunner()
    base = {"CARDCTL_DB": settings.db_url, "CARDCTL_KEY_FILE": str(settings.key_file),
            "CARDCTL_BCRYPT_COST": "4", "CARDCTL_OPERATOR": "tester", "CARDCTL_TZ": "Asia/Shanghai",
            **NO_LOCALE}

    def invoke(*args: str, env: dict | None = None, input: str | None = None):
        return runner.invoke(app, list(args), input=input, env={**base, **(env or {})},
                             obj=Runtime(clock=clock), catch_exceptions=False)

    return invoke


@pytest.fixture
def population(ctx):
    """Three active cards: one PIN-locked (3 wrong PINs), one arrears-locked through its unit, one free."""
    from cardctl.services.arrears import Debtor, add_arrears
    from cardctl.services.verify import verify_pin

    for n, (card_no, name, id_number, region) in enumerate(HOLDERS):
        issue(ctx, card_no, name, id_number, region, **({"unit": UNIT} if n == 1 else {}))
        person = parse_card_input({"card_no": card_no, "name": name, "id_number": id_number, "region": region},
                                  ctx.now().date()).id_number
        activate(ctx, card_no, person, GOOD_PIN)
    for _attempt in range(3):
        verify_pin(ctx, HOLDERS[0][0], WRONG_PIN)
    add_arrears(ctx, Debtor(unit=UNIT), 120_000, "2026-10")
    return [holder[0] for holder in HOLDERS]


def both(cli, *args: str, **kwargs):
    """The same command in English and with --lang zh."""
    return cli(*args, **kwargs), cli("--lang", "zh", *args, **kwargs)


# --- choosing the language --------------------------------------------------------------------


def test_english_is_the_default_without_any_locale_setting(cli, population):
    result = cli("status")
    assert result.exit_code == 0, result.stderr
    assert "Card" in result.stdout and "Holder" in result.stdout and "active" in result.stdout
    assert not CJK.search(result.stdout.replace("张伟", "").replace("王芳", "").replace("李娜", ""))


def test_lang_zh_CN_utf8_in_the_environment_selects_chinese(cli, population):
    result = cli("status", env={"LANG": "zh_CN.UTF-8"})
    assert result.exit_code == 0, result.stderr
    assert "卡号" in result.stdout and "持卡人" in result.stdout and "状态" in result.stdout


@pytest.mark.parametrize("env, expected", [
    ({"LANG": "zh_CN.UTF-8"}, "zh"),
    ({"LANG": "en_US.UTF-8"}, "en"),
    ({"LANG": "fr_FR.UTF-8"}, "en"),  # a language cardctl lacks: English
    ({"LANG": "zh_TW.UTF-8"}, "en"),  # the catalog is Simplified Chinese
    ({"LC_MESSAGES": "zh_CN.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LC_ALL": "en_US.UTF-8", "LC_MESSAGES": "zh_CN.UTF-8"}, "en"),
    ({"LANGUAGE": "zh_CN:en", "LANG": "en_US.UTF-8"}, "zh"),
    ({"LANGUAGE": "fr:zh", "LANG": "en_US.UTF-8"}, "zh"),  # the first language cardctl has
    ({"LANGUAGE": "en", "LANG": "zh_CN.UTF-8"}, "en"),
    ({"LANGUAGE": "zh_CN", "LC_ALL": "C"}, "en"),  # gettext ignores LANGUAGE in the C locale
    ({"LANGUAGE": "zh_CN", "LANG": "C.UTF-8"}, "en"),
    ({}, "en"),
])
def test_the_locale_environment_is_read_in_gettext_order(env, expected):
    assert from_environment(env) == expected


@pytest.mark.parametrize("raw, expected", [("zh", "zh"), ("ZH", "zh"), ("zh_CN", "zh"), ("zh-CN", "zh"),
                                           ("zh_CN.UTF-8", "zh"), ("en", "en"), ("xx", None), ("", None),
                                           ("zh_TW", None)])
def test_lang_values(raw, expected):
    assert parse_language(raw) == expected


def test_lang_may_follow_the_command(cli, population):
    for args in (("status", population[0], "--lang", "zh"), ("status", "--lang=zh", population[0]),
                 ("policy", "show", "--lang", "zh")):
        result = cli(*args)
        assert result.exit_code == 0, result.stderr
        assert CJK.search(result.stdout.replace("张伟", "")), args


@pytest.mark.parametrize("args, hoisted", [
    (["status", "A1", "--lang", "zh"], ["--lang", "zh", "status", "A1"]),
    (["--lang", "zh", "status"], ["--lang", "zh", "status"]),
    (["unlock", "--lang=zh", "A1", "--", "--lang", "x"], ["--lang=zh", "unlock", "A1", "--", "--lang", "x"]),
    (["status", "--lang"], ["--lang", "status"]),  # then 'status' is an unknown language: exit 2
])
def test_lang_is_moved_in_front_of_the_command(args, hoisted):
    from cardctl.cli.common import hoist_lang

    assert hoist_lang(args) == hoisted


def test_lang_option_and_cardctl_lang_win_over_the_locale(cli, population):
    english = cli("--lang", "en", "status", env={"LANG": "zh_CN.UTF-8"})
    assert "Holder" in english.stdout and "持卡人" not in english.stdout
    chinese = cli("status", env={"CARDCTL_LANG": "zh", "LANG": "en_US.UTF-8"})
    assert "持卡人" in chinese.stdout


def test_an_unknown_lang_is_a_usage_error_in_one_line(cli, population):
    result = cli("--lang", "xx", "status")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "cardctl: unknown language 'xx' for --lang (or CARDCTL_LANG): choose en or zh"]
    assert result.stdout == ""
    from_env = cli("status", env={"CARDCTL_LANG": "klingon", "LANG": "zh_CN.UTF-8"})
    assert from_env.exit_code == 2 and len(from_env.stderr.strip().splitlines()) == 1
    assert "--lang" in from_env.stderr and "klingon" in from_env.stderr and "语言" in from_env.stderr


# --- tables -----------------------------------------------------------------------------------


def test_status_table_headers_statuses_and_lock_kinds_are_chinese(cli, population):
    english, chinese = both(cli, "status")
    assert english.exit_code == chinese.exit_code == 0
    for word in ("Card", "Holder", "ID number", "Region", "Status", "Failures", "active", "pin", "arrears"):
        assert word in english.stdout
    for word in ("卡号", "持卡人", "身份证号", "参保地", "状态", "错误次数", "正常", "密码锁定", "欠费锁定"):
        assert word in chinese.stdout
    for word in ("Holder", "Failures", "active", "arrears"):
        assert word not in chinese.stdout


def test_one_card_in_chinese_shows_its_lock_and_the_system_written_reason_translated(cli, population):
    english, chinese = both(cli, "status", population[0])
    assert "3 consecutive wrong PINs" in english.stdout
    assert "连续 3 次密码错误" in chinese.stdout and "consecutive" not in chinese.stdout
    assert "密码锁定" in chinese.stdout and "不可用" in chinese.stdout and "还可尝试 0 次" in chinese.stdout
    unit_card = cli("--lang", "zh", "status", population[1])
    assert "欠缴社保费（单位）" in unit_card.stdout and "单位欠费 1200.00 元" in unit_card.stdout


def test_batch_results_and_their_details_are_chinese_with_the_same_exit_code(cli, population):
    args = ("unlock", *population, "NOPE", "--reason", "核实身份")
    english = cli(*args, "--dry-run")
    chinese = cli("--lang", "zh", *args, "--dry-run")
    assert english.exit_code == chinese.exit_code == 7
    assert "would unlock" in english.stdout and "not locked" in english.stdout and "invalid" in english.stdout
    for word in ("将解锁", "未锁定", "无效", "保留：欠费锁定（只能通过 pay-arrears 缴费解除）", "结果", "说明", "保留的锁定"):
        assert word in chinese.stdout
    assert chinese.stderr == "cardctl: 4 张卡中有 1 张失败\n"  # NOPE; the arrears lock kept is no failure


def test_verify_result_is_chinese(cli, population):
    english = cli("verify", population[2], "--pin-stdin", input=WRONG_PIN + "\n")
    chinese = cli("--lang", "zh", "verify", population[2], "--pin-stdin", input=WRONG_PIN + "\n")
    assert english.exit_code == chinese.exit_code == 3
    assert english.stdout.startswith(f"Card {population[2]}: wrong pin; 2 attempt(s) left")
    assert chinese.stdout.startswith(f"卡号 {population[2]}：密码错误；还可尝试 1 次")


def test_summary_policy_and_operator_tables_are_chinese(cli, population):
    summary = cli("--lang", "zh", "status", "--summary")
    assert "密码锁定" in summary.stdout and "卡数" in summary.stdout and "无" in summary.stdout
    policy = cli("--lang", "zh", "policy", "show")
    assert "最多尝试次数" in policy.stdout and "默认" in policy.stdout
    operators = cli("--lang", "zh", "operator", "list")
    assert "管理员" in operators.stdout and "登录名" in operators.stdout  # the role, not the lock kind


@pytest.mark.parametrize("args", [("status",), ("status", "A00000001"), ("status", "--summary"),
                                  ("policy", "show"), ("unlock", "A00000001", "A00000002", "--reason", "核实",
                                                       "--dry-run")])
def test_every_row_of_a_chinese_table_has_the_same_display_width(cli, population, args):
    result = cli("--lang", "zh", *args)
    assert result.exit_code in (0, 7), result.stderr
    if result.stdout.startswith("-[ "):  # too wide for the terminal: one block per record (render/grid.py)
        starts = {cell_len(line[:len(line) - len(line.split(":", 1)[1].lstrip())])
                  for line in result.stdout.splitlines() if ":" in line and line.split(":", 1)[1].strip()
                  and not line.startswith("-[")}
        assert len(starts) == 1 and CJK.search(result.stdout), result.stdout  # values start in one column
        return
    rows = _first_table(result.stdout)
    assert len(rows) >= 3, result.stdout
    assert any(CJK.search(row) for row in rows)  # Chinese headers or names are in the table
    assert len({cell_len(row) for row in rows}) == 1, "\n".join(f"{cell_len(r):4} {r}" for r in rows)


def _first_table(text: str) -> list[str]:
    """The lines of the first table drawn (render/grid.py): its header line above the rule, the
    rule, and the rows below it, each row padded with runs of spaces between its columns."""
    lines = text.splitlines()
    rule = next((i for i, line in enumerate(lines) if line.startswith("━")), None)
    if rule is None:
        return []
    rows = lines[rule - 1:rule + 1]
    for line in lines[rule + 1:]:
        if "  " not in line.strip():
            break
        rows.append(line)
    return rows


# --- messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("args, code, english, chinese", [
    (("status", "A00000009"), 5, "cardctl: card A00000009 not found", "cardctl: 找不到卡 A00000009"),
    (("reset-pin", "A00000001", "--id-number", "11010519491231002Y", "--pin-stdin"), 2,
     "cardctl: ID number 110***********002Y: only digits are allowed, and X as the last character",
     "cardctl: 身份证号 110***********002Y：只能是数字，末位可为 X"),
    (("unlock", "A00000001"), 2, "cardctl: --reason is required to unlock", "cardctl: 解锁须提供 --reason"),
    (("pay-arrears", "A00000003", "--amount", "10"), 6, "cardctl: card A00000003 owes nothing; nothing recorded",
     "cardctl: 卡 A00000003 没有欠费；未作记录"),
])
def test_an_error_is_one_chinese_line_with_the_same_exit_code(cli, population, args, code, english, chinese):
    in_english = cli(*args, input="583920\n")
    in_chinese = cli("--lang", "zh", *args, input="583920\n")
    assert in_english.exit_code == in_chinese.exit_code == code
    assert in_english.stderr.splitlines() == [english]
    assert in_chinese.stderr.splitlines() == [chinese]


def test_a_wrong_current_pin_says_the_attempts_left_in_chinese(cli, population):
    result = cli("--lang", "zh", "change-pin", population[2], "--pin-stdin", input=f"{WRONG_PIN}\n702614\n")
    assert result.exit_code == 3
    assert result.stderr == "cardctl: 当前密码错误；还可尝试 2 次；密码未修改\n"


def test_a_locked_card_is_refused_in_chinese(cli, population):
    result = cli("--lang", "zh", "verify", population[0], "--pin-stdin", "-o", "json", input=GOOD_PIN + "\n")
    assert result.exit_code == 4
    assert json.loads(result.stdout)[0]["result"] == "locked"  # machine output stays English
    table = cli("--lang", "zh", "verify", population[0], "--pin-stdin", input=GOOD_PIN + "\n")
    assert table.stdout.startswith(f"卡号 {population[0]}：已锁定")


def test_database_errors_are_chinese(cli, tmp_path):
    result = cli("--lang", "zh", "status", env={"CARDCTL_DB": str(tmp_path / "missing.db")})
    assert result.exit_code == 1
    assert result.stderr.startswith("cardctl: 数据库 ") and "不存在；请先运行 'cardctl init'" in result.stderr


def test_report_tables_and_a_tampered_audit_export_are_chinese(cli, population, tmp_path):
    english, chinese = both(cli, "report", "--section", "pin_lock_endings", "--section", "arrears_totals")
    assert english.exit_code == chinese.exit_code == 0, chinese.stderr
    assert "How PIN locks ended" in english.stdout and "Arrears outstanding, totals" in english.stdout
    for words in ("密码锁定的解除方式", "未缴欠费合计", "解除方式", "欠费方", "已到期", "单位", "报表："):
        assert words in chinese.stdout, words
    assert "How PIN locks ended" not in chinese.stdout and "Debtor" not in chinese.stdout
    export = tmp_path / "audit.jsonl"
    assert cli("audit", "export", str(export)).exit_code == 0
    rows = export.read_text().splitlines(keepends=True)
    rows[3] = rows[3].replace('"outcome":"', '"outcome":"x', 1)  # line 4 holds event 3
    export.write_text("".join(rows))
    english, chinese = both(cli, "audit", "verify", "--file", str(export))
    assert english.exit_code == chinese.exit_code == 6
    assert english.stderr.splitlines() == [
        f"cardctl: audit export broken: {export} line 4: event 3 was edited (its hash does not match its content)"]
    assert chinese.stderr.splitlines() == [
        f"cardctl: 审计日志导出文件已损坏：{export} 第 4 行：第 3 条审计记录已被篡改（哈希与内容不符）"]


@pytest.mark.sqlite_only("the acting login is the OS user there; the refusal's wording is the same on PostgreSQL")
def test_a_refused_role_is_chinese(cli, population, settings, monkeypatch):
    monkeypatch.setattr("cardctl.config.os_user", lambda: "visitor")
    result = cli("--lang", "zh", "status")
    assert result.exit_code == 6
    assert result.stderr == "cardctl: status 需要“审计员”角色；visitor 不是 cardctl 操作员\n"


# --- machine formats --------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("status", "-o", "json"), ("status", "-o", "csv"), ("status", "--summary", "-o", "jsonl"),
    ("unlock", "A00000001", "A00000002", "NOPE", "--reason", "核实", "--dry-run", "-o", "json"),
    ("policy", "show", "-o", "csv"), ("operator", "list", "-o", "json"),
])
def test_machine_output_is_identical_in_both_languages(cli, population, args):
    english, chinese = both(cli, *args)
    assert english.exit_code == chinese.exit_code
    assert english.stdout == chinese.stdout and english.stdout.strip()
    assert not CJK.search(english.stdout.replace("张伟", "").replace("王芳", "").replace("李娜", "")
                          .replace("核实", ""))


def test_the_audit_trail_keeps_english_whatever_the_operator_reads(cli, population):
    assert cli("--lang", "zh", "unlock", population[1], "--reason", "核实").exit_code == 0  # arrears lock kept
    events = json.loads(cli("--lang", "zh", "audit", "log", "--card", population[1], "-o", "json").stdout)
    notes = [(event["detail"] or {}).get("note") for event in events if event["action"] == "lock.unlock"]
    assert notes == ["kept: arrears lock (only pay-arrears lifts it)"]


# --- messages as objects ----------------------------------------------------------------------


def test_a_message_is_english_text_that_shows_translated():
    message = _("card {card} not found").format(card="A00000001")
    assert message == "card A00000001 not found" and isinstance(message, str)
    assert json.dumps({"detail": message}) == '{"detail": "card A00000001 not found"}'
    i18n.set_language("zh")
    assert localize(message) == "找不到卡 A00000001"
    nested = _("line {line}: {problem}").format(line=3, problem=_("region is empty"))
    assert nested == "line 3: region is empty" and localize(nested) == "第 3 行：参保地为空"
    assert localize("plain text") == "plain text"


def test_a_message_takes_named_fields_only():
    with pytest.raises(TypeError):
        _("card {0} not found").format("A00000001")


def test_a_report_duration_reads_as_the_record_words_it_and_shows_in_chinese():
    from cardctl.render.labels import duration, worded_durations

    # the English wording itself: tests/test_report.py::test_durations_are_shown_for_people
    row = {"kind": "pin", "median_s": 7500, "p95_s": None, "median": "2h 05m", "p95": "-"}
    assert worded_durations(row) == row
    i18n.set_language("zh")
    assert [localize(duration(s)) for s in (5, 65, 7500, 90000)] == ["5秒", "1分05秒", "2小时05分", "1天1小时"]
    assert {key: localize(shown) for key, shown in worded_durations(row).items()} == {
        "kind": "pin", "median_s": 7500, "p95_s": None, "median": "2小时05分", "p95": "-"}


# --- the catalog ------------------------------------------------------------------------------


def _marked_messages() -> dict[tuple[str | None, str], str]:
    """Every (context, msgid) the code marks with _(), N_() or NC_(), and where it is first used;
    then every text --help looks up (``_help_texts``)."""
    found: dict[tuple[str | None, str], str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("_", "N_", "NC_"):
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                args = node.args
                assert all(isinstance(a, ast.Constant) and isinstance(a.value, str) for a in args), (
                    f"{where}: {node.func.id}() takes string literals only (no f-strings: use .format)")
                key = (args[0].value, args[1].value) if node.func.id == "NC_" else (None, args[0].value)
                found.setdefault(key, where)
    for key, where in _help_texts().items():
        found.setdefault(key, where)
    return found


def _help_texts() -> dict[tuple[None, str], str]:
    """The texts --help translates, as click holds them: each command's description (its docstring,
    which no marker can wrap) and each parameter's help, in every command and group."""
    import typer

    from cardctl.cli import app

    found: dict[tuple[None, str], str] = {}

    def walk(command, ctx) -> None:
        for text in (command.help, *(param.help for param in command.get_params(ctx))):
            if text:
                found.setdefault((None, text), f"cardctl {ctx.command_path} --help")
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, typer.Context(sub, info_name=name, parent=ctx))

    root = typer.main.get_command(app)
    walk(root, typer.Context(root, info_name=""))
    return found


def _catalog():
    from babel.messages.pofile import read_po

    with open(CATALOG / "cardctl.po", "rb") as handle:
        return read_po(handle, locale="zh_CN", domain="cardctl")


def _fields(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field is not None}


def test_every_message_in_the_code_has_a_chinese_translation():
    catalog = _catalog()
    missing = []
    for (context, msgid), where in _marked_messages().items():
        entry = catalog.get(msgid, context=context)
        if entry is None or not entry.string or entry.fuzzy:
            missing.append(f"{where}: {msgid!r}")
    assert not missing, "add these to cardctl/locale/zh_CN/LC_MESSAGES/cardctl.po:\n" + "\n".join(missing)


def test_every_translation_keeps_the_fields_of_its_message():
    for entry in _catalog():
        if entry.id and entry.string:
            assert _fields(entry.string) == _fields(entry.id), (entry.id, entry.string)


def test_the_catalog_has_no_message_the_code_no_longer_uses():
    used = set(_marked_messages())
    stale = [entry.id for entry in _catalog() if entry.id and (entry.context, entry.id) not in used]
    assert not stale, stale


def test_the_shipped_mo_is_the_compiled_po():
    from babel.messages.mofile import write_mo

    compiled = io.BytesIO()
    write_mo(compiled, _catalog())
    assert compiled.getvalue() == (CATALOG / "cardctl.mo").read_bytes(), (
        "cardctl.mo is stale: pybabel compile -d cardctl/locale -D cardctl")


def test_no_function_that_translates_also_assigns_the_name_underscore():
    """``for _ in ...`` in a function that calls _() makes _ a local: UnboundLocalError at run time."""
    problems = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = [node for statement in function.body for node in _walk_same_scope(statement)]
            calls = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "_" for n in body)
            binds = any(isinstance(n, ast.Name) and n.id == "_" and isinstance(n.ctx, ast.Store) for n in body)
            if calls and binds:
                problems.append(f"{path.relative_to(ROOT)}: {function.name}")
    assert not problems, problems


def _walk_same_scope(node):
    """ast.walk without descending into nested functions, classes and comprehensions (their own scopes)."""
    yield node
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp,
                                  ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            yield from _walk_same_scope(child)


def test_an_installed_wheel_carries_the_catalog():
    """pyproject's package data names the compiled catalog, so a non-editable install has Chinese."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["cardctl"]
    shipped = (CATALOG / "cardctl.mo").relative_to(PACKAGE).as_posix()
    assert any(fnmatch(shipped, pattern) for pattern in patterns), patterns


def test_babel_is_a_pinned_test_dependency_and_not_imported_at_run_time():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert any(re.fullmatch(r"babel==[0-9.]+", dep, re.I) for dep in config["project"]["optional-dependencies"]["test"])
    assert not any("babel" in dep.lower() for dep in config["project"]["dependencies"])
    for path in PACKAGE.rglob("*.py"):
        assert not re.search(r"^\s*(import|from)\s+babel\b", path.read_text(encoding="utf-8"), re.M), path
