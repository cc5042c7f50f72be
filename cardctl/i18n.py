"""The language of tables and messages: English by default, Simplified Chinese on request.

Code writes every message in English as a template: ``_("card {card} not found").format(card=no)``.
``_`` returns a ``Msg``, a ``str`` whose value is the English text, which also remembers its
template and arguments. The English value is what the audit trail stores and what JSON, JSON
lines and CSV carry, so records and scripts are the same whatever the operator's language;
the CLI edge and the table renderer show a ``Msg`` in the chosen language with ``localize``.
``--help`` looks up its texts (option help marked with ``N_``, docstrings as they are) with
``tr`` when it is printed (cli/helptext.py).

The language is chosen once per run, by the top-level ``--lang`` option (or ``CARDCTL_LANG``),
else from LANGUAGE, LC_ALL, LC_MESSAGES and LANG as gettext reads them. The Chinese catalog
(``locale/zh_CN/LC_MESSAGES/cardctl.mo``) is loaded only when Chinese is chosen.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

ENGLISH, CHINESE = "en", "zh"
LANGUAGES = (ENGLISH, CHINESE)
DOMAIN = "cardctl"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
_CATALOG_LOCALE = {CHINESE: "zh_CN"}
# Traditional-Chinese locales are not served the Simplified catalog
_NOT_SIMPLIFIED = ("tw", "hk", "mo", "hant")

_language = ENGLISH
_catalog: Any = None  # gettext.GNUTranslations of _language, loaded on first use


class Msg(str):
    """English text that can be shown in the chosen language: ``localize(msg)``."""

    template: str
    params: dict[str, Any]
    context: str | None

    def __new__(cls, template: str, params: Mapping[str, Any] | None = None, context: str | None = None) -> "Msg":
        params = dict(params or {})
        text = super().__new__(cls, template.format(**params) if params else template)
        text.template, text.params, text.context = template, params, context
        return text

    def format(self, *args: Any, **params: Any) -> "Msg":  # type: ignore[override]
        if args:
            raise TypeError("message templates take named fields only: _('... {name}').format(name=...)")
        return Msg(self.template, params, self.context)

    def localized(self) -> str:
        if _language == ENGLISH:
            return str(self)
        template = tr(self.template, self.context)
        if not self.params:
            return template
        try:
            return template.format(**{name: localize(value) for name, value in self.params.items()})
        except (KeyError, IndexError, ValueError):  # a broken translation must not hide the message
            return str(self)


def _(template: str) -> Msg:
    """Mark an English message template for translation; fill it with ``.format(name=...)``."""
    return Msg(template)


def N_(text: str) -> str:
    """Mark a term (a status, a header) for the catalog without translating it here; see ``tr``."""
    return text


def NC_(context: str, text: str) -> str:
    """``N_`` for a term whose translation depends on what it names ('admin': a role or a lock)."""
    return text


def term(value: str, context: str | None = None) -> Msg:
    """A stored English term (status, lock kind, result) passed into a message, shown translated."""
    return Msg(value, context=context)


def terms(values: list[str]) -> Msg:
    """Stored terms joined with ', ' for a message ('pin, admin'), each shown translated."""
    names = [f"t{i}" for i, _value in enumerate(values)]
    return Msg(", ".join("{%s}" % name for name in names), {name: term(v) for name, v in zip(names, values)})


def tr(text: str, context: str | None = None) -> str:
    """A term or header marked with ``N_`` (or ``NC_`` with ``context``), in the chosen language."""
    if _language == ENGLISH or not text:
        return text
    catalog = _translations()
    return catalog.pgettext(context, text) if context else catalog.gettext(text)


def localize(value: Any) -> Any:
    """A ``Msg`` in the chosen language; any other value as it is."""
    return value.localized() if isinstance(value, Msg) else value


def language() -> str:
    return _language


def set_language(code: str) -> None:
    global _language, _catalog
    if code not in LANGUAGES:
        raise ValueError(f"unsupported language {code!r}")
    if code != _language:
        _language, _catalog = code, None


def _translations():
    global _catalog
    if _catalog is None:
        import gettext

        _catalog = gettext.translation(DOMAIN, LOCALE_DIR, languages=[_CATALOG_LOCALE[_language]], fallback=True)
    return _catalog


# --- choosing the language ------------------------------------------------------------------


def _match(tag: str) -> str | None:
    """'zh_CN.UTF-8' -> 'zh', 'en_GB' -> 'en', 'C' -> 'en'; None for a language cardctl lacks."""
    base = tag.split(".", 1)[0].split("@", 1)[0].strip().replace("-", "_").lower()
    if base in ("c", "posix") or base == "en" or base.startswith("en_"):
        return ENGLISH
    if base == "zh" or base.startswith("zh_"):
        parts = base.split("_")[1:]
        return None if any(part in _NOT_SIMPLIFIED for part in parts) else CHINESE
    return None


def parse_language(raw: str) -> str | None:
    """The value of ``--lang`` / ``CARDCTL_LANG``: en or zh (zh_CN, zh-CN and a locale name
    such as zh_CN.UTF-8 too); None when cardctl has no such language."""
    return _match(raw) if raw.strip() else None


def from_environment(environ: Mapping[str, str] | None = None) -> str:
    """The language gettext would pick: LANGUAGE (a colon list, first language cardctl has)
    unless the locale is C; else the first of LC_ALL, LC_MESSAGES, LANG that is set."""
    environ = os.environ if environ is None else environ
    locale_name = next((environ[name] for name in ("LC_ALL", "LC_MESSAGES", "LANG") if environ.get(name)), "")
    if environ.get("LANGUAGE") and locale_name.split(".", 1)[0] not in ("C", "POSIX"):
        for tag in environ["LANGUAGE"].split(":"):
            found = _match(tag) if tag else None
            if found:
                return found
    return (_match(locale_name) if locale_name else None) or ENGLISH
