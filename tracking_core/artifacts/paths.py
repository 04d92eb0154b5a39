"""Artifact paths: one canonical relative form, confined to the root it is joined to.

Every path that arrives from a request goes through `clean` before any store sees it. The
rules are deliberately stricter than "what the OS would resolve safely": a path is refused if it
could mean something else to some store or some later decoding step (a backslash is a separator
on Windows, `%2e%2e` becomes `..` after one more unquote, NUL truncates C strings). Local
storage adds `confine`, which also refuses symlinks that lead out of the root.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tracking_core.errors import invalid

INVALID_PATH = "Invalid path"
_DRIVE = re.compile(r"^[A-Za-z]:")
# Percent-encoded dots or separators that survived the URL decoding already done by aiohttp:
# harmless to us, but a store or proxy that decodes once more would see `..` or `/`.
_ENCODED = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)


def clean(path: str | None, *, allow_root: bool = True) -> str:
    """The canonical form of a client-supplied relative path: "a/b/c", or "" for the root.

    Raises 400 INVALID_PARAMETER_VALUE "Invalid path" for anything that is not a plain
    relative path: `..` segments, absolute paths, drive letters, backslashes, NUL and other
    control characters, and encoded dots/separators. "." and empty segments are dropped.
    """
    if path is None or path in ("", "/", "."):
        # "/" is how the client spells "the root" in a few list calls.
        if allow_root:
            return ""
        raise invalid(INVALID_PATH)
    if (
        path.startswith(("/", "~"))
        or _DRIVE.match(path)
        or "\\" in path
        or any(ord(ch) < 32 or ord(ch) == 127 for ch in path)
        or _ENCODED.search(path)
    ):
        raise invalid(INVALID_PATH)
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise invalid(INVALID_PATH)
    if not parts and not allow_root:
        raise invalid(INVALID_PATH)
    return "/".join(parts)


def join(*parts: str) -> str:
    """Join already-clean relative paths (empty parts are skipped)."""
    return "/".join(p.strip("/") for p in parts if p and p.strip("/"))


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def parent(path: str) -> str:
    return path.rsplit("/", 1)[0] if "/" in path else ""


def confine(root: Path, relative: str) -> Path:
    """`root / relative`, refusing it if symlinks make it resolve outside `root`.

    `relative` is already clean, so only symlinks can lead out. The deepest part of the path
    that exists is resolved (the rest is about to be created, and cannot be a link yet).
    """
    real_root = Path(os.path.realpath(root))
    target = real_root / relative if relative else real_root
    probe = target
    while not os.path.lexists(probe) and probe != real_root:
        probe = probe.parent
    resolved = Path(os.path.realpath(probe))
    if resolved != real_root and real_root not in resolved.parents:
        raise invalid(INVALID_PATH)
    if os.path.islink(target):
        # A link to a file inside the root is still refused: a later move of the link target
        # could turn it into an escape between this check and the open.
        raise invalid(INVALID_PATH)
    return target
