"""One record per request: a log line (JSON: every field; text: one short line) and the metrics.

What a record holds is chosen so that no secret can be in it: the method, the route template
(never the raw path or query, which can carry ids, file names or a token), the status, the
duration, the byte counts, the authenticated subject and how it authenticated. No header value
and no body is ever read here.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway import keys
from gateway.config import Config
from tracking_core import log_format

log = logging.getLogger("trackgate.access")


@dataclass(frozen=True)
class RequestRecord:
    request_id: str
    method: str
    route: str
    status: int
    duration: float  # seconds
    bytes_in: int
    bytes_out: int
    subject: str | None
    auth_method: str  # basic, bearer, session, mtls, ... or none
    auth_outcome: str  # accepted, refused, missing, throttled, open
    remote: str | None

    def fields(self) -> dict[str, object]:
        return {
            "method": self.method,
            "route": self.route,
            "status": self.status,
            "duration_ms": round(self.duration * 1000, 3),
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "subject": self.subject,
            "auth_method": self.auth_method,
            # Cloud Logging's request fields (shown as the request line in its log viewer).
            "httpRequest": {
                "requestMethod": self.method,
                "requestUrl": self.route,
                "status": self.status,
                "requestSize": str(self.bytes_in),
                "responseSize": str(self.bytes_out),
                "latency": f"{self.duration:.6f}s",
                "remoteIp": self.remote or "",
            },
        }


def _auth(request: web.Request, status: int, config: Config) -> tuple[str | None, str, str]:
    """(subject, method, outcome). A refused credential's method is read from its scheme only."""
    identity = request.get(keys.identity)
    if identity is not None:
        return identity.subject, identity.method, "accepted"
    if not config.auth:
        return None, "none", "open"
    scheme = request.headers.get("Authorization", "").split(" ", 1)[0].lower()
    method = scheme if scheme in ("basic", "bearer") else "none"
    if status == 429:
        return None, method, "throttled"
    if status == 401:
        return None, method, "refused" if method != "none" else "missing"
    return None, method, "skipped"  # an exempt route (health, login pages, skip_auth_routes)


def build_request_log_middleware(config: Config) -> Middleware:
    @web.middleware
    async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = log_format.request_id.set(request.get(keys.request_id))
        started = time.perf_counter()
        status = 500
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # redirects and errors the layers below raise
            status = exc.status
            raise
        finally:
            duration = time.perf_counter() - started
            # The core's templates include the static prefix.
            route = request.app[keys.route_names].name(request.path)
            bytes_out = 0
            if response is not None:
                # A streamed response has been sent by now; a plain one is sent after this returns.
                if response.prepared:
                    bytes_out = request.get(keys.bytes_streamed, response.body_length)
                else:
                    bytes_out = response.content_length or 0
            subject, method, outcome = _auth(request, status, config)
            record = RequestRecord(
                request_id=request.get(keys.request_id, ""),
                method=request.method,
                route=route,
                status=status,
                duration=duration,
                bytes_in=request.content.total_bytes,
                bytes_out=bytes_out,
                subject=subject,
                auth_method=method,
                auth_outcome=outcome,
                remote=request.remote,
            )
            if (metrics := request.app.get(keys.metrics)) is not None:
                metrics.observe(record)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "%s %s %d %.1f ms", record.method, record.route, record.status, duration * 1000,
                    extra={"fields": record.fields()},
                )
            log_format.request_id.reset(token)

    return request_log
