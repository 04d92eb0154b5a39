"""SSO and session settings: every source, secrets from files and masked, all problems at once."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.config import ConfigError, Secret, describe, load
from tracking_core.durations import parse_duration

GOOD_SECRET = base64.b64encode(bytes(range(32))).decode()
SSO = {
    "oidc_issuer_url": "https://accounts.google.com",
    "oidc_client_id": "trackgate",
    "oidc_client_secret": "hunter2-client",
    "oidc_email_domains": "example.com",
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 90), ("90s", 90), ("15m", 900), ("12h", 43200), ("7d", 604800), ("1h30m", 5400), ("1.5h", 5400)],
    ids=["bare", "s", "m", "h", "d", "h+m", "fraction"],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "1w", "1h 30m", "-5m", "5m1"], ids=repr)
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_lists_from_env_flag_and_toml(tmp_path: Path) -> None:
    toml = tmp_path / "t.toml"
    toml.write_text('oidc_allowed_groups = ["ml-team", "admins"]\noidc_email_domains = ["a.example"]\n')
    config = load(
        {"oidc_email_domains": "b.example, c.example"},
        {"TRACKGATE_OIDC_SCOPES": "openid,email, groups"},
        str(toml),
    )
    assert config.oidc_email_domains == ("b.example", "c.example")  # the flag wins over the file
    assert config.oidc_scopes == ("openid", "email", "groups")
    assert config.oidc_allowed_groups == ("ml-team", "admins")


def test_secrets_from_files_are_masked_everywhere(tmp_path: Path) -> None:
    (tmp_path / "client").write_text("hunter2-client\n")
    (tmp_path / "cookie").write_text(GOOD_SECRET + "\n")
    flags = {**SSO, "oidc_client_secret": None}
    config = load(
        flags,
        {
            "TRACKGATE_OIDC_CLIENT_SECRET_FILE": str(tmp_path / "client"),
            "TRACKGATE_COOKIE_SECRET_FILE": str(tmp_path / "cookie"),
        },
    )
    assert config.oidc_client_secret == Secret("hunter2-client")
    assert config.cookie_secret is not None and config.cookie_secret.reveal() == GOOD_SECRET
    shown = "\n".join(describe(config)) + repr(config) + str(config.oidc_client_secret)
    assert "hunter2" not in shown and GOOD_SECRET not in shown
    # The core workers receive the config in their environment: no secrets there.
    core = config.core_settings().to_json()
    assert "hunter2" not in core and GOOD_SECRET not in core and "session_lifetime" not in core


def test_every_sso_problem_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(
            {
                "oidc_issuer_url": "http://idp.example",  # plain http off loopback
                "oidc_scopes": "email",
                "oidc_redirect_url": "/oauth2/callback",
                "oidc_allowed_emails": "not-an-email,a@b@c.example",
                "cookie_secret": "hunter2-too-short",
                "session_lifetime": "5s",
                "oidc_client_secret_file": str(tmp_path / "absent"),
            },
            {},
        )
    problems = "\n".join(caught.value.problems)
    for fragment in (
        "oidc_issuer_url must be an https URL",
        "oidc_client_id is required",
        "oidc_client_secret_file",
        "oidc_scopes must include openid",
        "oidc_redirect_url must be an absolute",
        "'not-an-email' is not an email address",
        "'a@b@c.example' is not an email address",
        "cookie_secret must be 32 random bytes",
        "session_lifetime must be at least 60s",
    ):
        assert fragment in problems
    assert "hunter2" not in problems


def test_sign_on_without_an_allow_list_is_refused() -> None:
    with pytest.raises(ConfigError, match="needs an allow-list"):
        load({**SSO, "oidc_email_domains": None}, {})
    assert load({**SSO, "oidc_email_domains": "*"}, {}).oidc_email_domains == ("*",)


def test_both_secret_and_file_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "c").write_text("x")
    with pytest.raises(ConfigError, match="not both"):
        load({**SSO, "oidc_client_secret_file": str(tmp_path / "c")}, {})


def test_artifacts_only_needs_a_configured_cookie_secret() -> None:
    with pytest.raises(ConfigError, match="set cookie_secret"):
        load({**SSO, "artifacts_only": True}, {})
    assert load({**SSO, "artifacts_only": True, "cookie_secret": GOOD_SECRET}, {}).artifacts_only
