"""How FTP and SFTP move a file's bytes, against the real servers (pyftpdlib, OpenSSH's sshd).

Downloads are pipelined (SFTP: many read requests outstanding; FTP: the data connection read
straight into whole buffers), so these check what the pipelining must not lose: a server that
answers fewer bytes than asked, and a file that shrinks between the size the response announced
and the read, which must fail rather than end as if the file were complete.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

import pytest

from tests.artifacts.ftp_server import FtpServer
from tests.artifacts.sshd_server import SshServer
from tests.artifacts.stores import environment
from tests.artifacts.test_repository_contract import MiB, payload, read_all, stream
from tracking_core.artifacts.repository import ArtifactRepository, ArtifactStores, default_registry
from tracking_core.artifacts.sftp import SftpRepository


def location(kind: str, request: pytest.FixtureRequest) -> tuple[str, dict[str, str], Path]:
    """A fresh root on the store, its environment, and where the server keeps it on this disk."""
    prefix = f"t-{uuid.uuid4().hex[:10]}"
    if kind == "sftp":
        ssh: SshServer = request.getfixturevalue("sshd")
        return ssh.uri(prefix), ssh.env, ssh.root / prefix
    ftp: FtpServer = request.getfixturevalue(f"{kind}_server")
    return ftp.uri(f"srv/{prefix}"), ftp.env, ftp.root / "srv" / prefix


@pytest.mark.parametrize("kind", ["ftp", "ftps", "sftp"])
async def test_a_file_that_shrinks_during_a_download_is_not_served_as_complete(
    kind: str, request: pytest.FixtureRequest
) -> None:
    uri, env, disk = location(kind, request)
    data = payload(6 * MiB + 7)
    with environment(env):
        async with ArtifactStores(default_registry()) as stores:
            repo = await stores.repository(uri)
            await repo.upload("f.bin", stream(data, chunk=MiB))
            download = await repo.download("f.bin")
            assert download.size == len(data)
            os.truncate(disk / "f.bin", 2 * MiB)  # after the size was read, before any byte
            got = bytearray()
            with pytest.raises(ConnectionResetError, match="early"):
                async for chunk in download.chunks:
                    got += chunk
            await download.aclose()
            assert bytes(got) == data[: len(got)] and len(got) <= 2 * MiB


async def test_sftp_server_answering_fewer_bytes_than_asked(sshd: SshServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reads asked for 1 MiB at a time: OpenSSH's sftp-server answers at most 255 KiB per read,
    and the rest of each block is read in place, in order."""
    data = payload(5 * MiB + 3)
    with environment(sshd.env):
        async with ArtifactStores(default_registry()) as stores:
            repo = await stores.repository(sshd.uri(f"t-{uuid.uuid4().hex[:10]}"))
            assert isinstance(repo, SftpRepository)
            await repo.upload("f.bin", stream(data, chunk=MiB))
            client = await repo.backend.sftp(repo.target)
            assert client.limits.max_read_len < MiB, "OpenSSH's own limit, which the test exceeds"
            monkeypatch.setattr(client.limits, "max_read_len", MiB)
            got = await read_all(repo, "f.bin")
            assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
            assert await read_all(repo, "f.bin", 3 * MiB - 5, 4 * MiB + 5) == data[3 * MiB - 5 : 4 * MiB + 6]


@pytest.mark.parametrize("kind", ["ftp", "sftp"])
async def test_uploads_pipelined_from_odd_sized_chunks(kind: str, request: pytest.FixtureRequest) -> None:
    """Chunks that are not multiples of the store's request size land at the right offsets."""
    uri, env, disk = location(kind, request)
    data = payload(3 * MiB + 12345)
    with environment(env):
        async with ArtifactStores(default_registry()) as stores:
            repo: ArtifactRepository = await stores.repository(uri)
            assert await repo.upload("odd.bin", stream(data, chunk=300_001)) == len(data)
    assert (disk / "odd.bin").read_bytes() == data
