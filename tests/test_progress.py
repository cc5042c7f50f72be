"""Progress bars for long batches (cardctl.cli.progress) and the count behind the cron sweep's bar."""

from __future__ import annotations

import sys

import pytest

from cardctl.cli import progress
from cardctl.domain.identity import parse_id_number
from cardctl.render.formats import OutputFormat
from cardctl.services.cards import activate
from cardctl.services.loss import report_lost
from cardctl.services.reads import count_due
from cardctl.services.unlock import expire_due
from cardctl.services.verify import verify_pin
from conftest import GOOD_PIN, HOLDERS, issue

WRONG = "271828"


def test_count_due_is_what_the_sweep_then_records(ctx, active_card, clock):
    card_no, name, id_number, region = HOLDERS[1]
    issue(ctx, card_no, name, id_number, region)
    activate(ctx, card_no, parse_id_number(id_number, clock().date()), GOOD_PIN)
    for _ in range(3):
        verify_pin(ctx, active_card, WRONG)  # a PIN lock for 24 hours
    report_lost(ctx, card_no, temporary=True)  # lapses after 7 days
    assert count_due(ctx) == 0
    clock.advance(hours=25)
    assert count_due(ctx) == 1
    clock.advance(days=7)
    assert count_due(ctx) == 2
    assert sorted(item.result for item in expire_due(ctx)) == ["expired", "lapsed"]
    assert count_due(ctx) == 0


@pytest.mark.parametrize("output", [OutputFormat.JSON, OutputFormat.JSONL, OutputFormat.CSV])
def test_no_bar_for_machine_readable_output_even_on_a_terminal(monkeypatch, output):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert not progress.wanted(output)


def test_a_bar_only_when_stderr_is_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not progress.wanted(OutputFormat.TABLE)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert progress.wanted(OutputFormat.TABLE)


def test_without_a_bar_the_items_pass_through_untouched():
    items = iter([1, 2, 3])
    with progress.tracked(items, "counting", 3, enabled=False) as tracked:
        assert tracked is items
        assert list(tracked) == [1, 2, 3]


def test_with_a_bar_every_item_still_comes_through_in_order(tmp_path, monkeypatch):
    with open(tmp_path / "stderr", "w") as fake_stderr:
        monkeypatch.setattr(sys, "stderr", fake_stderr)
        with progress.tracked(iter(range(5)), "counting", 5, enabled=True) as tracked:
            assert list(tracked) == [0, 1, 2, 3, 4]


def test_count_lines_counts_a_file_and_gives_up_on_stdin(tmp_path):
    listing = tmp_path / "cards.txt"
    listing.write_text("A00000001\nA00000002\nA00000003\n", encoding="utf-8")
    assert progress.count_lines(str(listing)) == 3
    assert progress.count_lines("-") is None
    assert progress.count_lines(str(tmp_path / "missing.txt")) is None
