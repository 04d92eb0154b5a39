"""Validation of the authentication, TLS and forwarding settings (declared in gateway.config's
SETTINGS table), and the one structured setting: the external JWT issuers.

TOML takes the issuers as `[[jwt_issuers]]` tables; flags and variables as JSON or as
oauth2-proxy's `ISSUER=AUDIENCE,ISSUER=AUDIENCE`.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

CLIENT_CERT_MODES = ("off", "optional", "required")
CERT_IDENTITY_SOURCES = ("cn", "san:dns", "san:email", "san:uri")


@dataclass(frozen=True)
class JwtIssuer:
    """An external issuer whose JWTs are accepted as bearer tokens (Google, GitHub Actions, GitLab,
    Kubernetes, any OIDC issuer). Keys come from OIDC discovery unless `jwks_uri` is given."""

    issuer: str
    audience: tuple[str, ...]
    subject_claim: str = "sub"
    email_claim: str = "email"
    groups_claim: str = "groups"
    jwks_uri: str | None = None
    ca_file: str | None = None  # CA bundle for the issuer's HTTPS (a cluster's private CA)
    # Which subjects may call (fnmatch patterns of the subject claim, e.g. "repo:my-org/*").
    # Required: Google, GitHub and GitLab mint tokens for ANY account with any audience asked
    # for, so issuer + audience alone would admit strangers. "*" admits all, deliberately.
    allowed_subjects: tuple[str, ...] = ()

    @classmethod
    def parse_list(cls, raw: Any) -> tuple[JwtIssuer, ...]:
        """From TOML tables, a JSON list, or oauth2-proxy's `ISSUER=AUDIENCE,ISSUER=AUDIENCE` (which, as
        in oauth2-proxy, admits every subject of the issuer)."""
        if isinstance(raw, str):
            text = raw.strip()
            if not text:
                return ()
            if text.startswith("["):
                raw = json.loads(text)
            else:
                pairs = [p.strip() for p in text.split(",") if p.strip()]
                raw = []
                for pair in pairs:
                    issuer, sep, audience = pair.partition("=")
                    if not sep:
                        raise ValueError(f"{pair!r} is not ISSUER=AUDIENCE")
                    raw.append({"issuer": issuer, "audience": audience, "allowed_subjects": ["*"]})
        if not isinstance(raw, list):
            raise ValueError("expected a list of issuers")
        return tuple(cls.from_mapping(item) for item in raw)

    @classmethod
    def from_mapping(cls, item: Any) -> JwtIssuer:
        if not isinstance(item, Mapping):
            raise ValueError(f"each issuer must be a table, not {item!r}")
        unknown = set(item) - {f for f in cls.__dataclass_fields__}
        if unknown:
            raise ValueError(f"unknown issuer key(s) {', '.join(sorted(unknown))}")
        def strings(name: str) -> tuple[str, ...]:
            value = item.get(name)
            return tuple(str(v) for v in ((value,) if isinstance(value, str) else (value or ())))

        values = {k: v for k, v in item.items() if k not in ("audience", "allowed_subjects")}
        return cls(audience=strings("audience"), allowed_subjects=strings("allowed_subjects"), **values)

    def to_plain(self) -> dict[str, Any]:
        return {**self.__dict__, "audience": list(self.audience), "allowed_subjects": list(self.allowed_subjects)}


def validate_auth(v: dict[str, Any], where: Callable[[str], str]) -> list[str]:
    """Every problem of the auth/TLS settings; `v` holds converted values by setting name."""
    from gateway.auth.methods import METHODS

    problems: list[str] = []
    methods = v["auth"]
    for name in methods:
        if name not in METHODS:
            known = ", ".join(METHODS)
            problems.append(f"auth: unknown method {name!r}{where('auth')}; known: {known}.")
    if len(set(methods)) != len(methods):
        problems.append(f"auth lists a method twice: {', '.join(methods)}.")
    for pattern in v["skip_auth_routes"]:
        try:
            re.compile(pattern)
        except re.error as exc:
            problems.append(f"skip_auth_routes: {pattern!r} is not a valid regular expression ({exc}).")
    for cidr in v["trusted_proxies"]:
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            problems.append(f"trusted_proxies: {cidr!r} is not an address or CIDR{where('trusted_proxies')}.")
    if "forwarded" in methods and not v["trusted_proxies"]:
        problems.append("auth forwarded believes identity headers only from trusted_proxies, which is empty.")
    for name in ("forwarded_user_header", "forwarded_email_header", "forwarded_groups_header"):
        if not re.fullmatch(r"[A-Za-z0-9-]+", v[name]):
            problems.append(f"{name}: {v[name]!r} is not a header name (letters, digits and '-'){where(name)}.")
    for name in ("htpasswd_file", "tls_cert", "tls_key", "tls_client_ca"):
        path = v[name]
        if path is not None and not os.path.isfile(path):
            problems.append(f"{name}: the file {path} does not exist{where(name)}.")
    problems += _tls_problems(v)
    for name in ("basic_auth_cache_ttl", "jwks_cache_ttl"):
        if v[name] <= 0:
            problems.append(f"{name} must be greater than 0, not {v[name]}.")
    if not 0 <= v["jwt_leeway"] <= 300:
        problems.append(f"jwt_leeway must be between 0 and 300 seconds, not {v['jwt_leeway']}.")
    for issuer in v["jwt_issuers"]:
        problems += _issuer_problems(issuer)
    if v["token_signing_key"] is not None:
        from gateway.auth.signing import SigningKeyError, load_private_key

        try:
            load_private_key(v["token_signing_key"].reveal())
        except SigningKeyError as exc:
            problems.append(f"token_signing_key: {exc}{where('token_signing_key')}.")
    if v.get("artifacts_only") and "basic" in methods and not v["htpasswd_file"]:
        problems.append("artifacts_only has no database for basic-auth users: set htpasswd_file.")
    if v.get("artifacts_only") and "bearer" in methods and v["token_signing_key"] is None:
        problems.append("artifacts_only has no database to keep a generated signing key in: set token_signing_key_file "
                        "(and tokens cannot be revoked there).")
    return problems


def _tls_problems(v: dict[str, Any]) -> list[str]:
    problems = []
    mode = v["client_cert_mode"]
    if mode is not None and mode not in CLIENT_CERT_MODES:
        problems.append(f"client_cert_mode must be one of {', '.join(CLIENT_CERT_MODES)}, not {mode!r}.")
    if (v["tls_key"] or v["tls_client_ca"]) and not v["tls_cert"]:
        problems.append("tls_key and tls_client_ca need tls_cert: TLS is served only with a certificate.")
    if mode in ("optional", "required") and not v["tls_client_ca"]:
        problems.append(f"client_cert_mode {mode} needs tls_client_ca (the CA client certificates chain to).")
    effective = mode or ("optional" if v["tls_client_ca"] else "off")
    if "mtls" in v["auth"] and effective == "off":
        problems.append("auth method mtls needs tls_cert, tls_client_ca and a client_cert_mode not off.")
    for source in v["client_cert_identity"]:
        if source not in CERT_IDENTITY_SOURCES:
            known = ", ".join(CERT_IDENTITY_SOURCES)
            problems.append(f"client_cert_identity: {source!r} is not one of {known}.")
    return problems


def _issuer_problems(issuer: JwtIssuer) -> list[str]:
    problems = []
    label = f"jwt_issuers[{issuer.issuer!r}]"
    for name, url in (("issuer", issuer.issuer), ("jwks_uri", issuer.jwks_uri)):
        if url is None:
            continue
        parts = urlsplit(url)
        # Plain http only on loopback (a test provider); real issuers are always https.
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            problems.append(f"{label}: {name} must be an https URL, not {url!r}.")
    if not issuer.audience or not all(issuer.audience):
        problems.append(f"{label}: audience is required (the value tokens must carry in `aud`).")
    if not issuer.subject_claim:
        problems.append(f"{label}: subject_claim must name a claim.")
    if not issuer.allowed_subjects:
        problems.append(
            f"{label}: allowed_subjects is required: the {issuer.subject_claim} values that may call, as patterns "
            "(e.g. ['deployer@my-project.iam.gserviceaccount.com'] or ['repo:my-org/*']). Issuers like Google and "
            "GitHub give any account a token for any audience; ['*'] admits them all."
        )
    if issuer.ca_file is not None and not os.path.isfile(issuer.ca_file):
        problems.append(f"{label}: ca_file {issuer.ca_file} does not exist.")
    return problems
