"""The same condition exits with the same code from every command, the code README's table gives.

README's exit-code table names, for each code, the conditions of ``cardctl.errors.Condition``;
the tests read it (so the table and the map cannot drift apart), then bring each condition
about through every command where it can arise, as an operator or a script would, and check
the exit code against the table. A usage error of any command is one ``cardctl:`` line plus a
hint, exit 2, in either language.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pytest

from cardctl import errors
from cardctl.errors import Condition
from helpers_security import CARD, ID_NUMBER, OTHER, OTHER_ID, PIN, WRONG, Office

README = Path(__file__).resolve().parent.parent / "README.md"
LOCKED_CARD, LOCKED_ID = "ZN2699519", "51010719841206311X"  # rows 3 and 4 of examples/cards.csv
LOST_CARD, LOST_ID = "C42780183", "510107197806161789"
NEW_PIN = "748291"
GHOST = "Z99999999"


def readme_exit_codes() -> dict[str, int]:
    """Condition name -> exit code, from the last column of README's exit-code table."""
    section = README.read_text(encoding="utf-8").split("\n## Exit codes\n", 1)[1].split("\n## ", 1)[0]
    codes: dict[str, int] = {}
    for line in section.splitlines():
        row = re.fullmatch(r"\| (\d+) \| .* \| (?P<conditions>[^|]*) \|", line)
        if row:
            for name in re.findall(r"`([^`]+)`", row.group("conditions")):
                assert name not in codes, f"README names condition {name!r} twice"
                codes[name] = int(row.group(1))
    return codes


README_CODES = readme_exit_codes()


def test_readme_names_every_condition_once_with_the_code_the_map_gives():
    assert set(README_CODES) == {condition.value for condition in Condition}
    for condition in Condition:
        assert errors.EXIT_CODE[condition] == README_CODES[condition.value], condition


def test_no_error_class_or_command_picks_its_own_exit_code():
    """Every code comes from errors.EXIT_CODE: no class sets exit_code, no command exits with a number."""
    root = Path(errors.__file__).parent
    own = []
    for path in root.rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"^\s+exit_code\s*=|Exit\(\s*\d|sys\.exit\(\s*\d", line):
                own.append(f"{path.relative_to(root)}:{number}: {line.strip()}")
    assert own == []


# --- every condition through every command where it arises -----------------------------------------

