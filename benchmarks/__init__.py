"""Benchmarks of the performance targets (README, "Performance"): the real ``cardctl`` commands against plain ``sqlite3`` doing the same work.

    python -m benchmarks --cards 1000000            # the full run (about 20 minutes on 2 cores)
    python -m benchmarks --cards 20000 --only summary,status_card

Each operation times the ``cardctl`` console script as a subprocess (interpreter start
included, peak RSS of that one child from ``os.wait4``) and, in the same run, the same
database work done in this process with the ``sqlite3`` module. A Rich table goes to
stderr and the figures to JSON (default ``benchmarks/out/results.json``).

Modules: ``population`` makes the synthetic cards, ``rawsql`` and ``rawops`` are the
plain-SQL baselines, ``shape`` turns an imported database into the 1M-card population,
``measure`` runs and times the children, ``bench`` holds what the operations share,
``ops_read`` and ``ops_write`` define each measured operation, ``report`` prints and
writes the results.
"""

DEFAULT_CARDS = 1_000_000
