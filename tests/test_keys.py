"""Keys by role and private key files, attacked as an insider would: with an auditor's key file
copied from an auditor's PC, a key file left readable by everyone, a FIFO or a device given as
key file, a lost key file and ``init`` run again to "fix" it.

Role key files (README, "Files and keys"): a staff file holds what PIN and ID checks need; an
auditor's holds the audit key, the fingerprint and the public signing key only.
"""

from __future__ import annotations

import hmac
import json
import os
import stat
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from cardctl.domain import pins
from cardctl.domain.identity import make_id_number
from cardctl.errors import KeyFileError
from cardctl.keys import load_keys
from helpers_security import CARD, ID_NUMBER, OTHER, OTHER_ID, PIN, Office

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def office(database, tmp_path, monkeypatch):
    office = Office(database, tmp_path, monkeypatch).open_counter()
    yield office
    office.close()


def export_role(office: Office, role: str) -> Path:
    path = office.key_file.parent / f"{role}.key"
    result = office("key", "export", "--role", role, str(path))
    assert result.exit_code == 0, result.stderr
    return path


def rows(database, sql: str) -> list:
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from cardctl.storage.db import normalise_url

    engine = create_engine(normalise_url(database.url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)))
    finally:
        engine.dispose()


def one_line(result, code: int, *fragments: str) -> str:
    assert result.exit_code == code, (result.exit_code, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cardctl: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# --- keys by role ----------------------------------------------------------------------------


def test_an_auditor_key_file_cannot_compute_an_id_or_pin_hash_not_even_to_brute_force_one(office):
    auditor = load_keys(export_role(office, "auditor"))
    for part in ("pepper", "id_key", "data_key"):
        with pytest.raises(KeyFileError, match="auditor key file"):
            getattr(auditor, part)
    with pytest.raises(KeyFileError, match="auditor key file"):
        auditor.id_hash(ID_NUMBER)
    with pytest.raises(KeyFileError, match="auditor key file"):
        pins.hash_pin(PIN, auditor.pepper, 4)

    # the old attack: every candidate number of a masked holder (region + birth dates + sequence),
    # hashed with the key file at hand, compared with the stored hash. Here with the true number
    # itself and every secret the auditor's file holds: none gives the stored hash.
    (stored,) = rows(office.database, f"SELECT id_hash FROM holders WHERE id_masked = '{ID_NUMBER[:3]}"
                                      f"{'*' * 11}{ID_NUMBER[-4:]}'")
    record = json.loads(Path(auditor.path).read_text())
    secrets_held = [bytes.fromhex(v) for k, v in record.items() if isinstance(v, str) and len(v) >= 32
                    and all(c in "0123456789abcdef" for c in v)]
    assert secrets_held  # the audit key and the public key
    for secret in secrets_held:
        assert hmac.digest(secret, ID_NUMBER.encode(), "sha256").hex() != stored[0]
    candidates = [make_id_number("110105", date(1952, 5, 10) + timedelta(days=d), s) for d in range(5)
                  for s in range(1000)]
    assert ID_NUMBER in candidates
    recovered = []
    for candidate in candidates:
        try:
            if auditor.id_hash(candidate) == stored[0]:
                recovered.append(candidate)
        except KeyFileError:
            pass
    assert recovered == []
    # the master key (what every auditor held before) recovers it at once
    master = load_keys(office.key_file)
    assert [c for c in candidates if master.id_hash(c) == stored[0]] == [ID_NUMBER]


STAFF_COMMANDS = [
    ("verify", CARD, "--pin-stdin"),
    ("issue", "N00000001", "--name", "x", "--id-number", make_id_number("110105", date(1981, 2, 3), 11),
     "--region", "110105"),
    ("activate", OTHER, "--id-number", OTHER_ID, "--pin-stdin"),
    ("reset-pin", CARD, "--id-number", ID_NUMBER, "--pin-stdin"),
    ("change-pin", CARD, "--pin-stdin"),
    ("unlock", CARD, "--reason", "holder verified", "--id-number", ID_NUMBER),
    ("report-lost", CARD, "--temporary"),
    ("import", "-"),
]


def test_with_an_auditor_key_file_staff_commands_refuse_and_write_nothing_while_reads_work(office, tmp_path):
    auditor = str(export_role(office, "auditor"))
    before = office.dump()
    for argv in STAFF_COMMANDS:
        result = office(*argv, input="583920\n702614\n", env={"CARDCTL_KEY_FILE": auditor})
        one_line(result, 1, "needs a staff key file", "is an auditor key file")
    assert office.dump() == before
    assert office("audit", "sign").exit_code == 0  # the signing host's work, as its cron sweep does
    before = office.dump()
    for argv in (("status", CARD), ("report", "-o", "json"), ("audit", "verify"), ("audit", "log"),
                 ("policy", "show"), ("audit", "export", str(tmp_path / "a.jsonl"))):
        result = office(*argv, env={"CARDCTL_KEY_FILE": auditor})
        assert result.exit_code == 0, (argv, result.stderr)
    result = office("audit", "verify", "--file", str(tmp_path / "a.jsonl"), env={"CARDCTL_KEY_FILE": auditor})
    assert result.exit_code == 0, result.stderr
    assert office.dump() == before


def test_a_staff_key_file_does_the_counter_work_but_cannot_init(office):
    staff = str(export_role(office, "staff"))
    env = {"CARDCTL_KEY_FILE": staff}
    assert office("verify", CARD, "--pin-stdin", input=PIN + "\n", env=env).exit_code == 0
    assert office("reset-pin", CARD, "--id-number", ID_NUMBER, "--pin-stdin", input="702614\n", env=env).exit_code == 0
    assert office("verify", CARD, "--pin-stdin", input="702614\n").exit_code == 0  # the master agrees
    assert office("audit", "verify", env=env).exit_code == 0
    one_line(office("init", env=env), 1, "init needs the master key file")


def test_role_key_files_are_derived_once_from_the_master_private_and_self_describing(office):
    staff = export_role(office, "staff")
    auditor = export_role(office, "auditor")
    for path in (staff, auditor):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    record = json.loads(auditor.read_text())
    assert (record["format"], record["version"], record["role"]) == ("cardctl-key", 1, "auditor")
    assert set(record) == {"format", "version", "role", "note", "fingerprint", "audit_key", "public_key"}
    assert set(json.loads(staff.read_text())) > {"pepper", "id_key", "data_key", "audit_key", "public_key"}
    master = load_keys(office.key_file)
    assert load_keys(staff).fingerprint == load_keys(auditor).fingerprint == master.fingerprint
    # never replaced, never made from a role file
    one_line(office("key", "export", "--role", "auditor", str(auditor)), 1, "exists")
    one_line(office("key", "export", "--role", "auditor", str(auditor) + "2", env={"CARDCTL_KEY_FILE": str(staff)}),
             1, "made from the master key file")
    shown = office("key", "show", "-o", "json", env={"CARDCTL_KEY_FILE": str(auditor)})
    (info,) = json.loads(shown.stdout)
    assert (info["role"], info["checks_pins_and_ids"]) == ("auditor", False)
    assert master.audit_key.hex() not in shown.stdout + shown.stderr  # shows no secret


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(version=2), "version 2 role key file"),
    (lambda r: r.update(role="root"), "names no known role"),
    (lambda r: r.update(pepper="00" * 32), "an auditor key file carries staff keys"),
    (lambda r: r.update(audit_key="zz"), "audit_key is missing or malformed"),
    (lambda r: r.pop("fingerprint"), "fingerprint is missing or malformed"),
])
def test_a_damaged_or_newer_role_key_file_is_refused_in_one_line(office, change, message):
    path = export_role(office, "auditor")
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))
    one_line(office("status", CARD, env={"CARDCTL_KEY_FILE": str(path)}), 1, message)


