"""Per-region policy: the most specific prefix wins, limits are checked, changes are audited."""

from __future__ import annotations

import json

import pytest

from cardctl.domain.identity import parse_id_number
from cardctl.errors import InvalidInput
from cardctl.services.audit import event_log
from cardctl.services.cards import activate
from cardctl.services.policies import parse_prefix, policy_for_region, set_policy
from cardctl.services.verify import verify_pin
from conftest import GOOD_PIN, HOLDERS, issue


@pytest.fixture
def shenzhen_card(ctx) -> str:
    card_no, name, id_number, region = HOLDERS[1]  # region 440305, Shenzhen Nanshan
    issue(ctx, card_no, name, id_number, region)
    activate(ctx, card_no, parse_id_number(id_number, ctx.now().date()), GOOD_PIN)
    return card_no


def test_a_region_with_max_attempts_5_locks_on_the_5th_failure(ctx, shenzhen_card):
    set_policy(ctx, "4403", {"max_attempts": 5})
    results = [verify_pin(ctx, shenzhen_card, "000000") for _ in range(5)]
    assert [r.result for r in results] == ["wrong_pin"] * 5
    assert [r.attempts_left for r in results] == [4, 3, 2, 1, 0]
    assert [len(r.locks) for r in results] == [0, 0, 0, 0, 1]
    assert verify_pin(ctx, shenzhen_card, GOOD_PIN).result == "locked"


def test_the_default_region_still_locks_on_the_3rd(ctx, active_card, shenzhen_card):
    set_policy(ctx, "4403", {"max_attempts": 5})
    assert [verify_pin(ctx, active_card, "000000").attempts_left for _ in range(3)] == [2, 1, 0]


def test_the_most_specific_prefix_wins_then_the_default(ctx):
    set_policy(ctx, "44", {"max_attempts": 4})
    set_policy(ctx, "4403", {"max_attempts": 5})
    assert policy_for_region(ctx, "440305").prefix == "4403"
    assert policy_for_region(ctx, "440305").policy.max_attempts == 5
    assert policy_for_region(ctx, "440106").policy.max_attempts == 4
    assert policy_for_region(ctx, "110105").prefix == ""
    assert policy_for_region(ctx, "110105").policy.max_attempts == 3


def test_a_new_prefix_starts_from_what_it_inherits(ctx):
    set_policy(ctx, "44", {"lock_hours": 0, "temp_loss_days": 15})
    created = set_policy(ctx, "4403", {"max_attempts": 6})
    assert created.outcome == "created"
    assert (created.entry.policy.lock_hours, created.entry.policy.temp_loss_days) == (0, 15)
    assert created.changes == {"max_attempts": [3, 6]}


@pytest.mark.parametrize("changes", [
    {"max_attempts": 0}, {"max_attempts": 11}, {"lock_hours": -1}, {"temp_loss_days": 0},
    {"temp_loss_days": 91}, {"minor_age": 13}, {"minor_age": 19}, {"default_pin": "12345"},
    {"default_pin": "１２３４５６"},
])
def test_settings_outside_their_limits_are_refused_and_nothing_changes(ctx, changes):
    with pytest.raises(InvalidInput):
        set_policy(ctx, "4403", changes)
    assert policy_for_region(ctx, "440305").prefix == ""


def test_a_policy_change_is_audited_with_old_and_new_values(ctx):
    set_policy(ctx, "", {"max_attempts": 4})
    unchanged = set_policy(ctx, "", {"max_attempts": 4})
    assert unchanged.outcome == "unchanged"
    changes = [(e.outcome, json.loads(e.detail)) for e in event_log(ctx, None, None, None) if e.action == "policy.set"]
    assert changes == [("changed", {"region": "default", "changes": {"max_attempts": [3, 4]}}),
                       ("unchanged", {"region": "default", "changes": {}})]


@pytest.mark.parametrize("raw, prefix", [("default", ""), ("DEFAULT", ""), ("44", "44"), ("4403", "4403"),
                                         ("440305", "440305")])
def test_a_region_prefix_is_default_or_2_4_or_6_digits(raw, prefix):
    assert parse_prefix(raw) == prefix


@pytest.mark.parametrize("raw", ["4", "440", "44030", "4403055", "44a3", "９９", "999999"])
def test_other_region_prefixes_are_refused(raw):
    with pytest.raises(InvalidInput):
        parse_prefix(raw)


def test_policy_set_and_show_on_the_command_line(run):
    assert run("policy", "set", "4403").exit_code == 2  # nothing to change
    assert run("policy", "set", "4403", "--max-attempts", "11").exit_code == 2
    done = run("policy", "set", "4403", "--max-attempts", "5", "--channel", "counter")
    assert done.exit_code == 0 and "max_attempts 3 -> 5" in done.stderr
    listed = json.loads(run("policy", "show", "-o", "json").stdout)
    assert [(p["region"], p["max_attempts"]) for p in listed] == [("default", 3), ("4403", 5)]
    (applied,) = json.loads(run("policy", "show", "440305", "-o", "json").stdout)
    assert (applied["area_code"], applied["from"], applied["max_attempts"]) == ("440305", "4403", 5)
    assert "default" in run("policy", "show").stdout


def test_the_cli_uses_the_new_policy_at_once(run, ctx, shenzhen_card):
    run("policy", "set", "440305", "--max-attempts", "4")
    codes = [run("verify", shenzhen_card, "--pin-stdin", input="000000\n").exit_code for _ in range(5)]
    assert codes == [3, 3, 3, 3, 4]
