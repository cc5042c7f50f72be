"""Every command's --help ends with a worked example that parses, and shell completion works.

The examples are each command's epilog: printed last, after the options, with their line
breaks kept (a paragraph that starts with \\b is not rewrapped).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cardctl.cli import app

ROOT_COMMAND = typer.main.get_command(app)
SCRIPT = Path(sys.executable).parent / "cardctl"


def _commands(command=ROOT_COMMAND, path: tuple[str, ...] = ()):
    """(path, command) for the root, every group and every command under it."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _commands(sub, (*path, name))


COMMANDS = list(_commands())
IDS = [" ".join(path) or "cardctl" for path, _ in COMMANDS]


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(app, [*path, "--help"], prog_name="cardctl", catch_exceptions=False)
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
