"""A batch never says success for half its work: ``import``, ``unlock --from`` and the sweep
``unlock --expired`` piped into ``head -1`` (a real shell pipeline, a real closed pipe) still
process every input, discard the rest of their output, say so on stderr, and exit with the code
of the whole work. Each batch is larger than one chunk, so stopping at the broken pipe would show.
"""

from __future__ import annotations

import shlex
import subprocess
from datetime import timedelta

import pytest

from cardctl.config import Settings
from cardctl.services.context import Context
from realproc import TIMEOUT, cardctl_command, cli_env, person, run, seed_active_cards, seed_pin_locks

CLOSED = "standard output closed early"


@pytest.fixture
def env(database, tmp_path) -> dict:
    env = cli_env(database.url, tmp_path / "cardctl.key")
    assert run(env, "init").returncode == 0
    return env


@pytest.fixture
def ctx(database, tmp_path) -> Context:
    return Context.open(Settings(db_url=database.url, key_file=tmp_path / "cardctl.key", operator="seed",
                                 os_user="seed", bcrypt_cost=4))


def head_1(env: dict, *args: str) -> tuple[int, str, str]:
    """``cardctl ARGS | head -1`` in bash: cardctl's exit code, what head printed, cardctl's stderr."""
    command = " ".join(shlex.quote(part) for part in [*cardctl_command(), *args])
    done = subprocess.run(["bash", "-c", f"{command} | head -1; exit ${{PIPESTATUS[0]}}"], env=env,
                          capture_output=True, text=True, timeout=TIMEOUT)
    return done.returncode, done.stdout, done.stderr


def test_import_into_a_closed_pipe_imports_every_row(env, database, tmp_path):
    rows = 6000  # three chunks of 2,000
    csv = tmp_path / "cards.csv"
    csv.write_text("card_no,name,id_number,region\n" + "".join(
        f"P{n:08d},持卡人{n},{person(n)},110105\n" for n in range(rows)), encoding="utf-8")
    code, shown, err = head_1(env, "import", str(csv), "-o", "jsonl")
    assert code == 0, err
    assert shown.count("\n") == 1 and '"issued"' in shown
    assert CLOSED in err and f"({rows} item(s) processed)" in err
    assert f"imported {rows} card(s); 0 row(s) failed" in err
    assert database.count("cards") == rows


def test_batch_unlock_into_a_closed_pipe_unlocks_every_card(env, database, ctx, tmp_path):
    cards = seed_active_cards(ctx, 6000, "583920", prefix="U")  # two chunks of 5,000
    seed_pin_locks(ctx, cards, [ctx.now() + timedelta(hours=20)] * len(cards))
    listing = tmp_path / "locked.txt"
    listing.write_text("\n".join(cards) + "\n")
    code, shown, err = head_1(env, "unlock", "--from", str(listing), "--reason", "terminal fault", "-o", "jsonl")
    assert code == 0, err
    assert '"unlocked"' in shown
    assert CLOSED in err and "(6000 item(s) processed)" in err
    assert database.count("locks", "WHERE ended_at IS NULL") == 0
    assert database.count("events", "WHERE action = 'lock.unlock'") == len(cards)


def test_a_batch_with_a_failure_into_a_closed_pipe_still_exits_7(env, database, ctx, tmp_path):
    cards = seed_active_cards(ctx, 6000, "583920", prefix="F")
    seed_pin_locks(ctx, cards, [ctx.now() + timedelta(hours=20)] * len(cards))
    listing = tmp_path / "locked.txt"
    listing.write_text("\n".join(cards) + "\nZ99999999\n")  # the last line: a card that does not exist
    code, _shown, err = head_1(env, "unlock", "--from", str(listing), "--reason", "terminal fault", "-o", "jsonl")
    assert code == 7, err
    assert "1 of 6001 card(s) failed" in err
    assert database.count("locks", "WHERE ended_at IS NULL") == 0


def test_the_sweep_into_a_closed_pipe_ends_every_due_lock(env, database, ctx):
    cards = seed_active_cards(ctx, 12_000, "583920", prefix="E")  # two chunks of 10,000
    seed_pin_locks(ctx, cards, [ctx.now() - timedelta(minutes=5)] * len(cards))
    code, shown, err = head_1(env, "unlock", "--expired", "-o", "jsonl")
    assert code == 0, err
    assert '"expired"' in shown
    assert CLOSED in err and "(12000 item(s) processed)" in err
    assert database.count("locks", "WHERE ended_at IS NULL") == 0
    assert database.count("events", "WHERE action = 'lock.expire'") == len(cards)
