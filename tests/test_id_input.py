"""ID numbers stay out of process arguments, and no message echoes one typed into the wrong place.

docs/security.md, "Personal data": ``--id-stdin`` or a prompt instead of ``--id-number`` (read
as ``ps`` does, from /proc/PID/cmdline of a real process), and every option, argument and
file column fed a valid ID number, with stdout, stderr and the database checked for it.
"""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import pytest

from cardctl.domain.identity import mask_id_shapes
from conftest import GOOD_PIN, HOLDERS, issue
from realproc import cardctl_command, cli_env, finish, start, wait_reading_stdin

CARD, _NAME, HOLDER_ID, REGION = HOLDERS[0]
AGENT_ID = HOLDERS[1][2]
SHOWN = "110***********002X"
OLD_STYLE = "110105491231002"  # a first-generation 15-digit number
NEW_PIN = "702614"


def assert_no_id(*texts: str) -> None:
    for text in texts:
        for number in (HOLDER_ID, HOLDER_ID[:17], OLD_STYLE, AGENT_ID, AGENT_ID[:17]):
            assert number not in text, text


# --- --id-stdin and the prompt -------------------------------------------------------------------


def test_ids_then_pins_on_stdin_activate_a_minors_card_with_its_guardian(run, ctx):
    from cardctl.domain.identity import make_id_number
    from datetime import date

    minor = make_id_number("110105", date(2016, 5, 1), 12)
    issue(ctx, "M00000001", "小明", minor, "110105")
    result = run("activate", "M00000001", "--id-stdin", "--pin-stdin", "--agent-name", "王芳",
                 input=f"{minor}\n{AGENT_ID}\n{GOOD_PIN}\n")
    assert result.exit_code == 0, result.stderr
    (event,) = [e for e in ctx_events(ctx) if e["action"] == "card.activate"]
    assert json.loads(event["detail"]) == {"agent": "440***********0019", "agent_name": "王芳"}


def ctx_events(ctx) -> list[dict]:
    from sqlalchemy import text

    with ctx.db.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(text("SELECT action, detail FROM events ORDER BY seq"))]


@pytest.mark.parametrize("command", [
    ["reset-pin", CARD, "--pin-stdin"], ["report-lost", CARD], ["cancel-loss", CARD],
    ["reissue", CARD, "--new-card-no", "A00000099", "--damaged"], ["unlock", CARD, "--reason", "at counter"],
], ids=lambda args: args[0])
def test_every_counter_command_takes_the_id_number_from_stdin(run, active_card, command):
    if command[0] == "cancel-loss":
        assert run("report-lost", CARD, "--temporary").exit_code == 0
    lines = f"{HOLDER_ID}\n" + (f"{NEW_PIN}\n" if "--pin-stdin" in command else "")
    right = run(*command, "--id-stdin", input=lines)
    assert right.exit_code == 0, right.stderr
    assert_no_id(right.stdout, right.stderr)


@pytest.mark.parametrize("command", [
    ["reset-pin", CARD, "--pin-stdin"], ["report-lost", CARD], ["cancel-loss", CARD],
    ["reissue", CARD, "--new-card-no", "A00000099", "--damaged"],
], ids=lambda args: args[0])
def test_a_wrong_id_number_from_stdin_is_refused_like_one_from_the_option(run, active_card, command):
    if command[0] == "cancel-loss":
        assert run("report-lost", CARD, "--temporary").exit_code == 0
    result = run(*command, "--id-stdin", input=f"{AGENT_ID}\n{NEW_PIN}\n")
    assert result.exit_code == 6 and "does not match the holder" in result.stderr


def test_without_a_terminal_or_id_stdin_the_id_number_is_not_guessed(run, active_card):
    result = run("reset-pin", CARD, "--pin-stdin", input=f"{NEW_PIN}\n")
    assert result.exit_code == 2
    assert "use --id-stdin (ID numbers first, then PINs, one per line)" in result.stderr


def test_id_stdin_and_a_card_list_on_stdin_exclude_each_other(run, active_card):
    result = run("unlock", "--from", "-", "--reason", "x", "--id-stdin", input=f"{CARD}\n")
    assert result.exit_code == 2 and "both want standard input" in result.stderr


def this_os_user_may_act(run, database) -> None:
    """Real processes act as this OS user: on SQLite it must be an operator (on PostgreSQL the
    database login acts, the one that ran init)."""
    import pwd

    if database.engine == "sqlite":
        assert run("operator", "add", pwd.getpwuid(os.geteuid()).pw_name, "--role", "staff").exit_code == 0


