"""For the security tests: ``cardctl`` in-process against the test's database, acting as any operator.

Who is acting depends on the engine, as in production: on SQLite the OS login (the test
replaces ``cardctl.config.os_user``), on PostgreSQL the database login (the test puts it
in the URL; the throwaway cluster trusts local logins, so no password is checked).
PostgreSQL logins belong to the whole cluster, so each test gets its own names.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from typer.testing import CliRunner

from cardctl.cli import app
from cardctl.cli.common import Runtime
from cardctl.config import os_user

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "cards.csv"
# the first two rows of examples/cards.csv
CARD, NAME, ID_NUMBER = "GK4175892", "于凤英", "110105195205127044"
OTHER, OTHER_ID = "EQ7133854", "310115195904073129"
PIN, WRONG = "583920", "271828"
PASSWORD = "correct horse battery staple"


class Office:
    """One test's cardctl installation: its database, key file, and the operators acting on it."""

    def __init__(self, database, tmp_path: Path, monkeypatch) -> None:
        self.database = database
        self.engine = database.engine
        self.key_file = tmp_path / "cardctl.key"
        self.monkeypatch = monkeypatch
        self.runner = CliRunner()
        self.clock = None
        self.token = uuid.uuid4().hex[:8]
        # whoever runs init becomes admin: the real OS user on SQLite, the URL's login on PostgreSQL
        self.admin = os_user() if self.engine == "sqlite" else self._url_login(database.url)
        self.outputs: list[str] = []
        # On SQLite an operator must be an OS login (``operator add`` asks the passwd database):
        # the logins this office makes up count as created with useradd, the real ones stay real.
        self.os_logins: set[str] = set()
        from cardctl import config

        real = config.os_login_exists
        monkeypatch.setattr("cardctl.config.os_login_exists", lambda name: name in self.os_logins or real(name))

    @property
    def postgresql(self) -> bool:
        return self.engine == "postgresql"

    def name(self, base: str) -> str:
        """A login name for this test (unique per test on PostgreSQL, where logins are cluster-wide)."""
        return f"{base}_{self.token}" if self.postgresql else base

    def url_for(self, login: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(self.database.url).set(username=login).render_as_string(hide_password=False)

    @staticmethod
    def _url_login(url: str) -> str:
        from sqlalchemy.engine import make_url

        return make_url(url).username

    def __call__(self, *args: str, input: str | bytes | None = None, as_: str | None = None,
                 env: dict | None = None):
        login = as_ or self.admin
        base = {"CARDCTL_DB": self.database.url, "CARDCTL_KEY_FILE": str(self.key_file),
                "CARDCTL_BCRYPT_COST": "4", "CARDCTL_OPERATOR": "clerk-1", "CARDCTL_TZ": "Asia/Shanghai",
                "COLUMNS": "200"}
        if self.postgresql:
            base["CARDCTL_DB"] = self.url_for(login)
        else:
            self.monkeypatch.setattr("cardctl.config.os_user", lambda: login)
        extra = {"obj": Runtime(clock=self.clock)} if self.clock else {}
        result = self.runner.invoke(app, list(args), input=input, env={**base, **(env or {})},
                                    catch_exceptions=False, **extra)
        self.outputs += [result.stdout, result.stderr]
        return result

    def ok(self, *args: str, input: str | None = None, as_: str | None = None):
        result = self(*args, input=input, as_=as_)
        assert result.exit_code == 0, result.stderr
        return result

    def open_counter(self) -> "Office":
        """init, then two cards: CARD active with PIN, OTHER pending."""
        self.ok("init")
        self.ok("issue", CARD, "--name", NAME, "--id-number", ID_NUMBER, "--region", "110105")
        self.ok("issue", OTHER, "--name", "李娜", "--id-number", OTHER_ID, "--region", "310115")
        self.ok("activate", CARD, "--id-number", ID_NUMBER, "--pin-stdin", input=PIN + "\n")
        return self

    def add_operator(self, base: str, role: str) -> str:
        """``operator add`` by the admin; returns the login's name."""
        login = self.name(base)
        self.os_logins.add(login)
        self.ok("operator", "add", login, "--role", role, *(["--password-stdin"] if self.postgresql else []),
                input=PASSWORD + "\n" if self.postgresql else None)
        return login

    def stranger(self, base: str = "stranger") -> str:
        """A login that is no operator (on PostgreSQL a login must exist to connect at all)."""
        login = self.name(base)
        self.os_logins.add(login)
        if self.postgresql:
            from pg_cluster import conninfo
            import psycopg
            from psycopg import sql

            with psycopg.connect(conninfo(self.database.url), autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(login)))
        return login

    def close(self) -> None:
        """End this test's sessions: pooled connections of its logins would outlive the test, and
        the next test could not drop its schema (only a superuser may end another login's session)."""
        import gc

        gc.collect()  # engines of finished commands close their pooled connections
        if not self.postgresql:
            return
        from pg_cluster import conninfo
        import psycopg

        # as the cluster's superuser, from another database: this session must not linger in the test's
        with psycopg.connect(conninfo(self.url_for("postgres"), "postgres"), autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename LIKE %s",
                         (f"%\\_{self.token}",))

    def events(self) -> list[dict]:
        result = self("audit", "log", "-o", "json")
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    def dump(self) -> dict[str, list]:
        return self.database.dump()

    def insider_sql(self, sql: str) -> None:
        """The insider's own tool: the sqlite3 shell on the file, psql as the admin login on the server."""
        import shutil
        import subprocess

        if self.postgresql:
            from pg_cluster import conninfo

            tool = [shutil.which("psql") or "psql", "-X", "-v", "ON_ERROR_STOP=1", conninfo(self.database.url)]
        else:
            tool = [shutil.which("sqlite3") or "sqlite3", str(self.database.path)]
        done = subprocess.run(tool, input=sql + ";\n", capture_output=True, text=True, timeout=60)
        assert done.returncode == 0 and "rror" not in done.stderr, done.stderr


def changed_tables(before: dict, after: dict) -> set[str]:
    return {name for name in set(before) | set(after) if before.get(name) != after.get(name)}


def new_events(office: Office, count_before: int) -> list[dict]:
    return office.events()[count_before:]
