"""The auth, TLS and forwarding settings: every source, all problems at once, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config import ConfigError, JwtIssuer, describe, load
from tests.gateway.auth.support import ed25519_pem


def test_every_source(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text('auth = ["basic", "bearer"]\ntrusted_proxies = ["10.0.0.0/8"]\n'
                    '[[jwt_issuers]]\nissuer = "https://accounts.google.com"\naudience = "https://tg.example"\n'
                    'subject_claim = "email"\nallowed_subjects = ["deployer@p.iam.gserviceaccount.com"]\n')
    config = load({}, env={}, config_file=str(toml))
    assert config.auth == ("basic", "bearer") and config.trusted_proxies == ("10.0.0.0/8",)
    assert config.jwt_issuers == (JwtIssuer("https://accounts.google.com", ("https://tg.example",), "email",
                                            allowed_subjects=("deployer@p.iam.gserviceaccount.com",)),)
    assert load({}, env={"TRACKGATE_AUTH": "bearer"}, config_file=str(toml)).auth == ("bearer",)
    assert load({"auth": "bearer,basic"}, env={"TRACKGATE_AUTH": "bearer"}).auth == ("bearer", "basic")


def test_tls_table_and_issuer_pairs(tmp_path: Path) -> None:
    for name in ("s.pem", "k.pem", "ca.pem"):
        (tmp_path / name).write_text("x")
    toml = tmp_path / "c.toml"
    toml.write_text(f'[tls]\ncert = "{tmp_path}/s.pem"\nkey = "{tmp_path}/k.pem"\nclient_ca = "{tmp_path}/ca.pem"\n')
    config = load({"jwt_issuers": "https://token.actions.githubusercontent.com=https://github.com/org"}, env={},
                  config_file=str(toml))
    assert config.tls_cert == f"{tmp_path}/s.pem" and config.effective_client_cert_mode == "optional"
    assert config.jwt_issuers[0].audience == ("https://github.com/org",)


def test_all_problems_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        load({"auth": "basic,kerberos,basic", "trusted_proxies": "10.0.0.0/33", "skip_auth_routes": "(",
              "client_cert_mode": "sometimes", "tls_key": "/nope.pem", "client_cert_identity": "ou",
              "jwt_issuers": '[{"issuer": "http://idp.example", "audience": ""}]', "jwt_leeway": "900"},
             env={})
    text = str(raised.value)
    for fragment in ("unknown method 'kerberos'", "lists a method twice", "10.0.0.0/33", "regular expression",
                     "client_cert_mode must be one of", "the file /nope.pem does not exist", "need tls_cert",
                     "'ou' is not one of", "issuer must be an https URL", "audience is required", "jwt_leeway",
                     "allowed_subjects is required"):
        assert fragment in text, fragment


def test_mtls_needs_a_client_ca() -> None:
    with pytest.raises(ConfigError, match="mtls needs"):
        load({"auth": "mtls"}, env={})


def test_signing_key_from_a_file_is_masked(tmp_path: Path) -> None:
    pem = ed25519_pem()
    (tmp_path / "key.pem").write_text(pem)
    config = load({"token_signing_key_file": str(tmp_path / "key.pem")}, env={})
    assert config.token_signing_key is not None and config.token_signing_key.reveal().strip() == pem.strip()
    shown = "\n".join(describe(config)) + repr(config) + str(config.token_signing_key)
    assert "PRIVATE KEY" not in shown and "**********" in shown
    assert "PRIVATE KEY" not in config.core_settings().to_json()  # the core never gets it


def test_bad_signing_key_is_reported_without_its_content() -> None:
    with pytest.raises(ConfigError) as raised:
        load({"token_signing_key": "-----BEGIN PRIVATE KEY-----\nsecret-material\n-----END PRIVATE KEY-----"},
             env={})
    assert "token_signing_key" in str(raised.value) and "secret-material" not in str(raised.value)


def test_issuers_stay_in_the_gateway() -> None:
    config = load({"jwt_issuers": '[{"issuer": "https://gitlab.com", "audience": ["a", "b"], '
                                  '"subject_claim": "project_path", "allowed_subjects": ["my-group/*"]}]'}, env={})
    assert config.jwt_issuers[0].subject_claim == "project_path"
    assert "gitlab" not in config.core_settings().to_json()  # the core authorises; it never verifies tokens


def test_artifacts_only_has_no_database_for_users_or_keys() -> None:
    with pytest.raises(ConfigError) as raised:
        load({"auth": "basic,bearer", "artifacts_only": "true"}, env={})
    assert "set htpasswd_file" in str(raised.value) and "set token_signing_key_file" in str(raised.value)
