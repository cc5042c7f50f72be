"""Signatures a counter PC cannot forge: signed chain heads and signed exports (Ed25519).

The attacker holds the master key, so every HMAC key (the chain's and the exports'), and write
access to the database; not the signing key, which stays on the signing host. They drop every
event of one card (31 and more), renumber the rest and rechain them, in the database and in an
export. The HMACs all verify; the public key names the signed head that no longer matches.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.pool import NullPool

from cardctl.keys import load_keys
from cardctl.storage.audit import GENESIS, chain_hash, content_of
from cardctl.storage.audit_export import end_fields, mac
from cardctl.storage.db import normalise_url
from cardctl.storage.tables import audit_head, events, signed_heads
from helpers_security import CARD, ID_NUMBER, NAME, OTHER, OTHER_ID, PIN, Office


@pytest.fixture
def office(database, tmp_path, monkeypatch):
    """A counter whose trail holds 32 events of CARD; head 1 (after init) and a later head signed."""
    office = Office(database, tmp_path, monkeypatch)
    office.ok("init")
    office.ok("audit", "sign")
    open_cards(office)
    for _round in range(15):
        office.ok("add-arrears", CARD, "--amount", "1.00")
        office.ok("pay-arrears", CARD, "--amount", "1.00")
    office.ok("add-arrears", OTHER, "--amount", "2.00")
    office.ok("audit", "sign")
    office.ok("add-arrears", OTHER, "--amount", "3.00")
    yield office
    office.close()


def open_cards(office: Office) -> None:
    """Office.open_counter without its init: here init's head is signed first."""
    office.ok("issue", CARD, "--name", NAME, "--id-number", ID_NUMBER, "--region", "110105")
    office.ok("issue", OTHER, "--name", "李娜", "--id-number", OTHER_ID, "--region", "310115")
    office.ok("activate", CARD, "--id-number", ID_NUMBER, "--pin-stdin", input=PIN + "\n")


def engine_of(database):
    return create_engine(normalise_url(database.url), poolclass=NullPool)


def signed(database) -> list:
    engine = engine_of(database)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(signed_heads).order_by(signed_heads.c.seq)))
    finally:
        engine.dispose()


def rechained(rows: list[dict], audit_key: bytes, card: str) -> list[dict]:
    """The attacker's trail: ``card``'s events gone, the rest renumbered and rechained with the key."""
    kept, prev = [], GENESIS
    for row in rows:
        if row["card_no"] == card:
            continue
        row = {**row, "seq": len(kept) + 1, "prev_hash": prev}
        content = content_of(row) if isinstance(row["at"], str) else None
        row["hash"] = prev = (chain_hash(audit_key, prev, row) if content is None
                              else chain_hash_text(audit_key, prev, content))
        kept.append(row)
    return kept


def chain_hash_text(key: bytes, prev: str, content: str) -> str:
    import hmac

    return hmac.digest(key, (prev + content).encode(), "sha256").hex()


def forge_database(office: Office, card: str) -> int:
    """Rewrite the trail in the database with the master key; returns how many events were dropped."""
    keys = load_keys(office.key_file)
    engine = engine_of(office.database)
    try:
        with engine.begin() as conn:
            rows = [dict(r) for r in conn.execute(select(events).order_by(events.c.seq)).mappings()]
            kept = rechained(rows, keys.audit_key, card)
            conn.execute(events.delete())
            conn.execute(events.insert(), kept)
            conn.execute(audit_head.update().values(seq=len(kept), hash=kept[-1]["hash"]))
    finally:
        engine.dispose()
    return len(rows) - len(kept)


def test_init_makes_a_private_signing_key_that_is_not_derived_from_the_master(office, tmp_path):
    signing = tmp_path / "cardctl.signing.key"
    assert stat.S_IMODE(signing.stat().st_mode) == 0o600
    assert signing.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    shown = json.loads(office("key", "show", "-o", "json").stdout)[0]
    master = load_keys(office.key_file)
    assert shown["public_key"] not in {master.audit_key.hex(), master.pepper.hex(), master.id_key.hex()}
    path = tmp_path / "auditor.key"
    office.ok("key", "export", "--role", "auditor", str(path))
    assert json.loads(path.read_text())["public_key"] == shown["public_key"]
    assert office("key", "show", "--public").stdout.strip() == shown["public_key"]


