"""What every command shares: global settings, the error edge, PIN input (options: cli/options.py)."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

import typer

from ..clock import Clock, system_clock
from ..config import OPERATOR_CHANNELS, Settings
from ..domain.roles import Role
from ..errors import OK, CardctlError, InternalError, InvalidInput, Interrupted, result_exit_code
from .. import i18n
from ..i18n import N_, _, localize
from ..render.formats import literal
from .console import err
from .options import quiet_option


@dataclass
class Runtime:
    """Set by the top-level callback; opens the database on first use."""

    db: str | None = None
    key_file: str | None = None
    operator: str | None = None
    channel: str = "counter"
    terminal: str | None = None  # verify/change-pin --terminal: written on every event of the command
    clock: Clock = system_clock
    _context: object = field(default=None, repr=False)
    _checked: Role = field(default=Role.AUDITOR, repr=False)
    command: str = "cardctl"  # set by runtime(ctx): named in refusals

    def settings(self) -> Settings:
        settings = Settings.resolve(self.db, self.key_file, self.operator, self.channel)
        settings.terminal = self.terminal
        return settings

    def context(self, channel: str | None = None, role: Role = Role.ADMIN, read_only: bool = False):
        """The database, opened once the acting login is found to hold ``role`` (exit 6 if not).

        Every command names the role it needs; one that forgets gets admin, never less.
        ``read_only``: opened read-only whatever the role (a --dry-run cannot write by mistake).
        """
        from ..services.access import open_for

        if channel is not None:
            self.channel = check_channel(channel)
        if self._context is None or not self._checked.allows(role):
            self._context = open_for(self.settings(), self.clock, role, self.command, read_only)
            self._checked = role
        else:
            self._context.settings.channel = self.channel
        return self._context

    def quick_context(self, role: Role, channel: str | None = None, read_only: bool = False):
        """The context of the sqlite3 start-up path (``Context.open_quick``) for a command that
        only reads, or None where that path cannot serve (then use ``context``). A read it meets
        mid-command that it cannot answer runs on ``context(role=role, read_only=read_only)``."""
        from ..services.context import Context

        if channel is not None:
            self.channel = check_channel(channel)
        if self._context is not None:
            return None
        return Context.open_quick(self.settings(), self.clock, role,
                                  fallback=lambda: self.context(role=role, read_only=read_only))


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


class _NamedInUsageErrors:
    """Click's parser raises some usage errors (an option given a value it takes none of)
    without the command's context; give them it, so the hint names the command's --help."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except typer._click.exceptions.UsageError as error:
            if error.ctx is None:
                error.ctx = ctx
            raise


class HelpCommand(_NamedInUsageErrors, _LocalizedHelp, typer.core.TyperCommand):
    """Every cardctl command (``App.command``); each takes -q/--quiet."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(quiet_option(_quiet_flag))


class HelpGroup(_NamedInUsageErrors, _LocalizedHelp, typer.core.TyperGroup):
    """Every cardctl group (``App``): policy, audit, operator."""


class App(typer.Typer):
    """``typer.Typer`` whose groups and commands show --help in the chosen language."""

    def __init__(self, *args, cls: type[HelpGroup] = HelpGroup, **kwargs) -> None:
        super().__init__(*args, cls=cls, **kwargs)

    def command(self, *args, cls: type[HelpCommand] = HelpCommand, **kwargs):
        return super().command(*args, cls=cls, **kwargs)


class RootGroup(HelpGroup):
    """The top-level group: ``--lang`` is global, yet may also be typed after the command
    (``cardctl status A10000001 --lang zh``); it is moved in front before parsing.

    Every usage error of every command and group is raised while the root parses its
    arguments or invokes the command: both are wrapped here, so click's four-line English
    block becomes a cardctl message in the chosen language (cli/usage.py), exit 2."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        args = hoist_lang(args)
        if not ctx.resilient_parsing:  # shell completion stays English
            preview_language(args)
        return super().parse_args(ctx, args)

    def make_context(self, *args, **kwargs):
        with usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with usage_errors():
            return super().invoke(ctx)