# condition -> [(command, arguments, stdin, acting login)]; "{admin}" is the office's admin login,
# "{stranger}" a login that is no operator, "{missing}" a database that does not exist
A = "{admin}"
CASES: dict[Condition, list[tuple[str, list[str], str | None, str | None]]] = {
    Condition.NOT_FOUND: [
        ("status", ["status", GHOST], None, None),
        ("verify", ["verify", GHOST, "--pin-stdin"], PIN, None),
        ("unlock", ["unlock", GHOST, "--reason", "r"], None, None),
        ("activate", ["activate", GHOST, "--id-number", ID_NUMBER, "--pin-stdin"], NEW_PIN, None),
        ("reset-pin", ["reset-pin", GHOST, "--id-number", ID_NUMBER, "--pin-stdin"], NEW_PIN, None),
        ("change-pin", ["change-pin", GHOST, "--pin-stdin"], f"{PIN}\n{NEW_PIN}", None),
        ("report-lost", ["report-lost", GHOST, "--temporary"], None, None),
        ("cancel-loss", ["cancel-loss", GHOST, "--id-number", ID_NUMBER], None, None),
        ("reissue", ["reissue", GHOST, "--new-card-no", "N00000009", "--id-number", ID_NUMBER, "--damaged"],
         None, None),
        ("lock", ["lock", GHOST, "--kind", "admin", "--reason", "r"], None, None),
        ("add-arrears", ["add-arrears", GHOST, "--amount", "10"], None, None),
        ("pay-arrears", ["pay-arrears", GHOST, "--amount", "10"], None, None),
        ("operator set-role", ["operator", "set-role", "ghost", "--role", "staff"], None, None),
        ("operator disable", ["operator", "disable", "ghost", "--reason", "r"], None, None),
    ],
    Condition.IDENTITY_MISMATCH: [
        ("activate", ["activate", OTHER, "--id-number", ID_NUMBER, "--pin-stdin"], NEW_PIN, None),
        ("reset-pin", ["reset-pin", CARD, "--id-number", OTHER_ID, "--pin-stdin"], NEW_PIN, None),
        ("unlock", ["unlock", CARD, "--reason", "r", "--id-number", OTHER_ID], None, None),
        ("report-lost", ["report-lost", CARD, "--temporary", "--id-number", OTHER_ID], None, None),
        ("cancel-loss", ["cancel-loss", LOST_CARD, "--id-number", OTHER_ID], None, None),
        ("reissue", ["reissue", CARD, "--new-card-no", "N00000009", "--id-number", OTHER_ID, "--damaged"],
         None, None),
    ],
    Condition.WEAK_PIN: [
        ("activate", ["activate", OTHER, "--id-number", OTHER_ID, "--pin-stdin"], "123456", None),
        ("reset-pin", ["reset-pin", CARD, "--id-number", ID_NUMBER, "--pin-stdin"], "111111", None),
        ("change-pin", ["change-pin", CARD, "--pin-stdin"], f"{PIN}\n123456", None),
        ("change-pin (the same PIN)", ["change-pin", CARD, "--pin-stdin"], f"{PIN}\n{PIN}", None),
    ],
    Condition.NOT_ALLOWED: [
        ("activate", ["activate", CARD, "--id-number", ID_NUMBER, "--pin-stdin"], NEW_PIN, None),
        ("cancel-loss", ["cancel-loss", CARD, "--id-number", ID_NUMBER], None, None),
        ("reset-pin", ["reset-pin", LOST_CARD, "--id-number", LOST_ID, "--pin-stdin"], NEW_PIN, None),
        ("report-lost", ["report-lost", OTHER, "--temporary"], None, None),
    ],
    Condition.CONFLICT: [
        ("issue (card number taken)", ["issue", CARD, "--name", "谢美华", "--id-number", OTHER_ID,
                                       "--region", "310115"], None, None),
        ("issue (holder has a live card)", ["issue", "N00000009", "--name", "于凤英", "--id-number", ID_NUMBER,
                                            "--region", "110105"], None, None),
        ("reissue", ["reissue", CARD, "--new-card-no", OTHER, "--id-number", ID_NUMBER, "--damaged"], None, None),
        ("operator add", ["operator", "add", A, "--role", "staff"], None, None),
    ],
    Condition.REFUSED: [
        ("operator disable (the last admin)", ["operator", "disable", A, "--reason", "r"], None, None),
        ("pay-arrears (nothing owed)", ["pay-arrears", CARD, "--amount", "10"], None, None),
    ],
    Condition.ACCESS_REFUSED: [
        ("status", ["status", CARD], None, "{stranger}"),
        ("unlock", ["unlock", CARD, "--reason", "r"], None, "{stranger}"),
        ("issue", ["issue", "N00000009", "--name", "x", "--id-number", LOST_ID, "--region", "510107"], None,
         "{stranger}"),
        ("metrics", ["metrics"], None, "{stranger}"),
    ],
    Condition.ALREADY_ISSUED: [
        ("issue", ["issue", CARD, "--name", "于凤英", "--id-number", ID_NUMBER, "--region", "110105"], None,
         None),
        ("import", ["import", "-"], f"card_no,name,id_number,region\n{CARD},于凤英,{ID_NUMBER},110105\n", None),
    ],
    Condition.NOT_LOCKED: [
        ("unlock", ["unlock", CARD, "--reason", "r"], None, None),
    ],
    Condition.WRONG_PIN: [
        ("verify", ["verify", CARD, "--pin-stdin"], WRONG, None),
        ("change-pin", ["change-pin", CARD, "--pin-stdin"], f"{WRONG}\n{NEW_PIN}", None),
    ],
    Condition.LOCKED: [
        ("verify (locked)", ["verify", LOCKED_CARD, "--pin-stdin"], PIN, None),
        ("verify (pending: not usable)", ["verify", OTHER, "--pin-stdin"], PIN, None),
        ("change-pin", ["change-pin", LOCKED_CARD, "--pin-stdin"], f"{PIN}\n{NEW_PIN}", None),
    ],
    Condition.INVALID_INPUT: [
        ("status", ["status", "abc"], None, None),
        ("verify", ["verify", "abc", "--pin-stdin"], PIN, None),
        ("verify (5-digit PIN)", ["verify", CARD, "--pin-stdin"], "12345", None),
        ("unlock", ["unlock", "abc", "--reason", "r"], None, None),
        ("activate", ["activate", OTHER, "--id-number", "1234", "--pin-stdin"], NEW_PIN, None),
        ("issue", ["issue", "N00000009", "--name", "x", "--id-number", "11010519491231002Y", "--region", "110105"],
         None, None),
        ("import", ["import", "/nonexistent/cards.csv"], None, None),
        ("add-arrears", ["add-arrears", CARD, "--amount", "1e3"], None, None),
        ("policy set", ["policy", "set", "110105", "--max-attempts", "0"], None, None),
        ("audit log", ["audit", "log", "--since", "yesterday"], None, None),
        ("--db mysql://", ["--db", "mysql://u@localhost/cards", "status", CARD], None, None),
        ("--db a directory", ["--db", "{tmp}", "status", CARD], None, None),
        ("--db ''", ["--db", "", "status", CARD], None, None),
        ("metrics --textfile a directory", ["metrics", "--textfile", "{tmp}"], None, None),
    ],
    Condition.USAGE: [
        ("unlock --bogus", ["unlock", CARD, "--bogus"], None, None),
        ("status --status nope", ["status", "--status", "nope"], None, None),
        ("issue (missing option)", ["issue", "N00000009"], None, None),
    ],
    Condition.DATABASE: [
        ("status", ["--db", "{missing}", "status", CARD], None, None),
        ("unlock --expired", ["--db", "{missing}", "unlock", "--expired"], None, None),
        ("verify", ["--db", "{missing}", "verify", CARD, "--pin-stdin"], PIN, None),
        ("metrics", ["--db", "{missing}", "metrics"], None, None),
    ],
    Condition.KEY_FILE: [
        ("status", ["--key-file", "{tmp}/nokey", "status", CARD], None, None),
        ("verify", ["--key-file", "{tmp}/nokey", "verify", CARD, "--pin-stdin"], PIN, None),
        ("metrics", ["--key-file", "{tmp}/nokey", "metrics"], None, None),
    ],
    Condition.CHAIN_BROKEN: [
        ("audit verify", ["audit", "verify"], None, "{tamper}"),
        ("audit export", ["audit", "export", "{tmp}/trail.jsonl"], None, "{tamper}"),
    ],
    Condition.BATCH_FAILED: [
        ("unlock of two cards", ["unlock", CARD, GHOST, "--reason", "r"], None, None),
        ("unlock --from", ["unlock", "--from", "-", "--reason", "r"], f"{GHOST}\n", None),
        ("import", ["import", "-"], f"card_no,name,id_number,region\n{CARD},谢美华,{OTHER_ID},310115\n", None),
    ],
}


