"""Usage errors (unknown command or option, bad value, missing argument) as cardctl's own
one-line message plus a hint, in the chosen language, exit 2.

Click describes them in a four-line English block; this module, loaded only when one
happens, rewords each kind from the exception's fields (the option, the parameter, its
choices) so the message is a cardctl message like any other: ``cardctl: ...`` on stderr.
"""

from __future__ import annotations

import ast
import difflib
import re

from typer._click import exceptions as click_errors
from typer._click import types as click_types

from .. import i18n
from ..errors import UsageError
from ..i18n import N_, _, Msg
from ..render.formats import literal

# the value click quotes at the start of its message: "'nope' is not one of ..." / "0 is not in the range ..."
_VALUE = re.compile(r"^(?P<value>.+?) is not (?:one of|a valid|in the range|)")
_NO_SUCH_COMMAND = re.compile(r"""^No such command (?P<name>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_EXTRA = re.compile(r"^Got unexpected extra argument\(s\) \((?P<args>.*)\)$", re.S)
TYPE_NAMES = {"integer": N_("a whole number"), "int": N_("a whole number"), "float": N_("a number"),
              "boolean": N_("true or false"), "bool": N_("true or false")}


def to_cardctl(error: click_errors.UsageError) -> UsageError:
    """The cardctl error for a click usage error, its message naming what was wrong."""
    return UsageError(_describe(error), _("try '{command} --help'").format(command=_command_path(error)))


def _command_path(error: click_errors.UsageError) -> str:
    return error.ctx.command_path if error.ctx is not None else "cardctl"


def _name(param) -> str:
    """How the user typed it: '--status' (or '-o/--output'), an argument's metavar 'CARD_NO'."""
    if getattr(param, "opts", None) and param.param_type_name == "option":
        return "/".join(param.opts)
    return param.human_readable_name.upper()


def _choices(param) -> str | None:
    choices = getattr(param.type, "choices", None)
    if choices is None:
        return None
    return ", ".join(str(getattr(choice, "value", choice)) for choice in choices)


def _describe(error: click_errors.UsageError) -> Msg:
    if isinstance(error, click_errors.NoSuchOption):
        text = _("no such option: {option}").format(option=literal(error.option_name))
        if error.possibilities:
            text = _("{problem}; did you mean {options}?").format(
                problem=text, options=", ".join(sorted(error.possibilities)))
        return text
    if isinstance(error, click_errors.MissingParameter) and error.param is not None:
        name = _name(error.param)
        text = (_("missing option {name}") if error.param.param_type_name == "option"
                else _("missing argument {name}")).format(name=name)
        choices = _choices(error.param)
        return _("{problem}; choose one of {choices}").format(problem=text, choices=choices) if choices else text
    if isinstance(error, click_errors.BadParameter) and error.param is not None:
        return _bad_value(error)
    if isinstance(error, click_errors.BadOptionUsage):
        template = (_("option {option} takes no value") if "does not take a value" in error.message
                    else _("option {option} needs a value"))
        return template.format(option=error.option_name)
    unknown = _NO_SUCH_COMMAND.match(error.message)
    if unknown and error.ctx is not None:
        return _no_such_command(ast.literal_eval(unknown.group("name")), error.ctx)
    extra = _EXTRA.match(error.message)
    if extra:
        return _("unexpected extra argument(s): {args}").format(args=literal(extra.group("args")))
    if error.message == "Missing command.":
        return _("missing command")
    return _("{problem}").format(problem=literal(error.message))


def _no_such_command(name: str, ctx) -> Msg:
    commands = sorted(getattr(ctx.command, "commands", {}))
    text = _("no such command {name!r}").format(name=literal(name))
    close = difflib.get_close_matches(name, commands)
    if close:
        return _("{problem}; did you mean {commands}?").format(problem=text, commands=", ".join(close))
    return text


def _describe_range(bounds) -> Msg:
    low, high = bounds.min, bounds.max
    if low is not None and high is not None and not bounds.min_open and not bounds.max_open:
        return _("from {low} to {high}").format(low=low, high=high)
    if high is None and low is not None:
        return (_("more than {low}") if bounds.min_open else _("{low} or more")).format(low=low)
    if low is None and high is not None:
        return (_("less than {high}") if bounds.max_open else _("{high} or less")).format(high=high)
    return _("{problem}").format(problem=bounds._describe_range())


def _bad_value(error: click_errors.BadParameter) -> Msg:
    param, name = error.param, _name(error.param)
    found = _VALUE.match(error.message)
    value = literal(found.group("value")) if found else "?"
    choices = _choices(param)
    if choices is not None:
        return _("invalid value {value} for {name}: choose one of {choices}").format(
            value=value, name=name, choices=choices)
    if isinstance(param.type, click_types.IntRange | click_types.FloatRange):
        return _("invalid value {value} for {name}: it must be {range}").format(
            value=value, name=name, range=_describe_range(param.type))
    kind = TYPE_NAMES.get(getattr(param.type, "name", ""))
    if kind is not None:
        return _("invalid value {value} for {name}: it must be {kind}").format(
            value=value, name=name, kind=i18n.term(kind))
    return _("invalid value for {name}: {problem}").format(name=name, problem=literal(error.message))
