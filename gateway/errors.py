"""MLflow's JSON error shape, `{"error_code": ..., "message": ...}`, for every error the gateway answers itself.

Imports nothing else from the gateway, so any layer (the app, the proxy, an auth method) can use it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web
from multidict import CIMultiDict


def mlflow_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    """The error response; every header kept, repeated ones (WWW-Authenticate, Set-Cookie) included,
    except the body's own Content-Type and Content-Length."""
    kept: CIMultiDict[str] = CIMultiDict()
    for name, value in (headers or {}).items():
        if name.lower() not in ("content-type", "content-length"):
            kept.add(name, value)
    body = json.dumps({"error_code": code, "message": message})
    return web.Response(status=status, text=body, content_type="application/json", headers=kept)
