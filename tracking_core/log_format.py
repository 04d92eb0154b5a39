"""Log lines for both processes: readable text, or one JSON object per line for log collectors.

JSON lines carry the field names Google Cloud Logging reads from a container's output
(`severity`, `message`, `time`, `httpRequest`), which most other collectors (Loki, Elastic,
Datadog) map as well. The id of the request being handled, set in `request_id` by the request
middleware of each process, goes into every line logged while handling it. Callers never log
secrets: URIs are masked where they are written, and request lines hold no headers, queries or
raw paths (see gateway/access_log.py).
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

# The id of the request this task is handling (None outside a request).
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("trackgate_request_id", default=None)

TEXT_FORMAT = "%(asctime)s {process} %(levelname)s %(name)s: %(message)s"

# Python's level names as Cloud Logging's LogSeverity names.
_SEVERITY = {"WARN": "WARNING", "FATAL": "CRITICAL"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record; `extra={"fields": {...}}` adds top-level fields."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "severity": _SEVERITY.get(record.levelname, record.levelname),
            "logger": record.name,
            "process": self.process,
            "pid": record.process,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid is not None:
            entry["request_id"] = rid
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            # Cloud Error Reporting picks up a stack trace in the message of an ERROR entry.
            entry["message"] += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, default=str, ensure_ascii=False)


@web.middleware
async def request_context(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """In a core worker: the gateway's request id (validated there) in every line logged meanwhile."""
    token = request_id.set(request.headers.get("X-Request-Id"))
    try:
        return await handler(request)
    finally:
        request_id.reset(token)


def configure(level: str, log_format: str, process: str, text_format: str | None = None) -> None:
    """The root logger of this process writes to stderr in `log_format` (text or json)."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter(process))
    else:
        handler.setFormatter(logging.Formatter(text_format or TEXT_FORMAT.format(process=process)))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
