"""Import progress: counts, rate and ETA on one terminal line, or nothing at all.

Quiet with `--quiet` or when stderr is not a terminal (a CI log or a file gets the summary only).
Redraws at most five times a second, so a fast import does not spend its time printing.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

REDRAW_SECONDS = 0.2


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Progress:
    """Counts rows per entity against the totals the source reported."""

    def __init__(self, totals: dict[str, int], stream: TextIO | None = None, enabled: bool | None = None) -> None:
        self.totals = totals
        self.done: dict[str, int] = dict.fromkeys(totals, 0)
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._started = time.monotonic()
        self._drawn = 0.0
        self._entity = ""

    def advance(self, entity: str, rows: int) -> None:
        self.done[entity] = self.done.get(entity, 0) + rows
        self._entity = entity
        now = time.monotonic()
        if self.enabled and now - self._drawn >= REDRAW_SECONDS:
            self._drawn = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        entity = self._entity
        done, total = self.done[entity], self.totals.get(entity, 0)
        elapsed = max(now - self._started, 1e-9)
        all_done, all_total = sum(self.done.values()), sum(self.totals.values())
        rate = all_done / elapsed
        eta = _duration((all_total - all_done) / rate) if rate > 0 and all_total >= all_done else "?"
        share = f"{100 * all_done / all_total:5.1f}%" if all_total else "  ?  "
        line = f"{share} {entity} {done:,}/{total:,}  {rate:,.0f} rows/s  ETA {eta}"
        self.stream.write("\r" + line.ljust(78)[:100])
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()
