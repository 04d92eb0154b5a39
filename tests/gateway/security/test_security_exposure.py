"""Finding 12 of issue 13: a misspelt setting or a public address must not quietly start an open
server. Checked through the command line with --check-config (nothing binds beyond loopback)."""

from __future__ import annotations

import pytest

from gateway import cli


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = cli.main(["server", "--check-config", *args])
    captured = capsys.readouterr()
    return code, captured.err


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith(("TRACKGATE_", "MLFLOW_")) and name != "TRACKGATE_REQUIRE_SERVICES":
            monkeypatch.delenv(name)


def test_misspelt_variable_stops_the_server(capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKGATE_AUTHS", "basic")
    code, err = run(capsys)
    assert code == 2
    assert "TRACKGATE_AUTHS is not a trackgate setting. Did you mean TRACKGATE_AUTH?" in err


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.10", "myhost.example"])
def test_public_address_without_auth_needs_allow_anonymous(capsys: pytest.CaptureFixture[str], host: str) -> None:
    code, err = run(capsys, "--host", host)
    assert code == 2 and "--allow-anonymous" in err and "no authentication" in err
    code, err = run(capsys, "--host", host, "--allow-anonymous")
    assert code == 0
    assert f"listening on {host} with no authentication" in err  # said out loud, not silently open


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_without_auth_is_fine(capsys: pytest.CaptureFixture[str], host: str) -> None:
    code, err = run(capsys, "--host", host)
    assert (code, err) == (0, "")


def test_public_address_with_auth_is_fine(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(capsys, "--host", "0.0.0.0", "--auth", "basic")
    assert (code, err) == (0, "")


def test_allow_anonymous_from_its_variable(capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKGATE_HOST", "0.0.0.0")
    monkeypatch.setenv("TRACKGATE_ALLOW_ANONYMOUS", "true")
    assert run(capsys)[0] == 0


def test_only_the_server_checks_where_it_listens() -> None:
    """`trackgate gc` or `users` in the server's container environment (TRACKGATE_HOST=0.0.0.0, no
    auth) listens nowhere, so it is not refused."""
    from gateway.config import load

    assert load({}, {"TRACKGATE_HOST": "0.0.0.0"}).host == "0.0.0.0"
