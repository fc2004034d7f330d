"""When ``/health`` says degraded, and that it always says why: a pure function of the delivery's state."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bridge.config.model import HealthConfig
from bridge.engine.delivery import DeliveryHealth
from bridge.http.health import DEGRADED_SPOOL_FILL, degraded_reasons

LIMITS = HealthConfig(stalled_after=10.0, max_spool_age=60.0)
seconds = st.one_of(st.none(), st.floats(min_value=0, max_value=1e6, allow_nan=False))


@given(reachable=st.booleans(), stalled=seconds, age=seconds, spooled=st.integers(0, 10**6),
       fill=st.floats(min_value=0, max_value=1))
def test_degraded_exactly_when_a_limit_is_passed_and_each_reason_is_named(
        reachable: bool, stalled: float | None, age: float | None, spooled: int, fill: float) -> None:
    health = DeliveryHealth(engine_reachable=reachable, spool_results=spooled, spool_bytes=int(fill * 10**6),
                            spool_max_bytes=10**6, oldest_age_s=age,
                            engine_problem=None if reachable else "/x.cmd: the engine is not reading it",
                            stalled_s=stalled)
    reasons = degraded_reasons(health, LIMITS)
    text = " ".join(reasons)
    assert (not reachable) == ("does not take commands: /x.cmd" in text)
    # A stall only counts while the engine holds its pipe open; an absent engine is reason enough.
    assert (reachable and stalled is not None and stalled >= 10) == ("health.stalled_after = 10 s" in text)
    assert (age is not None and age >= 60) == ("health.max_spool_age = 60 s" in text)
    assert (health.spool_fill > DEGRADED_SPOOL_FILL) == ("full" in text)
    assert len(reasons) == len(set(reasons))


def test_a_stall_reason_says_how_long_and_how_much_waits() -> None:
    health = DeliveryHealth(engine_reachable=True, spool_results=140, spool_bytes=0, spool_max_bytes=1 << 30,
                            oldest_age_s=12.0, stalled_s=12.34)
    assert degraded_reasons(health, LIMITS) == [
        "the engine has taken nothing for 12.3 s while 140 results wait (health.stalled_after = 10 s)"]
    assert degraded_reasons(health, HealthConfig(stalled_after=20.0)) == []
