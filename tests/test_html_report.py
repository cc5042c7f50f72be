"""``cardctl report --html``: one self-contained page, hostile data shown as text, and charts a real
browser draws. The browser is Debian's headless Chromium (root needs --no-sandbox); with CI=true a
missing browser fails the run, locally it skips."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from cardctl.domain.identity import make_id_number
from cardctl.render.html import KIND_COLOURS, render_report
from conftest import IN_CI
from helpers_security import Office

HOSTILE = Path(__file__).resolve().parent / "hostile"
WRONG, PIN = "271828", "583920"
PIN_COLOUR = tuple(int(dict(KIND_COLOURS)["pin"][i:i + 2], 16) for i in (1, 3, 5))
HEADLINE_COLOUR = (0xEE, 0xF3, 0xFB)  # dl.headline div's background in render/html.py
# names the corpus accepts as given (tests/hostile/corpus.json), and markup aimed at a browser
NAMES = sorted({name for entry in json.loads((HOSTILE / "corpus.json").read_text(encoding="utf-8"))
                for name in entry.get("names", {}).values()}) + [
    "<script>alert('name')</script>", '"><img src=x onerror=alert(1)>', "</td></tr></table><h1>x", "a & b <i>"]
BIDI_NAME = "abc\u202edef\x1b[31m"  # written behind cardctl's back: parse_name would refuse it
OPERATOR = "<b>clerk</b>&amp;"
ZH_PAGE = "report.zh.html"
CJK = re.compile(r"[\u4e00-\u9fff]")
BANNED_TAGS = {"script", "img", "link", "iframe", "object", "embed", "base", "image", "use", "foreignobject",
               "audio", "video", "source", "form", "input", "a"}


class Tags(HTMLParser):
    """Every tag, attribute and text node of a page, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, attrs))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def page(engine, tmp_path_factory) -> Path:
    """A report over cards held by hostile names, each locked twice, written with --html
    (once per engine); beside it the same report with --lang zh (``zh_page``)."""
    from conftest import FakeClock, empty_database

    folder = tmp_path_factory.mktemp("html")
    database = empty_database(engine, folder, "html_report")
    out = folder / "report.html"
    with pytest.MonkeyPatch.context() as monkeypatch:
        office = Office(database, folder, monkeypatch)
        office.clock = clock = FakeClock()
        office.ok("init")
        for n, name in enumerate(NAMES + ["placeholder"]):
            card_no = f"X{n:08d}"
            id_number = make_id_number("110105", date(1970, 1, 1) + timedelta(days=n), 100 + n)
            office.ok("issue", card_no, "--name", name, "--id-number", id_number, "--region", "110105")
            office.ok("activate", card_no, "--id-number", id_number, "--pin-stdin", input=PIN + "\n")
            for _ in range(2):  # locked, and 25 hours later the lock has ended: two locks a card
                for _ in range(3):
                    office("verify", card_no, "--pin-stdin", input=WRONG + "\n", env={"CARDCTL_OPERATOR": OPERATOR})
                clock.advance(hours=25)
        database.run_sql("UPDATE holders SET name = :name WHERE id = (SELECT holder_id FROM cards "
                         "WHERE card_no = :card)", name=BIDI_NAME, card=f"X{len(NAMES):08d}")
        report = ("report", "--since", "2026-11-01T00:00Z", "--min-locks", "2", "--html")
        chinese = office("--lang", "zh", *report, str(out.with_name(ZH_PAGE)))
        result = office(*report, str(out))  # the English run last leaves the process in English
        office.close()
    assert chinese.exit_code == 0, chinese.stderr
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and str(out) in result.stderr
    return out


@pytest.fixture(scope="module")
def zh_page(page) -> Path:
    return page.with_name(ZH_PAGE)


