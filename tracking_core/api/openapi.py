"""`/openapi.json`: an OpenAPI 3.1 document generated from the declarations the server runs on.

Every JSON operation comes from its `routing.Endpoint` (path, methods, request `wire.Field`s), the
same objects `add_endpoints` mounts and `wire.parse_message` / `parse_query` validate against: a
field added to an endpoint appears here, so the document cannot drift from what is accepted.
The few routes that are not JSON messages (the artifact proxy's byte streams, the UI downloads,
health and version) are listed in `RAW_ROUTES` beside their handlers' module names.

A field's schema says what the server accepts, which is MLflow's protobuf JSON: int64 as a JSON
integer or a numeric string within 64 bits, doubles as numbers or "NaN"/"Infinity" strings, enums
by name or number. Unknown fields are ignored (additionalProperties). Every operation may answer
MLflow's error body, `{"error_code", "message"}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from tracking_core.api import wire
from tracking_core.api.routing import Endpoint, json_response
from tracking_core.contract import MLFLOW_API_VERSION
from tracking_core.errors import ErrorCode

OPENAPI_PATH = "/openapi.json"
INT_RANGES = {wire.INT64: (-(2**63), 2**63 - 1), wire.INT32: (-(2**31), 2**31 - 1)}

ERROR = {
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {
        "error_code": {"type": "string", "enum": [code.value for code in ErrorCode]},
        "message": {"type": "string"},
    },
}
_ERROR_RESPONSE = {"$ref": "#/components/responses/Error"}
_JSON_OK = {"description": "Success.", "content": {"application/json": {"schema": {"type": "object"}}}}

# Response messages of the main operations (MLflow's, as the client parses them). Objects stay open
# (MLflow adds fields between versions); what is listed is what the client relies on.
_STR, _INT = {"type": "string"}, {"type": "integer"}
_KV = {"type": "object", "required": ["key"], "properties": {"key": _STR, "value": _STR}}
_TAGS = {"type": "array", "items": _KV}
_TOKEN = {"next_page_token": _STR}
ENTITIES: dict[str, dict[str, Any]] = {
    "Experiment": {"type": "object", "required": ["experiment_id", "name", "lifecycle_stage"], "properties": {
        "experiment_id": _STR, "name": _STR, "artifact_location": _STR, "lifecycle_stage": _STR,
        "creation_time": _INT, "last_update_time": _INT, "tags": _TAGS}},
    "Metric": {"type": "object", "required": ["key", "value", "timestamp"], "properties": {
        "key": _STR, "value": {"type": ["number", "string"]}, "timestamp": _INT, "step": _INT}},
    "Run": {"type": "object", "required": ["info"], "properties": {
        "info": {"type": "object", "required": ["run_id", "experiment_id", "status"], "properties": {
            "run_id": _STR, "run_uuid": _STR, "run_name": _STR, "experiment_id": _STR, "user_id": _STR,
            "status": _STR, "start_time": _INT, "end_time": _INT, "artifact_uri": _STR, "lifecycle_stage": _STR}},
        "data": {"type": "object", "properties": {
            "metrics": {"type": "array", "items": {"$ref": "#/components/schemas/Metric"}},
            "params": _TAGS, "tags": _TAGS}}}},
    "RegisteredModel": {"type": "object", "required": ["name"], "properties": {
        "name": _STR, "creation_timestamp": _INT, "last_updated_timestamp": _INT, "description": _STR,
        "tags": _TAGS, "latest_versions": {"type": "array", "items": {"$ref": "#/components/schemas/ModelVersion"}}}},
    "ModelVersion": {"type": "object", "required": ["name", "version"], "properties": {
        "name": _STR, "version": _STR, "creation_timestamp": _INT, "last_updated_timestamp": _INT,
        "current_stage": _STR, "description": _STR, "source": _STR, "run_id": _STR, "status": _STR, "tags": _TAGS}},
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _message(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


RESPONSES: dict[str, dict[str, Any]] = {
    "experiments/create": {**_message(experiment_id=_STR), "required": ["experiment_id"]},
    "experiments/get": {**_message(experiment=_ref("Experiment")), "required": ["experiment"]},
    "experiments/get-by-name": {**_message(experiment=_ref("Experiment")), "required": ["experiment"]},
    "experiments/search": _message(experiments={"type": "array", "items": _ref("Experiment")}, **_TOKEN),
    "runs/create": {**_message(run=_ref("Run")), "required": ["run"]},
    "runs/get": {**_message(run=_ref("Run")), "required": ["run"]},
    "runs/search": _message(runs={"type": "array", "items": _ref("Run")}, **_TOKEN),
    "metrics/get-history": _message(metrics={"type": "array", "items": _ref("Metric")}, **_TOKEN),
    "registered-models/create": {**_message(registered_model=_ref("RegisteredModel")),
                                 "required": ["registered_model"]},
    "registered-models/get": {**_message(registered_model=_ref("RegisteredModel")), "required": ["registered_model"]},
    "registered-models/search": _message(registered_models={"type": "array", "items": _ref("RegisteredModel")},
                                         **_TOKEN),
    "model-versions/create": {**_message(model_version=_ref("ModelVersion")), "required": ["model_version"]},
    "model-versions/get": {**_message(model_version=_ref("ModelVersion")), "required": ["model_version"]},
    "model-versions/search": _message(model_versions={"type": "array", "items": _ref("ModelVersion")}, **_TOKEN),
}


def _scalar(f: wire.Field, in_query: bool) -> dict[str, Any]:
    if f.kind == wire.STRING:
        return {"type": "string"}
    if f.kind in INT_RANGES:
        low, high = INT_RANGES[f.kind]
        integer = {"type": "integer", "minimum": low, "maximum": high}
        text = {"type": "string", "pattern": r"^\s*[-+]?\d{1,18}\s*$"}
        return text if in_query else {"anyOf": [integer, text]}
    if f.kind == wire.DOUBLE:
        text = {"type": "string", "pattern": r"^(NaN|-?Infinity|[-+]?\d+(\.\d+)?([eE][-+]?\d+)?)$"}
        return text if in_query else {"anyOf": [{"type": "number"}, text]}
    if f.kind == wire.BOOL:
        return {"type": "boolean"}
    if f.kind == wire.ENUM:
        assert f.enum is not None
        names = {"type": "string", "enum": [member.name for member in f.enum]}
        return names if in_query else {"anyOf": [names, {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}]}
    if f.kind == wire.MESSAGE:
        return message_schema(f.fields)
    raise AssertionError(f"unknown field kind {f.kind}")


def field_schema(f: wire.Field, in_query: bool = False) -> dict[str, Any]:
    item = _scalar(f, in_query)
    return {"type": "array", "items": item} if f.repeated else item


def message_schema(fields: Iterable[wire.Field]) -> dict[str, Any]:
    fields = tuple(fields)
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f.name: field_schema(f) for f in fields},
    }
    required = [f.name for f in fields if f.required]
    if required:
        schema["required"] = required
        for name in required:  # required strings are refused when empty, as in MLflow
            prop = schema["properties"][name]
            if prop.get("type") == "string":
                prop["minLength"] = 1
    return schema


def _path_names(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]


def _openapi_path(path: str) -> str:
    """aiohttp's `{name:regex}` as OpenAPI's `{name}`."""
    return "/".join("{" + part[1:-1].split(":")[0] + "}" if part.startswith("{") else part
                    for part in path.split("/"))


def _ok(endpoint: Endpoint) -> dict[str, Any]:
    schema = RESPONSES.get(endpoint.path) if endpoint.version == "2.0" else None
    if schema is None:
        return _JSON_OK
    return {"description": "Success.", "content": {"application/json": {"schema": schema}}}


def _operation(endpoint: Endpoint, method: str, path: str) -> dict[str, Any]:
    in_path = set(_path_names(path))
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in _path_names(path)
    ]
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}{path.replace('/', '_').replace('{', '').replace('}', '')}",
        "tags": [endpoint.path.split("/")[0]],
        "responses": {"200": _ok(endpoint), "default": _ERROR_RESPONSE},
    }
    fields = [f for f in endpoint.request if f.name not in in_path]
    if method == "GET":
        for f in fields:
            if f.kind == wire.MESSAGE:
                continue
            param: dict[str, Any] = {"name": f.name, "in": "query", "schema": field_schema(f, in_query=True)}
            if f.required:
                param["required"] = True
            if f.repeated:
                param.update(style="form", explode=True)
            parameters.append(param)
    else:
        op["requestBody"] = {
            "required": method in ("POST", "PUT"),
            "content": {"application/json": {"schema": message_schema(fields)}},
        }
    if parameters:
        op["parameters"] = parameters
    return op


def _raw_operation(method: str, path: str, summary: str) -> dict[str, Any]:
    op: dict[str, Any] = {
        "operationId": f"{method.lower()}{path.replace('/', '_').replace('{', '').replace('}', '')}",
        "summary": summary,
        "responses": {"200": {"description": "Success."}, "default": _ERROR_RESPONSE},
    }
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
              for name in _path_names(path)]
    if params:
        op["parameters"] = params
    if method == "PUT":
        op["requestBody"] = {"required": False, "content": {"application/octet-stream": {"schema": {}}}}
    return op


# Routes that carry bytes or plain text rather than protobuf-JSON messages: (method, path, summary).
RAW_ROUTES: tuple[tuple[str, str, str], ...] = (
    ("GET", "/health", "Liveness (meta.health)."),
    ("GET", "/version", "The MLflow version whose API this server speaks (meta.version)."),
    ("GET", "/api/3.0/mlflow/server-info", "Server capabilities (meta.server_info)."),
    ("PUT", "/api/2.0/mlflow-artifacts/artifacts/{path}", "Upload one artifact file (artifacts.upload)."),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts/{path}", "Download one artifact file (artifacts.download)."),
    ("GET", "/api/2.0/mlflow-artifacts/artifacts", "List proxied artifacts (artifacts.list_artifacts)."),
    ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/{path}", "Delete proxied artifacts (artifacts.delete)."),
    ("GET", "/get-artifact", "The UI's download of one run file (run_artifacts.get_artifact)."),
    ("GET", "/model-versions/get-artifact", "A file of a model version (run_artifacts.get_model_version_artifact)."),
)
_RAW_QUERY = {
    "/get-artifact": ("run_id", "path"),
    "/model-versions/get-artifact": ("name", "version", "path"),
    "/api/2.0/mlflow-artifacts/artifacts": ("path",),
}


def document(endpoints: Iterable[Endpoint], prefix: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document for these endpoints under the static `prefix`."""
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        for method, path in endpoint.rules():
            if path.startswith("/ajax-api/") and not endpoint.ajax_only:
                continue  # the UI's mirror of /api: same operation, documented once
            paths.setdefault(prefix + _openapi_path(path), {})[method.lower()] = _operation(endpoint, method, path)
    for method, path, summary in RAW_ROUTES:
        op = _raw_operation(method, path, summary)
        if path in _RAW_QUERY:
            op.setdefault("parameters", []).extend(
                {"name": name, "in": "query", "schema": {"type": "string"}} for name in _RAW_QUERY[path]
            )
        paths.setdefault(prefix + path, {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "trackgate tracking API",
            "version": MLFLOW_API_VERSION,
            "description": "The MLflow REST API as trackgate serves it; generated from the server's own "
                           "endpoint declarations.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Error": ERROR, **ENTITIES},
            "responses": {
                "Error": {
                    "description": "MLflow's error body; the status follows the error code.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
            },
        },
    }


def add_route(app: web.Application, prefix: str, endpoints: Iterable[Endpoint]) -> None:
    """Serve the document (built once, at start-up) at `<prefix>/openapi.json`."""
    body = document(tuple(endpoints), prefix)

    async def openapi(_request: web.Request) -> web.Response:
        return json_response(body)

    app.router.add_get(prefix + OPENAPI_PATH, openapi)
