from __future__ import annotations

from gridactor.security.throttle import FailureThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_free_failures_then_doubling_up_to_the_cap() -> None:
    clock = Clock()
    throttle = FailureThrottle(free_failures=3, base_delay_s=0.25, max_delay_s=2.0, clock=clock)
    delays = [throttle.record_failure("ip:1", "user:bob") for _ in range(8)]
    assert delays[:3] == [0.0, 0.0, 0.0]
    assert delays[3:6] == [0.25, 0.5, 1.0]
    assert delays[6:] == [2.0, 2.0]


def test_scores_decay_with_time() -> None:
    clock = Clock()
    throttle = FailureThrottle(free_failures=1, half_life_s=10.0, clock=clock)
    throttle.record_failure("ip:1")
    assert throttle.record_failure("ip:1") > 0
    clock.now += 1000.0
    assert throttle.record_failure("ip:1") == 0.0


def test_success_clears_only_its_own_keys() -> None:
    throttle = FailureThrottle(free_failures=0, clock=Clock())
    throttle.record_failure("user:alice")
    throttle.record_failure("user:bob")
    throttle.record_success("user:alice")
    assert throttle.record_failure("user:alice") == throttle.base_delay_s
    assert throttle.record_failure("user:bob") == 2 * throttle.base_delay_s


def test_table_is_bounded() -> None:
    throttle = FailureThrottle(max_keys=100, clock=Clock())
    for i in range(1000):
        throttle.record_failure(f"user:{i}")
    assert len(throttle._scores) == 100
