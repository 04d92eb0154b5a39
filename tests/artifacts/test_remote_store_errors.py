"""What a remote store's failures look like to the API: unreachable is a retried 503, a refused
login or host key a 500, and neither message carries the credentials of the location."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.artifacts.ftp_server import PASSWORD, FtpServer
from tests.artifacts.sshd_server import SshServer
from tests.artifacts.stores import environment
from tests.services import free_port
from tracking_core.artifacts.filetrees import StoreUnavailable
from tracking_core.artifacts.repository import ArtifactStores, default_registry
from tracking_core.errors import ErrorCode


async def stat_error(uri: str, env: dict[str, str] | None = None) -> StoreUnavailable:
    with environment(env or {}):
        async with ArtifactStores(default_registry()) as stores:
            repo = await stores.repository(uri)
            with pytest.raises(StoreUnavailable) as caught:
                await repo.stat("x")
    return caught.value


async def test_ftp_wrong_password_is_refused_without_echoing_it(ftp_server: FtpServer) -> None:
    uri = ftp_server.uri("x").replace(PASSWORD, "not-the-password")
    error = await stat_error(uri)
    assert error.code == ErrorCode.INTERNAL_ERROR and "refused the session" in error.message
    assert "not-the-password" not in error.message


async def test_ftp_nothing_listening_is_retryable() -> None:
    error = await stat_error(f"ftp://u:secret@127.0.0.1:{free_port()}/x")
    assert error.code == ErrorCode.TEMPORARILY_UNAVAILABLE and error.status == 503
    assert "secret" not in error.message


async def test_sftp_unknown_host_key_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    """Host-key checking is on: the same server, with a HOME whose known_hosts lacks it."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_rsa").write_bytes((sshd.home / ".ssh" / "id_rsa").read_bytes())
    (home / ".ssh" / "id_rsa").chmod(0o600)
    (home / ".ssh" / "known_hosts").write_text("")
    error = await stat_error(sshd.uri("x"), {"HOME": str(home)})
    assert error.code == ErrorCode.INTERNAL_ERROR and "refused the session" in error.message
    # With the real known_hosts the same location works.
    with environment(sshd.env):
        async with ArtifactStores(default_registry()) as stores:
            assert await (await stores.repository(sshd.uri("x"))).stat("x") is None


async def test_sftp_nothing_listening_is_retryable(sshd: SshServer) -> None:
    error = await stat_error(f"sftp://{sshd.user}@127.0.0.1:{free_port()}/x", sshd.env)
    assert error.code == ErrorCode.TEMPORARILY_UNAVAILABLE
