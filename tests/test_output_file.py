"""An output file never replaces what it should not (cardctl/output_file.py): ``report --html`` and
``audit export`` aimed at the key file, the database, its -wal, a device, a FIFO, a directory, a
symbolic link to the key or a hard link to the database, by an auditor and by staff, with and
without --force. Each is refused with one line and exit 2, and the file is byte for byte unchanged.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
from pathlib import Path
from typing import Iterator

import pytest

from cardctl.config import Settings
from helpers_security import Office

COMMANDS = {
    "report --html": lambda target, *more: ("report", "--html", target, *more),
    "audit export": lambda target, *more: ("audit", "export", target, *more),
}


@pytest.fixture
def office(database, tmp_path, monkeypatch) -> Iterator[Office]:
    office = Office(database, tmp_path, monkeypatch).open_counter()
    yield office
    office.close()


def fingerprint(path: Path) -> tuple:
    """What a file is: its kind, inode and (for a regular file) the hash of its bytes."""
    found = os.lstat(path)
    content = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(found.st_mode) else None
    return stat.S_IFMT(found.st_mode), found.st_ino, content


def targets(office: Office, tmp_path: Path) -> dict[str, Path]:
    """Every path an output file must never take, made real on this engine."""
    found = {"the key file": office.key_file}
    link = tmp_path / "innocent.html"
    link.symlink_to(office.key_file)
    found["a symbolic link to the key file"] = link
    found["the key file spelled another way"] = tmp_path / "sub" / ".." / office.key_file.name
    (tmp_path / "sub").mkdir()
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    found["a FIFO"] = fifo
    found["a directory"] = tmp_path / "sub"
    if os.geteuid() == 0:  # a real device node (the null device), never /dev/null itself
        device = tmp_path / "null"
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
        found["a device node"] = device
    if office.engine == "sqlite":
        db = Path(office.database.url)
        found["the database"] = db
        hard = tmp_path / "report-copy.html"
        os.link(db, hard)
        found["a hard link to the database"] = hard
        found["the database's -wal"] = Path(str(db) + "-wal")
    return found


def hold_wal(office: Office) -> sqlite3.Connection | None:
    """Keep the -wal file in existence (SQLite removes it when the last connection closes)."""
    if office.engine != "sqlite":
        return None
    conn = sqlite3.connect(office.database.url, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("BEGIN")
    conn.execute("SELECT count(*) FROM cards").fetchone()
    return conn


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("role", ["auditor", "staff"])
def test_an_output_file_never_replaces_cardctls_files_or_anything_but_a_regular_file(
        office, tmp_path, command, role):
    login = office.add_operator(role[:3], role)
    holder = hold_wal(office)
    try:
        found = targets(office, tmp_path)
        for what, path in found.items():
            for force in ((), ("--force",)):
                before = fingerprint(path) if os.path.lexists(path) else None
                dump = office.dump()
                result = office(*COMMANDS[command](str(path), *force), as_=login)
                assert result.exit_code == 2, (what, force, result.stdout, result.stderr)
                assert result.stderr.startswith("cardctl: ") and result.stderr.count("\n") == 1, (what, result.stderr)
                assert (fingerprint(path) if os.path.lexists(path) else None) == before, f"{what} changed"
                assert office.dump() == dump
        assert not list(tmp_path.glob(".*.part")), "a temporary file was left behind"
    finally:
        if holder is not None:
            holder.close()


@pytest.mark.sqlite_only("only SQLite has a database file beside the key")
def test_the_wal_and_journal_names_are_refused_even_before_they_exist(office, tmp_path):
    db = Path(office.database.url)
    for suffix in ("-wal", "-shm", "-journal"):
        path = Path(str(db) + suffix)
        if path.exists():
            continue
        for command in COMMANDS.values():
            result = office(*command(str(path), "--force"))
            assert result.exit_code == 2 and "cardctl's own files" in result.stderr, result.stderr
            assert not path.exists()


def test_an_existing_report_is_kept_unless_force_and_then_replaced_whole_with_mode_0600(office, tmp_path):
    page = tmp_path / "report.html"
    page.write_text("yesterday's report")
    page.chmod(0o644)
    refused = office("report", "--html", str(page))
    assert refused.exit_code == 2 and "--force" in refused.stderr
    assert page.read_text() == "yesterday's report"
    office.ok("report", "--html", str(page), "--force")
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert stat.S_IMODE(page.stat().st_mode) == 0o600


def test_force_replaces_a_link_by_name_and_never_writes_through_it(office, tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("not a report")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    office.ok("report", "--html", str(link), "--force")
    assert target.read_text() == "not a report"
    assert not link.is_symlink() and link.read_text().startswith("<!DOCTYPE html>")


def test_dash_is_standard_output_for_the_report_and_the_export(office, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    page = office.ok("report", "--html", "-")
    assert page.stdout.startswith("<!DOCTYPE html>") and not (tmp_path / "-").exists()
    export = office.ok("audit", "export", "-")
    assert '"cardctl-audit-export"' in export.stdout.splitlines()[0]


def test_the_protected_files_are_the_key_and_the_sqlite_database_with_its_companions(tmp_path):
    settings = Settings(db_url=str(tmp_path / "cards.db"), key_file=tmp_path / "k.key", operator="o", os_user="o")
    assert set(settings.protected_files()) == {tmp_path / "k.key", tmp_path / "cards.db",
                                               tmp_path / "cards.db-wal", tmp_path / "cards.db-shm",
                                               tmp_path / "cards.db-journal"}
    url = Settings(db_url=f"sqlite:///{tmp_path}/cards.db", key_file=tmp_path / "k.key", operator="o", os_user="o")
    assert tmp_path / "cards.db-wal" in url.protected_files()
    pg = Settings(db_url="postgresql+psycopg://u@h/db", key_file=tmp_path / "k.key", operator="o", os_user="o")
    assert pg.protected_files() == [tmp_path / "k.key"]
