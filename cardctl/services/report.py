"""The auditor's report: the population, how locks came and went over a period, who owes,
and who did what.

Every section is a few ``GROUP BY`` statements over the locks, events, arrears and cards
tables (the report store, ``storage/stores/reports.py``); nothing loads the population
into Python. Days are local days in the configured
time zone: the database groups times by quarter hour (every zone's offset is a multiple
of 15 minutes), and Python names each quarter's local day. Lock durations come back as a
histogram of whole seconds in order, and the median and 95th percentile are picked from
that stream (linear interpolation between the two nearest ranks, as numpy and
``statistics.quantiles(method="inclusive")`` do). A lock has ended when it was recorded
as ended, or when its end time has passed (decided on read, as ``status`` does: the
cron sweep records it later). With ``as_of`` the population sections (cards, arrears)
are rebuilt from the audit trail by ``history.Replay``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

from ..domain.model import CardStatus, EndCause, LockKind, iso
from ..domain.money import format_fen
from ..domain.times import duration
from ..errors import InvalidInput
from ..i18n import N_, _
from .context import Context
from .report_sources import COLUMNS as SOURCE_COLUMNS, DEFAULT_MIN_CARDS, sources

if TYPE_CHECKING:
    from ..storage.stores import Tx

SECTIONS = ("cards", "locks_per_day", "lock_durations", "duration_buckets", "pin_lock_endings",
            "repeat_locked", "arrears_units", "arrears_totals", "actions", "sources", "runs")
KINDS = tuple(kind.value for kind in LockKind)
PIN_ENDINGS = (EndCause.EXPIRED.value, EndCause.UNLOCKED.value, EndCause.RESET.value, EndCause.REPLACED.value)
DEFAULT_DAYS = 30
QUARTER = 900  # seconds: the report store groups times by the quarter hour
# upper bounds (inclusive) of the duration distribution's buckets
BUCKETS = ((3600, N_("up to 1h")), (6 * 3600, "1h-6h"), (12 * 3600, "6h-12h"), (24 * 3600, "12h-24h"),
           (48 * 3600, "24h-48h"), (7 * 86400, "2d-7d"), (30 * 86400, "7d-30d"), (math.inf, N_("over 30d")))
# the arrears_totals debtors, shown translated in a table
DEBTORS = (N_("units"), N_("holders"), N_("all"))


@dataclass(frozen=True)
class Period:
    """What the report covers: events and locks in [since, until); the population now or at ``as_of``."""

    since: datetime
    until: datetime
    as_of: datetime | None = None
    region: str | None = None
    min_locks: int = 3
    timezone: str = "Asia/Shanghai"
    min_cards: int = DEFAULT_MIN_CARDS  # distinct cards that flag a source (report_sources.py)

    @classmethod
    def resolve(cls, now: datetime, since: datetime | None, until: datetime | None, as_of: datetime | None,
                region: str | None, min_locks: int, timezone: str,
                min_cards: int = DEFAULT_MIN_CARDS) -> "Period":
        if as_of is not None and as_of > now:
            raise InvalidInput(_("--as-of {at} is in the future; the trail only knows the past").format(at=iso(as_of)))
        if as_of is not None and until is not None and until > as_of:
            raise InvalidInput(_("--until must not be later than --as-of: the report would use what came after it"))
        until = until or as_of or now
        since = since or until - timedelta(days=DEFAULT_DAYS)
        if since >= until:
            raise InvalidInput(_("--since must be earlier than --until"))
        return cls(since, until, as_of, region, min_locks, timezone, min_cards)

    def record(self) -> dict[str, Any]:
        return {"since": iso(self.since), "until": iso(self.until), "as_of": iso(self.as_of),
                "region": self.region, "min_locks": self.min_locks, "timezone": self.timezone,
                "min_cards": self.min_cards}


@dataclass
class Report:
    period: Period
    generated_at: datetime
    sections: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    headline: dict[str, Any] | None = None  # asked for by the HTML page (services/headline.py)

    def record(self) -> dict[str, Any]:
        found = {"period": {**self.period.record(), "generated_at": iso(self.generated_at)},
                 "sections": self.sections}
        return found if self.headline is None else {**found, "headline": self.headline}


def build_report(ctx: Context, period: Period, wanted: Sequence[str] = SECTIONS, headline: bool = False) -> Report:
    """The sections asked for, in SECTIONS order, read in one transaction (the ``cards``
    section now is ``status.summary``, which reads in its own); with ``headline`` the
    figures the HTML page opens with, too."""
    now = ctx.now()
    report = Report(period, now)
    with ctx.read() as tx:
        query = _Queries(tx, period, now)
        needs_population = headline or {"cards", "arrears_units", "arrears_totals"} & set(wanted)
        population = _Population(ctx, tx, period) if needs_population else None
        builders: dict[str, Callable[[], list[dict]]] = {
            "cards": lambda: population.cards,
            "locks_per_day": query.locks_per_day,
            "lock_durations": lambda: query.durations()[0],
            "duration_buckets": lambda: query.durations()[1],
            "pin_lock_endings": query.pin_lock_endings,
            "repeat_locked": query.repeat_locked,
            "arrears_units": lambda: population.arrears_units,
            "arrears_totals": lambda: population.arrears_totals,
            "actions": query.actions,
            "sources": lambda: sources(tx, period.since, period.until, period.region, period.min_cards),
            "runs": lambda: _runs(tx, period),
        }
        for name in SECTIONS:
            if name in wanted:
                report.sections[name] = builders[name]()
    if headline:
        from .headline import headline as figures

        report.headline = figures(report.sections, population.by_status, population.locked_cards)
    return report


def _runs(tx: Tx, period: Period) -> list[dict]:
    from .report_runs import runs

    return runs(tx, period.since, period.until)


class _Queries:
    """The period sections, each from a GROUP BY over locks or events (``stores.reports``)."""

    def __init__(self, tx: Tx, period: Period, now: datetime) -> None:
        self.store, self.period, self.now = tx.reports, period, now
        self.span = (period.since, period.until, period.region)
        self._durations: tuple[list[dict], list[dict]] | None = None

    def locks_per_day(self) -> list[dict]:
        """One row per local day with any lock opened or ended: counts per kind."""
        days: dict[str, Counter] = defaultdict(Counter)
        day_of = _day_namer(self.period.timezone)
        for what, kind, quarter, count in self.store.locks_per_quarter(*self.span, self.now):
            days[day_of(quarter)][f"{kind}_{what}"] += count
        return [{"day": day, **{f"{kind}_{what}": days[day][f"{kind}_{what}"]
                                for kind in KINDS for what in ("opened", "ended")}}
                for day in sorted(days)]

    def durations(self) -> tuple[list[dict], list[dict]]:
        """(median and 95th percentile per kind, the distribution in buckets) of the locks that
        ended in the period, from one ordered stream of (kind, seconds, locks)."""
        if self._durations is not None:
            return self._durations
        totals = self.store.ended_per_kind(*self.span, self.now)
        pickers = {kind: QuantilePicker(totals.get(kind, 0), (0.5, 0.95)) for kind in KINDS}
        buckets: dict[str, Counter] = defaultdict(Counter)
        for kind, seconds, count in self.store.ended_durations(*self.span, self.now):
            if kind in pickers:
                pickers[kind].feed(seconds, count)
                buckets[_bucket(seconds)][kind] += count
        summary = []
        for kind in KINDS:
            median, p95 = pickers[kind].values()
            summary.append({"kind": kind, "ended": totals.get(kind, 0), "median_s": median, "p95_s": p95,
                            "median": human_seconds(median), "p95": human_seconds(p95)})
        distribution = [{"duration": label, **{kind: buckets[label][kind] for kind in KINDS}}
                        for _, label in BUCKETS]
        self._durations = summary, distribution
        return self._durations

    def pin_lock_endings(self) -> list[dict]:
        found = self.store.endings_of(LockKind.PIN.value, *self.span, self.now)
        total = sum(found.values())
        causes = list(PIN_ENDINGS) + sorted(set(found) - set(PIN_ENDINGS))
        return [{"ended_by": cause, "locks": found.get(cause, 0),
                 "share": f"{100 * found.get(cause, 0) / total:.1f}%" if total else None}  # none: empty
                for cause in causes]

    def repeat_locked(self) -> list[dict]:
        """Cards with at least ``min_locks`` locks opened in the period, most locked first."""
        rows = self.store.repeat_locked(KINDS, *self.span, self.period.min_locks)
        return [{"card_no": row.card_no, "holder_name": row.name, "region": row.region, "locks": row.locks,
                 **{kind: int(getattr(row, kind)) for kind in KINDS}, "escalated": int(row.escalated or 0),
                 "first": iso(row.first), "last": iso(row.last)} for row in rows]

    def actions(self) -> list[dict]:
        """Events per real actor (the login the system established; none on events older than
        migration 0004), the operator named beside it, channel and action in the period; how
        many were refusals."""
        return [{"actor": actor, "operator": operator, "channel": channel, "action": action, "events": count,
                 "refused": int(refusals or 0)}
                for actor, operator, channel, action, count, refusals in self.store.actions(*self.span)]


class _Population:
    """The cards and arrears sections: now from the tables, or at ``as_of`` from the trail."""

    def __init__(self, ctx: Context, tx: Tx, period: Period) -> None:
        self.by_status: Counter[str] = Counter()  # cards by effective status
        self.locked_cards = 0  # cards with any lock in force
        if period.as_of is not None:
            summary, units, unit_cards, holders_owing = _population_at(tx, period, self)
        else:
            summary, units, unit_cards, holders_owing = _population_now(ctx, tx, period)
            self.by_status, self.locked_cards = _cards_now(tx, period, ctx.now())
        self.cards = [row.record() for row in sorted(summary, key=lambda r: (r.region, r.status, r.lock))]
        if period.region:  # a unit is in a region's report when it has a live card there
            units = {unit: fen for unit, fen in units.items() if unit_cards.get(unit)}
        owing = sorted(((fen, unit) for unit, fen in units.items() if fen > 0), key=lambda x: (-x[0], x[1]))
        self.arrears_units = [{"unit": unit, "owed": format_fen(fen), "cards": unit_cards.get(unit, 0)}
                              for fen, unit in owing]
        unit_total = sum(fen for fen, _ in owing)
        holder_count, holder_total = holders_owing
        self.arrears_totals = [
            {"debtor": "units", "count": len(owing), "owed": format_fen(unit_total)},
            {"debtor": "holders", "count": holder_count, "owed": format_fen(holder_total)},
            {"debtor": "all", "count": len(owing) + holder_count, "owed": format_fen(unit_total + holder_total)},
        ]


def _population_now(ctx: Context, tx: Tx, period: Period):
    from . import status

    summary = status.summary(ctx, status.Filters(region=period.region))
    store = tx.reports
    units = store.units_owing()
    unit_cards = store.live_unit_cards(period.region)
    return summary, units, unit_cards, store.holders_owing(period.region)


def _cards_now(tx: Tx, period: Period, now: datetime) -> tuple[Counter, int]:
    """Cards by effective status, and how many hold a lock in force: one GROUP BY."""
    rows = tx.reports.cards_by_status(period.region, now)
    return Counter({found: count for found, count, _held in rows}), sum(held for *_x, held in rows)


def _population_at(tx: Tx, period: Period, into: "_Population"):
    from .history import Replay, summarise

    replay = Replay(tx, period.as_of)
    unit_cards: Counter[str] = Counter()
    holders_owing: dict[int, int] = {}

    def views():
        for card in replay.cards(period.region):
            view = card.view
            if view.unit and view.status != CardStatus.VOID:
                unit_cards[view.unit] += 1
            if view.owed_fen > 0:
                holders_owing[card.holder_id] = view.owed_fen
            into.by_status[view.status] += 1
            into.locked_cards += bool(view.locks)
            yield view

    summary = summarise(views())
    return (summary, replay.unit_balances, dict(unit_cards),
            (len(holders_owing), sum(holders_owing.values())))


class QuantilePicker:
    """Quantiles of ``total`` values fed in ascending order as (value, count) runs, keeping
    only the few order statistics needed: memory does not grow with the data."""

    def __init__(self, total: int, quantiles: Iterable[float]) -> None:
        # exact fractions: (n - 1) * 0.95 in floats can land just below a half and round the wrong way
        self.total, self.quantiles = total, tuple(Fraction(str(q)) for q in quantiles)
        self.wanted = {rank for q in self.quantiles for rank in _ranks(total, q)}
        self.found: dict[int, int] = {}
        self.seen = 0

    def feed(self, value: int, count: int) -> None:
        end = self.seen + count
        for rank in self.wanted:
            if self.seen <= rank < end:
                self.found[rank] = value
        self.seen = end

    def values(self) -> list[int | None]:
        if not self.total:
            return [None for _ in self.quantiles]
        result = []
        for q in self.quantiles:
            low, high = _ranks(self.total, q)
            position = (self.total - 1) * q
            result.append(round(self.found[low] + (position - low) * (self.found[high] - self.found[low])))
        return result


def columns(section: str) -> list[str]:
    """The columns of a section's rows, for a CSV header when it has none."""
    return {
        "cards": ["region", "status", "lock", "cards"],
        "locks_per_day": ["day", *(f"{kind}_{what}" for kind in KINDS for what in ("opened", "ended"))],
        "lock_durations": ["kind", "ended", "median_s", "p95_s", "median", "p95"],
        "duration_buckets": ["duration", *KINDS],
        "pin_lock_endings": ["ended_by", "locks", "share"],
        "repeat_locked": ["card_no", "holder_name", "region", "locks", *KINDS, "escalated", "first", "last"],
        "arrears_units": ["unit", "owed", "cards"],
        "arrears_totals": ["debtor", "count", "owed"],
        "actions": ["actor", "operator", "channel", "action", "events", "refused"],
        "sources": SOURCE_COLUMNS,
        "runs": _run_columns(),
    }[section]


def _run_columns() -> list[str]:
    from .report_runs import COLUMNS

    return COLUMNS


def _ranks(total: int, q: Fraction) -> tuple[int, int]:
    if total == 0:
        return 0, 0
    low = math.floor((total - 1) * q)
    return low, min(low + 1, total - 1)


def _bucket(seconds: int) -> str:
    return next(label for bound, label in BUCKETS if seconds <= bound)


def human_seconds(seconds: int | None) -> str | None:
    """The record's English wording ('1d 1h', '2h 05m'), None (an empty cell) without a value;
    tables and pages word it again in the chosen language from the seconds (``labels.worded_durations``)."""
    return None if seconds is None else str(duration(seconds))


def _day_namer(timezone: str) -> Callable[[int], str]:
    zone = ZoneInfo(timezone)

    @lru_cache(maxsize=None)
    def day_of(quarter: int) -> str:
        return datetime.fromtimestamp(quarter * QUARTER, zone).date().isoformat()

    return day_of
