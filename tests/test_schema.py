"""The schema the migrations build is the one the code expects."""

from sqlalchemy import inspect

from cardctl.storage import schema
from cardctl.storage.db import SCHEMA_REVISION


def test_the_code_expects_the_newest_migration():
    assert schema.head_revision() == SCHEMA_REVISION


def test_the_partial_indexes_the_hot_paths_rely_on_exist(ctx):
    inspector = inspect(ctx.db.engine)
    names = {ix["name"] for table in ("cards", "locks") for ix in inspector.get_indexes(table)}
    assert {"uq_cards_live_holder", "ix_locks_card_open", "ix_locks_pin_due"} <= names


def test_a_holder_cannot_have_two_live_cards_even_behind_the_services_back(ctx, active_card):
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        with ctx.db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO cards (card_no, holder_id, region, insurance_type, issuer, status, failures, issued_at)"
                " SELECT 'B00000009', holder_id, region, insurance_type, issuer, 'pending', 0, issued_at"
                " FROM cards WHERE card_no = :c"), {"c": active_card})