@contextlib.contextmanager
def usage_errors():
    try:
        yield
    except typer._click.exceptions.NoArgsIsHelpError:
        raise  # bare 'cardctl' (or a bare group): click prints the help, as --help would
    except typer._click.exceptions.UsageError as error:
        from .usage import to_cardctl

        raise fail(to_cardctl(error)) from None


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
    """An operator's --channel: one of the documented five. ``system`` and ``cron`` are set by
    cardctl itself (the sweep), so nobody can make an action look like the machine's."""
    if channel not in OPERATOR_CHANNELS:
        raise InvalidInput(_("channel must be one of {channels}, not {channel!r}").format(
            channels=", ".join(OPERATOR_CHANNELS), channel=channel))
    return channel


_quiet = False  # -q: no confirmation or summary lines; set per run, like the language


def set_quiet(quiet: bool) -> None:
    global _quiet
    _quiet = quiet


def _quiet_flag(_ctx, _param, value: bool) -> bool:
    if value:
        set_quiet(True)
    return value


def quiet() -> bool:
    return _quiet


def shown(text) -> str:
    """Every message on its way to the screen: in the chosen language, literal, and with anything
    shaped like an ID number masked, whichever option or file it was typed into (docs/security.md)."""
    from ..domain.identity import mask_id_shapes

    return mask_id_shapes(literal(localize(text)))


def message(text: str) -> None:
    """A confirmation or summary on stderr, shown literally, in the chosen language; -q drops it."""
    if not _quiet:
        err.print(shown(text), markup=False)


def warn(text: str) -> None:
    """What a person must see on stderr even with -q (a row that failed, a key to back up)."""
    err.print(shown(text), markup=False)


def fail(error: CardctlError) -> typer.Exit:
    err.print(f"cardctl: {shown(error.message)}", markup=False, style="red")
    hint = getattr(error, "hint", None)  # a usage error: where to read how it is used
    if hint:
        err.print(shown(hint), markup=False)
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
            raise fail(Interrupted()) from None
        except BrokenPipeError:
            sys.stderr.close()  # the reader went away (e.g. | head); nothing more to say
            raise typer.Exit(OK) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
            if os.environ.get("CARDCTL_DEBUG"):
                raise
            raise fail(InternalError(_("internal error: {kind}: {error} (set CARDCTL_DEBUG=1 for details)").format(
                kind=type(exc).__name__, error=literal(exc)))) from None

    return wrapper


def finish(result: str) -> typer.Exit:
    """The exit of a command that reports one result for its one card (``verify``): the code
    errors.ROW_CONDITION gives that result, after the result itself was printed."""
    return typer.Exit(result_exit_code(result))


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

    from .confirm import cancellable

    pins = []
    with cancellable():  # Ctrl-C at a PIN prompt: "cancelled; nothing changed", exit 130
        for prompt in prompts:
            pin = parse_pin(getpass.getpass(f"{localize(prompt)}: "))
            if confirm_new and prompt is prompts[-1]:
                again = _("{prompt} again").format(prompt=prompt)
                if getpass.getpass(f"{localize(again)}: ").rstrip("\r\n") != pin:
                    raise InvalidInput(_("the two entries of the new PIN differ"))
            pins.append(pin)
    return pins


FIRST_YEAR, LAST_YEAR = 1900, 9998  # the times an option accepts (docs: README, "Times")


def parse_time(raw: str | None, option: str, zone: str) -> datetime | None:
    """An ISO-8601 option value as aware UTC; without an offset it is local time in ``zone``."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(_("{option} {value!r} is not an ISO-8601 time (e.g. 2026-11-23T08:00:00Z)").format(
            option=option, value=raw)) from None
    # a year that reaches the edge of what datetime holds overflows in the arithmetic of
    # --as-of replays and report periods; no card record is that old or that far ahead
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise InvalidInput(_("{option} {value!r} is out of range: times from {first} to {last} are accepted").format(
            option=option, value=raw, first=f"{FIRST_YEAR}-01-01", last=f"{LAST_YEAR}-12-31"))
    if moment.tzinfo is None:
        from zoneinfo import ZoneInfo

        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.astimezone(timezone.utc)
