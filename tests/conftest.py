"""Fixtures: every test gets its own initialised database, a fast bcrypt cost and a clock it controls
(``CARDCTL_TEST_LOW_COST=1``: the test-only switch that lets ``CARDCTL_BCRYPT_COST=4`` lower the
database's cost, docs/security.md "The PIN hashing cost").

Every test that uses a database (``database``, ``db_url``, ``settings``, ``ctx`` ...) runs once per
engine: SQLite (a file in ``tmp_path``) and PostgreSQL (a throwaway cluster started once per run by
scripts/pg-cluster.sh; each test gets an empty database). ``CARDCTL_TEST_ENGINES=sqlite`` restricts
a local run; with ``CI=true`` PostgreSQL is mandatory and a cluster that cannot start fails the run.
A test that is about one engine itself is marked ``@pytest.mark.sqlite_only("why")`` or
``@pytest.mark.postgresql_only("why")``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import pytest

os.environ.setdefault("CARDCTL_BCRYPT_COST", "4")  # tests only: bcrypt's minimum cost
os.environ.setdefault("CARDCTL_TEST_LOW_COST", "1")  # ... which only this switch lets lower the database's
os.environ["CARDCTL_LANG"] = "en"  # whatever the machine's locale; tests/test_i18n.py asks for Chinese itself

from cardctl.config import Settings  # noqa: E402
from cardctl.services.cards import activate, issue_card, parse_card_input  # noqa: E402
from cardctl.services.context import Context  # noqa: E402
from cardctl.services.setup import init_database  # noqa: E402

START = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai

# valid holders: (card_no, name, id_number, region)
HOLDERS = [
    ("A00000001", "张伟", "11010519491231002X", "110105"),
    ("A00000002", "王芳", "440305197001010019", "440305"),
    ("A00000003", "李娜", "33010619850228002X", "330106"),
]
GOOD_PIN = "583920"


@dataclass
class FakeClock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


# --- engines ------------------------------------------------------------------------------

ALL_ENGINES = ("sqlite", "postgresql")
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def engines() -> list[str]:
    raw = os.environ.get("CARDCTL_TEST_ENGINES", ",".join(ALL_ENGINES))
    chosen = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(ALL_ENGINES))
    if unknown or not chosen:
        raise pytest.UsageError(f"CARDCTL_TEST_ENGINES={raw!r}: expected a comma list of {', '.join(ALL_ENGINES)}")
    if IN_CI and "postgresql" not in chosen:
        raise pytest.UsageError("CI=true: PostgreSQL is mandatory; CARDCTL_TEST_ENGINES must include postgresql")
    return chosen


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "sqlite_only(reason): the test is about SQLite itself; "
                                       "it does not run on PostgreSQL")
    config.addinivalue_line("markers", "postgresql_only(reason): the test is about PostgreSQL itself "
                                       "(logins, grants); it does not run on SQLite")
    engines()  # a bad CARDCTL_TEST_ENGINES is a usage error before anything runs


def pytest_generate_tests(metafunc) -> None:
    """Run every test that needs a database once per engine; a ``sqlite_only`` or
    ``postgresql_only`` one on that engine only."""
    if "engine" not in metafunc.fixturenames:
        return
    chosen = engines()
    for only in ALL_ENGINES:
        marker = metafunc.definition.get_closest_marker(f"{only}_only")
        if marker is not None:
            if not marker.args:
                raise pytest.UsageError(f"{metafunc.definition.nodeid}: {only}_only needs a reason")
            chosen = [name for name in chosen if name == only]
    # session scope: all SQLite tests run, then all PostgreSQL ones, and module fixtures
    # (templates) are built once per engine
    metafunc.parametrize("engine", chosen, indirect=True, scope="session")


@pytest.fixture(scope="session")
def engine(request) -> str:
    if request.param == "postgresql":
        pg_server().admin_url()  # start the cluster now: a failure is this test's setup error
    return request.param


class PgServer:
    """The run's throwaway PostgreSQL cluster, started on first use and stopped at the end."""

    def __init__(self) -> None:
        self._base: Path | None = None
        self._url: str | None = None
        self._failure: str | None = None
        self._created: set[str] = set()
        self.prefix = "t" + os.environ.get("PYTEST_XDIST_WORKER", "main").replace("gw", "")

    def admin_url(self) -> str:
        if self._url is not None:
            return self._url
        if self._failure is not None:  # failed once: fail every PostgreSQL test at once, not after 4 s each
            pytest.fail(self._failure, pytrace=False)
        from pg_cluster import ClusterError, new_base_dir, start_cluster

        self._base = new_base_dir()
        try:
            self._url = start_cluster(self._base)
        except ClusterError as exc:
            self._failure = (f"PostgreSQL could not start, so the PostgreSQL half of the suite cannot run "
                             f"(set CARDCTL_TEST_ENGINES=sqlite to skip it locally; never in CI):\n{exc}")
            pytest.fail(self._failure, pytrace=False)
        return self._url

    def name(self, label: str) -> str:
        return f"{self.prefix}_{label}".lower()

    def url(self, name: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.admin_url()).set(database=name).render_as_string(hide_password=False)

    def empty(self, name: str) -> str:
        """Database ``name``, existing and empty (created once, its schema dropped on reuse)."""
        from pg_cluster import fresh_database

        if name not in self._created or not self.exists(name):
            fresh_database(self.admin_url(), name)
            self._created.add(name)
            return self.url(name)
        self.kick_others(name)
        with self.connect(name) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        return self.url(name)

    def clone(self, template: str, name: str) -> str:
        from pg_cluster import drop_database
        from psycopg import sql

        self.kick_others(template)
        drop_database(self.admin_url(), name)
        with self.connect("postgres") as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(template)))
        self._created.add(name)
        return self.url(name)

    def drop(self, name: str) -> None:
        from pg_cluster import drop_database

        drop_database(self.admin_url(), name)

    def exists(self, name: str) -> bool:
        with self.connect("postgres") as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None

    def kick_others(self, name: str) -> None:
        """End the sessions on ``name`` that previous tests' engines left in their pools (they would
        block DROP SCHEMA), whatever login they use: as the cluster's superuser, which trust allows."""
        with self.connect("postgres", superuser=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                         "WHERE datname = %s AND backend_type = 'client backend'", (name,))

    def connect(self, name: str, superuser: bool = False):
        import psycopg
        from pg_cluster import conninfo
        from sqlalchemy.engine import make_url

        url = self.admin_url()
        if superuser:  # scripts/pg-cluster.sh: initdb -U postgres
            url = make_url(url).set(username="postgres").render_as_string(hide_password=False)
        return psycopg.connect(conninfo(url, name), autocommit=True)

    def stop(self) -> None:
        if self._base is None:
            return
        from pg_cluster import stop_cluster

        with contextlib.suppress(Exception):
            stop_cluster(self._base)
        shutil.rmtree(self._base, ignore_errors=True)
        self._base = self._url = None


