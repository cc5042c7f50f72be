"""The baselines: each cardctl operation's database work in plain ``sqlite3``, in this process.

Each function does what the matching command does to the database, in the same
transactions and chunks, and writes the same kind of output line per item to
``out`` (``/dev/null`` when timed) - but without SQLAlchemy, Typer or input validation.
What each one includes is stated in its docstring, and repeated in the ``baseline``
field of its result.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import TextIO

from cardctl.keys import Keys

from .rawsql import Actor, Chain, connect, detail_json, hashed_iso, id_hash, new_run, stored

IMPORT_CHUNK = 2000  # cardctl.cli.cards.IMPORT_CHUNK
EXPIRE_CHUNK = 10_000  # cardctl.services.unlock.expire_due
UNLOCK_CHUNK = 5000  # cardctl.services.unlock.CHUNK
EFFECTIVE = "l.ended_at IS NULL AND (l.ends_at IS NULL OR l.ends_at > ?)"


def _marks(values) -> str:
    return ",".join("?" * len(values))


def _batch(conn, chain: Chain, now: datetime, action: str, detail: dict) -> None:
    """A run's ``batch.start`` (in its first chunk's transaction) or ``batch.end`` event."""
    chain.append(conn, now, [(action, "ok", None, None, detail_json(detail), None)])


def _end_run(conn, chain: Chain, now: datetime, detail: dict) -> None:
    conn.execute("BEGIN IMMEDIATE")
    _batch(conn, chain, now, "batch.end", detail)
    conn.execute("COMMIT")


def import_csv(db: Path, csv_path: Path, keys: Keys, actor: Actor, now: datetime, out: TextIO) -> int:
    """``cardctl import FILE -o jsonl``: per chunk of 2000 rows, one BEGIN IMMEDIATE transaction that
    inserts the holders (keyed ID hash, masked ID, keyed hash of the last 6, name, sealed birth date),
    the cards (pending) and one chained ``card.issue`` event per card, then moves the audit head.

    Includes: CSV parsing (``csv.reader``), the two HMACs per holder and one per event, a JSON
    result line per row. Leaves out: ID-number / card-number / USCC / name validation and the
    per-chunk duplicate look-ups (the unique indexes still refuse duplicates).
    """
    conn = connect(db)
    chain = new_run(keys.audit_key, actor, now)
    now_text, count = stored(now), 0
    run = {"command": "import", "input": str(csv_path)}
    with csv_path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        at = {name: header.index(name) for name in ("card_no", "name", "id_number", "region", "type", "unit")}
        chunk: list[tuple[int, list[str]]] = []
        for values in reader:
            chunk.append((reader.line_num, values))
            if len(chunk) == IMPORT_CHUNK:
                count += _import_chunk(conn, chain, chunk, at, keys, now, now_text, out, None if count else run)
                chunk = []
        if chunk:
            count += _import_chunk(conn, chain, chunk, at, keys, now, now_text, out, None if count else run)
    with csv_path.open("rb") as raw:  # cardctl hashes as it reads; a second pass costs the same hashing
        digest = hashlib.file_digest(raw, "sha256")
    _end_run(conn, chain, now, {**run, "rows": count, "results": {"issued": count},
                                "input_sha256": digest.hexdigest(), "input_bytes": csv_path.stat().st_size})
    conn.close()
    return count


def _import_chunk(conn, chain: Chain, chunk, at: dict, keys: Keys, now, now_text: str, out,
                  start: dict | None) -> int:
    from datetime import date

    from cardctl.domain.sealed import birth_sealer

    id_key, seal = keys.id_key, birth_sealer(keys.data_key)
    conn.execute("BEGIN IMMEDIATE")
    first_id = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM holders").fetchone()[0]
    holders, cards, events = [], [], []
    for holder_id, (_, values) in enumerate(chunk, first_id):
        number, card_no, region, kind = values[at["id_number"]], values[at["card_no"]], values[at["region"]], values[at["type"]]
        masked = number[:3] + "*" * 11 + number[-4:]
        keyed = id_hash(id_key, number)
        holders.append((holder_id, keyed, masked, id_hash(id_key, "tail:" + number[-6:]), values[at["name"]],
                        seal(keyed, date(int(number[6:10]), int(number[10:12]), int(number[12:14])))))
        cards.append((card_no, holder_id, region, kind, "social-security", values[at["unit"]] or None, now_text))
        events.append(("card.issue", "issued", card_no, None,
                       detail_json({"region": region, "type": kind, "holder": masked}), None))
    conn.executemany("INSERT INTO holders (id, id_hash, id_masked, id_tail_hash, name, birth_sealed)"
                     " VALUES (?,?,?,?,?,?)", holders)
    conn.executemany("INSERT INTO cards (card_no, holder_id, region, insurance_type, issuer, unit, status,"
                     " failures, issued_at) VALUES (?,?,?,?,?,?,'pending',0,?)", cards)
    if start is not None:  # the run begins with its first chunk
        _batch(conn, chain, now, "batch.start", start)
    chain.append(conn, now, events)
    conn.execute("COMMIT")
    for line, values in chunk:
        out.write(json.dumps({"line": line, "card_no": values[at["card_no"]], "result": "issued", "detail": ""},
                             ensure_ascii=False) + "\n")
    return len(chunk)


def _end_due(conn, chain: Chain, now: datetime, card_nos: list[str] | None, limit: int | None) -> list:
    """Record the end of PIN locks past their end time, at that time; reset those cards' failures."""
    where = "kind = 'pin' AND ended_at IS NULL AND ends_at <= ?"
    params: list = [stored(now)]
    if card_nos is not None:
        where += f" AND card_no IN ({_marks(card_nos)})"
        params += card_nos
    limit_sql = f" LIMIT {int(limit)}" if limit else ""
    rows = conn.execute(
        "UPDATE locks SET ended_at = ends_at, end_cause = 'expired', ended_by = 'system' WHERE id IN"
        f" (SELECT id FROM locks WHERE {where} ORDER BY ends_at, id{limit_sql}) RETURNING id, card_no, ends_at",
        params).fetchall()
    if not rows:
        return []
    rows.sort(key=lambda row: (row[2], row[0]))
    cards = sorted({row[1] for row in rows})
    for start in range(0, len(cards), 10_000):
        part = cards[start:start + 10_000]
        conn.execute(f"UPDATE cards SET failures = 0 WHERE card_no IN ({_marks(part)})", part)
    chain.append(conn, now, [("lock.expire", "ended", card_no, None, detail_json({"kind": "pin", "lock": lock_id}),
                              ends_at) for lock_id, card_no, ends_at in rows])
    return rows


