"""The one place a ``CardView`` is built: a card as ``status`` shows it, now or at a past moment.

``services/reads.py`` builds it from the tables, ``services/history.py`` from the audit
trail; both apply the same read-time rules here (docs/domain.md, locks and loss reports).
"""

from __future__ import annotations

from datetime import datetime

from ..domain.model import CardView, LockView, effective_status


def card_view(*, now: datetime, card_no: str, holder_name: str, id_masked: str, region: str, status: str,
              failures: int, pin_lock_expired: bool, max_attempts: int, locks: list[LockView],
              insurance_type: str, unit: str | None, owed_fen: int, unit_owed_fen: int,
              loss_kind: str | None, lost_at: datetime | None, loss_lapses_at: datetime | None,
              void_reason: str | None, replaced_by: str | None, replaces: str | None) -> CardView:
    """The card at ``now``, from its stored ``status``, loss report and failure count."""
    shown = effective_status(status, loss_kind, loss_lapses_at, now)
    if shown != status:  # a lapsed report is shown as what it is now: no loss report at all
        loss_kind, lost_at, loss_lapses_at = None, None, None
    return CardView(
        card_no=card_no, holder_name=holder_name, id_masked=id_masked, region=region, status=shown,
        # a PIN lock past its end resets the count even before cron records it
        failures=0 if pin_lock_expired else failures, max_attempts=max_attempts, locks=locks,
        insurance_type=insurance_type, unit=unit, owed_fen=owed_fen, unit_owed_fen=unit_owed_fen,
        loss_kind=loss_kind, lost_at=lost_at, loss_lapses_at=loss_lapses_at, void_reason=void_reason,
        replaced_by=replaced_by, replaces=replaces)
