"""Commands that only read (status, audit, policy show) open the database read-only: they work
on a file and folder nobody may write, and they never change a byte."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import text

from cardctl.errors import DatabaseError
from cardctl.storage.db import Database
from helpers_security import CARD, ID_NUMBER, PIN, WRONG, Office
from orm import orm_write

READS = [("status",), ("status", CARD), ("status", "--summary"), ("status", "--locked", "-o", "csv"),
         ("audit", "verify"), ("audit", "log", "-o", "jsonl"), ("policy", "show"),
         ("settings", "show")]


@pytest.fixture
def office(database, tmp_path, monkeypatch) -> Iterator[Office]:
    office = Office(database, tmp_path, monkeypatch)
    office.ok("init")
    office.ok("import", str(Path(__file__).resolve().parent.parent / "examples" / "cards.csv"))
    office.ok("activate", CARD, "--id-number", ID_NUMBER, "--pin-stdin", input=PIN + "\n")
    for _ in range(3):
        office("verify", CARD, "--pin-stdin", input=WRONG + "\n")
    yield office
    office.close()


def test_a_read_only_connection_refuses_every_write(office):
    db = Database(office.database.url, read_only=True)
    try:
        with pytest.raises(DatabaseError, match="read-?only"):
            with orm_write(db) as session:
                session.execute(text("UPDATE policies SET max_attempts = 9"))
    finally:
        db.engine.dispose()


@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_a_read_command_changes_nothing(office, args):
    before = office.dump()
    assert office(*args).exit_code == 0
    assert office.dump() == before


def _files(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@contextlib.contextmanager
def unwritable(folder: Path) -> Iterator[None]:
    """The folder and its files become unwritable, even for root (which ignores permission bits)."""
    paths = [folder, *folder.iterdir()]
    if os.geteuid() != 0:
        modes = {p: p.stat().st_mode for p in paths}
        for p in paths:
            p.chmod(0o555 if p.is_dir() else modes[p] & 0o555)  # a key file stays private (0400)
        try:
            yield
        finally:
            for p, mode in modes.items():
                p.chmod(mode)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root, which ignores permissions, and chattr is not installed")
    made = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True)
    if made.returncode != 0:
        subprocess.run(["chattr", "-i", *map(str, paths)], capture_output=True)
        pytest.skip(f"running as root and this file system has no immutable flag: {made.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


@pytest.fixture
def shelf(office, tmp_path) -> Path:
    """A copy of the office's database and key in a folder of their own, as an auditor gets it."""
    folder = tmp_path / "shelf"
    folder.mkdir()
    gc.collect()  # finished commands' connections: let SQLite checkpoint and close the WAL
    with contextlib.closing(sqlite3.connect(office.database.path)) as source, \
            contextlib.closing(sqlite3.connect(folder / "cards.db")) as copy:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode = WAL")
    shutil.copy2(office.key_file, folder / "cardctl.key")
    assert (folder / "cards.db").read_bytes()[18] == 2  # still a WAL-mode file
    return folder


def _on(shelf: Path) -> dict:
    return {"CARDCTL_DB": str(shelf / "cards.db"), "CARDCTL_KEY_FILE": str(shelf / "cardctl.key")}


@pytest.mark.sqlite_only("file and folder permissions are SQLite's; PostgreSQL has READ ONLY transactions")
@pytest.mark.parametrize("args", READS, ids=" ".join)
def test_read_commands_work_on_a_file_and_folder_nobody_may_write(office, shelf, args):
    expected = office(*args, env=_on(shelf))
    assert expected.exit_code == 0, expected.stderr
    before = _files(shelf)
    with unwritable(shelf):
        result = office(*args, env=_on(shelf))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected.stdout
    assert _files(shelf) == before  # not one byte changed, no -wal or -shm left behind


@pytest.mark.sqlite_only("file and folder permissions are SQLite's")
def test_a_write_on_an_unwritable_database_fails_cleanly_and_changes_nothing(office, shelf):
    before = _files(shelf)
    with unwritable(shelf):
        result = office("unlock", CARD, "--reason", "x", env=_on(shelf))
    assert result.exit_code == 1 and result.stdout == "" and len(result.stderr.splitlines()) == 1
    assert _files(shelf) == before


@pytest.mark.sqlite_only("file and folder permissions are SQLite's")
def test_a_refusal_on_an_unwritable_database_still_exits_6_and_says_it_was_not_recorded(office, shelf):
    with unwritable(shelf):
        result = office("status", env=_on(shelf), as_="mallory")
    assert result.exit_code == 6
    assert "status needs role auditor; mallory is not a cardctl operator" in result.stderr
    assert "could not be recorded" in result.stderr