def test_audit_sign_verifies_the_chain_and_records_the_head_once(office):
    heads = signed(office.database)
    assert [h.seq for h in heads] == [1, office.database.count("events") - 1]
    again = office("audit", "sign", "-o", "json")
    (record,) = json.loads(again.stdout)
    assert record["created"] and record["seq"] == office.database.count("events")
    assert not json.loads(office("audit", "sign", "-o", "json").stdout)[0]["created"]
    assert len(signed(office.database)) == 3


def test_a_chain_broken_without_the_key_is_never_signed(office):
    """Signing walks the chain from the last signed head (what came before is fixed by that head)."""
    last = office.database.count("events")
    office.database.run_sql("UPDATE events SET reason = 'edited' WHERE seq = :seq", seq=last)
    before = signed(office.database)
    result = office("audit", "sign")
    assert result.exit_code == 6 and "not signing" in result.stderr and f"event {last} was edited" in result.stderr
    assert signed(office.database) == before


def test_a_trail_rewritten_with_the_master_key_fails_at_the_signed_head_with_the_public_key_only(office, tmp_path):
    auditor = tmp_path / "auditor.key"
    office.ok("key", "export", "--role", "auditor", str(auditor))
    first, second = (h.seq for h in signed(office.database))
    dropped = forge_database(office, CARD)
    assert dropped >= 31

    # the HMAC chain alone is fooled: every hash was recomputed with the key
    no_public = office("audit", "verify", env={"CARDCTL_SIGNING_KEY": str(tmp_path / "elsewhere.key")})
    assert no_public.exit_code == 0 and "signatures not checked" in no_public.stderr

    for env in ({"CARDCTL_KEY_FILE": str(auditor)}, {}):  # the auditor's file; the signing host
        result = office("audit", "verify", "-o", "json", env=env)
        assert result.exit_code == 6, result.stderr
        (report,) = json.loads(result.stdout)
        assert f"signed head {second}" in report["problem"]
        assert f"the trail was rewritten after event {first}, the last signed head that still matches" \
            in report["problem"]
        assert report["first_bad_seq"] == first + 1
    # the public key alone, given on the command line, finds it too
    public = office("key", "show", "--public").stdout.strip()
    result = office("audit", "verify", "--public-key", public,
                    env={"CARDCTL_SIGNING_KEY": str(tmp_path / "elsewhere.key")})
    assert result.exit_code == 6 and f"signed head {second}" in result.stderr
    # and the signing host refuses to bless the rewrite
    refused = office("audit", "sign")
    assert refused.exit_code == 6 and f"signed head {second} no longer matches" in refused.stderr


def test_a_signed_head_forged_in_the_database_is_named(office):
    office.database.run_sql("UPDATE signed_heads SET signature = :sig WHERE seq = 1", sig="ab" * 64)
    result = office("audit", "verify")
    assert result.exit_code == 6 and "signed head 1 carries a signature that does not verify" in result.stderr


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def forge_export(genuine: Path, forged: Path, audit_key: bytes, card: str, keep_signature: bool,
                 keep_signed_head: bool) -> None:
    """Rewrite an export with the audit key: events dropped, renumbered, rechained, MACs recomputed."""
    header, *records, end = _lines(genuine)
    kept = rechained(records, audit_key, card)
    fields = {k: v for k, v in header.items() if k != "mac"}
    fields["to_seq"] = len(kept)
    if not keep_signed_head:
        fields.pop("signed_head", None)
    header = {**fields, "mac": mac(audit_key, "header", fields)}
    ends = end_fields(header["mac"], len(kept), len(kept), kept[-1]["hash"])
    new_end = {"end": True, "count": len(kept), "last_seq": len(kept), "last_hash": kept[-1]["hash"],
               "mac": mac(audit_key, "end", ends)}
    if keep_signature:
        new_end |= {"signing_key": end["signing_key"], "signature": end["signature"]}
    forged.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in [header, *kept, new_end]))


