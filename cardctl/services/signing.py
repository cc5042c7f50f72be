"""Signed chain heads: ``cardctl audit sign`` (and the signing host's sweep), and their check.

Signing first walks the chain from the last head this key signed (or from the first event)
to the current head with the audit key: a head is signed only when the trail up to it
verifies, so a signature never blesses a rewrite. Checking needs only the public key; every
signed head of that key must still match its event (docs/security.md, "Signed heads").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from typing import TYPE_CHECKING

from ..errors import Refused
from ..i18n import _
from ..storage import audit_walk as walker
from ..storage.audit import GENESIS
from ..storage.signing import Signer, head_message, key_id, signing_time, verifies
from .context import Context

if TYPE_CHECKING:
    from ..storage.stores import Tx


@dataclass(frozen=True)
class SignResult:
    seq: int
    hash: str
    signed_at: datetime
    key_id: str
    created: bool  # False: this head was signed already


def sign_head(ctx: Context, signer: Signer) -> SignResult:
    """Sign the current chain head after verifying the chain since the last head signed by ``signer``.

    Refused (exit 6) when the chain does not verify or no longer matches that signed head.
    """
    kid = signer.key_id
    with ctx.read() as tx:
        head_seq, head_hash = tx.trail.head()
        last = tx.trail.last_signed(kid)
        if last is not None and last.seq >= head_seq:
            if last.seq == head_seq and last.hash == head_hash:
                return SignResult(last.seq, last.hash, last.signed_at, kid, False)
            raise Refused(_("not signing: signed head {seq} no longer matches the trail (its head is {head}); "
                            "run 'cardctl audit verify'").format(seq=last.seq, head=head_seq))
        start, prev = 1, GENESIS
        if last is not None:
            found = tx.trail.event_hash(last.seq)
            genuine = verifies(signer.public, head_message(ctx.keys.fingerprint, last.seq, last.hash, last.signed_at),
                               last.signature)
            if found != last.hash or not genuine:
                raise Refused(_("not signing: signed head {seq} no longer matches the trail; "
                                "run 'cardctl audit verify'").format(seq=last.seq))
            start, prev = last.seq + 1, last.hash
        walk = walker.ChainWalk(ctx.keys.audit_key, start, prev)
        for record in tx.trail.records(start, head_seq):
            if not walker.take(walk, record, lambda _hash: False):
                raise Refused(_("not signing: the audit chain does not verify ({problem})").format(
                    problem=walk.problem))
        if walk.next_seq != head_seq + 1 or walk.prev != head_hash:
            raise Refused(_("not signing: the audit chain does not verify ({problem})").format(
                problem=_("the head does not match event {seq}: the trail was rewritten").format(seq=head_seq)))
    signed_at = signing_time(ctx.now())
    signature = signer.sign(head_message(ctx.keys.fingerprint, head_seq, head_hash, signed_at))
    with ctx.write() as tx:  # a sweep on another host may have signed it meanwhile: theirs stands
        created = tx.trail.add_signed_head(head_seq, kid, head_hash, signed_at, signature)
    return SignResult(head_seq, head_hash, signed_at, kid, created)


@dataclass(frozen=True)
class SignatureCheck:
    """What the signed heads of one public key say about the trail in the database."""

    ok: bool
    problem: str | None = None
    first_bad_seq: int | None = None
    signed_seq: int | None = None  # the newest signed head that still matches
    signed_at: datetime | None = None
    key_id: str | None = None


def check_signed_heads(tx: Tx, fingerprint: str, public: bytes) -> SignatureCheck:
    """Every head signed by ``public``'s key: its signature, and that its event still has that hash.

    Names the first signed head that no longer matches and the last one before it that does:
    a rewrite by someone with every HMAC key but not the signing key lies between the two.
    """
    kid = key_id(public)
    rows = tx.trail.signed_with_events(kid)
    good = None
    for row in rows:
        if not verifies(public, head_message(fingerprint, row.seq, row.hash, row.signed_at), row.signature):
            return _failed(_("signed head {seq} carries a signature that does not verify: forged or damaged").format(
                seq=row.seq), row.seq, good, kid)
        if row.event_hash != row.hash:
            at = signing_time(row.signed_at).isoformat()
            where = (_("the trail was rewritten after event {good}, the last signed head that still matches").format(
                good=good.seq) if good else _("the trail was rewritten at or before event {seq}").format(seq=row.seq))
            gone = row.event_hash is None
            problem = (_("signed head {seq} (signed {at}): event {seq} is gone; {where}") if gone else
                       _("signed head {seq} (signed {at}) no longer matches event {seq}; {where}"))
            return _failed(problem.format(seq=row.seq, at=at, where=where), (good.seq + 1) if good else 1, good, kid)
        good = row
    if good is None:
        return SignatureCheck(True, key_id=kid)
    return SignatureCheck(True, signed_seq=good.seq, signed_at=good.signed_at, key_id=kid)


def _failed(problem: str, first_bad: int, good, kid: str) -> SignatureCheck:
    return SignatureCheck(False, problem, first_bad, good.seq if good else None,
                          good.signed_at if good else None, kid)


def unsigned_since(ctx: Context, kid: str) -> bool:
    """Whether the head moved past the last head signed by key ``kid``."""
    with ctx.read() as tx:
        return tx.trail.head()[0] > tx.trail.last_signed_seq(kid)
