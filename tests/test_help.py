"""Every command's --help ends with a worked example that parses, follows the chosen language,
and shell completion works.

The examples are each command's epilog: printed last, after the options, with their line
breaks kept (a paragraph that starts with \\b is not rewrapped).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from rich.cells import cell_len
from typer.testing import CliRunner

from cardctl import i18n
from cardctl.cli import app
from cardctl.cli.common import HelpCommand, HelpGroup

ROOT_COMMAND = typer.main.get_command(app)
SCRIPT = Path(sys.executable).parent / "cardctl"
NO_LOCALE = {"CARDCTL_LANG": None, "LANGUAGE": None, "LC_ALL": None, "LC_MESSAGES": None, "LANG": None}
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(autouse=True)
def english_afterwards():
    """The language is process state; leave English for whatever test runs next."""
    yield
    i18n.set_language(i18n.ENGLISH)


def _commands(command=ROOT_COMMAND, path: tuple[str, ...] = ()):
    """(path, command) for the root, every group and every command under it."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands())
IDS = [" ".join(path) or "cardctl" for path, _ in COMMANDS]


def _help(path: tuple[str, ...], *args: str, env: dict | None = None) -> str:
    """``cardctl PATH --help ARGS`` with no locale in the environment but ``env``."""
    result = CliRunner().invoke(app, [*path, "--help", *args], prog_name="cardctl", catch_exceptions=False,
                                env={**NO_LOCALE, **(env or {})})
    assert result.exit_code == 0, result.output
    return result.stdout


def _examples(text: str) -> list[str]:
    """The lines after the last 'Example:' / 'Examples:' heading."""
    lines = text.rstrip().splitlines()
    start = max(i for i, line in enumerate(lines) if line.strip() in ("Example:", "Examples:"))
    return [line.strip() for line in lines[start + 1:]]


def test_the_walk_finds_every_command_and_group():
    assert {"status", "unlock", "policy set", "operator add", "audit verify"} <= set(IDS)
    assert len(COMMANDS) >= 25


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=IDS)
def test_help_ends_with_a_worked_example(path):
    text = _help(path)
    last = text.rstrip().splitlines()[-1].strip()
    assert last.startswith("cardctl "), f"{' '.join(path) or 'cardctl'} --help ends with {last!r}"
    examples = _examples(text)
    assert examples and all(line.startswith(("cardctl ", "printf ")) for line in examples), examples


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=IDS)
def test_every_example_is_a_valid_command_line(path):
    """Each example parses: the command exists, every option is real and every required one given."""
    for line in _examples(_help(path)):
        command_line = next(part for part in line.split(" | ") if part.startswith("cardctl "))
        args = shlex.split(command_line.split(" > ")[0], comments=True)[1:]
        command, ctx = ROOT_COMMAND, ROOT_COMMAND.make_context("cardctl", args, resilient_parsing=False)
        while hasattr(command, "commands"):
            name, command, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
            ctx = command.make_context(name, rest, parent=ctx)
        assert not ctx.args, f"{line!r}: extra arguments {ctx.args}"


def test_examples_keep_their_line_breaks():
    text = _help(("unlock",))
    assert "\n    cardctl unlock --expired -o jsonl        # cron\n" in text


# --- --help in Chinese ---------------------------------------------------------------------------

SOME = [("status",), ("unlock",), ("report-lost",), ("policy", "set")]


def _command(path: tuple[str, ...]):
    return dict(COMMANDS)[path]


def _english_sentences(path: tuple[str, ...]) -> list[str]:
    """The command's description and every parameter's help: what must not be left in English."""
    command = _command(path)
    ctx = typer.Context(command, info_name=path[-1] if path else "cardctl")
    return [text for text in (command.help, *(param.help for param in command.get_params(ctx))) if text]


@pytest.mark.parametrize("args, env", [
    (("--lang", "zh"), {}), (("--lang=zh_CN",), {}), ((), {"CARDCTL_LANG": "zh"}), ((), {"LANG": "zh_CN.UTF-8"}),
    ((), {"LANGUAGE": "zh_CN:en", "LANG": "en_US.UTF-8"}),
])
def test_root_help_is_chinese_with_lang_zh_cardctl_lang_or_a_chinese_locale(args, env):
    result = CliRunner().invoke(app, [*args, "--help"], prog_name="cardctl", env={**NO_LOCALE, **env})
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("用法：cardctl [OPTIONS] COMMAND [ARGS]...\n")
    for words in ("社会保障卡", "选项：", "命令：", "显示本帮助并退出。", "[环境变量：CARDCTL_LANG]", "示例：",
                  "校验密码。", "挂失：卡片立即停止一切使用。"):
        assert words in text, words
    for name in ("--db", "--key-file", "--operator", "--lang", "-h, --help", "status", "unlock", "report-lost", "policy"):
        assert re.search(rf"^  {re.escape(name)}\b", text, re.M), name
    for english in ("Usage:", "Options:", "Commands:", "Examples:", "Show this message", "Check a PIN."):
        assert english not in text, english
    assert "    cardctl --lang zh status A10000001" in text  # the examples stay as they are


