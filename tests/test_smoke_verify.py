from cardctl.services.verify import verify_pin
from conftest import GOOD_PIN


def test_third_wrong_pin_locks_and_fourth_is_refused_uncounted(ctx, active_card, clock):
    results = [verify_pin(ctx, active_card, "000000").result for _ in range(4)]
    assert results == ["wrong_pin", "wrong_pin", "wrong_pin", "locked"]
    clock.advance(hours=24, seconds=1)
    assert verify_pin(ctx, active_card, GOOD_PIN).result == "ok"
