"""The tracking core's own settings: the fields it reads, frozen, serialisable to its workers.

The gateway's `Config` extends this class with everything the gateway alone needs (auth, TLS,
SSO, ports), so one validated object serves both processes while the dependency runs one way:
the gateway imports the core, never the reverse. Loading and validation live in the gateway
(`gateway.config.load`); a worker receives an already validated `CoreSettings` as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self


@dataclass(frozen=True)
class CoreSettings:
    backend_store_uri: str = "sqlite:///trackgate.db"
    registry_store_uri: str | None = None
    default_artifact_root: str | None = None
    serve_artifacts: bool = True
    artifacts_destination: str = "./mlartifacts"
    artifacts_only: bool = False
    direct_artifact_transfers: bool = False
    static_prefix: str = ""
    log_level: str = "info"
    log_format: str = "text"  # text or json, for the core workers' log lines too
    read_replica_backend_store_uri: str | None = None  # searches read here (tracking_core/replica.py)
    max_body_mb: int = 32
    drain_timeout: float = 30.0
    db_pool_size: int = 5
    db_max_overflow: int = 10
    db_pool_recycle: int | None = None
    mysql_ssl_ca: str | None = None
    mysql_ssl_cert: str | None = None
    mysql_ssl_key: str | None = None
    model_version_source_regex: str | None = None
    # Artifact locations outside the artifact roots that the server may still read and that
    # experiments may use (URI prefixes: s3://other-bucket/models, /srv/shared, ...).
    artifact_allowed_locations: tuple[str, ...] = ()
    # Authorization (tracking_core/authz): on exactly when the gateway authenticates (`auth` lists
    # its methods; an open server stays open, as `mlflow server` is).
    auth: tuple[str, ...] = ()
    default_permission: str = "READ"
    admin_users: tuple[str, ...] = ()
    admin_groups: tuple[str, ...] = ()
    audit_retention_days: int = 90
    # Where each setting came from ("--flag", "TRACKGATE_X", a file), for messages that name it.
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def authorization(self) -> bool:
        return bool(self.auth)

    @property
    def effective_registry_store_uri(self) -> str:
        return self.registry_store_uri or self.backend_store_uri

    @property
    def effective_default_artifact_root(self) -> str:
        if self.default_artifact_root:
            return self.default_artifact_root
        if self.serve_artifacts:
            return "mlflow-artifacts:/"
        return str(Path("mlruns").resolve())

    def core_settings(self) -> CoreSettings:
        """Just the core's fields (from a gateway `Config` too), e.g. to hand to a worker."""
        return CoreSettings.from_json(self.to_json())

    def to_json(self) -> str:
        names = [f.name for f in dataclasses.fields(CoreSettings) if f.name != "sources"]
        values: dict[str, Any] = {name: getattr(self, name) for name in names}
        values["sources"] = {name: origin for name, origin in self.sources.items() if name in names}
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> CoreSettings:
        values = json.loads(text)
        for name in _TUPLES:  # JSON has no tuples; the frozen settings keep them hashable
            if name in values:
                values[name] = tuple(values[name])
        return CoreSettings(**values)

    def with_changes(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)


_TUPLES = ("auth", "admin_users", "admin_groups", "artifact_allowed_locations")
PERMISSION_NAMES = ("READ", "USE", "EDIT", "MANAGE", "NO_PERMISSIONS")

_URI_PASSWORD = re.compile(r"(?<=://)([^:/@]+):([^@]*)@")


def mask_uri(uri: str) -> str:
    """Hide the password of a URI, for messages and logs."""
    return _URI_PASSWORD.sub(r"\1:***@", uri)