def test_every_condition_but_an_internal_error_is_brought_about():
    # an internal error is a bug: nothing a user does should cause one; a cancellation needs a
    # terminal, so tests/test_prompts.py brings it about in a real pseudo-terminal (exit 130); a
    # wrong clock needs a process whose clock is off, so tests/test_clock.py runs one under faketime
    assert set(CASES) == set(Condition) - {Condition.INTERNAL, Condition.CANCELLED, Condition.WRONG_CLOCK}


@pytest.fixture
def population(database, tmp_path, monkeypatch) -> Iterator[Office]:
    """CARD active (PIN), OTHER pending, LOCKED_CARD active under an admin lock, LOST_CARD
    reported lost (temporary)."""
    office = Office(database, tmp_path, monkeypatch)
    office.open_counter()
    for card, name, id_number in ((LOCKED_CARD, "唐磊", LOCKED_ID), (LOST_CARD, "萧霞", LOST_ID)):
        office.ok("issue", card, "--name", name, "--id-number", id_number, "--region", "510107")
        office.ok("activate", card, "--id-number", id_number, "--pin-stdin", input=PIN + "\n")
    office.ok("lock", LOCKED_CARD, "--kind", "admin", "--reason", "case 1")
    office.ok("report-lost", LOST_CARD, "--temporary")
    yield office
    office.close()


@pytest.mark.parametrize("condition", list(CASES), ids=[c.name.lower() for c in CASES])
def test_a_condition_exits_with_readmes_code_from_every_command(population, condition, tmp_path, new_database):
    office = population
    expected = README_CODES[condition.value]
    missing = new_database("missing", create=False).url
    wrong, stranger = [], None
    for label, argv, stdin, login in CASES[condition]:
        if login == "{tamper}":  # an insider edits an event behind cardctl's back
            office.database.run_sql("UPDATE events SET reason = 'edited' WHERE seq = 2")
            login = None
        if login == "{stranger}":
            stranger = login = stranger or office.stranger()
        args = [arg.replace(A, office.admin).replace("{tmp}", str(tmp_path)).replace("{missing}", missing)
                for arg in argv]
        result = office(*args, input=None if stdin is None else stdin + "\n", as_=login)
        if result.exit_code != expected:
            wrong.append(f"{label}: exit {result.exit_code}, README says {expected} ({result.stderr.strip()!r})")
        elif expected:
            said = [line for line in result.stderr.splitlines() if line.startswith("cardctl: ")]
            if condition is not Condition.WRONG_PIN and condition is not Condition.LOCKED and len(said) != 1:
                wrong.append(f"{label}: not one 'cardctl:' line: {result.stderr!r}")
    assert wrong == []


