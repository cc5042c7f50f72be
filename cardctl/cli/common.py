"""What every command shares: global settings, the error edge, PIN input, options."""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Annotated, Callable

import typer
from rich.console import Console

from ..clock import Clock, system_clock
from ..config import CHANNELS, Settings
from ..domain.roles import Role
from ..errors import INTERNAL, CardctlError, InvalidInput
from .. import i18n
from ..i18n import N_, _, localize
from ..render.formats import OutputFormat, literal

err = Console(stderr=True, highlight=False, soft_wrap=True)

OutputOpt = Annotated[OutputFormat, typer.Option("-o", "--output", help=N_("table, json, jsonl or csv."),
                                                 case_sensitive=False)]
ChannelOpt = Annotated[str | None, typer.Option(  # the channels an operator names: CHANNELS[:5]
    "--channel", help=N_("Where the action happens: counter, bank, terminal, online, hotline."))]
PinStdinOpt = Annotated[bool, typer.Option(
    "--pin-stdin", help=N_("Read the PIN(s) from standard input, one per line."))]
AgentIdOpt = Annotated[str | None, typer.Option(
    "--agent-id-number", help=N_("ID number of the agent or, for a minor, the guardian acting for the holder."))]
AgentNameOpt = Annotated[str | None, typer.Option("--agent-name", help=N_("Name of the agent or guardian."))]


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

    def quick_context(self, role: Role, channel: str | None = None):
        """The context of the sqlite3 start-up path (``Context.open_quick``) for a command that
        only reads, or None where that path cannot serve (then use ``context``)."""
        from ..services.context import Context

        if channel is not None:
            self.channel = check_channel(channel)
        if self._context is not None:
            return None
        return Context.open_quick(self.settings(), self.clock, role)


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


def examples(*lines: str) -> str:
    """A command's epilog: worked examples, printed last in --help with their line breaks kept."""
    heading = N_("Example:") if len(lines) == 1 else N_("Examples:")
    return "\b\n" + heading + "".join(f"\n  {line}" for line in lines)


# --- --help in the chosen language ------------------------------------------------------------


class _LocalizedHelp:
    """--help in the chosen language. English is click's own layout, untouched; any other
    language is written by cli/helptext.py (loaded only then) from the catalog's translations
    of the same texts: help, option help, the epilog's heading and click's fixed words.

    Also click's own usage errors, which echo the value typed ("Invalid value for '-o': ..."):
    an ID number typed there is masked as in every other message."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except typer._click.ClickException as error:  # typer's own copy of click
            from ..domain.identity import mask_id_shapes

            error.message = mask_id_shapes(error.message)
            raise

    def format_help(self, ctx, formatter) -> None:
        if i18n.language() == i18n.ENGLISH:
            return super().format_help(ctx, formatter)
        from .helptext import format_help

        format_help(self, ctx, formatter)


class HelpCommand(_LocalizedHelp, typer.core.TyperCommand):
    """Every cardctl command (``App.command``)."""


class HelpGroup(_LocalizedHelp, typer.core.TyperGroup):
    """Every cardctl group (``App``): policy, audit, operator."""


class App(typer.Typer):
    """``typer.Typer`` whose groups and commands show --help in the chosen language."""

    def __init__(self, *args, cls: type[HelpGroup] = HelpGroup, **kwargs) -> None:
        super().__init__(*args, cls=cls, **kwargs)

    def command(self, *args, cls: type[HelpCommand] = HelpCommand, **kwargs):
        return super().command(*args, cls=cls, **kwargs)


class RootGroup(HelpGroup):
    """The top-level group: ``--lang`` is global, yet may also be typed after the command
    (``cardctl status A10000001 --lang zh``); it is moved in front before parsing."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        args = hoist_lang(args)
        if not ctx.resilient_parsing:  # shell completion stays English
            preview_language(args)
        return super().parse_args(ctx, args)


def hoist_lang(args: list[str]) -> list[str]:
    """``--lang X`` / ``--lang=X`` anywhere before ``--`` moved to the front, in order."""
    front, rest, tokens = [], [], iter(args)
    for token in tokens:
        if token == "--":
            rest += [token, *tokens]
        elif token == "--lang":
            value = next(tokens, None)
            front += [token] if value is None else [token, value]
        elif token.startswith("--lang="):
            front.append(token)
        else:
            rest.append(token)
    return front + rest


