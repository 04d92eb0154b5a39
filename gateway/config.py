"""One frozen, validated configuration for the gateway and the tracking core.

Every setting is declared once in `SETTINGS` (name, type, default, environment names, help).
Sources, highest first: command-line flags > `TRACKGATE_<NAME>` > the `MLFLOW_*` names that
`mlflow server` users already set > the TOML file given with `--config` > the default.
`load()` reports every problem at once, in plain words, instead of stopping at the first.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from gateway.config_auth import JwtIssuer, validate_auth
from gateway.config_security import startup_warnings, unknown_variables, validate_exposure
from tracking_core.artifacts.repository import default_registry, scheme_of
from tracking_core.durations import parse_duration
from tracking_core.importer.detect import import_command, mlflow_file_store
from tracking_core.settings import PERMISSION_NAMES, CoreSettings, mask_uri


class ConfigError(Exception):
    """All problems found in the configuration, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Secret:
    """A secret value that masks itself in reprs, logs, tracebacks and `--check-config`.

    Read it with `.reveal()`, at the one place that needs it. Settings of this kind also accept
    `<name>_file` (Cloud Run and Kubernetes mount secrets as files).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


Strings = tuple[str, ...]  # kind of list settings: "a,b" from flags/env, an array in TOML

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
    Setting("gateway_workers", str, "auto", "Gateway processes sharing the public port: a number, or auto "
            "(one per two CPUs, at least one; see README)."),
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
    Setting(
        "direct_artifact_transfers",
        bool,
        False,
        "Tell clients (server-info) to move large artifacts straight to and from the object store with "
        "presigned URLs; only for clients that can reach the store.",
    ),
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
    Setting(
        "mysql_ssl_ca",
        str,
        None,
        "CA file of the MySQL/MariaDB server's certificate. Any mysql_ssl_* setting makes TLS required; the "
        "certificate chain is verified, the host name is not (as with mlflow server).",
        ("MLFLOW_MYSQL_SSL_CA",),
        optional=True,
    ),
    Setting("mysql_ssl_cert", str, None, "Client cert for MySQL TLS.", ("MLFLOW_MYSQL_SSL_CERT",), optional=True),
    Setting("mysql_ssl_key", str, None, "Key of the MySQL client cert.", ("MLFLOW_MYSQL_SSL_KEY",), optional=True),
    Setting(
        "model_version_source_regex",
        str,
        None,
        "Model-version sources must match this regex (Python re.search); unset: no check.",
        ("MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX",),
        optional=True,
    ),
    Setting("artifact_allowed_locations", Strings, (), "Artifact locations outside --artifacts-destination and "
            "--default-artifact-root that the server may read and experiments may use (URI prefixes, any "
            "scheme); everything else is refused."),
    # -- Authorization (tracking_core/authz): enforced whenever `auth` lists a method ----------
    Setting("default_permission", str, "READ", "Permission on experiments and registered models a caller "
            "has no grant on: READ, USE, EDIT, MANAGE or NO_PERMISSIONS."),
    Setting("admin_users", Strings, (), "Subjects that are administrators, besides users created with "
            "--admin (e.g. an SSO email or a certificate CN)."),
    Setting("admin_groups", Strings, (), "Groups (OIDC/JWT groups claim, certificate rules) whose members "
            "are administrators."),
    Setting("audit_retention_days", int, 90, "Days audit records are kept; older ones are pruned."),
    Setting(
        "core_socket",
        str,
        None,
        "Private Unix socket between gateway and core (default: a fresh temporary path).",
        optional=True,
    ),
    Setting("core_link", str, "frames", "How the gateway forwards to the core: frames (many requests "
            "in flight on a few persistent connections) or http (one HTTP request per request)."),
    # -- OIDC single sign-on and browser sessions (gateway/auth/oidc.py, session.py) ----------
    Setting("oidc_issuer_url", str, None, "OpenID Connect issuer (discovery at "
            "<issuer>/.well-known/openid-configuration).", optional=True),
    Setting("oidc_client_id", str, None, "OAuth client id registered at the provider.", optional=True),
    Setting("oidc_client_secret", Secret, None, "OAuth client secret.", optional=True),
    Setting("oidc_client_secret_file", str, None, "File holding the OAuth client secret.", optional=True),
    Setting("oidc_scopes", Strings, ("openid", "email", "profile"), "Scopes requested at login."),
    Setting("oidc_redirect_url", str, None, "Callback URL registered at the provider "
            "(default: <scheme>://<host>/oauth2/callback of the request).", optional=True),
    Setting("oidc_email_domains", Strings, (), "Email domains allowed to sign in; * allows any."),
    Setting("oidc_allowed_emails", Strings, (), "Email addresses allowed to sign in."),
    Setting("oidc_allowed_groups", Strings, (), "Groups allowed to sign in (any one suffices)."),
    Setting("oidc_groups_claim", str, "groups", "ID-token claim that lists the user's groups."),
    Setting("oidc_end_session", bool, False, "Sign-out also ends the session at the provider "
            "(its end_session_endpoint)."),
    Setting("cookie_secret", Secret, None, "32 random bytes, base64, encrypting session cookies; the "
            "same on every replica (default: generated once and kept in the database).", optional=True),
    Setting("cookie_secret_file", str, None, "File holding the cookie secret.", optional=True),
    Setting("session_lifetime", timedelta, timedelta(days=7), "How long a browser session lasts "
            "(e.g. 12h, 7d)."),
    # -- Authentication methods, TLS and forwarding (gateway/auth/, gateway/tls.py; checked in
    #    gateway.config_auth) -----------------------------------------------------------------
    Setting("auth", Strings, (), "Authentication methods, tried in this order: basic, bearer, mtls, oidc "
            "(comma-separated). Empty: no authentication (open)."),
    Setting("skip_auth_routes", Strings, (), "Extra paths that need no authentication: regular "
            "expressions matched against the whole normalised path (never the query)."),
    Setting("trusted_proxies", Strings, (), "Addresses/CIDRs of reverse proxies whose X-Forwarded-For/"
            "-Proto/-Host are believed (empty: none are)."),
    Setting("htpasswd_file", str, None, "An htpasswd file of basic-auth users (bcrypt: htpasswd -B), "
            "besides the users in the database.", optional=True),
    Setting("basic_auth_cache_ttl", float, 30.0, "Seconds a verified basic-auth password is remembered "
            "(its user row is re-checked every few seconds meanwhile)."),
    Setting("token_signing_key", Secret, None, "PEM private key (Ed25519 or EC P-256) signing trackgate's "
            "own tokens; unset: one is generated once and kept in the database.", optional=True),
    Setting("token_signing_key_file", str, None, "File holding the token signing key.", optional=True),
    Setting("token_issuer", str, "trackgate", "`iss` of the tokens trackgate issues and accepts."),
    Setting("token_audience", str, "trackgate", "`aud` of the tokens trackgate issues and accepts."),
    Setting("jwt_issuers", JwtIssuer, (), "External JWT issuers: [[jwt_issuers]] tables (issuer, "
            "audience, subject_claim, email_claim, groups_claim, jwks_uri, ca_file), JSON, or "
            "ISSUER=AUDIENCE pairs."),
    Setting("jwt_leeway", float, 30.0, "Clock skew allowed on exp/nbf/iat, in seconds."),
    Setting("jwks_cache_ttl", float, 300.0, "Seconds an issuer's key set is cached."),
    Setting("tls_cert", str, None, "PEM certificate (chain) of the public port: serve HTTPS. "
            "Reloaded on SIGHUP.", optional=True),
    Setting("tls_key", str, None, "PEM private key of tls_cert (unless in the same file).", optional=True),
    Setting("tls_key_password", Secret, None, "Password of an encrypted tls_key.", optional=True),
    Setting("tls_key_password_file", str, None, "File holding the tls_key password.", optional=True),
    Setting("tls_client_ca", str, None, "CA bundle client certificates must chain to (mTLS).",
            optional=True),
    Setting("client_cert_mode", str, None, "off, optional (cert-less clients may use other methods) "
            "or required; default optional when tls_client_ca is set, else off.", optional=True),
    Setting("client_cert_identity", Strings, ("cn",), "Where a client certificate's identity comes "
            "from, first found wins: cn, san:dns, san:email, san:uri."),
    # `--auth forwarded` (gateway/auth/forwarded.py): headers an authenticating proxy such as
    # oauth2-proxy sets, believed only from trusted_proxies.
    Setting("forwarded_user_header", str, "X-Forwarded-User", "forwarded auth: the header naming the user."),
    Setting("forwarded_email_header", str, "X-Forwarded-Email", "forwarded auth: the header with the email."),
    Setting("forwarded_groups_header", str, "X-Forwarded-Groups", "forwarded auth: the comma-separated groups."),
    # -- Operations: logs and metrics (tracking_core/log_format.py, gateway/access_log.py, metrics.py)
    Setting("log_format", str, "text", "text (one readable line per event) or json (one JSON object per "
            "line, with Cloud Logging's severity and httpRequest fields; the container image sets it)."),
    Setting("metrics_address", str, None, "HOST:PORT serving Prometheus metrics at /metrics, apart from the "
            "public port (off by default; oauth2-proxy's flag).", optional=True),
    Setting("expose_prometheus", str, None, "mlflow server's flag: turn metrics on, keeping multiprocess "
            "state in this directory; served on metrics_address (default 127.0.0.1:9090).",
            ("MLFLOW_EXPOSE_PROMETHEUS",), optional=True),
    Setting("read_replica_backend_store_uri", str, None, "A read-only replica of the tracking database (mlflow "
            "server's flag): searches read from it; writes and reads by id (a run just created, a metric just "
            "logged) stay on backend_store_uri.", ("MLFLOW_READ_REPLICA_BACKEND_STORE_URI",), optional=True),
    # -- Exposure: open listening, browser security middleware (gateway/security.py, with
    #    mlflow server's flags and variables), connection limits (gateway/limits.py); checked in
    #    gateway.config_security --------------------------------------------------------------
    Setting("allow_anonymous", bool, False, "Allow listening beyond loopback with no authentication method "
            "(everyone who reaches the port gets in)."),
    Setting("allowed_hosts", Strings, (), "Host headers accepted (DNS-rebinding protection); patterns with * "
            "allowed, * alone accepts all. Empty: localhost and private addresses, as mlflow server.",
            ("MLFLOW_SERVER_ALLOWED_HOSTS",)),
    Setting("cors_allowed_origins", Strings, (), "Origins allowed cross-origin (CORS) besides http://localhost "
            "and loopback ones; * allows any origin without credentials.", ("MLFLOW_SERVER_CORS_ALLOWED_ORIGINS",)),
    Setting("x_frame_options", str, "SAMEORIGIN", "X-Frame-Options header: SAMEORIGIN, DENY or NONE (no "
            "header).", ("MLFLOW_SERVER_X_FRAME_OPTIONS",)),
    Setting("disable_security_middleware", bool, False, "DANGEROUS: no Host check, no CORS blocking, no "
            "security headers.", ("MLFLOW_SERVER_DISABLE_SECURITY_MIDDLEWARE",)),
    Setting("header_read_timeout", float, 15.0, "Seconds a client has to send a request line and headers."),
    Setting("body_read_timeout", float, 60.0, "Seconds a request body may stall between two reads (an upload "
            "that keeps moving is never cut)."),
    Setting("keepalive_timeout", float, 75.0, "Seconds an idle keep-alive connection is kept open."),
    Setting("max_connections", int, 4096, "Open client connections at most; more are closed at once."),
    Setting("max_connections_per_address", int, 256, "Open connections at most from one client address."),
)

SETTINGS_BY_NAME = {s.name: s for s in SETTINGS}
LOG_LEVELS = ("debug", "info", "warning", "error")
LOG_FORMATS = ("text", "json")
_METRICS_ADDRESS = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]*):\d{1,5}")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_SUPPORTED_DB_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "mssql")


@dataclass(frozen=True)
class Config(CoreSettings):
    """Every setting: the core's (inherited) and the gateway's own. Workers get `core_settings()`."""

    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 1
    gateway_workers: str = "auto"
    core_startup_timeout: float = 60.0
    core_socket: str | None = None
    core_link: str = "frames"
    oidc_issuer_url: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: Secret | None = None
    oidc_client_secret_file: str | None = None
    oidc_scopes: Strings = ("openid", "email", "profile")
    oidc_redirect_url: str | None = None
    oidc_email_domains: Strings = ()
    oidc_allowed_emails: Strings = ()
    oidc_allowed_groups: Strings = ()
    oidc_groups_claim: str = "groups"
    oidc_end_session: bool = False
    cookie_secret: Secret | None = None
    cookie_secret_file: str | None = None
    session_lifetime: timedelta = timedelta(days=7)
    auth: Strings = ()
    skip_auth_routes: Strings = ()
    trusted_proxies: Strings = ()
    htpasswd_file: str | None = None
    basic_auth_cache_ttl: float = 30.0
    token_signing_key: Secret | None = None
    token_signing_key_file: str | None = None
    token_issuer: str = "trackgate"
    token_audience: str = "trackgate"
    jwt_issuers: tuple[JwtIssuer, ...] = ()
    jwt_leeway: float = 30.0
    jwks_cache_ttl: float = 300.0
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_key_password: Secret | None = None
    tls_key_password_file: str | None = None
    tls_client_ca: str | None = None
    client_cert_mode: str | None = None
    client_cert_identity: Strings = ("cn",)
    forwarded_user_header: str = "X-Forwarded-User"
    forwarded_email_header: str = "X-Forwarded-Email"
    forwarded_groups_header: str = "X-Forwarded-Groups"
    metrics_address: str | None = None
    expose_prometheus: str | None = None
    allow_anonymous: bool = False
    allowed_hosts: Strings = ()
    cors_allowed_origins: Strings = ()
    x_frame_options: str = "SAMEORIGIN"
    disable_security_middleware: bool = False
    header_read_timeout: float = 15.0
    body_read_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    max_connections: int = 4096
    max_connections_per_address: int = 256
    warnings: tuple[str, ...] = field(default=(), compare=False, repr=False)

    @property
    def effective_client_cert_mode(self) -> str:
        return self.client_cert_mode or ("optional" if self.tls_client_ca else "off")

    @property
    def gateway_processes(self) -> int:
        """How many gateway processes serve the public port (gateway_workers, auto resolved)."""
        wanted = self.gateway_workers.strip().lower()
        return auto_gateway_processes(usable_cpus()) if wanted == "auto" else int(wanted)


def auto_gateway_processes(cpus: int) -> int:
    """One gateway process per two CPUs: a request costs the core about as much CPU as the
    gateway, so the other half of the cores is the core workers' (measured: README)."""
    return max(1, cpus // 2)


def usable_cpus() -> int:
    """CPUs this process may run on, bounded by a cgroup v2 CPU limit (a container's quota)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            quota, period = f.read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


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
        if setting.kind is timedelta:
            return parse_duration(str(raw))
        if setting.kind is Strings:
            items = raw if isinstance(raw, list) else str(raw).split(",")
            if not all(isinstance(item, str) for item in items):
                raise ValueError
            return tuple(item.strip() for item in items if item.strip())
        if setting.kind is Secret:
            return Secret(str(raw))
        if setting.kind is JwtIssuer:
            return JwtIssuer.parse_list(raw)
        return str(raw)
    except ValueError as exc:
        if setting.kind is JwtIssuer:
            problems.append(f"{setting.name}: {origin} is not a valid list of issuers ({exc}).")
            return None
        kind = {
            bool: "true or false",
            int: "a whole number",
            float: "a number",
            timedelta: "a duration such as 90s, 15m, 12h or 7d",
            Strings: "a list of strings",
        }[setting.kind]
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
    # Accept a flat file, one with a [server] table, and tables that prefix their keys
    # (`[tls] cert = ...` is tls_cert). Arrays of tables (`[[jwt_issuers]]`) are values.
    flat = dict(data.get("server", {})) if isinstance(data.get("server"), dict) else {}
    flat.update({k: v for k, v in data.items() if not isinstance(v, dict)})
    for table, items in data.items():
        if isinstance(items, dict) and table != "server":
            flat.update({f"{table}_{k}": v for k, v in items.items()})
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
    # An error, not a warning: TRACKGATE_AUTHS=basic must not start an open server. The test
    # tooling's own variables are exempt (config_security.TOOLING_VARIABLES).
    problems.extend(unknown_variables(env, (n for s in SETTINGS for n in s.env_names)))
    _read_secret_files(values, sources, problems)
    problems.extend(_validate(values, sources))
    problems.extend(validate_exposure(values, lambda name: _where(sources, name)))
    problems.extend(_validate_sso(values))
    problems.extend(validate_auth(values, lambda name: _where(sources, name)))
    if problems:
        raise ConfigError(problems)
    return Config(**values, sources=sources, warnings=tuple(startup_warnings(values)))


def _where(sources: Mapping[str, str], name: str) -> str:
    return f" (from {sources[name]})" if sources.get(name, "default") != "default" else ""


def _validate(v: dict[str, Any], sources: Mapping[str, str]) -> list[str]:
    problems: list[str] = []

    def where(name: str) -> str:
        return _where(sources, name)

    if not 0 <= v["port"] <= 65535:
        problems.append(f"port must be between 0 and 65535, not {v['port']}{where('port')}.")
    if v["workers"] < 1:
        problems.append(f"workers must be at least 1, not {v['workers']}{where('workers')}.")
    gateways = v["gateway_workers"].strip().lower()
    if gateways != "auto" and not (gateways.isdigit() and int(gateways) >= 1):
        problems.append(f"gateway_workers must be auto or a number of at least 1, not {v['gateway_workers']!r}"
                        f"{where('gateway_workers')}.")
    for uri_name in ("backend_store_uri", "registry_store_uri", "read_replica_backend_store_uri"):
        uri = v[uri_name]
        if uri is None:
            continue
        scheme = uri.split(":", 1)[0].split("+", 1)[0].lower()
        if file_store := mlflow_file_store(uri):
            # MLflow's ./mlruns folder: trackgate keeps runs in a database; importing is the way in.
            problems.append(
                f"{uri_name} {uri!r} is an MLflow file store (./mlruns); trackgate keeps runs in a database. "
                f"Import it first: {import_command(file_store, 'sqlite:///trackgate.db')}{where(uri_name)}."
            )
        elif "://" not in uri or scheme not in _SUPPORTED_DB_SCHEMES:
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
    if v["core_link"] not in ("frames", "http"):
        problems.append(f"core_link must be frames or http, not {v['core_link']!r}{where('core_link')}.")
    if v["log_format"] not in LOG_FORMATS:
        problems.append(f"log_format must be one of {', '.join(LOG_FORMATS)}, not {v['log_format']!r}"
                        f"{where('log_format')}.")
    if v["metrics_address"] is not None and not _METRICS_ADDRESS.fullmatch(v["metrics_address"]):
        problems.append(f"metrics_address must be HOST:PORT, e.g. 0.0.0.0:9090, not {v['metrics_address']!r}"
                        f"{where('metrics_address')}.")
    if v["log_level"].lower() not in LOG_LEVELS:
        problems.append(f"log_level must be one of {', '.join(LOG_LEVELS)}, not {v['log_level']!r}.")
    if v["artifacts_only"] and not v["serve_artifacts"]:
        problems.append("artifacts_only needs serve_artifacts: an artifacts-only server that serves no artifacts "
                        "would answer nothing.")
    if v["artifacts_only"] and sources.get("backend_store_uri", "default") != "default":
        problems.append("artifacts_only runs no tracking store, so backend_store_uri must not be set with it.")
    dest = v["artifacts_destination"]
    schemes = default_registry().schemes
    if dest and scheme_of(dest) not in schemes:
        # Only the scheme is named: the URI may carry a password (ftp://user:pass@host/...).
        problems.append(f"artifacts_destination must be a local path or a URI of a supported store "
                        f"({', '.join(s + '://' for s in schemes if s)}), not {scheme_of(dest)}://.")
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
    if v["default_permission"] not in PERMISSION_NAMES:
        problems.append(f"default_permission must be one of {', '.join(PERMISSION_NAMES)}, not "
                        f"{v['default_permission']!r}{where('default_permission')}.")
    if v["audit_retention_days"] < 1:
        problems.append(f"audit_retention_days must be at least 1, not {v['audit_retention_days']}.")
    if v["db_max_overflow"] < 0:
        problems.append(f"db_max_overflow must not be negative, not {v['db_max_overflow']}.")
    uses_mysql = any((v[n] or "").split(":", 1)[0].split("+", 1)[0].lower() in ("mysql", "mariadb")
                     for n in ("backend_store_uri", "registry_store_uri"))
    for name in ("mysql_ssl_ca", "mysql_ssl_cert", "mysql_ssl_key"):
        if uses_mysql and v[name] and not os.path.isfile(v[name]):
            problems.append(f"{name} names no file: {v[name]!r}{where(name)}.")
    if uses_mysql and v["mysql_ssl_key"] and not v["mysql_ssl_cert"]:
        problems.append(f"mysql_ssl_key{where('mysql_ssl_key')} needs mysql_ssl_cert (MLFLOW_MYSQL_SSL_CERT), "
                        "the client certificate it belongs to.")
    return problems


def _read_secret_files(values: dict[str, Any], sources: dict[str, str], problems: list[str]) -> None:
    """Fill each Secret setting from its `<name>_file` (read once, at startup). A problem names the
    file, never its content."""
    for setting in SETTINGS:
        path = values.get(setting.name + "_file") if setting.kind is Secret else None
        if not path:
            continue
        if values[setting.name] is not None:
            problems.append(f"give {setting.name} or {setting.name}_file, not both.")
            continue
        try:
            text = Path(path).read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{setting.name}_file {path} cannot be read ({type(exc).__name__}).")
            continue
        if not text:
            problems.append(f"{setting.name}_file {path} is empty.")
            continue
        values[setting.name] = Secret(text)
        sources[setting.name] = sources[setting.name + "_file"]


def _validate_sso(v: dict[str, Any]) -> list[str]:
    """OIDC sign-on and session settings. SSO is on when an issuer is set or `oidc` is in `auth`."""
    problems: list[str] = []
    if v["session_lifetime"].total_seconds() < 60:
        problems.append(f"session_lifetime must be at least 60s, not {v['session_lifetime']}.")
    if v["cookie_secret"] is not None:
        problems.extend(cookie_secret_problems(v["cookie_secret"].reveal()))
    if not (v["oidc_issuer_url"] or "oidc" in (v.get("auth") or ())):
        return problems
    if v.get("artifacts_only") and v["cookie_secret"] is None:
        problems.append("artifacts_only has no database to keep a generated cookie secret in: set cookie_secret.")
    issuer = v["oidc_issuer_url"]
    if not issuer:
        problems.append("oidc_issuer_url is required for oidc sign-on, e.g. https://accounts.google.com.")
    elif not re.match(r"https://[^/?#\s]+|http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?(/|$)", issuer):
        problems.append(f"oidc_issuer_url must be an https URL (http only on loopback), not {issuer!r}.")
    if not v["oidc_client_id"]:
        problems.append("oidc_client_id is required for oidc sign-on.")
    if v["oidc_client_secret"] is None:
        problems.append("oidc_client_secret (or oidc_client_secret_file) is required for oidc sign-on.")
    if "openid" not in v["oidc_scopes"]:
        problems.append("oidc_scopes must include openid.")
    redirect = v["oidc_redirect_url"]
    if redirect and not re.match(r"https?://[^/?#\s]+/\S*$", redirect):
        problems.append(f"oidc_redirect_url must be an absolute http(s) URL, not {redirect!r}.")
    if not (v["oidc_email_domains"] or v["oidc_allowed_emails"] or v["oidc_allowed_groups"]):
        # Fail closed, as oauth2-proxy does: "anyone with an account at the provider" (think
        # Google: anyone at all) must be asked for explicitly with oidc_email_domains = *.
        problems.append(
            "oidc sign-on needs an allow-list: oidc_email_domains, oidc_allowed_emails or "
            "oidc_allowed_groups (oidc_email_domains = * allows every account of the provider)."
        )
    for domain in v["oidc_email_domains"]:
        if domain != "*" and not re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z0-9-]+", domain.lstrip("@")):
            problems.append(f"oidc_email_domains: {domain!r} is not a domain such as example.com.")
    for email in v["oidc_allowed_emails"]:
        if email.count("@") != 1:
            problems.append(f"oidc_allowed_emails: {email!r} is not an email address.")
    return problems


def decode_cookie_secret(text: str) -> bytes:
    """The bytes of a cookie secret (base64, standard or URL-safe alphabet, padding optional)."""
    text = text.strip().replace("+", "-").replace("/", "_")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def cookie_secret_problems(text: str) -> list[str]:
    """The cookie secret must decode to exactly 32 bytes."""
    try:
        raw = decode_cookie_secret(text)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        return ["cookie_secret must be 32 random bytes in base64, e.g. from `openssl rand -base64 32`."]
    return []


def describe(config: Config) -> list[str]:
    """Human-readable lines for `--check-config`, with secrets masked."""
    lines = []
    for setting in SETTINGS:
        value = getattr(config, setting.name)
        if isinstance(value, str) and "uri" in setting.name:
            value = mask_uri(value)
        elif setting.kind is JwtIssuer:
            value = [issuer.to_plain() for issuer in value]
        lines.append(f"{setting.name} = {value!r}  ({config.sources.get(setting.name, 'default')})")
    return lines
