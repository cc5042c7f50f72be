"""A property-based fuzzer over every command of the Typer tree.

Each example picks a command, then a value for each of its arguments and options — well
formed, extreme or malformed times, numbers, card and ID numbers, paths of every file
type, long, binary and control-character text — and hostile data on stdin, and runs it
against a populated database. For every call:

- no ``internal error`` and no traceback on either stream;
- an exit code from the README's table;
- a usage error (exit 2) changed nothing: a dump of every table before and after is equal.

In-process calls (CliRunner) are cheap, so most examples run that way; a smaller share
runs as real processes (``realproc``), where FIFOs, ``/dev/zero`` and invalid UTF-8 in
``argv`` are what a shell would pass, under a timeout that catches a hang.

CI runs a fixed seed and a bounded number of examples per engine; a deep run on demand:
``CARDCTL_FUZZ_EXAMPLES=20000 bash scripts/test.sh tests/test_fuzz.py``. A failing input
belongs in tests/hostile/corpus.json with its expected exit code once fixed.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest
import typer
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from cardctl.cli import app
from helpers_security import CARD, EXAMPLES, ID_NUMBER, OTHER, OTHER_ID, Office
from realproc import cardctl_command

EXAMPLES_PER_ENGINE = int(os.environ.get("CARDCTL_FUZZ_EXAMPLES", "250"))
PROCESS_EXAMPLES = int(os.environ.get("CARDCTL_FUZZ_PROCESS_EXAMPLES", str(max(20, EXAMPLES_PER_ENGINE // 10))))
DOCUMENTED_EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 7, 130}
ROOT = typer.main.get_command(app)
# writes outside the test's folder or waits for a person: not for a fuzzer
NEVER = {"--install-completion", "--show-completion", "--help", "-h", "--version"}
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s+File \".*\", line \d+", re.M)


def _leaves(command=ROOT, path: tuple[str, ...] = ()):
    if hasattr(command, "commands"):  # a group
        for name, sub in sorted(command.commands.items()):
            yield from _leaves(sub, (*path, name))
    else:
        yield path, command


COMMANDS = list(_leaves())


# --- values ---------------------------------------------------------------------------------

TIMES = ["0001-01-01", "0001-01-01T00:00+14:00", "9999-12-31T23:59:59", "9999-12-31T23:59-14:00",
         "1900-01-01", "2026-12-05", "2026-12-05T10:00", "2026-12-05T10:00:00Z", "2026-02-30",
         "2026-13-01", "now", "yesterday", "-1", "1e309", "2026-12-05T25:61", "１９９９-01-01",
         "2026-12-05T10:00+99:00", "9" * 40, ""]
NUMBERS = ["0", "-1", "1", "3", "2147483648", "9223372036854775808", "-9223372036854775809",
           "1e3", "NaN", "inf", "0x10", "１２", "", " 5", "5 ", "99999999999999999999999999"]
AMOUNTS = ["12.50", "0", "-5", "0.001", "1e3", "NaN", "１００", "99999999999999999999", "0.01",
           "1,000", "12.5.0", ""]
CARDS = [CARD, OTHER, "A10000001", "ZZZZZZZZZ", "gk4175892", "GK 417589", "GK41758920", "", "-",
         "'; DROP TABLE cards; --", "\u202egk", "ＧＫ4175892"]
IDS = [ID_NUMBER, OTHER_ID, "11010519491231002X", "11010519491231002x", "110105194912310021",
       "11010519491231002", "110105194902310026", "110105299901010014", "１１０１０５１９４９１２３１００２Ｘ",
       "", "-", "x" * 200]
REGIONS = ["110105", "1101", "11", "", "default", "999999", "1101051", ID_NUMBER, "abc", "-1"]
TEXTS = ["x", "", " ", "王芳", "a" * 10_000, "a" * 200_000, "\x1b[31mred\x1b[0m", "[bold]markup[/]",
         "line\nbreak", "\u202eevil", "\t", "=HYPERLINK(\"x\")", "\udcff\udcfe", "\x7f\x85\u2028",
         "'\"\\", "--help", "-", ID_NUMBER, "%s%n{0}{card}"]
CHOICE_NOISE = ["", "ALL", "x", "pin,admin", "system", "cron"]


def _file_values(folder: Path) -> list[str]:
    """Paths of every file type a newcomer might pass where a file is wanted."""
    (folder / "dir").mkdir(parents=True, exist_ok=True)
    (folder / "binary").write_bytes(bytes(range(256)) * 64)
    (folder / "empty").write_bytes(b"")
    (folder / "nested.jsonl").write_text("[" * 100_000 + "\n")
    (folder / "bad.csv").write_text("card_no,name,id_number,region\nX,\"unterminated\n", encoding="utf-8")
    (folder / "gb.csv").write_bytes("card_no,name,id_number,region\nQ00000001,王,1,110105\n".encode("gb18030"))
    (folder / "cards.csv").write_bytes(EXAMPLES.read_bytes())  # a copy: an output option may be aimed at it
    link = folder / "loop"
    if not link.is_symlink():
        link.symlink_to(link)
    # a character device of our own with /dev/null's numbers: a command that replaced a device
    # node with a file would replace this one, not the machine's
    null = folder / "null"
    if not null.exists():
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    return [str(folder / name) for name in ("dir", "binary", "empty", "nested.jsonl", "bad.csv", "gb.csv", "loop",
                                           "missing", "dir/new.html", "null", "cards.csv")] + ["-", "", "/"]


STDINS = [None, "", "\n", "123456\n", "123456\n654321\n654321\n", "\x00\x01\x02", "[" * 50_000 + "\n",
          '{"card_no": ["a", "b"]}\n', "card_no\n" + CARD + "\n", '{"card_no": "' + CARD + '"}\n',
          "card_no,name,id_number,region\n" + "A" * 300_000 + "\n", "\ufeff\ufeff\r\n\r\n",
          ID_NUMBER + "\n" + "123456\n"]


def _values_for(param, files: list[str]) -> tuple[list[str], list[str]]:
    """(well-formed, hostile) candidate values for one parameter, chosen by its type and name."""
    name = (param.name or "").lower()
    kind = getattr(param.type, "name", "")
    if getattr(param.type, "choices", None):
        return [str(c) for c in param.type.choices], CHOICE_NOISE
    if any(word in name for word in ("since", "until", "as_of", "at")):
        return ["2026-12-05", "2026-11-01T08:00", "2026-12-05T10:00:00Z"], TIMES
    if "amount" in name:
        return ["12.50", "0.01", "300"], AMOUNTS
    if "id_number" in name:
        return [ID_NUMBER, OTHER_ID], IDS
    if "card" in name or name in ("cards", "new_card_no"):
        return [CARD, OTHER, "A10000001"], CARDS
    if name == "channel":
        return ["counter", "bank", "terminal", "online", "hotline"], ["system", "cron", "", "COUNTER", "x"]
    if name == "role":
        return ["auditor", "staff", "admin"], ["", "root", "x"]
    if name == "period":
        return ["2026-01", "2025-12"], ["2026-13", "2026-1", "0000-00", ID_NUMBER, ""]
    if name == "unit":
        return ["91110000100000000X"], ["91110000100000000Y", ID_NUMBER, "", "x" * 300]
    if name in ("region", "prefix"):
        return ["110105", "1101", "default"], REGIONS + ["x" * 300]
    if kind in ("integer", "float", "integer range", "float range") or any(
            word in name for word in ("seq", "attempts", "hours", "days", "age", "min_", "max_")):
        return ["0", "1", "3", "24"], NUMBERS
    if kind in ("path", "filename", "file") or any(
            word in name for word in ("file", "html", "path", "from", "output_file", "db", "key")):
        return [f for f in files if f.endswith(("cards.csv", "missing", "new.html"))] + ["-"], files
    return ["x", "王芳", "terminal fault T-0042"], TEXTS + CARDS[:2] + REGIONS[:2]


def _value(draw, param, files: list[str]) -> str:
    """Three times in four a well-formed value, so that calls get past parsing into the command."""
    good, hostile = _values_for(param, files)
    return draw(st.sampled_from(good if draw(st.integers(0, 3)) else good + hostile))


@st.composite
def invocations(draw, files: list[str]):
    path, command = draw(st.sampled_from(COMMANDS))
    args: list[str] = list(path)
    for param in command.params:
        opts = [o for o in getattr(param, "opts", []) if o not in NEVER]
        if param.param_type_name == "argument":
            count = 1 if param.nargs == 1 else draw(st.integers(0, 3))
            if not param.required and param.nargs == 1 and draw(st.booleans()):
                continue
            args += [_value(draw, param, files) for _ in range(count)]
        elif opts and (draw(st.integers(0, 2)) == 0 or param.required and draw(st.integers(0, 9))):
            opt = draw(st.sampled_from(opts))
            if getattr(param, "is_flag", False) or getattr(param, "count", False):
                args.append(opt)
            else:
                args += [opt, _value(draw, param, files)]
    if draw(st.integers(0, 7)) == 0:  # a global option naming a file of the wrong kind
        args[:0] = [draw(st.sampled_from(["--db", "--key-file"])), draw(st.sampled_from(files))]
    if draw(st.integers(0, 9)) == 0:  # a global option after the command, or an unknown one
        args += draw(st.sampled_from([["--lang", "zh"], ["--lang", "xx"], ["--nope"], ["-o", "csv"], ["--"]]))
    stdin = draw(st.sampled_from(STDINS[:5] if draw(st.booleans()) else STDINS))
    return args, stdin


def _check(args: list[str], code: int, stdout: str, stderr: str) -> None:
    where = "cardctl " + shlex.join(args)
    assert code in DOCUMENTED_EXIT_CODES, f"{where}: exit {code}\n{stderr[-2000:]}"
    for stream in (stdout, stderr):
        assert "internal error" not in stream, f"{where}: {stream[-2000:]}"
        assert "内部错误" not in stream, f"{where}: {stream[-2000:]}"
        assert not TRACEBACK.search(stream), f"{where}: traceback\n{stream[-3000:]}"


def _collect(failures: dict, args: list[str], exc: AssertionError) -> None:
    """Keep going after a failure: one run then shows every kind of failure it met, one example each."""
    message = str(exc).split("\n")
    words = list(args)
    while words[:1] in (["--db"], ["--key-file"]):
        words = words[2:]
    command = tuple(w for w in words[:2] if not w.startswith("-"))
    error = re.search(r"internal error: (\w+)|(Traceback)|(exit -?\d+)|(a hang)|(database changed)|(\w+Error)", str(exc))
    kind = next((g for g in error.groups() if g), "") if error else re.sub(r"\d+", "N", message[0])[-120:]
    failures.setdefault((command, kind), "\n".join(message[:3]))


def _report(failures: dict) -> None:
    assert not failures, f"{len(failures)} kind(s) of failure:\n\n" + "\n\n".join(failures.values())


@pytest.fixture
def populated(database, tmp_path, monkeypatch):
    office = Office(database, tmp_path, monkeypatch)
    office.open_counter()
    # the rest of the sample population (the first two rows are open_counter's cards)
    assert office("import", str(EXAMPLES)).exit_code == 7
    yield office
    office.close()


def test_the_fuzzer_reaches_every_command():
    names = {" ".join(path) for path, _ in COMMANDS}
    assert {"status", "unlock", "import", "verify", "policy set", "settings set", "audit verify", "report"} <= names


def test_every_command_survives_generated_input_in_process(populated, tmp_path):
    files = _file_values(tmp_path / "files")
    seen: dict[int, int] = {}
    failures: dict[tuple, str] = {}

    @settings(max_examples=EXAMPLES_PER_ENGINE, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate],  # a failure is reported as found, not shrunk
              suppress_health_check=list(HealthCheck))
    @given(invocations(files))
    def call(invocation):
        args, stdin = invocation
        before = populated.dump()
        try:
            try:
                result = populated(*args, input=stdin, env={"COLUMNS": "80"})
            except Exception as exc:  # an exception that escaped the error edge
                raise AssertionError(f"cardctl {shlex.join(args)}: {type(exc).__name__}: {exc}") from exc
            _check(args, result.exit_code, result.stdout, result.stderr)
            seen[result.exit_code] = seen.get(result.exit_code, 0) + 1
            if os.environ.get("CARDCTL_FUZZ_TRACE"):
                print(result.exit_code, shlex.join(args)[:150], "|", result.stderr.strip()[:150])
            if result.exit_code == 2:
                assert populated.dump() == before, f"cardctl {shlex.join(args)}: exit 2 but the database changed"
        except AssertionError as exc:
            _collect(failures, args, exc)

    call()
    print("exit codes seen:", dict(sorted(seen.items())))
    _report(failures)
    # a fuzzer that only ever hits usage errors proves little
    assert len(seen) >= 3, seen


def test_every_command_survives_generated_input_as_a_real_process(populated, tmp_path):
    files = _file_values(tmp_path / "files")
    fifo = tmp_path / "files" / "fifo"
    os.mkfifo(fifo)
    zero = tmp_path / "files" / "zero"
    os.mknod(zero, stat.S_IFCHR | 0o666, os.makedev(1, 5))  # /dev/zero's numbers, in our folder
    process_files = [*files, str(fifo), str(zero), "/proc/self/mem", "/etc/shadow"]
    env = {**os.environ, "CARDCTL_DB": populated.database.url, "CARDCTL_KEY_FILE": str(populated.key_file),
           "CARDCTL_BCRYPT_COST": "4", "CARDCTL_OPERATOR": "clerk-1", "COLUMNS": "80"}
    if populated.postgresql:
        env["CARDCTL_DB"] = populated.url_for(populated.admin)

    @settings(max_examples=PROCESS_EXAMPLES, deadline=None, derandomize=True, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(invocations(process_files))
    def call(invocation):
        args, stdin = invocation
        argv = [a.encode("utf-8", "surrogateescape") for a in args]
        before = populated.dump()
        try:
            proc = subprocess.run([*(c.encode() for c in cardctl_command()), *argv],
                                  input=(stdin or "").encode("utf-8", "surrogateescape"), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        except subprocess.TimeoutExpired:
            _collect(failures, args, AssertionError(f"cardctl {shlex.join(args)}: still running after 60 s (a hang)"))
            return
        stdout = proc.stdout.decode("utf-8", "replace")
        stderr = proc.stderr.decode("utf-8", "replace")
        try:
            _check(args, proc.returncode, stdout, stderr)
            if proc.returncode == 2:
                assert populated.dump() == before, f"cardctl {shlex.join(args)}: exit 2 but the database changed"
        except AssertionError as exc:
            _collect(failures, args, exc)

    failures: dict[tuple, str] = {}
    call()
    _report(failures)


def test_the_fifo_and_device_paths_are_what_they_claim(tmp_path):
    """The fuzzer's file values really are of the types it means to test."""
    files = _file_values(tmp_path)
    assert stat.S_ISDIR(os.stat(files[0]).st_mode)
    assert Path(files[6]).is_symlink()
    assert stat.S_ISCHR(os.stat(files[9]).st_mode)