def expire_due(db: Path, keys: Keys, actor: Actor, now: datetime, out: TextIO) -> int:
    """``cardctl unlock --expired -o jsonl``: per chunk of 10,000 due PIN locks, one transaction of
    ``UPDATE locks ... RETURNING``, ``UPDATE cards SET failures = 0`` and one chained
    ``lock.expire`` event each; a JSON line per lock ended."""
    conn, chain, count = connect(db), new_run(keys.audit_key, actor, now), 0
    due = conn.execute("SELECT count(*) FROM locks WHERE kind = 'pin' AND ended_at IS NULL AND ends_at <= ?",
                       (stored(now),)).fetchone()[0]
    run = {"command": "unlock --expired", "rows": due}
    while True:
        conn.execute("BEGIN IMMEDIATE")
        if due and not count:  # a sweep that ends something is a run, begun with its first chunk
            _batch(conn, chain, now, "batch.start", run)
        rows = _end_due(conn, chain, now, None, EXPIRE_CHUNK)
        conn.execute("COMMIT")
        for _, card_no, ends_at in rows:
            out.write(json.dumps({"card_no": card_no, "result": "expired",
                                  "ended_at": hashed_iso(ends_at).replace("+00:00", "Z")}) + "\n")
        count += len(rows)
        if len(rows) < EXPIRE_CHUNK:
            if due:
                _end_run(conn, chain, now, {**run, "rows": count, "results": {"expired": count}})
            conn.close()
            return count