def test_the_id_number_given_on_stdin_never_shows_in_the_process_arguments(run, database, settings, active_card):
    """What ``ps`` shows every user of the host: /proc/PID/cmdline of the running command."""
    from realproc import run as run_process

    this_os_user_may_act(run, database)

    assert run_process(cli_env(settings.db_url, settings.key_file), "verify", CARD, "--pin-stdin",
                       input="000000\n").returncode == 3
    for _ in range(2):
        run_process(cli_env(settings.db_url, settings.key_file), "verify", CARD, "--pin-stdin", input="000000\n")
    proc = start(cli_env(settings.db_url, settings.key_file), "unlock", CARD, "--reason", "holder at counter",
                  "--id-stdin", stdin=True)
    wait_reading_stdin([proc])
    seen = Path(f"/proc/{proc.pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    assert "unlock" in seen and "--id-stdin" in seen
    code, out, err = finish(proc, f"{HOLDER_ID}\n")
    assert code == 0, err
    assert HOLDER_ID not in seen and HOLDER_ID[:17] not in seen
    assert "unlocked" in out and HOLDER_ID not in out + err


def test_a_person_at_a_terminal_is_asked_for_the_id_number(run, database, settings, active_card):
    """Without --id-number or --id-stdin, a terminal gets a prompt (here a pseudo-terminal)."""
    this_os_user_may_act(run, database)
    env = cli_env(settings.db_url, settings.key_file)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([*cardctl_command(), "report-lost", CARD, "--yes"], env=env, stdin=follower,
                            stdout=subprocess.PIPE, stderr=follower, close_fds=True)
    os.close(follower)
    screen = _read_until(leader, b"Holder's ID number: ")
    arguments = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    os.write(leader, f"{HOLDER_ID}\n".encode())
    out, _ = proc.communicate(timeout=60)
    os.close(leader)
    assert proc.returncode == 0, screen
    assert b"Holder's ID number: " in screen and b"report-lost" in arguments
    assert HOLDER_ID.encode() not in arguments


def _read_until(fd: int, wanted: bytes, limit_s: float = 60) -> bytes:
    seen, deadline = b"", time.monotonic() + limit_s
    while wanted not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 1024)
            except OSError:
                break
    return seen


# --- no message echoes an ID number --------------------------------------------------------------


def test_the_mask_covers_18_17_and_15_digit_shapes_anywhere_in_a_text():
    assert mask_id_shapes(f"region {HOLDER_ID}: bad") == f"region {SHOWN}: bad"
    assert mask_id_shapes(f"x{HOLDER_ID.lower()}y") == f"x{SHOWN[:-1]}xy"
    assert HOLDER_ID[:17] not in mask_id_shapes(f"'{HOLDER_ID[:17]}'")
    assert OLD_STYLE not in mask_id_shapes(f"unit {OLD_STYLE}.")
    assert mask_id_shapes("card A10000001, 2026-11-23T08:00:00Z, 12345678901234") == (
        "card A10000001, 2026-11-23T08:00:00Z, 12345678901234")


