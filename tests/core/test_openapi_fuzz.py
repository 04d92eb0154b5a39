"""schemathesis fuzzes a running `trackgate server` from its own `/openapi.json`, auth off and on.

Bounded (a few derandomised examples per operation, positive and negative data): no 5xx, every
response within its documented schema and content type, and no request left hanging (each has a
10 s timeout). Afterwards the server is still ready and its log holds no unhandled error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server_process import RunningServer, trackgate_server

# Examples per operation; SCHEMATHESIS_EXAMPLES raises it for a longer local run.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "4"))
PASSWORD = "fuzz-pass-123"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module", params=["auth-off", "auth-on"])
def fuzzed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    d = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    db = f"sqlite:///{d}/trackgate.db"
    args = ["--backend-store-uri", db]
    if request.param == "auth-on":
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKGATE_", "MLFLOW_"))}
        made = subprocess.run([sys.executable, "-m", "gateway.cli", "users", "create", "fuzzer", "--admin",
                               "--backend-store-uri", db], input=PASSWORD + "\n", capture_output=True, text=True,
                              env=env, timeout=120)
        assert made.returncode == 0, made.stderr
        args += ["--auth", "basic"]
    with trackgate_server(d, *args) as server:
        server.auth = ("fuzzer", PASSWORD) if request.param == "auth-on" else None  # type: ignore[attr-defined]
        yield server
        assert requests.get(server.url + "/readyz", timeout=5).status_code == 200
        log = server.log()
        assert "unhandled error" not in log and "Traceback" not in log, log[-4000:]


@pytest.fixture(scope="module")
def api_schema(fuzzed: RunningServer) -> schemathesis.BaseSchema:
    auth = getattr(fuzzed, "auth", None)
    document = requests.get(fuzzed.url + "/openapi.json", auth=auth, timeout=10)
    assert document.status_code == 200, document.text
    schema = schemathesis.openapi.from_dict(document.json())
    schema.config.update(base_url=fuzzed.url)  # type: ignore[attr-defined]
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_fuzzed_operation_answers_within_its_contract(case: schemathesis.Case, fuzzed: RunningServer) -> None:
    auth = getattr(fuzzed, "auth", None)
    case.call_and_validate(base_url=fuzzed.url, checks=CHECKS, auth=auth, timeout=10)


def test_document_lists_artifact_proxy_and_registry(api_schema: schemathesis.BaseSchema) -> None:
    paths = api_schema.raw_schema["paths"]
    assert "/api/2.0/mlflow-artifacts/artifacts/{path}" in paths
    assert "/api/2.0/mlflow/model-versions/create" in paths