def unlock_file(db: Path, path: Path, reason: str, keys: Keys, actor: Actor, now: datetime, out: TextIO) -> int:
    """``cardctl unlock --from FILE --reason R -o jsonl`` (PIN locks): per chunk of 5000 card numbers,
    one transaction that reads the cards, ends their due PIN locks as expired (with events),
    reads their effective locks, ends the PIN ones as unlocked, resets failures, and appends one
    ``lock.unlock`` event per card; a JSON line per card. Card numbers are stripped, not validated."""
    conn, chain, count = connect(db), new_run(keys.audit_key, actor, now), 0
    run, results = {"command": "unlock --from", "input": str(path)}, {}
    with path.open(encoding="utf-8") as handle:
        chunk: list[str] = []
        for line in handle:
            if line.strip():
                chunk.append(line.strip())
            if len(chunk) == UNLOCK_CHUNK:
                count += _unlock_chunk(conn, chain, chunk, reason, now, out, None if count else run, results)
                chunk = []
        if chunk:
            count += _unlock_chunk(conn, chain, chunk, reason, now, out, None if count else run, results)
    with path.open("rb") as raw:  # cardctl hashes as it reads; a second pass costs the same hashing
        digest = hashlib.file_digest(raw, "sha256")
    _end_run(conn, chain, now, {**run, "rows": count, "results": dict(sorted(results.items())),
                                "input_sha256": digest.hexdigest(), "input_bytes": path.stat().st_size})
    conn.close()
    return count


def _unlock_chunk(conn, chain: Chain, chunk: list[str], reason: str, now: datetime, out, start: dict | None,
                  results: dict) -> int:
    wanted = list(dict.fromkeys(chunk))
    conn.execute("BEGIN IMMEDIATE")
    if start is not None:  # the run begins with its first chunk
        _batch(conn, chain, now, "batch.start", start)
    status = dict(conn.execute(f"SELECT card_no, status FROM cards WHERE card_no IN ({_marks(wanted)})", wanted))
    _end_due(conn, chain, now, list(status), None)
    locks: dict[str, list[tuple[int, str]]] = {}
    for lock_id, card_no, kind in conn.execute(
            f"SELECT l.id, l.card_no, l.kind FROM locks l WHERE l.card_no IN ({_marks(status)}) AND {EFFECTIVE}",
            [*status, stored(now)]):
        locks.setdefault(card_no, []).append((lock_id, kind))
    decided = {card_no: _decide(status.get(card_no), locks.get(card_no, [])) for card_no in wanted}
    to_end = [lock_id for _, _, ids in decided.values() for lock_id in ids]
    for start in range(0, len(to_end), 10_000):
        part = to_end[start:start + 10_000]
        conn.execute(f"UPDATE locks SET ended_at = ?, end_cause = 'unlocked', ended_by = ? WHERE id IN"
                     f" ({_marks(part)}) AND ended_at IS NULL", [stored(now), chain.actor.operator, *part])
    cleared = [card_no for card_no, (result, _, _) in decided.items() if result == "unlocked"]
    if cleared:
        conn.execute(f"UPDATE cards SET failures = 0 WHERE card_no IN ({_marks(cleared)})", cleared)
    chain.append(conn, now, [
        ("lock.unlock", result.replace(" ", "_"), card_no, reason,
         detail_json({"kind": "pin", "note": detail} if detail else {"kind": "pin"}), None)
        for card_no, (result, detail, _) in decided.items()])
    conn.execute("COMMIT")
    for card_no, (result, detail, _) in decided.items():
        results[result] = results.get(result, 0) + 1
        out.write(json.dumps({"card_no": card_no, "result": result, "detail": detail}, ensure_ascii=False) + "\n")
    return len(decided)


def _decide(status: str | None, locks: list[tuple[int, str]]) -> tuple[str, str, list[int]]:
    if status is None:
        return "not found", "no such card", []
    if status in ("lost", "void"):
        return "refused", f"card is {status}; a {status} card cannot be unlocked", []
    pins = [lock_id for lock_id, kind in locks if kind == "pin"]
    if pins:
        others = sorted({kind for _, kind in locks if kind != "pin"})
        return "unlocked", f"still locked: {', '.join(others)}" if others else "", pins
    if any(kind == "arrears" for _, kind in locks):
        return "refused", "arrears lock: only pay-arrears lifts it", []
    if locks:
        kinds = ", ".join(sorted({kind for _, kind in locks}))
        return "refused", f"{kinds} lock: needs unlock --kind {kinds}", []
    return "not locked", "", []


