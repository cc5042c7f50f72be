"""Database-wide settings: the bcrypt cost of PIN hashes is the database's, changed only by an admin
(audited), and one client's CARDCTL_BCRYPT_COST may raise it but never lower it
(cardctl.domain.hashing, docs/security.md "The PIN hashing cost").

The attacks: a counter PC whose environment asks for bcrypt's minimum cost; a staff login with its
own psql (or anyone with sqlite3 on the file) writing a low cost into the database.
"""

from __future__ import annotations

import json
import re

import pytest

from cardctl.domain import hashing
from helpers_security import CARD, ID_NUMBER, OTHER, OTHER_ID, PIN, Office

NO_SWITCH = {"CARDCTL_TEST_LOW_COST": None}  # a real client: the test suite's switch is not set
NEW_PIN = "902741"


@pytest.fixture
def office(database, tmp_path, monkeypatch):
    office = Office(database, tmp_path, monkeypatch)
    office.open_counter()
    yield office
    office.close()


def hash_costs(office) -> dict[str, int]:
    """card -> the cost in its stored PIN hash ($2b$NN$...)."""
    costs = {}
    for row in office.database.dump()["cards"]:
        found = re.search(r"'([A-Z0-9]{9})'.*\$2b\$(\d\d)\$", row)
        if found:
            costs[found.group(1)] = int(found.group(2))
    return costs


def meta_value(office, key: str) -> str | None:
    rows = [row for row in office.database.dump()["meta"] if f"'{key}'" in row]
    return re.search(r"'[^']*', '([^']*)'", rows[0]).group(1) if rows else None


def shown(office, **kwargs) -> dict:
    result = office("settings", "show", "-o", "json", **kwargs)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)[0]


def test_init_stores_the_default_cost_and_show_reports_it(office):
    assert meta_value(office, "bcrypt_cost") == "12"
    assert shown(office, env=NO_SWITCH) == {"setting": "bcrypt-cost", "value": 12, "this_client": 12, "stored": True}


def test_a_client_asking_for_cost_4_still_hashes_at_the_database_cost(office):
    office.ok("settings", "set", "bcrypt-cost", "10", "--yes")
    assert shown(office, env=NO_SWITCH)["this_client"] == 10  # CARDCTL_BCRYPT_COST=4 does not lower it
    result = office("activate", OTHER, "--id-number", OTHER_ID, "--pin-stdin", input=NEW_PIN + "\n", env=NO_SWITCH)
    assert result.exit_code == 0, result.stderr
    assert hash_costs(office)[OTHER] == 10


def test_a_client_may_raise_the_cost_for_the_pins_it_sets(office):
    office.ok("settings", "set", "bcrypt-cost", "10", "--yes")
    env = {**NO_SWITCH, "CARDCTL_BCRYPT_COST": "11"}
    assert shown(office, env=env)["this_client"] == 11
    result = office("activate", OTHER, "--id-number", OTHER_ID, "--pin-stdin", input=NEW_PIN + "\n", env=env)
    assert result.exit_code == 0, result.stderr
    assert hash_costs(office)[OTHER] == 11


def test_a_pin_below_the_database_cost_is_rehashed_at_its_next_correct_use(office):
    assert hash_costs(office)[CARD] == 4  # set by the test suite's cheap cost
    office.ok("settings", "set", "bcrypt-cost", "10", "--yes")
    result = office("verify", CARD, "--pin-stdin", input=PIN + "\n", env=NO_SWITCH)
    assert result.exit_code == 0, result.stderr
    assert hash_costs(office)[CARD] == 10


def test_a_change_is_audited_with_its_old_and_new_value(office):
    result = office("settings", "set", "bcrypt-cost", "13", "--yes", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == [{"setting": "bcrypt-cost", "from": 12, "to": 13, "result": "changed"}]
    office.ok("settings", "set", "bcrypt-cost", "13", "--yes")
    events = [event for event in office.events() if event["action"] == "settings.set"]
    assert [(e["outcome"], e["detail"]) for e in events] == [
        ("changed", {"setting": "bcrypt_cost", "from": 12, "to": 13}),
        ("unchanged", {"setting": "bcrypt_cost", "from": 13, "to": 13})]
    assert office("audit", "verify").exit_code == 0


@pytest.mark.parametrize("value", ["9", "17", "4", "-1", "1e3", "１２", "", "x" * 300])
def test_a_cost_outside_10_to_16_is_refused_and_nothing_changes(office, value):
    before = office.database.dump()
    result = office("settings", "set", "--yes", "bcrypt-cost", "--", value)
    assert result.exit_code == 2 and "10 to 16" in result.stderr and len(result.stderr.splitlines()) == 1
    assert office.database.dump() == before


def test_only_an_admin_may_change_it(office):
    staff = office.add_operator("clerk", "staff")
    result = office("settings", "set", "bcrypt-cost", "10", "--yes", as_=staff)
    assert result.exit_code == 6 and "needs role admin" in result.stderr
    assert meta_value(office, "bcrypt_cost") == "12"
    assert shown(office, as_=staff)["value"] == 12  # reading is anyone's


def test_an_admin_who_did_not_run_init_may_change_it(office):
    boss = office.add_operator("boss", "admin")  # on PostgreSQL a login that does not own the schema
    office.ok("settings", "set", "bcrypt-cost", "11", "--yes", as_=boss)
    assert meta_value(office, "bcrypt_cost") == "11"


@pytest.mark.postgresql_only("the server refuses a staff login's own SQL on the settings")
def test_a_staff_login_cannot_lower_the_cost_with_its_own_psql(office):
    import psycopg

    from pg_cluster import conninfo

    staff = office.add_operator("clerk", "staff")
    with psycopg.connect(conninfo(office.url_for(staff)), password="correct horse battery staple",
                         autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE meta SET value = '4' WHERE key = 'bcrypt_cost'")
    assert meta_value(office, "bcrypt_cost") == "12"


def test_a_cost_written_behind_cardctls_back_is_held_to_the_range(office):
    office.database.run_sql("UPDATE meta SET value = '4' WHERE key = 'bcrypt_cost'")  # sqlite3 / psql as owner
    assert shown(office, env=NO_SWITCH)["value"] == 10
    office("activate", OTHER, "--id-number", OTHER_ID, "--pin-stdin", input=NEW_PIN + "\n", env=NO_SWITCH)
    assert hash_costs(office)[OTHER] == 10
    office.database.run_sql("UPDATE meta SET value = 'garbage' WHERE key = 'bcrypt_cost'")
    assert shown(office, env=NO_SWITCH)["value"] == 12


def test_a_database_made_before_the_setting_uses_the_default(office):
    office.database.run_sql("DELETE FROM meta WHERE key = 'bcrypt_cost'")
    assert shown(office, env=NO_SWITCH) == {"setting": "bcrypt-cost", "value": 12, "this_client": 12,
                                            "stored": False}
    office.ok("settings", "set", "bcrypt-cost", "11", "--yes")
    assert meta_value(office, "bcrypt_cost") == "11"


def test_the_rule_of_the_effective_cost():
    assert hashing.effective_cost(12, None) == 12
    assert hashing.effective_cost(12, 4) == 12
    assert hashing.effective_cost(12, 14) == 14
    assert hashing.effective_cost(12, 4, test_low_cost=True) == 4
    assert [hashing.stored_cost(raw) for raw in (None, "", "x", "4", "31", "13", " 11 ")] == [12, 12, 12, 10, 16, 13, 11]
