"""The figures an auditor reads first, at the top of the HTML report: cards by status, cards
locked by kind, locks opened and ended in the period, the median time a lock lasted, and
arrears outstanding. Each is taken from the report's own sections (and one count of cards
by status), so the headline can never disagree with the tables under it.
"""

from __future__ import annotations

from typing import Any

from ..domain.model import CardStatus, LockKind

KINDS = tuple(kind.value for kind in LockKind)
STATUSES = tuple(status.value for status in CardStatus)


def headline(sections: dict[str, list[dict]], by_status: dict[str, int] | None,
             locked_cards: int | None) -> dict[str, Any]:
    """The headline figures of a report whose sections are ``sections``; a figure whose section
    was not asked for is left out."""
    found: dict[str, Any] = {}
    if by_status is not None:
        found["cards"] = {**{status: by_status.get(status, 0) for status in STATUSES},
                          "total": sum(by_status.values())}
    if "cards" in sections:  # a card holding two kinds is counted under each, as the section counts it
        locked = {kind: sum(row["cards"] for row in sections["cards"] if row["lock"] == kind) for kind in KINDS}
        found["locked"] = {**locked, "cards": locked_cards}
    if "locks_per_day" in sections:
        for what in ("opened", "ended"):
            counts = {kind: sum(row[f"{kind}_{what}"] for row in sections["locks_per_day"]) for kind in KINDS}
            found[f"locks_{what}"] = {**counts, "total": sum(counts.values())}
    if "lock_durations" in sections:
        found["median_locked"] = {row["kind"]: {"ended": row["ended"], "median_s": row["median_s"]}
                                  for row in sections["lock_durations"]}
    if "arrears_totals" in sections:
        totals = {row["debtor"]: row for row in sections["arrears_totals"]}
        found["arrears"] = {"owed": totals["all"]["owed"], "units": totals["units"]["count"],
                            "holders": totals["holders"]["count"]}
    return found

