"""Slows down repeated authentication failures, per client address and per user name.

Each failure adds to a score that decays with time; once a key's score passes a free
allowance, the failing response is delayed, doubling per further failure up to a cap.
Success does not reset another key's score. Memory is bounded: the table keeps the most
recent keys only, so an attacker spraying names cannot grow it without limit (and the
delay of one name cannot be driven up by other names).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable


class FailureThrottle:
    def __init__(
        self,
        *,
        free_failures: int = 3,
        base_delay_s: float = 0.25,
        max_delay_s: float = 5.0,
        half_life_s: float = 60.0,
        max_keys: int = 10000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free_failures = free_failures
        self.base_delay_s = base_delay_s
        self.max_delay_s = max_delay_s
        self.half_life_s = half_life_s
        self.max_keys = max_keys
        self._clock = clock
        self._scores: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _score(self, key: str, now: float) -> float:
        entry = self._scores.get(key)
        if entry is None:
            return 0.0
        score, at = entry
        return score * math.pow(0.5, (now - at) / self.half_life_s)

    def record_failure(self, *keys: str) -> float:
        """Count a failure for every key; return the delay to apply before answering."""
        now = self._clock()
        worst = 0.0
        for key in keys:
            score = self._score(key, now) + 1.0
            self._scores[key] = (score, now)
            self._scores.move_to_end(key)
            worst = max(worst, score)
        while len(self._scores) > self.max_keys:
            self._scores.popitem(last=False)
        excess = worst - self.free_failures
        if excess <= 0:
            return 0.0
        return float(min(self.max_delay_s, self.base_delay_s * math.pow(2.0, excess - 1)))

    def record_success(self, *keys: str) -> None:
        for key in keys:
            self._scores.pop(key, None)
