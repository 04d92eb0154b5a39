"""Where a browser may be sent after sign-in or sign-out: same-site relative paths only.

Open redirects are the most common bypass real gateways shipped (oauth2-proxy GHSA-qqxw-m5fj-f7gv,
GHSA-j7px-6hwj-hpjg, GHSA-5m6c-jp6f-2vcv), so instead of an allow-list of hosts there is one rule:
a path that starts with exactly one "/", in printable ASCII, with no backslash, and that stays
such a path however many times it is percent-decoded and after the tabs and newlines a browser's
URL parser deletes are deleted. Anything else becomes "/".
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

MAX_LENGTH = 2048  # it travels in the login cookie; a real path is far shorter
_PRINTABLE_ASCII = re.compile(r"[!-~]+")  # no spaces, no controls, no non-ASCII
_BROWSER_STRIPPED = re.compile(r"[\t\n\r]")  # WHATWG URL: removed anywhere in the input
_DECODE_ROUNDS = 4


def safe_redirect(target: str | None, default: str = "/") -> str:
    """`target` if it is a same-site relative path (kept exactly as given), else `default`."""
    if not target or len(target) > MAX_LENGTH or not _PRINTABLE_ASCII.fullmatch(target):
        return default
    layer = target
    for _ in range(_DECODE_ROUNDS):
        if not _is_local_path(layer):
            return default
        try:
            decoded = unquote(layer, errors="strict") if "%" in layer else layer
        except UnicodeDecodeError:
            return default  # not UTF-8 underneath: no page of ours has such a path
        if decoded == layer:
            return target
        layer = decoded
    return default  # encoded more deeply than any real link: refuse rather than guess


def _is_local_path(text: str) -> bool:
    if re.search(r"[\x00-\x1f\x7f\\]", _BROWSER_STRIPPED.sub("", text)):
        return False
    squeezed = _BROWSER_STRIPPED.sub("", text).lstrip(" ")
    if not squeezed.startswith("/") or squeezed.startswith("//"):
        return False
    parts = urlsplit(squeezed)
    return not parts.scheme and not parts.netloc