@pytest.mark.parametrize("keep_signature, keep_signed_head, named", [
    (True, False, "the signature does not verify"),
    (False, False, "carries no signature of key"),
    (False, True, "signed head"),
])
def test_an_export_rewritten_with_the_master_key_fails_with_the_public_key(office, tmp_path, keep_signature,
                                                                           keep_signed_head, named):
    genuine = tmp_path / "genuine.jsonl"
    office.ok("audit", "export", str(genuine))  # on the signing host: the end line is signed
    assert "signature" in _lines(genuine)[-1] and "signed_head" in _lines(genuine)[0]
    auditor = tmp_path / "auditor.key"
    office.ok("key", "export", "--role", "auditor", str(auditor))
    assert office("audit", "verify", "--file", str(genuine), env={"CARDCTL_KEY_FILE": str(auditor)}).exit_code == 0

    forged = tmp_path / "forged.jsonl"
    forge_export(genuine, forged, load_keys(office.key_file).audit_key, CARD, keep_signature, keep_signed_head)
    # with the master key and no public key, the MACs are all there is, and they verify
    fooled = office("audit", "verify", "--file", str(forged), env={"CARDCTL_SIGNING_KEY": str(tmp_path / "none")})
    assert fooled.exit_code == 0, fooled.stderr
    result = office("audit", "verify", "--file", str(forged), "-o", "json", env={"CARDCTL_KEY_FILE": str(auditor)})
    assert result.exit_code == 6, result.stderr
    (report,) = json.loads(result.stdout)
    assert named in report["problem"] and report["file"] == str(forged)


def test_an_export_of_a_rewritten_database_is_refused_naming_the_signed_head(office, tmp_path):
    auditor = tmp_path / "auditor.key"
    office.ok("key", "export", "--role", "auditor", str(auditor))
    second = signed(office.database)[-1].seq
    forge_database(office, CARD)
    exported = tmp_path / "after.jsonl"
    # by an auditor, without the signing key: the MAC chain is whole, yet a signed head is not
    result = office("audit", "export", str(exported), env={"CARDCTL_KEY_FILE": str(auditor)})
    assert result.exit_code == 6 and f"signed head {second}" in result.stderr, result.stderr
    assert not exported.exists()


def test_the_sweep_signs_the_head_on_the_signing_host_only(office, tmp_path):
    count = len(signed(office.database))
    assert office("unlock", "--expired").exit_code == 0
    assert len(signed(office.database)) == count  # no CARDCTL_SIGNING_KEY: not the signing host
    host = {"CARDCTL_SIGNING_KEY": str(tmp_path / "cardctl.signing.key")}
    assert office("unlock", "--expired", env=host).exit_code == 0
    heads = signed(office.database)
    assert len(heads) == count + 1 and heads[-1].seq == office.database.count("events")
    assert office("unlock", "--expired", env=host).exit_code == 0
    assert len(signed(office.database)) == count + 1  # nothing new to sign


@pytest.mark.postgresql_only("on SQLite there are no database logins to grant to")
def test_no_operator_login_can_change_or_delete_a_signed_head(office):
    import psycopg
    from psycopg import errors

    from pg_cluster import conninfo

    logins = {role: office.add_operator(role[:3], role) for role in ("auditor", "staff", "admin")}
    statements = ["UPDATE signed_heads SET hash = hash", "DELETE FROM signed_heads",
                  "INSERT INTO signed_heads SELECT * FROM signed_heads LIMIT 0"]
    allowed = {}
    for role, login in logins.items():
        with psycopg.connect(conninfo(office.url_for(login)), autocommit=True) as conn:
            conn.execute("SELECT count(*) FROM signed_heads").fetchone()
            allowed[role] = set()
            for statement in statements:
                try:
                    with conn.transaction(force_rollback=True):
                        conn.execute(statement)
                    allowed[role].add(statement)
                except errors.InsufficientPrivilege:
                    pass
    insert = {statements[2]}
    assert allowed == {"auditor": set(), "staff": insert, "admin": insert}
