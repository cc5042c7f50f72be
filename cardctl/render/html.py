"""A report as one self-contained HTML page: inline CSS, inline SVG charts, every value escaped.

The page loads nothing: no script, no external style sheet, font or image, and a
Content-Security-Policy that forbids them anyway, so a name that slipped past every
check could neither run nor call out. Every value from the database goes through
``literal`` (control and bidi characters become visible escapes) and then
``html.escape``; the charts are drawn here as SVG rectangles, one per bar segment.

What a person reads (headings, captions, legends, axis labels, headers, terms, durations) is in
the chosen language, as in a table (``i18n``, ``labels``); the record's keys and values stay English.
"""

from __future__ import annotations

import html
import math
from datetime import datetime, timedelta
from typing import Any, Sequence
from zoneinfo import ZoneInfo

from ..i18n import CHINESE, ENGLISH, N_, _, language, localize, tr
from .formats import literal
from .labels import duration, header, readable, value, worded_durations

KIND_COLOURS = (("pin", "#c0392b"), ("arrears", "#e67e22"), ("admin", "#2c6fbb"))
CAUSE_COLOURS = {"expired": "#7f8c8d", "unlocked": "#27ae60", "reset": "#8e44ad", "replaced": "#34495e"}
MAX_DAYS_DRAWN = 400  # beyond this a day axis shows only the days that have data
MAX_TABLE_ROWS = 500
TIME_COLUMNS = frozenset({"first", "last", "since", "until", "as_of", "generated_at", "started_at", "ended_at"})
HTML_LANG = {ENGLISH: "en", CHINESE: "zh-CN"}
PER_DAY = {"opened": N_("Locks opened per day, by kind"), "ended": N_("Locks ended per day, by kind")}

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC","Microsoft YaHei",sans-serif;
 color:#1d2330;background:#fff;margin:24px auto;max-width:1100px;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dde1e8}