WRONG_PLACES = {
    "--region at issue": ["issue", "A10000009", "--name", "李四", "--id-number", AGENT_ID, "--region", HOLDER_ID],
    "--unit at issue": ["issue", "A10000009", "--name", "李四", "--id-number", AGENT_ID, "--region", "440305",
                        "--unit", HOLDER_ID],
    "a card number at issue": ["issue", HOLDER_ID, "--name", "李四", "--id-number", AGENT_ID, "--region", "440305"],
    "a name at issue": ["issue", "A10000009", "--name", HOLDER_ID, "--id-number", AGENT_ID, "--region", "440305"],
    "--issuer at issue": ["issue", "A10000009", "--name", "李四", "--id-number", AGENT_ID, "--region", "440305",
                          "--issuer", HOLDER_ID],
    "--type at issue": ["issue", "A10000009", "--name", "李四", "--id-number", AGENT_ID, "--region", "440305",
                        "--type", HOLDER_ID],
    "a card number at status": ["status", HOLDER_ID, OLD_STYLE],
    "--region at status": ["status", "--locked", "--region", HOLDER_ID],
    "--output": ["status", CARD, "-o", HOLDER_ID],
    "--channel": ["verify", CARD, "--pin-stdin", "--channel", HOLDER_ID],
    "--lang": ["--lang", HOLDER_ID, "status", CARD],
    "--operator": ["--operator", HOLDER_ID, "lock", CARD, "--reason", "test"],
    "--db": ["--db", f"/nonexistent/{HOLDER_ID}.db", "status", CARD],
    "--key-file": ["--key-file", f"/nonexistent/{HOLDER_ID}.key", "status", CARD],
    "an extra argument": ["verify", CARD, HOLDER_ID, "--pin-stdin"],
    "an unknown option": ["status", f"--{HOLDER_ID}"],
    "a card number at unlock": ["unlock", HOLDER_ID, OLD_STYLE, "--reason", "terminal fault"],
    "--reason at unlock": ["unlock", CARD, "--reason", f"holder {HOLDER_ID} at counter"],
    "--reason at lock": ["lock", CARD, "--reason", f"holder {HOLDER_ID}"],
    "--reason at operator disable": ["operator", "disable", "tester2", "--reason", f"left, {HOLDER_ID}"],
    "--new-card-no": ["reissue", CARD, "--new-card-no", HOLDER_ID, "--id-number", HOLDER_ID, "--damaged"],
    "--unit at add-arrears": ["add-arrears", "--unit", HOLDER_ID, "--amount", "10", "--period", "2026-10"],
    "--period at add-arrears": ["add-arrears", CARD, "--amount", "10", "--period", HOLDER_ID],
    "--amount at add-arrears": ["add-arrears", CARD, "--amount", HOLDER_ID, "--period", "2026-10"],
    "--receipt at pay-arrears": ["pay-arrears", CARD, "--amount", "1", "--receipt", HOLDER_ID],
    "a policy region at set": ["policy", "set", HOLDER_ID, "--max-attempts", "5"],
    "a policy region at show": ["policy", "show", HOLDER_ID],
    "an operator name at add": ["operator", "add", HOLDER_ID, "--role", "staff"],
    "an operator name at set-role": ["operator", "set-role", HOLDER_ID, "--role", "admin"],
    "--card at audit log": ["audit", "log", "--card", HOLDER_ID],
    "--since at audit log": ["audit", "log", "--since", HOLDER_ID],
    "--as-of at status": ["status", "--locked", "--as-of", HOLDER_ID],
    "--agent-name": ["reset-pin", CARD, "--id-number", HOLDER_ID, "--agent-id-number", AGENT_ID,
                     "--agent-name", HOLDER_ID, "--pin-stdin"],
}


@pytest.mark.parametrize("args", list(WRONG_PLACES.values()), ids=list(WRONG_PLACES))
def test_an_id_number_typed_into_the_wrong_place_is_never_echoed(run, database, active_card, args):
    stdin = f"{HOLDER_ID}\n{NEW_PIN}\n" if "--pin-stdin" in args else None
    result = run(*args, input=stdin)
    assert_no_id(result.stdout, result.stderr)
    # nor kept: a reason, a name or an operator typed that way is masked before it is stored
    dump = json.dumps(database.dump(), ensure_ascii=False)
    assert HOLDER_ID not in dump and HOLDER_ID[:17] not in dump


def test_a_csv_with_id_numbers_in_the_wrong_columns_echoes_none(run, database, tmp_path):
    rows = [
        "card_no,name,id_number,region,type,unit",
        f"A10000001,张伟,{AGENT_ID},{HOLDER_ID},employee,",  # the ID number in the region column
        f"{HOLDER_ID},张伟,{AGENT_ID},440305,employee,",  # and in the card number's
        f"A10000003,张伟,{AGENT_ID},440305,{HOLDER_ID},",  # and in the type's
        f"A10000004,张伟,{AGENT_ID},440305,employee,{OLD_STYLE}",  # a 15-digit one in the unit's
    ]
    path = tmp_path / "cards.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    for output in ("table", "json", "csv"):
        result = run("import", str(path), "-o", output)
        assert result.exit_code == 7, result.stderr
        assert_no_id(result.stdout, result.stderr)
    listing = tmp_path / "list.txt"
    listing.write_text(f"{HOLDER_ID}\n{CARD}\n", encoding="utf-8")
    result = run("unlock", "--from", str(listing), "--reason", "terminal fault", "-o", "jsonl")
    assert_no_id(result.stdout, result.stderr)
