"""Offset page tokens, in MLflow's format: base64 of the JSON `{"offset": N}`.

The client treats tokens as opaque, but matching MLflow's encoding keeps tokens from a stock
server and ours interchangeable (e.g. `eyJvZmZzZXQiOiAxMDAwfQ==` is offset 1000).
"""

from __future__ import annotations

import base64
import binascii
import json

from tracking_core.errors import invalid

MAX_TOKEN_LENGTH = 1024
# Far beyond any real result set, and with headroom below the signed 64-bit OFFSET every backend
# takes (offset + page size must not overflow either).
MAX_OFFSET = 2**53


def encode(offset: int, scope: str | None = None) -> str:
    """A token for `offset`; `scope` (a fingerprint of the query) makes it valid for that query only."""
    payload: dict[str, object] = {"offset": offset}
    if scope is not None:
        payload["scope"] = scope
    return base64.b64encode(json.dumps(payload).encode()).decode()


def decode(token: str | None, scope: str | None = None) -> int:
    """The offset a token stands for; no token (None or "") is the first page."""
    if not token:
        return 0
    # Our tokens are a few dozen characters; a long one is hostile (deeply nested JSON inside).
    if len(token) > MAX_TOKEN_LENGTH:
        raise invalid(f"Invalid page token: longer than {MAX_TOKEN_LENGTH} characters.")
    try:
        raw = base64.b64decode(token.encode(), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise invalid("Invalid page token, could not base64-decode") from None
    try:
        parsed = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise invalid(f"Invalid page token, decoded value={raw!r}") from None
    offset = parsed.get("offset") if isinstance(parsed, dict) else None
    # bool is an int subclass; `{"offset": true}` is not a page.
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise invalid(f"Invalid page token, parsed value={parsed!r}")
    if offset < 0:
        raise invalid(f"Invalid page token, offset must be non-negative, got {offset}")
    if offset > MAX_OFFSET:
        raise invalid(f"Invalid page token, offset must be at most {MAX_OFFSET}, got {offset}")
    if scope is not None and parsed.get("scope") != scope:
        raise invalid("Invalid page token: it belongs to a search with other arguments.")
    return offset
