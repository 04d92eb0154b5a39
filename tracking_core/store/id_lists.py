"""Long id lists for `IN (...)`, cut to a size every backend binds in one statement.

A search page may hold 50,000 runs or experiments. PostgreSQL's protocol carries at most 32,767
parameters per statement (older SQLite builds stop at 32,766), and some statements bind a list
twice, so lists are read in chunks of a size well under half of that.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")
CHUNK = 5000


def chunks(values: Sequence[T]) -> list[Sequence[T]]:
    return [values[start : start + CHUNK] for start in range(0, len(values), CHUNK)]
