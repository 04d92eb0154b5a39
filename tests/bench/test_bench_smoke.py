"""The benchmark harness runs end to end against trackgate and its checks hold (no timing asserted)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import report
from bench.client import VerificationFailed
from bench.run import Bench
from bench.scenarios import SCENARIOS, SMOKE, verify_history
from bench.servers import TRACKGATE


@pytest.mark.slow
async def test_harness_against_trackgate(tmp_path: Path) -> None:
    results = await Bench([TRACKGATE], SMOKE, SCENARIOS, tmp_path, settle_max=5.0).run()

    scenarios = results["servers"]["trackgate"]["scenarios"]
    errors = {name: entry["error"] for name, entry in scenarios.items() if entry.get("error")}
    assert errors == {}
    for scenario in SCENARIOS:
        # Every round returned figures, which a scenario does only after its checks pass.
        assert len(scenarios[scenario.name]["rounds"]) == SMOKE.rounds, scenario.name
    assert scenarios["search"]["median"]["matched_runs"] > 0
    assert scenarios["history"]["median"]["points"] == SMOKE.history_points
    assert scenarios["burst_c64"]["median"]["errors"] == 0
    assert scenarios["startup"]["median"]["processes"] >= 1

    table = report.markdown(results, report.build_rows(results))
    assert "| trackgate |" in table.splitlines()[0]
    assert "FAILED" not in table


def test_history_check_rejects_a_missing_point() -> None:
    points = [{"step": s, "value": float(s)} for s in range(10)]
    verify_history(points, 10, float, "ok")
    with pytest.raises(VerificationFailed):
        verify_history(points[:-1], 10, float, "short")
    with pytest.raises(VerificationFailed):
        verify_history([*points[:-1], {"step": 9, "value": 0.5}], 10, float, "wrong value")
