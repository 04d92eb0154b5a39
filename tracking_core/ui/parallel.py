"""A server-drawn SVG parallel-coordinates view: one vertical axis per param or metric, one line per
run across them (works without JS).

A numeric axis runs from its smallest value (bottom) to its largest (top); an axis with any
non-numeric value spreads its distinct values, sorted, evenly. A run without a value on an axis
has a gap in its line there.
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD, TOP = 640, 300, 56, 40
MAX_AXES = 8


def number(value: Any) -> float | None:
    """`value` as a float (params are strings), None when it is not a number."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _axis(values: list[Any]) -> tuple[list[float | None], str, str]:
    """Each run's height on the axis (0 bottom .. 1 top, None without a value), and the end labels."""
    present = [v for v in values if v is not None]
    parsed = [number(v) for v in present]
    numbers = [n for n in parsed if n is not None]
    if len(numbers) == len(parsed):
        if not numbers:
            return [None] * len(values), "", ""
        lo, hi = min(numbers), max(numbers)
        span = (hi - lo) or 1.0
        return [None if (n := number(v)) is None else (n - lo) / span for v in values], f"{lo:g}", f"{hi:g}"
    kinds = sorted({str(v) for v in present})
    place = {k: i / ((len(kinds) - 1) or 1) for i, k in enumerate(kinds)}
    return [None if v is None else place[str(v)] for v in values], kinds[0], kinds[-1]


def parallel_svg(names: list[str], columns: list[tuple[str, list[Any]]]) -> Markup:
    """`names`: the runs; `columns`: (axis label, one value per run, None where the run has none)."""
    if len(columns) < 2 or not names:
        return Markup('<p class="muted">Choose two or more params or metrics.</p>')
    gap = (WIDTH - 2 * PAD) / (len(columns) - 1)
    bottom = HEIGHT - 24
    xs = [PAD + i * gap for i in range(len(columns))]
    axes = [_axis(values) for _, values in columns]
    parts = []
    for x, (label, _), (_, lo, hi) in zip(xs, columns, axes, strict=True):
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{bottom}" class="axis"/>'
            f'<text x="{x:.1f}" y="14" class="label">{escape(label)}</text>'
            f'<text x="{x:.1f}" y="{TOP - 6}" class="tick mid">{escape(hi)}</text>'
            f'<text x="{x:.1f}" y="{bottom + 14}" class="tick mid">{escape(lo)}</text>'
        )
    for i, name in enumerate(names):
        d, dots, pen_down = [], [], False
        for x, (heights, _, _) in zip(xs, axes, strict=True):
            h = heights[i]
            if h is None:
                pen_down = False
                continue
            y = bottom - h * (bottom - TOP)
            d.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
            dots.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"/>')
            pen_down = True
        parts.append(f'<g class="run"><title>{escape(name)}</title><path d="{" ".join(d)}"/>{"".join(dots)}</g>')
    return Markup(
        f'<svg class="parallel" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="Parallel coordinates of '
        f'{len(names)} runs over {escape(", ".join(label for label, _ in columns))}">{"".join(parts)}</svg>'
    )
