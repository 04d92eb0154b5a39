"""Failed-credential throttling (MLflow's basic auth has "no limit").

Counted per (client address, claimed user) and, more loosely, per address:
- MAX_FAILURES refused credentials for one user from one address within WINDOW seconds, or
  MAX_ADDRESS_FAILURES for all users together (password spraying), and that address's
  credentials for that user (or for everyone) are answered 429 with Retry-After, unchecked;
- attempts still in flight count too: a burst of wrong passwords sent in parallel cannot slip
  past the limit while the slow hash of each is running;
- one broken job behind a shared NAT locks out only its own user name, and a credential that
  was accepted before (the methods' `known_good`) keeps working even then.
Memory is bounded (the least recently failing keys are forgotten first). Per process: replicas
each count for themselves, and so do the gateway processes of one server (gateway_workers); there,
each process allows its share of the limits (divided, rounded down, at least 1), so N processes
never give an attacker more than the limits in all. The kernel spreads connections unevenly, so
a lockout may come a little early, never late: failing closed, without shared state.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import time
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass, field

MAX_FAILURES = 20
MAX_ADDRESS_FAILURES = 100
WINDOW = 60.0
MAX_KEYS = 10_000

Key = tuple[str, str]  # (address, claimed user; "" for credentials that claim none)
ALL_USERS = "\n"  # the per-address key's "user": no user name contains a newline


class TooManyAttempts(Exception):
    """Answered 429: this address (and user) must wait `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("Too many failed sign-in attempts; retry later.")
        self.retry_after = retry_after


def claimed_user(authorization: str) -> str:
    """The user a Basic credential claims to be ("" for other schemes and malformed ones); only
    for counting, never trusted."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return ""
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return ""
    return raw.partition(b":")[0].decode("utf-8", "replace")[:256]


@dataclass
class _Count:
    failures: deque[float] = field(default_factory=deque)
    in_flight: int = 0

    def recent(self, now: float, window: float) -> int:
        while self.failures and now - self.failures[0] > window:
            self.failures.popleft()
        return len(self.failures) + self.in_flight


class FailureThrottle:
    def __init__(self, processes: int = 1) -> None:
        """`processes`: how many gateway processes share the limits (each counts for itself)."""
        self._window = WINDOW
        self._counts: OrderedDict[Key, _Count] = OrderedDict()
        self._processes = processes

    def _count(self, key: Key) -> _Count:
        count = self._counts.get(key)
        if count is None:
            count = self._counts[key] = _Count()
        self._counts.move_to_end(key)
        while len(self._counts) > MAX_KEYS:
            oldest, dropped = next(iter(self._counts.items()))
            if dropped.in_flight:  # never forget a key whose attempt is still running
                break
            del self._counts[oldest]
        return count

    def retry_after(self, address: str, user: str) -> float | None:
        """Seconds until this (address, user) may try again, or None if it may now."""
        now = time.monotonic()
        waits = []
        for key, total in (((address, user), MAX_FAILURES), ((address, ALL_USERS), MAX_ADDRESS_FAILURES)):
            limit = max(1, total // self._processes)  # this process's share
            count = self._counts.get(key)
            if count is not None and count.recent(now, self._window) >= limit:
                oldest = count.failures[0] if count.failures else now - self._window  # in flight only: 1 s
                waits.append(max(1.0, self._window - (now - oldest)))
        return max(waits) if waits else None

    @contextlib.contextmanager
    def attempt(self, address: str, user: str, *, in_flight: bool = True) -> Iterator[_Attempt]:
        """Count the attempt as in flight while it runs (unless `in_flight` is False: a request with
        no Authorization header, e.g. a session cookie); `failed()` on it makes it a failure."""
        keys = ((address, user), (address, ALL_USERS))
        step = 1 if in_flight else 0
        for key in keys:
            self._count(key).in_flight += step
        outcome = _Attempt()
        try:
            yield outcome
        finally:
            now = time.monotonic()
            for key in keys:
                count = self._count(key)
                count.in_flight -= step
                if outcome.refused:
                    count.failures.append(now)


@dataclass
class _Attempt:
    refused: bool = False

    def failed(self) -> None:
        self.refused = True
