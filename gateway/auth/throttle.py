"""Failed-credential throttling per client address (MLflow's basic auth has "no limit").

After MAX_FAILURES refused credentials from one address within WINDOW seconds, that address's
requests carrying credentials are answered 429 (Retry-After) without being checked, until the
window has passed: guessing passwords gets slow, and a flood of wrong passwords cannot keep the
scrypt threads busy. Requests without credentials and other addresses are unaffected. Memory is
bounded (the least recently failing addresses are forgotten first). Per process: replicas each
count for themselves.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque

MAX_FAILURES = 20
WINDOW = 60.0
MAX_ADDRESSES = 10_000


class FailureThrottle:
    def __init__(self, max_failures: int = MAX_FAILURES, window: float = WINDOW) -> None:
        self._max = max_failures
        self._window = window
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and now - times[0] > self._window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def retry_after(self, address: str) -> float | None:
        """Seconds until `address` may try again, or None if it may now."""
        now = time.monotonic()
        times = self._recent(address, now)
        if times is None or len(times) < self._max:
            return None
        return max(1.0, self._window - (now - times[0]))

    def failed(self, address: str) -> None:
        now = time.monotonic()
        times = self._recent(address, now) or deque()
        times.append(now)
        self._failures[address] = times
        self._failures.move_to_end(address)
        while len(self._failures) > MAX_ADDRESSES:
            self._failures.popitem(last=False)
