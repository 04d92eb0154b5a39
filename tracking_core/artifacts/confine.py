"""Which artifact locations this server touches: inside its own roots, or an operator's allow-list.

An experiment's `artifact_location` and a model version's `source` are chosen by whoever
creates them, and the server then reads (and the UI downloads) through whatever credentials it
holds: its S3 keys reach other buckets, its GCS service account other projects, its SSH keys
other hosts. So every location the server is asked to read or write must lie under one of

- `--artifacts-destination` (the proxy's store),
- `--default-artifact-root` (where new experiments go; `mlflow-artifacts:/` is the proxy), or
- an entry of `--artifact-allowed-locations`,

for every scheme alike: the check knows nothing about S3 or SFTP, only URIs. Two URIs compare
by scheme, authority (bucket, container@account, user@host:port) and path prefix on whole
segments; a local path compares by its real path (symlinks resolved). A URI that could mean
something else to some store (`..` segments, also percent-encoded, NUL, a query or fragment,
a backslash in the authority) is never inside anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlparse

from tracking_core.artifacts.local import local_path
from tracking_core.errors import ErrorCode, MlflowError, invalid

PROXY_SCHEME = "mlflow-artifacts"
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


@dataclass(frozen=True)
class Location:
    """A URI reduced to what confinement compares: scheme, authority and a clean path."""

    scheme: str
    authority: str
    path: str  # "/"-separated, no trailing "/", "" for the whole bucket/host

    def within(self, root: Location) -> bool:
        if (self.scheme, self.authority) != (root.scheme, root.authority):
            return False
        return not root.path or self.path == root.path or self.path.startswith(root.path + "/")


def _decoded(uri: str) -> str:
    # Decode until stable: a store or proxy that unquotes once more must not find a `..` we missed.
    for _ in range(5):
        decoded = unquote(uri)
        if decoded == uri:
            break
        uri = decoded
    return uri


def is_local(uri: str) -> bool:
    scheme = urlparse(uri).scheme.lower()
    return scheme in ("", "file") or bool(_WINDOWS_DRIVE.match(uri))


def location(uri: str) -> Location | None:
    """The comparable form of `uri`, or None when it is unsafe or malformed."""
    decoded = _decoded(uri)
    if "\x00" in decoded or any(part == ".." for part in re.split(r"[/\\]", decoded)):
        return None
    if is_local(uri):
        return Location("file", "", os.path.realpath(local_path(uri)).rstrip(os.sep))
    parsed = urlparse(uri)
    if parsed.query or parsed.fragment or parsed.params or "\\" in parsed.netloc:
        return None
    path = "/".join(part for part in parsed.path.split("/") if part not in ("", "."))
    return Location(parsed.scheme.lower(), parsed.netloc.lower(), path)


def _refused(uri: str) -> MlflowError:
    return MlflowError(
        ErrorCode.PERMISSION_DENIED,
        f"This server reads and writes artifacts only inside its artifact roots (--artifacts-destination, "
        f"--default-artifact-root) and --artifact-allowed-locations; '{uri}' is outside them.",
    )


class Confinement:
    """The roots a server may touch, and the checks against them."""

    def __init__(self, roots: Iterable[str]) -> None:
        self.proxy_authorities: set[str] = set()
        self.roots: list[Location] = []
        for root in roots:
            parsed = urlparse(root)
            if parsed.scheme.lower() == PROXY_SCHEME:
                self.proxy_authorities.add(parsed.netloc.lower())
            elif (found := location(root)) is not None:
                self.roots.append(found)

    @classmethod
    def of(cls, destination: str, default_root: str, allowed: Iterable[str]) -> Confinement:
        return cls([destination, default_root, *allowed])

    def allows(self, uri: str) -> bool:
        """True if the server may read or write at `uri` directly (not through the proxy)."""
        found = location(uri)
        return found is not None and any(found.within(root) for root in self.roots)

    def require(self, uri: str) -> None:
        """Refuse (403) to touch a location outside the roots: the guard before every store call."""
        if not self.allows(uri):
            raise _refused(uri)

    def check_new_location(self, uri: str, field: str) -> None:
        """Refuse (400) to record a location the server would later refuse to touch: an
        experiment's artifact_location, say. A proxied URI is fine unless it names a host that
        is not this server's."""
        parsed = urlparse(uri)
        if parsed.scheme.lower() == PROXY_SCHEME:
            if location(uri) is not None and parsed.netloc.lower() in self.proxy_authorities | {""}:
                return
        elif self.allows(uri):
            return
        raise invalid(
            f"'{field}' must lie inside this server's artifact roots (--artifacts-destination, "
            f"--default-artifact-root) or --artifact-allowed-locations; '{uri}' does not."
        )