# --- the same condition, two commands: the cases the old code told apart ---------------------------


def test_a_holder_mismatch_exits_6_from_unlock_of_one_card_as_from_activate(population):
    unlock = population("unlock", CARD, "--reason", "checked", "--id-number", OTHER_ID)
    activate = population("activate", OTHER, "--id-number", ID_NUMBER, "--pin-stdin", input=NEW_PIN + "\n")
    assert unlock.exit_code == activate.exit_code == README_CODES["identity mismatch"] == 6
    assert unlock.stderr.strip() == f"cardctl: card {CARD}: the ID number given does not match the holder"


def test_an_identical_reissue_is_already_issued_from_issue_and_import_alike(population):
    before = population.dump()
    again = population("issue", CARD, "--name", "于凤英", "--id-number", ID_NUMBER, "--region", "110105")
    imported = population("import", "-", "-o", "json",
                          input=f"card_no,name,id_number,region\n{CARD},于凤英,{ID_NUMBER},110105\n")
    assert again.exit_code == imported.exit_code == 0
    assert "already issued" in again.stderr and "nothing changed" in again.stderr
    assert '"already issued"' in imported.stdout
    assert population.dump() == before  # neither wrote a card, a holder or an event


# --- operator add on SQLite: an OS login or nothing -------------------------------------------------


@pytest.mark.sqlite_only("on PostgreSQL operator add creates the database login itself")
def test_operator_add_refuses_a_login_this_computer_does_not_have(population):
    import pwd

    ghost = "nosuch_login_cardctl"
    with pytest.raises(KeyError):
        pwd.getpwnam(ghost)
    before = population.dump()
    result = population("operator", "add", ghost, "--role", "staff")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"cardctl: {ghost} is not a login on this computer")
    assert len(result.stderr.splitlines()) == 1
    assert population.dump() == before
    # a login that exists is taken, as before
    assert population("operator", "add", "nobody", "--role", "auditor").exit_code == 0


def test_only_errors_py_names_conditions():
    """One hierarchy: a condition is named by a class of errors.py; an error class elsewhere (one
    that only words its message) inherits it, so its exit code is the one EXIT_CODE gives."""
    import ast

    root = Path(errors.__file__).parent
    elsewhere = []
    for path in root.rglob("*.py"):
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for item in ast.walk(node):
                    targets = item.targets if isinstance(item, ast.Assign) else \
                        [item.target] if isinstance(item, (ast.AnnAssign, ast.AugAssign)) else []
                    if any(ast.unparse(target) in ("condition", "self.condition") for target in targets):
                        elsewhere.append(f"{path.relative_to(root)}: {node.name}")
    assert elsewhere == []


def test_no_expected_failure_is_named_an_internal_error():
    """Exit 1 as 'internal error' is kept for bugs (errors.InternalError at the CLI edge): every
    error class names the condition README gives it, e.g. a wrong clock is a 'wrong clock'."""
    import importlib
    import pkgutil

    import cardctl

    for module in pkgutil.walk_packages(cardctl.__path__, "cardctl."):
        if ".migrations" not in module.name and not module.name.endswith("__main__"):
            importlib.import_module(module.name)

    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    internal = {f"{cls.__module__}.{cls.__qualname__}" for cls in subclasses(errors.CardctlError)
                if cls.condition is Condition.INTERNAL}
    # RowFailed takes its row's condition (errors.ROW_CONDITION) when raised
    assert internal == {"cardctl.errors.InternalError", "cardctl.errors.RowFailed"}


def test_an_identity_mismatch_names_the_card_and_the_refused_action_and_exits_6():
    """errors.IdentityMismatch(card_no, action) is the one form a service raises: the message
    the clerk reads, the card and the action for the audited refusal, exit 6."""
    from cardctl.i18n import N_

    refused = errors.IdentityMismatch("A10000001", N_("PIN reset"))
    assert (refused.card_no, refused.action, refused.exit_code) == ("A10000001", "PIN reset", 6)
    assert refused.message == "the ID number given does not match the holder of card A10000001; PIN reset refused"
