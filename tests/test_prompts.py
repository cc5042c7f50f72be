"""At a terminal (a real pseudo-terminal), irreversible actions show what will change and ask y/N:
formal ``report-lost``, ``reissue``, ``operator disable``, ``policy set``, ``settings set`` and
``unlock --kind admin`` of more than one card. "n" changes nothing and says so, "y" acts, ``--yes`` never asks, and without
a terminal they act as before. Ctrl-C at a PIN prompt or at the question: "cancelled; nothing
changed", exit 130, not one row different.
"""

from __future__ import annotations

import subprocess
from typing import Iterator

import pytest

from helpers_security import CARD, ID_NUMBER, OTHER, OTHER_ID, PIN, Office
from ptyproc import CTRL_C, at_terminal
from realproc import cardctl_command, cli_env

CANCELLED = "cancelled; nothing changed"
QUESTION = "Proceed? [y/N]"


@pytest.fixture
def office(database, tmp_path, monkeypatch) -> Iterator[Office]:
    """CARD active, OTHER active; both under an admin lock; an operator 'clerk' with role staff."""
    office = Office(database, tmp_path, monkeypatch).open_counter()
    office.ok("activate", OTHER, "--id-number", OTHER_ID, "--pin-stdin", input="702614\n")
    for card in (CARD, OTHER):
        office.ok("lock", card, "--kind", "admin", "--reason", "suspected card sharing")
    office.clerk = office.add_operator("clerk", "staff")
    yield office
    office.close()


def env_of(office: Office, lang: str = "en") -> dict:
    return cli_env(office.database.url, office.key_file, CARDCTL_LANG=lang)


def irreversible(office: Office) -> dict[str, tuple[tuple[str, ...], str]]:
    """Each action that asks first: its arguments and a phrase of what the question shows."""
    return {
        "report-lost (formal)": (("report-lost", CARD, "--id-number", ID_NUMBER), "void for good"),
        "reissue": (("reissue", CARD, "--new-card-no", "R00000001", "--id-number", ID_NUMBER, "--damaged"),
                    "R00000001 is issued to the same holder"),
        "operator disable": (("operator", "disable", office.clerk, "--reason", "left the office"),
                             f"operator {office.clerk} (staff) will be disabled"),
        "policy set": (("policy", "set", "4403", "--max-attempts", "5"), "max_attempts 3 -> 5"),
        "unlock --kind admin of two cards": (("unlock", CARD, OTHER, "--kind", "admin", "--reason", "case closed"),
                                             "the admin locks of 2 card(s) will be lifted"),
        "settings set": (("settings", "set", "bcrypt-cost", "13"), "by every client, will change: 12 -> 13"),
    }


ACTIONS = ["report-lost (formal)", "reissue", "operator disable", "policy set", "unlock --kind admin of two cards",
           "settings set"]


@pytest.mark.parametrize("action", ACTIONS)
def test_answering_no_changes_nothing_and_says_so(office, action):
    args, shows = irreversible(office)[action]
    before = office.dump()
    terminal = at_terminal(env_of(office), *args)
    terminal.expect(QUESTION)
    assert shows in terminal.seen
    terminal.send("n\r")
    code, seen = terminal.finish()
    assert code == 130, seen
    assert f"cardctl: {CANCELLED}" in seen
    assert office.dump() == before


@pytest.mark.parametrize("action", ACTIONS)
def test_answering_yes_acts(office, action):
    args, shows = irreversible(office)[action]
    before = office.dump()
    terminal = at_terminal(env_of(office), *args)
    terminal.expect(QUESTION)
    terminal.send("y\r")
    code, seen = terminal.finish()
    assert code == 0, seen
    assert office.dump() != before


@pytest.mark.parametrize("action", ACTIONS)
def test_yes_never_asks_at_a_terminal(office, action):
    args, _shows = irreversible(office)[action]
    code, seen = at_terminal(env_of(office), *args, "--yes").finish()
    assert code == 0, seen
    assert QUESTION not in seen


def test_without_a_terminal_the_actions_proceed_as_before(office):
    env = env_of(office)
    actions = irreversible(office)
    steps = [actions[name][0] for name in ACTIONS[::-1] if name != "report-lost (formal)"]
    steps.append(("report-lost", OTHER, "--id-number", OTHER_ID))  # CARD is void now: reissued
    for args in steps:
        done = subprocess.run([*cardctl_command(), *args], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (args, done.stderr)
        assert QUESTION not in done.stderr


def test_the_question_is_asked_and_answered_in_chinese(office):
    before = office.dump()
    terminal = at_terminal(env_of(office, "zh"), "policy", "set", "4403", "--max-attempts", "5")
    terminal.expect("[y/N]")
    assert "继续" in terminal.seen
    terminal.send("否\r")
    code, seen = terminal.finish()
    assert code == 130 and "已取消" in seen, seen
    assert office.dump() == before
    terminal = at_terminal(env_of(office, "zh"), "policy", "set", "4403", "--max-attempts", "5")
    terminal.expect("[y/N]")
    terminal.send("是\r")
    assert terminal.finish()[0] == 0
    assert office.dump() != before


def test_a_single_admin_lock_or_a_temporary_report_is_not_asked_about(office):
    env = env_of(office)
    code, seen = at_terminal(env, "unlock", CARD, "--kind", "admin", "--reason", "case closed").finish()
    assert code == 0 and QUESTION not in seen, seen
    code, seen = at_terminal(env, "report-lost", OTHER, "--temporary").finish()
    assert code == 0 and QUESTION not in seen, seen


def test_ctrl_c_at_the_question_cancels(office):
    args, _shows = irreversible(office)["report-lost (formal)"]
    before = office.dump()
    terminal = at_terminal(env_of(office), *args)
    terminal.expect(QUESTION)
    terminal.send(CTRL_C)
    code, seen = terminal.finish()
    assert code == 130 and f"cardctl: {CANCELLED}" in seen, seen
    assert office.dump() == before


@pytest.mark.parametrize("command, prompts", [
    (("verify", CARD), ["PIN:"]),
    (("change-pin", CARD), ["Current PIN:", "New PIN:"]),
    (("reset-pin", CARD, "--id-number", ID_NUMBER), ["New PIN:", "New PIN again:"]),
])
def test_ctrl_c_at_a_pin_prompt_cancels_and_changes_nothing(office, command, prompts):
    if command[0] == "verify":
        office.ok("unlock", CARD, "--kind", "admin", "--reason", "case closed")  # a usable card, or no prompt
    before = office.dump()
    terminal = at_terminal(env_of(office), *command)
    for prompt in prompts[:-1]:
        terminal.expect(prompt)
        terminal.send(PIN + "\r")
    terminal.expect(prompts[-1])
    terminal.send(CTRL_C)
    code, seen = terminal.finish()
    assert code == 130, seen
    assert f"cardctl: {CANCELLED}" in seen and "Traceback" not in seen
    assert office.dump() == before