_PG = PgServer()


def pg_server() -> PgServer:
    return _PG


def pytest_sessionfinish(session, exitstatus) -> None:
    _PG.stop()


# --- one test's database -------------------------------------------------------------------


class TestDatabase:
    """What a test needs to know about its database, the same on both engines.

    ``url`` goes to ``Settings.db_url`` / ``CARDCTL_DB``; ``dump()`` is every row of every table
    (to prove a refused command wrote nothing); ``hold_write_lock()`` is another process writing.
    """

    __test__ = False
    engine: str
    url: str

    def dump(self) -> dict[str, list[str]]:
        from sqlalchemy import create_engine, inspect, text
        from sqlalchemy.pool import NullPool

        from cardctl.storage.db import normalise_url

        engine = create_engine(normalise_url(self.url), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return {name: sorted(map(repr, conn.execute(text(f'SELECT * FROM "{name}"'))))
                        for name in sorted(inspect(conn).get_table_names())}
        finally:
            engine.dispose()

    def run_sql(self, sql: str, **params) -> None:
        """Change the database behind cardctl's back (a tamperer, an old or newer cardctl)."""
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        from cardctl.storage.db import normalise_url

        engine = create_engine(normalise_url(self.url), poolclass=NullPool)
        try:
            with engine.begin() as conn:
                conn.execute(text(sql), params)
        finally:
            engine.dispose()

    def count(self, table: str, where: str = "") -> int:
        from sqlalchemy import create_engine, text
        from sqlalchemy.pool import NullPool

        from cardctl.storage.db import normalise_url

        engine = create_engine(normalise_url(self.url), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return conn.execute(text(f'SELECT count(*) FROM "{table}" {where}')).scalar()
        finally:
            engine.dispose()

    def writer_busy(self) -> bool:
        """Whether some process is inside a write transaction right now."""
        raise NotImplementedError

    def exists(self) -> bool:
        raise NotImplementedError

    def drop(self) -> None:
        """Make the database missing."""
        raise NotImplementedError

    def create_empty(self) -> None:
        """An existing database without cardctl's schema."""
        raise NotImplementedError

    def hold_write_lock(self):
        raise NotImplementedError


class SqliteTestDatabase(TestDatabase):
    engine = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = str(path)

    def exists(self) -> bool:
        return self.path.exists()

    def drop(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)

    def create_empty(self) -> None:
        sqlite3.connect(self.path).close()

    def copy_from(self, other: "SqliteTestDatabase") -> None:
        with contextlib.closing(sqlite3.connect(other.path)) as source, \
                contextlib.closing(sqlite3.connect(self.path)) as copy:
            source.backup(copy)

    def writer_busy(self) -> bool:
        probe = sqlite3.connect(self.path, isolation_level=None, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError:
            return True
        finally:
            probe.close()

    @contextlib.contextmanager
    def hold_write_lock(self) -> Iterator[None]:
        holder = sqlite3.connect(self.path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.execute("ROLLBACK")
            holder.close()


class PgTestDatabase(TestDatabase):
    engine = "postgresql"

    def __init__(self, server: PgServer, name: str) -> None:
        self.server, self.name = server, name
        self.url = server.url(name)

    def exists(self) -> bool:
        return self.server.exists(self.name)

    def drop(self) -> None:
        self.server.drop(self.name)

    def create_empty(self) -> None:
        self.server.empty(self.name)

    def copy_from(self, other: "PgTestDatabase") -> None:
        self.server.clone(other.name, self.name)

    def writer_busy(self) -> bool:
        from cardctl.storage.db import PG_WRITE_LOCK

        with self.server.connect(self.name) as probe, probe.transaction():
            return not probe.execute("SELECT pg_try_advisory_xact_lock(%s)", (PG_WRITE_LOCK,)).fetchone()[0]

    @contextlib.contextmanager
    def hold_write_lock(self) -> Iterator[None]:
        from cardctl.storage.db import PG_WRITE_LOCK

        with self.server.connect(self.name) as holder:
            holder.execute("BEGIN")
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (PG_WRITE_LOCK,))
            try:
                yield
            finally:
                holder.execute("ROLLBACK")


def empty_database(engine: str, folder: Path, label: str, create: bool = True) -> TestDatabase:
    """An empty database of ``engine``: SQLite ``folder/label.db`` (not yet created); on PostgreSQL
    database ``label`` of the run's cluster, existing and empty (``create=False``: missing)."""
    if engine == "sqlite":
        return SqliteTestDatabase(folder / f"{label}.db")
    server = pg_server()
    name = server.name(label)
    if create:
        server.empty(name)
    else:
        server.drop(name)
    return PgTestDatabase(server, name)


@pytest.fixture
def new_database(engine: str, tmp_path: Path):
    """``new_database(label)``: an empty (SQLite: not yet created) database of this test's engine."""

    def make(label: str, create: bool = True) -> TestDatabase:
        return empty_database(engine, tmp_path, label, create)

    return make


@pytest.fixture
def database(new_database) -> TestDatabase:
    """This test's database: on SQLite ``cards.db`` in tmp_path (not created yet), on PostgreSQL
    an existing, empty database. Either way ``cardctl init`` makes it ready."""
    return new_database("cards")


@pytest.fixture
def db_url(database: TestDatabase) -> str:
    return database.url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(db_url=db_url, key_file=tmp_path / "cardctl.key",
                    operator="tester", os_user="tester", bcrypt_cost=4)


@pytest.fixture
def ctx(settings: Settings, clock: FakeClock) -> Context:
    init_database(settings, clock)
    return Context.open(settings, clock)


def issue(ctx: Context, card_no: str, name: str, id_number: str, region: str, **extra) -> None:
    fields = {"card_no": card_no, "name": name, "id_number": id_number, "region": region, **extra}
    issue_card(ctx, parse_card_input(fields, ctx.now().date()))


@pytest.fixture
def active_card(ctx: Context) -> str:
    """One active card (A00000001) with PIN GOOD_PIN."""
    card_no, name, id_number, region = HOLDERS[0]
    issue(ctx, card_no, name, id_number, region)
    activate(ctx, card_no, parse_card_input({"card_no": card_no, "name": name, "id_number": id_number,
                                             "region": region}, ctx.now().date()).id_number, GOOD_PIN)
    return card_no


@pytest.fixture
def run(ctx: Context, settings: Settings, clock: FakeClock, monkeypatch):
    """``cardctl`` in-process (CliRunner) against the test's database and clock.

    The CLI acts as the OS user who ran init (settings.os_user), as on a real counter PC.
    """
    from typer.testing import CliRunner

    from cardctl.cli import app
    from cardctl.cli.common import Runtime

    monkeypatch.setattr("cardctl.config.os_user", lambda: settings.os_user)
    runner = CliRunner()
    env = {"CARDCTL_DB": settings.db_url, "CARDCTL_KEY_FILE": str(settings.key_file),
           "CARDCTL_BCRYPT_COST": "4", "CARDCTL_OPERATOR": "tester"}

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, env=env, obj=Runtime(clock=clock),
                             catch_exceptions=False)

    return invoke


@pytest.fixture
def cli(tmp_path: Path, database: TestDatabase):
    """``cardctl`` in-process against a database it initialised itself, with the real clock;
    ``cli.db`` is the database, ``cli.tmp`` a folder for input files. Modules that need
    another clock or user define their own ``cli``."""
    from typer.testing import CliRunner

    from cardctl.cli import app

    env = {"CARDCTL_DB": database.url, "CARDCTL_KEY_FILE": str(tmp_path / "cardctl.key"),
           "CARDCTL_BCRYPT_COST": "4", "CARDCTL_OPERATOR": "tester"}
    runner = CliRunner()

    def run(*args: str, input: str | bytes | None = None):
        return runner.invoke(app, list(args), input=input, env=env, catch_exceptions=False)

    run.db, run.tmp = database, tmp_path
    result = run("init")
    assert result.exit_code == 0, result.stderr
    return run
