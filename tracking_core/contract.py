"""What the gateway and the core agree on: who is calling, how it travels, and fixed paths.

The core listens only on the gateway's private socket; the gateway strips every client-sent
header of these names and sets its own from the authenticated `Identity`, so the core can take
them as the gateway's word. Values are percent-encoded UTF-8 (a certificate CN or a name may be
any Unicode; header values are bytes on the wire), groups comma-separated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from urllib.parse import quote, unquote

# The MLflow release whose REST API trackgate speaks; `/version` answers this, because the
# client gates features on it and users compare it with `mlflow.__version__`.
MLFLOW_API_VERSION = "3.17.2"

try:
    PACKAGE_VERSION = metadata.version("trackgate")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    PACKAGE_VERSION = "0+unknown"

# Private routes of the core, outside --static-prefix: ready when the database answers (the
# gateway's /readyz and its start-up gate), alive when the process serves (the supervisor).
READY_PATH = "/_trackgate/ready"
ALIVE_PATH = "/_trackgate/alive"

# The environment variable carrying the validated CoreSettings (JSON) to each worker process.
SETTINGS_ENV = "_TRACKGATE_CORE_CONFIG"


@dataclass(frozen=True)
class Identity:
    """Who is calling, as the gateway established it."""

    subject: str
    method: str  # "basic", "bearer", "mtls", "session", ...
    email: str | None = None
    groups: tuple[str, ...] = ()
    is_admin: bool = False


SUBJECT_HEADER = "X-Trackgate-Subject"
EMAIL_HEADER = "X-Trackgate-Email"
GROUPS_HEADER = "X-Trackgate-Groups"
METHOD_HEADER = "X-Trackgate-Auth-Method"
IDENTITY_HEADERS = (SUBJECT_HEADER, EMAIL_HEADER, GROUPS_HEADER, METHOD_HEADER)

_SAFE = "!#$&'()*+/:;<=>?@[]^`{|}~ "  # printable ASCII stays readable; only % , and controls encode


def encode(value: str) -> str:
    return quote(value, safe=_SAFE)


def decode(value: str) -> str:
    return unquote(value, errors="replace")


def identity_headers(identity: Identity) -> dict[str, str]:
    headers = {SUBJECT_HEADER: encode(identity.subject), METHOD_HEADER: identity.method}
    if identity.email:
        headers[EMAIL_HEADER] = encode(identity.email)
    if identity.groups:
        headers[GROUPS_HEADER] = ",".join(encode(g) for g in identity.groups)
    return headers


def parse_identity(headers: Mapping[str, str]) -> Identity | None:
    """The core's side: the Identity the gateway sent, or None for an unauthenticated request."""
    subject = headers.get(SUBJECT_HEADER)
    if not subject:
        return None
    groups = tuple(decode(g) for g in headers.get(GROUPS_HEADER, "").split(",") if g)
    email = headers.get(EMAIL_HEADER)
    method = headers.get(METHOD_HEADER, "unknown")
    return Identity(decode(subject), method, decode(email) if email else None, groups)
