"""Settings resolved once at start-up from options and environment variables."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InvalidInput
from .i18n import _

DEFAULT_BCRYPT_COST = 12
DEFAULT_TIMEZONE = "Asia/Shanghai"
DEFAULT_BUSY_TIMEOUT_S = 5.0
DEFAULT_CLOCK_TOLERANCE_S = 300  # seconds a host's clock may be off (clock.py, docs/security.md)
CHANNELS = ("counter", "bank", "terminal", "online", "hotline", "cron", "system")
# what an operator may give with --channel; the others are cardctl's own (the sweep's "system")
OPERATOR_CHANNELS = CHANNELS[:5]
SYSTEM_CHANNEL = "system"


def data_dir() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("cardctl", appauthor=False))


def default_db_url() -> str:
    return str(data_dir() / "cardctl.db")


def default_key_file() -> Path:
    return data_dir() / "cardctl.key"


def os_user() -> str:
    """The login of the effective user id. Not getpass.getuser(): it believes $USER and
    $LOGNAME, and on SQLite this name decides the operator's role."""
    try:
        import pwd
    except ImportError:  # Windows: no uids; the session's user name is all there is
        return getpass.getuser()
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:  # a uid without a passwd entry, common in containers
        return f"uid:{os.geteuid()}"


def os_login_exists(name: str) -> bool:
    """Whether ``name`` is a login of this computer (on SQLite an operator is one)."""
    try:
        import pwd
    except ImportError:  # Windows: no passwd database to ask
        return True
    try:
        pwd.getpwnam(name)
    except (KeyError, ValueError):  # ValueError: a name with a NUL byte
        return False
    return True


def _int_env(name: str, default: int | None, low: int, high: int) -> int | None:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isascii() or not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInput(_("{name}={value!r}: expected a whole number from {low} to {high}").format(
            name=name, value=raw, low=low, high=high))
    return int(raw)


@dataclass
class Settings:
    db_url: str
    key_file: Path
    operator: str
    os_user: str
    channel: str = "counter"
    # where a PIN is tried: a counter PC, bank branch or self-service terminal (verify/change-pin
    # --terminal), written on the events; None when not given
    terminal: str | None = None
    # CARDCTL_BCRYPT_COST: None when unset. It may only raise the database's cost (domain/hashing.py),
    # unless CARDCTL_TEST_LOW_COST=1, the test suite's switch
    bcrypt_cost: int | None = None
    timezone: str = DEFAULT_TIMEZONE
    busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S
    clock_tolerance_s: int = DEFAULT_CLOCK_TOLERANCE_S  # see clock.py
    test_low_cost: bool = field(default_factory=lambda: os.environ.get("CARDCTL_TEST_LOW_COST") == "1")

    @classmethod
    def resolve(cls, db: str | None, key_file: str | None, operator: str | None,
                channel: str = "counter") -> "Settings":
        user = os_user()
        tz = os.environ.get("CARDCTL_TZ") or DEFAULT_TIMEZONE
        _check_timezone(tz)
        return cls(
            db_url=db or os.environ.get("CARDCTL_DB") or default_db_url(),
            key_file=Path(key_file or os.environ.get("CARDCTL_KEY_FILE") or default_key_file()),
            operator=_check_operator(operator or os.environ.get("CARDCTL_OPERATOR") or user),
            os_user=user,
            channel=channel,
            bcrypt_cost=_int_env("CARDCTL_BCRYPT_COST", None, 4, 31),
            timezone=tz,
            busy_timeout_s=float(_int_env("CARDCTL_BUSY_TIMEOUT", int(DEFAULT_BUSY_TIMEOUT_S), 0, 3600)),
            clock_tolerance_s=_int_env("CARDCTL_CLOCK_TOLERANCE", DEFAULT_CLOCK_TOLERANCE_S, 0, 86400),
        )

    def protected_files(self) -> list[Path]:
        """Files no output option may ever write, not even with --force (cardctl/output_file.py):
        the SQLite database with its -wal, -shm and -journal, and every key file cardctl uses.
        A new kind of key file is added here."""
        files = [self.key_file]
        from .storage.urls import sqlite_file

        database = sqlite_file(self.db_url)
        if database is not None:
            files += [Path(str(database) + suffix) for suffix in ("", "-wal", "-shm", "-journal")]
        return files


def _check_operator(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 64 or not name.isprintable():
        raise InvalidInput(_("operator name must be 1-64 printable characters"))
    if len(name) >= 15:  # recorded with every event: never a full ID number typed in by mistake
        from .domain.identity import mask_id_shapes

        name = mask_id_shapes(name)
    return name


def _check_timezone(name: str) -> None:
    from zoneinfo import ZoneInfo

    try:
        ZoneInfo(name)
    except Exception:
        raise InvalidInput(_("CARDCTL_TZ={zone!r} is not a known time zone").format(zone=name)) from None
