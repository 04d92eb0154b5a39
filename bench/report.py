"""From per-round results to the figures table: medians, ratios against mlflow, targets."""

from __future__ import annotations

import dataclasses
import math
import statistics
from typing import Any


@dataclasses.dataclass(frozen=True)
class Figure:
    label: str
    scenario: str  # key in a server's "scenarios" (or "startup")
    field: str  # figure inside a round's result ("setup.<f>" for an untimed setup figure)
    unit: str
    higher_is_better: bool
    target_speedup: float | None = None  # trackgate must be this many times better than mlflow
    target_max: float | None = None  # absolute ceiling for trackgate's figure
    fmt: str = "{:,.1f}"


# The targets are issue #9's goals.
FIGURES: list[Figure] = [
    Figure("create_run, 1 client", "create_seq", "runs_per_s", "runs/s", True, target_speedup=12),
    Figure("create_run, 16 clients", "create_c16", "runs_per_s", "runs/s", True, target_speedup=15),
    Figure("create_run, 16 clients p99", "create_c16", "p99_ms", "ms", False),
    Figure("log_metric, 16 clients", "log_metric_c16", "req_per_s", "req/s", True, target_speedup=20),
    Figure("log_metric, 16 clients p50", "log_metric_c16", "p50_ms", "ms", False),
    Figure("log_metric, 16 clients p99", "log_metric_c16", "p99_ms", "ms", False),
    Figure(
        "log_batch (1000 metrics/request)",
        "log_batch",
        "metrics_per_s",
        "metrics/s",
        True,
        target_speedup=8,
        fmt="{:,.0f}",
    ),
    Figure("search_runs p50 (filter, N runs)", "search", "p50_ms", "ms", False, target_speedup=15),
    Figure("search_runs p99", "search", "p99_ms", "ms", False),
    Figure("get-history, all points", "history", "seconds", "s", False, target_speedup=15, fmt="{:,.3f}"),
    Figure(
        "create_run, 64 clients: errors", "burst_c64", "errors", "count", False, target_max=0, fmt="{:,.0f}"
    ),
    Figure("create_run, 64 clients: p99", "burst_c64", "p99_ms", "ms", False, target_max=1000),
    Figure("create_run, 64 clients: throughput", "burst_c64", "runs_per_s", "runs/s", True),
    Figure("idle memory (PSS, process tree)", "startup", "pss_mb", "MB", False, target_max=150),
    Figure("idle memory (RSS sum)", "startup", "rss_mb", "MB", False),
    Figure("processes", "startup", "processes", "count", False, fmt="{:,.0f}"),
    Figure("start to ready", "startup", "ready_s", "s", False, target_speedup=10, fmt="{:,.2f}"),
    Figure("memory after the benchmark (PSS)", "after", "pss_mb", "MB", False),
]


def median_of(rounds: list[dict[str, Any]]) -> dict[str, float]:
    """Per-field median over rounds (numeric fields only)."""
    fields: dict[str, list[float]] = {}
    for r in rounds:
        for k, v in r.items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                fields.setdefault(k, []).append(float(v))
    return {k: statistics.median(v) for k, v in fields.items()}


def figure_value(server: dict[str, Any], fig: Figure) -> tuple[float | None, str | None]:
    """(value, error): the median figure of one server, or why there is none."""
    entry = server.get("scenarios", {}).get(fig.scenario)
    if entry is None:
        return None, None
    if entry.get("error"):
        return None, entry["error"]
    if fig.field.startswith("setup."):
        v = entry.get("setup", {}).get(fig.field.removeprefix("setup."))
    else:
        v = entry.get("median", {}).get(fig.field)
    return (float(v) if v is not None else None), None


def speedup(fig: Figure, ours: float, theirs: float) -> float | None:
    """How many times better trackgate is (>1 = better), whatever the figure's direction."""
    if ours is None or theirs is None or ours <= 0 or theirs <= 0:
        return None
    return ours / theirs if fig.higher_is_better else theirs / ours


