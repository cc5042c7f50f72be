"""Helpers for running cardctl tests against a throwaway PostgreSQL cluster.

The cluster itself is managed by ``scripts/pg-cluster.sh`` (initdb + pg_ctl as
the ``postgres`` OS user when run by root). Typical use from a conftest::

    base = pathlib.Path(tempfile.mkdtemp(prefix="cardctl-pg-"))
    admin_url = start_cluster(base)
    url = fresh_database(admin_url, "cardctl_test_1")
    ...
    drop_database(admin_url, "cardctl_test_1")
    stop_cluster(base)

Keep ``base_dir`` short and out of pytest's ``tmp_path``: unix socket paths are
limited to 107 bytes, and pytest resets ``/tmp/pytest-of-<user>`` to mode 0700
at every session start, which locks the ``postgres`` user out of it.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import tempfile

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "pg-cluster.sh"


class ClusterError(RuntimeError):
    """scripts/pg-cluster.sh failed; the message carries its stderr."""


def _run_script(command: str, base_dir: os.PathLike[str] | str, env: dict[str, str] | None = None) -> str:
    try:
        proc = subprocess.run(
            ["bash", str(SCRIPT), command, str(pathlib.Path(base_dir).absolute())],
            check=True,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except subprocess.CalledProcessError as exc:
        raise ClusterError(
            f"pg-cluster.sh {command} {base_dir} failed with exit code "
            f"{exc.returncode}:\n{exc.stderr}"
        ) from exc
    return proc.stdout


def new_base_dir(prefix: str = "cardctl-pg-") -> pathlib.Path:
    """A fresh, short directory under the system temp dir for a cluster."""
    path = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)  # mkdtemp makes it 0700; the postgres user must get in
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_cluster(base_dir: os.PathLike[str] | str, port: int | None = None) -> str:
    """Start (initdb if needed) the cluster in ``base_dir``; return its URL.

    The URL is ``postgresql+psycopg://cardctl@/cardctl?host=<sock>&port=<port>``
    for the ``cardctl`` role (LOGIN CREATEDB CREATEROLE). Idempotent.
    Without ``port`` a free one is picked (retried if another process takes it
    first), so clusters of concurrent test runs never collide on 54329.
    """
    for attempt in range(3):
        chosen = port or free_port()
        try:
            lines = _run_script("start", base_dir, {"CARDCTL_PG_PORT": str(chosen)}).strip().splitlines()
            break
        except ClusterError as exc:
            if port is not None or "Address already in use" not in str(exc) or attempt == 2:
                raise
    if not lines:
        raise ClusterError(f"pg-cluster.sh start {base_dir} printed no URL")
    return lines[-1].strip()


def stop_cluster(base_dir: os.PathLike[str] | str) -> None:
    """Stop the cluster in ``base_dir`` (fast shutdown); no-op if not running."""
    _run_script("stop", base_dir)


def conninfo(url: str, dbname: str | None = None) -> str:
    """psycopg conninfo string (host=<sock dir> port=N dbname=X user=Y) for a URL."""
    import psycopg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    params: dict[str, object] = {}
    host = u.query.get("host") or u.host
    if isinstance(host, tuple):  # repeated ?host=... in the query string
        host = host[0]
    if host:
        params["host"] = host
    port = u.port or u.query.get("port")
    if isinstance(port, tuple):
        port = port[0]
    if port:
        params["port"] = str(port)
    if u.username:
        params["user"] = u.username
    if u.password:
        params["password"] = u.password
    params["dbname"] = dbname or u.database or "postgres"
    return psycopg.conninfo.make_conninfo(**params)


def _admin_exec(admin_url: str, statement) -> None:
    import psycopg

    with psycopg.connect(conninfo(admin_url), autocommit=True) as conn:
        conn.execute(statement)


def fresh_database(admin_url: str, name: str) -> str:
    """Create an empty database ``name`` (dropping any previous one) and return its URL.

    The database is created by (and owned by) the role of ``admin_url``, from
    template0 so that sessions connected to template1 cannot make it fail.
    """
    from psycopg import sql
    from sqlalchemy.engine import make_url

    drop_database(admin_url, name)
    _admin_exec(
        admin_url,
        sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
            sql.Identifier(name)
        ),
    )
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` if it exists, terminating its sessions."""
    from psycopg import sql

    _admin_exec(
        admin_url,
        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)),
    )
