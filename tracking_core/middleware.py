"""The one place where failures become responses.

`MlflowError` → its code and status; database trouble that may pass (lock timeouts, lost
connections, pool exhaustion) → 503 TEMPORARILY_UNAVAILABLE so the client retries; a query the
database will always refuse → 400 (see `store.db_errors`); an unreadable body → 400; anything
else → 500 INTERNAL_ERROR with the details only in the log, next to the request id. A client
never sees a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from tracking_core.api.routing import json_response
from tracking_core.errors import ErrorCode, MlflowError
from tracking_core.store import db_errors

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


async def _once_more_on_a_dropped_connection(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run the handler; if a pooled database connection turned out dead, run it again, once.

    The pool does not ping every connection it hands out (a round trip per request); a connection
    the network dropped without telling us fails its first statement instead, and SQLAlchemy
    invalidates it. Nothing of that transaction was committed and every write is idempotent
    under retries (the client would retry a 503 just the same), so one more try on a fresh
    connection spares the client the error.
    """
    try:
        return await handler(request)
    except sa.exc.DBAPIError as exc:
        # Only when the body can be read again: read whole (aiohttp keeps the bytes), or none. A
        # streamed upload already consumed cannot be replayed; it gets the 503 and the client retries.
        replayable = not request.body_exists or getattr(request, "_read_bytes", None) is not None
        if not exc.connection_invalidated or not replayable:
            raise
        log.info("database connection was dropped; retrying %s %s once", request.method, request.path)
    return await handler(request)


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = request.headers.get("X-Request-Id", "-")
    try:
        return await _once_more_on_a_dropped_connection(request, handler)
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
    except RequestPayloadError as exc:
        # A body that cannot be read as sent (bad Content-Encoding, truncated chunking) is the client's.
        return error_response(MlflowError(ErrorCode.INVALID_PARAMETER_VALUE, f"Request body could not be read: {exc}"))
    except (sa.exc.SQLAlchemyError, OverflowError, ConnectionError, TimeoutError) as exc:
        # ConnectionError/TimeoutError: a database (or store) that cannot be reached at all; the
        # driver raises them unwrapped from a new connection's handshake.
        failure = db_errors.classify(exc)
        if failure is db_errors.Failure.TRANSIENT:
            log.warning("database unavailable (request %s): %s", request_id, type(exc).__name__)
            return error_response(
                MlflowError(ErrorCode.TEMPORARILY_UNAVAILABLE, "The database is temporarily unavailable; retry.")
            )
        if failure is db_errors.Failure.REFUSED:
            # Deterministic: a retry fails the same way, so never the retried 503.
            log.info("database refused a query (request %s): %s", request_id, type(exc).__name__)
            return error_response(MlflowError(
                ErrorCode.INVALID_PARAMETER_VALUE,
                "The database cannot run this request as given (a value out of range or a query too "
                "complex); narrow the filter or correct the values.",
            ))
        log.exception("unhandled database error in %s %s (request %s)", request.method, request.path, request_id)
        return error_response(
            MlflowError(ErrorCode.INTERNAL_ERROR, f"Internal error; see the server log for request {request_id}.")
        )
    except Exception:
        log.exception("unhandled error in %s %s (request %s)", request.method, request.path, request_id)
        return error_response(
            MlflowError(ErrorCode.INTERNAL_ERROR, f"Internal error; see the server log for request {request_id}.")
        )
