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

    def settings(self) -> Settings:
        return Settings.resolve(self.db, self.key_file, self.operator, self.channel)

    def context(self, channel: str | None = None):
        from ..services.context import Context

        if channel is not None:
            self.channel = check_channel(channel)
        if self._context is None:
            self._context = Context.open(self.settings(), self.clock)
        else:
            self._context.settings.channel = self.channel
        return self._context


def runtime(ctx: typer.Context) -> Runtime:
    return ctx.find_root().obj


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
