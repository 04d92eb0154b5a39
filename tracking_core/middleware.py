"""The one place where failures become responses.

`MlflowError` → its code and status; database trouble that may pass (lock timeouts, lost
connections, pool exhaustion) → 503 TEMPORARILY_UNAVAILABLE so the client retries; anything
else → 500 INTERNAL_ERROR with the details only in the log, next to the request id. A client
never sees a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from aiohttp import web

from tracking_core.api.routing import json_response
from tracking_core.errors import ErrorCode, MlflowError

log = logging.getLogger("trackgate.core")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(error: MlflowError, status: int | None = None) -> web.Response:
    """MLflow's JSON error body, with the error code's HTTP status unless `status` overrides it."""
    response = json_response(error.to_json(), status=status or error.status)
    if error.code == ErrorCode.TEMPORARILY_UNAVAILABLE:
        response.headers["Retry-After"] = "1"
    return response


def _is_api(request: web.Request) -> bool:
    return "/api/" in request.path or "/ajax-api/" in request.path


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id", "-")
    try:
        return await handler(request)
    except MlflowError as exc:
        return error_response(exc)
    except web.HTTPRequestEntityTooLarge as exc:
        return error_response(MlflowError(ErrorCode.INVALID_PARAMETER_VALUE, exc.text or "Request body too large."))
    except web.HTTPException as exc:
        if exc.status == 404 and _is_api(request):
            return error_response(
                MlflowError(ErrorCode.ENDPOINT_NOT_FOUND, f"No API endpoint at {request.method} {request.path}.")
            )
        if exc.status == 405 and _is_api(request):
            error = MlflowError(ErrorCode.BAD_REQUEST, f"Method {request.method} is not allowed on {request.path}.")
            return error_response(error, status=405)
        raise
    except (sa.exc.OperationalError, sa.exc.TimeoutError, sa.exc.InterfaceError) as exc:
        log.warning("database unavailable (request %s): %s", request_id, type(exc).__name__)
        return error_response(
            MlflowError(ErrorCode.TEMPORARILY_UNAVAILABLE, "The database is temporarily unavailable; retry.")
        )
    except Exception:
        log.exception("unhandled error in %s %s (request %s)", request.method, request.path, request_id)
        return error_response(
            MlflowError(ErrorCode.INTERNAL_ERROR, f"Internal error; see the server log for request {request_id}.")
        )
