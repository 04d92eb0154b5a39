"""The JSON line format and route templates, in-process."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from aiohttp import web

from gateway.config import load
from gateway.routes import UNMATCHED, RouteNames, for_gateway
from tracking_core import log_format


def _record(level: int, message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("trackgate.test", level, __file__, 1, message, (), None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


@pytest.mark.parametrize(("level", "severity"), [(logging.DEBUG, "DEBUG"), (logging.INFO, "INFO"),
                                                 (logging.WARNING, "WARNING"), (logging.ERROR, "ERROR"),
                                                 (logging.CRITICAL, "CRITICAL")],
                         ids=["debug", "info", "warning", "error", "critical"])
def test_severity_names_cloud_logging_reads(level: int, severity: str) -> None:
    line = json.loads(log_format.JsonFormatter("gateway").format(_record(level, "hello")))
    assert line["severity"] == severity and line["message"] == "hello" and line["process"] == "gateway"
    assert line["time"].endswith("Z") and "T" in line["time"]


def test_request_id_and_fields_in_the_line() -> None:
    formatter = log_format.JsonFormatter("core")
    token = log_format.request_id.set("abc-123")
    try:
        line = json.loads(formatter.format(_record(logging.INFO, "x", fields={"route": "/r", "status": 200})))
    finally:
        log_format.request_id.reset(token)
    assert (line["request_id"], line["route"], line["status"]) == ("abc-123", "/r", 200)
    assert "request_id" not in json.loads(formatter.format(_record(logging.INFO, "outside a request")))


async def test_a_core_worker_logs_the_gateways_request_id(aiohttp_client: Any) -> None:
    """tracking_core.worker installs request_context: lines logged while handling a request carry
    the X-Request-Id the gateway validated and forwarded."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(log_format.JsonFormatter("core"))
    logger = logging.getLogger("trackgate.test.core")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)

    async def handle(request: web.Request) -> web.Response:
        logger.warning("database unavailable")
        return web.Response(text="ok")

    app = web.Application(middlewares=[log_format.request_context])
    app.router.add_get("/x", handle)
    client = await aiohttp_client(app)
    try:
        assert (await client.get("/x", headers={"X-Request-Id": "from-gateway-7"})).status == 200
    finally:
        logger.removeHandler(handler)
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["request_id"] == "from-gateway-7" and line["severity"] == "WARNING"
    assert log_format.request_id.get() is None  # reset after the request


def test_an_exception_is_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = _record(logging.ERROR, "failed", exc_info=sys.exc_info())
    text = log_format.JsonFormatter("gateway").format(record)
    assert "\n" not in text and "ValueError: boom" in json.loads(text)["message"]


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/api/2.0/mlflow/runs/log-batch", "/api/2.0/mlflow/runs/log-batch"),
        ("/ajax-api/2.0/mlflow/runs/get", "/ajax-api/2.0/mlflow/runs/get"),
        ("/api/2.0/mlflow-artifacts/artifacts/1/abc/model.pkl", "/api/2.0/mlflow-artifacts/artifacts/{path}"),
        ("/api/2.0/mlflow/logged-models/m-0123/tags/k", "/api/2.0/mlflow/logged-models/{model_id}/tags/{tag_key}"),
        ("/healthz", "/healthz"),
        ("/readyz", "/readyz"),
        ("/etc/passwd", UNMATCHED),
    ],
    ids=["api", "ajax", "artifact-path", "logged-model-ids", "healthz", "readyz", "unknown"],
)
def test_route_templates_not_raw_paths(path: str, route: str) -> None:
    from gateway.app import build_gateway_app

    names = for_gateway(build_gateway_app(load({}, env={})))
    assert names.name(path) == route


def test_an_empty_route_table_names_nothing() -> None:
    assert RouteNames([]).name("/api/2.0/mlflow/runs/get") == UNMATCHED