# --- files are private -----------------------------------------------------------------------


def test_init_makes_the_database_its_wal_and_shm_and_every_key_file_private(tmp_path, monkeypatch):
    from conftest import empty_database

    database = empty_database("sqlite", tmp_path, "private")
    office = Office(database, tmp_path, monkeypatch)
    monkeypatch.setattr(os, "umask", os.umask)  # whatever the umask of the shell
    old = os.umask(0o022)
    try:
        office.ok("init")
        import sqlite3

        held = sqlite3.connect(database.path)  # keeps -wal and -shm in place while it is open
        held.execute("PRAGMA journal_mode=WAL")
        held.execute("CREATE TABLE scratch (x)")
        files = [database.path, Path(f"{database.path}-wal"), Path(f"{database.path}-shm"),
                 office.key_file, tmp_path / "cardctl.signing.key"]
        modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
        held.close()
    finally:
        os.umask(old)
    assert set(modes.values()) == {"0o600"}, modes


def test_an_operators_group_may_share_the_files_when_named(tmp_path, monkeypatch):
    import grp

    from conftest import empty_database

    group = grp.getgrgid(os.getgid()).gr_name
    database = empty_database("sqlite", tmp_path, "shared")
    office = Office(database, tmp_path, monkeypatch)
    assert office("init", env={"CARDCTL_GROUP": group}).exit_code == 0
    assert stat.S_IMODE(database.path.stat().st_mode) == 0o660
    assert stat.S_IMODE(office.key_file.stat().st_mode) == 0o640
    assert office("status", CARD, env={"CARDCTL_GROUP": group}).exit_code == 5  # read, card unknown
    # without the group named, a group-readable key file is refused
    one_line(office("status", CARD), 1, "accessible by others (mode 0640)", f"chmod 600 {office.key_file}")


@pytest.mark.parametrize("mode", [0o644, 0o604, 0o620, 0o660, 0o666])
def test_a_key_file_others_may_read_or_write_is_refused_as_ssh_refuses_a_private_key(office, mode):
    office.key_file.chmod(mode)
    before = office.dump()
    line = one_line(office("verify", CARD, "--pin-stdin", input=PIN + "\n"), 1,
                    f"mode {mode:04o}", f"run chmod 600 {office.key_file}")
    assert "accessible by others" in line
    assert office.dump() == before
    office.key_file.chmod(0o600)
    assert office("verify", CARD, "--pin-stdin", input=PIN + "\n").exit_code == 0