def language_for(flag: str | None) -> str | None:
    """--lang (or CARDCTL_LANG) if given, else the locale environment; None for a flag naming
    a language cardctl lacks."""
    return i18n.from_environment() if flag is None else i18n.parse_language(flag)


def preview_language(args: list[str]) -> None:
    """The language for --help, which click prints while parsing, before the callback runs
    ``choose_language``: from the hoisted --lang (the last one, as click takes it) or
    CARDCTL_LANG. An unknown value is left for the callback to refuse."""
    flag = os.environ.get("CARDCTL_LANG") or None  # click ignores an empty variable too
    tokens = iter(args)
    for token in tokens:
        if token == "--lang":
            flag = next(tokens, flag)
        elif token.startswith("--lang="):
            flag = token.removeprefix("--lang=")
        else:
            break
    i18n.set_language(language_for(flag) or i18n.from_environment())


def choose_language(flag: str | None) -> None:
    """--lang (or CARDCTL_LANG) if given, else the locale environment; once, before any command."""
    chosen = language_for(flag)
    i18n.set_language(chosen or i18n.from_environment())
    if chosen is None:
        raise fail(InvalidInput(_("unknown language {lang!r} for --lang (or CARDCTL_LANG): choose en or zh")
                                .format(lang=literal(flag)[:20])))


def check_channel(channel: str) -> str:
    if channel not in CHANNELS:
        raise InvalidInput(_("channel must be one of {channels}, not {channel!r}").format(
            channels=", ".join(CHANNELS[:5]), channel=channel))
    return channel


def shown(text) -> str:
    """Every message on its way to the screen: in the chosen language, literal, and with anything
    shaped like an ID number masked, whichever option or file it was typed into (docs/security.md)."""
    from ..domain.identity import mask_id_shapes

    return mask_id_shapes(literal(localize(text)))


def message(text: str) -> None:
    """A diagnostic on stderr, shown literally, in the chosen language."""
    err.print(shown(text), markup=False)


def fail(error: CardctlError) -> typer.Exit:
    err.print(f"cardctl: {shown(error.message)}", markup=False, style="red")
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
            err.print("cardctl: " + localize(_("interrupted; the transaction in flight was rolled back")))
            raise typer.Exit(130) from None
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away (e.g. | head); nothing more to say
            raise typer.Exit(0) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
            if os.environ.get("CARDCTL_DEBUG"):
                raise
            text = _("internal error: {kind}: {error} (set CARDCTL_DEBUG=1 for details)").format(
                kind=type(exc).__name__, error=literal(exc))
            err.print(f"cardctl: {shown(text)}", markup=False)
            raise typer.Exit(INTERNAL) from None

    return wrapper


def read_pins(count: int, from_stdin: bool, prompts: tuple[str, ...], confirm_new: bool = False) -> list[str]:
    """PINs from a hidden prompt, or one per line from stdin; never from arguments."""
    from ..domain.pins import parse_pin

    if from_stdin:
        pins = []
        for _line in range(count):
            line = sys.stdin.readline()
            if not line:
                raise InvalidInput(_("expected {count} PIN line(s) on standard input").format(count=count))
            pins.append(parse_pin(line))
        return pins
    if not sys.stdin.isatty():
        raise InvalidInput(_("no terminal to prompt for the PIN; use --pin-stdin"))
    import getpass

    pins = []
    for prompt in prompts:
        pin = parse_pin(getpass.getpass(f"{localize(prompt)}: "))
        if confirm_new and prompt is prompts[-1]:
            again = _("{prompt} again").format(prompt=prompt)
            if getpass.getpass(f"{localize(again)}: ").rstrip("\r\n") != pin:
                raise InvalidInput(_("the two entries of the new PIN differ"))
        pins.append(pin)
    return pins


def parse_time(raw: str | None, option: str, zone: str) -> datetime | None:
    """An ISO-8601 option value as aware UTC; without an offset it is local time in ``zone``."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(_("{option} {value!r} is not an ISO-8601 time (e.g. 2026-11-23T08:00:00Z)").format(
            option=option, value=raw)) from None
    if moment.tzinfo is None:
        from zoneinfo import ZoneInfo

        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(timezone.utc)