@pytest.mark.parametrize("path", SOME, ids=[" ".join(path) for path in SOME])
@pytest.mark.parametrize("where", ["before", "after", "env"])
def test_a_command_help_is_chinese_wherever_the_language_is_chosen(path, where):
    args, env = {"before": ((), {}), "after": (("--lang", "zh"), {}), "env": ((), {"CARDCTL_LANG": "zh"})}[where]
    if where == "before":
        result = CliRunner().invoke(app, ["--lang", "zh", *path, "--help"], prog_name="cardctl", env=NO_LOCALE)
        assert result.exit_code == 0, result.output
        text = result.stdout
    else:
        text = _help(path, *args, env=env)
    english = _help(path)
    assert text.startswith(f"用法：cardctl {' '.join(path)} [OPTIONS]")
    assert "选项：" in text and "参数：" in text and "显示本帮助并退出。" in text and "示例：" in text
    i18n.set_language(i18n.CHINESE)
    description = i18n.tr(_command(path).help).split("\n\n")[0]
    assert description in text.replace("\n  ", "")  # the first paragraph, however it is wrapped
    for sentence in _english_sentences(path):
        assert sentence.split("\n")[0] not in text, sentence
    assert not re.search(r"\b(Usage|Options|Arguments|Examples?|default|required):", text)
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", english.split("Examples:")[0]))
    assert options and options <= set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", text))
    assert [line.strip() for line in text.rstrip().split("示例：")[1].strip().splitlines()] == _examples(english)


def test_chinese_help_is_wrapped_by_display_width():
    """A Chinese character takes two columns; lines stay within the 80 columns CliRunner gives click."""
    for path in SOME:
        text = _help(path, "--lang", "zh").split("示例：")[0]
        assert 70 < max(cell_len(line) for line in text.splitlines()) <= 80, path


def test_click_words_after_an_option_help_are_chinese():
    text = _help(("policy", "set"), "--lang", "zh")
    assert "[默认：table]" in text and "[必填]" in text


@pytest.mark.parametrize("path", [path for path, _ in COMMANDS], ids=IDS)
def test_english_help_is_clicks_own_whatever_the_locale(path):
    """English --help is written by click itself, not rebuilt: the same with --lang en under a Chinese locale."""
    command = _command(path)
    ctx = typer.Context(command, info_name=path[-1] if path else "cardctl")
    plain = typer._click.HelpFormatter()
    base = typer.core.TyperGroup if isinstance(command, HelpGroup) else typer.core.TyperCommand
    base.format_help(command, ctx, plain)
    ours = typer._click.HelpFormatter()
    command.format_help(ctx, ours)
    assert ours.getvalue() == plain.getvalue()
    assert _help(path, "--lang", "en", env={"LANG": "zh_CN.UTF-8"}) == _help(path)
    assert not CJK.search(_help(path).split("Example")[0].replace("解挂", "").replace("补办", ""))


def test_every_command_and_group_shows_help_in_the_chosen_language():
    for path, command in COMMANDS:
        assert isinstance(command, (HelpCommand, HelpGroup)), " ".join(path)


def test_the_channel_option_names_the_channels_an_operator_may_give():
    from cardctl.cli.options import ChannelOpt
    from cardctl.config import OPERATOR_CHANNELS

    help_text = ChannelOpt.__metadata__[0].help
    assert help_text == "Where the action happens: " + ", ".join(OPERATOR_CHANNELS) + "."


# --- shell completion ---------------------------------------------------------------------------


def _complete(words: str) -> list[str]:
    """What bash completion offers for the last of ``words``, as the installed script asks for it."""
    assert SCRIPT.exists(), f"{SCRIPT}: cardctl's console script (pip install -e .)"
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {**os.environ, "_CARDCTL_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    done = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completion_lists_commands_subcommands_and_option_values():
    assert "policy" in _complete("cardctl po")
    assert set(_complete("cardctl operator ")) == {"add", "list", "set-role", "disable"}
    assert "--status" in _complete("cardctl status --st")
    assert _complete("cardctl status --status ") == ["pending", "active", "lost", "void"]
    assert _complete("cardctl --lang ") == ["en", "zh"]


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o default -F _cardctl_completion cardctl"),
                                           ("zsh", "#compdef cardctl"), ("fish", "complete --command cardctl")])
def test_the_completion_script_for_each_shell(shell, marker):
    env = {**os.environ, "_CARDCTL_COMPLETE": f"source_{shell}"}
    done = subprocess.run([str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and marker in done.stdout, done.stdout + done.stderr