.meta{color:#566074;margin:0 0 16px}.charts{display:grid;grid-template-columns:1fr;gap:18px}
figure{margin:0;border:1px solid #dde1e8;border-radius:6px;padding:10px 12px}
figcaption{font-weight:600;margin-bottom:4px}.key{display:inline-block;margin-right:14px;color:#3b4457}
.key i{display:inline-block;width:11px;height:11px;margin-right:5px;vertical-align:-1px;border-radius:2px}
svg{display:block;width:100%;height:auto}svg text{font-size:11px;fill:#566074}
table{border-collapse:collapse;margin:4px 0 8px;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #e7eaf0;padding:3px 10px;text-align:left;vertical-align:top}
th{background:#f4f6fa;font-weight:600}td.num{text-align:right}.none,.more{color:#7a8397;font-style:italic}
dl.headline{display:grid;grid-template-columns:repeat(auto-fill,minmax(190px,1fr));gap:10px;margin:0 0 20px}
dl.headline div{background:#eef3fb;border-radius:6px;padding:8px 12px}dl.headline dt{color:#3b4457;font-weight:600}
dl.headline dd{margin:0}dl.headline dd.figure{font-size:24px;font-weight:700;font-variant-numeric:tabular-nums}
dl.headline dd.parts{color:#566074;font-size:12px}
tr.flagged td{background:#fdecea;color:#8e1b10;font-weight:600}tr.flagged td:first-child{box-shadow:inset 4px 0 #c0392b}
td.flag::before{content:"\\26A0\\FE0E  "}
"""


def _e(value: Any) -> str:
    """Any value as safe HTML text: visible escapes for control and bidi characters, then entities."""
    return html.escape(literal(value), quote=True)


def _local(iso_utc: str | None, zone: ZoneInfo) -> str:
    if not iso_utc:
        return "-"
    return datetime.fromisoformat(iso_utc.replace("Z", "+00:00")).astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _nice_step(top: int) -> int:
    """A tick step of 1, 2 or 5 times a power of ten giving at most about 5 ticks."""
    raw = max(1.0, top / 5)
    power = 10 ** math.floor(math.log10(raw))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def bar_chart(labels: Sequence[str], series: Sequence[tuple[str, str, Sequence[int]]],
              width: int = 1040, height: int = 250) -> str:
    """Stacked bars, one per label; ``series`` is (name, colour, values). Each drawn segment is
    a ``rect.bar`` with a tooltip naming its label, series and value."""
    left, right, top, bottom = 52, 12, 12, 64
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for _, _, values in series) for i in range(len(labels))]
    parts = [f'<svg viewBox="0 0 {width} {height}" role="img" preserveAspectRatio="xMinYMin meet">']
    if not labels or not any(totals):
        parts.append(f'<text x="{left}" y="{top + plot_h // 2}">{_e(tr(N_("no data in this period")))}</text></svg>')
        return "".join(parts)
    step = _nice_step(max(totals))
    ceiling = step * math.ceil(max(totals) / step)
    scale = plot_h / ceiling
    for tick in range(0, ceiling + 1, step):
        y = top + plot_h - tick * scale
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e7eaf0"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    slot = plot_w / len(labels)
    bar_w = max(1.0, slot * 0.78)
    every = max(1, math.ceil(len(labels) / 24))  # at most ~24 axis labels
    for i, label in enumerate(labels):
        x, base = left + i * slot + (slot - bar_w) / 2, top + plot_h
        for name, colour, values in series:
            value = values[i]
            if value <= 0:
                continue
            h = value * scale
            base -= h
            parts.append(f'<rect class="bar" x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                         f'fill="{colour}"><title>{_e(label)}: {_e(name)} {value}</title></rect>')
        if i % every == 0:
            cx, cy = left + i * slot + slot / 2, top + plot_h + 12
            parts.append(f'<text x="{cx:.1f}" y="{cy:.1f}" text-anchor="end" '
                         f'transform="rotate(-40 {cx:.1f} {cy:.1f})">{_e(label)}</text>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#8a93a6"/>')
    parts.append("</svg>")
    return "".join(parts)


def _figure(caption: str, chart: str, series: Sequence[tuple[str, str, Sequence[int]]]) -> str:
    keys = "".join(f'<span class="key"><i style="background:{colour}"></i>{_e(name)}</span>'
                   for name, colour, _ in series)
    return f"<figure><figcaption>{_e(caption)}</figcaption><div>{keys}</div>{chart}</figure>"


def _days(period: dict, zone: ZoneInfo, rows: list[dict]) -> list[str]:
    """Every local day of the period (so quiet days show as gaps), or only those with data."""
    first = datetime.fromisoformat(period["since"].replace("Z", "+00:00")).astimezone(zone).date()
    last = (datetime.fromisoformat(period["until"].replace("Z", "+00:00")) - timedelta(microseconds=1)
            ).astimezone(zone).date()
    if (last - first).days >= MAX_DAYS_DRAWN:
        return [row["day"] for row in rows]
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _charts(record: dict, zone: ZoneInfo) -> list[str]:
    sections, figures = record["sections"], []
    if "locks_per_day" in sections:
        rows = sections["locks_per_day"]
        by_day = {row["day"]: row for row in rows}
        days = _days(record["period"], zone, rows)
        for what in ("opened", "ended"):
            series = [(tr(kind), colour, [by_day.get(day, {}).get(f"{kind}_{what}", 0) for day in days])
                      for kind, colour in KIND_COLOURS]
            figures.append(_figure(tr(PER_DAY[what]), bar_chart([d[5:] for d in days], series), series))
    if "duration_buckets" in sections:
        rows = sections["duration_buckets"]
        series = [(tr(kind), colour, [row[kind] for row in rows]) for kind, colour in KIND_COLOURS]
        figures.append(_figure(tr(N_("How long locks lasted (locks that ended in the period)")),
                               bar_chart([value("duration", row["duration"]) for row in rows], series, height=230),
                               series))
    if "pin_lock_endings" in sections:
        rows = sections["pin_lock_endings"]
        causes = [value("ended_by", row["ended_by"]) for row in rows]
        series = [(cause, CAUSE_COLOURS.get(row["ended_by"], "#95a5a6"),
                   [row["locks"] if other is row else 0 for other in rows]) for cause, row in zip(causes, rows)]
        figures.append(_figure(tr(N_("How PIN locks ended")), bar_chart(causes, series, height=220), series))
    if "actions" in sections:
        done: dict[str, int] = {}
        refused: dict[str, int] = {}
        for row in sections["actions"]:
            done[row["channel"]] = done.get(row["channel"], 0) + row["events"] - row["refused"]
            refused[row["channel"]] = refused.get(row["channel"], 0) + row["refused"]
        channels = sorted(done)
        series = [(tr(N_("done")), "#2c6fbb", [done[c] for c in channels]),
                  (tr(N_("refused")), "#c0392b", [refused[c] for c in channels])]
        figures.append(_figure(tr(N_("Actions per channel")),
                               bar_chart([value("channel", c) for c in channels], series, height=220), series))
    return figures


def _heading(name: str) -> str:
    """A column's header: in English the record's key as this page has always shown it."""
    return name.replace("_", " ") if language() == ENGLISH else header(name)


def _table(rows: list[dict], zone: ZoneInfo) -> str:
    if not rows:
        return f'<p class="none">{_e(tr(N_("none")))}</p>'
    head = "".join(f"<th>{_e(_heading(name))}</th>" for name in rows[0])
    body = []
    for row in rows[:MAX_TABLE_ROWS]:
        cells = []
        for name, shown in worded_durations(row).items():
            if name in TIME_COLUMNS and isinstance(shown, str):
                shown = _local(shown, zone)
            if name == "flagged" and shown is True:  # a source past --min-cards (report sources)
                cells.append(f'<td class="flag">{_e(value(name, shown))}</td>')
            elif name == "terminal" and shown is None:  # wrong PINs typed without --terminal
                cells.append(f'<td class="none">{_e(tr(N_("(none)")))}</td>')
            elif isinstance(shown, (int, float)) and not isinstance(shown, bool):
                cells.append(f'<td class="num">{_e(shown)}</td>')
            elif isinstance(shown, dict):  # a run's count per result
                cells.append(f"<td>{_e(readable(shown))}</td>")
            else:
                cells.append(f"<td>{_e('-' if shown is None else localize(value(name, shown)))}</td>")
        body.append(('<tr class="flagged">' if row.get("flagged") is True else "<tr>") + "".join(cells) + "</tr>")
    more = ""
    if len(rows) > MAX_TABLE_ROWS:
        hidden = _("… and {count} more rows (cardctl report -o json has them all)").format(
            count=len(rows) - MAX_TABLE_ROWS)
        more = f'<p class="more">{_e(localize(hidden))}</p>'
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


def _figure_box(label: str, figure: str, parts: list[tuple[str, Any]]) -> str:
    shown = " · ".join(f"{name} {localize(amount)}" for name, amount in parts)
    return (f"<div><dt>{_e(label)}</dt><dd class=\"figure\">{_e(figure)}</dd>"
            f"<dd class=\"parts\">{_e(shown)}</dd></div>")


def headline(record: dict) -> str:
    """The figures an auditor reads first (services/headline.py), before any chart: each a label,
    one big number and its parts; a figure whose section was left out is not shown."""
    found = record.get("headline") or {}
    kinds = [kind for kind, _colour in KIND_COLOURS]
    boxes = []
    if "cards" in found:
        cards = found["cards"]
        boxes.append(_figure_box(tr(N_("Cards")), str(cards["total"]),
                                 [(tr(status), cards[status]) for status in ("active", "pending", "lost", "void")]))
    if "locked" in found:
        locked = found["locked"]
        label = N_("Locked then") if record["period"]["as_of"] else N_("Locked now")
        boxes.append(_figure_box(tr(label), str(locked["cards"] if locked["cards"] is not None else "-"),
                                 [(tr(kind), locked[kind]) for kind in kinds]))
    for what, label in (("opened", N_("Locks opened in the period")), ("ended", N_("Locks ended in the period"))):
        if f"locks_{what}" in found:
            counts = found[f"locks_{what}"]
            boxes.append(_figure_box(tr(label), str(counts["total"]), [(tr(kind), counts[kind]) for kind in kinds]))
    if "median_locked" in found:
        medians = found["median_locked"]
        pin = medians.get("pin", {}).get("median_s")
        boxes.append(_figure_box(tr(N_("Median time a PIN lock lasted")), localize(duration(pin)),
                                 [(tr(kind), duration(medians[kind]["median_s"])) for kind in kinds[1:]
                                  if kind in medians]))
    if "arrears" in found:
        owed = found["arrears"]
        boxes.append(_figure_box(tr(N_("Arrears outstanding")),
                                 localize(_("{amount} yuan").format(amount=owed["owed"])),
                                 [(tr(N_("units")), owed["units"]), (tr(N_("holders")), owed["holders"])]))
    return f'<dl class="headline">{"".join(boxes)}</dl>' if boxes else ""


def render_report(record: dict, titles: dict[str, str] | None = None) -> str:
    """The whole page for a report record ({"period": ..., "sections": ...}) in the chosen language;
    ``titles`` are the section headings, already in it."""
    period = record["period"]
    zone = ZoneInfo(period["timezone"])
    titles = titles or {}
    scope = _("region {region}").format(region=period["region"]) if period["region"] else _("all regions")
    moment = _("as of {time}").format(time=_local(period["as_of"], zone)) if period["as_of"] else _("now")
    meta = localize(_("Cards and arrears: {scope}, {moment}. Locks and events from {since} to {until} ({tz}). "
                      "Generated {generated}.").format(
        scope=scope, moment=moment, since=_local(period["since"], zone), until=_local(period["until"], zone),
        tz=period["timezone"], generated=_local(period["generated_at"], zone)))
    heading = _e(tr(N_("cardctl report")))
    tables = "".join(f"<h2>{_e(titles.get(name, name.replace('_', ' ').capitalize()))}</h2>{_table(rows, zone)}"
                     for name, rows in record["sections"].items())
    return (f"<!DOCTYPE html>\n<html lang=\"{HTML_LANG[language()]}\"><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{heading}</title><style>{STYLE}</style></head><body>"
            f"<h1>{heading}</h1><p class=\"meta\">{_e(meta)}</p>{headline(record)}"
            f"<div class=\"charts\">{''.join(_charts(record, zone))}</div>{tables}</body></html>\n")