def build_rows(
    results: dict[str, Any], ours: str = "trackgate", anchor: str = "mlflow"
) -> list[dict[str, Any]]:
    servers = results["servers"]
    rows = []
    for fig in FIGURES:
        row: dict[str, Any] = {
            "figure": fig.label,
            "unit": fig.unit,
            "scenario": fig.scenario,
            "field": fig.field,
            "higher_is_better": fig.higher_is_better,
            "values": {},
            "errors": {},
        }
        for name, server in servers.items():
            value, error = figure_value(server, fig)
            row["values"][name] = value
            if error:
                row["errors"][name] = error
        if all(v is None for v in row["values"].values()) and not row["errors"]:
            continue
        mine, theirs = row["values"].get(ours), row["values"].get(anchor)
        row["ratio"] = (mine / theirs) if mine is not None and theirs else None
        row["speedup"] = speedup(fig, mine, theirs) if mine is not None and theirs is not None else None
        target, met = None, None
        if fig.target_speedup is not None:
            target = f">= {fig.target_speedup:g}x {anchor}"
            if theirs is not None or ours in row["errors"]:
                met = row["speedup"] is not None and row["speedup"] >= fig.target_speedup
        elif fig.target_max is not None:
            target = "0" if fig.target_max == 0 else f"< {fig.target_max:g} {fig.unit}"
            met = mine is not None and (mine == 0 if fig.target_max == 0 else mine < fig.target_max)
        if target is not None and ours in row["errors"]:
            met = False
        row["target"], row["met"] = target, met
        row["fmt"] = fig.fmt
        rows.append(row)
    return rows


def _cell(value: float | None, error: str | None, fmt: str) -> str:
    if error:
        return "FAILED"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


def markdown(
    results: dict[str, Any], rows: list[dict[str, Any]], ours: str = "trackgate", anchor: str = "mlflow"
) -> str:
    names = list(results["servers"])
    header = ["figure", "unit", *names, f"{ours}/{anchor}", "speedup", "target", "met"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["figure"], row["unit"]]
        cells += [_cell(row["values"].get(n), row["errors"].get(n), row["fmt"]) for n in names]
        cells.append(f"{row['ratio']:.2f}" if row.get("ratio") is not None else "-")
        cells.append(f"{row['speedup']:.1f}x" if row.get("speedup") is not None else "-")
        cells.append(row["target"] or "")
        cells.append("" if row["met"] is None else ("yes" if row["met"] else "**NO**"))
        lines.append("| " + " | ".join(cells) + " |")
    busy = foreign_load(results)
    if busy:
        mean, worst, where = busy
        lines += [
            "",
            f"Other processes on the machine used {mean:.0%} of the CPUs on average during the "
            f"measurements (worst {worst:.0%}, {where})."
            + (
                " **The figures are disturbed: rerun on a quiet machine or with --wait-idle.**"
                if mean > 0.10 or worst > 0.25
                else ""
            ),
        ]
    notes = []
    for row in rows:
        for n, err in row["errors"].items():
            note = f"- {n} / {row['scenario']}: {err}"
            if note not in notes:
                notes.append(note)
    if notes:
        lines += ["", "Failures (a figure that failed verification does not count):", *notes]
    return "\n".join(lines)


def foreign_load(results: dict[str, Any]) -> tuple[float, float, str] | None:
    """(mean, worst, where) share of the CPUs used by other processes during measured rounds."""
    samples = []
    for name, server in results["servers"].items():
        for scenario, entry in server.get("scenarios", {}).items():
            for r in entry.get("rounds", []):
                if "foreign_cpu_share" in r:
                    samples.append((r["foreign_cpu_share"], f"{scenario} on {name}"))
    if not samples:
        return None
    worst = max(samples)
    return statistics.fmean(s for s, _ in samples), worst[0], worst[1]
