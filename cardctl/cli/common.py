"""What every command shares: global settings, the error edge, PIN input, options."""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field
from typing import Annotated, Callable

import typer
from rich.console import Console

from ..clock import Clock, system_clock
from ..config import CHANNELS, Settings
from ..domain.roles import Role
from ..errors import INTERNAL, CardctlError, InvalidInput
from ..render.formats import OutputFormat, literal

err = Console(stderr=True, highlight=False, soft_wrap=True)

OutputOpt = Annotated[OutputFormat, typer.Option("-o", "--output", help="table, json, jsonl or csv.",
                                                 case_sensitive=False)]
ChannelOpt = Annotated[str | None, typer.Option(
    "--channel", help="Where the action happens: " + ", ".join(CHANNELS[:5]) + ".")]
PinStdinOpt = Annotated[bool, typer.Option("--pin-stdin", help="Read the PIN(s) from standard input, one per line.")]


@dataclass
class Runtime:
    """Set by the top-level callback; opens the database on first use."""

    db: str | None = None
    key_file: str | None = None
    operator: str | None = None
    channel: str = "counter"
    clock: Clock = system_clock
    _context: object = field(default=None, repr=False)
    _checked: Role = field(default=Role.AUDITOR, repr=False)
    command: str = "cardctl"  # set by runtime(ctx): named in refusals

    def settings(self) -> Settings:
        return Settings.resolve(self.db, self.key_file, self.operator, self.channel)

    def context(self, channel: str | None = None, role: Role = Role.ADMIN):
        """The database, opened once the acting login is found to hold ``role`` (exit 6 if not).

        Every command names the role it needs; one that forgets gets admin, never less.
        """
        from ..services.access import open_for

        if channel is not None:
            self.channel = check_channel(channel)
        if self._context is None or not self._checked.allows(role):
            self._context = open_for(self.settings(), self.clock, role, self.command)
            self._checked = role
        else:
            self._context.settings.channel = self.channel
        return self._context


def runtime(ctx: typer.Context) -> Runtime:
    found = ctx.find_root().obj
    found.command = command_name(ctx)
    return found


def command_name(ctx: typer.Context) -> str:
    """The command as typed, e.g. 'policy set', for refusal messages and the audit trail."""
    names = []
    while ctx is not None and ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names)) or "cardctl"


def check_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise InvalidInput(f"channel must be one of {', '.join(CHANNELS[:5])}, not {channel!r}")
    return channel


def message(text: str) -> None:
    """A diagnostic on stderr, shown literally."""
    err.print(literal(text), markup=False)


def fail(error: CardctlError) -> typer.Exit:
    err.print(f"cardctl: {literal(error.message)}", markup=False, style="red")
    return typer.Exit(error.exit_code)


def edge(command: Callable) -> Callable:
    """The single place where expected failures become a message and an exit code."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except CardctlError as error:
            raise fail(error) from None
        except KeyboardInterrupt:
            err.print("cardctl: interrupted; the transaction in flight was rolled back")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away (e.g. | head); nothing more to say
            raise typer.Exit(0) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
            if os.environ.get("CARDCTL_DEBUG"):
                raise
            err.print(f"cardctl: internal error: {type(exc).__name__}: {literal(exc)}"
                      " (set CARDCTL_DEBUG=1 for details)", markup=False)
            raise typer.Exit(INTERNAL) from None

    return wrapper


def read_pins(count: int, from_stdin: bool, prompts: tuple[str, ...], confirm_new: bool = False) -> list[str]:
    """PINs from a hidden prompt, or one per line from stdin; never from arguments."""
    from ..domain.pins import parse_pin

    if from_stdin:
        pins = []
        for _ in range(count):
            line = sys.stdin.readline()
            if not line:
                raise InvalidInput(f"expected {count} PIN line(s) on standard input")
            pins.append(parse_pin(line))
        return pins
    if not sys.stdin.isatty():
        raise InvalidInput("no terminal to prompt for the PIN; use --pin-stdin")
    import getpass

    pins = []
    for prompt in prompts:
        pin = parse_pin(getpass.getpass(f"{prompt}: "))
        if confirm_new and prompt is prompts[-1]:
            if getpass.getpass(f"{prompt} again: ").rstrip("\r\n") != pin:
                raise InvalidInput("the two entries of the new PIN differ")
        pins.append(pin)
    return pins
