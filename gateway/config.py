"""One frozen, validated configuration for the gateway and the tracking core.

Every setting is declared once in `SETTINGS` (name, type, default, environment names, help).
Sources, highest first: command-line flags > `TRACKGATE_<NAME>` > the `MLFLOW_*` names that
`mlflow server` users already set > the TOML file given with `--config` > the default.
`load()` reports every problem at once, in plain words, instead of stopping at the first.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """All problems found in the configuration, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Setting:
    name: str
    kind: type
    default: Any
    help: str
    env: tuple[str, ...] = ()
    optional: bool = False

    @property
    def env_names(self) -> tuple[str, ...]:
        return ("TRACKGATE_" + self.name.upper(), *self.env)


SETTINGS: tuple[Setting, ...] = (
    Setting("host", str, "127.0.0.1", "Address the public port binds to.", ("MLFLOW_HOST",)),
    Setting("port", int, 5000, "Public port (Cloud Run's PORT is honoured).", ("PORT", "MLFLOW_PORT")),
    Setting("workers", int, 1, "Tracking-core worker processes.", ("MLFLOW_WORKERS",)),
    Setting(
        "backend_store_uri",
        str,
        "sqlite:///trackgate.db",
        "SQLAlchemy URI of the tracking database (sqlite, postgresql, mysql, mssql).",
        ("MLFLOW_BACKEND_STORE_URI",),
    ),
    Setting(
        "registry_store_uri",
        str,
        None,
        "Database of the model registry; defaults to the backend store.",
        ("MLFLOW_REGISTRY_STORE_URI",),
        optional=True,
    ),
    Setting(
        "default_artifact_root",
        str,
        None,
        "Artifact root for new experiments (default: mlflow-artifacts:/ when serving artifacts).",
        ("MLFLOW_DEFAULT_ARTIFACT_ROOT",),
        optional=True,
    ),
    Setting("serve_artifacts", bool, True, "Proxy artifact uploads and downloads.", ("MLFLOW_SERVE_ARTIFACTS",)),
    Setting(
        "artifacts_destination",
        str,
        "./mlartifacts",
        "Where proxied artifacts are kept: a local path, file://, s3:// or gs://.",
        ("MLFLOW_ARTIFACTS_DESTINATION",),
    ),
    Setting("artifacts_only", bool, False, "Serve only the artifact proxy API.", ("MLFLOW_ARTIFACTS_ONLY",)),
    Setting("static_prefix", str, "", "Path prefix for every route, e.g. /mlflow.", ("MLFLOW_STATIC_PREFIX",)),
    Setting("log_level", str, "info", "debug, info, warning or error.", ("MLFLOW_LOGGING_LEVEL",)),
    Setting("max_body_mb", int, 32, "Largest JSON request body accepted, in MiB."),
    Setting("core_startup_timeout", float, 60.0, "Seconds to wait for the core to become healthy."),
    Setting("drain_timeout", float, 30.0, "Seconds in-flight requests may take to finish on SIGTERM."),
    Setting("db_pool_size", int, 5, "Connections per core worker.", ("MLFLOW_SQLALCHEMYSTORE_POOL_SIZE",)),
    Setting("db_max_overflow", int, 10, "Extra connections under load.", ("MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW",)),
    Setting(
        "db_pool_recycle",
        int,
        None,
        "Recycle connections older than this many seconds.",
        ("MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE",),
        optional=True,
    ),
    Setting("mysql_ssl_ca", str, None, "CA file for MySQL TLS.", ("MLFLOW_MYSQL_SSL_CA",), optional=True),
    Setting("mysql_ssl_cert", str, None, "Client cert for MySQL TLS.", ("MLFLOW_MYSQL_SSL_CERT",), optional=True),
    Setting("mysql_ssl_key", str, None, "Client key for MySQL TLS.", ("MLFLOW_MYSQL_SSL_KEY",), optional=True),
    Setting(
        "model_version_source_regex",
        str,
        None,
        "Model-version sources must match this regex (Python re.search); unset: no check.",
        ("MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX",),
        optional=True,
    ),
    Setting(
        "core_socket",
        str,
        None,
        "Private Unix socket between gateway and core (default: a fresh temporary path).",
        optional=True,
    ),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
LOG_LEVELS = ("debug", "info", "warning", "error")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SUPPORTED_DB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql")


@dataclass(frozen=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    backend_store_uri: str = "sqlite:///trackgate.db"
    registry_store_uri: str | None = None
    default_artifact_root: str | None = None
    serve_artifacts: bool = True
    artifacts_destination: str = "./mlartifacts"
    artifacts_only: bool = False
    static_prefix: str = ""
    log_level: str = "info"
    max_body_mb: int = 32
    core_startup_timeout: float = 60.0
    drain_timeout: float = 30.0
    db_pool_size: int = 5
    db_max_overflow: int = 10
    db_pool_recycle: int | None = None
    mysql_ssl_ca: str | None = None
    mysql_ssl_cert: str | None = None
    mysql_ssl_key: str | None = None
    model_version_source_regex: str | None = None
    core_socket: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

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

    def to_json(self) -> str:
        """Serialise for the core worker processes (they receive an already validated config)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "sources"}
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> Config:
        return cls(**json.loads(text))

    def with_changes(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)


def _convert(setting: Setting, raw: Any, origin: str, problems: list[str]) -> Any:
    if raw is None or (isinstance(raw, str) and raw == "" and setting.optional):
        return None
    try:
        if setting.kind is bool:
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError
        if setting.kind is int:
            if isinstance(raw, bool):
                raise ValueError
            return int(str(raw).strip())
        if setting.kind is float:
            return float(str(raw).strip())
        return str(raw)
    except ValueError:
        kind = {bool: "true or false", int: "a whole number", float: "a number"}[setting.kind]
        problems.append(f"{setting.name}: {origin} gives {raw!r}, which is not {kind}.")
        return None


def _read_toml(path: str, problems: list[str]) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        problems.append(f"config file {path} does not exist.")
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"config file {path} cannot be read: {exc}")
        return {}
    # Accept both a flat file and one with a [server] table.
    flat = dict(data.get("server", {})) if isinstance(data.get("server"), dict) else {}
    flat.update({k: v for k, v in data.items() if not isinstance(v, dict)})
    normalised = {k.replace("-", "_"): v for k, v in flat.items()}
    for key in normalised:
        if key not in SETTINGS_BY_NAME:
            problems.append(f"config file {path}: unknown setting {key!r}.")
    return normalised


def load(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Config:
    """Build the config from every source; raise ConfigError listing every problem."""
    flags = dict(flags or {})
    env = dict(os.environ if env is None else env)
    problems: list[str] = []
    file_values = _read_toml(config_file, problems) if config_file else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in SETTINGS:
        if setting.name in flags and flags[setting.name] is not None:
            raw, origin = flags[setting.name], "--" + setting.name.replace("_", "-")
        elif env_name := next((n for n in setting.env_names if n in env), None):
            raw, origin = env[env_name], env_name
        elif setting.name in file_values:
            raw, origin = file_values[setting.name], f"{setting.name} in {config_file}"
        else:
            values[setting.name] = setting.default
            sources[setting.name] = "default"
            continue
        found = len(problems)
        value = _convert(setting, raw, origin, problems)
        # A value that does not convert is validated as its default, so that the problems of
        # every other setting are still reported in the same run.
        values[setting.name] = setting.default if len(problems) > found else value
        sources[setting.name] = origin
    for name in env:
        if name.startswith("TRACKGATE_") and name[len("TRACKGATE_") :].lower() not in SETTINGS_BY_NAME:
            problems.append(f"environment variable {name} is not a trackgate setting.")
    problems.extend(_validate(values, sources))
    if problems:
        raise ConfigError(problems)
    return Config(**values, sources=sources)


def _validate(v: dict[str, Any], sources: Mapping[str, str]) -> list[str]:
    problems: list[str] = []

    def where(name: str) -> str:
        return f" (from {sources[name]})" if sources.get(name, "default") != "default" else ""

    if not 0 <= v["port"] <= 65535:
        problems.append(f"port must be between 0 and 65535, not {v['port']}{where('port')}.")
    if v["workers"] < 1:
        problems.append(f"workers must be at least 1, not {v['workers']}{where('workers')}.")
    for uri_name in ("backend_store_uri", "registry_store_uri"):
        uri = v[uri_name]
        if uri is None:
            continue
        scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
        if "://" not in uri or scheme not in _SUPPORTED_DB_SCHEMES:
            problems.append(
                f"{uri_name} must be a database URI such as sqlite:///trackgate.db or "
                f"postgresql://user@host/db, not {mask_uri(uri)!r}{where(uri_name)}."
            )
        elif uri.startswith("sqlite") and ":memory:" in uri:
            problems.append(
                f"{uri_name} may not be an in-memory SQLite database: every core worker would see its "
                "own empty copy. Use a file, e.g. sqlite:///trackgate.db."
            )
    prefix = v["static_prefix"]
    if prefix and (not prefix.startswith("/") or prefix.endswith("/") or re.search(r"[{}\s]", prefix)):
        problems.append(f"static_prefix must start with '/', not end with '/', e.g. /mlflow; got {prefix!r}.")
    if v["log_level"].lower() not in LOG_LEVELS:
        problems.append(f"log_level must be one of {', '.join(LOG_LEVELS)}, not {v['log_level']!r}.")
    if v["artifacts_only"] and not v["serve_artifacts"]:
        problems.append("artifacts_only needs serve_artifacts: an artifacts-only server that serves no artifacts "
                        "would answer nothing.")
    if v["artifacts_only"] and sources.get("backend_store_uri", "default") != "default":
        problems.append("artifacts_only runs no tracking store, so backend_store_uri must not be set with it.")
    dest = v["artifacts_destination"]
    if dest and "://" in dest and dest.split("://", 1)[0] not in ("file", "s3", "gs"):
        problems.append(f"artifacts_destination must be a local path, file://, s3:// or gs:// URI, not {dest!r}.")
    for name in ("max_body_mb", "db_pool_size"):
        if v[name] < 1:
            problems.append(f"{name} must be at least 1, not {v[name]}{where(name)}.")
    for name in ("core_startup_timeout", "drain_timeout"):
        if v[name] <= 0:
            problems.append(f"{name} must be greater than 0, not {v[name]}{where(name)}.")
    if v["model_version_source_regex"] is not None:
        try:
            re.compile(v["model_version_source_regex"])
        except re.error as exc:
            problems.append(f"model_version_source_regex is not a valid regular expression ({exc})"
                            f"{where('model_version_source_regex')}.")
    if v["db_max_overflow"] < 0:
        problems.append(f"db_max_overflow must not be negative, not {v['db_max_overflow']}.")
    return problems


_URI_PASSWORD = re.compile(r"(?<=://)([^:/@]+):([^@]*)@")


def mask_uri(uri: str) -> str:
    """Hide the password of a URI, for messages and logs."""
    return _URI_PASSWORD.sub(r"\1:***@", uri)


def describe(config: Config) -> list[str]:
    """Human-readable lines for `--check-config`, with secrets masked."""
    lines = []
    for setting in SETTINGS:
        value = getattr(config, setting.name)
        if isinstance(value, str) and "uri" in setting.name:
            value = mask_uri(value)
        lines.append(f"{setting.name} = {value!r}  ({config.sources.get(setting.name, 'default')})")
    return lines
