"""Jinja2 rendering: one environment per app, a base context every page shares, HTML errors."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from aiohttp import web

from tracking_core.errors import MlflowError
from tracking_core.identity import caller
from tracking_core.keys import CONFIG

HERE = Path(__file__).parent
STATIC = HERE / "static"
# Which auth method is a browser session that can be signed out of (gateway/auth/session.py).
SESSION_METHOD = "oidc"
TEMPLATES = web.AppKey("ui_templates", jinja2.Environment)

PageHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _static_version() -> str:
    """A digest of the static files: cache-busting query so they can be cached for a long time."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.iterdir()):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _when(ms: int | None) -> str:
    if not ms:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _duration(start: int | None, end: int | None) -> str:
    if not start or not end or end < start:
        return ""
    seconds = (end - start) / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["number"] = _number
    env.globals["duration"] = _duration
    env.globals["static_version"] = _static_version()
    return env


def query(params: dict[str, Any]) -> str:
    """A query string from `params`: lists repeat the key, empty values are left out."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        for item in value if isinstance(value, list | tuple) else [value]:
            if item not in (None, ""):
                pairs.append((key, str(item)))
    return "?" + urlencode(pairs) if pairs else ""


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    who = caller(request)
    base = request.app[CONFIG].static_prefix
    body = request.app[TEMPLATES].get_template(template).render(
        base=base, who=who, can_sign_out=who is not None and who.method == SESSION_METHOD, query=query,
        path=request.path, **context,
    )
    response = web.Response(text=body, status=status, content_type="text/html")
    # Pages hold no secrets, but what a user may see can change with permissions: never cache.
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    # A 100-row runs table is ~90 KB of repetitive HTML; gzip (when the browser offers it) cuts ~85 %.
    response.enable_compression()
    return response


def page(handler: PageHandler) -> PageHandler:
    """A page handler whose MLflow errors become an HTML page with the same status and message."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except MlflowError as exc:
            return render(request, "error.html", status=exc.status, code=exc.code.value, message=exc.message)

    return wrapped
