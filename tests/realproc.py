"""Helpers for tests that run cardctl in real OS processes (tests/test_concurrency.py, test_crash.py).

Two kinds of process: the installed ``cardctl`` console script (``start`` / ``run``), and
``multiprocessing`` workers, forked (cardctl already imported, so they start in milliseconds),
that open their own ``Context`` (never one of pytest's connections) and call the services
after a barrier, for the tightest overlap. Every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Sequence
from orm import orm_write, orm_read

TIMEOUT = 120  # seconds any one process may take before the test fails


def cardctl_command() -> list[str]:
    """The console script of this interpreter's environment, else the one on PATH, else -m."""
    beside = Path(sys.executable).parent / "cardctl"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("cardctl")
    return [found] if found else [sys.executable, "-m", "cardctl"]


def cli_env(db_url: str, key_file: Path, operator: str = "tester", **extra: str) -> dict[str, str]:
    return {**os.environ, "CARDCTL_DB": db_url, "CARDCTL_KEY_FILE": str(key_file), "CARDCTL_BCRYPT_COST": "4",
            "CARDCTL_OPERATOR": operator, "COLUMNS": "200", **extra}


def start(env: dict, *args: str, stdin: bool = False, stdout: bool = True) -> subprocess.Popen:
    """``cardctl ARGS`` in the background. ``stdout=False`` for a long output nobody reads before
    the end: a full pipe would stop the process."""
    return subprocess.Popen([*cardctl_command(), *args], env=env, text=True,
                            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL, stderr=subprocess.PIPE)


def run(env: dict, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*cardctl_command(), *args], input=input, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)


def finish(proc: subprocess.Popen, input: str | None = None) -> tuple[int, str, str]:
    if proc.stdin is not None and proc.stdin.closed:
        proc.stdin = None  # the caller wrote and closed it; communicate() must not touch it
    try:
        out, err = proc.communicate(input, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"{proc.args} did not finish in {TIMEOUT} s") from None
    return proc.returncode, out, err


def wait_reading_stdin(procs: Sequence[subprocess.Popen], limit_s: float = 30.0) -> None:
    """Wait until every process blocks reading its stdin (read(0, ...) in /proc/PID/syscall).

    cardctl opens the database before it reads a PIN, so once all of them wait here,
    writing the PINs makes their transactions overlap as tightly as processes can.
    Without /proc this returns at once: the test still holds, it just overlaps less.
    """
    deadline = time.monotonic() + limit_s
    waiting = list(procs)
    while waiting and time.monotonic() < deadline:
        still = []
        for proc in waiting:
            try:
                syscall = Path(f"/proc/{proc.pid}/syscall").read_text()
            except OSError:
                return
            if proc.poll() is None and not syscall.startswith("0 0x0 "):
                still.append(proc)
        waiting = still
        if waiting:
            time.sleep(0.02)


# --- state checks --------------------------------------------------------------------------


def chain_is_whole(ctx) -> tuple[int, int]:
    """The chain verifies, its seqs are exactly 1..N and the head is at N; returns (N, head seq)."""
    from sqlalchemy import func, select

    from cardctl.services.audit import verify_chain
    from orm import AuditHead, Event

    report = verify_chain(ctx)
    assert report.ok, report.problem
    with orm_read(ctx.db) as session:
        count, low, high = session.execute(select(func.count(), func.min(Event.seq), func.max(Event.seq))).one()
        head = session.get(AuditHead, 1)
        forks = session.scalar(select(func.count()).select_from(
            select(Event.prev_hash).group_by(Event.prev_hash).having(func.count() > 1).subquery()))
    assert (low, high) == (1, count), f"seqs run {low}..{high} over {count} events: skipped or duplicated"
    assert head.seq == count == report.checked
    assert forks == 0, "two events share a predecessor: the chain forked"
    return count, head.seq


def event_counts(ctx, card_no: str | None = None) -> Counter:
    from sqlalchemy import select

    from orm import Event

    stmt = select(Event.action, Event.outcome)
    if card_no is not None:
        stmt = stmt.where(Event.card_no == card_no)
    with orm_read(ctx.db) as session:
        return Counter(f"{action}:{outcome}" for action, outcome in session.execute(stmt))