def test_a_fifo_device_directory_or_binary_file_as_key_file_gets_a_clear_error(office, tmp_path):
    fifo = tmp_path / "fifo.key"
    os.mkfifo(fifo, 0o600)
    folder = tmp_path / "folder.key"
    folder.mkdir(mode=0o700)
    binary = tmp_path / "binary.key"
    binary.write_bytes(os.urandom(4096) + b"\xff\x00")
    binary.chmod(0o600)
    huge = tmp_path / "huge.key"
    huge.write_bytes(b"0" * (1 << 20))
    huge.chmod(0o600)
    for path, fragment in ((fifo, "is a FIFO, not a key file"), (Path("/dev/zero"), "is a device, not a key file"),
                           (folder, "is a directory, not a key file"), (binary, "not a cardctl key"),
                           (huge, "not a cardctl key file (too large)")):
        one_line(office("status", CARD, env={"CARDCTL_KEY_FILE": str(path)}), 1, fragment)
    # nor as the public key to verify with (a public key may be world-readable, not a FIFO)
    one_line(office("audit", "verify", "--public-key", str(fifo)), 2, "is a FIFO, not a key file")
    # a FIFO nobody writes to must not hang a real process either
    env = {**os.environ, "CARDCTL_DB": office.database.url, "CARDCTL_KEY_FILE": str(fifo), "CARDCTL_LANG": "en"}
    done = subprocess.run([sys.executable, "-m", "cardctl", "audit", "verify", "--file", "-"], env=env,
                          input="", capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "is a FIFO, not a key file" in done.stderr, done.stderr


# --- init never makes a key for a database that has one -------------------------------------


def test_a_missing_key_file_is_to_be_restored_and_init_makes_no_new_one(office, tmp_path):
    fingerprint = load_keys(office.key_file).fingerprint
    backup = tmp_path / "backup.key"
    office.key_file.rename(backup)
    before = office.dump()
    for argv in (("status", CARD), ("verify", CARD, "--pin-stdin"), ("init",)):
        one_line(office(*argv, input=PIN + "\n"), 1, "restore that key file from backup",
                 f"fingerprint {fingerprint}")
        assert not office.key_file.exists()  # init did not make a new, unrelated key
    assert office.dump() == before
    backup.rename(office.key_file)
    assert office("init").exit_code == 0
    assert office("verify", CARD, "--pin-stdin", input=PIN + "\n").exit_code == 0


def test_init_with_another_databases_key_names_both_fingerprints(office, tmp_path, new_database):
    other = Office(new_database("other"), tmp_path / "o", office.monkeypatch)
    (tmp_path / "o").mkdir()
    other.ok("init")
    before = office.dump()
    one_line(office("init", env={"CARDCTL_KEY_FILE": str(other.key_file)}), 1, "does not belong to this database",
             load_keys(office.key_file).fingerprint)
    assert office.dump() == before


def _as_nobody(argv: list[str], env: dict[str, str]) -> tuple[int, str]:
    """``cardctl argv`` in a forked child that became ``nobody`` (cardctl is already imported, so the
    child needs no access to this Python's installation, which may live under /root)."""
    import pwd

    from typer.testing import CliRunner

    from cardctl.cli import app

    nobody = pwd.getpwnam("nobody")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            result = CliRunner().invoke(app, argv, env=env, catch_exceptions=False)
            os.write(write_end, json.dumps([result.exit_code, result.stderr]).encode())
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as a failure
            os.write(write_end, json.dumps([-1, repr(exc)]).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    code, stderr = json.loads(data)
    return code, stderr


def test_a_database_in_a_folder_the_user_cannot_enter_is_permission_denied_not_missing(engine, tmp_path):
    if engine != "sqlite":
        pytest.skip("a file-system permission: SQLite only")
    if os.geteuid() != 0 or not hasattr(os, "fork"):
        pytest.skip("needs root (to become another user, nobody) and fork")
    import tempfile

    outer = Path(tempfile.mkdtemp(prefix="cardctl-perm-"))
    try:
        outer.chmod(0o755)
        private = outer / "private"
        private.mkdir(mode=0o700)
        env = {"CARDCTL_LANG": "en", "CARDCTL_DB": str(private / "cards.db"),
               "CARDCTL_KEY_FILE": str(private / "cardctl.key"), "CARDCTL_OPERATOR": "tester"}
        from typer.testing import CliRunner

        from cardctl.cli import app

        assert CliRunner().invoke(app, ["init"], env=env).exit_code == 0
        for argv in (["status", "--summary"], ["init"]):
            code, stderr = _as_nobody(argv, env)
            assert code == 1, stderr
            assert "permission denied" in stderr and "does not exist" not in stderr, stderr
            assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    finally:
        import shutil

        shutil.rmtree(outer, ignore_errors=True)
