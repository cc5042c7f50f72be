"""``cardctl metrics`` in the Prometheus text exposition format, built by ``prometheus_client``.

A custom collector over one ``domain.metrics.Metrics`` in a registry of its own (not the
library's global one, which would add this process's own figures), written by
``generate_latest``: the library escapes label values and formats floats, so a region or
status never breaks the format. Every family is a gauge: each value is a count or a time
as read now, not a running total. The labels are region (an area code), status and lock
kind only, never a card number or a name (docs/domain.md, "Metrics"). HELP texts stay in
English whatever ``--lang`` says: a scrape must read the same from every host.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector, CollectorRegistry

from ..domain.metrics import Metrics

# name -> HELP; the order the exposition has them (README, "Monitoring")
FAMILIES = {
    "cardctl_cards": "Cards by region (area code) and status; a temporary loss report past its lapse counts as "
                     "active.",
    "cardctl_cards_locked": "Cards holding a lock in force, by kind; a card holding locks of two kinds counts "
                            "under each.",
    "cardctl_cards_locked_escalated": "Cards whose PIN lock escalated to a counter visit (also counted under "
                                      "cardctl_cards_locked{kind=\"pin\"}).",
    "cardctl_locks_expired_unrecorded": "PIN locks past their end that the sweep (unlock --expired) has not "
                                        "recorded as ended yet.",
    "cardctl_locks_expired_unrecorded_oldest_age_seconds": "Seconds since the oldest unrecorded expired PIN lock "
                                                           "ended (the sweep's lag); 0 when there is none.",
    "cardctl_locks_opened_last_24h": "Locks opened in the last 24 hours, by kind.",
    "cardctl_audit_head_seq": "Sequence number of the newest audit event.",
    "cardctl_audit_head_timestamp_seconds": "When the newest audit event was recorded, in seconds since 1970.",
    "cardctl_last_sweep_timestamp_seconds": "When the newest sweep (unlock --expired) that ended something "
                                            "finished, in seconds since 1970; NaN if none has.",
}


def _seconds(moment: datetime | None) -> float:
    return math.nan if moment is None else moment.timestamp()


class MetricsCollector(Collector):
    """The families of one ``Metrics``."""

    def __init__(self, figures: Metrics) -> None:
        self.figures = figures

    def _family(self, name: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, FAMILIES[name], labels=list(labels) if labels else None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures = self.figures
        cards = self._family("cardctl_cards", ("region", "status"))
        for region, status, count in figures.cards:
            cards.add_metric([region, status], count)
        locked = self._family("cardctl_cards_locked", ("kind",))
        for kind, count in figures.locked.items():
            locked.add_metric([kind], count)
        opened = self._family("cardctl_locks_opened_last_24h", ("kind",))
        for kind, count in figures.opened.items():
            opened.add_metric([kind], count)
        singles = {
            "cardctl_cards_locked_escalated": figures.escalated,
            "cardctl_locks_expired_unrecorded": figures.unrecorded,
            "cardctl_locks_expired_unrecorded_oldest_age_seconds": figures.unrecorded_age_s,
            "cardctl_audit_head_seq": figures.head_seq,
            "cardctl_audit_head_timestamp_seconds": _seconds(figures.head_at),
            "cardctl_last_sweep_timestamp_seconds": _seconds(figures.last_sweep_at),
        }
        built = {"cardctl_cards": cards, "cardctl_cards_locked": locked, "cardctl_locks_opened_last_24h": opened}
        for name in FAMILIES:
            if name in built:
                yield built[name]
            else:
                family = self._family(name)
                family.add_metric([], singles[name])
                yield family


def exposition(figures: Metrics) -> bytes:
    """The text exposition format (version 0.0.4) of ``figures``."""
    registry = CollectorRegistry()
    registry.register(MetricsCollector(figures))
    return generate_latest(registry)
