"""A server-drawn SVG scatter of one value against another, one point per run (works without JS)."""

from __future__ import annotations

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD = 480, 300, 48


def _scale(values: list[float], low: float, high: float) -> list[float]:
    lo, hi = min(values), max(values)
    span = hi - lo or 1.0
    return [low + (v - lo) / span * (high - low) for v in values]


def scatter_svg(points: list[tuple[float, float, str]], x_label: str, y_label: str) -> Markup:
    if not points:
        return Markup('<p class="muted">No run has numeric values for both axes.</p>')
    xs = _scale([p[0] for p in points], PAD, WIDTH - PAD / 2)
    ys = _scale([p[1] for p in points], HEIGHT - PAD, PAD / 2)
    dots = "".join(
        f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" class="dot"><title>{escape(name)}: '
        f"{x:g}, {y:g}</title></circle>"
        for (x, y, name), cx, cy in zip(points, xs, ys, strict=True)
    )
    lo_x, hi_x = min(p[0] for p in points), max(p[0] for p in points)
    lo_y, hi_y = min(p[1] for p in points), max(p[1] for p in points)
    return Markup(
        f'<svg class="scatter" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(y_label)} against {escape(x_label)}, {len(points)} runs">'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD / 2}" y2="{HEIGHT - PAD}" class="axis"/>'
        f'<line x1="{PAD}" y1="{PAD / 2}" x2="{PAD}" y2="{HEIGHT - PAD}" class="axis"/>'
        f'<text x="{PAD}" y="{HEIGHT - PAD + 16}" class="tick">{lo_x:g}</text>'
        f'<text x="{WIDTH - PAD / 2}" y="{HEIGHT - PAD + 16}" class="tick end">{hi_x:g}</text>'
        f'<text x="{PAD - 4}" y="{HEIGHT - PAD}" class="tick end">{lo_y:g}</text>'
        f'<text x="{PAD - 4}" y="{PAD / 2 + 4}" class="tick end">{hi_y:g}</text>'
        f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" class="label">{escape(x_label)}</text>'
        f"{dots}</svg>"
    )
