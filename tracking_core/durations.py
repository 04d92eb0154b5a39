"""Durations as operators write them: '90s', '15m', '12h', '7d', '1h30m', '1.5h' (and, where a
setting allows it, plain seconds). One grammar for every option that takes a duration: session
lifetimes, token TTLs, `trackgate audit --since`, and `trackgate gc --older-than` (whose MLflow form
'1d2h3m4s' is a case of it)."""

from __future__ import annotations

import re
from datetime import timedelta

_PART = re.compile(r"(\d+(?:\.\d+)?)(d|h|m|s)")
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_BARE = re.compile(r"\d+(?:\.\d+)?")


def parse_duration(text: str, *, bare_seconds: bool = True) -> timedelta:
    """The duration `text` names; ValueError saying what is accepted otherwise.

    `bare_seconds=False` refuses a plain number: for `gc --older-than`, where "30" could as well
    mean days, a number without a unit is refused rather than guessed.
    """
    cleaned = text.strip().lower()
    if _BARE.fullmatch(cleaned):
        if bare_seconds:
            return timedelta(seconds=float(cleaned))
        raise ValueError(f"{text!r} has no unit: write it like 30d, 12h, 90m or 1d2h3m4s")
    parts = _PART.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise ValueError(f"{text!r} is not a duration like 90s, 15m, 12h, 7d or 1h30m")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))
