"""`/graphql`: the queries MLflow's web UI sends, answered by graphql-core over the REST handlers.

Each root field calls its endpoint in-process (tracking_core.ui.calls: same validation, same
authorization guard), camelCases the JSON and lets graphql-core select fields. An MLflow error
becomes the field's `apiError`, as MLflow answers it. Like `mlflow server`, one operation per
request (no batching), with limits on depth, root fields and aliases.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from tracking_core.api import experiments, model_versions, run_artifacts, runs, ui_helpers
from tracking_core.api.graphql_schema import SDL
from tracking_core.api.routing import Endpoint, json_response
from tracking_core.errors import MlflowError, invalid
from tracking_core.ui.calls import call

if TYPE_CHECKING:  # graphql-core itself loads on the first /graphql request, not in every worker's start-up
    import graphql

MAX_DEPTH = 10
MAX_ROOT_FIELDS = 10
MAX_ALIASES = 10
_CAMEL = re.compile(r"_([a-z0-9])")

# root field -> (endpoints, endpoint path)
ROOTS: dict[str, tuple[tuple[Endpoint, ...], str]] = {
    "mlflowGetExperiment": (experiments.ENDPOINTS, "experiments/get"),
    "mlflowGetMetricHistoryBulkInterval": (runs.ENDPOINTS, "metrics/get-history-bulk-interval"),
    "mlflowGetRun": (runs.ENDPOINTS, "runs/get"),
    "mlflowListArtifacts": (run_artifacts.ENDPOINTS, "artifacts/list"),
    "mlflowSearchModelVersions": (model_versions.ENDPOINTS, "model-versions/search"),
    "mlflowSearchRuns": (runs.ENDPOINTS, "runs/search"),
    "mlflowSearchDatasets": (ui_helpers.ENDPOINTS, "experiments/search-datasets"),
}


def camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {_CAMEL.sub(lambda m: m.group(1).upper(), k): camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [camel(v) for v in value]
    return value


def _root(endpoints: tuple[Endpoint, ...], path: str) -> Any:
    async def resolve(_: Any, info: graphql.GraphQLResolveInfo, input: dict[str, Any] | None = None) -> Any:
        body = dict(input or {})
        try:
            out = await call(info.context, endpoints, path, **body)
        except MlflowError as exc:
            return {"apiError": {"code": exc.code.value, "message": exc.message}}
        return camel(out)

    return resolve


async def _run_experiment(run: dict[str, Any], info: graphql.GraphQLResolveInfo) -> Any:
    experiment_id = (run.get("info") or {}).get("experimentId")
    if experiment_id is None:
        return None
    out = await call(info.context, experiments.ENDPOINTS, "experiments/get", experiment_id=experiment_id)
    return camel(out["experiment"])


async def _run_model_versions(run: dict[str, Any], info: graphql.GraphQLResolveInfo) -> Any:
    run_id = (run.get("info") or {}).get("runId")
    if not run_id:
        return None
    out = await call(info.context, model_versions.ENDPOINTS, "model-versions/search",
                     filter=f"run_id = '{run_id}'", max_results=100)
    versions = camel(out.get("model_versions", []))
    for v in versions:  # the UI shows alias names only
        v["aliases"] = [a if isinstance(a, str) else a.get("alias") for a in v.get("aliases", [])]
    return versions


@functools.cache
def schema() -> graphql.GraphQLSchema:
    import graphql

    built = graphql.build_schema(SDL)
    long_string = built.type_map["LongString"]
    assert isinstance(long_string, graphql.GraphQLScalarType)
    # Int64 values as strings: JavaScript numbers lose precision past 2**53.
    long_string.serialize = lambda v: str(v)  # type: ignore[method-assign]
    long_string.parse_value = lambda v: v  # type: ignore[method-assign]
    for type_name in ("Query", "Mutation"):
        fields = built.type_map[type_name].fields  # type: ignore[attr-defined]
        for name, (endpoints, path) in ROOTS.items():
            if name in fields:
                fields[name].resolve = _root(endpoints, path)
    echo = lambda _, __, inputString=None: {"output": inputString}  # noqa: E731 - the schema's probe fields
    built.query_type.fields["test"].resolve = echo  # type: ignore[union-attr]
    built.mutation_type.fields["testMutation"].resolve = echo  # type: ignore[union-attr]
    extension = built.type_map["MlflowRunExtension"].fields  # type: ignore[attr-defined]
    extension["experiment"].resolve = _run_experiment
    extension["modelVersions"].resolve = _run_model_versions
    return built


def _too_big(document: graphql.DocumentNode) -> str | None:
    """Depth, root-field and alias limits, so one request cannot fan out without bound."""
    import graphql

    fragments = {d.name.value: d for d in document.definitions if isinstance(d, graphql.FragmentDefinitionNode)}
    aliases = 0

    def depth(selection_set: graphql.SelectionSetNode | None, level: int, seen: frozenset[str]) -> int:
        nonlocal aliases
        if selection_set is None:
            return level
        deepest = level
        for s in selection_set.selections:
            if isinstance(s, graphql.FieldNode):
                aliases += s.alias is not None
                deepest = max(deepest, depth(s.selection_set, level + 1, seen))
            elif isinstance(s, graphql.InlineFragmentNode):
                deepest = max(deepest, depth(s.selection_set, level, seen))
            elif isinstance(s, graphql.FragmentSpreadNode) and s.name.value not in seen:
                fragment = fragments.get(s.name.value)
                if fragment is not None:
                    deepest = max(deepest, depth(fragment.selection_set, level, seen | {s.name.value}))
        return deepest

    for definition in document.definitions:
        if isinstance(definition, graphql.OperationDefinitionNode):
            if len(definition.selection_set.selections) > MAX_ROOT_FIELDS:
                return f"Query exceeds maximum of {MAX_ROOT_FIELDS} root fields"
            if depth(definition.selection_set, 0, frozenset()) > MAX_DEPTH:
                return f"Query exceeds maximum depth of {MAX_DEPTH}"
    if aliases > MAX_ALIASES:
        return f"Query exceeds maximum of {MAX_ALIASES} aliases"
    return None


async def _request_body(request: web.Request) -> dict[str, Any]:
    if request.method == "GET":
        body: dict[str, Any] = dict(request.query)
        if isinstance(body.get("variables"), str):
            body["variables"] = orjson.loads(body["variables"])
        return body
    try:
        data = orjson.loads(await request.read() or b"{}")
    except orjson.JSONDecodeError:
        raise invalid("Request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise invalid("Batched GraphQL requests are not supported.")
    return data


async def graphql_handler(request: web.Request) -> web.StreamResponse:
    import graphql

    body = await _request_body(request)
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise invalid("Missing GraphQL query.")
    try:
        document = graphql.parse(query)
    except graphql.GraphQLError as exc:
        return json_response({"data": None, "errors": [exc.message]})
    if (problem := _too_big(document)) is not None:
        return json_response({"data": None, "errors": [problem]})
    variables = body.get("variables")
    result = await graphql.graphql(
        schema(), query, context_value=request, variable_values=variables if isinstance(variables, dict) else None,
        operation_name=body.get("operationName"),
    )
    errors = [e.message for e in result.errors] if result.errors else None
    return json_response({"data": result.data, "errors": errors})


def add_routes(app: web.Application, prefix: str) -> None:
    app.router.add_route("GET", prefix + "/graphql", graphql_handler)
    app.router.add_route("POST", prefix + "/graphql", graphql_handler)
