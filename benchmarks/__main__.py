"""``python -m benchmarks``: build the synthetic population, measure each operation, report.

    python -m benchmarks                                  # 1,000,000 cards, every operation
    python -m benchmarks --cards 20000 --only summary,status_card --out /tmp/r.json
    python -m benchmarks --cards 200000 --only unlock_batch --profile /tmp/prof   # cProfile the child
    python -m benchmarks --workdir /tmp/b --reuse-population --only status_card,unlock_expired_none

Exit status: 0 when every measured target is met, 1 when one is missed, 2 when an
operation failed to run. Progress goes to stderr, the table to stdout.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import DEFAULT_CARDS, report
from .bench import Bench, journal_mode
from .measure import Child, compile_cardctl, load_average
from .ops_metrics import op_metrics
from .ops_read import op_startup, op_status_card, op_status_locked_stream, op_summary
from .ops_write import op_import, op_unlock_batch, op_unlock_expired, op_unlock_expired_none, op_verify

# In run order; import goes first because its baseline's database becomes the population.
OPS = {
    "startup": op_startup,
    "import": op_import,
    "status_card": op_status_card,
    "summary": op_summary,
    "metrics": op_metrics,
    "unlock_expired_none": op_unlock_expired_none,
    "unlock_expired": op_unlock_expired,
    "unlock_batch": op_unlock_batch,
    "status_locked_stream": op_status_locked_stream,
    "verify": op_verify,
}
DEFAULT_OUT = Path(__file__).resolve().parent / "out" / "results.json"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=DEFAULT_CARDS, help="population size (default 1,000,000)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results (default benchmarks/out/results.json)")
    parser.add_argument("--only", help=f"comma-separated operations, of: {','.join(OPS)}")
    parser.add_argument("--workdir", type=Path,
                        help="keep the CSV, databases and cardctl's stderr log here (default: a temporary folder, removed)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each short operation; the median is reported")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="run each cardctl child under cProfile, writing DIR/NAME.prof (figures then not comparable)")
    parser.add_argument("--note", default="", help="free text stored in the JSON (e.g. which cardctl was measured)")
    parser.add_argument("--reuse-population", action="store_true",
                        help="with --workdir: measure on the population a run of the last 2 hours built there "
                             "for the same --cards, instead of importing and shaping it again")
    args = parser.parse_args(argv)
    if args.reuse_population and not args.workdir:
        parser.error("--reuse-population needs --workdir (where the population was built)")
    if args.cards < 100:
        parser.error("--cards must be at least 100")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    names = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else list(OPS)
    unknown = [n for n in names if n not in OPS]
    if unknown:
        parser.error(f"unknown operation(s) {', '.join(unknown)}; choose from {', '.join(OPS)}")
    args.names = [n for n in OPS if n in names]
    return args


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace, workdir: Path) -> int:
    child = Child(workdir, workdir / "cardctl.key", workdir / "cardctl-stderr.log", args.profile)
    bench = Bench(args.cards, workdir, child, args.repeat, say)
    package = compile_cardctl()  # measured as installed: with bytecode, not compiled from source each run
    load_before, started = load_average(), time.perf_counter()
    say(f"work folder {workdir}; load average {load_before}; {package} byte-compiled")
    bench.prepare_inputs()
    if any(n not in ("startup", "import") for n in args.names) and "import" not in args.names:
        bench.prepare_population(reuse=args.reuse_population)
    failed = False
    for name in args.names:
        child.profile_name = name
        op_started = time.perf_counter()
        try:
            row = OPS[name](bench)
        except Exception as exc:  # noqa: BLE001 - report it, go on with the others
            failed = True
            say(f"{name} failed: {exc}")
            traceback.print_exc(file=sys.stderr)
            row = bench.record(name, f"{name}: FAILED ({type(exc).__name__}: {exc})"[:160], "", [], {}, None,
                               error=str(exc))
            row["ok"] = False
        row["bench_s"] = round(time.perf_counter() - op_started, 1)
        say(f"{name} done in {row['bench_s']} s")
    journal = journal_mode(bench.population.db) if bench.population else None
    meta = report.meta(args.cards, args.repeat, bench.bcrypt_cost, journal, bool(args.profile))
    meta.update(load_average_before=load_before, load_average_after=load_average(),
                elapsed_s=round(time.perf_counter() - started, 1), operations=args.names,
                note=args.note, bytecode_compiled=True,
                population_built_at=bench.population.built_at.isoformat() if bench.population else None)
    report.print_table(bench.results, meta)
    report.write_json(args.out, meta, bench.results)
    say(f"results written to {args.out}")
    if failed:
        return 2
    return 0 if all(r["ok"] is not False for r in bench.results) else 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return run(args, args.workdir.resolve())
    workdir = Path(tempfile.mkdtemp(prefix="cardctl-bench-"))
    try:
        return run(args, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
