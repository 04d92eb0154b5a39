"""The import's progress line: drawn on a terminal (counts, rate, ETA), nothing otherwise."""

from __future__ import annotations

import io

import pytest

from tracking_core.importer import progress as progress_module
from tracking_core.importer.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_draws_counts_rate_and_eta_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(progress_module, "REDRAW_SECONDS", 0.0)  # draw on every advance
    screen = Terminal()
    bar = Progress({"runs": 10, "metrics": 1_000}, stream=screen)
    bar.advance("runs", 10)
    bar.advance("metrics", 500)
    bar.close()
    text = screen.getvalue()
    assert "metrics 500/1,000" in text and "rows/s" in text and "ETA" in text
    assert text.endswith("\n")


def test_silent_without_a_terminal_or_when_quiet() -> None:
    for stream, enabled in ((io.StringIO(), None), (Terminal(), False)):
        bar = Progress({"metrics": 10}, stream=stream, enabled=enabled)
        bar.advance("metrics", 10)
        bar.close()
        assert stream.getvalue() == ""
