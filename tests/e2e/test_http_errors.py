"""Bad input from raw HTTP, through the gateway: MLflow's JSON errors, never a traceback."""

from __future__ import annotations

import pytest
import requests

from tests.server_process import RunningServer

pytestmark = pytest.mark.slow

API = "/api/2.0/mlflow"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code", "fragment"),
    [
        ("POST", "/experiments/create", {"data": "{not json", "headers": {"Content-Type": "application/json"}},
         400, "INVALID_PARAMETER_VALUE", "not valid JSON"),
        ("POST", "/experiments/create", {"data": '{"name": "x"}', "headers": {"Content-Type": "text/plain"}},
         400, "INVALID_PARAMETER_VALUE", "Content-Type must be one of ['application/json']"),
        ("POST", "/experiments/create", {"data": b'{"name": "x"}'},
         400, "INVALID_PARAMETER_VALUE", "Content-Type header is missing"),
        ("POST", "/experiments/create", {"json": [1, 2]}, 400, "INVALID_PARAMETER_VALUE", "JSON object"),
        ("POST", "/experiments/create", {"json": {"name": 5.5, "tags": "nope"}}, 400, "INVALID_PARAMETER_VALUE",
         "Invalid value"),
        ("GET", "/experiments/search", {"params": {"max_results": "ten"}}, 400, "INVALID_PARAMETER_VALUE",
         "max_results"),
        ("GET", "/experiments/get", {}, 400, "INVALID_PARAMETER_VALUE", "experiment_id"),
        ("POST", "/runs/search", {"json": {"experiment_ids": ["0"], "filter": "metrics.a > 1 OR params.b = 'x'"}},
         400, "INVALID_PARAMETER_VALUE", "or"),
        ("POST", "/runs/search", {"json": {"experiment_ids": ["0"], "page_token": "%%%"}},
         400, "INVALID_PARAMETER_VALUE", "page token"),
        ("GET", "/no/such/endpoint", {}, 404, "ENDPOINT_NOT_FOUND", "No API endpoint"),
        ("POST", "/runs/log-batch", {"json": {"run_id": "x" * 32, "params": [{"key": "k", "value": "v" * 40_000_000}]}},
         400, "INVALID_PARAMETER_VALUE", ""),
    ],
    ids=["malformed-json", "wrong-content-type", "missing-content-type", "json-array", "wrong-types",
         "non-numeric-int", "missing-required", "or-in-filter", "bad-page-token", "unknown-endpoint",
         "body-too-large"],
)
def test_bad_requests_get_mlflow_errors(
    server: RunningServer, method: str, path: str, kwargs: dict, status: int, code: str, fragment: str
) -> None:
    response = requests.request(method, server.url + API + path, timeout=30, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error_code"] == code
    assert fragment.lower() in body["message"].lower()
    assert "Traceback" not in response.text


def test_ajax_mirror_and_numeric_strings(server: RunningServer) -> None:
    created = requests.post(server.url + "/ajax-api/2.0/mlflow/experiments/create",
                            json={"name": "ajax-mirror"}, timeout=10).json()
    run = requests.post(server.url + API + "/runs/create",
                        json={"experiment_id": created["experiment_id"], "start_time": "1700000000000"},
                        timeout=10).json()["run"]
    assert run["info"]["start_time"] == 1_700_000_000_000
    got = requests.get(server.url + "/ajax-api/2.0/mlflow/runs/get", params={"run_uuid": run["info"]["run_id"]},
                       timeout=10).json()
    assert got["run"]["info"]["run_id"] == run["info"]["run_id"]