SUMMARY_SQL = (
    "SELECT c.region, c.status, coalesce(l.kind, 'none') AS lock, count(*) AS cards"
    f" FROM cards c LEFT OUTER JOIN locks l ON l.card_no = c.card_no AND {EFFECTIVE}"
    " GROUP BY c.region, c.status, coalesce(l.kind, 'none')"
    " ORDER BY c.region, c.status, coalesce(l.kind, 'none')")


def summary(db: Path, now: datetime, out: TextIO) -> int:
    """``cardctl status --summary -o json``: the same GROUP BY query, rows written as a JSON array."""
    conn = connect(db)
    conn.execute("BEGIN DEFERRED")
    rows = [{"region": r, "status": s, "lock": k, "cards": n} for r, s, k, n in conn.execute(SUMMARY_SQL, [stored(now)])]
    conn.execute("COMMIT")
    conn.close()
    out.write(json.dumps(rows, ensure_ascii=False) + "\n")
    return len(rows)


CARD_SQL = ("SELECT c.card_no, h.name, h.id_masked, c.region, c.status, c.failures, c.insurance_type, c.unit"
            " FROM cards c JOIN holders h ON h.id = c.holder_id")


def _card_records(conn, rows: list, now: datetime) -> list[dict]:
    """Card rows plus their effective locks and lapsed PIN locks, as cardctl's status prints them."""
    card_nos = [row[0] for row in rows]
    locks: dict[str, list[dict]] = {}
    for card_no, kind, reason, since, until in conn.execute(
            f"SELECT l.card_no, l.kind, l.reason, l.started_at, l.ends_at FROM locks l WHERE l.card_no IN"
            f" ({_marks(card_nos)}) AND {EFFECTIVE} ORDER BY l.started_at, l.id", [*card_nos, stored(now)]):
        locks.setdefault(card_no, []).append({"kind": kind, "reason": reason, "since": since, "until": until})
    lapsed = {row[0] for row in conn.execute(
        f"SELECT card_no FROM locks WHERE card_no IN ({_marks(card_nos)}) AND kind = 'pin'"
        " AND ended_at IS NULL AND ends_at <= ?", [*card_nos, stored(now)])}
    records = []
    for card_no, name, masked, region, status, failures, kind, unit in rows:
        failures = 0 if card_no in lapsed else failures
        records.append({"card_no": card_no, "holder_name": name, "id_number": masked, "region": region,
                        "type": kind, "unit": unit, "status": status,
                        "usable": status == "active" and card_no not in locks, "failures": failures,
                        "attempts_left": max(0, 3 - failures), "locks": locks.get(card_no, [])})
    return records


def status_card(db: Path, card_no: str, now: datetime, out: TextIO) -> int:
    """``cardctl status CARD -o json``: the card, its effective locks, its lapsed PIN locks."""
    conn = connect(db)
    conn.execute("BEGIN DEFERRED")
    rows = conn.execute(f"{CARD_SQL} WHERE c.card_no = ?", [card_no]).fetchall()
    records = _card_records(conn, rows, now)
    conn.execute("COMMIT")
    conn.close()
    out.write(json.dumps(records, ensure_ascii=False) + "\n")
    return len(records)


def locked_stream(db: Path, now: datetime, out: TextIO, page: int = 1000) -> int:
    """``cardctl status --locked -o jsonl``: cards with an effective lock in card-number order,
    fetched a page at a time, each page's locks looked up by card; one JSON line per card."""
    conn = connect(db)
    conn.execute("BEGIN DEFERRED")
    cursor = conn.execute(f"{CARD_SQL} WHERE EXISTS (SELECT 1 FROM locks l WHERE l.card_no = c.card_no"
                          f" AND {EFFECTIVE}) ORDER BY c.card_no", [stored(now)])
    count = 0
    while rows := cursor.fetchmany(page):
        for record in _card_records(conn, rows, now):
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    conn.execute("COMMIT")
    conn.close()
    return count
