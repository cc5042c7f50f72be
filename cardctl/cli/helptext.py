"""--help in a language other than English, loaded only to print it (cli/common.py's ``_LocalizedHelp``).

The layout is click's: usage, description, arguments and options, subcommands, examples. The
texts are the same English ones click would print, looked up in the catalog with ``tr``: a
command's docstring, each parameter's help, the examples' heading and click's own words, which
are listed here for the catalog. Lines are wrapped by display width, a Chinese character
taking two columns, and may break between any two Chinese characters.
"""

from __future__ import annotations

import copy
import re

from rich.cells import cell_len

from ..i18n import N_, tr

USAGE, ARGUMENTS, OPTIONS, COMMANDS = N_("Usage: "), N_("Arguments"), N_("Options"), N_("Commands")
# click's words after a parameter's help, "[default: table; required]", each translated
EXTRAS = {"default: ": N_("default: {default}"), "env var: ": N_("env var: {var}")}
REQUIRED = N_("required")
# the help of the options click and Typer add themselves
BUILT_IN = (N_("Show this message and exit."), N_("Install completion for the current shell."),
            N_("Show completion for the current shell, to copy it or customize the installation."))

WIDE = "\u2e80-\uffff"
# what a line may break before: click's "[default: ...]" as a whole, a Chinese character (with the
# punctuation that must stay next to it), a run of other characters, or white space
TOKEN = re.compile(rf"\[[^\]\n]*\]|[（《“]*(?:[{WIDE}]|[^\s{WIDE}]+)[，。；：、）》”！？]*|\s+")
SENTENCE_END = "。"


def format_help(command, ctx, formatter) -> None:
    _usage(command, ctx, formatter)
    text = _paragraphs(tr(command.help)) if command.help else ""
    if text:
        formatter.write_paragraph()
        _write_text(formatter, text, formatter.current_indent + formatter.indent_increment)
    _options(command, ctx, formatter)
    if hasattr(command, "commands"):
        _commands(command, ctx, formatter)
    if command.epilog:
        formatter.write_paragraph()
        with formatter.indentation():
            formatter.write_text(_epilog(command.epilog))


def _usage(command, ctx, formatter) -> None:
    prefix = f"{tr(USAGE)}{ctx.command_path} "
    args = " ".join(command.collect_usage_pieces(ctx))
    formatter.write(_wrap(args, formatter.width, prefix, " " * cell_len(prefix)) + "\n")


def _options(command, ctx, formatter) -> None:
    arguments, options = [], []
    for param in command.get_params(ctx):
        record = help_record(param, ctx)
        if record is not None:
            (arguments if param.param_type_name == "argument" else options).append(record)
    for title, rows in ((ARGUMENTS, arguments), (OPTIONS, options)):
        if rows:
            _section(formatter, title, rows)


def _commands(group, ctx, formatter) -> None:
    rows = []
    for name in group.list_commands(ctx):
        sub = group.get_command(ctx, name)
        if sub is not None and not sub.hidden:
            rows.append((name, sub))
    if rows:
        limit = formatter.width - 6 - max(len(name) for name, _sub in rows)
        _section(formatter, COMMANDS, [(name, short_help(sub, limit)) for name, sub in rows])


def help_record(param, ctx) -> tuple[str, str] | None:
    """click's (names, help) of ``param`` with its help and click's words after it translated."""
    shown = copy.copy(param)  # the command keeps its English help for the next run
    shown.help = tr(param.help) if param.help else param.help
    record = shown.get_help_record(ctx)
    if record is None:
        return None
    names, text = record
    own = shown.help or ""
    extras = text[len(own):].strip()
    if extras.startswith("[") and extras.endswith("]"):
        text = "  ".join(part for part in (own, "[" + "；".join(map(_extra, extras[1:-1].split("; "))) + "]")
                         if part)
    return names, text


def _extra(word: str) -> str:
    if word == "required":
        return tr(REQUIRED)
    for prefix, template in EXTRAS.items():
        if word.startswith(prefix):
            return tr(template).format(default=word[len(prefix):], var=word[len(prefix):])
    return word  # a range such as 2<=x<=1000


def short_help(command, limit: int) -> str:
    """The first sentence of the translated help, as click shortens the English one."""
    text = tr(command.help) if command.help and not command.short_help else ""
    if not text or text == command.help:
        return command.get_short_help_str(limit)
    first = _paragraphs(text).split("\n\n", 1)[0]
    end = first.find(SENTENCE_END)
    first = first[:end + 1] if end >= 0 else first
    if cell_len(first) <= limit:
        return first
    while cell_len(first) > limit - 3:
        first = first[:-1]
    return first.rstrip("，、；： ") + "..."


def _epilog(epilog: str) -> str:
    """The examples with their heading translated; the command lines stay as they are."""
    lines = epilog.split("\n")
    heading = 1 if lines[0] == "\b" else 0
    lines[heading] = tr(lines[heading])
    return "\n".join(lines)


def _section(formatter, title: str, rows: list[tuple[str, str]]) -> None:
    """click's definition list under a heading, the second column wrapped by display width."""
    formatter.write_paragraph()
    indent = formatter.current_indent
    formatter.write(f"{'':>{indent}}{tr(title)}：\n")
    indent += formatter.indent_increment
    first_col = min(max(cell_len(name) for name, _text in rows), 30) + 2
    width = max(formatter.width - first_col - 2, 10)
    for name, text in rows:
        formatter.write(f"{'':>{indent}}{name}")
        if not text:
            formatter.write("\n")
            continue
        if cell_len(name) <= first_col - 2:
            formatter.write(" " * (first_col - cell_len(name)))
        else:
            formatter.write("\n" + " " * (first_col + indent))
        lines = _wrap(text, width).split("\n")
        formatter.write("".join(f"{line}\n" if n == 0 else f"{'':>{first_col + indent}}{line}\n"
                                for n, line in enumerate(lines)))


def _write_text(formatter, text: str, indent: int) -> None:
    pad = " " * indent
    formatter.write("\n\n".join(_wrap(paragraph, formatter.width, pad, pad) for paragraph in text.split("\n\n")))
    formatter.write("\n")


def _paragraphs(text: str) -> str:
    """Paragraphs separated by a blank line, each on one line: a line break inside one becomes
    a space between English words and nothing next to a Chinese character."""
    return "\n\n".join(re.sub(rf"\s*\n\s*(?=[{WIDE}])|(?<=[{WIDE}])\s*\n\s*", "", paragraph).replace("\n", " ")
                       for paragraph in re.split(r"\n\s*\n", text.strip()))


def _wrap(text: str, width: int, first: str = "", rest: str = "") -> str:
    """``text`` in lines of at most ``width`` columns (a longer word stands alone), the first
    starting with ``first``, the others with ``rest``."""
    lines, line, start, space = [], first, first, False
    for token in TOKEN.findall(text):
        if token.isspace():
            space = line != start
            continue
        joined = line + (" " if space else "") + token
        if cell_len(joined) > width and line != start:
            lines.append(line)
            line = start = rest
            joined = rest + token
        line, space = joined, False
    lines.append(line)
    return "\n".join(lines)