# --- seeding -------------------------------------------------------------------------------


def person(n: int) -> str:
    """A valid ID number of an adult, distinct for each n."""
    from cardctl.domain.identity import make_id_number

    return make_id_number("110105", date(1950, 1, 1) + timedelta(days=n // 999), n % 999 + 1)


def seed_active_cards(ctx, count: int, pin: str, prefix: str = "S", cost: int | None = None) -> list[str]:
    """``count`` active cards with PIN ``pin`` (bcrypt at ``cost``), inserted directly: fast, no events."""
    from sqlalchemy import insert

    from cardctl.domain import pins
    from orm import Card, Holder

    pin_hash = pins.hash_pin(pin, ctx.keys.pepper, cost or ctx.settings.bcrypt_cost)
    now = ctx.now()
    card_nos = [f"{prefix}{i:08d}" for i in range(count)]
    with orm_write(ctx.db) as session:
        from cardctl.domain.sealed import birth_sealer

        seal, hashes = birth_sealer(ctx.keys.data_key), [ctx.keys.id_hash(person(i)) for i in range(count)]
        ids = session.execute(insert(Holder).returning(Holder.id, sort_by_parameter_order=True), [
            {"id_hash": hashes[i], "id_masked": "110***********0000", "id_tail_hash": "0" * 64,
             "name": f"持卡人{i}", "birth_sealed": seal(hashes[i], date(1980, 1, 1))}
            for i in range(count)]).scalars().all()
        session.execute(insert(Card), [
            {"card_no": card_no, "holder_id": holder_id, "region": "110105", "insurance_type": "employee",
             "issuer": "social-security", "unit": None, "status": "active", "failures": 0,
             "pin_hash": pin_hash, "pin_scheme": pins.SCHEME_PEPPERED, "issued_at": now}
            for card_no, holder_id in zip(card_nos, ids)])
    return card_nos


def seed_pin_locks(ctx, card_nos: Sequence[str], ends: Sequence[datetime]) -> None:
    """A PIN lock (3 failures) on each card, ending at the given times."""
    from sqlalchemy import insert, update

    from orm import Card, Lock

    with orm_write(ctx.db) as session:
        session.execute(update(Card).where(Card.card_no.in_(list(card_nos))).values(failures=3))
        session.execute(insert(Lock), [
            {"card_no": card_no, "kind": "pin", "reason": "3 consecutive wrong PINs",
             "started_at": end - timedelta(hours=24), "ends_at": end, "created_by": "tester"}
            for card_no, end in zip(card_nos, ends)])


# --- multiprocessing workers -----------------------------------------------------------------


@dataclass(frozen=True)
class Where:
    """What a worker needs to open the database (picklable)."""

    db_url: str
    key_file: str
    bcrypt_cost: int = 4

    def context(self, operator: str):
        from cardctl.config import Settings
        from cardctl.services.context import Context

        settings = Settings(db_url=self.db_url, key_file=Path(self.key_file), operator=operator,
                            os_user="tester", bcrypt_cost=self.bcrypt_cost)
        return Context.open(settings)


def spawn_all(target, argument_lists: Sequence[tuple]) -> list:
    """Run ``target(barrier, queue, *args)`` in one forked process per argument tuple; all of
    them pass a shared barrier before their work. Returns what each put on the queue, in order."""
    import multiprocessing

    mp = multiprocessing.get_context("fork")
    barrier, queue = mp.Barrier(len(argument_lists)), mp.Queue()
    procs = [mp.Process(target=target, args=(barrier, queue, index, *args))
             for index, args in enumerate(argument_lists)]
    for proc in procs:
        proc.start()
    results: dict[int, Any] = {}
    deadline = time.monotonic() + TIMEOUT
    try:
        while len(results) < len(procs):
            index, value = queue.get(timeout=max(1.0, deadline - time.monotonic()))
            results[index] = value
    finally:
        for proc in procs:
            proc.join(timeout=max(1.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
    failed = [value for value in results.values() if isinstance(value, str) and value.startswith("Traceback")]
    assert not failed, failed[0]
    return [results[index] for index in range(len(procs))]


def _guarded(queue, index: int, work) -> None:
    try:
        queue.put((index, work()))
    except BaseException:  # noqa: BLE001 - reported to the parent, which fails the test
        queue.put((index, traceback.format_exc()))


def act(barrier, queue, index: int, where: Where, operator: str, rounds: list[tuple]) -> None:
    """One operator: in each round, wait at the barrier, then do that round's action.

    An action is ("verify", card, pin) | ("unlock", card) | ("reset", card, id_number, new_pin)
    | ("pay", card, fen) | ("idle",). Returns the list of outcomes, one per round.
    """
    from cardctl.domain.identity import parse_id_number
    from cardctl.domain.model import LockKind
    from cardctl.errors import CardctlError
    from cardctl.services.arrears import Debtor, pay_arrears
    from cardctl.services.lifecycle import reset_pin
    from cardctl.services.unlock import UnlockRequest, unlock_cards
    from cardctl.services.verify import verify_pin

    def work():
        ctx = where.context(operator)
        outcomes = []
        for action in rounds:
            barrier.wait(timeout=TIMEOUT)
            kind, *args = action
            try:
                if kind == "verify":
                    outcomes.append(verify_pin(ctx, args[0], args[1]).result)
                elif kind == "unlock":
                    (item,) = unlock_cards(ctx, [args[0]], UnlockRequest(LockKind.PIN, "holder verified"))
                    outcomes.append(item.result)
                elif kind == "reset":
                    reset_pin(ctx, args[0], parse_id_number(args[1], ctx.now().date()), args[2])
                    outcomes.append("reset")
                elif kind == "pay":
                    pay_arrears(ctx, Debtor(card_no=args[0]), args[1], None)
                    outcomes.append("paid")
                else:
                    outcomes.append("idle")
            except CardctlError as error:
                outcomes.append(f"{type(error).__name__}: {error.message}")
        return outcomes

    _guarded(queue, index, work)


def verify_many(barrier, queue, index: int, where: Where, operator: str, pins_in_turn: list[tuple[str, str]]) -> None:
    """Verify the first (card, pin) once to warm up, wait at the barrier, then verify every pair
    in a row. Returns (start, end, results, bcrypt intervals, write-transaction intervals), all
    times from CLOCK_MONOTONIC, which every process on the machine shares."""

    def work():
        import contextlib

        from cardctl.domain import pins
        from cardctl.services.verify import verify_pin
        from cardctl.storage.db import Database

        ctx = where.context(operator)
        verify_pin(ctx, *pins_in_turn[0])  # the first call pays for imports and SQL compilation
        checks: list[tuple[float, float]] = []
        writes: list[tuple[float, float]] = []
        check_pin, write = pins.check_pin, Database.connect_write

        def timed_check(*args, **kwargs):
            began = time.monotonic()
            try:
                return check_pin(*args, **kwargs)
            finally:
                checks.append((began, time.monotonic()))

        @contextlib.contextmanager
        def timed_write(self):
            began = time.monotonic()
            try:
                with write(self) as conn:
                    yield conn
            finally:
                writes.append((began, time.monotonic()))

        pins.check_pin, Database.connect_write = timed_check, timed_write
        barrier.wait(timeout=TIMEOUT)
        started = time.monotonic()
        results = [verify_pin(ctx, card_no, pin).result for card_no, pin in pins_in_turn]
        return started, time.monotonic(), results, checks, writes

    _guarded(queue, index, work)


def bcrypt_many(barrier, queue, index: int, pin_hash: bytes, count: int) -> None:
    """Plain bcrypt checks, no database: what the machine's cores give right now."""

    def work():
        import bcrypt

        bcrypt.checkpw(b"0", pin_hash)
        barrier.wait(timeout=TIMEOUT)
        started = time.monotonic()
        for _ in range(count):
            bcrypt.checkpw(b"0", pin_hash)
        return started, time.monotonic()

    _guarded(queue, index, work)


def most_at_once(intervals: Sequence[tuple[float, float]]) -> int:
    """The largest number of the intervals in progress at the same moment."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def utc_now() -> datetime:
    return datetime.now(timezone.utc)