def test_the_page_is_self_contained(page):
    text = page.read_text(encoding="utf-8")
    assert not re.search(r"https?:|//[a-z0-9]|@import|url\(", text, re.IGNORECASE)
    parsed = Tags()
    parsed.feed(text)
    assert not {tag for tag, _ in parsed.tags} & BANNED_TAGS
    for tag, attrs in parsed.tags:
        for name, value in attrs:
            assert name not in ("src", "href", "srcset", "action", "xlink:href") and not name.startswith("on"), tag
    (csp,) = [dict(attrs)["content"] for tag, attrs in parsed.tags
              if tag == "meta" and dict(attrs).get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script" not in csp


def test_hostile_names_are_text_not_markup(page):
    text = page.read_text(encoding="utf-8")
    parsed = Tags()
    parsed.feed(text)
    shown = "".join(parsed.text)
    for name in NAMES:
        assert name in shown, name
    assert OPERATOR in shown
    assert "\u202e" not in text and "\x1b" not in text
    assert "abc\\u202edef\\x1b[31m" in shown  # control and bidi characters shown as escapes
    assert "&lt;script&gt;alert(&#x27;name&#x27;)&lt;/script&gt;" in text


class Labels(HTMLParser):
    """The texts cardctl itself writes into a page, as (kind, text): title, heading, meta, note,
    caption, legend, axis, chart (a chart's own message) and header; no cell, tick or tooltip."""

    VOID = {"meta", "br", "hr", "img", "link", "input"}
    KINDS = {"title": "title", "h1": "heading", "h2": "heading", "figcaption": "caption", "span": "legend",
             "th": "header"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []
        self.open: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.open.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if self.open and self.open[-1][0] == tag:
            self.open.pop()

    def handle_data(self, data):
        if data.strip() and self.open:
            kind = self.kind(*self.open[-1])
            if kind:
                self.found.append((kind, data.strip()))

    def kind(self, tag: str, attrs: dict) -> str | None:
        if tag == "title" and any(name == "rect" for name, _attrs in self.open):
            return None  # a bar's tooltip
        if tag == "text":
            return "axis" if "transform" in attrs else None if attrs.get("text-anchor") == "end" else "chart"
        if tag == "p":
            return {"meta": "meta", "none": "note", "more": "note"}.get(attrs.get("class"))
        return self.KINDS.get(tag)


def labels_of(page: Path, kind: str | None = None) -> list:
    parsed = Labels()
    parsed.feed(page.read_text(encoding="utf-8"))
    return parsed.found if kind is None else [text for found, text in parsed.found if found == kind]


def table_under(page: Path, heading: str) -> list[dict[str, str]]:
    """The rows of the table under the section heading ``heading``, by column header."""
    section = page.read_text(encoding="utf-8").split(f"<h2>{heading}</h2>", 1)[1].split("</table>", 1)[0]
    headers = re.findall(r"<th>([^<]*)</th>", section)
    rows = re.findall(r"<tr>(.*?)</tr>", section)[1:]
    return [dict(zip(headers, re.findall(r"<td[^>]*>([^<]*)</td>", row))) for row in rows]


ENGLISH_TERMS = {"pin", "arrears", "admin", "expired", "unlocked", "reset", "replaced", "counter", "active",
                 "none", "done", "refused", "up to 1h", "1h-6h", "24h-48h"}
DURATION = re.compile(r"\d+[dhms]( \d+[hms])?")


def test_the_chinese_page_has_chinese_titles_and_no_english_label_left(zh_page):
    assert zh_page.read_text(encoding="utf-8").startswith('<!DOCTYPE html>\n<html lang="zh-CN">')
    assert labels_of(zh_page, "caption") == ["每日新增锁定（按类型）", "每日结束锁定（按类型）",
                                             "锁定持续时长（期间内结束的锁定）", "密码锁定的解除方式", "各渠道的操作次数"]
    assert labels_of(zh_page, "title") == ["cardctl 报表"]
    assert "锁定 2 次及以上的卡" in labels_of(zh_page, "heading")
    assert {"密码锁定", "欠费锁定", "管理锁定", "已到期", "已完成", "已拒绝"} <= set(labels_of(zh_page, "legend"))
    assert {"卡号", "持卡人", "中位数", "解除方式"} <= set(labels_of(zh_page, "header"))
    for kind, text in labels_of(zh_page):
        if not (kind == "axis" and re.fullmatch(r"\d\d-\d\d", text)):  # days are numbers in every language
            assert CJK.search(text), (kind, text)
    parsed = Tags()
    parsed.feed(zh_page.read_text(encoding="utf-8"))
    shown = {text.strip() for text in parsed.text}
    assert not shown & ENGLISH_TERMS
    assert not [text for text in shown if DURATION.fullmatch(text)]
    durations = table_under(zh_page, "锁定持续时长（期间内结束的锁定）")
    assert [row["类型"] for row in durations] == ["密码锁定", "欠费锁定", "管理锁定"]
    assert re.fullmatch(r"\d+(天|小时|分)\d+(小时|分|秒)", durations[0]["中位数"]), durations[0]


def test_the_english_page_keeps_its_english_labels(page):
    assert page.read_text(encoding="utf-8").startswith('<!DOCTYPE html>\n<html lang="en">')
    assert labels_of(page, "caption") == [
        "Locks opened per day, by kind", "Locks ended per day, by kind",
        "How long locks lasted (locks that ended in the period)", "How PIN locks ended", "Actions per channel"]
    assert labels_of(page, "title") == ["cardctl report"]
    assert "Cards locked 2 or more times" in labels_of(page, "heading")
    assert {"pin", "arrears", "admin", "expired", "done", "refused"} <= set(labels_of(page, "legend"))
    assert {"card no", "holder name", "median", "ended by"} <= set(labels_of(page, "header"))
    assert {"up to 1h", "24h-48h", "expired", "counter"} <= set(labels_of(page, "axis"))
    (meta,) = labels_of(page, "meta")
    assert meta.startswith("Cards and arrears: all regions, now. Locks and events from 2026-11-01 08:00 to ")
    assert not [text for _kind, text in labels_of(page) if CJK.search(text)]
    durations = table_under(page, "How long locks lasted (locks that ended in the period)")
    assert [row["kind"] for row in durations] == ["pin", "arrears", "admin"]
    assert DURATION.fullmatch(durations[0]["median"]), durations[0]


def test_only_the_words_differ_between_the_english_and_the_chinese_page(page, zh_page):
    """Every tag and attribute (classes, colours, geometry) is the same: the language is in the text."""
    english, chinese = Tags(), Tags()
    english.feed(page.read_text(encoding="utf-8"))
    chinese.feed(zh_page.read_text(encoding="utf-8"))
    assert english.tags[0] == ("html", [("lang", "en")]) and chinese.tags[0] == ("html", [("lang", "zh-CN")])
    assert english.tags[1:] == chinese.tags[1:]


def headline_of(page: Path) -> dict[str, tuple[str, str]]:
    """The headline figures: label -> (figure, parts)."""
    text = page.read_text(encoding="utf-8")
    block = re.search(r'<dl class="headline">(.*?)</dl>', text).group(1)
    return {label: (figure, parts) for label, figure, parts in re.findall(
        r'<div><dt>([^<]*)</dt><dd class="figure">([^<]*)</dd><dd class="parts">([^<]*)</dd></div>', block)}


def test_the_page_opens_with_the_headline_figures_before_any_chart(page):
    text = page.read_text(encoding="utf-8")
    assert text.index('<p class="meta">') < text.index('<dl class="headline">') < text.index("<svg")
    figures = headline_of(page)
    assert list(figures) == ["Cards", "Locked now", "Locks opened in the period", "Locks ended in the period",
                             "Median time a PIN lock lasted", "Arrears outstanding"]
    cards = len(NAMES) + 1  # every card locked twice, each lock ended 24 h later by the clock
    assert figures["Cards"] == (str(cards), f"active {cards} · pending 0 · lost 0 · void 0")
    assert figures["Locked now"] == ("0", "pin 0 · arrears 0 · admin 0")
    assert figures["Locks opened in the period"] == (str(2 * cards), f"pin {2 * cards} · arrears 0 · admin 0")
    assert figures["Locks ended in the period"] == (str(2 * cards), f"pin {2 * cards} · arrears 0 · admin 0")
    assert figures["Median time a PIN lock lasted"][0] == "1d 0h"
    assert figures["Arrears outstanding"] == ("0.00 yuan", "units 0 · holders 0")


def test_the_chinese_headline_is_chinese(zh_page):
    figures = headline_of(zh_page)
    assert list(figures) == ["卡数", "当前锁定", "期间内新增锁定", "期间内结束锁定", "密码锁定持续时长中位数", "未缴欠费"]
    assert figures["密码锁定持续时长中位数"][0] == "1天0小时"
    assert figures["未缴欠费"][0] == "0.00 元"
    assert all(CJK.search(parts) for _figure, parts in figures.values())


def test_the_headline_counts_what_the_sections_count():
    """The renderer alone: figures come from the same rows as the tables under them."""
    from cardctl.services.headline import headline

    sections = {"cards": [{"region": "440305", "status": "active", "lock": "pin", "cards": 2},
                          {"region": "440305", "status": "active", "lock": "arrears", "cards": 1},
                          {"region": "440305", "status": "active", "lock": "none", "cards": 5}],
                "locks_per_day": [{"day": "2026-11-01", "pin_opened": 2, "pin_ended": 1, "arrears_opened": 1,
                                   "arrears_ended": 0, "admin_opened": 0, "admin_ended": 0},
                                  {"day": "2026-11-02", "pin_opened": 1, "pin_ended": 2, "arrears_opened": 0,
                                   "arrears_ended": 0, "admin_opened": 1, "admin_ended": 1}],
                "arrears_totals": [{"debtor": "units", "count": 1, "owed": "1200.00"},
                                   {"debtor": "holders", "count": 2, "owed": "35.50"},
                                   {"debtor": "all", "count": 3, "owed": "1235.50"}]}
    found = headline(sections, {"active": 7, "pending": 1}, 2)
    assert found["cards"] == {"pending": 1, "active": 7, "lost": 0, "void": 0, "total": 8}
    assert found["locked"] == {"pin": 2, "arrears": 1, "admin": 0, "cards": 2}
    assert found["locks_opened"] == {"pin": 3, "arrears": 1, "admin": 1, "total": 5}
    assert found["locks_ended"] == {"pin": 3, "arrears": 0, "admin": 1, "total": 4}
    assert found["arrears"] == {"owed": "1235.50", "units": 1, "holders": 2}
    assert "median_locked" not in found  # its section was not asked for


def test_an_unwritable_path_is_one_line_and_leaves_nothing(database, tmp_path, monkeypatch):
    office = Office(database, tmp_path, monkeypatch)
    office.ok("init")
    result = office("report", "--html", str(tmp_path / "missing" / "report.html"))
    office.close()
    assert result.exit_code == 2 and "cannot write" in result.stderr
    assert not (tmp_path / "missing").exists()
    assert not list(tmp_path.glob(".report.html.*"))


def test_every_value_of_a_record_is_escaped():
    """The renderer alone, with markup in every field a report can carry."""
    evil = "<script>x</script>\"'&\u202e"
    record = {"period": {"since": "2026-11-01T00:00:00Z", "until": "2026-11-02T00:00:00Z", "as_of": None,
                         "region": evil, "min_locks": 3, "timezone": "Asia/Shanghai",
                         "generated_at": "2026-11-02T00:00:00Z"},
              "sections": {"locks_per_day": [{"day": "2026-11-01", "pin_opened": 2, "pin_ended": 1,
                                              "arrears_opened": 0, "arrears_ended": 0, "admin_opened": 0,
                                              "admin_ended": 0}],
                           "actions": [{"operator": evil, "channel": evil, "action": evil, "events": 3,
                                        "refused": 1}],
                           evil: [{evil: evil}]}}
    text = render_report(record, {evil: evil})
    assert "<script" not in text and "\u202e" not in text
    assert text.count("&lt;script&gt;x&lt;/script&gt;&quot;&#x27;&amp;\\u202e") >= 6


# --- in a real browser --------------------------------------------------------------------

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
QUIET = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
         "--disable-background-networking", "--hide-scrollbars"]


@pytest.fixture(scope="module")
def chromium() -> str:
    if BROWSER is None:
        if IN_CI:
            pytest.fail("chromium is not installed (.ci/run installs it: apt-get install chromium)", pytrace=False)
        pytest.skip("chromium is not on PATH: apt-get install -y chromium to run the browser checks")
    return BROWSER


def browse(chromium: str, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = page.parent / "chromium-profile"
    return subprocess.run([chromium, *QUIET, f"--user-data-dir={profile}", *args, page.as_uri()],
                          capture_output=True, text=True, timeout=120, cwd=page.parent)


def test_chromium_loads_the_page_and_draws_the_charts(chromium, page):
    result = browse(chromium, page, "--dump-dom")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert dom.rstrip().endswith("</html>") and "cardctl report" in dom
    parsed = Tags()
    parsed.feed(dom)
    tags = [tag for tag, _ in parsed.tags]
    assert tags.count("svg") >= 5
    bars = [attrs for tag, attrs in parsed.tags if tag == "rect" and ("class", "bar") in attrs]
    assert len(bars) >= 5 and all(float(dict(attrs)["height"]) > 0 for attrs in bars)
    assert not set(tags) & BANNED_TAGS  # the browser's own parse made no element of any hostile name
    shown = "".join(parsed.text)
    assert all(name in shown for name in NAMES)


def test_the_screenshot_is_not_blank_and_shows_the_pin_bars(chromium, page):
    shot = page.parent / "report.png"
    result = browse(chromium, page, f"--screenshot={shot}", "--window-size=1000,1400")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    width, height, pixels = read_png(shot.read_bytes())
    assert (width, height) == (1000, 1400)
    colours = set(pixels)
    assert len(colours) > 20  # text, axes, bars: not one flat colour
    assert PIN_COLOUR in colours  # the PIN-lock bars were painted
    assert sum(1 for p in pixels if p == PIN_COLOUR) > 500


def test_chromium_shows_the_headline_in_the_first_screenful(chromium, page):
    """The figures' boxes are painted at the top of a short window, before any chart."""
    shot = page.parent / "headline.png"
    result = browse(chromium, page, f"--screenshot={shot}", "--window-size=1000,320")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    width, height, pixels = read_png(shot.read_bytes())
    assert (width, height) == (1000, 320)
    assert sum(1 for p in pixels if p == HEADLINE_COLOUR) > 20_000  # six boxes' background
    assert PIN_COLOUR not in set(pixels)  # no chart yet: the headline comes first
    dom = browse(chromium, page, "--dump-dom").stdout
    assert dom.index('class="headline"') < dom.index("<svg")


def read_png(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Decode an 8-bit RGB or RGBA PNG (what Chromium writes) into RGB pixels: stdlib only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    idat = bytearray()
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IDAT":
            idat += body
        else:
            chunks[kind] = body
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert depth == 8 and colour_type in (2, 6) and interlace == 0
    channels = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(bytes(idat)), width * channels
    previous, pixels, pos = bytearray(stride), [], 0
    for _ in range(height):
        kind, line = raw[pos], bytearray(raw[pos + 1:pos + 1 + stride])
        pos += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                pa, pb, pc = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 0xFF
        pixels.extend(tuple(line[i:i + 3]) for i in range(0, stride, channels))
        previous = line
    return width, height, pixels
