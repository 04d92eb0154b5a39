"""Which requests need no authentication: decided on the normalised path, and only on it.

Nearly every bypass real gateways shipped came from matching a different string than the one
the upstream routes on (oauth2-proxy matched path + query, trusted X-Forwarded-Uri, missed a
`#`). So: the query and fragment never take part; the path is percent-decoded, its duplicate
slashes and dot segments resolved and the static prefix removed before matching; and a path
that normalising changed at all (`/healthz/../api/...`, `/%68ealthz`, `//healthz`) is never
exempt: what the core would route and what was checked could differ, so it must authenticate.
Patterns are matched against the whole path (fullmatch), not searched in it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from urllib.parse import unquote

# The gateway's own probes, MLflow's unauthenticated /health and /version, the public keys of
# trackgate's tokens and the sign-in flow (which must be reachable before signing in).
BUILTIN_SKIP = (r"/healthz", r"/readyz", r"/version", r"/health", r"/\.well-known/jwks\.json", r"/oauth2/.*")


def normalise(raw_path: str, prefix: str = "") -> str:
    """The path a router would see: decoded, slashes collapsed, dot segments resolved, prefix off.

    `raw_path` is the request target as sent (query allowed; it is cut off first)."""
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    path = unquote(path, errors="strict") if "%" in path else path
    path = re.sub(r"/{2,}", "/", path)
    trailing = path.endswith("/") and path != "/"
    path = posixpath.normpath(path) if path else "/"
    path = "/" + path.lstrip("/")  # normpath keeps a leading "//"; one slash is the canonical form
    if trailing:
        path += "/"
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix) :] or "/"
    return path


class SkipAuth:
    """Decides whether a request is exempt from authentication."""

    def __init__(self, patterns: Iterable[str], prefix: str = "") -> None:
        self._prefix = prefix
        self._pattern = re.compile("|".join(f"(?:{p})" for p in (*BUILTIN_SKIP, *patterns)))

    def exempt(self, raw_path: str) -> bool:
        path_only = raw_path.split("?", 1)[0]
        if "#" in path_only or "\\" in path_only or ";" in path_only:
            return False  # characters some servers treat as separators: never exempt
        try:
            path = normalise(path_only, self._prefix)
        except UnicodeDecodeError:
            return False
        # Exempt only if normalising changed nothing but the static prefix.
        canonical = self._prefix + path if path_only.startswith(self._prefix + "/") and self._prefix else path
        if canonical != path_only:
            return False
        return self._pattern.fullmatch(path) is not None
