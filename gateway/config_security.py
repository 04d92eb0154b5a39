"""The checks of the exposure settings: unknown variables, who may listen open, the browser
security middleware (gateway/security.py) and the connection limits (gateway/limits.py).

Kept apart from gateway.config so that file stays a table; `load()` calls these with the
converted values and reports their problems together with every other one.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# TRACKGATE_* variables that belong to the test tooling, not to the server: never "unknown".
# (tests/services.py: a missing service fails instead of skipping; the admin URLs of the test
# database servers.) Anything else with the prefix that is not a setting stops the server.
TOOLING_VARIABLES = frozenset({"TRACKGATE_REQUIRE_SERVICES", "TRACKGATE_TEST_POSTGRES", "TRACKGATE_TEST_MARIADB"})

X_FRAME_OPTIONS = ("SAMEORIGIN", "DENY", "NONE")

Where = Callable[[str], str]


def unknown_variables(env: Mapping[str, str], known: Iterable[str]) -> list[str]:
    """A problem for each TRACKGATE_* variable that is no setting: a misspelt TRACKGATE_AUTH must
    not start an open server."""
    names = sorted(set(known))
    problems = []
    for name in sorted(env):
        if not name.startswith("TRACKGATE_") or name in TOOLING_VARIABLES or name in names:
            continue
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
        hint = f" Did you mean {close[0]}?" if close else ""
        problems.append(f"environment variable {name} is not a trackgate setting.{hint}")
    return problems


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the port on this machine (a name other than localhost is not
    trusted to resolve to loopback)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_listener_problems(config: Any) -> list[str]:
    """Checked by `trackgate server` only (a `trackgate gc` in the same container environment does
    not listen): beyond loopback with no authentication needs allow_anonymous."""
    if config.auth or config.allow_anonymous or is_loopback(config.host):
        return []
    where = f" (from {config.sources['host']})" if config.sources.get("host", "default") != "default" else ""
    return [f"host {config.host}{where} listens beyond this machine with no authentication: set auth "
            "(e.g. --auth basic) or, to let everyone who can reach the port in, --allow-anonymous."]


def validate_exposure(v: Mapping[str, Any], where: Where) -> list[str]:
    problems = []
    sso = bool(v["oidc_issuer_url"]) or "oidc" in v["auth"]
    if sso and not v["oidc_redirect_url"] and (v["disable_security_middleware"] or "*" in v["allowed_hosts"]):
        # The callback and sign-out URLs would come from whatever Host a request names.
        problems.append("oidc sign-on with every Host accepted (allowed_hosts = * or the security middleware "
                        "disabled) needs oidc_redirect_url, the public callback URL, e.g. "
                        "https://mlflow.example.com/oauth2/callback.")
    frame = v["x_frame_options"]
    if frame.upper() not in X_FRAME_OPTIONS:
        problems.append(f"x_frame_options must be one of {', '.join(X_FRAME_OPTIONS)}, not {frame!r}"
                        f"{where('x_frame_options')}.")
    for name in ("header_read_timeout", "body_read_timeout", "keepalive_timeout"):
        if v[name] <= 0:
            problems.append(f"{name} must be greater than 0, not {v[name]}{where(name)}.")
    for name in ("max_connections", "max_connections_per_address"):
        if v[name] < 1:
            problems.append(f"{name} must be at least 1, not {v[name]}{where(name)}.")
    return problems


def startup_warnings(v: Mapping[str, Any]) -> list[str]:
    """What an operator should read when the server starts this open (the CLI prints them)."""
    warnings = []
    if not v["auth"] and v["allow_anonymous"] and not is_loopback(v["host"]):
        warnings.append(f"listening on {v['host']} with no authentication (allow_anonymous): anyone who can "
                        "reach the port can read and change everything.")
    if v["disable_security_middleware"]:
        warnings.append("security middleware disabled: no Host check (DNS rebinding), no cross-origin "
                        "blocking, no X-Frame-Options.")
    else:
        if "*" in v["allowed_hosts"]:
            warnings.append("allowed_hosts is *: every Host header is accepted, which leaves the server open "
                            "to DNS rebinding.")
        if "*" in v["cors_allowed_origins"]:
            warnings.append("cors_allowed_origins is *: any web site can call this server from a browser "
                            "(without credentials).")
    return warnings
