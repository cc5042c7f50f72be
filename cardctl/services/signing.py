"""Signed chain heads: ``cardctl audit sign`` (and the signing host's sweep), and their check.

Signing first walks the chain from the last head this key signed (or from the first event)
to the current head with the audit key: a head is signed only when the trail up to it
verifies, so a signature never blesses a rewrite. Checking needs only the public key; every
signed head of that key must still match its event (docs/security.md, "Signed heads").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from ..errors import Refused
from ..i18n import _
from ..storage import audit_walk as walker
from ..storage.audit import GENESIS
from ..storage.signing import Signer, head_message, key_id, signing_time, verifies
from ..storage.tables import audit_head, events, signed_heads
from .context import Context


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
    with ctx.db.read() as session:
        head_seq, head_hash = session.execute(select(audit_head.c.seq, audit_head.c.hash)
                                              .where(audit_head.c.id == 1)).one()
        last = session.execute(select(signed_heads).where(signed_heads.c.key_id == kid)
                               .order_by(signed_heads.c.seq.desc()).limit(1)).first()
        if last is not None and last.seq >= head_seq:
            if last.seq == head_seq and last.hash == head_hash:
                return SignResult(last.seq, last.hash, last.signed_at, kid, False)
            raise Refused(_("not signing: signed head {seq} no longer matches the trail (its head is {head}); "
                            "run 'cardctl audit verify'").format(seq=last.seq, head=head_seq))
        start, prev = 1, GENESIS
        if last is not None:
            found = session.scalar(select(events.c.hash).where(events.c.seq == last.seq))
            genuine = verifies(signer.public, head_message(ctx.keys.fingerprint, last.seq, last.hash, last.signed_at),
                               last.signature)
            if found != last.hash or not genuine:
                raise Refused(_("not signing: signed head {seq} no longer matches the trail; "
                                "run 'cardctl audit verify'").format(seq=last.seq))
            start, prev = last.seq + 1, last.hash
        walk = walker.ChainWalk(ctx.keys.audit_key, start, prev)
        for record in walker.read_records(session.connection(), walker.STORED_FIELDS, start, head_seq):
            if not walker.take(walk, record, lambda _hash: False):
                raise Refused(_("not signing: the audit chain does not verify ({problem})").format(
                    problem=walk.problem))
        if walk.next_seq != head_seq + 1 or walk.prev != head_hash:
            raise Refused(_("not signing: the audit chain does not verify ({problem})").format(
                problem=_("the head does not match event {seq}: the trail was rewritten").format(seq=head_seq)))
    signed_at = signing_time(ctx.now())
    signature = signer.sign(head_message(ctx.keys.fingerprint, head_seq, head_hash, signed_at))
    with ctx.db.connect_write() as conn:
        taken = conn.execute(select(signed_heads.c.seq).where(signed_heads.c.seq == head_seq,
                                                              signed_heads.c.key_id == kid)).first()
        if taken is None:  # a sweep on another host signed it meanwhile: theirs stands
            conn.execute(signed_heads.insert().values(seq=head_seq, key_id=kid, hash=head_hash,
                                                      signed_at=signed_at, signature=signature))
    return SignResult(head_seq, head_hash, signed_at, kid, taken is None)


@dataclass(frozen=True)
class SignatureCheck:
    """What the signed heads of one public key say about the trail in the database."""

    ok: bool
    problem: str | None = None
    first_bad_seq: int | None = None
    signed_seq: int | None = None  # the newest signed head that still matches
    signed_at: datetime | None = None
    key_id: str | None = None


def check_signed_heads(session, fingerprint: str, public: bytes) -> SignatureCheck:
    """Every head signed by ``public``'s key: its signature, and that its event still has that hash.

    Names the first signed head that no longer matches and the last one before it that does:
    a rewrite by someone with every HMAC key but not the signing key lies between the two.
    """
    kid = key_id(public)
    rows = session.execute(
        select(signed_heads.c.seq, signed_heads.c.hash, signed_heads.c.signed_at, signed_heads.c.signature,
               events.c.hash.label("event_hash"))
        .select_from(signed_heads.outerjoin(events, events.c.seq == signed_heads.c.seq))
        .where(signed_heads.c.key_id == kid).order_by(signed_heads.c.seq)
        .execution_options(yield_per=5000))
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


def unsigned_since(session, kid: str) -> bool:
    """Whether the head moved past the last head signed by key ``kid``."""
    head = session.scalar(select(audit_head.c.seq).where(audit_head.c.id == 1))
    last = session.scalar(select(func.max(signed_heads.c.seq)).where(signed_heads.c.key_id == kid))
    return head > (last or 0)


def latest_signed_head(session, low: int, high: int, kid: str | None = None):
    """The newest signed head with a seq in ``low``..``high`` (of key ``kid``, or any), for an export header."""
    stmt = select(signed_heads).where(signed_heads.c.seq.between(low, high))
    if kid is not None:
        stmt = stmt.where(signed_heads.c.key_id == kid)
    return session.execute(stmt.order_by(signed_heads.c.seq.desc(), signed_heads.c.signed_at.desc()).limit(1)).first()


def first_unmatched_head(session, kid: str | None = None):
    """The first signed head (of key ``kid``, or any) whose event is gone or has another hash.

    No signature is checked (that needs the public key): this is what an export can tell alone,
    and it refuses to carry a trail rewritten under a signed head.
    """
    stmt = (select(signed_heads.c.seq, signed_heads.c.signed_at)
            .select_from(signed_heads.outerjoin(events, events.c.seq == signed_heads.c.seq))
            .where((events.c.hash.is_(None)) | (events.c.hash != signed_heads.c.hash)))
    if kid is not None:
        stmt = stmt.where(signed_heads.c.key_id == kid)
    return session.execute(stmt.order_by(signed_heads.c.seq).limit(1)).first()
