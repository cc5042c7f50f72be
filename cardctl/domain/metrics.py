"""What ``cardctl metrics`` reports: plain figures, gathered by services/metrics.py and written in
the Prometheus text format by render/prometheus.py (docs/domain.md, "Metrics")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Metrics:
    """Counts and times as of ``at``; ``locked`` and ``opened`` name every lock kind (0 if none)."""

    at: datetime
    cards: tuple[tuple[str, str, int], ...]  # (region, status, cards)
    locked: dict[str, int]  # kind -> cards holding a lock of it in force
    escalated: int  # cards whose PIN lock escalated to a counter visit (counted under pin too)
    unrecorded: int  # PIN locks past their end, not yet recorded as ended by the sweep
    unrecorded_age_s: float  # how long ago the oldest of them ended; 0 when there is none
    opened: dict[str, int]  # kind -> locks opened within OPENED_WITHIN
    head_seq: int
    head_at: datetime | None  # when the newest event was recorded
    last_sweep_at: datetime | None  # when the newest sweep that ended something finished
