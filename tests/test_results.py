"""Each command family's results: one enum, one spelling in every format (today's, which scripts
parse), its audit outcome as a property, and a translation for every value."""

from __future__ import annotations

import json
import re

import pytest

from cardctl import i18n
from cardctl.domain.events import Outcome
from cardctl.domain.results import (FAMILIES, OUTCOME_OF, ArrearsEntry, IssueResult, LifecycleResult, LockResult,
                                    OperatorResult, PinResult, PolicyResult, SweepResult, UnlockResult)
from cardctl.render.tables import RESULT_STYLE

CJK = re.compile(r"[\u4e00-\u9fff]")

# the values scripts parse and README documents: they must never change
SPELLED = {
    PinResult: ("ok", "wrong_pin", "locked", "unusable"),
    UnlockResult: ("unlocked", "not locked", "not found", "refused", "invalid", "would unlock"),
    SweepResult: ("expired", "lapsed", "would expire", "would lapse"),
    IssueResult: ("issued", "already issued", "refused", "invalid"),
    LifecycleResult: ("activated", "reset", "changed", "reported", "withdrawn", "reissued"),
    LockResult: ("locked", "already locked"),
    OperatorResult: ("added", "re-enabled", "role changed", "unchanged", "disabled"),
    PolicyResult: ("created", "changed", "unchanged"),
    ArrearsEntry: ("debt", "payment"),
}


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    i18n.set_language(i18n.ENGLISH)


def test_every_family_spells_its_results_as_scripts_parse_them():
    assert set(FAMILIES) == set(SPELLED)
    for family, values in SPELLED.items():
        assert tuple(member.value for member in family) == values
        assert all(json.dumps(member) == json.dumps(value) for member, value in zip(family, values))


def test_every_result_has_a_chinese_translation():
    i18n.set_language(i18n.CHINESE)
    untranslated = [f"{family.__name__}.{member.name}" for family in FAMILIES for member in family
                    if not CJK.search(i18n.tr(member.term))]
    assert not untranslated


def test_a_result_recorded_under_another_spelling_names_its_outcome():
    assert UnlockResult.NOT_LOCKED.outcome is Outcome.NOT_LOCKED
    assert UnlockResult.NOT_FOUND.outcome is Outcome.NOT_FOUND
    assert OperatorResult.RE_ENABLED.outcome is Outcome.RE_ENABLED
    assert PinResult.LOCKED.outcome is Outcome.REFUSED_LOCKED
    # the stored outcomes are what the old string conversion wrote: the trail reads the same
    for member in (*UnlockResult, *OperatorResult):
        if member.outcome is not None and member is not OperatorResult.ROLE_CHANGED:
            assert member.outcome.value == member.value.replace(" ", "_").replace("-", "_")
    assert UnlockResult.INVALID.outcome is None and UnlockResult.WOULD_UNLOCK.outcome is None


def test_the_outcome_map_names_only_real_results():
    members = {(type(member).__name__, member.value) for family in FAMILIES for member in family}
    assert set(OUTCOME_OF) <= members


def test_outcomes_added_for_results_come_after_every_older_member():
    names = [member.name for member in Outcome]
    older = names[:names.index("WRONG_PIN") + 1]
    assert older == sorted(older)  # the older members, untouched
    assert {"NOT_LOCKED", "NOT_FOUND", "RE_ENABLED"} <= set(names[len(older):])


def test_every_styled_result_is_a_result_of_some_family():
    values = {member.value for family in FAMILIES for member in family}
    assert set(RESULT_STYLE) <= values
    assert RESULT_STYLE["not locked"] == "dim" and RESULT_STYLE["wrong_pin"] == "red"


def test_a_stored_unlock_outcome_reads_back_as_it_always_did(ctx, run, active_card):
    from cardctl.storage.audit import EventDraft

    with ctx.write() as tx:
        tx.record([EventDraft("lock.unlock", UnlockResult.NOT_LOCKED.outcome, active_card, reason="checked",
                              detail={"kind": "pin"})])
    events = json.loads(run("audit", "log", "--card", active_card, "-o", "json").stdout)
    assert events[-1]["outcome"] == "not_locked"


def test_a_wrong_pin_reads_wrong_pin_in_a_table_in_both_languages(run, active_card):
    english = run("verify", active_card, "--pin-stdin", input="271828\n")
    assert "wrong pin" in english.stdout and english.exit_code == 3
    chinese = run("--lang", "zh", "verify", active_card, "--pin-stdin", input="271828\n")
    assert "wrong pin" not in chinese.stdout and chinese.exit_code == 3
