"""Model-version sources refused the way `mlflow server` 3.17 refuses them, with its messages.

- A local path (`/srv/x`, `file:///x`) only inside the artifact directory of the run named by
  `run_id` (or of the logged model named by `model_id`), and only when that directory is local.
- A proxied source (`mlflow-artifacts:/...`, `http(s)://.../mlflow-artifacts/artifacts/...`) only
  inside the artifact root of that run or logged model.
- A source whose scheme makes the server connect to the host it names (ftp, sftp, hdfs, http,
  ...) only on a host the server already uses for its artifact roots or allow-list.
- `..` segments and NUL, also percent-encoded, never (`registry_validation.source`).

`runs:/` and `models:/` sources are resolved (and their ids cross-checked) by the registry store.
Anything else (`s3://other-bucket/m`) may be registered, as in MLflow, but the server reads it only
inside its roots (`confine.Confinement`), so registering it reaches nothing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import unquote, urlsplit

from tracking_core.artifacts.confine import PROXY_SCHEME, Confinement, is_local, location
from tracking_core.artifacts.service import proxied_path
from tracking_core.errors import invalid

# Schemes whose repositories connect to the host in the URI (as MLflow's host_policy lists them).
HOST_ADDRESSED = frozenset({"ftp", "sftp", "hdfs", "viewfs", "http", "https", "r2", "b2", "abfss"})

RootOf = Callable[[str], Awaitable[str | None]]


def _local_message(source: str, id_name: str) -> str:
    # MLflow says "run" for the model_id case too.
    return (
        f"Invalid model version source: '{source}'. To use a local path as a model version source, the "
        f"{id_name} request parameter has to be specified and the local path has to be contained within "
        f"the artifact directory of the run specified by the {id_name}."
    )


def _outside(source: str, id_name: str) -> str:
    return (
        f"Invalid model version source: '{source}'. The {id_name} request parameter must identify the "
        "resource that contains the source."
    )


def _parts(uri: str) -> tuple[str, str, tuple[str, ...]]:
    parsed = urlsplit(uri)
    return parsed.scheme.lower(), parsed.netloc.lower(), tuple(unquote(p) for p in parsed.path.split("/") if p)


def _uri_within(source: str, root: str) -> bool:
    s_scheme, s_authority, s_parts = _parts(source)
    r_scheme, r_authority, r_parts = _parts(root)
    return (s_scheme, s_authority) == (r_scheme, r_authority) and s_parts[: len(r_parts)] == r_parts


async def check(
    source: str,
    run_id: str | None,
    model_id: str | None,
    confinement: Confinement,
    run_root: RootOf,
    model_root: RootOf,
) -> None:
    """Raise 400 INVALID_PARAMETER_VALUE (MLflow's wording) for a source MLflow would refuse."""
    id_name, resource_id, root_of = ("model_id", model_id, model_root) if model_id else ("run_id", run_id, run_root)
    if source.startswith(("runs:", "models:")):
        return
    parsed = urlsplit(source)
    scheme = parsed.scheme.lower()
    if (scheme in HOST_ADDRESSED and not confinement.allows(source)) or (
        scheme == PROXY_SCHEME and parsed.netloc.lower() not in confinement.proxy_authorities | {""}
    ):
        raise invalid(
            f"'source' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses a host other than "
            "the tracking server's configured artifact storage, so the server would connect to the host "
            "named in the URI. Add the location to --artifact-allowed-locations to allow it."
        )
    if is_local(source):
        root = await root_of(resource_id) if resource_id else None
        inside = root is not None and is_local(root)
        if inside:
            found, container = location(source), location(root or "")
            inside = found is not None and container is not None and found.within(container)
        if not inside:
            raise invalid(_local_message(source, id_name))
        return
    if proxied_path(source) is not None:
        root = await root_of(resource_id) if resource_id else None
        if root is None or not _uri_within(source, root):
            raise invalid(_outside(source, id_name))
        return
