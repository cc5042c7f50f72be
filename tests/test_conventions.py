"""The conventions of a mature CLI: usage errors as cardctl messages in the chosen language,
-h for --help everywhere, --version, and --db values refused with a clear line.

Usage errors need no database: they are found while the command line is parsed.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

from cardctl import i18n
from cardctl.cli import app

ROOT_COMMAND = typer.main.get_command(app)
NO_LOCALE = {"CARDCTL_LANG": None, "LANGUAGE": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": None,
             "CARDCTL_DB": None, "CARDCTL_KEY_FILE": None}
CJK = re.compile(r"[\u4e00-\u9fff]")
# how the language is chosen: nothing (English), --lang zh (before or after the command), the
# variable, a Chinese locale
LANGUAGES = {
    "en": ([], {}),
    "zh --lang": (["--lang", "zh"], {}),
    "zh CARDCTL_LANG": ([], {"CARDCTL_LANG": "zh"}),
    "zh locale": ([], {"LANG": "zh_CN.UTF-8"}),
}


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    i18n.set_language(i18n.ENGLISH)


def cardctl(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), prog_name="cardctl", catch_exceptions=False,
                              env={**NO_LOCALE, **(env or {})})


# every kind of usage error: (arguments, the English line, the Chinese line, the command of the hint)
USAGE_ERRORS = {
    "unknown command": (["statsu", "A00000001"], "cardctl: no such command 'statsu'; did you mean status?",
                        "cardctl: 没有这个命令 'statsu'；是否要用 status？", "cardctl"),
    "unknown subcommand": (["policy", "sett"], "cardctl: no such command 'sett'; did you mean set?",
                           "cardctl: 没有这个命令 'sett'；是否要用 set？", "cardctl policy"),
    "unknown option": (["unlock", "A00000001", "--bogus"], "cardctl: no such option: --bogus",
                       "cardctl: 没有这个选项：--bogus", "cardctl unlock"),
    "unknown global option": (["--bogus", "status"], "cardctl: no such option: --bogus",
                              "cardctl: 没有这个选项：--bogus", "cardctl"),
    "wrong choice": (["status", "--status", "nope"],
                     "cardctl: invalid value 'nope' for --status: choose one of pending, active, lost, void",
                     "cardctl: --status 的值 'nope' 无效：可选值为 pending, active, lost, void", "cardctl status"),
    "wrong choice (-o)": (["status", "-o", "xml"],
                          "cardctl: invalid value 'xml' for -o/--output: choose one of table, json, jsonl, csv",
                          "cardctl: -o/--output 的值 'xml' 无效：可选值为 table, json, jsonl, csv", "cardctl status"),
    "not a number": (["policy", "set", "110105", "--max-attempts", "x"],
                     "cardctl: invalid value 'x' for --max-attempts: it must be a whole number",
                     "cardctl: --max-attempts 的值 'x' 无效：须为整数", "cardctl policy set"),
    "out of range": (["audit", "export", "f.jsonl", "--from-seq", "0"],
                     "cardctl: invalid value 0 for --from-seq: it must be 1 or more",
                     "cardctl: --from-seq 的值 0 无效：须为 1 或以上", "cardctl audit export"),
    "missing argument": (["issue"], "cardctl: missing argument CARD_NO", "cardctl: 缺少参数 CARD_NO",
                         "cardctl issue"),
    "missing option": (["operator", "add", "wangfang"], "cardctl: missing option --role",
                       "cardctl: 缺少选项 --role", "cardctl operator add"),
    "option needs a value": (["status", "--as-of"], "cardctl: option --as-of needs a value",
                             "cardctl: 选项 --as-of 需要一个值", "cardctl status"),
    "flag given a value": (["status", "--summary=yes"], "cardctl: option --summary takes no value",
                           "cardctl: 选项 --summary 不带值", "cardctl status"),
    "extra argument": (["policy", "show", "110105", "440305"], "cardctl: unexpected extra argument(s): 440305",
                       "cardctl: 多余的参数：440305", "cardctl policy show"),
    "no command": (["--db", "x.db"], "cardctl: missing command", "cardctl: 缺少命令", "cardctl"),
}


@pytest.mark.parametrize("language", list(LANGUAGES))
@pytest.mark.parametrize("kind", list(USAGE_ERRORS))
def test_a_usage_error_is_one_cardctl_line_and_a_hint_exit_2_in_the_chosen_language(kind, language):
    args, english, chinese, command = USAGE_ERRORS[kind]
    front, env = LANGUAGES[language]
    result = cardctl(*front, *args, env=env)

    assert result.exit_code == 2
    assert result.stdout == ""
    hint = (f"try '{command} --help'" if language == "en" else f"请参阅 '{command} --help'")
    assert result.stderr.splitlines() == [english if language == "en" else chinese, hint]


def test_lang_after_the_command_chooses_the_language_of_a_usage_error_too():
    result = cardctl("unlock", "A00000001", "--bogus", "--lang", "zh")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[0] == "cardctl: 没有这个选项：--bogus"


def test_terminal_escapes_in_a_mistyped_value_are_shown_as_text():
    result = cardctl("status", "--status", "\x1b[2Jnope")
    assert result.exit_code == 2 and "\x1b" not in result.stderr
    assert len(result.stderr.splitlines()) == 2


def test_bare_cardctl_and_a_bare_group_still_print_their_help():
    for args in ([], ["policy"]):
        result = cardctl(*args)
        assert "Usage: cardctl" in result.output and "Commands" in result.output


# --- -h ---------------------------------------------------------------------------------------------


def _paths(command=ROOT_COMMAND, path: tuple[str, ...] = ()):
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _paths(sub, (*path, name))


PATHS = list(_paths())


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "cardctl" for p in PATHS])
def test_dash_h_is_help_on_every_command_and_group(path):
    short, long = cardctl(*path, "-h"), cardctl(*path, "--help")
    assert short.exit_code == long.exit_code == 0
    assert short.stdout == long.stdout and short.stdout.startswith("Usage: cardctl")
    assert "-h, --help" in short.stdout


# --- --version --------------------------------------------------------------------------------------


def test_version_names_cardctl_python_sqlalchemy_and_sqlite_without_a_key_or_database(tmp_path):
    import platform
    import sqlite3
    from importlib import metadata

    from cardctl import __version__

    result = cardctl("--version", env={"CARDCTL_DB": str(tmp_path / "none.db"),
                                       "CARDCTL_KEY_FILE": str(tmp_path / "none.key")})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [f"cardctl {__version__}",
                         f"Python {platform.python_version()} ({platform.python_implementation()})",
                         f"SQLAlchemy {metadata.version('sqlalchemy')}",
                         f"SQLite {sqlite3.sqlite_version} (library)"]
    assert "no PostgreSQL database configured" in lines[4]
    assert not (tmp_path / "none.db").exists() and not (tmp_path / "none.key").exists()


def test_version_says_when_the_postgresql_server_cannot_be_reached():
    url = "postgresql+psycopg://cardctl:secret@127.0.0.1:1/cards"  # port 1: nothing listens
    result = cardctl("--db", url, "--version")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("PostgreSQL: server not reachable (")
    assert "secret" not in result.stdout


@pytest.mark.postgresql_only("the version of a reachable PostgreSQL server")
def test_version_names_the_postgresql_server_of_the_configured_database(database, engine):
    from pg_cluster import conninfo
    import psycopg

    with psycopg.connect(conninfo(database.url), autocommit=True) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
    result = cardctl("--version", env={"CARDCTL_DB": database.url})
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith(f"PostgreSQL {server} (server of ")


def test_version_comes_with_the_real_entry_point_in_chinese_too():
    done = subprocess.run([sys.executable, "-m", "cardctl", "--lang", "zh", "--version"], capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("cardctl ") and "（程序库）" in done.stdout


# --- --db values --------------------------------------------------------------------------------------


def _db(value: str, *args: str):
    return cardctl("--db", value, *(args or ("status", "A00000001")))


@pytest.mark.parametrize("url, says", [
    ("mysql://u:pw@localhost/cards", "unsupported database mysql://"),
    ("oracle://u@localhost/cards", "unsupported database oracle://"),
    ("nosuchdb://x/y", "unsupported database nosuchdb://"),
    ("postgresql+psycopg2://u@localhost/cards", "unsupported database postgresql+psycopg2://"),
    ("sqlite+aiosqlite:///cards.db", "unsupported database sqlite+aiosqlite://"),
])
def test_an_unsupported_database_or_driver_names_the_ones_cardctl_runs_on(url, says):
    for command in (("status", "A00000001"), ("init",), ("issue", "A00000001", "--name", "x", "--id-number",
                                                          "11010519491231002X", "--region", "110105")):
        result = _db(url, *command)
        assert result.exit_code == 2, result.stderr
        assert result.stderr.splitlines() == [
            f"cardctl: {says}: cardctl runs on SQLite (a file path, or sqlite:///PATH) and PostgreSQL "
            "(postgresql+psycopg://USER@HOST:PORT/DB)"]
        assert "pw" not in result.stderr.replace("psycopg", "")


@pytest.mark.parametrize("command", [("status", "A00000001"), ("init",), ("unlock", "--expired")])
def test_a_directory_as_the_database_is_named_as_one(tmp_path, command):
    result = _db(str(tmp_path), *command)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [f"cardctl: --db {tmp_path} is a directory, not a database file; "
                                          f"name a file in it, e.g. {tmp_path}/cardctl.db"]


def test_an_empty_db_option_is_refused_not_taken_for_the_default():
    result = _db("")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "cardctl: --db is empty: give a SQLite file path or a postgresql+psycopg:// URL"]


def test_a_database_whose_folder_is_missing_is_a_missing_database(tmp_path):
    path = tmp_path / "no" / "such" / "cards.db"
    result = _db(str(path), "status", "A00000001")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"cardctl: database sqlite:///{path} does not exist, nor does its folder {path.parent}; "
        "run 'cardctl init' first (or check --db / CARDCTL_DB)"]
    assert not path.parent.exists()


def test_a_database_path_that_is_not_utf8_is_refused_with_a_real_process(tmp_path):
    # bytes from a shell or a file name that UTF-8 cannot name: argv carries them as surrogates
    raw = bytes(tmp_path) + b"/\xffcards.db"
    done = subprocess.run([sys.executable.encode(), b"-m", b"cardctl", b"--db", raw, b"status", b"A00000001"],
                          capture_output=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.decode().splitlines() == [
        f"cardctl: --db {tmp_path}/\\xffcards.db: the name is not valid UTF-8; rename the file or its folder"]


def test_db_errors_follow_the_language():
    result = cardctl("--lang", "zh", "--db", "mysql://x/y", "status", "A00000001")
    assert result.exit_code == 2
    assert CJK.search(result.stderr) and result.stderr.startswith("cardctl: 不支持的数据库 mysql://")
