"""`/openapi.json` is valid OpenAPI 3.1 and says exactly what the endpoint declarations say.

The document is generated from the `Endpoint`/`Field` objects the server mounts and validates
with, so these tests check the generator against those same objects: every operation present,
every declared field in its request schema, required fields required, nothing invented.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate

from tracking_core.api import wire
from tracking_core.api.openapi import RAW_ROUTES, document
from tracking_core.app import TRACKING_ENDPOINTS, build_app
from tracking_core.authz.routes import AUTH_ENDPOINTS
from tracking_core.settings import CoreSettings


async def _served(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    config = CoreSettings(backend_store_uri=f"sqlite:///{tmp_path}/core.db",
                          artifacts_destination=str(tmp_path / "artifacts"), **settings)
    async with TestClient(TestServer(build_app(config), host="127.0.0.1")) as client:
        response = await client.get(f"{settings.get('static_prefix', '')}/openapi.json")
        assert response.status == 200 and response.content_type == "application/json"
        return await response.json()


@pytest.mark.parametrize("auth", [(), ("basic",)], ids=["auth-off", "auth-on"])
async def test_served_document_is_valid_openapi_31(tmp_path: Path, auth: tuple[str, ...]) -> None:
    served = await _served(tmp_path, auth=auth)
    validate(served)  # raises on any violation of the OpenAPI 3.1 schema
    assert served["openapi"] == "3.1.0"
    endpoints = (*TRACKING_ENDPOINTS, *AUTH_ENDPOINTS) if auth else TRACKING_ENDPOINTS
    assert served == document(endpoints)
    has_auth_ops = any("/users/" in path or "permissions" in path for path in served["paths"])
    assert has_auth_ops is bool(auth)


async def test_static_prefix_is_in_every_path(tmp_path: Path) -> None:
    served = await _served(tmp_path, static_prefix="/mlflow")
    validate(served)
    assert all(path.startswith("/mlflow/") for path in served["paths"])


def _body_schema(doc: dict[str, Any], path: str, method: str) -> dict[str, Any]:
    return doc["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]


def test_every_declared_operation_and_field_is_documented() -> None:
    doc = document((*TRACKING_ENDPOINTS, *AUTH_ENDPOINTS))
    operations = 0
    for endpoint in (*TRACKING_ENDPOINTS, *AUTH_ENDPOINTS):
        for method, rule in endpoint.rules():
            if rule.startswith("/ajax-api/") and not endpoint.ajax_only:
                continue
            operations += 1
            op = doc["paths"][rule][method.lower()]
            in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            declared = {f.name: f for f in endpoint.request if f.name not in in_path}
            if method == "GET":
                query = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
                expected = {n for n, f in declared.items() if f.kind != wire.MESSAGE}
                assert set(query) == expected, rule
                assert {n for n, p in query.items() if p.get("required")} == {
                    n for n in expected if declared[n].required}, rule
            else:
                schema = _body_schema(doc, rule, method.lower())
                assert set(schema["properties"]) == set(declared), rule
                assert set(schema.get("required", [])) == {n for n, f in declared.items() if f.required}, rule
    assert operations + len(RAW_ROUTES) == sum(len(ops) for ops in doc["paths"].values())


def test_field_kinds_say_what_the_parser_accepts() -> None:
    doc = document(TRACKING_ENDPOINTS)
    metric = _body_schema(doc, "/api/2.0/mlflow/runs/log-metric", "post")["properties"]
    assert metric["run_id"] == {"type": "string"}
    step = metric["step"]["anyOf"]
    assert {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1} in step  # range-checked int64
    assert any(s.get("type") == "string" for s in step)  # "5" is accepted, as protobuf JSON writes int64
    assert any(s.get("type") == "number" for s in metric["value"]["anyOf"])
    create = _body_schema(doc, "/api/2.0/mlflow/experiments/create", "post")
    assert create["required"] == ["name"] and create["properties"]["name"]["minLength"] == 1
    assert create["properties"]["tags"]["type"] == "array"  # a lone object is refused (finding 7)
    search = {p["name"]: p for p in doc["paths"]["/api/2.0/mlflow/experiments/search"]["get"]["parameters"]}
    assert search["order_by"]["schema"]["type"] == "array" and search["order_by"]["explode"] is True
