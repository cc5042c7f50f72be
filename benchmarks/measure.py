"""Running and timing: the ``cardctl`` child process and the in-process baselines.

Each cardctl run goes through a tiny wrapper process (``python -S``, about 8 MB) that
starts it with ``posix_spawn``, reaps it with ``os.wait4`` and reports that one child's
wall time, CPU time and peak RSS (``ru_maxrss``). The wrapper is needed because Linux
carries a process's peak RSS across ``exec``: a child started straight from this
process would report at least this process's own peak (hundreds of MB after building
a million rows), and ``RUSAGE_CHILDREN`` is a maximum over all children so far. A
figure is therefore never below the wrapper's ~8 MB, far under any cardctl run.
Wall time runs from spawn to reap, so cardctl's interpreter start-up is included.

The child gets the key file and operator through the environment; the rest of the
environment passes unchanged. cardctl's own modules are byte-compiled before anything is
measured (``compile_cardctl``), as ``pip install`` does for an installed package: an
editable checkout run with ``PYTHONDONTWRITEBYTECODE=1`` (as on the development machine)
would otherwise compile every module from source on every run, about 12% of the
instructions ``status CARD`` executes.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable

OPERATOR = "bench"


def compile_cardctl() -> Path:
    """Byte-compile cardctl's package (into its __pycache__ folders); returns the package folder."""
    import compileall

    import cardctl

    package = Path(cardctl.__file__).resolve().parent
    if not compileall.compile_dir(str(package), quiet=1):
        raise SystemExit(f"cannot byte-compile {package}")
    return package


@dataclass
class Child:
    """How cardctl children are started: executable, environment, where their stderr goes."""

    workdir: Path
    key_file: Path
    log: Path
    profile_dir: Path | None = None  # set: children run under cProfile, writing DIR/<profile_name>.prof
    profile_name: str = "cardctl"
    env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARDCTL_")}
        if "CARDCTL_BCRYPT_COST" in os.environ:
            env["CARDCTL_BCRYPT_COST"] = os.environ["CARDCTL_BCRYPT_COST"]
        env.update(CARDCTL_KEY_FILE=str(self.key_file), CARDCTL_OPERATOR=OPERATOR, CARDCTL_TZ="Asia/Shanghai")
        self.env = env

    @staticmethod
    def executable() -> str:
        beside = Path(sys.executable).with_name("cardctl")
        found = str(beside) if beside.exists() else shutil.which("cardctl")
        if not found:
            raise SystemExit("the cardctl console script is not installed (pip install -e .)")
        return found


@dataclass(frozen=True)
class Run:
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int


def run_cardctl(child: Child, args: list[str], *, stdin: Path | bytes | None = None, stdout: Path | None = None,
                ok_codes: tuple[int, ...] = (0,)) -> Run:
    """Run ``cardctl ARGS`` once; stdout to ``stdout`` or /dev/null; raise on an unexpected exit code."""
    command = [Child.executable(), *args]
    if child.profile_dir:
        child.profile_dir.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "cProfile", "-o", str(child.profile_dir / f"{child.profile_name}.prof"),
                   "-m", "cardctl", *args]
    return run_command(child, command, stdin=stdin, stdout=stdout, ok_codes=ok_codes)


def run_command(child: Child, command: list[str], *, stdin: Path | bytes | None = None,
                stdout: Path | None = None, ok_codes: tuple[int, ...] = (0,)) -> Run:
    """Run ``command`` (an absolute executable first) once in cardctl's environment, measured."""
    report = child.workdir / "last-run.txt"
    report.unlink(missing_ok=True)
    with _opened(stdout, "wb") as out, child.log.open("ab") as err, _stdin(stdin) as inp:
        err.write(f"\n$ {' '.join(command)}\n".encode())
        err.flush()
        proc = subprocess.Popen([sys.executable, "-S", "-c", WRAPPER, str(report), *command],
                                stdin=inp, stdout=out, stderr=err, env=child.env)
        if isinstance(stdin, bytes):
            proc.stdin.write(stdin)
            proc.stdin.close()
        proc.wait()
    if proc.returncode or not report.exists():
        raise RuntimeError(f"the measuring wrapper failed (exit {proc.returncode}); see {child.log}")
    wall, cpu, maxrss_kb, code = report.read_text().split()
    if int(code) not in ok_codes:
        raise RuntimeError(f"{' '.join(command)} exited {code}; see {child.log}")
    return Run(float(wall), float(cpu), int(maxrss_kb) / 1024, int(code))


# Runs as `python -S -c WRAPPER REPORT COMMAND...`; stdin, stdout and stderr pass through.
WRAPPER = """
import os, sys, time
report, command = sys.argv[1], sys.argv[2:]
start = time.perf_counter()
pid = os.posix_spawn(command[0], command, os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
with open(report, "w") as handle:
    handle.write(f"{wall} {usage.ru_utime + usage.ru_stime} {usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


class _opened:
    """``open(path)`` or /dev/null, as a context manager."""

    def __init__(self, path: Path | None, mode: str) -> None:
        self.path, self.mode, self.handle = path, mode, None

    def __enter__(self) -> IO:
        self.handle = open(self.path or os.devnull, self.mode)
        return self.handle

    def __exit__(self, *exc) -> None:
        self.handle.close()


class _stdin:
    def __init__(self, source: Path | bytes | None) -> None:
        self.source, self.handle = source, None

    def __enter__(self):
        if isinstance(self.source, bytes):
            return subprocess.PIPE
        self.handle = open(self.source or os.devnull, "rb")
        return self.handle

    def __exit__(self, *exc) -> None:
        if self.handle:
            self.handle.close()


@dataclass(frozen=True)
class Timed:
    wall_s: float
    cpu_s: float
    value: object


def timed(work: Callable[[], object]) -> Timed:
    """Wall and CPU time of ``work()`` in this process (both user+system)."""
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    value = work()
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(wall, cpu, value)


def median_run(runs: list[Run]) -> dict:
    return {"wall_s": statistics.median(r.wall_s for r in runs), "cpu_s": statistics.median(r.cpu_s for r in runs),
            "peak_rss_mb": max(r.peak_rss_mb for r in runs), "walls_s": [round(r.wall_s, 4) for r in runs]}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]
