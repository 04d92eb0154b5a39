"""The private core socket: owner-only, a stale one replaced, a live one or a non-socket refused."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from gateway import core_socket


def test_default_socket_is_private_and_removed_on_close() -> None:
    bound = core_socket.bind(None)
    assert bound.tmpdir is not None
    assert stat.S_IMODE(os.stat(bound.tmpdir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(bound.path).st_mode) == 0o600
    bound.close()
    assert not os.path.exists(bound.tmpdir)


def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "core.sock")
    with socket.socket(socket.AF_UNIX) as left_behind:
        left_behind.bind(path)  # bound, never listening: what a killed server leaves
    bound = core_socket.bind(path)
    bound.close()
    assert not os.path.exists(path)


def test_socket_in_use_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "core.sock")
    running = core_socket.bind(path)
    try:
        with pytest.raises(core_socket.CoreSocketError, match="in use by another running server"):
            core_socket.bind(path)
    finally:
        running.close()


def test_other_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "core.sock"
    path.write_text("precious")
    with pytest.raises(core_socket.CoreSocketError, match="is not a socket"):
        core_socket.bind(str(path))
    assert path.read_text() == "precious"
