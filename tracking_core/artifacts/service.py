"""Where a stored artifact URI actually lives, for this server.

- `mlflow-artifacts:/a/b`, `mlflow-artifacts://host:port/a/b` and
  `http(s)://…/api/2.0/mlflow-artifacts/artifacts/a/b` are proxied: path `a/b` under
  `--artifacts-destination` (the netloc is ignored, as `mlflow server` does).
- Any other URI (`s3://`, `gs://`, `sftp://`, a local path, ...) is read directly, when its scheme
  is registered, and only inside the server's own artifact roots or the operator's allow-list
  (`confine.Confinement`): an experiment's artifact_location or a model version's source is
  chosen by whoever creates it, and must not turn the download routes into a way to read
  whatever the server's files or credentials reach.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from tracking_core.artifacts import paths
from tracking_core.artifacts.confine import Confinement
from tracking_core.artifacts.repository import ArtifactRepository, ArtifactStores, Registry
from tracking_core.errors import ErrorCode, MlflowError
from tracking_core.settings import CoreSettings

PROXY_ROUTE = "/mlflow-artifacts/artifacts"


def proxied_path(uri: str) -> str | None:
    """The destination-relative path of a proxied artifact URI, or None if it is not one."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "mlflow-artifacts":
        return unquote(parsed.path)
    if scheme in ("http", "https") and PROXY_ROUTE in parsed.path:
        return unquote(parsed.path.split(PROXY_ROUTE, 1)[1])
    return None


@dataclass
class ArtifactService:
    """The process's artifact stores, the proxy destination, and URI resolution."""

    config: CoreSettings
    stores: ArtifactStores
    destination: ArtifactRepository | None = None
    confinement: Confinement = field(default_factory=lambda: Confinement(()))

    @classmethod
    async def open(cls, config: CoreSettings, registry: Registry) -> ArtifactService:
        service = cls(config, ArtifactStores(registry))
        try:
            if config.serve_artifacts:
                service.destination = await service.stores.repository(config.artifacts_destination)
        except BaseException:
            await service.stores.close()
            raise
        service.confinement = Confinement.of(
            config.artifacts_destination, config.effective_default_artifact_root, config.artifact_allowed_locations
        )
        return service

    async def close(self) -> None:
        await self.stores.close()

    @property
    def serving(self) -> bool:
        return self.destination is not None

    async def locate(self, artifact_uri: str, relative: str = "") -> tuple[ArtifactRepository, str]:
        """The repository holding `artifact_uri` and the clean path of `relative` inside it."""
        relative = paths.clean(relative)
        proxied = proxied_path(artifact_uri)
        if proxied is not None:
            if self.destination is None:
                raise MlflowError(
                    ErrorCode.INVALID_PARAMETER_VALUE,
                    f"Artifacts at {artifact_uri} are served through the artifact proxy, which this "
                    "server runs without (--no-serve-artifacts).",
                )
            return self.destination, paths.join(paths.clean(proxied.lstrip("/")), relative)
        self.confinement.require(artifact_uri)
        return await self.stores.repository(artifact_uri), relative
