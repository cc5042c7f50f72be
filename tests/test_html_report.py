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
# names the corpus accepts as given (tests/hostile/corpus.json), and markup aimed at a browser
NAMES = sorted({name for entry in json.loads((HOSTILE / "corpus.json").read_text(encoding="utf-8"))
                for name in entry.get("names", {}).values()}) + [
    "<script>alert('name')</script>", '"><img src=x onerror=alert(1)>', "</td></tr></table><h1>x", "a & b <i>"]
BIDI_NAME = "abc\u202edef\x1b[31m"  # written behind cardctl's back: parse_name would refuse it
OPERATOR = "<b>clerk</b>&amp;"
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
    (once per engine)."""
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
        result = office("report", "--html", str(out), "--since", "2026-11-01T00:00Z", "--min-locks", "2")
        office.close()
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "" and str(out) in result.stderr
    return out


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
