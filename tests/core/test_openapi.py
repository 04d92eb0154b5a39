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
from tracking_core.store import schema as db_schema


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


async def test_main_responses_match_their_declared_schemas(tmp_path: Path) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    doc = document(TRACKING_ENDPOINTS)
    registry = Registry().with_resource("urn:openapi", Resource(contents=doc, specification=DRAFT202012))

    def check(path: str, method: str, payload: Any) -> None:
        schema = doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
        wrapped = {"$schema": "https://json-schema.org/draft/2020-12/schema", **_rebased(schema)}
        Draft202012Validator(wrapped, registry=registry).validate(payload)

    config = CoreSettings(backend_store_uri=f"sqlite:///{tmp_path}/core.db",
                          artifacts_destination=str(tmp_path / "artifacts"))
    await db_schema.prepare(config)
    async with TestClient(TestServer(build_app(config), host="127.0.0.1")) as client:
        async def call(method: str, name: str, **kwargs: Any) -> Any:
            response = await client.request(method, f"/api/2.0/mlflow/{name}", **kwargs)
            assert response.status == 200, await response.text()
            payload = await response.json()
            check(f"/api/2.0/mlflow/{name}", method.lower(), payload)
            return payload

        experiment = (await call("POST", "experiments/create", json={"name": "schema", "tags": [
            {"key": "k", "value": "v"}]}))["experiment_id"]
        await call("GET", "experiments/get", params={"experiment_id": experiment})
        await call("GET", "experiments/get-by-name", params={"experiment_name": "schema"})
        await call("GET", "experiments/search", params={"max_results": "10"})
        run = (await call("POST", "runs/create", json={"experiment_id": experiment}))["run"]["info"]["run_id"]
        await client.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": run, "metrics": [
            {"key": "m", "value": "NaN", "timestamp": 1}, {"key": "m", "value": 1.5, "timestamp": 2, "step": 1}],
            "params": [{"key": "p", "value": "v"}], "tags": [{"key": "t", "value": "v"}]})
        await call("GET", "runs/get", params={"run_id": run})
        await call("POST", "runs/search", json={"experiment_ids": [experiment]})
        await call("GET", "metrics/get-history", params={"run_id": run, "metric_key": "m"})
        await call("POST", "registered-models/create", json={"name": "schema-model", "tags": [
            {"key": "k", "value": "v"}]})
        await call("POST", "model-versions/create", json={"name": "schema-model", "source": f"runs:/{run}/m",
                                                          "run_id": run})
        await call("GET", "registered-models/get", params={"name": "schema-model"})
        await call("GET", "registered-models/search", params={})
        await call("GET", "model-versions/get", params={"name": "schema-model", "version": "1"})
        await call("GET", "model-versions/search", params={})


def _rebased(schema: Any) -> Any:
    """The document's local `#/components/...` references, pointed at the registered document."""
    if isinstance(schema, dict):
        return {k: ("urn:openapi" + v if k == "$ref" else _rebased(v)) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_rebased(v) for v in schema]
    return schema
