"""Configuration: precedence of sources, all problems at once, secrets masked; the CLI around it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import gateway
from gateway import cli
from gateway.config import ConfigError, describe, load
from tests.gateway.support import REPO

PRECEDENCE = [
    # (id, flags, env, toml, setting, expected)
    ("default", {}, {}, "", "port", 5000),
    ("toml", {}, {}, "port = 6001", "port", 6001),
    ("toml-server-table", {}, {}, "[server]\nport = 6002", "port", 6002),
    ("mlflow-env-over-toml", {}, {"MLFLOW_PORT": "6003"}, "port = 6001", "port", 6003),
    ("cloud-run-PORT-over-mlflow", {}, {"PORT": "6004", "MLFLOW_PORT": "6003"}, "", "port", 6004),
    ("trackgate-env-over-PORT", {}, {"TRACKGATE_PORT": "6005", "PORT": "6004"}, "", "port", 6005),
    (
        "flag-over-everything",
        {"port": "6006"},
        {"TRACKGATE_PORT": "6005", "PORT": "6004"},
        "port = 1",
        "port",
        6006,
    ),
    (
        "mlflow-backend-env",
        {},
        {"MLFLOW_BACKEND_STORE_URI": "sqlite:///m.db"},
        'backend_store_uri = "sqlite:///t.db"',
        "backend_store_uri",
        "sqlite:///m.db",
    ),
    ("bool-env-words", {}, {"TRACKGATE_SERVE_ARTIFACTS": "off"}, "", "serve_artifacts", False),
    (
        "bool-flag-over-env",
        {"serve_artifacts": True},
        {"MLFLOW_SERVE_ARTIFACTS": "false"},
        "",
        "serve_artifacts",
        True,
    ),
    ("toml-dashes", {}, {}, 'static-prefix = "/mlflow"', "static_prefix", "/mlflow"),
    ("float-env", {}, {"TRACKGATE_DRAIN_TIMEOUT": "2.5"}, "", "drain_timeout", 2.5),
]


@pytest.mark.parametrize(
    ("flags", "env", "toml", "setting", "expected"),
    [row[1:] for row in PRECEDENCE],
    ids=[row[0] for row in PRECEDENCE],
)
def test_precedence(
    tmp_path: Path, flags: dict[str, Any], env: dict[str, str], toml: str, setting: str, expected: Any
) -> None:
    config_file = None
    if toml:
        config_file = tmp_path / "trackgate.toml"
        config_file.write_text(toml)
    config = load(flags, env, str(config_file) if config_file else None)
    assert getattr(config, setting) == expected


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    toml = tmp_path / "bad.toml"
    toml.write_text('colour = "blue"\nlog_level = "loud"\n')
    with pytest.raises(ConfigError) as caught:
        load(
            {"port": "not-a-port", "workers": "0"},
            {"TRACKGATE_NOPE": "1", "MLFLOW_SERVE_ARTIFACTS": "maybe", "TRACKGATE_STATIC_PREFIX": "mlflow/"},
            str(toml),
        )
    problems = "\n".join(caught.value.problems)
    for fragment in (
        "port: --port gives 'not-a-port'",
        "workers must be at least 1",
        "serve_artifacts: MLFLOW_SERVE_ARTIFACTS gives 'maybe'",
        "static_prefix must start with '/'",
        "unknown setting 'colour'",
        "log_level must be one of",
        "environment variable TRACKGATE_NOPE is not a trackgate setting",
    ):
        assert fragment in problems
    assert len(caught.value.problems) == 7


def test_unknown_trackgate_variables_stop_with_a_suggestion() -> None:
    """Issue 13 finding 12: TRACKGATE_AUTHS=basic used to start an open server with a warning."""
    with pytest.raises(ConfigError) as caught:
        load({}, {"TRACKGATE_AUTHS": "basic", "TRACKGATE_PORT": "6000"})
    assert caught.value.problems == [
        "environment variable TRACKGATE_AUTHS is not a trackgate setting. Did you mean TRACKGATE_AUTH?"
    ]
    # The test tooling's own variables are not settings and not errors.
    config = load({}, {"TRACKGATE_REQUIRE_SERVICES": "1", "TRACKGATE_TEST_POSTGRES": "postgresql://x"})
    assert "REQUIRE" not in config.core_settings().to_json()


SECRETS = [
    ("bad-scheme", {"backend_store_uri": "mongodb://alice:hunter2@db.example/t"}),
    ("bad-registry", {"registry_store_uri": "redis://bob:hunter2@cache/0"}),
]


@pytest.mark.parametrize("flags", [row[1] for row in SECRETS], ids=[row[0] for row in SECRETS])
def test_passwords_are_masked_in_problems(flags: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load(flags, {})
    message = str(caught.value)
    assert "hunter2" not in message
    assert ":***@" in message


def test_describe_masks_passwords() -> None:
    config = load({"backend_store_uri": "postgresql://alice:hunter2@db.example/tracking"}, {})
    text = "\n".join(describe(config))
    assert "hunter2" not in text
    assert "postgresql://alice:***@db.example/tracking" in text
    assert "(--backend-store-uri)" in text


def test_missing_config_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load({}, {}, str(tmp_path / "absent.toml"))


# -- the CLI around it ---------------------------------------------------------------------------


def test_check_config_prints_effective_config(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "8080")
    code = cli.main(["server", "--check-config", "-w", "3", "--no-serve-artifacts", "--host", "0.0.0.0",
                     "--allow-anonymous"])
    out = capsys.readouterr().out
    assert code == 0
    assert "port = 8080  (PORT)" in out
    assert "workers = 3  (--workers)" in out
    assert "serve_artifacts = False  (--serve-artifacts)" in out
    assert "host = '0.0.0.0'  (--host)" in out


def test_unset_flags_do_not_override_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_WORKERS", "4")
    monkeypatch.setenv("MLFLOW_ARTIFACTS_ONLY", "true")
    assert cli.main(["server", "--check-config"]) == 0
    out = capsys.readouterr().out
    assert "workers = 4  (MLFLOW_WORKERS)" in out
    assert "artifacts_only = True  (MLFLOW_ARTIFACTS_ONLY)" in out


def test_cli_reports_problems_without_traceback() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway.cli",
            "server",
            "--port",
            "99999",
            "--workers",
            "x",
            "--backend-store-uri",
            "ftp://carol:hunter2@files/x",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == "trackgate: configuration problems:"
    assert len(lines) == 4  # one line per problem
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr


def test_version_names_trackgate_and_the_mlflow_api(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert gateway.__version__ in out
    assert gateway.MLFLOW_API_VERSION in out


def test_subcommands_register_through_one_door(capsys: pytest.CaptureFixture[str]) -> None:
    calls = []

    def add_hello(parser: Any) -> None:
        """Say hello."""
        parser.add_argument("name")
        parser.set_defaults(handler=lambda args: calls.append(args.name) or 0)

    parser = cli.build_parser([*cli.SUBCOMMANDS, ("hello", add_hello)])
    args = parser.parse_args(["hello", "world"])
    assert args.handler(args) == 0
    assert calls == ["world"]
    assert "Say hello." in parser.format_help()
