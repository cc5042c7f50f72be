"""The vocabulary of the audit trail: what an event records (its action) and how it ended
(its outcome). One spelling, used alike by the writers, the replay of ``--as-of`` and the
report; stored as the enum's value, so the trail reads the same as before these existed.
"""

from __future__ import annotations

from enum import StrEnum


class Action(StrEnum):
    ACCESS_REFUSED = "access.refused"
    ARREARS_ADD = "arrears.add"
    ARREARS_PAY = "arrears.pay"
    BATCH_END = "batch.end"  # a batch run's first and last events (services/runs.py)
    BATCH_START = "batch.start"
    CARD_ACTIVATE = "card.activate"
    CARD_ISSUE = "card.issue"
    CARD_REISSUE = "card.reissue"
    DB_INIT = "db.init"
    LOCK_ADMIN = "lock.admin"
    LOCK_ARREARS = "lock.arrears"
    LOCK_END = "lock.end"
    LOCK_EXPIRE = "lock.expire"
    LOCK_PIN = "lock.pin"
    LOCK_UNLOCK = "lock.unlock"
    LOSS_CANCEL = "loss.cancel"
    LOSS_LAPSE = "loss.lapse"
    LOSS_REPORT = "loss.report"
    OPERATOR_ADD = "operator.add"
    OPERATOR_DISABLE = "operator.disable"
    OPERATOR_SET_ROLE = "operator.set_role"
    PIN_CHANGE = "pin.change"
    PIN_REHASH = "pin.rehash"
    PIN_RESET = "pin.reset"
    PIN_VERIFY = "pin.verify"
    POLICY_SET = "policy.set"
    SETTINGS_SET = "settings.set"


class Outcome(StrEnum):
    ACTIVATED = "activated"
    ADDED = "added"
    ALREADY_LOCKED = "already_locked"
    CHANGED = "changed"
    CREATED = "created"
    DISABLED = "disabled"
    ENDED = "ended"
    FORMAL = "formal"  # a loss report's outcome is its kind
    ISSUED = "issued"
    LAPSED = "lapsed"
    LOCKED = "locked"
    OK = "ok"
    RECORDED = "recorded"
    REFUSED = "refused"
    REFUSED_LOCKED = "refused_locked"
    REFUSED_UNUSABLE = "refused_unusable"
    REISSUED = "reissued"
    REPLACED = "replaced"
    RESET = "reset"
    TEMPORARY = "temporary"
    UNCHANGED = "unchanged"
    UNLOCKED = "unlocked"
    UPGRADED = "upgraded"
    WITHDRAWN = "withdrawn"
    WRONG_PIN = "wrong_pin"
    # results recorded under another spelling (domain/results.py ``outcome``): underscores, no hyphen
    NOT_LOCKED = "not_locked"
    NOT_FOUND = "not_found"
    RE_ENABLED = "re_enabled"
